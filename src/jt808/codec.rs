//! The TCP stream codec (`tokio_util::codec`): bytes in, [`Inbound`] items
//! out (a packet, or a frame refused with the reason and, when it could be
//! read, its header so that it can be answered); [`Outbound`] messages in,
//! framed bytes out. Memory per connection is the read buffer, bounded by
//! the frame size limit.

use bytes::{Buf, BufMut, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use super::body::Message;
use super::frame::{self, ChecksumError, FLAG};
use super::header::{BodyAttrs, Header};

/// The contract's limit: larger frames get the connection closed.
pub const MAX_FRAME: usize = 4096;

/// Header and body of one frame, checksum and length verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub header: Header,
    pub body: Vec<u8>,
}

/// Why bytes were not a packet; the label is the `reason` of
/// `muckwatch_jt808_frames_rejected_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameReject {
    OutsideFrame,
    BadEscape,
    BadChecksum,
    BadHeader,
    BadLength,
    Oversized,
    BadBody,
    Unsupported,
    Encrypted,
    Reassembly,
    NotAuthenticated,
    NoFix,
    BadTime,
    RateLimited,
}

impl FrameReject {
    pub const ALL: [FrameReject; 14] = [
        FrameReject::OutsideFrame,
        FrameReject::BadEscape,
        FrameReject::BadChecksum,
        FrameReject::BadHeader,
        FrameReject::BadLength,
        FrameReject::Oversized,
        FrameReject::BadBody,
        FrameReject::Unsupported,
        FrameReject::Encrypted,
        FrameReject::Reassembly,
        FrameReject::NotAuthenticated,
        FrameReject::NoFix,
        FrameReject::BadTime,
        FrameReject::RateLimited,
    ];

    pub fn label(self) -> &'static str {
        match self {
            FrameReject::OutsideFrame => "outside_frame",
            FrameReject::BadEscape => "bad_escape",
            FrameReject::BadChecksum => "bad_checksum",
            FrameReject::BadHeader => "bad_header",
            FrameReject::BadLength => "bad_length",
            FrameReject::Oversized => "oversized",
            FrameReject::BadBody => "bad_body",
            FrameReject::Unsupported => "unsupported",
            FrameReject::Encrypted => "encrypted",
            FrameReject::Reassembly => "reassembly",
            FrameReject::NotAuthenticated => "not_authenticated",
            FrameReject::NoFix => "jt808_no_fix",
            FrameReject::BadTime => "bad_time",
            FrameReject::RateLimited => "rate_limited",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// One item read from a terminal's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    Packet(Packet),
    Rejected {
        reason: FrameReject,
        /// The header, when it could be read (the frame is then answered).
        header: Option<Header>,
        detail: String,
    },
}

/// A message to send; its header's body length is filled in on encoding.
#[derive(Debug, Clone)]
pub struct Outbound {
    pub header: Header,
    pub message: Message,
}

impl Outbound {
    /// The unescaped header and body.
    pub fn content(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(32);
        self.message.encode_into(self.header.edition, &mut body);
        let mut header = self.header;
        header.msg_id = self.message.id();
        header.attrs = BodyAttrs {
            len: body.len().min(0x3FF) as u16,
            ..header.attrs
        };
        let mut out = Vec::with_capacity(body.len() + 24);
        header.encode_into(&mut out);
        out.extend_from_slice(&body);
        out
    }

    /// The whole frame, as sent.
    pub fn to_frame(&self) -> Vec<u8> {
        frame::wrap(&self.content())
    }
}

/// The codec; one per connection.
#[derive(Debug)]
pub struct Jt808Codec {
    max_frame: usize,
    /// Between an opening flag and its closing one.
    in_frame: bool,
    /// Bytes already scanned for a flag (so a slow frame is not rescanned).
    scanned: usize,
    unescaped: Vec<u8>,
}

impl Default for Jt808Codec {
    fn default() -> Self {
        Jt808Codec::new(MAX_FRAME)
    }
}

impl Jt808Codec {
    pub fn new(max_frame: usize) -> Jt808Codec {
        Jt808Codec {
            max_frame,
            in_frame: false,
            scanned: 0,
            unescaped: Vec::with_capacity(256),
        }
    }

