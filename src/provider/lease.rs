//! The apply lease's calls (`/v1/lease`, docs/api.md "Apply lease"): take, renew,
//! release, and the `Roster-Lease` header that every write carries while a lease is
//! held ([`HttpProvider::hold_lease`]), so that the server refuses the writes of a
//! client whose lease lapsed instead of letting them land under the next holder.
//!
//! A take carries an id this client chose: a take whose answer was lost is retried like
//! any request, and the server answers the retry with the same lease (201) instead of
//! finding it held by this very client.
//!
//! These are the [`super::Provider`] trait's lease methods for the HTTP client
//! (`write.rs` delegates to them); `memory.rs` has the in-memory lease.

use std::time::Duration;

use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use super::{HttpProvider, ProviderError};

/// Who holds the lease, as the API shows it to anyone (`GET /v1/lease`, `lease-held`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LeaseHolder {
    pub holder: String,
    #[serde(default)]
    pub purpose: String,
    #[serde(default)]
    pub taken_by: String,
    #[serde(default)]
    pub acquired_at: String,
    pub expires_at: String,
}

/// A lease this client holds: the holder's view plus its `id`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Lease {
    pub id: String,
    #[serde(flatten)]
    pub holder: LeaseHolder,
}

/// The answer to a take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Take {
    Taken(Lease),
    /// Another client holds it.
    Held(LeaseHolder),
}

fn unexpected(url: String, e: impl std::fmt::Display) -> ProviderError {
    ProviderError::Unexpected {
        url,
        detail: format!("the lease answer is not what docs/api.md promises: {e}"),
    }
}

impl HttpProvider {
    /// `POST /v1/lease` for `ttl` (whole seconds).
    pub(super) async fn http_take_lease(
        &self,
        holder: &str,
        purpose: &str,
        ttl: Duration,
    ) -> Result<Take, ProviderError> {
        // The id is ours, so that a retry of a take whose answer was lost gets this
        // lease back instead of finding it held (by us).
        let id = uuid::Uuid::new_v4().simple().to_string();
        let body = json!({"holder": holder, "purpose": purpose, "ttl_seconds": ttl.as_secs(),
                          "id": id});
        match self
            .send(Method::POST, "/v1/lease", Some(&body), &[])
            .await
            .result
        {
            Ok((_, bytes)) => serde_json::from_slice(&bytes)
                .map(Take::Taken)
                .map_err(|e| unexpected(format!("{}/v1/lease", self.base), e)),
            Err(ProviderError::Problem(p)) if p.status == 409 && p.code == "lease-held" => {
                let lease = p.lease.clone().unwrap_or_default();
                serde_json::from_value(lease)
                    .map(Take::Held)
                    .map_err(|e| unexpected(format!("{}/v1/lease", self.base), e))
            }
            Err(e) => Err(e),
        }
    }

    /// `PUT /v1/lease/{id}`: the lease now expires `ttl` from now.
    pub(super) async fn http_renew_lease(
        &self,
        id: &str,
        ttl: Duration,
    ) -> Result<Lease, ProviderError> {
        let path = format!("/v1/lease/{}", super::encode_key(id));
        let body = json!({"ttl_seconds": ttl.as_secs()});
        let (_, bytes) = self
            .send(Method::PUT, &path, Some(&body), &[])
            .await
            .result?;
        serde_json::from_slice(&bytes).map_err(|e| unexpected(format!("{}{path}", self.base), e))
    }

    /// `DELETE /v1/lease/{id}`; a lease already gone (404) counts as released.
    pub(super) async fn http_release_lease(&self, id: &str) -> Result<(), ProviderError> {
        let path = format!("/v1/lease/{}", super::encode_key(id));
        match self.send(Method::DELETE, &path, None, &[]).await.result {
            Ok(_) => Ok(()),
            Err(e) if e.status() == Some(404) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// From now on every write (any method but GET) carries `Roster-Lease: id`; `None`
    /// stops it. Shared by the clones of this provider.
    pub(super) fn http_hold_lease(&self, id: Option<String>) {
        *self.lease.lock().unwrap_or_else(|e| e.into_inner()) = id;
    }

    /// The lease id writes carry, if any.
    pub(crate) fn lease_header(&self) -> Option<String> {
        self.lease.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
