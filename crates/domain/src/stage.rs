//! Opportunity stages and the moves allowed between them.
//!
//! IDENTIFIED → EXPLORING → QUALIFIED → PROPOSED → NEGOTIATING → CLOSED_WON | CLOSED_LOST.
//! Deals advance one stage at a time (each stage has a gate the pipeline service checks, so
//! skipping one would skip its gate), may step back one stage, may be lost from any open
//! stage, and are never moved out of a closed stage: reopening is a separate admin action.

use thiserror::Error;

use crate::error::named_enum;
use crate::percent::Percent;

named_enum! {
    /// Where an opportunity is in the pipeline.
    pub enum Stage("stage") {
        Identified => "IDENTIFIED",
        Exploring => "EXPLORING",
        Qualified => "QUALIFIED",
        Proposed => "PROPOSED",
        Negotiating => "NEGOTIATING",
        ClosedWon => "CLOSED_WON",
        ClosedLost => "CLOSED_LOST",
    }
}

/// Why a stage move was refused. Each message says what would have been allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum TransitionError {
    #[error("the opportunity is already {stage}")]
    AlreadyInStage { stage: Stage },
    #[error(
        "the opportunity is {from}, which is final; an admin must reopen it before it can move to {to}"
    )]
    FromClosed { from: Stage, to: Stage },
    #[error("cannot move from {from} to {to}: stages advance one at a time, next is {next}")]
    SkipsStages { from: Stage, to: Stage, next: Stage },
    #[error(
        "cannot move from {from} back to {to}: stages go back one at a time, previous is {previous}"
    )]
    TooFarBack {
        from: Stage,
        to: Stage,
        previous: Stage,
    },
}