    /// Reads one frame's escaped content (between the flags).
    fn parse(&mut self, escaped: &[u8]) -> Inbound {
        self.unescaped.clear();
        if let Err(frame::UnescapeError::BadEscape { at }) =
            frame::unescape_into(escaped, &mut self.unescaped)
        {
            return rejected(
                FrameReject::BadEscape,
                None,
                format!("0x7D at byte {at} is not followed by 01 or 02"),
            );
        }
        let content = match frame::verify(&self.unescaped) {
            Ok(c) => c,
            Err(e) => {
                let content = &self.unescaped[..self.unescaped.len().saturating_sub(1)];
                let header = Header::decode(content).ok().map(|(h, _)| h);
                let detail = match e {
                    ChecksumError::Empty => "empty frame".to_string(),
                    ChecksumError::Mismatch { computed, found } => {
                        format!("checksum {found:02X}, computed {computed:02X}")
                    }
                };
                return rejected(FrameReject::BadChecksum, header, detail);
            }
        };
        let (header, used) = match Header::decode(content) {
            Ok(h) => h,
            Err(e) => return rejected(FrameReject::BadHeader, None, e.to_string()),
        };
        let body = &content[used..];
        if body.len() != usize::from(header.attrs.len) {
            return rejected(
                FrameReject::BadLength,
                Some(header),
                format!(
                    "header says the body has {} bytes, the frame carries {}",
                    header.attrs.len,
                    body.len()
                ),
            );
        }
        Inbound::Packet(Packet {
            header,
            body: body.to_vec(),
        })
    }
}

fn rejected(reason: FrameReject, header: Option<Header>, detail: String) -> Inbound {
    Inbound::Rejected {
        reason,
        header,
        detail,
    }
}

impl Decoder for Jt808Codec {
    type Item = Inbound;
    type Error = std::io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Inbound>, std::io::Error> {
        loop {
            if !self.in_frame {
                match src.iter().position(|b| *b == FLAG) {
                    Some(0) => {
                        src.advance(1);
                        self.in_frame = true;
                        self.scanned = 0;
                    }
                    Some(n) => {
                        src.advance(n);
                        return Ok(Some(rejected(
                            FrameReject::OutsideFrame,
                            None,
                            format!("{n} bytes outside 0x7E framing skipped"),
                        )));
                    }
                    None if src.is_empty() => return Ok(None),
                    None => {
                        let n = src.len();
                        src.clear();
                        return Ok(Some(rejected(
                            FrameReject::OutsideFrame,
                            None,
                            format!("{n} bytes outside 0x7E framing skipped"),
                        )));
                    }
                }
            }
            let from = self.scanned.min(src.len());
            let Some(end) = src[from..]
                .iter()
                .position(|b| *b == FLAG)
                .map(|p| p + from)
            else {
                self.scanned = src.len();
                if src.len() > self.max_frame {
                    let n = src.len();
                    src.clear();
                    return Ok(Some(self.oversized(n)));
                }
                src.reserve(256);
                return Ok(None);
            };
            self.scanned = 0;
            if end == 0 {
                // `7E 7E`: the end of nothing and a start; stay in a frame.
                src.advance(1);
                continue;
            }
            if end > self.max_frame {
                src.advance(end + 1);
                return Ok(Some(self.oversized(end)));
            }
            let escaped = src.split_to(end);
            src.advance(1);
            let item = self.parse(&escaped);
            // After a good frame its flag was a closing one; after a bad one
            // it may as well open the next frame (resynchronisation).
            self.in_frame = !matches!(item, Inbound::Packet(_));
            return Ok(Some(item));
        }
    }
}

impl Jt808Codec {
    /// The frame's bytes are dropped; what follows is read afresh.
    fn oversized(&mut self, n: usize) -> Inbound {
        self.in_frame = false;
        self.scanned = 0;
        rejected(
            FrameReject::Oversized,
            None,
            format!("frame of more than {} bytes ({n} so far)", self.max_frame),
        )
    }
}

impl Encoder<Outbound> for Jt808Codec {
    type Error = std::io::Error;

    fn encode(&mut self, item: Outbound, dst: &mut BytesMut) -> Result<(), std::io::Error> {
        dst.put_slice(&item.to_frame());
        Ok(())
    }
}
