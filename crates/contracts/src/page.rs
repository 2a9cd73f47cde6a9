//! List pagination (AIP-158): page sizes and opaque page tokens.
//!
//! A token carries the last key of the previous page (keyset pagination, so
//! pages stay stable while rows are added) and a fingerprint of the list's
//! other parameters, so a token cannot be replayed against another query.

use crate::error::ApiError;

pub const DEFAULT_PAGE_SIZE: u64 = 50;
pub const MAX_PAGE_SIZE: u64 = 1000;

/// `page_size`: 0 means the default, above the maximum is coerced down,
/// negative is an error.
pub fn page_size(field: &str, requested: i32) -> Result<u64, ApiError> {
    match requested {
        n if n < 0 => Err(ApiError::invalid(field, "page_size must not be negative")),
        0 => Ok(DEFAULT_PAGE_SIZE),
        n => Ok(u64::try_from(n).unwrap_or(MAX_PAGE_SIZE).min(MAX_PAGE_SIZE)),
    }
}

/// Fingerprint of a list request's filter parameters: the same in every
/// replica and every build, so a token one replica issued is read by another.
pub fn fingerprint(parts: &[&str]) -> u64 {
    crate::fnv1a(
        parts
            .iter()
            .flat_map(|part| part.bytes().chain(std::iter::once(0x1f))),
    )
}

/// Encodes the last key seen plus the filter fingerprint as an opaque token.
pub fn encode_token(last_key: &str, filter: u64) -> String {
    let raw = format!("1:{filter:016x}:{last_key}");
    raw.bytes()
        .map(|b| format!("{:02x}", b ^ 0x5a))
        .collect::<String>()
}

/// Decodes a token made by [`encode_token`]; `None` for an empty token.
pub fn decode_token(field: &str, token: &str, filter: u64) -> Result<Option<String>, ApiError> {
    if token.is_empty() {
        return Ok(None);
    }
    let invalid = || ApiError::invalid(field, "page_token is not a token this list returned");
    if !token.len().is_multiple_of(2) || token.len() > 4096 {
        return Err(invalid());
    }
    let bytes = (0..token.len())
        .step_by(2)
        .map(|i| {
            token
                .get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .map(|b| b ^ 0x5a)
        })
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(invalid)?;
    let raw = String::from_utf8(bytes).map_err(|_| invalid())?;
    let mut parts = raw.splitn(3, ':');
    let (Some("1"), Some(hash), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(invalid());
    };
    if u64::from_str_radix(hash, 16).ok() != Some(filter) {
        return Err(ApiError::invalid(
            field,
            "page_token was issued for a list with other parameters",
        ));
    }
    Ok(Some(key.to_owned()))
}

/// The rows of a page fetched with one row more than `limit` (ask the
/// database for `limit + 1`): trims the extra row and returns the token of
/// the next page — the last kept row's key — or an empty token when there is
/// none, so the last page never points at an empty one.
pub fn next_page<T>(
    rows: &mut Vec<T>,
    limit: u64,
    filter: u64,
    key: impl Fn(&T) -> String,
) -> String {
    let size = usize::try_from(limit).unwrap_or(usize::MAX);
    if rows.len() <= size {
        return String::new();
    }
    rows.truncate(size);
    rows.last()
        .map(|row| encode_token(&key(row), filter))
        .unwrap_or_default()
}

/// [`next_page`] of a list paged by offset (rows in an order no key
/// continues): the token holds where the next page starts.
pub fn next_offset_page<T>(rows: &mut Vec<T>, limit: u64, filter: u64, offset: u64) -> String {
    next_page(rows, limit, filter, |_| {
        offset.saturating_add(limit).to_string()
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn an_offset_page_points_past_its_rows() {
        let mut rows = vec![1, 2, 3];
        let token = next_offset_page(&mut rows, 2, 9, 40);
        assert_eq!(rows, [1, 2]);
        assert_eq!(
            decode_token("page_token", &token, 9).unwrap().as_deref(),
            Some("42")
        );
        assert_eq!(next_offset_page(&mut vec![1, 2], 2, 9, 40), "");
    }

    #[test]
    fn a_page_fetched_one_row_long_has_a_next_page_and_loses_the_extra_row() {
        let mut rows = vec!["a", "b", "c"];
        let token = next_page(&mut rows, 2, 7, |r| r.to_string());
        assert_eq!(rows, ["a", "b"]);
        assert_eq!(
            decode_token("page_token", &token, 7).unwrap().as_deref(),
            Some("b")
        );

        let mut last = vec!["d", "e"];
        assert_eq!(next_page(&mut last, 2, 7, |r| r.to_string()), "");
        assert_eq!(last, ["d", "e"]);
        assert_eq!(
            next_page(&mut Vec::<&str>::new(), 2, 7, |r| r.to_string()),
            ""
        );
    }

    #[test]
    fn filter_fingerprints_are_the_same_in_every_build() {
        // FNV-1a of "accounts\x1fGREEN\x1f", worked by hand: a token issued
        // by one replica (or release) is read by every other.
        assert_eq!(fingerprint(&["accounts", "GREEN"]), 0x9a51_83dc_fc76_90aa);
        assert_ne!(fingerprint(&["ab", "c"]), fingerprint(&["a", "bc"]));
    }

    #[test]
    fn page_size_rules() {
        assert_eq!(page_size("page_size", 0).unwrap(), 50);
        assert_eq!(page_size("page_size", 7).unwrap(), 7);
        assert_eq!(page_size("page_size", 5000).unwrap(), 1000);
        assert!(page_size("page_size", -1).is_err());
    }

    #[test]
    fn token_round_trips_and_checks_filters() {
        let filter = fingerprint(&["SMB", "alice"]);
        let token = encode_token("0193-abc", filter);
        assert!(!token.contains("0193"));
        assert_eq!(
            decode_token("page_token", &token, filter)
                .unwrap()
                .as_deref(),
            Some("0193-abc")
        );
        assert!(decode_token("page_token", &token, fingerprint(&["ENTERPRISE"])).is_err());
        assert!(decode_token("page_token", "zz", filter).is_err());
        assert!(decode_token("page_token", "", filter).unwrap().is_none());
    }
}
