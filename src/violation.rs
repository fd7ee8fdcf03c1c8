//! The violation codes of the contract. Detection lives in `rules`; this is
//! only the vocabulary that metrics, storage and the API share.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ViolationCode {
    NoPermit,
    OutOfHours,
    RouteDeviation,
    RestrictedZone,
    Speeding,
    IllegalDumping,
    WrongDisposalSite,
    CoverOpen,
    Overload,
    TrackGap,
}

impl ViolationCode {
    pub const ALL: [ViolationCode; 10] = [
        ViolationCode::NoPermit,
        ViolationCode::OutOfHours,
        ViolationCode::RouteDeviation,
        ViolationCode::RestrictedZone,
        ViolationCode::Speeding,
        ViolationCode::IllegalDumping,
        ViolationCode::WrongDisposalSite,
        ViolationCode::CoverOpen,
        ViolationCode::Overload,
        ViolationCode::TrackGap,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ViolationCode::NoPermit => "NO_PERMIT",
            ViolationCode::OutOfHours => "OUT_OF_HOURS",
            ViolationCode::RouteDeviation => "ROUTE_DEVIATION",
            ViolationCode::RestrictedZone => "RESTRICTED_ZONE",
            ViolationCode::Speeding => "SPEEDING",
            ViolationCode::IllegalDumping => "ILLEGAL_DUMPING",
            ViolationCode::WrongDisposalSite => "WRONG_DISPOSAL_SITE",
            ViolationCode::CoverOpen => "COVER_OPEN",
            ViolationCode::Overload => "OVERLOAD",
            ViolationCode::TrackGap => "TRACK_GAP",
        }
    }

    pub fn parse(s: &str) -> Option<ViolationCode> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for ViolationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for (i, c) in ViolationCode::ALL.into_iter().enumerate() {
            assert_eq!(ViolationCode::parse(c.as_str()), Some(c));
            assert_eq!(c.index(), i);
        }
        assert_eq!(ViolationCode::parse("SPEED"), None);
    }
}