impl Stage {
    /// Stages an opportunity can be worked in, in pipeline order.
    pub const OPEN: &'static [Stage] = &[
        Stage::Identified,
        Stage::Exploring,
        Stage::Qualified,
        Stage::Proposed,
        Stage::Negotiating,
    ];

    /// Position in the pipeline: 0 for IDENTIFIED … 4 for NEGOTIATING, 5 for both closed
    /// stages (they are alternatives, not one after the other).
    pub const fn order(self) -> u8 {
        match self {
            Stage::Identified => 0,
            Stage::Exploring => 1,
            Stage::Qualified => 2,
            Stage::Proposed => 3,
            Stage::Negotiating => 4,
            Stage::ClosedWon | Stage::ClosedLost => 5,
        }
    }

    pub const fn is_closed(self) -> bool {
        matches!(self, Stage::ClosedWon | Stage::ClosedLost)
    }

    pub const fn is_open(self) -> bool {
        !self.is_closed()
    }

    /// The seed's default win probability for the stage (configurable per deployment).
    pub const fn default_probability(self) -> Percent {
        Percent::from_whole(match self {
            Stage::Identified => 10,
            Stage::Exploring => 20,
            Stage::Qualified => 40,
            Stage::Proposed => 60,
            Stage::Negotiating => 80,
            Stage::ClosedWon => 100,
            Stage::ClosedLost => 0,
        })
    }

    /// The stage a forward move leads to; `None` when closed. From NEGOTIATING it is
    /// CLOSED_WON (CLOSED_LOST is reachable from anywhere, so it is nobody's "next").
    pub const fn next(self) -> Option<Stage> {
        match self {
            Stage::Identified => Some(Stage::Exploring),
            Stage::Exploring => Some(Stage::Qualified),
            Stage::Qualified => Some(Stage::Proposed),
            Stage::Proposed => Some(Stage::Negotiating),
            Stage::Negotiating => Some(Stage::ClosedWon),
            Stage::ClosedWon | Stage::ClosedLost => None,
        }
    }

    /// The stage one step back; `None` for IDENTIFIED and the closed stages.
    pub const fn previous(self) -> Option<Stage> {
        match self {
            Stage::Exploring => Some(Stage::Identified),
            Stage::Qualified => Some(Stage::Exploring),
            Stage::Proposed => Some(Stage::Qualified),
            Stage::Negotiating => Some(Stage::Proposed),
            Stage::Identified | Stage::ClosedWon | Stage::ClosedLost => None,
        }
    }

    /// Checks a move from `self` to `to`: one step forward, one step back, or CLOSED_LOST
    /// from any open stage. Staying put is reported (`AlreadyInStage`) so the caller can
    /// decide whether a repeated request is a harmless no-op.
    pub fn check_transition(self, to: Stage) -> Result<(), TransitionError> {
        if self == to {
            return Err(TransitionError::AlreadyInStage { stage: self });
        }
        if self.is_closed() {
            return Err(TransitionError::FromClosed { from: self, to });
        }
        if to == Stage::ClosedLost || self.next() == Some(to) || self.previous() == Some(to) {
            return Ok(());
        }
        if to.order() > self.order() {
            let next = self.next().unwrap_or(to);
            return Err(TransitionError::SkipsStages {
                from: self,
                to,
                next,
            });
        }
        // Backwards by more than one, so `self` is past IDENTIFIED and has a previous stage.
        let previous = self.previous().unwrap_or(to);
        Err(TransitionError::TooFarBack {
            from: self,
            to,
            previous,
        })
    }

    /// Whether an admin may reopen the opportunity (only closed ones can be).
    pub const fn can_reopen(self) -> bool {
        self.is_closed()
    }

    /// Where a reopened opportunity restarts: IDENTIFIED, so it passes every gate again.
    /// `None` when the stage is open and there is nothing to reopen.
    pub const fn reopen_target(self) -> Option<Stage> {
        if self.can_reopen() {
            Some(Stage::Identified)
        } else {
            None
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::str::FromStr;

    use Stage::*;

    #[test]
    fn names_round_trip() {
        for stage in Stage::ALL {
            assert_eq!(Stage::from_str(stage.as_str()).unwrap(), *stage);
            assert_eq!(stage.to_string(), stage.as_str());
        }
        assert_eq!(Stage::from_str("CLOSED_WON").unwrap(), ClosedWon);
        let err = Stage::from_str("closed_won").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown stage \"closed_won\"; expected one of IDENTIFIED, EXPLORING, QUALIFIED, \
             PROPOSED, NEGOTIATING, CLOSED_WON, CLOSED_LOST"
        );
        assert!(Stage::from_str("").is_err());
        assert!(Stage::from_str("STAGE_IDENTIFIED").is_err());
    }

    #[test]
    fn default_probabilities_follow_the_seed() {
        let expected = [10, 20, 40, 60, 80, 100, 0];
        for (stage, percent) in Stage::ALL.iter().zip(expected) {
            assert_eq!(
                stage.default_probability(),
                Percent::from_whole(percent),
                "{stage}"
            );
        }
    }

    #[test]
    fn order_and_openness() {
        assert_eq!(Stage::OPEN.len(), 5);
        for (index, stage) in Stage::OPEN.iter().enumerate() {
            assert_eq!(usize::from(stage.order()), index);
            assert!(stage.is_open());
            assert!(!stage.can_reopen());
            assert_eq!(stage.reopen_target(), None);
        }
        for stage in [ClosedWon, ClosedLost] {
            assert!(stage.is_closed());
            assert_eq!(stage.order(), 5);
            assert!(stage.can_reopen());
            assert_eq!(stage.reopen_target(), Some(Identified));
            assert_eq!(stage.next(), None);
            assert_eq!(stage.previous(), None);
        }
    }

    /// The whole 7 × 7 table, written out so a change to the rules shows up here.
    #[test]
    fn transition_table() {
        // Rows: from; columns: to, in `Stage::ALL` order. Y = allowed.
        #[rustfmt::skip]
        let table: [(Stage, [char; 7]); 7] = [
            //                ID   EX   QU   PR   NE   WON  LOST
            (Identified,   ['=', 'Y', '>', '>', '>', '>', 'Y']),
            (Exploring,    ['Y', '=', 'Y', '>', '>', '>', 'Y']),
            (Qualified,    ['<', 'Y', '=', 'Y', '>', '>', 'Y']),
            (Proposed,     ['<', '<', 'Y', '=', 'Y', '>', 'Y']),
            (Negotiating,  ['<', '<', '<', 'Y', '=', 'Y', 'Y']),
            (ClosedWon,    ['C', 'C', 'C', 'C', 'C', '=', 'C']),
            (ClosedLost,   ['C', 'C', 'C', 'C', 'C', 'C', '=']),
        ];
        for (from, row) in table {
            for (to, expected) in Stage::ALL.iter().copied().zip(row) {
                let result = from.check_transition(to);
                let actual = match result {
                    Ok(()) => 'Y',
                    Err(TransitionError::AlreadyInStage { .. }) => '=',
                    Err(TransitionError::FromClosed { .. }) => 'C',
                    Err(TransitionError::SkipsStages { .. }) => '>',
                    Err(TransitionError::TooFarBack { .. }) => '<',
                };
                assert_eq!(actual, expected, "{from} → {to}: {result:?}");
            }
        }
    }

    #[test]
    fn refusals_say_what_is_allowed() {
        assert_eq!(
            Identified
                .check_transition(Proposed)
                .unwrap_err()
                .to_string(),
            "cannot move from IDENTIFIED to PROPOSED: stages advance one at a time, next is EXPLORING"
        );
        assert_eq!(
            Proposed
                .check_transition(ClosedWon)
                .unwrap_err()
                .to_string(),
            "cannot move from PROPOSED to CLOSED_WON: stages advance one at a time, next is NEGOTIATING"
        );
        assert_eq!(
            Negotiating
                .check_transition(Exploring)
                .unwrap_err()
                .to_string(),
            "cannot move from NEGOTIATING back to EXPLORING: stages go back one at a time, previous is PROPOSED"
        );
        assert_eq!(
            ClosedLost
                .check_transition(Negotiating)
                .unwrap_err()
                .to_string(),
            "the opportunity is CLOSED_LOST, which is final; an admin must reopen it before it can move to NEGOTIATING"
        );
        assert_eq!(
            Qualified
                .check_transition(Qualified)
                .unwrap_err()
                .to_string(),
            "the opportunity is already QUALIFIED"
        );
    }
}
