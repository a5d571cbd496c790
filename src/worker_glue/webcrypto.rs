//! [`Signatures`] through the runtime's WebCrypto (`crypto.subtle`): Ed25519, ECDSA P-256
//! and RSASSA-PKCS1-v1_5 in native code, several times faster than pure-Rust crypto in wasm.
//! Each `CryptoKey` is imported once per isolate and kept, and so are the algorithm objects:
//! a verify on the hot path is one hash-map lookup and one `crypto.subtle.verify`.

use crate::jwt::jwk::PublicJwk;
use crate::jwt::keys::SigningKey;
use crate::jwt::Alg;
use crate::platform::Signatures;
use crate::small_map::SmallMap;
use std::cell::RefCell;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{CryptoKey, SubtleCrypto};

thread_local! {
    static VERIFY_KEYS: RefCell<SmallMap<(PublicJwk, Alg), CryptoKey>> = const { RefCell::new(SmallMap::new()) };
    static SIGN_KEYS: RefCell<SmallMap<String, CryptoKey>> = const { RefCell::new(SmallMap::new()) };
    static ALGORITHMS: RefCell<SmallMap<Alg, (js_sys::Object, js_sys::Object)>> = const { RefCell::new(SmallMap::new()) };
    static SUBTLE: RefCell<Option<SubtleCrypto>> = const { RefCell::new(None) };
}

pub struct WebCrypto;

fn subtle() -> Result<SubtleCrypto, String> {
    if let Some(s) = SUBTLE.with(|s| s.borrow().clone()) {
        return Ok(s);
    }
    let crypto =
        js_sys::Reflect::get(&js_sys::global(), &"crypto".into()).map_err(|_| "no crypto")?;
    let subtle: SubtleCrypto = js_sys::Reflect::get(&crypto, &"subtle".into())
        .map_err(|_| "no crypto.subtle")?
        .unchecked_into();
    SUBTLE.with(|s| *s.borrow_mut() = Some(subtle.clone()));
    Ok(subtle)
}

fn js_err(e: JsValue) -> String {
    e.as_string()
        .or_else(|| js_sys::JSON::stringify(&e).ok().and_then(|s| s.as_string()))
        .unwrap_or_else(|| "WebCrypto error".into())
}

fn object(v: &serde_json::Value) -> Result<js_sys::Object, String> {
    js_sys::JSON::parse(&crate::fields::json_text(v))
        .map_err(js_err)?
        .dyn_into::<js_sys::Object>()
        .map_err(|_| "not an object".into())
}

/// (import algorithm, sign/verify algorithm) objects for a JWS algorithm, built once.
fn algorithms(alg: Alg) -> Result<(js_sys::Object, js_sys::Object), String> {
    if let Some(pair) = ALGORITHMS.with(|m| m.borrow().get(&alg).cloned()) {
        return Ok(pair);
    }
    let (import, op) = match alg {
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
    };
    let pair = (object(&import)?, object(&op)?);
    ALGORITHMS.with(|m| m.borrow_mut().insert(alg, pair.clone()));
    Ok(pair)
}

async fn import(jwk: serde_json::Value, alg: Alg, usage: &str) -> Result<CryptoKey, String> {
    let (import_alg, _) = algorithms(alg)?;
    let usages = js_sys::Array::of1(&JsValue::from_str(usage));
    let promise = subtle()?
        .import_key_with_object("jwk", &object(&jwk)?, &import_alg, false, &usages)
        .map_err(js_err)?;
    Ok(JsFuture::from(promise)
        .await
        .map_err(js_err)?
        .unchecked_into())
}

async fn verify_key(key: &PublicJwk, alg: Alg) -> Result<CryptoKey, String> {
    let cache_key = (key.clone(), alg);
    if let Some(k) = VERIFY_KEYS.with(|m| m.borrow().get(&cache_key).cloned()) {
        return Ok(k);
    }
    let k = import_verify_key(key, alg).await?;
    VERIFY_KEYS.with(|m| m.borrow_mut().insert(cache_key, k.clone()));
    Ok(k)
}

async fn import_verify_key(key: &PublicJwk, alg: Alg) -> Result<CryptoKey, String> {
    let mut jwk = serde_json::to_value(key).map_err(|e| e.to_string())?;
    if let Some(o) = jwk.as_object_mut() {
        // WebCrypto checks `alg`/`use` against the import; Gatehouse already did.
        o.remove("alg");
        o.remove("use");
        o.remove("kid");
    }
    import(jwk, alg, "verify").await
}

async fn verify_with(
    crypto_key: &CryptoKey,
    alg: Alg,
    msg: &[u8],
    sig: &[u8],
) -> Result<bool, String> {
    let (_, op) = algorithms(alg)?;
    let promise = subtle()?
        .verify_with_object_and_u8_array_and_u8_array(&op, crypto_key, sig, msg)
        .map_err(js_err)?;
    Ok(JsFuture::from(promise)
        .await
        .map_err(js_err)?
        .as_bool()
        .unwrap_or(false))
}

impl Signatures for WebCrypto {
    async fn verify(
        &self,
        key: &PublicJwk,
        alg: Alg,
        msg: &[u8],
        sig: &[u8],
    ) -> Result<bool, String> {
        verify_with(&verify_key(key, alg).await?, alg, msg, sig).await
    }

    async fn verify_uncached(
        &self,
        key: &PublicJwk,
        alg: Alg,
        msg: &[u8],
        sig: &[u8],
    ) -> Result<bool, String> {
        verify_with(&import_verify_key(key, alg).await?, alg, msg, sig).await
    }

    async fn sign(&self, key: &SigningKey, msg: &[u8]) -> Result<Vec<u8>, String> {
        let cached = SIGN_KEYS.with(|m| m.borrow().get(&key.kid).cloned());
        let crypto_key = match cached {
            Some(k) => k,
            None => {
                let k = import(key.private_jwk(), key.alg(), "sign").await?;
                SIGN_KEYS.with(|m| m.borrow_mut().insert(key.kid.clone(), k.clone()));
                k
            }
        };
        let (_, op) = algorithms(key.alg())?;
        let promise = subtle()?
            .sign_with_object_and_u8_array(&op, &crypto_key, msg)
            .map_err(js_err)?;
        let buf = JsFuture::from(promise).await.map_err(js_err)?;
        Ok(js_sys::Uint8Array::new(&buf).to_vec())
    }
}
