//! The live API's HTTP client: reads the whole live state into an [`Observed`] and sends
//! the writes that `apply` asks for, behind the [`Provider`] trait.
//!
//! Owns: the request loop (bearer auth, retries with exponential backoff on
//! 429/502/503/504 and transport failures honouring `Retry-After`, never on a 412 or
//! another 4xx), the paged concurrent read ([`HttpProvider::read`]), single writes and
//! `:batch` writes, and the parsing of RFC 9457 problems ([`Problem`]). It is given an
//! endpoint URL and a token and nothing else: choosing them, and starting the embedded
//! server when there is no endpoint, is `ops::connect`'s job.
//!
//! Data comes from the API described in docs/api.md; [`Observed`] goes to `plan`, write
//! results go back to `apply`. This is the only module besides `server` that speaks HTTP.
//!
//! Every request carries an `X-Request-Id`, `roster-<run>-<n>`: one random run id per
//! provider and a sequence number per request (its retries share it). It is logged at
//! debug level (`-vv`) and named in the message of a problem the server answered, so a
//! failed write can be found in the server's log lines. The server echoes it.
//!
//! TLS is rustls with the webpki roots, plus the PEM bundle of [`ClientOptions::ca_cert`]
//! (`--ca-cert`) for self-signed deployments.
//!
//! The apply lease's calls are `provider::lease`'s ([`Take`]); while one is held, every
//! write carries its id as `Roster-Lease`.
//!
//! Lost answers: a write whose answer was lost may have been done. A create carries an
//! `Idempotency-Key`, so its retry replays the first answer. An update retried after a
//! lost answer meets 412 (the version moved on because of our own write) and a delete meets
//! 404: when that happens on a retry, the provider reads the object back and counts the
//! write as done if the object is exactly what the write would have made.

mod error;
mod lease;
#[cfg(test)]
pub(crate) mod memory;
mod read;
mod snapshot;
mod write;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use bytes::Bytes;
use reqwest::Method;
use serde_json::Value;

pub use error::{Problem, ProblemItem, ProviderError};
pub use lease::{Lease, LeaseHolder, Take};
pub use snapshot::{CHANGE_FEED, Since, Snapshots};

/// Where the live snapshots go under the state directory.
pub fn snapshot_subdir() -> &'static str {
    snapshot::SUBDIR
}
pub use write::{BatchOp, CheckOp, CheckResult, PLAN_CHECK};

use crate::model::{Kind, Observed};

/// What `plan` and `apply` need of a live system: read it whole, write one object, write
/// many of one kind at once. [`HttpProvider`] is the real one; unit tests of the
/// executor use an in-memory one (`provider::memory`).
///
/// Writes answer the object as the live system now holds it (its `version` is what the
/// next `If-Match` of the same object must carry); a batch answers one result per
/// operation, in order, or fails as a whole.
pub trait Provider: Sync {
    /// Where the live system is, for messages (never holds the token).
    fn base_url(&self) -> &str;

    fn read(&self) -> impl Future<Output = Result<Observed, ProviderError>> + Send;

    fn create(
        &self,
        kind: Kind,
        body: &Value,
        idempotency_key: &str,
    ) -> impl Future<Output = Result<Value, ProviderError>> + Send;

    fn update(
        &self,
        kind: Kind,
        key: &str,
        if_match: i64,
        patch: &Value,
    ) -> impl Future<Output = Result<Value, ProviderError>> + Send;

    fn delete(
        &self,
        kind: Kind,
        key: &str,
        if_match: i64,
        purge_statistics: bool,
    ) -> impl Future<Output = Result<(), ProviderError>> + Send;

    fn batch(
        &self,
        kind: Kind,
        ops: &[BatchOp],
    ) -> impl Future<Output = Result<Vec<Result<Value, ProviderError>>, ProviderError>> + Send;

    /// A dry run of a plan's writes, of every kind, in order (`POST /v1/plan:check`):
    /// what each would get, nothing written. Only called when the live system lists
    /// [`PLAN_CHECK`] in `Observed::capabilities`.
    fn check(
        &self,
        ops: &[CheckOp],
    ) -> impl Future<Output = Result<Vec<CheckResult>, ProviderError>> + Send;

