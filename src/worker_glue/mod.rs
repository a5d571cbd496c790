//! The Worker adapter (wasm32 only): the fetch and scheduled entry points, the conversion
//! between `worker` requests/responses and [`crate::http`], the per-isolate configuration
//! and caches, and the [`Platform`] made of D1, KV, `fetch`, WebCrypto and `send_email`. No domain logic
//! lives here.

mod d1;
mod d1_oauth;
mod fetch;
mod js;
mod kv;
mod limiter;
mod mail;
mod webcrypto;

use crate::config::{Config, EnvSource, EnvValue};
use crate::error::AppError;
use crate::http::{Method, Request, Response, MAX_BODY_BYTES, READ_HEADERS};
use crate::jwt::remembered::Remembered;
use crate::platform::{Caches, Platform};
use std::cell::OnceCell;
use wasm_bindgen::JsValue;

thread_local! {
    /// Parsed once per isolate: settings do not change while an isolate lives.
    static CONFIG: OnceCell<&'static Result<Config, AppError>> = const { OnceCell::new() };
    static CACHES: &'static Caches = Box::leak(Box::default());
}

/// Settings straight from the `env` object: strings for vars and secrets, JSON for tables.
struct WorkerEnv<'a>(&'a worker::Env);

impl EnvSource for WorkerEnv<'_> {
    fn get(&self, name: &str) -> Option<EnvValue> {
        let v = js_sys::Reflect::get(self.0, &JsValue::from_str(name)).ok()?;
        if v.is_undefined() || v.is_null() {
            return None;
        }
        if let Some(s) = v.as_string() {
            return Some(EnvValue::Text(s));
        }
        let json = js_sys::JSON::stringify(&v).ok()?.as_string()?;
        serde_json::from_slice(json.as_bytes())
            .ok()
            .map(EnvValue::Json)
    }
}

fn config(env: &worker::Env) -> &'static Result<Config, AppError> {
    CONFIG.with(|c| {
        *c.get_or_init(|| {
            let parsed = Config::from_env(&WorkerEnv(env));
            if let Err(e) = &parsed {
                if let Some(line) = e.log_line() {
                    worker::console_error!("{line}");
                }
            }
            Box::leak(Box::new(parsed))
        })
    })
}

/// The runtime's services, made once per isolate (see [`platform`]).
pub struct WorkerPlatform {
    kv: kv::WorkerKv,
    users: d1::D1Users,
    limiter: limiter::WorkerLimiter,
    mailer: mail::WorkerMailer,
    http: fetch::WorkerFetch,
    sig: Remembered<'static, webcrypto::WebCrypto>,
    caches: &'static Caches,
}

impl Platform for WorkerPlatform {
    type Kv = kv::WorkerKv;
    type Users = d1::D1Users;
    type Http = fetch::WorkerFetch;
    type Sig = Remembered<'static, webcrypto::WebCrypto>;
    type Once = d1::D1Users;
    type Limits = limiter::WorkerLimiter;
    type Counts = d1::D1Users;
    type OAuth = d1::D1Users;
    type Mail = mail::WorkerMailer;
    fn kv(&self) -> &Self::Kv {
        &self.kv
    }
    fn mailer(&self) -> &Self::Mail {
        &self.mailer
    }
    fn oauth(&self) -> &Self::OAuth {
        &self.users
    }
    fn single_use(&self) -> &Self::Once {
        &self.users
    }
    fn limiter(&self) -> &Self::Limits {
        &self.limiter
    }
    fn counters(&self) -> &Self::Counts {
        &self.users
    }
    fn users(&self) -> &Self::Users {
        &self.users
    }
    fn http(&self) -> &Self::Http {
        &self.http
    }
    fn sig(&self) -> &Self::Sig {
        &self.sig
    }
    fn caches(&self) -> &Caches {
        self.caches
    }
    fn now(&self) -> i64 {
        (js_sys::Date::now() / 1000.0) as i64
    }
    fn log(&self, line: &str) {
        worker::console_log!("{line}");
    }
}

