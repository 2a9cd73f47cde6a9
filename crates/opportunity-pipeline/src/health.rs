//! What the pipeline asks the health service, behind [`HealthGateway`] so the
//! rules stay pure and tests can use a fake. [`GrpcHealthGateway`] is the real
//! one: a lazily connected tonic channel with short timeouts, so a health
//! service that is down gives a quick, clear UNAVAILABLE instead of a hang.

use std::collections::HashSet;
use std::time::Duration;

use contracts::client::{AuthChannel, ClientOptions};
use contracts::pb::common::v1 as common;
use contracts::pb::health::v1 as pb;
use contracts::pb::health::v1::account_health_service_client::AccountHealthServiceClient;
use domain::{Money, Motion, Segment};
use tonic::{Code, Status};

use crate::convert::UsageReading;
use crate::model::gates::{HealthView, ProductHealth};
use crate::model::whitespace::{Adjacency, PortfolioProduct};

/// Pages read at most when listing the portfolio or an account's subscriptions.
const MAX_PAGES: usize = 100;

/// Why the health service could not give an answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HealthError {
    /// Down, too slow, or not able to answer this question (yet).
    #[error("{0}")]
    Unavailable(String),
    /// The health service does not know the thing asked about.
    #[error("{0}")]
    NotFound(String),
}

/// An account as the pipeline needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountInfo {
    pub account_id: String,
    pub name: String,
    pub segment: Option<Segment>,
    pub owner_csm: String,
    /// The account's CRM record `(system, id)`, when it has one.
    pub external_ref: Option<(String, String)>,
}

/// A product as the pipeline needs it to name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductInfo {
    pub product_id: String,
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerStatus {
    Ready,
    Suppressed,
    Closed,
    Converted,
    Unknown,
}

impl TriggerStatus {
    /// The status as events name it.
    pub fn as_str(self) -> &'static str {
        match self {
            TriggerStatus::Ready => "READY",
            TriggerStatus::Suppressed => "SUPPRESSED",
            TriggerStatus::Closed => "CLOSED",
            TriggerStatus::Converted => "CONVERTED",
            TriggerStatus::Unknown => "UNKNOWN",
        }
    }
}

/// An expansion trigger as the pipeline needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TriggerInfo {
    pub trigger_id: String,
    pub account_id: String,
    pub product_id: String,
    pub motion: Option<Motion>,
    pub status: TriggerStatus,
    pub reason: String,
    pub suppression_reason: String,
}

/// An active subscription: what the account owns and how much of it it uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionInfo {
    pub subscription_id: String,
    pub product_id: String,
    pub tier: String,
    pub quantity: i64,
    pub quota_limit: i64,
    pub mrr: Option<Money>,
    /// The latest USAGE signal of the product, when one was recorded.
    pub usage: Option<UsageReading>,
}

/// The questions the pipeline asks the health service.
#[tonic::async_trait]
pub trait HealthGateway: Send + Sync + 'static {
    /// Account and per-product bands; an account the health service has no
    /// score for comes back as an empty view (unknown), not an error.
    async fn account_health(&self, account_id: &str) -> Result<HealthView, HealthError>;
    async fn account(&self, account_id: &str) -> Result<AccountInfo, HealthError>;
    async fn trigger(&self, trigger_id: &str) -> Result<TriggerInfo, HealthError>;
    async fn product(&self, product_id: &str) -> Result<ProductInfo, HealthError>;
    /// The whole product portfolio.
    async fn portfolio(&self) -> Result<Vec<PortfolioProduct>, HealthError>;
    /// The account's ACTIVE subscriptions.
    async fn active_subscriptions(
        &self,
        account_id: &str,
    ) -> Result<Vec<SubscriptionInfo>, HealthError>;
}

/// Products an account owns: those with an active subscription.
pub fn owned_products(subscriptions: &[SubscriptionInfo]) -> HashSet<String> {
    subscriptions.iter().map(|s| s.product_id.clone()).collect()
}

/// Used when the process has no health address: every question is UNAVAILABLE.
pub struct NoHealthService;

fn unconfigured() -> HealthError {
    HealthError::Unavailable(
        "no health service address is configured (--health-addr / EXPANSION_HEALTH_ADDR)"
            .to_owned(),
    )
}

#[tonic::async_trait]
impl HealthGateway for NoHealthService {
    async fn account_health(&self, _: &str) -> Result<HealthView, HealthError> {
        Err(unconfigured())
    }
    async fn account(&self, _: &str) -> Result<AccountInfo, HealthError> {
        Err(unconfigured())
    }
    async fn trigger(&self, _: &str) -> Result<TriggerInfo, HealthError> {
        Err(unconfigured())
    }
    async fn product(&self, _: &str) -> Result<ProductInfo, HealthError> {
        Err(unconfigured())
    }
    async fn portfolio(&self) -> Result<Vec<PortfolioProduct>, HealthError> {
        Err(unconfigured())
    }
    async fn active_subscriptions(&self, _: &str) -> Result<Vec<SubscriptionInfo>, HealthError> {
        Err(unconfigured())
    }
}