    /// Takes the apply lease for `ttl` (`POST /v1/lease`), or says who holds it.
    fn take_lease(
        &self,
        holder: &str,
        purpose: &str,
        ttl: Duration,
    ) -> impl Future<Output = Result<Take, ProviderError>> + Send;

    /// The held lease `id` now expires `ttl` from now.
    fn renew_lease(
        &self,
        id: &str,
        ttl: Duration,
    ) -> impl Future<Output = Result<Lease, ProviderError>> + Send;

    /// Releases lease `id`; one already gone counts as released.
    fn release_lease(&self, id: &str) -> impl Future<Output = Result<(), ProviderError>> + Send;

    /// From now on every write carries lease `id` (`Roster-Lease`); `None` stops it.
    fn hold_lease(&self, id: Option<String>);

    /// What the live change feed says happened since `cursor` (a saved plan's
    /// `target.live`), in one request, with who the token acts as and the account;
    /// `None` where the feed cannot say (no feed for this token, a cursor the live
    /// system no longer keeps, a server without it): the caller reads in full.
    fn since(
        &self,
        cursor: &str,
    ) -> impl Future<Output = Result<Option<Since>, ProviderError>> + Send {
        let _ = cursor;
        async { Ok(None) }
    }
}

/// How a request is retried.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: usize,
    /// First backoff delay (doubled each time, with jitter).
    pub min_delay: Duration,
    /// Longest backoff delay.
    pub max_delay: Duration,
    /// Longest `Retry-After` honoured; a server asking for more gets this.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 7,
            min_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(2),
            max_retry_after: Duration::from_secs(30),
        }
    }
}

/// How the HTTP client is set up beyond the endpoint and the token.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// A PEM bundle of certificate authorities trusted besides the usual roots.
    pub ca_cert: Option<PathBuf>,
}

/// The request id header (sent with every request; the server echoes it).
pub const REQUEST_ID: &str = "x-request-id";

/// The HTTP client of one live API endpoint. Cheap to clone (the connection pool is shared).
#[derive(Clone)]
pub struct HttpProvider {
    client: reqwest::Client,
    /// Base URL without a trailing slash; paths `/v1/…` are appended.
    base: String,
    /// Bearer token; never logged, never in `Debug`.
    token: Option<String>,
    retry: RetryPolicy,
    /// Set once the user was told that the endpoint cannot be reached and roster retries
    /// (said once per run, not per request).
    unreachable_said: Arc<AtomicBool>,
    /// The apply lease held, sent as `Roster-Lease` with every write (`provider::lease`).
    lease: Arc<Mutex<Option<String>>>,
    /// This provider's part of every request id, and the sequence after it.
    run_id: Arc<str>,
    sequence: Arc<AtomicU64>,
    /// Where the live snapshot is kept (`provider::snapshot`); none: every read is full.
    snapshots: Option<Snapshots>,
}

impl std::fmt::Debug for HttpProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpProvider")
            .field("base", &self.base)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("retry", &self.retry)
            .finish()
    }
}

/// The result of one request after retries, with how many attempts it took (a write
/// retried after a lost answer may already have been done).
pub(crate) struct Sent {
    pub result: Result<(u16, Bytes), ProviderError>,
    pub attempts: usize,
}

/// A `Retry-After` value (RFC 9110 §10.2.3): whole seconds, or an HTTP date (a date in
/// the past means now). Anything else is ignored (the backoff's own delay applies).
fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

impl HttpProvider {
    /// A client of `base` (`http://127.0.0.1:8080`, `https://console.example/api`).
    pub fn new(base: &str, token: Option<String>) -> Result<HttpProvider, ProviderError> {
        HttpProvider::with_options(base, token, &ClientOptions::default())
    }

