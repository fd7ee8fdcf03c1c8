//! The outermost layer: `0x7E` framing, the `0x7D` escapes (applied over
//! header, body and checksum alike) and the XOR checksum.
//!
//! A frame on the wire is `7E <escaped: header body checksum> 7E`. Between
//! two frames a terminal may send one `7E` or two (end and start); bytes
//! outside a frame are noise and skipped.

/// Frame delimiter.
pub const FLAG: u8 = 0x7E;
/// Escape lead byte: `7D 02` is `7E`, `7D 01` is `7D`.
pub const ESCAPE: u8 = 0x7D;

/// XOR of every byte.
pub fn checksum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0, |x, b| x ^ b)
}

/// Appends `content` escaped to `out`.
pub fn escape_into(content: &[u8], out: &mut Vec<u8>) {
    out.reserve(content.len() + 4);
    for &b in content {
        match b {
            FLAG => out.extend_from_slice(&[ESCAPE, 0x02]),
            ESCAPE => out.extend_from_slice(&[ESCAPE, 0x01]),
            b => out.push(b),
        }
    }
}

/// Why the bytes between two flags are not a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnescapeError {
    /// `7D` followed by something other than `01` / `02`, or last.
    BadEscape { at: usize },
}

/// Undoes the escapes of the bytes between two flags.
pub fn unescape_into(escaped: &[u8], out: &mut Vec<u8>) -> Result<(), UnescapeError> {
    out.reserve(escaped.len());
    let mut i = 0;
    while i < escaped.len() {
        let b = escaped[i];
        if b == ESCAPE {
            match escaped.get(i + 1) {
                Some(0x01) => out.push(ESCAPE),
                Some(0x02) => out.push(FLAG),
                _ => return Err(UnescapeError::BadEscape { at: i }),
            }
            i += 2;
        } else {
            out.push(b);
            i += 1;
        }
    }
    Ok(())
}

/// A whole frame for `content` (header and body, unescaped): checksum
/// computed, everything escaped, flags around.
pub fn wrap(content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 8);
    out.push(FLAG);
    escape_into(content, &mut out);
    escape_into(&[checksum(content)], &mut out);
    out.push(FLAG);
    out
}

/// Splits an unescaped frame into its content and checks the checksum:
/// `Ok(content)` or `Err((content, expected, found))`.
pub fn verify(unescaped: &[u8]) -> Result<&[u8], ChecksumError> {
    let Some((&sum, content)) = unescaped.split_last() else {
        return Err(ChecksumError::Empty);
    };
    let computed = checksum(content);
    if computed == sum {
        Ok(content)
    } else {
        Err(ChecksumError::Mismatch {
            computed,
            found: sum,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumError {
    Empty,
    Mismatch { computed: u8, found: u8 },
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn escapes_both_special_bytes() {
        let mut out = Vec::new();
        escape_into(&[0x30, 0x7E, 0x08, 0x7D, 0x55], &mut out);
        assert_eq!(out, [0x30, 0x7D, 0x02, 0x08, 0x7D, 0x01, 0x55]);
        let mut back = Vec::new();
        unescape_into(&out, &mut back).unwrap();
        assert_eq!(back, [0x30, 0x7E, 0x08, 0x7D, 0x55]);
    }

    #[test]
    fn a_dangling_escape_is_refused() {
        let mut out = Vec::new();
        assert_eq!(
            unescape_into(&[0x01, 0x7D], &mut out),
            Err(UnescapeError::BadEscape { at: 1 })
        );
        assert_eq!(
            unescape_into(&[0x7D, 0x03], &mut out),
            Err(UnescapeError::BadEscape { at: 0 })
        );
    }

    proptest! {
        #[test]
        fn escape_round_trips_and_hides_the_flag(content in proptest::collection::vec(any::<u8>(), 0..600)) {
            let framed = wrap(&content);
            let inner = &framed[1..framed.len() - 1];
            prop_assert!(!inner.contains(&FLAG));
            let mut back = Vec::new();
            unescape_into(inner, &mut back).unwrap();
            prop_assert_eq!(verify(&back), Ok(&content[..]));
        }

        #[test]
        fn unescape_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut out = Vec::new();
            let _ = unescape_into(&bytes, &mut out);
            let _ = verify(&out);
        }
    }
}
