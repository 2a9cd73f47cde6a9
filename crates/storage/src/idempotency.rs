//! `request_id` on mutations (AIP-155): a retry with the same id and the
//! same request returns the first response instead of acting twice; the same
//! id with another request is INVALID_ARGUMENT; a retry while the first call
//! still runs is ABORTED. Each service keeps its records in its own table
//! (`<service>_requests`: key, fingerprint, response, created_at).

use std::future::Future;

use chrono::{DateTime, Duration, Utc};
use contracts::ApiError;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, SqlErr};

/// After this long a claimed `request_id` whose call never finished (its
/// process died) may be run again.
const STALE_REQUEST: Duration = Duration::seconds(60);
/// Longest `request_id` accepted, in bytes.
const MAX_REQUEST_ID: usize = 256;

/// FNV-1a, 64 bits: a stable fingerprint of a request's bytes (the std
/// hasher may change between Rust releases; stored fingerprints must not).
fn fingerprint(bytes: &[u8]) -> String {
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{hash:016x}:{}", bytes.len())
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|p| u8::from_str_radix(p, 16).ok())
        })
        .collect()
}

enum Claim {
    Claimed,
    Done {
        fingerprint: String,
        response: String,
    },
    InFlight {
        fingerprint: String,
        created_at: DateTime<Utc>,
    },
}

fn col(name: &str) -> Alias {
    Alias::new(name)
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

    /// Runs `run` at most once per (`method`, `request_id`); without a
    /// `request_id` it just runs.
    pub async fn once<Req, Resp, E, F, Fut>(
        &self,
        db: &DatabaseConnection,
        writer: &crate::WriteGate,
        method: &'static str,
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
            return run().await;
        }
        contracts::wire::text("request_id", request_id, MAX_REQUEST_ID)?;
        let key = format!("{method}:{request_id}");
        let print = fingerprint(&request.encode_to_vec());
        let reused = || {
            ApiError::invalid(
                "request_id",
                format!("{request_id:?} was already used for a different {method} request"),
            )
        };
        let now = crate::now();
        match self.claim(db, writer, &key, &print, now).await? {
            Claim::Claimed => {}
            Claim::Done {
                fingerprint,
                response,
            } => {
                if fingerprint != print {
                    return Err(reused().into());
                }
                let corrupt =
                    || ApiError::internal(format!("stored response of {key} is unreadable"));
                let bytes = from_hex(&response).ok_or_else(corrupt)?;
                return Resp::decode(bytes.as_slice()).map_err(|_| corrupt().into());
            }
            Claim::InFlight {
                fingerprint,
                created_at,
            } => {
                if fingerprint != print {
                    return Err(reused().into());
                }
                let stale = now - created_at > STALE_REQUEST;
                if !stale || !self.reclaim(db, writer, &key, created_at, now).await? {
                    return Err(ApiError::Aborted {
                        reason: "REQUEST_IN_PROGRESS",
                        message: format!(
                            "a {method} call with request_id {request_id:?} is still running; retry shortly"
                        ),
                    }
                    .into());
                }
            }
        }
        match run().await {
            Ok(response) => {
                // The change is committed: a failure to record the response
                // must not turn success into an error (the claim then goes
                // stale and a later retry runs again).
                if let Err(err) = self
                    .finish(db, writer, &key, &to_hex(&response.encode_to_vec()))
                    .await
                {
                    tracing::warn!(%err, key, "could not record the response of an idempotent call");
                }
                Ok(response)
            }
            Err(err) => {
                if let Err(release) = self.release(db, writer, &key).await {
                    tracing::warn!(err = %release, key, "could not release an idempotency claim");
                }
                Err(err)
            }
        }
    }

    async fn claim(
        &self,
        db: &DatabaseConnection,
        writer: &crate::WriteGate,
        key: &str,
        print: &str,
        now: DateTime<Utc>,
    ) -> Result<Claim, DbErr> {
        // A claim that vanished between the insert and the read (its call
        // failed and released it) is simply tried again.
        for _ in 0..3 {
            let mut insert = Query::insert();
            insert
                .into_table(col(self.table))
                .columns([col("key"), col("fingerprint"), col("created_at")])
                .values([key.into(), print.into(), now.into()])
                .map_err(|e| DbErr::Custom(e.to_string()))?;
            // Every write takes the service's write gate: on SQLite an
            // ungated commit fails a gated read-then-write transaction.
            let inserted = {
                let _write = writer.enter().await;
                db.execute(&insert).await
            };
            match inserted {
                Ok(_) => return Ok(Claim::Claimed),
                Err(err) if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                }
                Err(err) => return Err(err),
            }
            let select = Query::select()
                .columns([col("fingerprint"), col("response"), col("created_at")])
                .from(col(self.table))
                .and_where(Expr::col(col("key")).eq(key))
                .to_owned();
            if let Some(row) = db.query_one(&select).await? {
                let fingerprint: String = row.try_get("", "fingerprint")?;
                let response: Option<String> = row.try_get("", "response")?;
                return Ok(match response {
                    Some(response) => Claim::Done {
                        fingerprint,
                        response,
                    },
                    None => Claim::InFlight {
                        fingerprint,
                        created_at: row.try_get("", "created_at")?,
                    },
                });
            }
        }
        Err(DbErr::Custom(format!("request {key} could not be claimed")))
    }

    async fn reclaim(
        &self,
        db: &DatabaseConnection,
        writer: &crate::WriteGate,
        key: &str,
        stale_since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, DbErr> {
        let update = Query::update()
            .table(col(self.table))
            .value(col("created_at"), now)
            .and_where(Expr::col(col("key")).eq(key))
            .and_where(Expr::col(col("response")).is_null())
            .and_where(Expr::col(col("created_at")).eq(stale_since))
            .to_owned();
        let _write = writer.enter().await;
        Ok(db.execute(&update).await?.rows_affected() == 1)
    }

    async fn finish(
        &self,
        db: &DatabaseConnection,
        writer: &crate::WriteGate,
        key: &str,
        response: &str,
    ) -> Result<(), DbErr> {
        let update = Query::update()
            .table(col(self.table))
            .value(col("response"), response)
            .and_where(Expr::col(col("key")).eq(key))
            .to_owned();
        let _write = writer.enter().await;
        db.execute(&update).await?;
        Ok(())
    }

    async fn release(
        &self,
        db: &DatabaseConnection,
        writer: &crate::WriteGate,
        key: &str,
    ) -> Result<(), DbErr> {
        let delete = Query::delete()
            .from_table(col(self.table))
            .and_where(Expr::col(col("key")).eq(key))
            .and_where(Expr::col(col("response")).is_null())
            .to_owned();
        let _write = writer.enter().await;
        db.execute(&delete).await?;
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
        assert_eq!(to_hex(&bytes), "0001abff");
        assert_eq!(from_hex("0001abff").unwrap(), bytes);
        assert!(from_hex("abc").is_none());
        assert!(from_hex("zz").is_none());
    }
}
