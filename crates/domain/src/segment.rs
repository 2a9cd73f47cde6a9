//! Customer segments: which products fit an account and how big its wallet is.

use crate::error::named_enum;

named_enum! {
    /// The size class of a customer account.
    pub enum Segment("segment") {
        Smb => "SMB",
        MidMarket => "MID_MARKET",
        Enterprise => "ENTERPRISE",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn names_round_trip() {
        assert_eq!(Segment::Smb.as_str(), "SMB");
        assert_eq!(Segment::MidMarket.as_str(), "MID_MARKET");
        assert_eq!(Segment::Enterprise.to_string(), "ENTERPRISE");
        for segment in Segment::ALL {
            assert_eq!(Segment::from_str(segment.as_str()).unwrap(), *segment);
        }
        assert_eq!(
            Segment::from_str("smb").unwrap_err().to_string(),
            "unknown segment \"smb\"; expected one of SMB, MID_MARKET, ENTERPRISE"
        );
    }

    #[test]
    fn segments_are_ordered_by_size() {
        assert!(Segment::Smb < Segment::MidMarket);
        assert!(Segment::MidMarket < Segment::Enterprise);
    }
}
