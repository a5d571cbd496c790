//! The little CBOR (RFC 8949) that WebAuthn needs: definite-length maps, text and byte
//! strings, integers, and skipping any one item (nested, tagged or indefinite-length) that
//! Gatehouse does not read. No allocation for the values: every length is checked against
//! the input before it is sliced. (A general CBOR crate cost the bundle about 4 KB gzip for
//! these few reads.)

/// Input that is not the CBOR item expected, or ends inside one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

type R<T> = std::result::Result<T, Malformed>;

const UNSIGNED: u8 = 0;
const NEGATIVE: u8 = 1;
pub const BYTES: u8 = 2;
const TEXT: u8 = 3;
const ARRAY: u8 = 4;
const MAP: u8 = 5;
const TAG: u8 = 6;
const SIMPLE: u8 = 7;
/// Additional information 31: indefinite length (or, in major type 7, "break").
const INDEFINITE: u8 = 31;

/// A reader over one buffer.
pub struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    pub fn new(buf: &'a [u8]) -> Decoder<'a> {
        Decoder { buf, pos: 0 }
    }

    /// How many bytes have been read.
    pub fn position(&self) -> usize {
        self.pos
    }

    fn take(&mut self, n: usize) -> R<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or(Malformed)?;
        let s = self.buf.get(self.pos..end).ok_or(Malformed)?;
        self.pos = end;
        Ok(s)
    }

    /// The next item's major type, without reading it.
    pub fn peek_major(&self) -> R<u8> {
        self.buf.get(self.pos).map(|b| b >> 5).ok_or(Malformed)
    }

    /// An item's head: (major type, argument), or `None` as the argument of an
    /// indefinite length (or a break).
    fn head(&mut self) -> R<(u8, Option<u64>)> {
        let b = self.take(1)?[0];
        let (major, info) = (b >> 5, b & 0x1f);
        let arg = match info {
            0..=23 => Some(info as u64),
            24..=27 => {
                let n = 1usize << (info - 24);
                let mut v = 0u64;
                for byte in self.take(n)? {
                    v = v << 8 | *byte as u64;
                }
                Some(v)
            }
            INDEFINITE if matches!(major, BYTES | TEXT | ARRAY | MAP | SIMPLE) => None,
            _ => return Err(Malformed),
        };
        Ok((major, arg))
    }

    /// A definite length of major type `want`.
    fn definite(&mut self, want: u8) -> R<u64> {
        match self.head()? {
            (m, Some(n)) if m == want => Ok(n),
            _ => Err(Malformed),
        }
    }

    fn string(&mut self, want: u8) -> R<&'a [u8]> {
        let n = self.definite(want)?;
        self.take(usize::try_from(n).map_err(|_| Malformed)?)
    }

    /// A definite-length byte string.
    pub fn bytes(&mut self) -> R<&'a [u8]> {
        self.string(BYTES)
    }

    /// A definite-length text string (UTF-8 checked).
    pub fn str(&mut self) -> R<&'a str> {
        std::str::from_utf8(self.string(TEXT)?).map_err(|_| Malformed)
    }

    /// The number of pairs of a definite-length map.
    pub fn map(&mut self) -> R<u64> {
        self.definite(MAP)
    }

    /// An integer that fits in an `i64`.
    pub fn i64(&mut self) -> R<i64> {
        let (major, n) = self.head()?;
        let n = i64::try_from(n.ok_or(Malformed)?).map_err(|_| Malformed)?;
        match major {
            UNSIGNED => Ok(n),
            NEGATIVE => Ok(-1 - n),
            _ => Err(Malformed),
        }
    }

    /// Skips one whole item. Nesting is tracked in a list, not by recursion, so deep input
    /// cannot exhaust the stack; each level costs at least one byte of input.
    pub fn skip(&mut self) -> R<()> {
        let mut open = vec![Level::Items(1)];
        while let Some(top) = open.last_mut() {
            match top {
                Level::Items(0) => {
                    open.pop();
                    continue;
                }
                Level::Items(n) => *n -= 1,
                Level::UntilBreak { pairs, odd } => {
                    // A break ends the item, but not between a map's key and its value.
                    if self.buf.get(self.pos) == Some(&0xff) && !*odd {
                        self.pos += 1;
                        open.pop();
                        continue;
                    }
                    *odd = *pairs && !*odd;
                }
            }
            let (major, arg) = self.head()?;
            match (major, arg) {
                (UNSIGNED | NEGATIVE | SIMPLE, Some(_)) => {}
                (BYTES | TEXT, Some(n)) => {
                    self.take(usize::try_from(n).map_err(|_| Malformed)?)?;
                }
                // An indefinite-length string: definite chunks of its own type, then a break.
                (BYTES | TEXT, None) => loop {
                    if self.buf.get(self.pos) == Some(&0xff) {
                        self.pos += 1;
                        break;
                    }
                    self.string(major)?;
                },
                (ARRAY, Some(n)) => open.push(Level::Items(n)),
                (MAP, Some(n)) => open.push(Level::Items(n.checked_mul(2).ok_or(Malformed)?)),
                (ARRAY | MAP, None) => open.push(Level::UntilBreak {
                    pairs: major == MAP,
                    odd: false,
                }),
                (TAG, Some(_)) => open.push(Level::Items(1)),
                // A break outside an indefinite-length item.
                _ => return Err(Malformed),
            }
        }
        Ok(())
    }
}

