//! The import's side of the public API: a health-service client (and a credit one
//! for the people directory), the
//! look-ups that turn CRM ids and product names into ids (cached), and how a
//! refusal from the server becomes a rejected row.

use std::collections::HashMap;

use std::time::Duration;

use anyhow::anyhow;
use contracts::client::{AuthChannel, ClientOptions};
use contracts::pb::credit::v1::compensation_credit_service_client::CompensationCreditServiceClient;
use contracts::pb::health::v1 as pb;
use contracts::pb::health::v1::account_health_service_client::AccountHealthServiceClient;
use contracts::pb::pipeline::v1::opportunity_pipeline_service_client::OpportunityPipelineServiceClient;
use tonic::{Code, Status};
use tonic_types::StatusExt;

use super::mapping::Kind;
use super::report::{Halt, RowError};

pub type Health = AccountHealthServiceClient<AuthChannel>;
pub type Pipeline = OpportunityPipelineServiceClient<AuthChannel>;
pub type Credit = CompensationCreditServiceClient<AuthChannel>;

/// Deadline of each call (and of connecting): a stuck server stops the
/// import instead of hanging it.
const CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// Largest page the list calls ask for.
const PAGE: i32 = 1000;

/// The health, credit and pipeline clients of `target`, over one
/// connection (TLS for an `https://` target, the options' API key on every call).
pub async fn connect(
    target: &str,
    options: ClientOptions,
) -> anyhow::Result<(Health, Credit, Pipeline)> {
    let channel = contracts::client::connect(target, &options.with_timeout(CALL_TIMEOUT))
        .await
        .map_err(|e| anyhow!("connecting {target}: {e}"))?;
    Ok((
        Health::new(channel.clone()),
        Credit::new(channel.clone()),
        Pipeline::new(channel),
    ))
}

/// How the server answered a row's write.
pub enum Refusal {
    /// The row is wrong; `index` is the refused signal of a batch.
    Row {
        index: Option<usize>,
        error: RowError,
    },
    /// Nothing more can be imported (server down, not allowed, …).
    Fatal(anyhow::Error),
}

impl From<Refusal> for Halt {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Row { error, .. } => Halt::Reject(error),
            Refusal::Fatal(err) => Halt::Stop(err),
        }
    }
}

/// Sorts a failed call into a row problem or a reason to stop.
pub fn refusal(kind: Kind, status: Status) -> Refusal {
    match status.code() {
        Code::InvalidArgument
        | Code::FailedPrecondition
        | Code::NotFound
        | Code::AlreadyExists
        | Code::OutOfRange => {
            let violation = status
                .get_details_bad_request()
                .and_then(|b| b.field_violations.into_iter().next());
            match violation {
                Some(v) => {
                    let (index, field) = kind.field_of_path(&v.field);
                    Refusal::Row {
                        index,
                        error: RowError {
                            field,
                            message: v.description,
                        },
                    }
                }
                None => Refusal::Row {
                    index: None,
                    error: RowError::row(status.message()),
                },
            }
        }
        _ => Refusal::Fatal(anyhow!(
            "the server refused the import: {:?}: {}{}",
            status.code(),
            status.message(),
            key_hint(status.code())
        )),
    }
}

/// What to do about a refused key: the import's most common first error.
fn key_hint(code: Code) -> &'static str {
    match code {
        Code::Unauthenticated => {
            "; pass --api-key KEY (or set EXPANSION_API_KEY): a connector, revops or admin key \
             made with `expansion keys create`"
        }
        Code::PermissionDenied => {
            "; the key's role may not make this call: import with a connector, revops or \
             admin key (--api-key)"
        }
        _ => "",
    }
}

/// Cached answers of the read calls.
pub struct Lookup {
    pub health: Health,
    pub credit: Credit,
    pub pipeline: Pipeline,
    /// The CRM the external ids belong to, e.g. `salesforce`.
    pub system: String,
    accounts: HashMap<String, Option<pb::Account>>,
    products: Option<Vec<pb::Product>>,
    subscriptions: HashMap<String, Vec<pb::Subscription>>,
}

impl Lookup {
    pub fn new(health: Health, credit: Credit, pipeline: Pipeline, system: String) -> Self {
        Self {
            health,
            credit,
            pipeline,
            system,
            accounts: HashMap::new(),
            products: None,
            subscriptions: HashMap::new(),
        }
    }

    pub fn external_ref(&self, id: &str) -> pb::ExternalRef {
        pb::ExternalRef {
            system: self.system.clone(),
            id: id.to_owned(),
        }
    }

