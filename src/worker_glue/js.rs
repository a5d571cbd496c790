//! Small helpers for calling the runtime's JavaScript objects directly, where the `worker`
//! crate's wrappers would bring serializers and option structs we do not use.

use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// `this[name](...args)`.
pub fn call(this: &Object, name: &str, args: &[JsValue]) -> Result<JsValue, JsValue> {
    let f: Function = Reflect::get(this, &JsValue::from_str(name))?.dyn_into()?;
    let args: js_sys::Array = args.iter().collect();
    f.apply(this, &args)
}

/// `this[name](...args)`, awaited if it returns a promise.
pub async fn call_method(this: &Object, name: &str, args: &[JsValue]) -> Result<JsValue, JsValue> {
    let out = call(this, name, args)?;
    match out.dyn_into::<Promise>() {
        Ok(p) => JsFuture::from(p).await,
        Err(v) => Ok(v),
    }
}

/// A plain object `{ key: value, ... }`.
pub fn object(fields: &[(&str, JsValue)]) -> Object {
    let o = Object::new();
    for (k, v) in fields {
        // Setting a property on a fresh plain object cannot fail.
        let _ = Reflect::set(&o, &JsValue::from_str(k), v);
    }
    o
}

/// The text of a thrown JavaScript value: an `Error`'s message, a string as is.
pub fn js_message(e: &JsValue) -> String {
    if let Some(s) = e.as_string() {
        return s;
    }
    match e.dyn_ref::<js_sys::Error>() {
        Some(err) => String::from(err.message()),
        None => "unknown JavaScript error".into(),
    }
}

/// `env[name]` as an object, or why not.
pub fn binding(env: &worker::Env, name: &str) -> Result<Object, String> {
    let v = Reflect::get(env, &JsValue::from_str(name)).map_err(|e| js_message(&e))?;
    if v.is_undefined() || v.is_null() {
        return Err(format!("Binding `{name}` is undefined."));
    }
    v.dyn_into()
        .map_err(|_| format!("Binding `{name}` is not an object."))
}