/// The rate limiting binding of login starts, callbacks and magic-link sends.
const RATE_LIMITER: &str = "RATE_LIMITER";

thread_local! {
    /// The platform of this isolate, once its bindings were found (a failure is not kept:
    /// it is rare, and logged on every request it fails).
    static PLATFORM: OnceCell<&'static WorkerPlatform> = const { OnceCell::new() };
}

/// The bindings are looked up once per isolate, like the configuration: the runtime hands
/// every request of an isolate the same `env`.
fn platform(env: &worker::Env) -> Result<&'static WorkerPlatform, AppError> {
    if let Some(p) = PLATFORM.with(|c| c.get().copied()) {
        return Ok(p);
    }
    let p: &'static WorkerPlatform = Box::leak(Box::new(platform_of(env)?));
    PLATFORM.with(|c| c.set(p).ok());
    Ok(p)
}

fn platform_of(env: &worker::Env) -> Result<WorkerPlatform, AppError> {
    let kv = js::binding(env, "SESSIONS").map_err(|problem| AppError::Config {
        setting: "SESSIONS (KV binding)".into(),
        problem,
    })?;
    let db = js::binding(env, "DB").map_err(|problem| AppError::Config {
        setting: "DB (D1 binding)".into(),
        problem,
    })?;
    let limiter = limiter::WorkerLimiter::from_env(env, RATE_LIMITER).map_err(|problem| {
        AppError::Config {
            setting: format!("{RATE_LIMITER} (rate limiting binding)"),
            problem,
        }
    })?;
    let caches: &'static Caches = CACHES.with(|c| *c);
    Ok(WorkerPlatform {
        kv: kv::WorkerKv(kv),
        users: d1::D1Users(db),
        limiter,
        mailer: mail::WorkerMailer(env.clone()),
        http: fetch::WorkerFetch,
        sig: Remembered {
            inner: webcrypto::WebCrypto,
            seen: &caches.verified,
        },
        caches,
    })
}

/// Reads the body into `head` for methods that carry one, within [`MAX_BODY_BYTES`].
async fn with_body(req: &web_sys::Request, mut head: Request) -> Result<Request, AppError> {
    if matches!(head.method, Method::Get | Method::Head) {
        return Ok(head);
    }
    let declared = head
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok());
    if declared.unwrap_or(0) > MAX_BODY_BYTES {
        return Err(AppError::PayloadTooLarge);
    }
    if let Some(stream) = req.body() {
        head.body = read_at_most(&stream, MAX_BODY_BYTES).await?;
    }
    Ok(head)
}

/// The body, chunk by chunk, refused (413) as soon as it passes `limit`: a chunked body
/// declares no length, and reading it whole first (`arrayBuffer()`) would hold up to the
/// runtime's 100 MB request limit in the isolate's memory before it could be refused.
async fn read_at_most(stream: &web_sys::ReadableStream, limit: usize) -> Result<Vec<u8>, AppError> {
    use wasm_bindgen::JsCast;
    let unreadable = |_| AppError::BadRequest("The request body could not be read.".into());
    let reader: web_sys::ReadableStreamDefaultReader = stream.get_reader().unchecked_into();
    let mut body = Vec::new();
    loop {
        let step = wasm_bindgen_futures::JsFuture::from(reader.read())
            .await
            .map_err(unreadable)?;
        let field = |name: &str| js_sys::Reflect::get(&step, &JsValue::from_str(name));
        if field("done").map_err(unreadable)?.is_truthy() {
            return Ok(body);
        }
        let chunk: js_sys::Uint8Array = field("value").map_err(unreadable)?.unchecked_into();
        let at = body.len();
        if at + chunk.length() as usize > limit {
            // Tell the sender to stop; the answer does not wait for it.
            let _ = reader.cancel();
            return Err(AppError::PayloadTooLarge);
        }
        body.resize(at + chunk.length() as usize, 0);
        chunk.copy_to(&mut body[at..]);
    }
}

