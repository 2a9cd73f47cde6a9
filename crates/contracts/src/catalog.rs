//! The event catalog: every event kind the services write, the resource its
//! `subject_id` names, and the fields of its `data`. README renders it (a
//! test keeps the two equal), and a test of the binary checks that the kinds
//! here are exactly the kinds the code emits. The same payloads reach
//! `WatchEvents` and webhooks.

/// One event kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventKind {
    pub event_type: &'static str,
    /// What `subject_id` is the id of.
    pub subject: &'static str,
    /// The fields of `data`, each described in [`FIELDS`].
    pub fields: &'static [&'static str],
}

const fn kind(
    event_type: &'static str,
    subject: &'static str,
    fields: &'static [&'static str],
) -> EventKind {
    EventKind {
        event_type,
        subject,
        fields,
    }
}

const ACCOUNT: &[&str] = &[
    "account_id",
    "account_external_ref",
    "name",
    "owner_csm",
    "principal",
];
const PRODUCT: &[&str] = &["product_id", "name", "principal"];
const SUBSCRIPTION: &[&str] = &[
    "subscription_id",
    "account_id",
    "account_external_ref",
    "product_id",
    "tier",
    "mrr",
    "currency_code",
    "start_date",
    "source_opportunity_id",
    "principal",
];
const TRIGGER: &[&str] = &[
    "trigger_id",
    "account_id",
    "account_external_ref",
    "product_id",
    "kind",
    "motion",
    "status",
    "priority",
    "reason",
    "suppression_reason",
    "opportunity_id",
];
const HANDOFF_ENDED: &[&str] = &[
    "handoff_id",
    "opportunity_id",
    "requested_by",
    "reason",
    "principal",
];

