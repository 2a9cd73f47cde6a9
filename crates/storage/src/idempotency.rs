//! `request_id` on mutations (AIP-155), the same in every service: a retry
//! with the same id and the same request returns the first response instead
//! of acting twice; the same id with another request is INVALID_ARGUMENT.
//! Ids are scoped to the caller (the authenticated principal) and the
//! method: another caller's id, or the same id on another method, is a
//! different request.
//!
//! The record of a request — its key, the fingerprint of the decoded request
//! (so a retry over HTTP/JSON matches one over gRPC) and the response — is
//! written in the same transaction as the mutation's own writes
//! ([`Db::atomically`]): a crash at any instant leaves either nothing or the
//! whole effect with its response, so a retry never waits for a dead call and
//! never acts twice. Two calls with one id at once serialise on the record's
//! key (PostgreSQL holds the second insert until the first commits; SQLite
//! has one writer): the second answers with the first's response. A call
//! that fails records nothing, so it may be retried.
//!
//! Each service keeps its records in its own table (`<service>_requests`:
//! key, fingerprint, response, created_at).

use std::future::Future;

use contracts::{ApiError, Idempotent};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, OnConflict, Query};
use sea_orm::{ConnectionTrait, DbErr, SqlErr};

use crate::{Db, WriteGate};

/// Longest `request_id` accepted, in bytes.
pub const MAX_REQUEST_ID: usize = 256;

/// A stable fingerprint of a request's bytes (stored, so it must not change
/// between builds).
fn fingerprint(bytes: &[u8]) -> String {
    format!(
        "{:016x}:{}",
        crate::fnv1a(bytes.iter().copied()),
        bytes.len()
    )
}

/// The record's key: method, caller and id, unambiguous whatever characters
/// the caller's name and the id hold.
fn key(method: &str, principal: &str, request_id: &str) -> String {
    format!("{method}:{}:{principal}:{request_id}", principal.len())
}

fn col(name: &str) -> Alias {
    Alias::new(name)
}

/// How one attempt at a recorded mutation ended.
enum Attempt<E> {
    /// Another call holds or has recorded this key.
    Taken,
    Failed(E),
}

impl<E: From<DbErr>> From<DbErr> for Attempt<E> {
    fn from(err: DbErr) -> Self {
        match err.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(_)) => Self::Taken,
            _ => Self::Failed(E::from(err)),
        }
    }
}

/// A service's table of request records.
#[derive(Clone, Copy)]
pub struct Requests {
    table: &'static str,
}

impl Requests {
    pub const fn new(table: &'static str) -> Self {
        Self { table }
    }

    /// Runs the mutation `run` in one transaction of `db`, at most once per
    /// (`method`, `principal`, `request_id`); without a `request_id` it runs
    /// (in one transaction still) every time.
    #[allow(clippy::too_many_arguments)]
    pub async fn once<Req, Resp, E, F, Fut>(
        &self,
        db: &Db,
        writer: &WriteGate,
        method: &'static str,
        principal: &str,
        request_id: &str,
        request: &Req,
        run: F,
    ) -> Result<Resp, E>
    where
        Req: prost::Message,
        Resp: prost::Message + Default,
        E: From<ApiError> + From<DbErr>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Resp, E>>,
    {
        if request_id.is_empty() {
            return db.atomically(writer, run).await;
        }
        contracts::wire::text("request_id", request_id, MAX_REQUEST_ID)?;
        let key = key(method, principal, request_id);
        let print = fingerprint(&request.encode_to_vec());
        let replay = |(fingerprint, response): (String, String)| -> Result<Resp, E> {
            if fingerprint != print {
                return Err(ApiError::invalid(
                    "request_id",
                    format!("{request_id:?} was already used for a different {method} request"),
                )
                .into());
            }
            let corrupt = || ApiError::internal(format!("stored response of {key} is unreadable"));
            let bytes = hex::decode(&response).map_err(|_| corrupt())?;
            Resp::decode(bytes.as_slice()).map_err(|_| corrupt().into())
        };
        if let Some(done) = self.recorded(db, &key).await? {
            return replay(done);
        }
        let attempt = db
            .atomically(writer, || async {
                if !self.claim(db, &key, &print).await? {
                    return Err(Attempt::Taken);
                }
                let response = run().await.map_err(Attempt::Failed)?;
                self.record(db, &key, &hex::encode(response.encode_to_vec()))
                    .await?;
                Ok::<_, Attempt<E>>(response)
            })
            .await;
        match attempt {
            Ok(response) => Ok(response),
            Err(Attempt::Failed(err)) => Err(err),
            // A concurrent call with this key committed first: its answer is
            // this call's answer.
            Err(Attempt::Taken) => match self.recorded(db, &key).await? {
                Some(done) => replay(done),
                None => Err(ApiError::Aborted {
                    reason: "CONCURRENT_WRITE",
                    message: format!(
                        "a concurrent {method} call with request_id {request_id:?} conflicted; retry the call"
                    ),
                }
                .into()),
            },
        }
    }