/// Our response as the runtime's: one copy of the body into JavaScript, none of the headers.
fn to_web_response(r: Response) -> Result<web_sys::Response, JsValue> {
    let headers = web_sys::Headers::new()?;
    for (k, v) in &r.headers {
        headers.append(k, v)?;
    }
    let init = web_sys::ResponseInit::new();
    init.set_status(r.status);
    init.set_headers(&headers);
    let mut body = r.body;
    let body = (!body.is_empty()).then_some(body.as_mut_slice());
    web_sys::Response::new_with_opt_u8_array_and_init(body, &init)
}

/// The request line alone: enough to route (the URL is parsed once, here).
fn line_of(req: &web_sys::Request) -> Result<Request, AppError> {
    let url =
        url::Url::parse(&req.url()).map_err(|e| AppError::BadRequest(format!("Bad URL: {e}")))?;
    Ok(Request {
        method: Method::parse(&req.method()),
        url,
        headers: Vec::new(),
        body: Vec::new(),
    })
}

/// The headers the core may read: every one in proxy mode (it must see every name to strip
/// the ones it does not forward), else only [`READ_HEADERS`] (a browser sends a dozen more
/// that Gatehouse's own routes never look at: their values are not converted). The runtime
/// lower-cases the names.
fn read_headers(req: &web_sys::Request, head: &mut Request, every: bool) {
    if let Ok(Some(entries)) = js_sys::try_iter(&req.headers()) {
        for pair in entries.flatten() {
            let pair = js_sys::Array::from(&pair);
            let Some(name) = pair.get(0).as_string() else {
                continue;
            };
            if every || READ_HEADERS.contains(&name.as_str()) {
                if let Some(value) = pair.get(1).as_string() {
                    head.headers.push((name, value));
                }
            }
        }
    }
}

fn origin_down(e: impl std::fmt::Display) -> AppError {
    AppError::ProviderUnavailable {
        provider: "The origin".into(),
        reason: format!("proxy: {e}"),
    }
}

/// What the fetch entry hands the runtime.
enum Answer {
    /// An answer made here.
    Now(web_sys::Response),
    /// The origin's answer, on its way (proxy mode): the runtime awaits it itself.
    Later(js_sys::Promise),
}

impl Answer {
    fn now(r: Response) -> Result<Answer, JsValue> {
        to_web_response(r).map(Answer::Now)
    }
}

#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    /// A promise seen through [`Pending::catch_with`] alone.
    #[wasm_bindgen(extends = js_sys::Promise)]
    type Pending;
    /// `promise.catch(onRejected)`, the handler's return value becoming the promise's value
    /// (js-sys binds only handlers that return nothing).
    #[wasm_bindgen(method, js_name = catch)]
    fn catch_with(this: &Pending, on_rejected: &js_sys::Function) -> js_sys::Promise;
}

/// The handler turning a failed origin `fetch` into the 502 page, in the format `wants`: one
/// function per format for the isolate's life, not a closure per request.
fn origin_failed(wants: crate::http::Wants) -> js_sys::Function {
    use wasm_bindgen::closure::Closure;
    use wasm_bindgen::JsCast;
    thread_local! {
        static HANDLERS: [OnceCell<js_sys::Function>; 2] = const { [OnceCell::new(), OnceCell::new()] };
    }
    let slot = matches!(wants, crate::http::Wants::Html) as usize;
    HANDLERS.with(|h| {
        h[slot]
            .get_or_init(|| {
                let handle = move |e: JsValue| -> Result<JsValue, JsValue> {
                    let page = error_response(origin_down(js::js_message(&e)), wants);
                    to_web_response(page).map(JsValue::from)
                };
                Closure::<dyn FnMut(JsValue) -> Result<JsValue, JsValue>>::new(handle)
                    .into_js_value()
                    .unchecked_into()
            })
            .clone()
    })
}

