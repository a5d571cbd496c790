//! [`HttpClient`] over the Workers fetch API, with a timeout that aborts the request.

use crate::platform::{FetchError, HttpClient, Inbound, Outbound};
use futures_util::future::{select, Either};
use std::time::Duration;

pub struct WorkerFetch;

impl HttpClient for WorkerFetch {
    async fn send(&self, req: Outbound) -> Result<Inbound, FetchError> {
        let net = |e: worker::Error| FetchError::Network(e.to_string());
        let headers = worker::Headers::new();
        for (k, v) in &req.headers {
            headers.append(k, v).map_err(net)?;
        }
        let mut init = worker::RequestInit::new();
        init.with_method(worker::Method::from(req.method.to_string()))
            .with_headers(headers)
            .with_redirect(worker::RequestRedirect::Manual);
        if let Some(body) = &req.body {
            init.with_body(Some(js_sys::Uint8Array::from(body.as_slice()).into()));
        }
        let request = worker::Request::new_with_init(&req.url, &init).map_err(net)?;
        let controller = worker::AbortController::default();
        let signal = controller.signal();
        let call = Box::pin(async move {
            let mut resp = worker::Fetch::Request(request)
                .send_with_signal(&signal)
                .await?;
            let status = resp.status_code();
            let body = resp.bytes().await?;
            Ok::<_, worker::Error>(Inbound { status, body })
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
