//! An account's links to others, checked before an upsert writes it: its
//! parent chain (the parent exists, no cycle, at most [`MAX_PARENT_DEPTH`]
//! deep) and its CRM reference (no other account holds it).

use contracts::ApiError;
use domain::ExternalId;

/// Deepest parent chain walked when checking for cycles.
pub const MAX_PARENT_DEPTH: usize = 64;

/// The parent chain as the store walked it from the requested parent up:
/// at most [`MAX_PARENT_DEPTH`] ids, ending at an account without a parent,
/// at an id no account has (`last_missing`), or at the account being written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParentChain {
    pub ids: Vec<String>,
    /// The last id is no account's.
    pub last_missing: bool,
}

/// The parent must exist and must not have `id` (the account being
/// written) among its ancestors.
pub fn check_parent_chain(id: &str, chain: &ParentChain) -> Result<(), ApiError> {
    if chain.ids.iter().any(|ancestor| ancestor == id) {
        return Err(ApiError::invalid(
            "parent_account_id",
            "the parent chain would form a cycle",
        ));
    }
    match chain.ids.as_slice() {
        [parent] if chain.last_missing => Err(ApiError::invalid(
            "parent_account_id",
            format!("no account has id {parent}"),
        )),
        ids if !chain.last_missing && ids.len() >= MAX_PARENT_DEPTH => Err(ApiError::invalid(
            "parent_account_id",
            format!("the parent chain is deeper than {MAX_PARENT_DEPTH} accounts"),
        )),
        _ => Ok(()),
    }
}

/// An account's CRM reference `ext` may change only to one no other account
/// holds (`holder`: the account that has it now, if any).
pub fn check_external_ref_free(
    ext: &ExternalId,
    account_id: &str,
    holder: Option<&str>,
) -> Result<(), ApiError> {
    match holder {
        Some(other) if other != account_id => Err(ApiError::invalid(
            "external_ref",
            format!("{ext} already belongs to account {other}"),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn chain(ids: &[&str], last_missing: bool) -> ParentChain {
        ParentChain {
            ids: ids.iter().map(|s| (*s).to_owned()).collect(),
            last_missing,
        }
    }

    fn message(err: ApiError) -> (String, String) {
        match err {
            ApiError::InvalidArgument { violations } => (
                violations[0].field.clone(),
                violations[0].description.clone(),
            ),
            other => panic!("not a field violation: {other:?}"),
        }
    }

    #[test]
    fn a_parent_chain_ending_at_a_root_or_an_unknown_ancestor_is_fine() {
        assert!(check_parent_chain("me", &chain(&["p", "gp"], false)).is_ok());
        // A dangling link further up is not the request's fault.
        assert!(check_parent_chain("me", &chain(&["p", "gone"], true)).is_ok());
    }

    #[test]
    fn the_parent_must_exist() {
        let err = check_parent_chain("me", &chain(&["p"], true)).unwrap_err();
        assert_eq!(
            message(err),
            ("parent_account_id".into(), "no account has id p".into())
        );
    }

    #[test]
    fn an_account_cannot_be_its_own_ancestor() {
        let err = check_parent_chain("me", &chain(&["p", "me"], false)).unwrap_err();
        assert_eq!(
            message(err),
            (
                "parent_account_id".into(),
                "the parent chain would form a cycle".into()
            )
        );
        assert!(check_parent_chain("me", &chain(&["me"], false)).is_err());
    }

    #[test]
    fn a_chain_of_max_depth_accounts_is_too_deep() {
        let ids: Vec<String> = (0..MAX_PARENT_DEPTH).map(|i| format!("a{i}")).collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let err = check_parent_chain("me", &chain(&refs, false)).unwrap_err();
        assert_eq!(
            message(err).1,
            format!("the parent chain is deeper than {MAX_PARENT_DEPTH} accounts")
        );
        assert!(check_parent_chain("me", &chain(&refs[..MAX_PARENT_DEPTH - 1], false)).is_ok());
        assert!(check_parent_chain("me", &chain(&refs, true)).is_ok());
    }

    #[test]
    fn a_crm_reference_belongs_to_one_account() {
        let ext = ExternalId::parse("salesforce", "001A").unwrap();
        assert!(check_external_ref_free(&ext, "a", None).is_ok());
        assert!(check_external_ref_free(&ext, "a", Some("a")).is_ok());
        let err = check_external_ref_free(&ext, "a", Some("b")).unwrap_err();
        assert_eq!(message(err).0, "external_ref");
    }
}
