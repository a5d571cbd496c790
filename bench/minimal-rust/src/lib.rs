//! The smallest useful workers-rs Worker: one bare route answering like Gatehouse's
//! `/healthz` (200, a small JSON body), 404 elsewhere.

use worker::{event, Context, Env, Request, Response, Result};

#[event(fetch)]
async fn fetch(req: Request, _env: Env, _ctx: Context) -> Result<Response> {
    if req.path() == "/healthz" {
        let mut r = Response::ok("{\"status\":\"ok\"}")?;
        r.headers_mut().set("content-type", "application/json")?;
        Ok(r)
    } else {
        Ok(Response::empty()?.with_status(404))
    }
}
