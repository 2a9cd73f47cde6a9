//! What each RPC does, between decoding and encoding: validation into
//! model types, the health calls, the rules, and the store. Split by area:
//! [`opportunities`], [`handoffs`], [`insights`] (wallet, whitespace, forecast),
//! [`performance`] (team performance).

mod deliveries;
mod handoffs;
mod insights;
mod opportunities;
mod performance;

use chrono::{DateTime, Utc};
use contracts::pb::pipeline::v1 as pb;
use contracts::{ApiError, FieldViolation, page, wire};
use domain::{OpportunityId, Stage};

use crate::api::PipelineService;
use crate::convert::opportunity_to_pb;
use crate::entity::opportunity;
use crate::error::PipelineError;
use crate::health::{AccountInfo, HealthError, ProductInfo};
use crate::model::forecast::Bucket;
use crate::model::qualification::QualificationRatings;
use crate::model::{HealthSnapshot, rating};
use crate::model::{UpsellTargetError, upsell_target};

/// `occur_time` (when a write happened in the source system) is for the
/// import roles only: PERMISSION_DENIED to anyone else who sets it.
pub(crate) fn import_only<T>(request: &tonic::Request<T>, set: bool) -> Result<(), PipelineError> {
    Ok(contracts::principal::require_import_role(
        request,
        "occur_time",
        set,
    )?)
}

/// The instant `occur_time` says, checked (`model::occur_time`); `None`: now.
pub(crate) fn occur_time(
    value: Option<&prost_types::Timestamp>,
    now: DateTime<Utc>,
    not_before: Option<DateTime<Utc>>,
) -> Result<Option<DateTime<Utc>>, PipelineError> {
    Ok(crate::model::occur_time::occur_time(
        "occur_time",
        value,
        now,
        not_before,
    )?)
}

/// INVALID_ARGUMENT naming one field.
pub(crate) fn invalid(field: &str, why: impl std::fmt::Display) -> PipelineError {
    PipelineError::from(ApiError::invalid(field, why))
}

/// An id field parsed into its type, or INVALID_ARGUMENT naming the field.
pub(crate) fn parse_id<T>(
    field: &str,
    value: &str,
    parse: impl Fn(&str) -> Result<T, domain::IdError>,
) -> Result<T, PipelineError> {
    parse(value).map_err(|e| invalid(field, e))
}

/// A health answer the call cannot do without: UNAVAILABLE, whatever the cause.
pub(crate) fn unavailable(err: HealthError) -> PipelineError {
    match err {
        HealthError::Unavailable(m) | HealthError::NotFound(m) => {
            PipelineError::HealthUnavailable(m)
        }
    }
}

/// A reference the health service answered about: NOT_FOUND when it does
/// not know it, UNAVAILABLE when it could not say (SPEC §3 "References are real").
pub(crate) fn reference_error(kind: &'static str, id: &str, err: HealthError) -> PipelineError {
    match err {
        HealthError::NotFound(_) => PipelineError::NotFound(kind, id.to_owned()),
        HealthError::Unavailable(m) => PipelineError::HealthUnavailable(m),
    }
}

/// What an opportunity names, as the health service knows it.
#[derive(Debug, Clone)]
pub(crate) struct References {
    pub(crate) account: AccountInfo,
    pub(crate) product: ProductInfo,
    /// For an upsell: the subscription it grows.
    pub(crate) subscription_id: Option<String>,
}

/// Optional free text; empty is `None`.
pub(crate) fn opt_text(
    field: &str,
    value: &str,
    max: usize,
) -> Result<Option<String>, PipelineError> {
    Ok(wire::optional_text(field, value, max)?)
}

/// The four explicit ratings of a `ScoreQualification` call, each missing one named.
pub(crate) fn ratings_request(
    req: &pb::ScoreQualificationRequest,
) -> Result<QualificationRatings, ApiError> {
    let mut violations = Vec::new();
    let mut get = |field: &str, value: i32| match rating(field, value) {
        Ok(Some(r)) => Some(r),
        Ok(None) => {
            violations.push(FieldViolation::new(
                field,
                "is required: HIGH, MEDIUM or LOW",
            ));
            None
        }
        Err(ApiError::InvalidArgument { violations: v }) => {
            violations.extend(v);
            None
        }
        Err(_) => None,
    };
    let fit = get("fit", req.fit);
    let applicability = get("applicability", req.applicability);
    let capability = get("capability", req.capability);
    let competitive_position = get("competitive_position", req.competitive_position);
    match (fit, applicability, capability, competitive_position) {
        (Some(fit), Some(applicability), Some(capability), Some(competitive_position)) => {
            Ok(QualificationRatings {
                fit,
                applicability,
                capability,
                competitive_position,
            })
        }
        _ => Err(ApiError::InvalidArgument { violations }),
    }
}

