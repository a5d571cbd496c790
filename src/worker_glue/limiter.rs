//! [`Limiter`] over the Workers Rate Limiting binding (`[[ratelimits]]` in wrangler.toml):
//! counters kept in memory at each Cloudflare location, no storage written. Called through
//! `js_sys` directly (`binding.limit({key})` → `{success}`) rather than `worker::RateLimiter`,
//! whose serde round trip through `serde-wasm-bindgen` costs bundle size for two fields.

use crate::platform::{Limiter, StoreError};
use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::{JsCast, JsValue};

pub struct WorkerLimiter {
    binding: JsValue,
    limit: Function,
}

impl WorkerLimiter {
    /// The binding named `name` of `env`, if it is there and has a `limit` method.
    pub fn from_env(env: &worker::Env, name: &str) -> Result<WorkerLimiter, String> {
        let binding = Reflect::get(env, &JsValue::from_str(name))
            .ok()
            .filter(|b| b.is_object())
            .ok_or("the binding is missing")?;
        let limit = Reflect::get(&binding, &JsValue::from_str("limit"))
            .ok()
            .and_then(|f| f.dyn_into::<Function>().ok())
            .ok_or("the binding has no limit method (not a rate limiter)")?;
        Ok(WorkerLimiter { binding, limit })
    }
}

fn err(_: JsValue) -> StoreError {
    StoreError("the rate limiter call failed".into())
}

impl Limiter for WorkerLimiter {
    async fn allow(&self, key: &str) -> Result<bool, StoreError> {
        let options = Object::new();
        Reflect::set(&options, &JsValue::from_str("key"), &JsValue::from_str(key)).map_err(err)?;
        let promise: Promise = self
            .limit
            .call1(&self.binding, &options)
            .map_err(err)?
            .dyn_into()
            .map_err(err)?;
        let outcome = wasm_bindgen_futures::JsFuture::from(promise)
            .await
            .map_err(err)?;
        Reflect::get(&outcome, &JsValue::from_str("success"))
            .map_err(err)?
            .as_bool()
            .ok_or_else(|| StoreError("rate limiter: no success flag in its answer".into()))
    }
}