/// Every event kind, by service.
pub const EVENTS: &[EventKind] = &[
    kind("health.account.created", "account", ACCOUNT),
    kind("health.account.updated", "account", ACCOUNT),
    kind("health.product.created", "product", PRODUCT),
    kind("health.product.updated", "product", PRODUCT),
    kind("health.subscription.created", "subscription", SUBSCRIPTION),
    kind("health.subscription.updated", "subscription", SUBSCRIPTION),
    kind(
        "health.subscription.upsold",
        "subscription",
        &[
            "subscription_id",
            "account_id",
            "account_external_ref",
            "product_id",
            "opportunity_id",
            "effective_date",
            "mrr_increase",
            "mrr",
            "currency_code",
            "previous_tier",
            "tier",
            "principal",
        ],
    ),
    kind(
        "health.subscription.cancelled",
        "subscription",
        &[
            "subscription_id",
            "account_id",
            "account_external_ref",
            "product_id",
            "source_opportunity_id",
            "upsell_opportunity_ids",
            "cancel_date",
            "reason",
            "mrr",
            "currency_code",
            "principal",
        ],
    ),
    kind(
        "health.scorecard.version_added",
        "scorecard",
        &["scorecard_id", "version", "principal"],
    ),
    kind(
        "health.band.changed",
        "account",
        &[
            "account_id",
            "account_external_ref",
            "product_id",
            "previous_band",
            "band",
            "score",
        ],
    ),
    kind(
        "health.override.set",
        "account",
        &[
            "account_id",
            "account_external_ref",
            "product_id",
            "score",
            "reason",
            "principal",
        ],
    ),
    kind("health.trigger.fired", "trigger", TRIGGER),
    kind("health.trigger.ready", "trigger", TRIGGER),
    kind("health.trigger.suppressed", "trigger", TRIGGER),
    kind("health.trigger.converted", "trigger", TRIGGER),
    kind("health.trigger.closed", "trigger", TRIGGER),
    kind(
        "pipeline.opportunity.created",
        "opportunity",
        &[
            "opportunity_id",
            "account_id",
            "account_external_ref",
            "product_id",
            "motion",
            "stage",
            "amount",
            "currency_code",
            "source",
            "trigger_id",
            "principal",
            "source_time",
        ],
    ),
    kind(
        "pipeline.opportunity.updated",
        "opportunity",
        &["opportunity_id", "fields", "principal"],
    ),
    kind(
        "pipeline.opportunity.stage_changed",
        "opportunity",
        &[
            "opportunity_id",
            "account_id",
            "account_external_ref",
            "from_stage",
            "to_stage",
            "probability",
            "probability_reset",
            "reason",
            "principal",
            "source_time",
        ],
    ),
    kind(
        "pipeline.opportunity.gate_overridden",
        "opportunity",
        &[
            "opportunity_id",
            "from_stage",
            "to_stage",
            "overridden",
            "reason",
            "principal",
        ],
    ),
    kind(
        "pipeline.opportunity.reopened",
        "opportunity",
        &["opportunity_id", "from_stage", "reason", "principal"],
    ),
    kind(
        "pipeline.opportunity.closed_won",
        "opportunity",
        &[
            "opportunity_id",
            "account_id",
            "account_external_ref",
            "product_id",
            "source_product_id",
            "motion",
            "amount",
            "amount_minor",
            "currency_code",
            "close_date",
            "originator",
            "owner",
            "owner_team",
            "source",
            "trigger_id",
            "subscription_id",
            "handoff",
            "principal",
        ],
    ),
    kind(
        "pipeline.opportunity.closed_lost",
        "opportunity",
        &[
            "opportunity_id",
            "account_id",
            "account_external_ref",
            "product_id",
            "motion",
            "amount",
            "currency_code",
            "close_date",
            "from_stage",
            "lost_reason",
            "trigger_id",
            "principal",
        ],
    ),
    kind(
        "pipeline.handoff.requested",
        "handoff",
        &[
            "handoff_id",
            "opportunity_id",
            "account_id",
            "account_external_ref",
            "requested_by",
            "snapshot_gaps",
            "source_time",
        ],
    ),
    kind(
        "pipeline.handoff.accepted",
        "handoff",
        &[
            "handoff_id",
            "opportunity_id",
            "requested_by",
            "owner",
            "owner_team",
            "originator",
            "principal",
        ],
    ),
    kind("pipeline.handoff.rejected", "handoff", HANDOFF_ENDED),
    kind("pipeline.handoff.withdrawn", "handoff", HANDOFF_ENDED),
    kind(
        "pipeline.wallet_estimate.upserted",
        "account",
        &[
            "account_id",
            "account_external_ref",
            "product_area",
            "annual_spend_minor",
            "currency_code",
            "served_by",
            "effective_date",
            "principal",
        ],
    ),
    kind(
        "credit.policy.version_added",
        "policy",
        &["policy_id", "version", "effective_date", "principal"],
    ),
    kind(
        "credit.deal.credited",
        "deal",
        &[
            "deal_id",
            "policy_id",
            "policy_version",
            "currency_code",
            "basis",
            "entry_ids",
            "principal",
        ],
    ),
    kind(
        "credit.deal.splits_replaced",
        "deal",
        &["deal_id", "revision", "reason", "entry_ids", "principal"],
    ),
    kind(
        "credit.credits.released",
        "release",
        &["deal_ids", "entry_ids", "note", "principal"],
    ),
    kind(
        "credit.deal.clawed_back",
        "deal",
        &[
            "deal_id",
            "subscription_id",
            "cancel_date",
            "mode",
            "elapsed_days",
            "window_days",
            "currency_code",
            "recovered",
            "forfeited",
            "entry_ids",
            "principal",
        ],
    ),
    kind(
        "credit.dispute.opened",
        "dispute",
        &[
            "dispute_id",
            "entry_id",
            "deal_id",
            "participant_id",
            "reason",
            "principal",
        ],
    ),
    kind(
        "credit.dispute.resolved",
        "dispute",
        &[
            "dispute_id",
            "entry_id",
            "deal_id",
            "outcome",
            "adjustment_entry_id",
            "adjustment",
            "currency_code",
            "principal",
        ],
    ),
    kind(
        "credit.person.upserted",
        "person",
        &[
            "person_id",
            "version",
            "role",
            "team",
            "manager_id",
            "principal",
        ],
    ),
];

