//! JT/T 808: the TCP protocol of Chinese vehicle terminals (2011/2013 and
//! 2019 editions), so that real muck trucks reach the same pipeline as MQTT
//! JSON.
//!
//! Layers, bottom up: [`frame`] (0x7E framing, 0x7D escapes, XOR
//! checksum), [`header`] (both editions, body attributes, BCD phone as the
//! device id), [`body`] and [`location`] (the messages muckwatch reads and
//! answers, GBK strings, TLV extras), [`codec`] (the `tokio_util` stream
//! codec, refusals by reason) and [`reassembly`] (sub-packaged messages,
//! bounded); then the gateway: [`settings`] and [`profile`] (`[jt808]`,
//! from a location to the telemetry object, per terminal profile),
//! [`publish`] (MQTT publishes answered only once the broker acknowledged
//! them), [`durable`] (with the embedded broker, once ingest committed them), [`connection`] (one terminal's session) and [`gateway`] (the TCP
//! listener and its limits).

pub mod body;
pub mod codec;
pub mod connection;
pub mod durable;
pub mod frame;
pub mod gateway;
pub mod header;
pub mod location;
pub mod profile;
pub mod publish;
pub mod reassembly;
pub mod settings;

#[cfg(test)]
mod reference_frames;

pub use body::{Authenticate, Batch, BatchKind, Message, Register};
pub use codec::{FrameReject, Inbound, Jt808Codec, Outbound, Packet, MAX_FRAME};
pub use gateway::Gateway;
pub use header::{BodyAttrs, Edition, Header, Part};
pub use location::{BcdTime, Extra, Location};
pub use reassembly::{Reassembled, Reassembler};
pub use settings::Jt808Settings;
