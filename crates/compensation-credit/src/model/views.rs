//! A deal and a dispute as the rules read them: the rows one write decides on, loaded
//! together by the store.

use crate::entity::{deal, dispute, dispute_resolution};
use crate::model::deal::Split;
use crate::model::ledger::Entry;

/// A deal with its split set in force and every ledger entry.
#[derive(Debug, Clone)]
pub struct DealView {
    pub deal: deal::Model,
    pub splits: Vec<Split>,
    pub revision: i32,
    pub cs_led_without_handoff: bool,
    pub entries: Vec<Entry>,
    pub clawed_back: bool,
}

/// A dispute and, once resolved, how; with the disputed entry's participant and deal.
#[derive(Debug, Clone)]
pub struct DisputeView {
    pub dispute: dispute::Model,
    pub resolution: Option<dispute_resolution::Model>,
    pub participant_id: String,
    pub deal_id: String,
    pub team: Option<String>,
}
