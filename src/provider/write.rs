//! Writes: create (POST with `Idempotency-Key`), update (merge PATCH with `If-Match`),
//! delete (`If-Match`; representatives with `purge_statistics=true`), and `:batch`.
//!
//! Every write goes through [`HttpProvider::send`]'s retry loop. A write retried after a
//! lost answer may already have been done; see the module doc of `provider` for how such a
//! write is recognised as done instead of being reported as a conflict.

use std::time::Duration;

use reqwest::Method;
use serde::Serialize;
use serde_json::{Value, json};

use super::{HttpProvider, Lease, Problem, Provider, ProviderError, Sent, Since, Take, encode_key};
use crate::model::{Kind, Observed};

/// One operation of `POST /v1/{collection}:batch`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum BatchOp {
    Create {
        body: Value,
        /// Empty in a dry run's operations (a check remembers nothing): then not sent.
        #[serde(skip_serializing_if = "String::is_empty")]
        idempotency_key: String,
    },
    Update {
        key: String,
        if_match: i64,
        body: Value,
    },
    Delete {
        key: String,
        if_match: i64,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        purge_statistics: bool,
    },
}

/// One operation of `POST /v1/plan:check` (a dry run): the kind, the write as a batch
/// would send it (without a password value), and whether it would set a password.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckOp {
    pub kind: Kind,
    #[serde(flatten)]
    pub op: BatchOp,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub set_password: bool,
}

/// What the live system answered for one operation of a dry run: the status the write
/// would get and, when it would be refused, the problem.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckResult {
    pub status: u16,
    pub problem: Option<Problem>,
}

/// The capability `GET /v1/whoami` lists when the server has `POST /v1/plan:check`.
pub const PLAN_CHECK: &str = "plan-check";

fn parse_object(sent_url: String, bytes: &[u8]) -> Result<Value, ProviderError> {
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(bytes).map_err(|e| ProviderError::Unexpected {
        url: sent_url,
        detail: format!("the body is not json: {e}"),
    })
}

/// Whether two JSON values are equal, arrays compared as sets (the API's sets are sorted,
/// but a server is free to order them otherwise).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => {
            let mut x: Vec<String> = x.iter().map(Value::to_string).collect();
            let mut y: Vec<String> = y.iter().map(Value::to_string).collect();
            x.sort();
            y.sort();
            x == y
        }
        _ => a == b,
    }
}

/// Whether the live object holds every field of `body` (a create body or a merge patch).
/// A password's value is never returned: only its `rotation` is compared.
fn holds(obj: &Value, body: &Value) -> bool {
    let Some(body) = body.as_object() else {
        return false;
    };
    body.iter().all(|(k, want)| {
        let have = obj.get(k).unwrap_or(&Value::Null);
        if k == "password" {
            return want.get("rotation") == have.get("rotation");
        }
        if want.is_null() {
            return have.is_null();
        }
        same(have, want)
    })
}

fn is_problem(e: &ProviderError, status: u16) -> bool {
    e.status() == Some(status)
}

impl HttpProvider {
    fn object_path(kind: Kind, key: &str) -> String {
        if kind == Kind::Account {
            return "/v1/account".into();
        }
        format!("/v1/{}/{}", kind.collection(), encode_key(key))
    }