/// The page of `rows` (fetched one beyond the page size, `size`) and the
/// token of the next page, made of its last row's key: empty at the end.
pub(crate) fn page_of<T>(
    mut rows: Vec<T>,
    size: u64,
    key: impl Fn(&T) -> String,
    fingerprint: u64,
) -> (Vec<T>, String) {
    let more = rows.len() as u64 > size;
    rows.truncate(usize::try_from(size).unwrap_or(usize::MAX));
    let next_page_token = match (more, rows.last()) {
        (true, Some(last)) => page::encode_token(&key(last), fingerprint),
        _ => String::new(),
    };
    (rows, next_page_token)
}

/// A currency filter: empty is none, else an ISO 4217 code.
pub(crate) fn currency_filter(field: &str, code: &str) -> Result<Option<String>, PipelineError> {
    if code.is_empty() {
        return Ok(None);
    }
    let currency = domain::Currency::parse(code).map_err(|e| invalid(field, e))?;
    Ok(Some(currency.code().to_owned()))
}

/// A forecast bucket on the wire.
pub(crate) fn bucket_pb(key: String, b: &Bucket) -> pb::GroupForecast {
    pb::GroupForecast {
        key,
        count: b.count,
        amount: Some(wire::money_to_pb(&b.amount)),
        weighted_amount: Some(wire::money_to_pb(&b.weighted)),
    }
}

impl PipelineService {
    pub(crate) fn now(&self) -> DateTime<Utc> {
        storage::now()
    }

    pub(crate) fn to_pb(&self, m: opportunity::Model) -> Result<pb::Opportunity, PipelineError> {
        opportunity_to_pb(m, &self.config, self.now())
    }

    pub(crate) async fn load(
        &self,
        field: &str,
        raw: &str,
    ) -> Result<opportunity::Model, PipelineError> {
        let id = parse_id(field, raw, OpportunityId::parse)?;
        self.load_id(id).await
    }

    /// The opportunity `id`.
    pub(crate) async fn load_id(
        &self,
        id: OpportunityId,
    ) -> Result<opportunity::Model, PipelineError> {
        self.store
            .opportunity(id)
            .await?
            .ok_or_else(|| PipelineError::NotFound("opportunity", id.to_string()))
    }

    pub(crate) fn check_etag(m: &opportunity::Model, expected: i64) -> Result<(), PipelineError> {
        if m.version != expected {
            return Err(PipelineError::EtagMismatch(format!(
                "etag {expected} is stale: opportunity {} is now at etag {}; read it again and retry",
                m.id, m.version
            )));
        }
        Ok(())
    }

    pub(crate) fn ensure_open(m: &opportunity::Model, stage: Stage) -> Result<(), PipelineError> {
        if stage.is_closed() {
            return Err(PipelineError::precondition(
                "OPPORTUNITY_CLOSED",
                &m.id,
                format!(
                    "opportunity {} is {stage}; an admin must reopen it first",
                    m.id
                ),
            ));
        }
        Ok(())
    }

    /// A best-effort health snapshot: `None` when health cannot answer.
    /// Checks that the account and products an opportunity (or a wallet
    /// estimate, or a handoff) names exist in the health service, in one
    /// round of concurrent calls.
    pub(crate) async fn check_references(
        &self,
        account_id: &str,
        product_id: &str,
        source_product_id: Option<&str>,
    ) -> Result<(AccountInfo, ProductInfo), PipelineError> {
        let source = async {
            match source_product_id {
                Some(id) => self.health.product(id).await.map(Some),
                None => Ok(None),
            }
        };
        let (account, product, source) = tokio::join!(
            self.health.account(account_id),
            self.health.product(product_id),
            source
        );
        let account = account.map_err(|e| reference_error("account", account_id, e))?;
        let product = product.map_err(|e| reference_error("product", product_id, e))?;
        self.store.remember_account(&account).await?;
        if let Some(id) = source_product_id {
            source.map_err(|e| reference_error("product", id, e))?;
        }
        Ok((account, product))
    }