/// The health service over gRPC.
#[derive(Clone)]
pub struct GrpcHealthGateway {
    client: AccountHealthServiceClient<AuthChannel>,
    address: String,
    timeout: Duration,
}

impl GrpcHealthGateway {
    /// A gateway to `address` (`host:port` or a URL), presenting the
    /// options' API key. Connects on first use, so the pipeline starts even
    /// while health is still starting.
    pub fn new(address: &str, timeout: Duration, options: &ClientOptions) -> Result<Self, String> {
        let options = options.clone().with_timeout(timeout);
        let channel = contracts::client::lazy(address, &options)
            .map_err(|e| format!("health address {e}"))?;
        Ok(Self {
            client: AccountHealthServiceClient::new(channel),
            address: address.to_owned(),
            timeout,
        })
    }

    fn map_status(&self, method: &str, status: Status) -> HealthError {
        match status.code() {
            Code::NotFound | Code::InvalidArgument => {
                HealthError::NotFound(format!("health service {method}: {}", status.message()))
            }
            Code::Unimplemented => HealthError::Unavailable(format!(
                "the health service at {} cannot answer {method} yet (UNIMPLEMENTED)",
                self.address
            )),
            code => {
                tracing::warn!(
                    method,
                    ?code,
                    message = status.message(),
                    "health call failed"
                );
                HealthError::Unavailable(format!(
                    "the health service at {} is unavailable ({method}: {code:?}: {})",
                    self.address,
                    status.message()
                ))
            }
        }
    }

    /// Runs one call with the gateway's deadline (belt and braces on top of
    /// the channel's own timeout, which does not cover every connect path).
    async fn call<T, F>(&self, method: &str, fut: F) -> Result<T, HealthError>
    where
        F: std::future::Future<Output = Result<tonic::Response<T>, Status>>,
    {
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(Ok(response)) => Ok(response.into_inner()),
            Ok(Err(status)) => Err(self.map_status(method, status)),
            Err(_) => Err(HealthError::Unavailable(format!(
                "the health service at {} did not answer {method} within {:?}",
                self.address, self.timeout
            ))),
        }
    }
}

fn non_empty(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_owned())
}

/// The health view of a `GetAccountHealth` answer.
pub fn health_view(health: &pb::AccountHealth) -> HealthView {
    HealthView {
        account_band: health
            .overall
            .as_ref()
            .and_then(|o| contracts::wire::band_from_pb(o.band)),
        account_score: health.overall.as_ref().and_then(|o| non_empty(&o.score)),
        products: health
            .products
            .iter()
            .map(|p| ProductHealth {
                product_id: p.product_id.clone(),
                band: contracts::wire::band_from_pb(p.band),
                score: non_empty(&p.score),
            })
            .collect(),
    }
}

fn segment(value: i32) -> Option<Segment> {
    contracts::wire::segment("segment", value).ok().flatten()
}

fn motion(value: i32) -> Option<Motion> {
    contracts::wire::motion("motion", value).ok().flatten()
}

fn money(value: Option<&common::Money>) -> Option<Money> {
    let m = value?;
    Money::parse(&m.currency_code, &m.amount).ok()
}

/// A portfolio product from `ListProducts`, its text moved, not copied.
pub fn portfolio_product(p: pb::Product) -> PortfolioProduct {
    PortfolioProduct {
        fits_segments: p.fits_segments.iter().filter_map(|s| segment(*s)).collect(),
        segment_wallets: p
            .wallet_estimates
            .iter()
            .filter_map(|w| Some((segment(w.segment)?, money(w.annual_wallet.as_ref())?)))
            .collect(),
        adjacencies: p
            .adjacencies
            .into_iter()
            .filter_map(|a| {
                let adjacency = match pb::Adjacency::try_from(a.adjacency).ok()? {
                    pb::Adjacency::Unspecified => return None,
                    pb::Adjacency::Adjacent => Adjacency::Adjacent,
                    pb::Adjacency::Complementary => Adjacency::Complementary,
                    pb::Adjacency::Platform => Adjacency::Platform,
                };
                Some((a.product_id, adjacency))
            })
            .collect(),
        product_id: p.product_id,
        name: p.name,
        family: p.family,
    }
}

/// A trigger from `GetTrigger`.
pub fn trigger_info(t: &pb::Trigger) -> TriggerInfo {
    let status = match pb::TriggerStatus::try_from(t.status) {
        Ok(pb::TriggerStatus::Ready) => TriggerStatus::Ready,
        Ok(pb::TriggerStatus::Suppressed) => TriggerStatus::Suppressed,
        Ok(pb::TriggerStatus::Closed) => TriggerStatus::Closed,
        Ok(pb::TriggerStatus::Converted) => TriggerStatus::Converted,
        _ => TriggerStatus::Unknown,
    };
    TriggerInfo {
        trigger_id: t.trigger_id.clone(),
        account_id: t.account_id.clone(),
        product_id: t.product_id.clone(),
        motion: motion(t.suggested_motion),
        status,
        reason: t.reason.clone(),
        suppression_reason: t.suppression_reason.clone(),
    }
}

