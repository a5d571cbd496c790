//! Signatures inside a Worker: the runtime's WebCrypto (`crypto.subtle`), Ed25519.

use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{CryptoKey, SubtleCrypto};

/// An imported public key.
pub type PublicKey = CryptoKey;

fn subtle() -> Result<SubtleCrypto, String> {
    let crypto =
        js_sys::Reflect::get(&js_sys::global(), &"crypto".into()).map_err(|_| "no crypto")?;
    Ok(js_sys::Reflect::get(&crypto, &"subtle".into())
        .map_err(|_| "no crypto.subtle")?
        .unchecked_into())
}

fn ed25519() -> js_sys::Object {
    let o = js_sys::Object::new();
    // Setting a property on a fresh plain object cannot fail.
    let _ = js_sys::Reflect::set(&o, &"name".into(), &"Ed25519".into());
    o
}

fn js_err(e: JsValue) -> String {
    e.as_string()
        .or_else(|| js_sys::JSON::stringify(&e).ok().and_then(|s| s.as_string()))
        .unwrap_or_else(|| "WebCrypto error".into())
}

/// Imports an Ed25519 public JWK (once per key: the verifier keeps it).
pub async fn import(jwk: &serde_json::Value) -> Result<PublicKey, String> {
    let mut jwk = jwk.clone();
    if let Some(o) = jwk.as_object_mut() {
        // WebCrypto checks `alg`/`use` against the import itself; the verifier already did.
        for field in ["alg", "use", "kid"] {
            o.remove(field);
        }
    }
    let object: js_sys::Object = js_sys::JSON::parse(&jwk.to_string())
        .map_err(js_err)?
        .unchecked_into();
    let usages = js_sys::Array::of1(&JsValue::from_str("verify"));
    let promise = subtle()?
        .import_key_with_object("jwk", &object, &ed25519(), false, &usages)
        .map_err(js_err)?;
    Ok(JsFuture::from(promise)
        .await
        .map_err(js_err)?
        .unchecked_into())
}

/// Whether `signature` over `signed` (the token's `header.claims`) verifies with `key`.
pub async fn verify(key: &PublicKey, _token: &str, signed: &[u8], signature: &[u8]) -> bool {
    let Ok(subtle) = subtle() else { return false };
    let Ok(promise) =
        subtle.verify_with_object_and_u8_array_and_u8_array(&ed25519(), key, signature, signed)
    else {
        return false;
    };
    JsFuture::from(promise)
        .await
        .ok()
        .and_then(|v| v.as_bool())
        .unwrap_or(false)
}
