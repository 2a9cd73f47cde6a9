//! The signature every delivery carries, Stripe-style:
//! `Expansion-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`,
//! keyed by the endpoint's secret. A receiver recomputes the HMAC over the
//! raw body it got, compares in constant time, and refuses a timestamp more
//! than [`TOLERANCE_SECS`] from its clock (a replayed old request).

use ring::hmac;

/// The header name (HTTP header names are case-insensitive).
pub const HEADER: &str = "expansion-signature";
/// How far from the receiver's clock a signature's timestamp may be.
pub const TOLERANCE_SECS: i64 = 300;

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> hmac::Tag {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut context = hmac::Context::with_key(&key);
    context.update(timestamp.to_string().as_bytes());
    context.update(b".");
    context.update(body);
    context.sign()
}

/// The header value for `body` sent at `timestamp`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac(secret, timestamp, body))
    )
}

/// Why a signature does not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    Malformed,
    OutsideTolerance,
    NoMatch,
}

/// Checks a header the way a receiver should: any `v1` that matches, with
/// `t` within `tolerance` seconds of `now`.
pub fn verify(
    header: &str,
    secret: &[u8],
    body: &[u8],
    now: i64,
    tolerance: i64,
) -> Result<(), Invalid> {
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", v)) => candidates.push(hex::decode(v).map_err(|_| Invalid::Malformed)?),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(Invalid::Malformed)?;
    if candidates.is_empty() {
        return Err(Invalid::Malformed);
    }
    if (now - timestamp).abs() > tolerance {
        return Err(Invalid::OutsideTolerance);
    }
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut signed = timestamp.to_string().into_bytes();
    signed.push(b'.');
    signed.extend_from_slice(body);
    if candidates
        .iter()
        .any(|c| hmac::verify(&key, &signed, c).is_ok())
    {
        Ok(())
    } else {
        Err(Invalid::NoMatch)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_known_hmac_sha256() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let header = sign(b"Jefe", 0, b"what do ya want for nothing?");
        assert_ne!(header, "");
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"Jefe");
        let tag = hmac::sign(&key, b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(tag),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn verifies_its_own_and_refuses_tampering_and_old_timestamps() {
        let body = br#"{"event_id":"e1"}"#;
        let header = sign(b"0123456789abcdef", 1_700_000_000, body);
        assert!(header.starts_with("t=1700000000,v1="));
        let ok = |h: &str, b: &[u8], now| verify(h, b"0123456789abcdef", b, now, TOLERANCE_SECS);
        assert_eq!(ok(&header, body, 1_700_000_100), Ok(()));
        assert_eq!(ok(&header, b"{}", 1_700_000_100), Err(Invalid::NoMatch));
        assert_eq!(
            ok(&header, body, 1_700_000_000 + 301),
            Err(Invalid::OutsideTolerance)
        );
        assert_eq!(ok("v1=00", body, 0), Err(Invalid::Malformed));
        assert_eq!(
            verify(&header, b"another secret!!", body, 1_700_000_000, 300),
            Err(Invalid::NoMatch)
        );
    }
}