    /// [`HttpProvider::new`] with a custom CA bundle and the like.
    pub fn with_options(
        base: &str,
        token: Option<String>,
        options: &ClientOptions,
    ) -> Result<HttpProvider, ProviderError> {
        let base = base.trim().trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ProviderError::Setup(format!(
                "endpoint {base:?} is not an http:// or https:// url; set --endpoint or ROSTER_ENDPOINT to the api's base url"
            )));
        }
        if let Some(t) = &token
            && (t.is_empty() || t.chars().any(|c| c.is_control() || c == ' '))
        {
            return Err(ProviderError::Setup(
                "the api token is empty or contains spaces or control characters; check --token-file or ROSTER_TOKEN".into(),
            ));
        }
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(120))
            .pool_max_idle_per_host(64)
            .user_agent(concat!("roster/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &options.ca_cert {
            let pem = std::fs::read(path).map_err(|e| {
                ProviderError::Setup(format!(
                    "cannot read the ca certificate {} (--ca-cert or ROSTER_CA_CERT): {e}",
                    path.display()
                ))
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                ProviderError::Setup(format!(
                    "{} (--ca-cert or ROSTER_CA_CERT) is not a pem certificate bundle: {e}",
                    path.display()
                ))
            })?;
            if certs.is_empty() {
                return Err(ProviderError::Setup(format!(
                    "{} (--ca-cert or ROSTER_CA_CERT) holds no pem certificate",
                    path.display()
                )));
            }
            for c in certs {
                builder = builder.add_root_certificate(c);
            }
        }
        let client = builder
            .build()
            .map_err(|e| ProviderError::Setup(format!("cannot build the http client: {e}")))?;
        Ok(HttpProvider {
            client,
            base,
            token,
            retry: RetryPolicy::default(),
            unreachable_said: Arc::new(AtomicBool::new(false)),
            lease: Arc::new(Mutex::new(None)),
            run_id: uuid::Uuid::new_v4().simple().to_string()[..12].into(),
            sequence: Arc::new(AtomicU64::new(0)),
            snapshots: None,
        })
    }

    /// Keeps the live state between runs in `s` and brings it up to date from the
    /// live change feed where the endpoint has one (`provider::snapshot`).
    pub fn with_snapshots(mut self, s: Snapshots) -> HttpProvider {
        self.snapshots = Some(s);
        self
    }

    /// The next request id (`roster-<run>-<n>`).
    fn next_request_id(&self) -> String {
        let n = self.sequence.fetch_add(1, Ordering::Relaxed) + 1;
        format!("roster-{}-{n}", self.run_id)
    }

    /// Replaces the retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> HttpProvider {
        self.retry = retry;
        self
    }

    /// One attempt: send, receive the whole body, classify the status.
    async fn attempt(
        &self,
        method: &Method,
        url: &str,
        body: Option<&Value>,
        headers: &[(&'static str, String)],
        request_id: &str,
    ) -> Result<(u16, Bytes), ProviderError> {
        let mut req = self
            .client
            .request(method.clone(), url)
            .header(REQUEST_ID, request_id);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        for (name, value) in headers {
            req = req.header(*name, value);
        }
        if *method != Method::GET
            && let Some(id) = self.lease_header()
        {
            req = req.header("roster-lease", id);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let transport = |e: &reqwest::Error| ProviderError::Transport {
            url: url.to_string(),
            message: error::describe_reqwest(e),
        };
        let resp = req.send().await.map_err(|e| transport(&e))?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, std::time::SystemTime::now()));
        let bytes = resp.bytes().await.map_err(|e| transport(&e))?;
        if (200..300).contains(&status) {
            Ok((status, bytes))
        } else {
            let mut p = Problem::from_body(status, &bytes);
            p.retry_after = retry_after;
            p.request_id = Some(request_id.to_string());
            Err(ProviderError::Problem(Box::new(p)))
        }
    }

    /// Sends a request, retrying transient failures (see [`ProviderError::is_transient`]).
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&'static str, String)],
    ) -> Sent {
        let url = format!("{}{}", self.base, path);
        let request_id = self.next_request_id();
        let attempts = AtomicUsize::new(0);
        let policy = self.retry;
        let backoff = ExponentialBuilder::default()
            .with_min_delay(policy.min_delay)
            .with_max_delay(policy.max_delay)
            .with_max_times(policy.max_retries)
            .with_jitter();
        let result = (|| async {
            attempts.fetch_add(1, Ordering::Relaxed);
            self.attempt(&method, &url, body, headers, &request_id)
                .await
        })
        .retry(backoff)
        .sleep(tokio::time::sleep)
        .when(|e: &ProviderError| e.is_transient())
        // `dur` is None once the backoff is exhausted: keep it so, or retries never end.
        .adjust(|e: &ProviderError, dur| {
            dur.map(|d| {
                e.retry_after()
                    .map(|ra| ra.min(policy.max_retry_after))
                    .unwrap_or(d)
            })
        })
        .notify(|e: &ProviderError, d| {
            tracing::debug!("{method} {path} [{request_id}]: {e}; retrying in {d:?}");
            // A connection that fails is the one retry the user would otherwise sit
            // through in silence (a wrong endpoint, a server still starting).
            if matches!(e, ProviderError::Transport { .. })
                && !self.unreachable_said.swap(true, Ordering::Relaxed)
            {
                tracing::warn!(
                    "cannot reach the live api at {} yet; retrying for a few seconds",
                    self.base
                );
            }
        })
        .await;
        let attempts = attempts.load(Ordering::Relaxed);
        // Method, path and outcome only: a body may carry a password value.
        match &result {
            Ok((status, _)) => tracing::debug!(
                "{method} {path} → {status} ({attempts} attempt(s), request id {request_id})"
            ),
            Err(e) => tracing::debug!(
                "{method} {path} → {e} ({attempts} attempt(s), request id {request_id})"
            ),
        }
        Sent { result, attempts }
    }

    /// GET a JSON document.
    pub(crate) async fn get_json(&self, path: &str) -> Result<Value, ProviderError> {
        let (_, bytes) = self.send(Method::GET, path, None, &[]).await.result?;
        serde_json::from_slice(&bytes).map_err(|e| ProviderError::Unexpected {
            url: format!("{}{}", self.base, path),
            detail: format!("the body is not json: {e}"),
        })
    }
}