    /// The references of a new opportunity, and for an upsell the
    /// subscription it grows (SPEC §3): `named` must be an active subscription
    /// of the product; without it, the only one. `field` is the path of the
    /// subscription id in the request.
    pub(crate) async fn opportunity_references(
        &self,
        new: &crate::model::NewOpportunity,
        field: &str,
    ) -> Result<References, PipelineError> {
        let account_id = new.account_id.to_string();
        let product_id = new.product_id.to_string();
        let source = new.source_product_id.map(|p| p.to_string());
        let named = new.subscription_id.map(|s| s.to_string());
        if !new.motion.is_upsell() {
            if named.is_some() {
                return Err(invalid(
                    field,
                    "only an upsell names the subscription it grows; a cross-sell starts a new one",
                ));
            }
            let (account, product) = self
                .check_references(&account_id, &product_id, source.as_deref())
                .await?;
            return Ok(References {
                account,
                product,
                subscription_id: None,
            });
        }
        let ((account, product), held) = tokio::try_join!(
            self.check_references(&account_id, &product_id, source.as_deref()),
            async {
                self.health
                    .active_subscriptions(&account_id)
                    .await
                    .map_err(|e| reference_error("account", &account_id, e))
            }
        )?;
        let subscription_id = self.upsell_subscription(
            &held,
            &account_id,
            &product_id,
            named.as_deref(),
            new.amount.currency(),
            field,
        )?;
        Ok(References {
            account,
            product,
            subscription_id: Some(subscription_id),
        })
    }

    /// Checks a new opportunity's references and records what health said:
    /// the names, and for an upsell the subscription it grows.
    pub(crate) async fn resolve_references(
        &self,
        new: &mut crate::model::NewOpportunity,
        field: &str,
    ) -> Result<(), PipelineError> {
        let refs = self.opportunity_references(new, field).await?;
        new.account_name = Some(refs.account.name);
        new.product_name = Some(refs.product.name);
        new.subscription_id = refs
            .subscription_id
            .as_deref()
            .map(domain::SubscriptionId::parse)
            .transpose()
            .map_err(|e| {
                PipelineError::HealthUnavailable(format!(
                    "health gave an unreadable subscription id: {e}"
                ))
            })?;
        Ok(())
    }

    /// [`upsell_target`] with its refusals as API errors.
    pub(crate) fn upsell_subscription(
        &self,
        held: &[crate::health::SubscriptionInfo],
        account_id: &str,
        product_id: &str,
        named: Option<&str>,
        currency: domain::Currency,
        field: &str,
    ) -> Result<String, PipelineError> {
        upsell_target(held, product_id, named, currency).map_err(|e| match e {
            UpsellTargetError::NoneOfProduct => PipelineError::precondition(
                "NO_SUBSCRIPTION_TO_UPSELL",
                account_id,
                format!(
                    "account {account_id} holds no active subscription of product {product_id} \
                     for an upsell to grow; sell the product as a cross-sell"
                ),
            ),
            UpsellTargetError::NotUpsellable(id) => PipelineError::precondition(
                "NO_SUBSCRIPTION_TO_UPSELL",
                id.clone(),
                format!(
                    "subscription {id} is not an active subscription of product {product_id} \
                     held by account {account_id}"
                ),
            ),
            UpsellTargetError::Ambiguous(ids) => invalid(
                field,
                format!(
                    "is required: account {account_id} holds {} active subscriptions of product \
                     {product_id} ({}); name the one this upsell grows",
                    ids.len(),
                    ids.join(", ")
                ),
            ),
            UpsellTargetError::OtherCurrency {
                subscription_id,
                currency: theirs,
            } => invalid(
                field,
                format!(
                    "subscription {subscription_id} bills in {theirs}, the deal in {}: an upsell \
                     is priced in the currency of the subscription it grows",
                    currency.code()
                ),
            ),
        })
    }

    pub(crate) async fn snapshot(
        &self,
        account_id: &str,
        source_product: Option<&str>,
    ) -> Option<HealthSnapshot> {
        match self.health.account_health(account_id).await {
            Ok(view) => Some(HealthSnapshot::capture(&view, source_product, self.now())),
            Err(err) => {
                tracing::info!(%err, "no health snapshot");
                None
            }
        }
    }
}
