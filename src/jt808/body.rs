//! Message bodies: the ones muckwatch reads from terminals and the ones it
//! answers with. Strings are GBK (plates such as 粤A12345).

use super::header::Edition;
use super::location::Location;

pub mod id {
    pub const TERMINAL_RESPONSE: u16 = 0x0001;
    pub const HEARTBEAT: u16 = 0x0002;
    pub const DEREGISTER: u16 = 0x0003;
    pub const REGISTER: u16 = 0x0100;
    pub const AUTHENTICATE: u16 = 0x0102;
    pub const LOCATION: u16 = 0x0200;
    pub const BATCH: u16 = 0x0704;
    pub const PLATFORM_RESPONSE: u16 = 0x8001;
    pub const REGISTER_RESPONSE: u16 = 0x8100;
}

/// Results of 0x8001.
pub mod result {
    pub const OK: u8 = 0;
    pub const FAILED: u8 = 1;
    /// The message is wrong (bad checksum, length, body).
    pub const BAD_MESSAGE: u8 = 2;
    pub const UNSUPPORTED: u8 = 3;
}

/// Results of 0x8100.
pub mod register_result {
    pub const OK: u8 = 0;
    pub const VEHICLE_TAKEN: u8 = 1;
    pub const NO_SUCH_VEHICLE: u8 = 2;
    pub const TERMINAL_TAKEN: u8 = 3;
    pub const NO_SUCH_TERMINAL: u8 = 4;
}

/// A body that does not parse; the text names the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyError(String);

impl BodyError {
    pub fn new(s: impl Into<String>) -> BodyError {
        BodyError(s.into())
    }
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BodyError {}

/// Big-endian reads that name the field when the body is too short.
pub struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, at: 0 }
    }

    pub fn is_empty(&self) -> bool {
        self.at >= self.bytes.len()
    }

    pub fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], BodyError> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.bytes.len());
        let Some(end) = end else {
            return Err(BodyError(format!(
                "body ends before {what} (needs {n} bytes at offset {}, has {})",
                self.at,
                self.bytes.len().saturating_sub(self.at)
            )));
        };
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    pub fn rest(&mut self) -> &'a [u8] {
        let s = &self.bytes[self.at.min(self.bytes.len())..];
        self.at = self.bytes.len();
        s
    }

    pub fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], BodyError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, what)?);
        Ok(a)
    }

    pub fn u8(&mut self, what: &str) -> Result<u8, BodyError> {
        Ok(self.take(1, what)?[0])
    }

    pub fn u16(&mut self, what: &str) -> Result<u16, BodyError> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    pub fn u32(&mut self, what: &str) -> Result<u32, BodyError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }
}

/// GBK text with its NUL padding removed; undecodable bytes become U+FFFD.
pub fn gbk_decode(bytes: &[u8]) -> String {
    let end = bytes.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
    let (text, _, _) = encoding_rs::GBK.decode(&bytes[..end]);
    text.into_owned()
}

pub fn gbk_encode(text: &str) -> Vec<u8> {
    encoding_rs::GBK.encode(text).0.into_owned()
}

/// A fixed-width GBK field, NUL-padded (or cut) to `n` bytes.
fn gbk_fixed(text: &str, n: usize, out: &mut Vec<u8>) {
    let mut b = gbk_encode(text);
    b.resize(n, 0);
    out.extend_from_slice(&b);
}

/// 0x0100.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Register {
    pub province: u16,
    pub city: u16,
    pub maker: String,
    pub model: String,
    pub terminal_id: String,
    pub plate_color: u8,
    pub plate: String,
}

impl Register {
    /// Field widths of maker, model and terminal id in each edition.
    fn widths(edition: Edition) -> (usize, usize, usize) {
        match edition {
            Edition::V2013 => (5, 20, 7),
            Edition::V2019 { .. } => (11, 30, 30),
        }
    }