/// Percent-encodes one path segment (a key): everything but RFC 3986 unreserved
/// characters, so a team path's `/` becomes `%2F` (docs/api.md).
pub fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod testing;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_percent_encoded_as_one_segment() {
        assert_eq!(encode_key("Europe/Paris"), "Europe%2FParis");
        assert_eq!(encode_key("jdoe@acme.example"), "jdoe%40acme.example");
        assert_eq!(encode_key("a b~c"), "a%20b~c");
        assert_eq!(encode_key("Zürich"), "Z%C3%BCrich");
    }

    #[test]
    fn debug_never_shows_the_token() {
        let p = HttpProvider::new("http://127.0.0.1:1/", Some("s3cr3t-token".into())).unwrap();
        let shown = format!("{p:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains("***"));
        assert_eq!(p.base_url(), "http://127.0.0.1:1");
    }

    #[test]
    fn an_endpoint_that_is_not_http_is_refused() {
        let e = HttpProvider::new("ftp://x", None).unwrap_err();
        assert!(e.to_string().contains("not an http"), "{e}");
    }
}

#[cfg(test)]
mod http_tests {
    use std::time::Instant;

    use serde_json::json;

    use super::testing::{MockServer, problem};
    use super::*;
    use crate::model::Kind;

    fn fast() -> RetryPolicy {
        RetryPolicy {
            max_retries: 4,
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
            max_retry_after: Duration::from_secs(2),
        }
    }

    #[test]
    fn retry_after_is_seconds_or_an_http_date() {
        let now = httpdate::parse_http_date("Wed, 25 Nov 2026 12:00:00 GMT").unwrap();
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Wed, 25 Nov 2026 12:00:42 GMT", now),
            Some(Duration::from_secs(42))
        );
        assert_eq!(
            parse_retry_after("Wed, 25 Nov 2026 11:59:00 GMT", now),
            Some(Duration::ZERO),
            "a date in the past means now"
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
    }

