//! [`HttpClient`] over the runtime's `fetch`, with a timeout that aborts the request. Built on
//! `web-sys` directly: the `worker` crate's `RequestInit` conversion carries the whole `cf`
//! options table (image resizing and more) into the bundle.

use super::js::js_message;
use crate::platform::{FetchError, HttpClient, Inbound, Outbound};
use futures_util::future::{select, Either};
use std::time::Duration;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

pub struct WorkerFetch;

fn net(e: JsValue) -> FetchError {
    FetchError::Network(js_message(&e))
}

/// A request init with manual redirects: Gatehouse never follows a redirect blindly.
fn init(method: &str, headers: &web_sys::Headers) -> web_sys::RequestInit {
    let init = web_sys::RequestInit::new();
    init.set_method(method);
    init.set_headers(headers);
    init.set_redirect(web_sys::RequestRedirect::Manual);
    init
}

/// The runtime's global `fetch`, started: its promise of a `Response`.
pub fn start(req: &web_sys::Request) -> js_sys::Promise {
    let global: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
    global.fetch_with_request(req)
}

/// The runtime's global `fetch`, awaited.
pub async fn fetch(req: &web_sys::Request) -> Result<web_sys::Response, JsValue> {
    JsFuture::from(start(req)).await?.dyn_into()
}

impl HttpClient for WorkerFetch {
    async fn send(&self, req: Outbound) -> Result<Inbound, FetchError> {
        let headers = web_sys::Headers::new().map_err(net)?;
        for (k, v) in &req.headers {
            headers.append(k, v).map_err(net)?;
        }
        let init = init(req.method, &headers);
        if let Some(body) = &req.body {
            init.set_body(&js_sys::Uint8Array::from(body.as_slice()));
        }
        let controller = web_sys::AbortController::new().map_err(net)?;
        init.set_signal(Some(&controller.signal()));
        let request = web_sys::Request::new_with_str_and_init(&req.url, &init).map_err(net)?;
        let call = Box::pin(async move {
            let resp = fetch(&request).await?;
            let status = resp.status();
            let buf = JsFuture::from(resp.array_buffer()?).await?;
            Ok::<_, JsValue>(Inbound {
                status,
                body: js_sys::Uint8Array::new(&buf).to_vec(),
            })
        });
        let timer = Box::pin(worker::Delay::from(Duration::from_millis(
            req.timeout_ms as u64,
        )));
        match select(call, timer).await {
            Either::Left((result, _)) => result.map_err(net),
            Either::Right(_) => {
                controller.abort();
                Err(FetchError::Timeout)
            }
        }
    }
}
