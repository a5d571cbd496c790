//! [`Mailer`] over a `[[send_email]]` binding of Cloudflare's Email Service:
//! `env[binding].send({from, to, subject, text, html})`, which builds the multipart message
//! (one plain-text and one HTML part) itself. Under `wrangler dev` the binding writes the two
//! parts to temporary files and logs their paths (see README, "Sign in by email").

use super::js;
use crate::platform::{Mail, MailError, Mailer};
use wasm_bindgen::{JsCast, JsValue};

/// The `send_email` bindings of this Worker's environment.
pub struct WorkerMailer(pub worker::Env);

impl Mailer for WorkerMailer {
    async fn send(&self, binding: &str, mail: &Mail) -> Result<(), MailError> {
        let email = js::binding(&self.0, binding).map_err(MailError::NoBinding)?;
        let s = |v: &str| JsValue::from_str(v);
        let message = js::object(&[
            ("from", s(&mail.from)),
            ("to", s(&mail.to)),
            ("subject", s(&mail.subject)),
            ("text", s(&mail.text)),
            ("html", s(&mail.html)),
        ]);
        // `Reflect.apply`, not `send.apply(…)`: the binding is an RPC stub, on which any
        // property — `apply` too — names a remote method.
        let refused = |e: JsValue| MailError::Refused(js::js_message(&e));
        let send: js_sys::Function = js_sys::Reflect::get(&email, &s("send"))
            .map_err(refused)?
            .unchecked_into();
        let args = js_sys::Array::of1(&message);
        let sent = js_sys::Reflect::apply(&send, &email, &args).map_err(refused)?;
        wasm_bindgen_futures::JsFuture::from(js_sys::Promise::resolve(&sent))
            .await
            .map(|_| ())
            .map_err(refused)
    }
}