    /// The account with this CRM id, if there is one.
    pub async fn account(&mut self, external_id: &str) -> anyhow::Result<Option<pb::Account>> {
        if let Some(known) = self.accounts.get(external_id) {
            return Ok(known.clone());
        }
        let found = match self
            .health
            .get_account(pb::GetAccountRequest {
                account_id: String::new(),
                external_ref: Some(self.external_ref(external_id)),
            })
            .await
        {
            Ok(reply) => reply.into_inner().account,
            Err(status) if status.code() == Code::NotFound => None,
            Err(status) if status.code() == Code::InvalidArgument => {
                // Not a valid CRM id, so no account has it.
                None
            }
            Err(status) => return Err(fatal(status, "looking up an account")),
        };
        self.accounts.insert(external_id.to_owned(), found.clone());
        Ok(found)
    }

    /// The account with this CRM id; none is the row's rejection.
    pub async fn known_account(&mut self, external_id: &str) -> Result<pb::Account, Halt> {
        match self.account(external_id).await? {
            Some(account) => Ok(account),
            None => {
                let message = format!(
                    "no account has {} id {external_id:?}; import the accounts first",
                    self.system
                );
                Err(RowError::field("account_external_id", message).into())
            }
        }
    }

    pub fn remember_account(&mut self, external_id: &str, account: pb::Account) {
        self.accounts.insert(external_id.to_owned(), Some(account));
    }

    /// Every product, read once.
    pub async fn products(&mut self) -> anyhow::Result<&mut Vec<pb::Product>> {
        if self.products.is_none() {
            let mut all = Vec::new();
            let mut page_token = String::new();
            loop {
                let reply = self
                    .health
                    .list_products(pb::ListProductsRequest {
                        page_size: PAGE,
                        page_token,
                        ..Default::default()
                    })
                    .await
                    .map_err(|s| fatal(s, "listing products"))?
                    .into_inner();
                all.extend(reply.products);
                if reply.next_page_token.is_empty() {
                    break;
                }
                page_token = reply.next_page_token;
            }
            self.products = Some(all);
        }
        Ok(self.products.get_or_insert_with(Vec::new))
    }

    /// The id of the product named `text` (or whose id is `text`).
    pub async fn product_id(&mut self, text: &str) -> anyhow::Result<Option<String>> {
        let products = self.products().await?;
        Ok(products
            .iter()
            .find(|p| p.product_id == text)
            .or_else(|| products.iter().find(|p| p.name == text))
            .or_else(|| products.iter().find(|p| p.name.eq_ignore_ascii_case(text)))
            .map(|p| p.product_id.clone()))
    }

    /// The id of the product named `text` (or whose id is `text`); none is the row's
    /// rejection.
    pub async fn known_product(&mut self, text: &str) -> Result<String, Halt> {
        match self.product_id(text).await? {
            Some(id) => Ok(id),
            None => {
                let message = format!("no product is named {text:?}");
                Err(RowError::field("product", message).into())
            }
        }
    }

    /// An account's subscriptions, read once per account.
    pub async fn subscriptions(
        &mut self,
        account_id: &str,
    ) -> anyhow::Result<&mut Vec<pb::Subscription>> {
        if !self.subscriptions.contains_key(account_id) {
            let mut all = Vec::new();
            let mut page_token = String::new();
            loop {
                let reply = self
                    .health
                    .list_subscriptions(pb::ListSubscriptionsRequest {
                        page_size: PAGE,
                        page_token,
                        account_id: account_id.to_owned(),
                        ..Default::default()
                    })
                    .await
                    .map_err(|s| fatal(s, "listing subscriptions"))?
                    .into_inner();
                all.extend(reply.subscriptions);
                if reply.next_page_token.is_empty() {
                    break;
                }
                page_token = reply.next_page_token;
            }
            self.subscriptions.insert(account_id.to_owned(), all);
        }
        Ok(self.subscriptions.entry(account_id.to_owned()).or_default())
    }
}

/// A failed read: nothing sensible can follow.
pub fn fatal(status: Status, doing: &str) -> anyhow::Error {
    anyhow!(
        "{:?}: {}{}",
        status.code(),
        status.message(),
        key_hint(status.code())
    )
    .context(format!("{doing} failed"))
}

/// Says where an error stopped the import (`None`: after the last row).
pub fn stopped_at(err: anyhow::Error, line: Option<u64>) -> anyhow::Error {
    let place = match line {
        Some(line) => format!("stopped at row {line}"),
        None => "stopped while sending the last rows".to_owned(),
    };
    err.context(format!(
        "{place}; running the same import again is safe: rows already imported are recognised"
    ))
}