    #[tokio::test]
    async fn a_503_is_retried_after_retry_after_with_the_same_idempotency_key() {
        let mut busy = problem(503, "unavailable", "try later");
        busy.1.push(("retry-after", "1".into()));
        let server = MockServer::start(
            vec![busy, (201, vec![], r#"{"name":"p","version":1}"#.into())],
            None,
        )
        .await;
        let p = HttpProvider::new(&server.url(), Some("tok".into()))
            .unwrap()
            .with_retry(fast());
        let t0 = Instant::now();
        let made = p
            .create(Kind::Portal, &json!({"name":"p"}), "key-1")
            .await
            .unwrap();
        assert_eq!(made["version"], 1);
        assert!(
            t0.elapsed() >= Duration::from_millis(900),
            "retry-after ignored"
        );
        let seen = server.seen();
        assert_eq!(seen.len(), 2);
        assert!(
            seen.iter()
                .all(|s| s.idempotency_key.as_deref() == Some("key-1"))
        );
        assert_eq!(seen[0].authorization.as_deref(), Some("Bearer tok"));
        assert_eq!(seen[0].path, "/v1/portals");
    }

    #[tokio::test]
    async fn each_request_has_its_own_request_id_its_retries_share_it_and_a_problem_names_it() {
        let server = MockServer::start(
            vec![
                problem(503, "unavailable", "busy"),
                (200, vec![], r#"{"name":"p","version":2}"#.into()),
                problem(412, "precondition-failed", "stale"),
            ],
            None,
        )
        .await;
        let p = HttpProvider::new(&server.url(), None)
            .unwrap()
            .with_retry(fast());
        p.update(Kind::Portal, "p", 1, &json!({})).await.unwrap();
        let err = p
            .update(Kind::Portal, "p", 1, &json!({}))
            .await
            .unwrap_err();
        let ids: Vec<String> = server
            .seen()
            .into_iter()
            .map(|s| s.request_id.expect("every request carries an id"))
            .collect();
        assert_eq!(ids.len(), 3);
        assert_eq!(ids[0], ids[1], "a retry keeps its request's id");
        assert_ne!(ids[1], ids[2], "the next request has its own");
        assert!(
            ids[2].starts_with("roster-") && ids[2].ends_with("-2"),
            "{ids:?}"
        );
        let shown = err.to_string();
        assert!(
            shown.ends_with(&format!("(request id {})", ids[2])),
            "{shown}"
        );
    }

    #[tokio::test]
    async fn a_412_is_never_retried() {
        let server =
            MockServer::start(vec![problem(412, "precondition-failed", "stale")], None).await;
        let p = HttpProvider::new(&server.url(), None)
            .unwrap()
            .with_retry(fast());
        let err = p
            .update(Kind::Team, "Europe/Paris", 3, &json!({"description":"x"}))
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(412));
        let seen = server.seen();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].path, "/v1/teams/Europe%2FParis");
        assert_eq!(seen[0].if_match.as_deref(), Some("\"3\""));
    }

    #[tokio::test]
    async fn retries_give_up_after_the_policy_with_the_last_problem() {
        let server = MockServer::start(
            vec![],
            Some(Box::new(|_| {
                Some(problem(429, "rate-limited", "slow down"))
            })),
        )
        .await;
        let p = HttpProvider::new(&server.url(), None)
            .unwrap()
            .with_retry(fast());
        let err = p.delete(Kind::Portal, "p", 1, false).await.unwrap_err();
        assert_eq!(err.code(), Some("rate-limited"));
        assert_eq!(server.seen().len(), 5, "one attempt and four retries");
    }

    #[tokio::test]
    async fn an_update_whose_answer_was_lost_is_recognised_as_done() {
        let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let c = calls.clone();
        let server = MockServer::start(
            vec![],
            Some(Box::new(move |s| {
                if s.method == "PATCH" {
                    // First attempt: the write is done but the answer is lost (503).
                    if c.fetch_add(1, Ordering::SeqCst) == 0 {
                        Some(problem(503, "unavailable", "lost"))
                    } else {
                        Some(problem(412, "precondition-failed", "version is 4"))
                    }
                } else {
                    Some((
                        200,
                        vec![],
                        r#"{"name":"p","features":["share_my_screen"],"version":4}"#.into(),
                    ))
                }
            })),
        )
        .await;
        let p = HttpProvider::new(&server.url(), None)
            .unwrap()
            .with_retry(fast());
        let obj = p
            .update(
                Kind::Portal,
                "p",
                3,
                &json!({"features":["share_my_screen"]}),
            )
            .await
            .unwrap();
        assert_eq!(obj["version"], 4);
        let methods: Vec<String> = server.seen().into_iter().map(|s| s.method).collect();
        assert_eq!(methods, ["PATCH", "PATCH", "GET"]);
    }

