//! Columns more than one service stores the same way: SeaORM active enums
//! whose stored text is the domain's name, so rows written as text before
//! read back unchanged.

use domain::Motion;
use sea_orm::entity::prelude::*;

/// A [`Motion`] as a column stores it: by its name (`opportunities.motion`,
/// `triggers.motion`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum StoredMotion {
    #[sea_orm(string_value = "UPSELL_TIER")]
    UpsellTier,
    #[sea_orm(string_value = "UPSELL_FEATURE")]
    UpsellFeature,
    #[sea_orm(string_value = "UPSELL_CAPACITY")]
    UpsellCapacity,
    #[sea_orm(string_value = "CROSS_SELL_ADJACENT")]
    CrossSellAdjacent,
    #[sea_orm(string_value = "CROSS_SELL_COMPLEMENTARY")]
    CrossSellComplementary,
    #[sea_orm(string_value = "CROSS_SELL_PLATFORM")]
    CrossSellPlatform,
}

impl From<Motion> for StoredMotion {
    fn from(m: Motion) -> Self {
        match m {
            Motion::UpsellTier => StoredMotion::UpsellTier,
            Motion::UpsellFeature => StoredMotion::UpsellFeature,
            Motion::UpsellCapacity => StoredMotion::UpsellCapacity,
            Motion::CrossSellAdjacent => StoredMotion::CrossSellAdjacent,
            Motion::CrossSellComplementary => StoredMotion::CrossSellComplementary,
            Motion::CrossSellPlatform => StoredMotion::CrossSellPlatform,
        }
    }
}

impl From<StoredMotion> for Motion {
    fn from(m: StoredMotion) -> Self {
        match m {
            StoredMotion::UpsellTier => Motion::UpsellTier,
            StoredMotion::UpsellFeature => Motion::UpsellFeature,
            StoredMotion::UpsellCapacity => Motion::UpsellCapacity,
            StoredMotion::CrossSellAdjacent => Motion::CrossSellAdjacent,
            StoredMotion::CrossSellComplementary => Motion::CrossSellComplementary,
            StoredMotion::CrossSellPlatform => Motion::CrossSellPlatform,
        }
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::ActiveEnum;

    use super::*;

    #[test]
    fn a_stored_motion_is_the_domain_name_and_reads_back_the_same() {
        for m in Motion::ALL {
            assert_eq!(StoredMotion::from(*m).to_value(), m.as_str());
            assert_eq!(Motion::from(StoredMotion::from(*m)), *m);
        }
    }
}
