//! GetStatement: a participant's, a team's or everyone's figures per currency over a
//! period, and the period's entries a page at a time.

use contracts::Principal;
use contracts::pb::credit::v1 as pb;

use super::{invalid, next_token, reader};
use crate::convert::{entries_to_pb, figures_to_pb};
use crate::error::CreditError;
use crate::model::inputs::StatementInput;
use crate::model::ledger::statement;
use crate::model::privacy;
use crate::store::{StatementSubject, Store};

/// The statement `caller` may read: a viewer gets the figures, never the entries.
pub async fn get(
    store: &Store,
    caller: &Principal,
    req: &pb::GetStatementRequest,
) -> Result<pb::GetStatementResponse, CreditError> {
    let mut input = StatementInput::from_request(req).map_err(invalid)?;
    let reader = reader(store, caller).await?;
    let access = privacy::statement_access(
        &reader,
        input.participant_id.as_deref(),
        input.team.as_deref(),
    )?;
    input.participant_id = access.participant.clone();
    input.team = access.team.clone();
    let subject = match (&input.participant_id, &input.team) {
        (Some(p), _) => StatementSubject::Participant(p.clone()),
        (None, Some(team)) => StatementSubject::Team(team.clone()),
        (None, None) => StatementSubject::Everyone,
    };
    let entries = store.statement_entries(&subject, input.end).await?;
    let now = storage::now();
    let figures = statement(&entries, input.start, input.end, now)
        .ok_or_else(|| CreditError::Corrupt("statement total overflows".to_owned()))?;
    let mut period: Vec<_> = entries
        .into_iter()
        .filter(|e| e.created_at >= input.start)
        .filter(|e| input.after.as_ref().is_none_or(|after| &e.entry_id > after))
        .take(usize::try_from(input.page_size + 1).unwrap_or(usize::MAX))
        .collect();
    let mut next_page_token = next_token(&mut period, input.page_size, input.fingerprint);
    if !access.entries {
        // A viewer gets the figures, never the entries behind them.
        period.clear();
        next_page_token.clear();
    }
    Ok(pb::GetStatementResponse {
        participant_id: input.participant_id.unwrap_or_default(),
        team: input.team.unwrap_or_default(),
        currencies: figures
            .iter()
            .map(figures_to_pb)
            .collect::<Result<_, _>>()?,
        entries: entries_to_pb(&period, now)?,
        next_page_token,
    })
}