#[tonic::async_trait]
impl HealthGateway for GrpcHealthGateway {
    async fn account_health(&self, account_id: &str) -> Result<HealthView, HealthError> {
        let mut client = self.client.clone();
        let request = pb::GetAccountHealthRequest {
            account_id: account_id.to_owned(),
        };
        match self
            .call("GetAccountHealth", client.get_account_health(request))
            .await
        {
            Ok(response) => Ok(response
                .health
                .as_ref()
                .map(health_view)
                .unwrap_or_default()),
            // No score yet is "unknown", which the gates treat as unmet.
            Err(HealthError::NotFound(_)) => Ok(HealthView::default()),
            Err(other) => Err(other),
        }
    }

    async fn account(&self, account_id: &str) -> Result<AccountInfo, HealthError> {
        let mut client = self.client.clone();
        let request = pb::GetAccountRequest {
            account_id: account_id.to_owned(),
            external_ref: None,
        };
        let response = self.call("GetAccount", client.get_account(request)).await?;
        let account = response
            .account
            .ok_or_else(|| HealthError::NotFound(format!("account {account_id}")))?;
        Ok(AccountInfo {
            external_ref: account
                .external_ref
                .filter(|r| !r.system.is_empty() && !r.id.is_empty())
                .map(|r| (r.system, r.id)),
            account_id: account.account_id,
            name: account.name,
            segment: segment(account.segment),
            owner_csm: account.owner_csm,
        })
    }

    async fn trigger(&self, trigger_id: &str) -> Result<TriggerInfo, HealthError> {
        let mut client = self.client.clone();
        let request = pb::GetTriggerRequest {
            trigger_id: trigger_id.to_owned(),
        };
        let response = self.call("GetTrigger", client.get_trigger(request)).await?;
        response
            .trigger
            .as_ref()
            .map(trigger_info)
            .ok_or_else(|| HealthError::NotFound(format!("trigger {trigger_id}")))
    }

    async fn product(&self, product_id: &str) -> Result<ProductInfo, HealthError> {
        let mut client = self.client.clone();
        let request = pb::GetProductRequest {
            product_id: product_id.to_owned(),
        };
        let response = self.call("GetProduct", client.get_product(request)).await?;
        let product = response
            .product
            .ok_or_else(|| HealthError::NotFound(format!("product {product_id}")))?;
        Ok(ProductInfo {
            product_id: product.product_id,
            name: product.name,
        })
    }

    async fn portfolio(&self) -> Result<Vec<PortfolioProduct>, HealthError> {
        let mut out = Vec::new();
        let mut token = String::new();
        for _ in 0..MAX_PAGES {
            let mut client = self.client.clone();
            let request = pb::ListProductsRequest {
                page_size: 1000,
                page_token: token.clone(),
                ..Default::default()
            };
            let page = self
                .call("ListProducts", client.list_products(request))
                .await?;
            out.extend(page.products.into_iter().map(portfolio_product));
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        Ok(out)
    }

    async fn active_subscriptions(
        &self,
        account_id: &str,
    ) -> Result<Vec<SubscriptionInfo>, HealthError> {
        let mut out = Vec::new();
        let mut token = String::new();
        for _ in 0..MAX_PAGES {
            let mut client = self.client.clone();
            let request = pb::ListSubscriptionsRequest {
                page_size: 1000,
                page_token: token.clone(),
                account_id: account_id.to_owned(),
                status: pb::SubscriptionStatus::Active as i32,
                ..Default::default()
            };
            let page = self
                .call("ListSubscriptions", client.list_subscriptions(request))
                .await?;
            out.extend(
                page.subscriptions
                    .iter()
                    // The filter is asked for; checked again so a server that
                    // ignores it cannot make a cancelled product look owned.
                    .filter(|s| s.status == pb::SubscriptionStatus::Active as i32)
                    .map(|s| SubscriptionInfo {
                        subscription_id: s.subscription_id.clone(),
                        product_id: s.product_id.clone(),
                        tier: s.tier.clone(),
                        quantity: s.quantity,
                        quota_limit: s.quota_limit,
                        mrr: money(s.mrr.as_ref()),
                        usage: s.latest_usage.as_ref().map(|u| UsageReading {
                            value: u.value.clone(),
                            limit: u.limit.clone(),
                            percent_of_limit: u.percent_of_limit.clone(),
                            unix: u.occur_time.as_ref().map_or(0, |t| t.seconds),
                        }),
                    }),
            );
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        Ok(out)
    }
}
