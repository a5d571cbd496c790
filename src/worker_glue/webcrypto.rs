//! [`Signatures`] through the runtime's WebCrypto (`crypto.subtle`): Ed25519, ECDSA P-256
//! and RSASSA-PKCS1-v1_5 in native code, several times faster than pure-Rust crypto in wasm.
//! Each `CryptoKey` is imported once per isolate and kept.

use crate::jwt::jwk::PublicJwk;
use crate::jwt::keys::SigningKey;
use crate::jwt::Alg;
use crate::platform::Signatures;
use std::cell::RefCell;
use std::collections::HashMap;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{CryptoKey, SubtleCrypto};

thread_local! {
    static KEYS: RefCell<HashMap<String, CryptoKey>> = RefCell::new(HashMap::new());
}

pub struct WebCrypto;

fn subtle() -> Result<SubtleCrypto, String> {
    let crypto =
        js_sys::Reflect::get(&js_sys::global(), &"crypto".into()).map_err(|_| "no crypto")?;
    let subtle = js_sys::Reflect::get(&crypto, &"subtle".into()).map_err(|_| "no crypto.subtle")?;
    Ok(subtle.unchecked_into())
}

fn js_err(e: JsValue) -> String {
    e.as_string()
        .or_else(|| js_sys::JSON::stringify(&e).ok().and_then(|s| s.as_string()))
        .unwrap_or_else(|| "WebCrypto error".into())
}

fn object(v: &serde_json::Value) -> Result<js_sys::Object, String> {
    js_sys::JSON::parse(&v.to_string())
        .map_err(js_err)?
        .dyn_into::<js_sys::Object>()
        .map_err(|_| "not an object".into())
}

/// (import algorithm, sign/verify algorithm) for each JWS algorithm.
fn algorithms(alg: Alg) -> (serde_json::Value, serde_json::Value) {
    match alg {
        Alg::EdDsa => (
            serde_json::json!({"name": "Ed25519"}),
            serde_json::json!({"name": "Ed25519"}),
        ),
        Alg::Es256 => (
            serde_json::json!({"name": "ECDSA", "namedCurve": "P-256"}),
            serde_json::json!({"name": "ECDSA", "hash": "SHA-256"}),
        ),
        Alg::Rs256 => (
            serde_json::json!({"name": "RSASSA-PKCS1-v1_5", "hash": "SHA-256"}),
            serde_json::json!({"name": "RSASSA-PKCS1-v1_5"}),
        ),
    }
}

async fn import(
    cache_key: String,
    jwk: serde_json::Value,
    alg: Alg,
    usage: &str,
) -> Result<CryptoKey, String> {
    if let Some(k) = KEYS.with(|m| m.borrow().get(&cache_key).cloned()) {
        return Ok(k);
    }
    let (import_alg, _) = algorithms(alg);
    let usages = js_sys::Array::of1(&JsValue::from_str(usage));
    let promise = subtle()?
        .import_key_with_object("jwk", &object(&jwk)?, &object(&import_alg)?, false, &usages)
        .map_err(js_err)?;
    let key: CryptoKey = JsFuture::from(promise)
        .await
        .map_err(js_err)?
        .unchecked_into();
    KEYS.with(|m| m.borrow_mut().insert(cache_key, key.clone()));
    Ok(key)
}

impl Signatures for WebCrypto {
    async fn verify(
        &self,
        key: &PublicJwk,
        alg: Alg,
        msg: &[u8],
        sig: &[u8],
    ) -> Result<bool, String> {
        let mut jwk = serde_json::to_value(key).map_err(|e| e.to_string())?;
        if let Some(o) = jwk.as_object_mut() {
            // WebCrypto checks `alg`/`use` against the import; we already did.
            o.remove("alg");
            o.remove("use");
            o.remove("kid");
        }
        let crypto_key = import(
            format!("v:{}:{}", alg.name(), key.thumbprint()),
            jwk,
            alg,
            "verify",
        )
        .await?;
        let (_, verify_alg) = algorithms(alg);
        let promise = subtle()?
            .verify_with_object_and_u8_array_and_u8_array(
                &object(&verify_alg)?,
                &crypto_key,
                sig,
                msg,
            )
            .map_err(js_err)?;
        Ok(JsFuture::from(promise)
            .await
            .map_err(js_err)?
            .as_bool()
            .unwrap_or(false))
    }

    async fn sign(&self, key: &SigningKey, msg: &[u8]) -> Result<Vec<u8>, String> {
        let crypto_key = import(
            format!("s:{}", key.kid),
            key.private_jwk(),
            Alg::EdDsa,
            "sign",
        )
        .await?;
        let (_, sign_alg) = algorithms(Alg::EdDsa);
        let promise = subtle()?
            .sign_with_object_and_u8_array(&object(&sign_alg)?, &crypto_key, msg)
            .map_err(js_err)?;
        let buf = JsFuture::from(promise).await.map_err(js_err)?;
        Ok(js_sys::Uint8Array::new(&buf).to_vec())
    }
}