/// Proxy mode: decide in the domain layer, then edit a copy of the runtime's own headers as
/// decided and stream the request body to the origin. The origin's answer goes back as it is,
/// the runtime awaiting it (nothing of ours runs when it arrives), unless a renewed access
/// cookie must join it.
async fn forward(
    cfg: &Config,
    p: &WorkerPlatform,
    req: &web_sys::Request,
    head: &Request,
) -> Result<Answer, AppError> {
    use crate::app::proxy::{decide, Decision, HeaderChange};
    let js = |e: JsValue| origin_down(js::js_message(&e));
    let (url, changes, set_cookies) = match decide(&crate::app::Ctx { cfg, p }, head).await? {
        Decision::Respond(r) => return Answer::now(r).map_err(js),
        Decision::Forward {
            url,
            changes,
            set_cookies,
        } => (url, changes, set_cookies),
    };
    // The incoming request, copied by the runtime for the origin's URL (the constructor takes
    // a request as its init, as a JavaScript proxy passes it): its method, headers, body
    // stream and redirect mode, `manual` for an incoming request. The copy's headers, unlike
    // the incoming request's, are ours to edit.
    let as_init: &web_sys::RequestInit = wasm_bindgen::JsCast::unchecked_ref(req);
    let outbound = web_sys::Request::new_with_str_and_init(&url, as_init).map_err(js)?;
    let out_headers = outbound.headers();
    for change in &changes {
        match change {
            HeaderChange::Remove(k) => out_headers.delete(k),
            HeaderChange::Append(k, v) => out_headers.append(k, v),
        }
        // The runtime names the header and why (a value it refuses: e.g. a control character).
        .map_err(|e| AppError::BadRequest(js::js_message(&e)))?;
    }
    if set_cookies.is_empty() {
        use wasm_bindgen::JsCast;
        let pending = fetch::start(&outbound);
        let pending: &Pending = pending.unchecked_ref();
        return Ok(Answer::Later(
            pending.catch_with(&origin_failed(head.wants())),
        ));
    }
    let resp = fetch::fetch(&outbound).await.map_err(js)?;
    // The fetched response's headers are immutable: a new response over the same body stream
    // takes a mutable copy of them (made by the runtime, not here) that our cookie joins.
    let back = web_sys::ResponseInit::new();
    back.set_status(resp.status());
    back.set_status_text(&resp.status_text());
    back.set_headers(&resp.headers());
    let out = web_sys::Response::new_with_opt_readable_stream_and_init(resp.body().as_ref(), &back)
        .map_err(js)?;
    for c in &set_cookies {
        out.headers().append("set-cookie", c).map_err(js)?;
    }
    Ok(Answer::Now(out))
}

/// Content negotiation when the request could not even be read.
fn wants_of(req: &web_sys::Request) -> crate::http::Wants {
    let accept = req
        .headers()
        .get("accept")
        .ok()
        .flatten()
        .unwrap_or_default();
    if accept.contains("text/html") {
        crate::http::Wants::Html
    } else {
        crate::http::Wants::Json
    }
}

fn error_response(e: AppError, wants: crate::http::Wants) -> Response {
    if let Some(line) = e.log_line() {
        worker::console_error!("{line}");
    }
    e.into_response(wants)
}

