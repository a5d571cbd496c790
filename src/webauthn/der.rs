//! ECDSA signatures as WebAuthn sends them (ASN.1 DER `SEQUENCE { r INTEGER, s INTEGER }`)
//! turned into the 64-byte `r || s` that WebCrypto verifies. Strict: definite short lengths
//! only (a P-256 signature is at most 72 bytes), positive minimal integers, nothing after.

/// One DER INTEGER at the start of `b`, as 32 big-endian bytes, and what follows it.
fn integer(b: &[u8]) -> Option<([u8; 32], &[u8])> {
    let (&tag, rest) = b.split_first()?;
    let (&len, rest) = rest.split_first()?;
    let len = len as usize;
    if tag != 0x02 || len == 0 || len > 33 || rest.len() < len {
        return None;
    }
    let (mut v, after) = rest.split_at(len);
    // Negative, or a leading zero that is not needed for the sign: not DER.
    if v[0] & 0x80 != 0 || (v.len() > 1 && v[0] == 0 && v[1] & 0x80 == 0) {
        return None;
    }
    if v[0] == 0 && v.len() > 1 {
        v = &v[1..];
    }
    if v.len() > 32 {
        return None;
    }
    let mut out = [0u8; 32];
    out[32 - v.len()..].copy_from_slice(v);
    Some((out, after))
}

/// `r || s` of a DER-encoded P-256 ECDSA signature; `None` when it is not one.
pub fn ecdsa_p256_to_raw(sig: &[u8]) -> Option<Vec<u8>> {
    let (&tag, rest) = sig.split_first()?;
    let (&len, body) = rest.split_first()?;
    if tag != 0x30 || len >= 0x80 || len as usize != body.len() {
        return None;
    }
    let (r, after) = integer(body)?;
    let (s, after) = integer(after)?;
    if !after.is_empty() {
        return None;
    }
    let mut out = r.to_vec();
    out.extend_from_slice(&s);
    Some(out)
}
