//! Remembered signature checks: a [`Signatures`] wrapper that answers a verify it has already
//! seen succeed from a per-isolate set instead of asking the backend again. A browser sends
//! the same access token with every request for the token's lifetime, and one verify through
//! WebCrypto costs more than all the rest of such a request. A signature check is a pure
//! function of (algorithm, key, message, signature), so remembering a success changes no
//! answer: the claims (expiry, issuer, audience) are still checked on every request. Only
//! successes are kept, as the SHA-256 of all four, so a changed token or key never matches
//! and memory stays bounded; the set is emptied when it is full.

use super::jwk::PublicJwk;
use super::keys::SigningKey;
use super::Alg;
use crate::jwt::Signatures;
use sha2::{Digest, Sha256};
use std::cell::RefCell;

/// How many successful checks are remembered by default (32 bytes each).
pub const CAPACITY: usize = 4096;

/// The digests of remembered successes; lives as long as the isolate.
pub struct VerifiedSet {
    /// Sorted, for a binary search: less wasm than a hash set, as fast at this size.
    digests: RefCell<Vec<[u8; 32]>>,
    capacity: usize,
}

impl Default for VerifiedSet {
    fn default() -> Self {
        VerifiedSet::with_capacity(CAPACITY)
    }
}

impl VerifiedSet {
    /// A set that is emptied once it holds `capacity` digests.
    pub fn with_capacity(capacity: usize) -> Self {
        VerifiedSet {
            digests: RefCell::default(),
            capacity,
        }
    }

    /// How many successes are remembered now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.digests.borrow().len()
    }
}

/// `inner`, with the successes it reports remembered in `seen`.
pub struct Remembered<'a, S> {
    pub inner: S,
    pub seen: &'a VerifiedSet,
}

/// One unambiguous digest of a check: every part is length-prefixed, and hashed as it comes
/// (no copy of the token on the hot path).
fn digest(key: &PublicJwk, alg: Alg, msg: &[u8], sig: &[u8]) -> Option<[u8; 32]> {
    let key = serde_json::to_vec(key).ok()?;
    let mut h = Sha256::new();
    for part in [alg.name().as_bytes(), &key, msg, sig] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    Some(h.finalize().into())
}

impl<S: Signatures> Signatures for Remembered<'_, S> {
    async fn verify(
        &self,
        key: &PublicJwk,
        alg: Alg,
        msg: &[u8],
        sig: &[u8],
    ) -> Result<bool, String> {
        let d = digest(key, alg, msg, sig);
        if let Some(d) = &d {
            if self.seen.digests.borrow().binary_search(d).is_ok() {
                return Ok(true);
            }
        }
        let verdict = self.inner.verify(key, alg, msg, sig).await;
        if let (Ok(true), Some(d)) = (&verdict, d) {
            let mut seen = self.seen.digests.borrow_mut();
            if seen.len() >= self.seen.capacity {
                seen.clear();
            }
            if let Err(at) = seen.binary_search(&d) {
                seen.insert(at, d);
            }
        }
        verdict
    }

    async fn sign(&self, key: &SigningKey, msg: &[u8]) -> Result<Vec<u8>, String> {
        self.inner.sign(key, msg).await
    }

    /// Not remembered: a passkey's signature covers a single-use challenge, so the same one
    /// is never good twice, and its key is not kept either.
    async fn verify_uncached(
        &self,
        key: &PublicJwk,
        alg: Alg,
        msg: &[u8],
        sig: &[u8],
    ) -> Result<bool, String> {
        self.inner.verify_uncached(key, alg, msg, sig).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::native::NativeSignatures;
    use crate::testing::{block_on, test_config, test_key_2};
    use std::cell::Cell;

    /// Native signatures that count how often the backend is really asked.
    #[derive(Default)]
    struct Counting {
        verifies: Cell<usize>,
    }

    impl Signatures for Counting {
        async fn verify(
            &self,
            key: &PublicJwk,
            alg: Alg,
            msg: &[u8],
            sig: &[u8],
        ) -> Result<bool, String> {
            self.verifies.set(self.verifies.get() + 1);
            NativeSignatures.verify(key, alg, msg, sig).await
        }
        async fn sign(&self, key: &SigningKey, msg: &[u8]) -> Result<Vec<u8>, String> {
            NativeSignatures.sign(key, msg).await
        }
    }

    fn signed(key: &SigningKey, msg: &[u8]) -> Vec<u8> {
        block_on(NativeSignatures.sign(key, msg)).unwrap()
    }

    #[test]
    fn a_success_is_remembered_and_nothing_else() {
        let key = test_config().active_key().clone();
        let seen = VerifiedSet::default();
        let r = Remembered {
            inner: Counting::default(),
            seen: &seen,
        };
        let sig = signed(&key, b"message");
        let check = |msg: &[u8], sig: &[u8], k: &PublicJwk| {
            block_on(r.verify(k, Alg::EdDsa, msg, sig)).unwrap()
        };
        assert!(check(b"message", &sig, &key.public));
        assert!(check(b"message", &sig, &key.public));
        assert_eq!(r.inner.verifies.get(), 1, "the second check is remembered");

        // Anything changed is asked again, and a failure is never remembered.
        assert!(!check(b"messagf", &sig, &key.public));
        assert!(!check(b"messagf", &sig, &key.public));
        let mut bad = sig.clone();
        bad[0] ^= 1;
        assert!(!check(b"message", &bad, &key.public));
        assert!(!check(b"message", &sig, &test_key_2().public));
        assert_eq!(r.inner.verifies.get(), 5);
        assert_eq!(seen.len(), 1);
    }

    #[test]
    fn a_full_set_is_emptied_not_grown() {
        let key = test_config().active_key().clone();
        let seen = VerifiedSet::with_capacity(8);
        let r = Remembered {
            inner: NativeSignatures,
            seen: &seen,
        };
        for i in 0..=8usize {
            let msg = i.to_be_bytes();
            let sig = signed(&key, &msg);
            assert!(block_on(r.verify(&key.public, Alg::EdDsa, &msg, &sig)).unwrap());
        }
        assert_eq!(seen.len(), 1, "emptied at capacity, then the newest kept");
    }
}
