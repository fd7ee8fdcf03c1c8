//! The message header, in its 2013 (and 2011) and 2019 forms, and the BCD
//! numbers it and the bodies use.
//!
//! ```text
//! 2013: id:u16 attrs:u16            phone:BCD[6]  serial:u16 [total:u16 index:u16]
//! 2019: id:u16 attrs:u16 version:u8 phone:BCD[10] serial:u16 [total:u16 index:u16]
//! attrs: bits 0-9 body length, 10-12 encryption, 13 sub-package, 14 version flag (2019)
//! ```

use crate::identity::DeviceId;

/// Body length is 10 bits.
pub const MAX_BODY_LEN: usize = 0x3FF;

/// Which edition's header a terminal sent; replies use the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edition {
    /// 2011 / 2013: 6-byte phone.
    V2013,
    /// 2019: version byte and 10-byte phone.
    V2019 { version: u8 },
}

/// The body attributes word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyAttrs {
    pub len: u16,
    /// 0 none, 1 RSA (bit 10); other values reserved.
    pub encryption: u8,
    pub subpackaged: bool,
    pub version_flag: bool,
}

impl BodyAttrs {
    pub fn from_word(w: u16) -> BodyAttrs {
        BodyAttrs {
            len: w & 0x3FF,
            encryption: ((w >> 10) & 0x7) as u8,
            subpackaged: w & (1 << 13) != 0,
            version_flag: w & (1 << 14) != 0,
        }
    }

    pub fn to_word(self) -> u16 {
        (self.len & 0x3FF)
            | (u16::from(self.encryption & 0x7) << 10)
            | (u16::from(self.subpackaged) << 13)
            | (u16::from(self.version_flag) << 14)
    }
}

/// Sub-package position: `index` of `total`, both from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    pub total: u16,
    pub index: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub msg_id: u16,
    pub attrs: BodyAttrs,
    pub edition: Edition,
    /// The terminal's phone number as the contract's device id (12 digits).
    pub device: DeviceId,
    pub serial: u16,
    pub part: Option<Part>,
}

/// Why a header cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderError {
    Short { need: usize, have: usize },
    BadPhone(String),
}

impl std::fmt::Display for HeaderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeaderError::Short { need, have } => {
                write!(f, "header needs {need} bytes, frame has {have}")
            }
            HeaderError::BadPhone(e) => write!(f, "terminal phone number: {e}"),
        }
    }
}

impl Header {
    /// Reads a header from the start of `content`; returns it and the
    /// number of bytes it took.
    pub fn decode(content: &[u8]) -> Result<(Header, usize), HeaderError> {
        let short = |need: usize| HeaderError::Short {
            need,
            have: content.len(),
        };
        if content.len() < 4 {
            return Err(short(4));
        }
        let msg_id = be16(content, 0);
        let attrs = BodyAttrs::from_word(be16(content, 2));
        let (edition, phone_len, mut at) = if attrs.version_flag {
            (
                Edition::V2019 {
                    version: *content.get(4).ok_or_else(|| short(5))?,
                },
                10,
                5,
            )
        } else {
            (Edition::V2013, 6, 4)
        };
        let fixed = at + phone_len + 2 + if attrs.subpackaged { 4 } else { 0 };
        if content.len() < fixed {
            return Err(short(fixed));
        }
        let device =
            phone_to_device(&content[at..at + phone_len]).map_err(HeaderError::BadPhone)?;
        at += phone_len;
        let serial = be16(content, at);
        at += 2;
        let part = if attrs.subpackaged {
            let p = Part {
                total: be16(content, at),
                index: be16(content, at + 2),
            };
            at += 4;
            Some(p)
        } else {
            None
        };
        Ok((
            Header {
                msg_id,
                attrs,
                edition,
                device,
                serial,
                part,
            },
            at,
        ))
    }

    /// Appends the header (with `attrs.len` as given) to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.msg_id.to_be_bytes());
        let mut attrs = self.attrs;
        attrs.subpackaged = self.part.is_some();
        attrs.version_flag = matches!(self.edition, Edition::V2019 { .. });
        out.extend_from_slice(&attrs.to_word().to_be_bytes());
        match self.edition {
            Edition::V2013 => device_to_phone::<6>(&self.device, out),
            Edition::V2019 { version } => {
                out.push(version);
                device_to_phone::<10>(&self.device, out)
            }
        }
        out.extend_from_slice(&self.serial.to_be_bytes());
        if let Some(p) = self.part {
            out.extend_from_slice(&p.total.to_be_bytes());
            out.extend_from_slice(&p.index.to_be_bytes());
        }
    }
}

pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// BCD digits of `bytes`, or an error naming the first non-decimal nibble.
pub fn bcd_digits(bytes: &[u8], out: &mut String) -> Result<(), String> {
    for (i, b) in bytes.iter().enumerate() {
        for nibble in [b >> 4, b & 0x0F] {
            if nibble > 9 {
                return Err(format!("byte {i} ({b:02X}) is not BCD"));
            }
            out.push(char::from(b'0' + nibble));
        }
    }
    Ok(())
}

/// The contract's device id: the phone's BCD digits with leading zeros
/// kept to 12 digits; a 2019 BCD[10] sheds the zero padding beyond 12, so
/// a terminal keeps its id across editions.
pub fn phone_to_device(bytes: &[u8]) -> Result<DeviceId, String> {
    let mut digits = String::with_capacity(20);
    bcd_digits(bytes, &mut digits)?;
    let zeros = digits.bytes().take_while(|b| *b == b'0').count();
    let drop = zeros.min(digits.len().saturating_sub(12));
    DeviceId::parse(&digits[drop..])
}

/// The device id back into a BCD[N] phone, zero-padded on the left.
/// Ids of muckwatch's own making are digits; anything else encodes as 0s.
fn device_to_phone<const N: usize>(device: &DeviceId, out: &mut Vec<u8>) {
    let digits = device.as_str().as_bytes();
    let mut nibbles = [0u8; 20];
    let n = 2 * N;
    let take = digits.len().min(n);
    for (i, d) in digits[digits.len() - take..].iter().enumerate() {
        nibbles[n - take + i] = d.wrapping_sub(b'0').min(9);
    }
    for pair in nibbles[..n].chunks(2) {
        out.push((pair[0] << 4) | pair[1]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_2019_phone_keeps_the_2013_id() {
        let d13 = phone_to_device(&[0x01, 0x39, 0x12, 0x34, 0x56, 0x78]).unwrap();
        let d19 = phone_to_device(&[0, 0, 0, 0, 0x01, 0x39, 0x12, 0x34, 0x56, 0x78]).unwrap();
        assert_eq!(d13.as_str(), "013912345678");
        assert_eq!(d13, d19);
        // A long 2019 number keeps its digits (minus the padding).
        let long = phone_to_device(&[0, 0, 0, 0x12, 0x34, 0x56, 0x78, 0x90, 0x12, 0x34]).unwrap();
        assert_eq!(long.as_str(), "12345678901234");
        assert!(phone_to_device(&[0x0A, 0, 0, 0, 0, 0]).is_err());
    }

    #[test]
    fn attrs_word_round_trips() {
        let a = BodyAttrs {
            len: 0x3FF,
            encryption: 1,
            subpackaged: true,
            version_flag: true,
        };
        assert_eq!(a.to_word(), 0x3FF | 0x0400 | 0x2000 | 0x4000);
        assert_eq!(BodyAttrs::from_word(a.to_word()), a);
    }

    proptest! {
        #[test]
        fn headers_round_trip(
            id in any::<u16>(), len in 0u16..0x400, enc in 0u8..8, serial in any::<u16>(),
            v2019 in any::<bool>(), version in any::<u8>(), digits in "[0-9]{12}",
            part in proptest::option::of((1u16..100, 1u16..100)),
        ) {
            let h = Header {
                msg_id: id,
                attrs: BodyAttrs { len, encryption: enc, subpackaged: part.is_some(), version_flag: v2019 },
                edition: if v2019 { Edition::V2019 { version } } else { Edition::V2013 },
                device: DeviceId::parse(&digits).unwrap(),
                serial,
                part: part.map(|(total, index)| Part { total, index }),
            };
            let mut out = Vec::new();
            h.encode_into(&mut out);
            let (back, used) = Header::decode(&out).unwrap();
            prop_assert_eq!(used, out.len());
            prop_assert_eq!(back, h);
        }

        #[test]
        fn random_headers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = Header::decode(&bytes);
        }
    }
}
