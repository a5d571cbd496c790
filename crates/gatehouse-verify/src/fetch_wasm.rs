//! The JWKS over the runtime's global `fetch` (a Worker, a browser).

use crate::jwks::{FetchError, JwksFetcher};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

/// Fetches the JWKS with the global `fetch`. To go through a service binding instead,
/// implement [`JwksFetcher`] with the binding's `fetch`.
#[derive(Debug, Clone, Copy, Default)]
pub struct GlobalFetch;

fn js_err(e: wasm_bindgen::JsValue) -> FetchError {
    FetchError(format!("{e:?}"))
}

impl JwksFetcher for GlobalFetch {
    async fn fetch_jwks(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        let fetch = js_sys::Reflect::get(&js_sys::global(), &"fetch".into()).map_err(js_err)?;
        let fetch: js_sys::Function = fetch
            .dyn_into()
            .map_err(|_| FetchError("no global fetch".into()))?;
        let promise: js_sys::Promise = fetch
            .call1(&js_sys::global(), &url.into())
            .map_err(js_err)?
            .unchecked_into();
        let response: web_sys::Response = JsFuture::from(promise)
            .await
            .map_err(js_err)?
            .unchecked_into();
        if response.status() != 200 {
            return Err(FetchError(format!("HTTP {}", response.status())));
        }
        let buffer = JsFuture::from(response.array_buffer().map_err(js_err)?)
            .await
            .map_err(js_err)?;
        Ok(js_sys::Uint8Array::new(&buffer).to_vec())
    }
}
