//! JT/T 808: the TCP protocol of Chinese vehicle terminals (2011/2013 and
//! 2019 editions), so that real muck trucks reach the same pipeline as MQTT
//! JSON.
//!
//! Layers, bottom up: [`frame`] (0x7E framing, 0x7D escapes, XOR
//! checksum), [`header`] (both editions, body attributes, BCD phone as the
//! device id), [`body`] and [`location`] (the messages muckwatch reads and
//! answers, GBK strings, TLV extras), [`codec`] (the `tokio_util` stream
//! codec, refusals by reason) and [`reassembly`] (sub-packaged messages,
//! bounded).

pub mod body;
pub mod codec;
pub mod frame;
pub mod header;
pub mod location;
pub mod reassembly;

#[cfg(test)]
mod reference_frames;

pub use body::{Authenticate, Batch, BatchKind, Message, Register};
pub use codec::{FrameReject, Inbound, Jt808Codec, Outbound, Packet, MAX_FRAME};
pub use header::{BodyAttrs, Edition, Header, Part};
pub use location::{BcdTime, Extra, Location};
pub use reassembly::{Reassembled, Reassembler};
