//! [`Kv`] over a Workers KV namespace, called directly through its JavaScript methods: the
//! `worker` crate's KV builder serializes its options through `serde-wasm-bindgen` (and with
//! it float formatting), about 5 KB gzip of the bundle for four plain calls.

use super::js::{call_method, js_message, object};
use crate::platform::{Kv, StoreError};
use js_sys::{Array, Object, Reflect};
use wasm_bindgen::JsValue;

/// The namespace binding (`env.SESSIONS`).
pub struct WorkerKv(pub Object);

fn err(e: JsValue) -> StoreError {
    StoreError(format!("KV: {}", js_message(&e)))
}

impl Kv for WorkerKv {
    async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        let v = call_method(&self.0, "get", &[key.into()])
            .await
            .map_err(err)?;
        Ok(v.as_string())
    }

    async fn put(&self, key: &str, value: &str, ttl: u64) -> Result<(), StoreError> {
        let options = object(&[("expirationTtl", JsValue::from_f64(ttl.max(60) as f64))]);
        call_method(&self.0, "put", &[key.into(), value.into(), options.into()])
            .await
            .map(drop)
            .map_err(err)
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        call_method(&self.0, "delete", &[key.into()])
            .await
            .map(drop)
            .map_err(err)
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut names = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut options = vec![
                ("prefix", JsValue::from_str(prefix)),
                ("limit", 1000.into()),
            ];
            if let Some(c) = cursor.take() {
                options.push(("cursor", c.into()));
            }
            let page = call_method(&self.0, "list", &[object(&options).into()])
                .await
                .map_err(err)?;
            let field = |name: &str| Reflect::get(&page, &JsValue::from_str(name)).map_err(err);
            let keys = Array::from(&field("keys")?);
            for k in keys.iter() {
                let name = Reflect::get(&k, &JsValue::from_str("name")).map_err(err)?;
                names.push(
                    name.as_string()
                        .ok_or_else(|| err("a key without a name".into()))?,
                );
            }
            let complete = field("list_complete")?.as_bool().unwrap_or(true);
            match field("cursor")?
                .as_string()
                .filter(|c| !complete && !c.is_empty())
            {
                Some(c) => cursor = Some(c),
                None => return Ok(names),
            }
        }
    }
}
