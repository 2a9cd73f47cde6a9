//! Account and product names for the lists a person reads (triggers, health
//! rows, subscriptions): looked up in this service's own tables, a page's
//! ids at a time, so nobody joins ids to names on their side.

use std::collections::{BTreeSet, HashMap};

use sea_orm::{ColumnTrait, DbErr, EntityTrait, QueryFilter, QuerySelect};

use crate::entity::{account, product};

use super::Store;

/// Names by id; an id with no row (a product deleted from a CRM, say) has
/// none, and its name is left empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Names {
    accounts: HashMap<String, String>,
    products: HashMap<String, String>,
}

impl Names {
    /// These accounts' and products' names, by id.
    pub fn of(
        accounts: impl IntoIterator<Item = (String, String)>,
        products: impl IntoIterator<Item = (String, String)>,
    ) -> Self {
        Self {
            accounts: accounts.into_iter().collect(),
            products: products.into_iter().collect(),
        }
    }

    pub fn account(&self, id: &str) -> String {
        self.accounts.get(id).cloned().unwrap_or_default()
    }

    pub fn product(&self, id: &str) -> String {
        self.products.get(id).cloned().unwrap_or_default()
    }
}

impl Store {
    /// The names of these accounts and products (empty ids are skipped).
    pub async fn names<'a>(
        &self,
        accounts: impl IntoIterator<Item = &'a str>,
        products: impl IntoIterator<Item = &'a str>,
    ) -> Result<Names, DbErr> {
        let accounts: BTreeSet<&str> = accounts.into_iter().filter(|id| !id.is_empty()).collect();
        let products: BTreeSet<&str> = products.into_iter().filter(|id| !id.is_empty()).collect();
        let mut names = Names::default();
        if !accounts.is_empty() {
            let rows: Vec<(String, String)> = account::Entity::find()
                .select_only()
                .column(account::Column::Id)
                .column(account::Column::Name)
                .filter(account::Column::Id.is_in(accounts))
                .into_tuple()
                .all(self.db())
                .await?;
            names.accounts = rows.into_iter().collect();
        }
        if !products.is_empty() {
            let rows: Vec<(String, String)> = product::Entity::find()
                .select_only()
                .column(product::Column::Id)
                .column(product::Column::Name)
                .filter(product::Column::Id.is_in(products))
                .into_tuple()
                .all(self.db())
                .await?;
            names.products = rows.into_iter().collect();
        }
        Ok(names)
    }
}