    fn decode(edition: Edition, body: &[u8]) -> Result<Register, BodyError> {
        let (m, md, t) = Self::widths(edition);
        let mut r = Reader::new(body);
        Ok(Register {
            province: r.u16("province")?,
            city: r.u16("city")?,
            maker: gbk_decode(r.take(m, "maker id")?),
            model: gbk_decode(r.take(md, "terminal model")?),
            terminal_id: gbk_decode(r.take(t, "terminal id")?),
            plate_color: r.u8("plate colour")?,
            plate: gbk_decode(r.rest()),
        })
    }

    fn encode_into(&self, edition: Edition, out: &mut Vec<u8>) {
        let (m, md, t) = Self::widths(edition);
        out.extend_from_slice(&self.province.to_be_bytes());
        out.extend_from_slice(&self.city.to_be_bytes());
        gbk_fixed(&self.maker, m, out);
        gbk_fixed(&self.model, md, out);
        gbk_fixed(&self.terminal_id, t, out);
        out.push(self.plate_color);
        out.extend_from_slice(&gbk_encode(&self.plate));
    }
}

/// 0x0102: the 2013 body is the code alone; 2019 adds its length, the
/// IMEI and the software version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticate {
    pub code: String,
    pub imei: Option<String>,
    pub software: Option<String>,
}

impl Authenticate {
    fn decode(edition: Edition, body: &[u8]) -> Result<Authenticate, BodyError> {
        let mut r = Reader::new(body);
        Ok(match edition {
            Edition::V2013 => Authenticate {
                code: gbk_decode(r.rest()),
                imei: None,
                software: None,
            },
            Edition::V2019 { .. } => {
                let n = usize::from(r.u8("auth code length")?);
                Authenticate {
                    code: gbk_decode(r.take(n, "auth code")?),
                    imei: Some(gbk_decode(r.take(15, "IMEI")?)),
                    software: Some(gbk_decode(r.take(20, "software version")?)),
                }
            }
        })
    }

    fn encode_into(&self, edition: Edition, out: &mut Vec<u8>) {
        let code = gbk_encode(&self.code);
        match edition {
            Edition::V2013 => out.extend_from_slice(&code),
            Edition::V2019 { .. } => {
                out.push(code.len().min(255) as u8);
                out.extend_from_slice(&code[..code.len().min(255)]);
                gbk_fixed(self.imei.as_deref().unwrap_or(""), 15, out);
                gbk_fixed(self.software.as_deref().unwrap_or(""), 20, out);
            }
        }
    }
}

/// 0x0704 type: 0 normal batch, 1 补报 (backfill of what the terminal
/// recorded while it could not report).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchKind {
    Normal,
    Backfill,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub kind: BatchKind,
    pub locations: Vec<Location>,
}

/// A decoded body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    TerminalResponse {
        serial: u16,
        id: u16,
        result: u8,
    },
    Heartbeat,
    Deregister,
    Register(Register),
    Authenticate(Authenticate),
    Location(Location),
    Batch(Batch),
    PlatformResponse {
        serial: u16,
        id: u16,
        result: u8,
    },
    RegisterResponse {
        serial: u16,
        result: u8,
        code: Option<String>,
    },
}

impl Message {
    /// The message id this body travels under.
    pub fn id(&self) -> u16 {
        match self {
            Message::TerminalResponse { .. } => id::TERMINAL_RESPONSE,
            Message::Heartbeat => id::HEARTBEAT,
            Message::Deregister => id::DEREGISTER,
            Message::Register(_) => id::REGISTER,
            Message::Authenticate(_) => id::AUTHENTICATE,
            Message::Location(_) => id::LOCATION,
            Message::Batch(_) => id::BATCH,
            Message::PlatformResponse { .. } => id::PLATFORM_RESPONSE,
            Message::RegisterResponse { .. } => id::REGISTER_RESPONSE,
        }
    }

