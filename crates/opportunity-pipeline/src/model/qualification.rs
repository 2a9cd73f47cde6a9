//! Qualification scoring (seed 001): fit, applicability, capability and
//! competitive position, each HIGH/MEDIUM/LOW. All HIGH is the top priority;
//! a LOW anywhere means pursue slowly or pass; anything else is worth pursuing.

/// One dimension's rating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rating {
    Low,
    Medium,
    High,
}

impl Rating {
    pub fn as_str(self) -> &'static str {
        match self {
            Rating::Low => "LOW",
            Rating::Medium => "MEDIUM",
            Rating::High => "HIGH",
        }
    }

    /// The rating [`Rating::as_str`] names; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "LOW" => Some(Rating::Low),
            "MEDIUM" => Some(Rating::Medium),
            "HIGH" => Some(Rating::High),
            _ => None,
        }
    }
}

/// The four dimensions of seed 001's evaluation framework.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QualificationRatings {
    pub fit: Rating,
    pub applicability: Rating,
    pub capability: Rating,
    pub competitive_position: Rating,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QualificationPriority {
    TopPriority,
    Pursue,
    SlowOrPass,
}

/// The verdict and the reasons behind it, one per rating that decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QualificationScore {
    pub priority: QualificationPriority,
    pub reasons: Vec<String>,
}

impl QualificationRatings {
    fn dimensions(&self) -> [(&'static str, Rating); 4] {
        [
            ("fit", self.fit),
            ("applicability", self.applicability),
            ("capability", self.capability),
            ("competitive position", self.competitive_position),
        ]
    }
}

/// Scores an opportunity: all HIGH → TOP_PRIORITY; any LOW → SLOW_OR_PASS;
/// otherwise PURSUE.
pub fn score_qualification(ratings: &QualificationRatings) -> QualificationScore {
    let dims = ratings.dimensions();
    let lows: Vec<String> = dims
        .iter()
        .filter(|(_, r)| *r == Rating::Low)
        .map(|(name, _)| format!("{name} is LOW"))
        .collect();
    if !lows.is_empty() {
        return QualificationScore {
            priority: QualificationPriority::SlowOrPass,
            reasons: lows,
        };
    }
    if dims.iter().all(|(_, r)| *r == Rating::High) {
        return QualificationScore {
            priority: QualificationPriority::TopPriority,
            reasons: vec![
                "fit, applicability, capability and competitive position are all HIGH".to_owned(),
            ],
        };
    }
    QualificationScore {
        priority: QualificationPriority::Pursue,
        reasons: dims
            .iter()
            .filter(|(_, r)| *r == Rating::Medium)
            .map(|(name, _)| format!("{name} is MEDIUM"))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Rating::*;

    fn score(f: Rating, a: Rating, c: Rating, p: Rating) -> QualificationScore {
        score_qualification(&QualificationRatings {
            fit: f,
            applicability: a,
            capability: c,
            competitive_position: p,
        })
    }

    #[test]
    fn seed_high_high_high_high_is_top_priority() {
        assert_eq!(
            score(High, High, High, High).priority,
            QualificationPriority::TopPriority
        );
    }

    #[test]
    fn seed_a_low_anywhere_means_slow_or_pass() {
        for i in 0..4 {
            let mut r = [High; 4];
            r[i] = Low;
            let s = score(r[0], r[1], r[2], r[3]);
            assert_eq!(s.priority, QualificationPriority::SlowOrPass, "{r:?}");
            assert_eq!(s.reasons.len(), 1);
        }
        let s = score(Low, Medium, Low, High);
        assert_eq!(
            s.reasons,
            vec!["fit is LOW".to_owned(), "capability is LOW".to_owned()]
        );
    }

    #[test]
    fn mixed_high_and_medium_is_pursue() {
        let s = score(High, Medium, High, Medium);
        assert_eq!(s.priority, QualificationPriority::Pursue);
        assert_eq!(
            s.reasons,
            vec![
                "applicability is MEDIUM".to_owned(),
                "competitive position is MEDIUM".to_owned()
            ]
        );
        assert_eq!(
            score(Medium, Medium, Medium, Medium).priority,
            QualificationPriority::Pursue
        );
    }
}