/// Routes on the request line first: `/healthz` reads no header, proxied paths never have
/// their body read here, and Gatehouse's own routes read only the headers they use and the
/// body only for methods that carry one.
async fn answer(req: &web_sys::Request, env: &worker::Env) -> Result<Answer, JsValue> {
    let mut head = match line_of(req) {
        Ok(head) => head,
        Err(e) => return Answer::now(error_response(e, wants_of(req))),
    };
    let cfg = config(env);
    let proxied = matches!(cfg, Ok(c) if c.origin_url.is_some())
        && !crate::app::proxy::is_own_path(head.path());
    let bare_liveness =
        head.path() == "/healthz" && matches!(head.method, Method::Get | Method::Head);
    if !bare_liveness {
        read_headers(req, &mut head, proxied);
    }
    // `/healthz` touches no binding or storage (a refused method answers in the format asked for).
    if let Some(resp) = crate::app::liveness(&head) {
        return Answer::now(resp);
    }
    let wants = head.wants();
    let p = match platform(env) {
        Ok(p) => p,
        Err(e) => return Answer::now(error_response(e, wants)),
    };
    if let (true, Ok(cfg)) = (proxied, cfg) {
        return match forward(cfg, p, req, &head).await {
            Ok(answer) => Ok(answer),
            Err(e) => Answer::now(error_response(e, wants)),
        };
    }
    Answer::now(match with_body(req, head).await {
        Ok(head) => crate::app::handle(cfg.as_ref(), p, head).await,
        Err(e) => error_response(e, wants),
    })
}

/// The fetch entry point, exported to the runtime directly (what `#[worker::event(fetch)]`
/// would generate, without its error path: that converts a `worker::Error` into a
/// `worker::Response` and links the crate's error formatting, its router's messages and its
/// body streams, about 3 KB gzip we never use). On the runtime's own request and response
/// types: the `worker` crate's wrappers would convert both on every request for nothing we
/// use.
///
/// Not an `async fn`: a request that awaits nothing (most do, see [`crate::eager`]) is answered
/// before this returns, with no promise, task or microtask of the async executor; one that
/// waits is handed to the executor as a promise. A proxied request returns the origin's own
/// promise. An `Err` rejects; the runtime answers 500 and logs it.
mod _worker_fetch {
    use crate::eager::{start, Started};
    use wasm_bindgen::prelude::wasm_bindgen;
    use wasm_bindgen::JsValue;

    #[wasm_bindgen]
    pub fn fetch(
        req: web_sys::Request,
        env: worker::Env,
        _ctx: worker::worker_sys::Context,
    ) -> JsValue {
        let answered = async move {
            super::answer(&req, &env).await.map(|a| match a {
                super::Answer::Now(r) => JsValue::from(r),
                super::Answer::Later(p) => JsValue::from(p),
            })
        };
        match start(answered) {
            Started::Done(Ok(value)) => value,
            Started::Done(Err(e)) => js_sys::Promise::reject(&e).into(),
            Started::Waiting(rest) => wasm_bindgen_futures::future_to_promise(rest).into(),
        }
    }
}

/// The cron trigger (`[triggers] crons` in wrangler.toml): prunes audit events older than
/// [`crate::audit::RETENTION_SECONDS`] and the rows that are of no use once expired (each of
/// [`crate::audit::Pruned::ALL`]). Failures are logged; the next run tries again. It also
/// logs the size of the isolate's wasm linear memory, which only ever grows: the soak
/// (`bench/soak.mjs`) reads it to show the heap flat.
#[worker::event(scheduled)]
async fn scheduled(
    _event: worker::ScheduledEvent,
    env: worker::Env,
    _ctx: worker::ScheduleContext,
) {
    let p = match platform(&env) {
        Ok(p) => p,
        Err(e) => {
            if let Some(line) = e.log_line() {
                worker::console_error!("{line}");
            }
            return;
        }
    };
    let now = p.now();
    for what in crate::audit::Pruned::ALL {
        let name = what.name();
        match crate::audit::prune(p.users(), what, now).await {
            Ok(n) => worker::console_log!("gatehouse: pruned {n} {name}"),
            Err(e) => worker::console_error!("gatehouse: pruning {name} failed: {}", e.0),
        }
    }
    let pages = core::arch::wasm32::memory_size(0);
    worker::console_log!("gatehouse: wasm memory {} bytes", pages * 65536);
}