    /// GET one object; `None` when it does not exist. Used only to confirm a write whose
    /// answer was lost, never to read state (reads are paged lists).
    pub async fn get_object(&self, kind: Kind, key: &str) -> Result<Option<Value>, ProviderError> {
        let path = Self::object_path(kind, key);
        match self.send(Method::GET, &path, None, &[]).await.result {
            Ok((_, bytes)) => parse_object(format!("{}{path}", self.base), &bytes).map(Some),
            Err(e) if is_problem(&e, 404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The key an object has after `body` is applied to the object at `key`.
    fn key_after(kind: Kind, key: &str, body: &Value) -> String {
        body.get(kind.key_field())
            .and_then(Value::as_str)
            .unwrap_or(key)
            .to_string()
    }

    /// After a retried write failed with `err`, checks whether an earlier attempt did it.
    async fn confirm(
        &self,
        kind: Kind,
        key_after: &str,
        body: &Value,
        expected_version: Option<i64>,
        err: ProviderError,
    ) -> Result<Value, ProviderError> {
        match self.get_object(kind, key_after).await {
            Ok(Some(obj))
                if holds(&obj, body)
                    && expected_version
                        .is_none_or(|v| obj.get("version").and_then(Value::as_i64) == Some(v)) =>
            {
                tracing::debug!(
                    "{kind}/{key_after}: an earlier attempt whose answer was lost did the write"
                );
                Ok(obj)
            }
            _ => Err(err),
        }
    }
    /// One batch operation's result: transient failures are retried alone; a conflict
    /// after a retried batch is checked against the live object.
    async fn settle(
        &self,
        kind: Kind,
        op: &BatchOp,
        res: Result<Value, ProviderError>,
        attempts: usize,
    ) -> Result<Value, ProviderError> {
        let err = match res {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        if err.is_transient() {
            return match op {
                BatchOp::Create {
                    body,
                    idempotency_key,
                } => self.create(kind, body, idempotency_key).await,
                BatchOp::Update {
                    key,
                    if_match,
                    body,
                } => self.update(kind, key, *if_match, body).await,
                BatchOp::Delete {
                    key,
                    if_match,
                    purge_statistics,
                } => self
                    .delete(kind, key, *if_match, *purge_statistics)
                    .await
                    .map(|_| Value::Null),
            };
        }
        if attempts <= 1 {
            return Err(err);
        }
        match op {
            BatchOp::Create { body, .. } if is_problem(&err, 409) => {
                let key = Self::key_after(kind, "", body);
                self.confirm(kind, &key, body, None, err).await
            }
            BatchOp::Update {
                key,
                if_match,
                body,
            } if is_problem(&err, 412) || is_problem(&err, 404) => {
                let after = Self::key_after(kind, key, body);
                self.confirm(kind, &after, body, Some(if_match + 1), err)
                    .await
            }
            BatchOp::Delete { .. } if is_problem(&err, 404) => Ok(Value::Null),
            _ => Err(err),
        }
    }
}

// The HTTP client is the live system's real provider: its writes are the trait's, with
// retries and lost-answer confirmation.
/// The `results` of a batch or check answer: one per operation sent, or the answer is
/// not what docs/api.md promises.
fn results_of<'a>(
    answer: &'a Value,
    sent: usize,
    url: &str,
    what: &str,
) -> Result<&'a Vec<Value>, ProviderError> {
    answer
        .get("results")
        .and_then(Value::as_array)
        .filter(|r| r.len() == sent)
        .ok_or_else(|| ProviderError::Unexpected {
            url: url.to_string(),
            detail: format!("{what} must hold `results`, one per operation ({sent})"),
        })
}

impl Provider for HttpProvider {
    fn base_url(&self) -> &str {
        &self.base
    }

    /// Reads the whole live state (every kind concurrently, paged: see `read.rs`), or
    /// brings the kept snapshot of it up to date from the change feed (`snapshot.rs`).
    async fn read(&self) -> Result<Observed, ProviderError> {
        match &self.snapshots {
            Some(s) => super::snapshot::read(self, s).await,
            None => super::read::read(self).await,
        }
    }

    async fn since(&self, cursor: &str) -> Result<Option<Since>, ProviderError> {
        super::snapshot::since(self, cursor).await
    }

    /// POST a new object. A retry sends the same `Idempotency-Key`, so the server replays
    /// the first answer instead of creating twice.
    async fn create(
        &self,
        kind: Kind,
        body: &Value,
        idempotency_key: &str,
    ) -> Result<Value, ProviderError> {
        let path = format!("/v1/{}", kind.collection());
        let Sent { result, attempts } = self
            .send(
                Method::POST,
                &path,
                Some(body),
                &[("idempotency-key", idempotency_key.to_string())],
            )
            .await;
        match result {
            Ok((_, bytes)) => parse_object(format!("{}{path}", self.base), &bytes),
            Err(e) if attempts > 1 && is_problem(&e, 409) => {
                let key = body
                    .get(kind.key_field())
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                self.confirm(kind, &key, body, None, e).await
            }
            Err(e) => Err(e),
        }
    }

    /// Merge-PATCH the object at `key` (its key before a rename), planned against `if_match`.
    async fn update(
        &self,
        kind: Kind,
        key: &str,
        if_match: i64,
        patch: &Value,
    ) -> Result<Value, ProviderError> {
        let path = Self::object_path(kind, key);
        let Sent { result, attempts } = self
            .send(
                Method::PATCH,
                &path,
                Some(patch),
                &[("if-match", format!("\"{if_match}\""))],
            )
            .await;
        match result {
            Ok((_, bytes)) => parse_object(format!("{}{path}", self.base), &bytes),
            Err(e) if attempts > 1 && (is_problem(&e, 412) || is_problem(&e, 404)) => {
                let after = Self::key_after(kind, key, patch);
                self.confirm(kind, &after, patch, Some(if_match + 1), e)
                    .await
            }
            Err(e) => Err(e),
        }
    }

    /// DELETE the object at `key`, planned against `if_match`.
    async fn delete(
        &self,
        kind: Kind,
        key: &str,
        if_match: i64,
        purge_statistics: bool,
    ) -> Result<(), ProviderError> {
        let mut path = Self::object_path(kind, key);
        if purge_statistics {
            path.push_str("?purge_statistics=true");
        }
        let Sent { result, attempts } = self
            .send(
                Method::DELETE,
                &path,
                None,
                &[("if-match", format!("\"{if_match}\""))],
            )
            .await;
        match result {
            Ok(_) => Ok(()),
            // Gone after a retry: the earlier attempt deleted it.
            Err(e) if attempts > 1 && is_problem(&e, 404) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Sends a whole plan's writes (up to 1000) to `POST /v1/plan:check`: one result per
    /// operation, in order. Nothing is written; transient failures are retried (a dry run
    /// may be sent again at will).
    async fn check(&self, ops: &[CheckOp]) -> Result<Vec<CheckResult>, ProviderError> {
        let path = "/v1/plan:check";
        let url = format!("{}{path}", self.base);
        let body = json!({ "operations": ops });
        let (_, bytes) = self
            .send(Method::POST, path, Some(&body), &[])
            .await
            .result?;
        let answer: Value = parse_object(url.clone(), &bytes)?;
        let results = results_of(&answer, ops.len(), &url, "a check's answer")?;
        Ok(results
            .iter()
            .map(|r| {
                let status = r.get("status").and_then(Value::as_u64).unwrap_or(0) as u16;
                let problem = (!(200..300).contains(&status)).then(|| {
                    let body = r.get("problem").cloned().unwrap_or(Value::Null);
                    Problem::from_body(status, body.to_string().as_bytes())
                });
                CheckResult { status, problem }
            })
            .collect())
    }

    /// Sends up to 1000 operations of one kind in one request. The outer result fails
    /// when the request as a whole does; otherwise one result per operation, in order.
    /// Operations answered 429/503 inside the batch are sent again one by one.
    async fn batch(
        &self,
        kind: Kind,
        ops: &[BatchOp],
    ) -> Result<Vec<Result<Value, ProviderError>>, ProviderError> {
        let path = format!("/v1/{}:batch", kind.collection());
        let url = format!("{}{path}", self.base);
        let body = json!({ "operations": ops });
        let Sent { result, attempts } = self.send(Method::POST, &path, Some(&body), &[]).await;
        let (_, bytes) = result?;
        let answer: Value = parse_object(url.clone(), &bytes)?;
        let results = results_of(&answer, ops.len(), &url, "a batch answer")?;
        let mut out = Vec::with_capacity(ops.len());
        for (op, r) in ops.iter().zip(results) {
            let status = r.get("status").and_then(Value::as_u64).unwrap_or(0) as u16;
            let body = r.get("body").cloned().unwrap_or(Value::Null);
            let res = if (200..300).contains(&status) {
                Ok(body)
            } else {
                Err(ProviderError::Problem(Box::new(Problem::from_body(
                    status,
                    body.to_string().as_bytes(),
                ))))
            };
            out.push(self.settle(kind, op, res, attempts).await);
        }
        Ok(out)
    }

    async fn take_lease(
        &self,
        holder: &str,
        purpose: &str,
        ttl: Duration,
    ) -> Result<Take, ProviderError> {
        self.http_take_lease(holder, purpose, ttl).await
    }

    async fn renew_lease(&self, id: &str, ttl: Duration) -> Result<Lease, ProviderError> {
        self.http_renew_lease(id, ttl).await
    }

    async fn release_lease(&self, id: &str) -> Result<(), ProviderError> {
        self.http_release_lease(id).await
    }

    fn hold_lease(&self, id: Option<String>) {
        self.http_hold_lease(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_ops_serialize_as_the_api_says() {
        let ops = vec![
            BatchOp::Create {
                body: json!({"name":"p"}),
                idempotency_key: "k".into(),
            },
            BatchOp::Update {
                key: "p".into(),
                if_match: 3,
                body: json!({"features":[]}),
            },
            BatchOp::Delete {
                key: "jdoe".into(),
                if_match: 2,
                purge_statistics: true,
            },
            BatchOp::Delete {
                key: "x".into(),
                if_match: 1,
                purge_statistics: false,
            },
        ];
        assert_eq!(
            serde_json::to_value(&ops).unwrap(),
            json!([
                {"op":"create","body":{"name":"p"},"idempotency_key":"k"},
                {"op":"update","key":"p","if_match":3,"body":{"features":[]}},
                {"op":"delete","key":"jdoe","if_match":2,"purge_statistics":true},
                {"op":"delete","key":"x","if_match":1}
            ])
        );
    }

    #[test]
    fn holds_compares_sets_ignoring_order_and_password_by_rotation() {
        let obj = json!({"version":4,"features":["a","b"],"team":"X","password":{"rotation":"r2"}});
        assert!(holds(
            &obj,
            &json!({"features":["b","a"],"password":{"value":"s","rotation":"r2"}})
        ));
        assert!(!holds(&obj, &json!({"features":["a"]})));
        assert!(holds(&obj, &json!({"leader":null})));
        assert!(!holds(&obj, &json!({"team":null})));
    }
}
