//! Base64 (RFC 4648): the URL-safe alphabet without padding (tokens, JWTs, hashes) and the
//! standard one with canonical padding (HTTP Basic credentials). Decoding is strict, as the
//! `base64` crate's is: no whitespace, no stray padding, and the unused bits of the last
//! symbol must be zero, so each byte string has exactly one encoding. (Hand-written: the
//! crate's general engine cost the bundle about 2.5 KB gzip; the tests compare the two.)

/// A string that is not base64 in the expected form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Base64Error;

impl std::fmt::Display for Base64Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("invalid base64")
    }
}

/// The two alphabets differ only in their last two symbols.
#[derive(Clone, Copy)]
pub struct Alphabet {
    s62: u8,
    s63: u8,
    padded: bool,
}

/// `-` and `_`, no padding.
pub const URL_SAFE_NO_PAD: Alphabet = Alphabet {
    s62: b'-',
    s63: b'_',
    padded: false,
};

/// `+` and `/`, padded with `=` to a multiple of four.
pub const STANDARD: Alphabet = Alphabet {
    s62: b'+',
    s63: b'/',
    padded: true,
};

impl Alphabet {
    fn symbol(self, v: u32) -> char {
        let v = (v & 63) as u8;
        (match v {
            0..=25 => b'A' + v,
            26..=51 => b'a' + v - 26,
            52..=61 => b'0' + v - 52,
            62 => self.s62,
            _ => self.s63,
        }) as char
    }

    fn value(self, c: u8) -> Result<u32, Base64Error> {
        Ok(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            _ if c == self.s62 => 62,
            _ if c == self.s63 => 63,
            _ => return Err(Base64Error),
        } as u32)
    }

    pub fn encode(self, bytes: impl AsRef<[u8]>) -> String {
        let bytes = bytes.as_ref();
        let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, b)| n | (*b as u32) << (16 - 8 * i));
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(self.symbol(n >> (18 - 6 * i)));
                } else if self.padded {
                    out.push('=');
                }
            }
        }
        out
    }

    pub fn decode(self, s: impl AsRef<[u8]>) -> Result<Vec<u8>, Base64Error> {
        let mut s = s.as_ref();
        if self.padded {
            if s.len() % 4 != 0 {
                return Err(Base64Error);
            }
            let pads = s.iter().rev().take(2).take_while(|c| **c == b'=').count();
            s = &s[..s.len() - pads];
        }
        if s.len() % 4 == 1 {
            return Err(Base64Error);
        }
        let mut out = Vec::with_capacity(s.len() / 4 * 3 + 2);
        for chunk in s.chunks(4) {
            let mut n = 0u32;
            for (i, c) in chunk.iter().enumerate() {
                n |= self.value(*c)? << (18 - 6 * i);
            }
            let bytes = chunk.len() - 1;
            // The bits after the last whole byte.
            if n & (0xff_ffff >> (8 * bytes)) != 0 {
                return Err(Base64Error);
            }
            for i in 0..bytes {
                out.push((n >> (16 - 8 * i)) as u8);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use proptest::prelude::*;

    #[test]
    fn rfc_4648_vectors() {
        for (raw, std) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(STANDARD.encode(raw), std);
            assert_eq!(STANDARD.decode(std).unwrap(), raw.as_bytes());
            let url = std.trim_end_matches('=');
            assert_eq!(URL_SAFE_NO_PAD.encode(raw), url);
            assert_eq!(URL_SAFE_NO_PAD.decode(url).unwrap(), raw.as_bytes());
        }
        assert_eq!(URL_SAFE_NO_PAD.encode([0xfb, 0xff]), "-_8");
        assert_eq!(STANDARD.encode([0xfb, 0xff]), "+/8=");
    }

    #[test]
    fn refuses_what_is_not_canonical() {
        for bad in ["Zg=", "Zg", "Z===", "====", "Zh==", "Zm9=", "Zm 9v", "-_8="] {
            assert_eq!(STANDARD.decode(bad), Err(Base64Error), "{bad}");
        }
        for bad in ["Zg==", "Z", "Zh", "Zm9", "+/8", "Zm9v\n", "Zm.v"] {
            assert_eq!(URL_SAFE_NO_PAD.decode(bad), Err(Base64Error), "{bad}");
        }
    }

    fn b64ish() -> impl Strategy<Value = String> {
        proptest::collection::vec(prop::sample::select(b"AQZagz09+/-_= .".to_vec()), 0..14)
            .prop_map(|v| String::from_utf8(v).unwrap())
    }

    proptest! {
        #[test]
        fn encodes_as_the_base64_crate(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            use base64::engine::general_purpose as gp;
            prop_assert_eq!(URL_SAFE_NO_PAD.encode(&bytes), gp::URL_SAFE_NO_PAD.encode(&bytes));
            prop_assert_eq!(STANDARD.encode(&bytes), gp::STANDARD.encode(&bytes));
        }

        #[test]
        fn decodes_exactly_what_the_base64_crate_decodes(s in b64ish()) {
            use base64::engine::general_purpose as gp;
            prop_assert_eq!(URL_SAFE_NO_PAD.decode(&s).ok(), gp::URL_SAFE_NO_PAD.decode(&s).ok());
            prop_assert_eq!(STANDARD.decode(&s).ok(), gp::STANDARD.decode(&s).ok());
        }
    }
}