    #[tokio::test]
    async fn a_first_attempt_412_is_not_second_guessed() {
        let server = MockServer::start(
            vec![],
            Some(Box::new(|s| {
                (s.method == "PATCH").then(|| problem(412, "precondition-failed", "x"))
            })),
        )
        .await;
        let p = HttpProvider::new(&server.url(), None)
            .unwrap()
            .with_retry(fast());
        assert!(p.update(Kind::Portal, "p", 3, &json!({})).await.is_err());
        assert_eq!(
            server.seen().len(),
            1,
            "no GET to confirm a first-attempt 412"
        );
    }

    #[tokio::test]
    async fn read_follows_cursors_and_reads_kinds_concurrently() {
        let rep = |login: &str, v: i64| {
            json!({"login": login, "email": login, "first_name": "A", "last_name": "B",
                   "language": "en", "status": "active", "features": [], "portals": [],
                   "version": v})
        };
        let (a, b) = (rep("a@x.example", 2), rep("B@x.example", 5));
        let server = MockServer::start(
            vec![],
            Some(Box::new(move |s| {
                let body = match s.path.as_str() {
                    "/v1/account" => json!({"name":"acme","seats":10,"version":1}),
                    "/v1/whoami" => json!({"role":"administrator","login":"root@x.example"}),
                    "/v1/representatives?limit=1000" => {
                        json!({"items":[a.clone()],"next_cursor":"a@x.example"})
                    }
                    "/v1/representatives?limit=1000&cursor=a%40x.example" => {
                        json!({"items":[b.clone()],"next_cursor":null})
                    }
                    p if p.ends_with("?limit=1000") => json!({"items":[],"next_cursor":null}),
                    _ => return None,
                };
                Some((200, vec![], body.to_string()))
            })),
        )
        .await;
        let p = HttpProvider::new(&server.url(), None)
            .unwrap()
            .with_retry(fast());
        let obs = p.read().await.unwrap();
        assert_eq!(obs.account.seats, 10);
        assert_eq!(obs.org.representatives.len(), 2);
        assert!(obs.org.representatives.contains_key("b@x.example"));
        assert_eq!(
            obs.versions[&crate::model::ObjectId::new(Kind::Representative, "b@x.example")],
            5
        );
        assert!(matches!(
            obs.principal,
            Some(crate::model::Principal::Administrator { .. })
        ));
        assert_eq!(
            server.seen().len(),
            2 + 6 + 2,
            "paged lists, no per-object GET"
        );
    }
}

#[cfg(test)]
mod visibility_tests {
    use serde_json::json;

    use super::testing::{MockServer, problem};
    use super::*;

    #[tokio::test]
    async fn a_kind_the_token_may_not_list_reads_as_empty() {
        let server = MockServer::start(
            vec![],
            Some(Box::new(|s| {
                let body = match s.path.as_str() {
                    "/v1/account" => json!({"name":"acme","seats":10,"version":1}),
                    "/v1/whoami" => json!({"role":"manager","login":"m@x.example"}),
                    p if p.starts_with("/v1/administrators") => {
                        return Some(problem(403, "forbidden", "managers may not"));
                    }
                    _ => json!({"items":[],"next_cursor":null}),
                };
                Some((200, vec![], body.to_string()))
            })),
        )
        .await;
        let p = HttpProvider::new(&server.url(), None).unwrap();
        let obs = p.read().await.unwrap();
        assert!(obs.org.administrators.is_empty());
        assert!(matches!(
            obs.principal,
            Some(crate::model::Principal::Manager { .. })
        ));
    }

    #[tokio::test]
    async fn a_401_fails_the_read_with_the_fix() {
        let server = MockServer::start(
            vec![],
            Some(Box::new(|_| {
                Some(problem(401, "unauthorized", "unknown token"))
            })),
        )
        .await;
        let p = HttpProvider::new(&server.url(), Some("bad".into())).unwrap();
        let e = p.read().await.unwrap_err().to_string();
        assert!(
            e.contains("unauthorized (401)") && e.contains("ROSTER_TOKEN"),
            "{e}"
        );
    }
}
