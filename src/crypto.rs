//! Small cryptographic helpers shared by every module: randomness (the OS / runtime CSPRNG
//! through `getrandom`), SHA-256, HMAC-SHA-256, constant-time comparison, base64url, and the
//! [`Secret`] newtype whose `Debug` never prints the value.

use crate::b64::{Base64Error, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A secret string (client secret, API key, state key). `Debug` prints `[redacted]`.
/// Deliberately not `PartialEq`: a secret is compared only through [`Secret::matches`]
/// (constant time), never with `==`; the test command refuses `==` on an exposed secret.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// The value, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Constant-time comparison with a presented value.
    pub fn matches(&self, presented: &str) -> bool {
        ct_eq(self.0.as_bytes(), presented.as_bytes())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// `n` random bytes from the platform CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // The runtime CSPRNG does not fail in practice; if it ever did, a zero buffer would be a
    // disaster, so refuse to continue rather than hand out predictable ids.
    if getrandom::fill(&mut buf).is_err() {
        panic!("no CSPRNG available");
    }
    buf
}

/// A 256-bit random token, base64url.
pub fn random_token() -> String {
    b64url(&random_bytes::<32>())
}

pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn b64url_decode(s: &str) -> Result<Vec<u8>, Base64Error> {
    URL_SAFE_NO_PAD.decode(s)
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// SHA-256 as base64url (PKCE S256 challenge, storage keys of hashed ids).
pub fn sha256_b64url(data: &[u8]) -> String {
    b64url(&sha256(data))
}

pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// Compares two byte strings in time independent of where they differ.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_debug_is_redacted() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert!(s.matches("hunter2"));
        assert!(!s.matches("hunter3"));
        assert!(!s.matches("hunter"));
    }

    /// `Secret` must not be `PartialEq`: a plain `==` on secrets would compile and compare in
    /// time that depends on the first differing byte. With the derive back, the two
    /// implementations below both apply and this does not compile.
    #[test]
    fn secret_has_no_equality_operator() {
        trait AmbiguousIfPartialEq<A> {
            fn check() {}
        }
        impl<T: ?Sized> AmbiguousIfPartialEq<()> for T {}
        impl<T: ?Sized + PartialEq> AmbiguousIfPartialEq<u8> for T {}
        <Secret as AmbiguousIfPartialEq<_>>::check();
    }

    #[test]
    fn ct_eq_is_equality_of_bytes_and_lengths() {
        assert!(ct_eq(b"", b""));
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"xbc"));
        assert!(!ct_eq(b"abc", b"ab"), "a prefix is not equal");
        assert!(!ct_eq(b"ab", b"abc"));
    }

    #[test]
    fn pkce_s256_matches_rfc7636_appendix_b() {
        assert_eq!(
            sha256_b64url(b"dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn tokens_are_random_and_256_bits() {
        let a = random_token();
        assert_eq!(b64url_decode(&a).unwrap().len(), 32);
        assert_ne!(a, random_token());
    }
}