/// What each field of an event's `data` means, wherever it appears.
pub const FIELDS: &[(&str, &str)] = &[
    ("account_id", "the account (health's id)"),
    (
        "account_external_ref",
        "the account's CRM record, `{system, id}` (absent when it has none)",
    ),
    (
        "adjustment",
        "the ADJUSTMENT a ruling wrote, in minor units (null when none)",
    ),
    ("adjustment_entry_id", "the ledger entry of that adjustment"),
    ("amount", "a decimal amount in `currency_code`"),
    ("amount_minor", "the same amount in minor units"),
    (
        "annual_spend_minor",
        "estimated yearly spend on the product area, minor units",
    ),
    (
        "band",
        "the health band now: GREEN, YELLOW, RED (null when not scored)",
    ),
    (
        "basis",
        "what the credits split: the amount or the margin, decimal",
    ),
    ("cancel_date", "`YYYY-MM-DD` the subscription ends"),
    ("close_date", "`YYYY-MM-DD` the deal closed"),
    ("currency_code", "ISO 4217 code of the event's amounts"),
    ("deal_id", "the credited deal"),
    ("deal_ids", "the deals whose credits were released"),
    ("dispute_id", "the dispute"),
    ("effective_date", "`YYYY-MM-DD` from which it holds"),
    ("elapsed_days", "days from the close to the cancellation"),
    ("entry_id", "the ledger entry concerned"),
    (
        "entry_ids",
        "the ledger entries written (a csm/ae watcher sees only its own)",
    ),
    ("fields", "names of the fields that changed"),
    ("forfeited", "held credit forfeited, decimal"),
    ("from_stage", "the stage before"),
    (
        "handoff",
        "the accepted handoff the deal went through, if any",
    ),
    ("handoff_id", "the handoff"),
    ("kind", "the trigger rule that fired"),
    ("lost_reason", "why the deal was lost"),
    ("manager_id", "the person's manager (empty for none)"),
    ("mode", "the policy's clawback mode"),
    ("motion", "the expansion motion (cross-sell, upsell, …)"),
    ("mrr", "monthly recurring revenue after the change, decimal"),
    ("mrr_increase", "what the upsell added to the MRR, decimal"),
    ("name", "display name"),
    ("note", "the approver's note"),
    (
        "opportunity_id",
        "the opportunity (the pipeline's id; a deal's id in credit)",
    ),
    ("originator", "who originated the deal"),
    ("outcome", "the ruling's outcome"),
    ("overridden", "the health gates overridden"),
    ("owner", "the deal's owner (an AE)"),
    ("owner_csm", "the account's CSM"),
    ("owner_team", "the owner's team"),
    ("participant_id", "the person credited"),
    ("person_id", "the person of the directory"),
    ("policy_id", "the credit policy"),
    ("policy_version", "the policy version in force at the close"),
    (
        "previous_band",
        "the health band before (null when first scored)",
    ),
    ("previous_tier", "the tier before the upsell"),
    ("principal", "the key (person) that made the change"),
    ("priority", "the trigger's priority"),
    ("probability", "win probability now, percent"),
    (
        "probability_reset",
        "whether the stage move reset a manual probability",
    ),
    ("product_area", "the product area of the wallet estimate"),
    ("product_id", "the product"),
    ("reason", "the reason given"),
    ("recovered", "released credit recovered, decimal"),
    ("requested_by", "who requested the handoff"),
    ("revision", "the split set's revision"),
    ("role", "the person's role"),
    ("score", "health score, decimal text (null when not scored)"),
    ("scorecard_id", "the scorecard"),
    (
        "served_by",
        "who serves that spend now (us, a competitor, in house, nobody)",
    ),
    ("snapshot_gaps", "what the handoff package lacks"),
    (
        "source",
        "where the opportunity came from (a trigger, or entered by hand)",
    ),
    (
        "source_opportunity_id",
        "the won deal that created the subscription, if any",
    ),
    (
        "source_product_id",
        "the product whose health a cross-sell rests on",
    ),
    (
        "source_time",
        "when it happened in the source system, on an import's backdated write (`occur_time`; absent otherwise)",
    ),
    ("stage", "the stage"),
    ("start_date", "`YYYY-MM-DD` the subscription starts"),
    ("status", "the trigger's status now"),
    ("subscription_id", "the subscription"),
    ("suppression_reason", "why the trigger is suppressed"),
    ("team", "the person's team"),
    ("tier", "the subscription's tier"),
    ("to_stage", "the stage after"),
    ("trigger_id", "the expansion trigger"),
    (
        "upsell_opportunity_ids",
        "won upsells that grew the subscription",
    ),
    ("version", "the version written"),
    ("window_days", "the policy's clawback window"),
];

/// The kind of `event_type`, if catalogued.
pub fn kind_of(event_type: &str) -> Option<&'static EventKind> {
    EVENTS.iter().find(|k| k.event_type == event_type)
}

/// The catalog as README shows it.
pub fn markdown() -> String {
    let mut out = String::from("| event type | `subject_id` is | `data` fields |\n|---|---|---|\n");
    for kind in EVENTS {
        let fields: Vec<String> = kind.fields.iter().map(|f| format!("`{f}`")).collect();
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            kind.event_type,
            kind.subject,
            fields.join(", ")
        ));
    }
    out.push_str("\n| field | meaning |\n|---|---|\n");
    for (field, meaning) in FIELDS {
        out.push_str(&format!("| `{field}` | {meaning} |\n"));
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn every_field_has_its_meaning_and_every_meaning_a_field() {
        let used: BTreeSet<&str> = EVENTS
            .iter()
            .flat_map(|k| k.fields.iter().copied())
            .collect();
        let described: BTreeSet<&str> = FIELDS.iter().map(|(f, _)| *f).collect();
        assert_eq!(used, described);
        let kinds: BTreeSet<&str> = EVENTS.iter().map(|k| k.event_type).collect();
        assert_eq!(kinds.len(), EVENTS.len(), "a kind listed twice");
    }

    #[test]
    fn readme_shows_the_catalog() {
        let readme = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"));
        assert!(
            readme.contains(&markdown()),
            "README's event catalog differs from contracts::catalog; paste this:\n{}",
            markdown()
        );
    }
}