    /// A mutation RPC run by [`Requests::once`]: the caller is the request's
    /// principal and the id its `request_id`; `op` gets both and answers.
    /// Every service's mutations go through here, so the trait methods of
    /// its `api.rs` are one call each.
    pub async fn call<Req, Resp, E>(
        &self,
        db: &Db,
        writer: &WriteGate,
        method: &'static str,
        request: tonic::Request<Req>,
        op: impl AsyncFnOnce(String, &Req) -> Result<Resp, E>,
    ) -> Result<tonic::Response<Resp>, tonic::Status>
    where
        Req: Idempotent,
        Resp: prost::Message + Default,
        E: From<ApiError> + From<DbErr>,
        tonic::Status: From<E>,
    {
        let principal = contracts::principal_of(&request);
        let req = request.into_inner();
        let response = self
            .once(
                db,
                writer,
                method,
                &principal,
                req.request_id(),
                &req,
                || op(principal.clone(), &req),
            )
            .await?;
        Ok(tonic::Response::new(response))
    }

    /// The fingerprint and response recorded under `key`, if any.
    async fn recorded(&self, db: &Db, key: &str) -> Result<Option<(String, String)>, DbErr> {
        let select = Query::select()
            .columns([col("fingerprint"), col("response")])
            .from(col(self.table))
            .and_where(Expr::col(col("key")).eq(key))
            .and_where(Expr::col(col("response")).is_not_null())
            .to_owned();
        let Some(row) = db.query_one(&select).await? else {
            return Ok(None);
        };
        Ok(Some((
            row.try_get("", "fingerprint")?,
            row.try_get("", "response")?,
        )))
    }

    /// Inserts the record, in the mutation's transaction: the key's unique
    /// index makes a concurrent call with the same key wait for this one.
    /// A record without a response (left by an earlier version, which
    /// committed claims before their calls finished) is taken over. Returns
    /// whether the key is this call's.
    async fn claim(&self, db: &Db, key: &str, print: &str) -> Result<bool, DbErr> {
        let mut insert = Query::insert();
        insert
            .into_table(col(self.table))
            .columns([col("key"), col("fingerprint"), col("created_at")])
            .values([key.into(), print.into(), crate::now().into()])
            .map_err(|e| DbErr::Custom(e.to_string()))?
            .on_conflict(
                OnConflict::column(col("key"))
                    .update_columns([col("fingerprint"), col("created_at")])
                    .action_and_where(Expr::col((col(self.table), col("response"))).is_null())
                    .to_owned(),
            );
        Ok(db.execute(&insert).await?.rows_affected() == 1)
    }

    async fn record(&self, db: &Db, key: &str, response: &str) -> Result<(), DbErr> {
        let update = Query::update()
            .table(col(self.table))
            .value(col("response"), response)
            .and_where(Expr::col(col("key")).eq(key))
            .to_owned();
        db.execute(&update).await?;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_stable_and_hex_round_trips() {
        // FNV-1a of the empty input is its offset basis, on every build.
        assert_eq!(fingerprint(b""), "cbf29ce484222325:0");
        assert_eq!(fingerprint(b"abc"), "e71fa2190541574b:3");
        assert_ne!(fingerprint(b"a"), fingerprint(b"b"));
        let bytes = [0u8, 1, 0xab, 0xff];
        assert_eq!(hex::encode(bytes), "0001abff");
        assert_eq!(hex::decode("0001abff").unwrap(), bytes);
        assert!(hex::decode("abc").is_err());
        assert!(hex::decode("zz").is_err());
    }

    #[test]
    fn keys_are_per_method_and_caller_and_unambiguous() {
        assert_ne!(key("M", "a", "x"), key("N", "a", "x"));
        assert_ne!(key("M", "a", "x"), key("M", "b", "x"));
        // A name and an id that hold the separator do not collide.
        assert_ne!(key("M", "a:b", "c"), key("M", "a", "b:c"));
    }
}