/// One open level of [`Decoder::skip`] (kept in a list, not by recursion, so that deep input
/// cannot exhaust the stack; each level costs at least one byte of input).
enum Level {
    /// A definite count of items still to read (a map's pairs count twice).
    Items(u64),
    /// An indefinite-length array or map (`pairs`), ending at a break; `odd` while a map's
    /// value is still due.
    UntilBreak { pairs: bool, odd: bool },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skipped(b: &[u8]) -> R<usize> {
        let mut d = Decoder::new(b);
        d.skip()?;
        Ok(d.position())
    }

    #[test]
    fn reads_integers_strings_and_maps() {
        // {"a": h'0102', 1: -7, -1: 1000000}
        let b = [
            0xa3, 0x61, b'a', 0x42, 1, 2, 0x01, 0x26, 0x20, 0x1a, 0x00, 0x0f, 0x42, 0x40,
        ];
        let mut d = Decoder::new(&b);
        assert_eq!(d.map(), Ok(3));
        assert_eq!(d.str(), Ok("a"));
        assert_eq!(d.peek_major(), Ok(BYTES));
        assert_eq!(d.bytes(), Ok(&[1u8, 2][..]));
        assert_eq!(d.i64(), Ok(1));
        assert_eq!(d.i64(), Ok(-7));
        assert_eq!(d.i64(), Ok(-1));
        assert_eq!(d.i64(), Ok(1_000_000));
        assert_eq!(d.position(), b.len());
        assert_eq!(d.i64(), Err(Malformed));
    }

    #[test]
    fn refuses_wrong_types_short_input_and_out_of_range() {
        assert_eq!(Decoder::new(&[0x61, b'a']).bytes(), Err(Malformed));
        assert_eq!(Decoder::new(&[0x45, 1, 2]).bytes(), Err(Malformed));
        assert_eq!(Decoder::new(&[0x61, 0xff]).str(), Err(Malformed));
        assert_eq!(Decoder::new(&[0xbf, 0xff]).map(), Err(Malformed));
        assert_eq!(
            Decoder::new(&[0x1b, 0x80, 0, 0, 0, 0, 0, 0, 0]).i64(),
            Err(Malformed)
        );
        assert_eq!(Decoder::new(&[0x1c]).i64(), Err(Malformed));
        assert_eq!(
            Decoder::new(&[0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).bytes(),
            Err(Malformed)
        );
    }

    #[test]
    fn skips_nested_tagged_and_indefinite_items_exactly() {
        // [1, {"k": [h'00', 2.5]}, tag(1) 0] then a trailing byte.
        let b = [
            0x83, 0x01, 0xa1, 0x61, b'k', 0x82, 0x41, 0x00, 0xf9, 0x41, 0x00, 0xc1, 0x00, 0x07,
        ];
        assert_eq!(skipped(&b), Ok(b.len() - 1));
        // Indefinite array of an indefinite byte string (two chunks) and an indefinite map.
        let b = [
            0x9f, 0x5f, 0x41, 1, 0x41, 2, 0xff, 0xbf, 0x01, 0x02, 0xff, 0xff,
        ];
        assert_eq!(skipped(&b), Ok(b.len()));
        assert_eq!(skipped(&[0xf6]), Ok(1));
        // Truncated, a stray break, a chunk of the wrong type, a reserved head.
        assert_eq!(skipped(&[0x82, 0x01]), Err(Malformed));
        assert_eq!(skipped(&[0xff]), Err(Malformed));
        assert_eq!(skipped(&[0x5f, 0x61, b'a', 0xff]), Err(Malformed));
        assert_eq!(skipped(&[0x9c]), Err(Malformed));
        // An indefinite map may not end between a key and its value.
        assert_eq!(skipped(&[0xbf, 0x01, 0xff]), Err(Malformed));
        assert_eq!(skipped(&[0xbf, 0x01, 0x02, 0x03, 0xff]), Err(Malformed));
        // Deep nesting is fine (no recursion) and still must be complete.
        let deep = vec![0x81; 100_000];
        assert_eq!(skipped(&deep), Err(Malformed));
        let mut deep = deep;
        deep.push(0x00);
        assert_eq!(skipped(&deep), Ok(deep.len()));
    }
}
