//! The location report body (0x0200, and each item of a 0x0704 batch): the
//! 28-byte basic block, then TLV extras (`id:u8 len:u8 value`).

use super::body::{BodyError, Reader};

/// Status bit 0: ignition (ACC) on.
pub const STATUS_ACC: u32 = 1 << 0;
/// Status bit 1: positioned (the fix is valid).
pub const STATUS_POSITIONED: u32 = 1 << 1;
/// Status bit 2: southern latitude.
pub const STATUS_SOUTH: u32 = 1 << 2;
/// Status bit 3: western longitude.
pub const STATUS_WEST: u32 = 1 << 3;

/// At most this many extras are kept per location (a 4 KiB frame holds at
/// most ~1,300 empty ones; real terminals send a dozen).
pub const MAX_EXTRAS: usize = 64;

/// A BCD `YYMMDDhhmmss` in the terminal's zone (UTC+8 by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BcdTime(pub [u8; 6]);

impl BcdTime {
    /// `(year, month, day, hour, minute, second)`, the year as 2000 + YY;
    /// `None` when a byte is not BCD.
    pub fn parts(&self) -> Option<(i32, u32, u32, u32, u32, u32)> {
        let mut v = [0u32; 6];
        for (i, b) in self.0.iter().enumerate() {
            let (hi, lo) = (b >> 4, b & 0x0F);
            if hi > 9 || lo > 9 {
                return None;
            }
            v[i] = u32::from(hi * 10 + lo);
        }
        Some((2000 + v[0] as i32, v[1], v[2], v[3], v[4], v[5]))
    }

    /// From calendar parts (year 2000-2099).
    pub fn from_parts(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> BcdTime {
        let bcd = |n: u32| (((n / 10 % 10) << 4) | (n % 10)) as u8;
        BcdTime([
            bcd(y.rem_euclid(100) as u32),
            bcd(mo),
            bcd(d),
            bcd(h),
            bcd(mi),
            bcd(s),
        ])
    }
}

/// One extra item of a location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extra {
    pub id: u8,
    pub value: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub alarm: u32,
    pub status: u32,
    /// Degrees x 1e6, unsigned; the sign is in the status bits.
    pub lat_e6: u32,
    pub lon_e6: u32,
    pub altitude_m: u16,
    /// km/h x 10.
    pub speed_dkmh: u16,
    /// 0-359, 0 = north.
    pub direction: u16,
    pub time: BcdTime,
    pub extras: Vec<Extra>,
}

impl Location {
    pub const BASIC_LEN: usize = 28;

    /// Reads a whole location (basic block and extras) from `body`.
    pub fn decode(body: &[u8]) -> Result<Location, BodyError> {
        let mut r = Reader::new(body);
        let mut loc = Location {
            alarm: r.u32("alarm flags")?,
            status: r.u32("status")?,
            lat_e6: r.u32("latitude")?,
            lon_e6: r.u32("longitude")?,
            altitude_m: r.u16("altitude")?,
            speed_dkmh: r.u16("speed")?,
            direction: r.u16("direction")?,
            time: BcdTime(r.array::<6>("time")?),
            extras: Vec::new(),
        };
        while !r.is_empty() {
            let id = r.u8("extra item id")?;
            let len = usize::from(r.u8("extra item length")?);
            let value = r.take(len, "extra item value")?;
            if loc.extras.len() >= MAX_EXTRAS {
                return Err(BodyError::new(format!(
                    "more than {MAX_EXTRAS} extra items in one location"
                )));
            }
            loc.extras.push(Extra {
                id,
                value: value.to_vec(),
            });
        }
        Ok(loc)
    }

    pub fn encode_into(&self, out: &mut Vec<u8>) {
        for v in [self.alarm, self.status, self.lat_e6, self.lon_e6] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        for v in [self.altitude_m, self.speed_dkmh, self.direction] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        out.extend_from_slice(&self.time.0);
        for e in &self.extras {
            out.push(e.id);
            out.push(e.value.len().min(255) as u8);
            out.extend_from_slice(&e.value[..e.value.len().min(255)]);
        }
    }

    pub fn extra(&self, id: u8) -> Option<&[u8]> {
        self.extras
            .iter()
            .find(|e| e.id == id)
            .map(|e| e.value.as_slice())
    }

    /// Signed degrees.
    pub fn lat(&self) -> f64 {
        let v = f64::from(self.lat_e6) / 1e6;
        if self.status & STATUS_SOUTH != 0 {
            -v
        } else {
            v
        }
    }

    pub fn lon(&self) -> f64 {
        let v = f64::from(self.lon_e6) / 1e6;
        if self.status & STATUS_WEST != 0 {
            -v
        } else {
            v
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bcd_time_round_trips_and_refuses_hex() {
        let t = BcdTime::from_parts(2021, 6, 1, 22, 15, 3);
        assert_eq!(t.0, [0x21, 0x06, 0x01, 0x22, 0x15, 0x03]);
        assert_eq!(t.parts(), Some((2021, 6, 1, 22, 15, 3)));
        assert_eq!(BcdTime([0x2A, 1, 1, 0, 0, 0]).parts(), None);
    }

    #[test]
    fn a_truncated_extra_is_an_error() {
        let mut body = vec![0u8; Location::BASIC_LEN];
        body.extend_from_slice(&[0x01, 0x04, 0x00]);
        let err = Location::decode(&body).unwrap_err();
        assert!(err.to_string().contains("extra item value"), "{err}");
    }
}
