//! The GPS fix, the unit of everything muckwatch watches, and why a message
//! is refused as one. Plain values that cost no allocation, because
//! millions of them pass through the hot path.

use chrono::{DateTime, Utc};

pub use crate::identity::DeviceId;

/// One validated position report. Time is kept as UTC milliseconds: rules
/// compare and subtract fix times constantly, and the offset the terminal
/// used carries no meaning once the instant is known.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fix {
    pub device_id: DeviceId,
    pub ts_ms: i64,
    pub lat: f64,
    pub lon: f64,
    pub speed_kmh: f64,
    pub heading: Option<f64>,
    pub acc: Option<bool>,
    pub tipper_up: Option<bool>,
    pub cover_closed: Option<bool>,
    pub load_t: Option<f64>,
}

impl Fix {
    pub fn time(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.ts_ms).unwrap_or_default()
    }
}

/// Why a message (or one fix of a batch) was refused; the label is the
/// `reason` of `muckwatch_messages_rejected_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    BadTopic,
    Oversized,
    NotJson,
    BatchTooLong,
    EmptyBatch,
    WrongType,
    MissingField,
    BadTimestamp,
    OutOfRange,
    NonFinite,
    DeviceMismatch,
    /// A NUL byte in the payload, or a control character in a text field.
    ControlCharacter,
}

impl RejectReason {
    pub const ALL: [RejectReason; 12] = [
        RejectReason::BadTopic,
        RejectReason::Oversized,
        RejectReason::NotJson,
        RejectReason::BatchTooLong,
        RejectReason::EmptyBatch,
        RejectReason::WrongType,
        RejectReason::MissingField,
        RejectReason::BadTimestamp,
        RejectReason::OutOfRange,
        RejectReason::NonFinite,
        RejectReason::DeviceMismatch,
        RejectReason::ControlCharacter,
    ];

    pub fn label(self) -> &'static str {
        match self {
            RejectReason::BadTopic => "bad_topic",
            RejectReason::Oversized => "oversized",
            RejectReason::NotJson => "not_json",
            RejectReason::BatchTooLong => "batch_too_long",
            RejectReason::EmptyBatch => "empty_batch",
            RejectReason::WrongType => "wrong_type",
            RejectReason::MissingField => "missing_field",
            RejectReason::BadTimestamp => "bad_timestamp",
            RejectReason::OutOfRange => "out_of_range",
            RejectReason::NonFinite => "non_finite",
            RejectReason::DeviceMismatch => "device_mismatch",
            RejectReason::ControlCharacter => "control_character",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}
