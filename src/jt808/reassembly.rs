//! Sub-packaged messages put back together, with bounded memory: one
//! message in progress per connection, at most [`MAX_PARTS`] parts and
//! `max_bytes` in all. A new message (another id, or parts whose serials do
//! not follow on) abandons the one in progress: a terminal sends one
//! sub-packaged message at a time.

use super::codec::Packet;
use super::header::Part;

pub const MAX_PARTS: u16 = 128;

#[derive(Debug, PartialEq, Eq)]
pub enum Reassembled {
    /// Not sub-packaged, or the last missing part: the whole message.
    Whole(Packet),
    /// A part kept; more are needed.
    Partial,
    /// The part cannot be used (the text says why); what was kept of its
    /// message is dropped.
    Refused(String),
}

#[derive(Debug)]
struct InProgress {
    msg_id: u16,
    /// Serial of part 1: parts are numbered consecutively.
    first_serial: u16,
    total: u16,
    parts: Vec<Option<Vec<u8>>>,
    bytes: usize,
    first: Packet,
}

#[derive(Debug)]
pub struct Reassembler {
    max_bytes: usize,
    current: Option<InProgress>,
}

impl Reassembler {
    pub fn new(max_bytes: usize) -> Reassembler {
        Reassembler {
            max_bytes,
            current: None,
        }
    }

    /// Bytes held for a message in progress.
    pub fn held(&self) -> usize {
        self.current.as_ref().map_or(0, |c| c.bytes)
    }

    pub fn push(&mut self, packet: Packet) -> Reassembled {
        let Some(Part { total, index }) = packet.header.part else {
            return Reassembled::Whole(packet);
        };
        if total == 0 || index == 0 || index > total || total > MAX_PARTS {
            self.current = None;
            return Reassembled::Refused(format!(
                "part {index} of {total} (parts are 1..={MAX_PARTS})"
            ));
        }
        let first_serial = packet.header.serial.wrapping_sub(index - 1);
        let same = self.current.as_ref().is_some_and(|c| {
            c.msg_id == packet.header.msg_id && c.first_serial == first_serial && c.total == total
        });
        if !same {
            self.current = Some(InProgress {
                msg_id: packet.header.msg_id,
                first_serial,
                total,
                parts: vec![None; usize::from(total)],
                bytes: 0,
                first: Packet {
                    header: packet.header,
                    body: Vec::new(),
                },
            });
        }
        let Some(cur) = self.current.as_mut() else {
            return Reassembled::Partial;
        };
        let slot = usize::from(index - 1);
        if cur.parts[slot].is_none() {
            if cur.bytes + packet.body.len() > self.max_bytes {
                let max = self.max_bytes;
                self.current = None;
                return Reassembled::Refused(format!("sub-packaged message over {max} bytes"));
            }
            cur.bytes += packet.body.len();
            if index == 1 {
                cur.first.header = packet.header;
            }
            cur.parts[slot] = Some(packet.body);
        }
        if cur.parts.iter().any(Option::is_none) {
            return Reassembled::Partial;
        }
        let Some(done) = self.current.take() else {
            return Reassembled::Partial;
        };
        let mut body = Vec::with_capacity(done.bytes);
        for p in done.parts.into_iter().flatten() {
            body.extend_from_slice(&p);
        }
        let mut header = done.first.header;
        header.part = None;
        header.attrs.subpackaged = false;
        header.attrs.len = body.len().min(0x3FF) as u16;
        header.serial = done.first_serial;
        Reassembled::Whole(Packet { header, body })
    }
}