    /// Reads the body of message `msg_id`; `Ok(None)` for an id muckwatch
    /// does not handle (answered "unsupported").
    pub fn decode(
        msg_id: u16,
        edition: Edition,
        body: &[u8],
    ) -> Result<Option<Message>, BodyError> {
        let mut r = Reader::new(body);
        let m = match msg_id {
            id::TERMINAL_RESPONSE => Message::TerminalResponse {
                serial: r.u16("serial")?,
                id: r.u16("message id")?,
                result: r.u8("result")?,
            },
            id::HEARTBEAT => Message::Heartbeat,
            id::DEREGISTER => Message::Deregister,
            id::REGISTER => Message::Register(Register::decode(edition, body)?),
            id::AUTHENTICATE => Message::Authenticate(Authenticate::decode(edition, body)?),
            id::LOCATION => Message::Location(Location::decode(body)?),
            id::BATCH => Message::Batch(decode_batch(body)?),
            id::PLATFORM_RESPONSE => Message::PlatformResponse {
                serial: r.u16("serial")?,
                id: r.u16("message id")?,
                result: r.u8("result")?,
            },
            id::REGISTER_RESPONSE => {
                let serial = r.u16("serial")?;
                let result = r.u8("result")?;
                let code = (result == register_result::OK).then(|| gbk_decode(r.rest()));
                Message::RegisterResponse {
                    serial,
                    result,
                    code,
                }
            }
            _ => return Ok(None),
        };
        Ok(Some(m))
    }

    pub fn encode_into(&self, edition: Edition, out: &mut Vec<u8>) {
        match self {
            Message::TerminalResponse { serial, id, result }
            | Message::PlatformResponse { serial, id, result } => {
                out.extend_from_slice(&serial.to_be_bytes());
                out.extend_from_slice(&id.to_be_bytes());
                out.push(*result);
            }
            Message::Heartbeat | Message::Deregister => {}
            Message::Register(r) => r.encode_into(edition, out),
            Message::Authenticate(a) => a.encode_into(edition, out),
            Message::Location(l) => l.encode_into(out),
            Message::Batch(b) => {
                out.extend_from_slice(&(b.locations.len() as u16).to_be_bytes());
                out.push(match b.kind {
                    BatchKind::Normal => 0,
                    BatchKind::Backfill => 1,
                });
                let mut item = Vec::with_capacity(64);
                for l in &b.locations {
                    item.clear();
                    l.encode_into(&mut item);
                    out.extend_from_slice(&(item.len() as u16).to_be_bytes());
                    out.extend_from_slice(&item);
                }
            }
            Message::RegisterResponse {
                serial,
                result,
                code,
            } => {
                out.extend_from_slice(&serial.to_be_bytes());
                out.push(*result);
                if let Some(c) = code {
                    out.extend_from_slice(&gbk_encode(c));
                }
            }
        }
    }
}

/// Batches are bounded by the frame (or reassembly) size already; the
/// count is checked against what the body actually holds.
fn decode_batch(body: &[u8]) -> Result<Batch, BodyError> {
    let mut r = Reader::new(body);
    let count = r.u16("item count")?;
    let kind = match r.u8("batch type")? {
        0 => BatchKind::Normal,
        1 => BatchKind::Backfill,
        t => return Err(BodyError(format!("batch type {t} is neither 0 nor 1"))),
    };
    let mut locations = Vec::with_capacity(usize::from(count).min(body.len() / 30 + 1));
    for i in 0..count {
        let len = usize::from(r.u16("item length")?);
        let item = r.take(len, "batch item")?;
        locations.push(
            Location::decode(item).map_err(|e| BodyError(format!("batch item {}: {e}", i + 1)))?,
        );
    }
    if !r.is_empty() {
        return Err(BodyError(format!(
            "bytes left after the {count} items the batch announces"
        )));
    }
    Ok(Batch { kind, locations })
}
