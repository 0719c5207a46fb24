//! What the live API tells its operators: Prometheus metrics (`GET /metrics`, text
//! format, no token: they hold counts and route templates, never a key, a login or a
//! token) and one access line per request with its request id.
//!
//! [`observe`] is the outermost middleware: it takes the request id from `X-Request-Id`
//! (bounded to [`MAX_REQUEST_ID`] characters of `[A-Za-z0-9._:-]`) or makes one, echoes
//! it in the answer, counts the request by route template (`/v1/teams/{*key}`, never the
//! raw path) and status, times it, counts successful writes by kind and the size of
//! batches, and logs `method route status latency request_id` at info under the target
//! `roster::access` (JSON with `serve --log-format json`). The pool gauges are read when
//! scraped.

use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
use tracing::Instrument;

use super::AppState;
use super::store::Db;
use crate::model::Kind;

/// The request id header, read from the client and echoed in every answer.
pub const REQUEST_ID: &str = "x-request-id";
/// Longest request id kept from a client (longer ones are cut).
pub const MAX_REQUEST_ID: usize = 64;

/// One server's metrics, in its own registry (several servers may share a process).
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    pub(crate) rate_limited: IntCounter,
    writes: IntCounterVec,
    batch_size: HistogramVec,
    db_connections: IntGaugeVec,
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "roster_http_requests_total",
                "Requests answered, by method, route template and status.",
            ),
            &["method", "route", "status"],
        )
        .expect("valid metric");
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "roster_http_request_duration_seconds",
                "Time to answer a request, by method and route template.",
            ),
            &["method", "route"],
        )
        .expect("valid metric");
        let rate_limited = IntCounter::new(
            "roster_rate_limited_requests_total",
            "Requests refused with 429 by the per-token rate limit.",
        )
        .expect("valid metric");
        let writes = IntCounterVec::new(
            Opts::new(
                "roster_writes_total",
                "Writes done, by collection and operation (a batch's operations one by one).",
            ),
            &["kind", "op"],
        )
        .expect("valid metric");
        let batch_size = HistogramVec::new(
            HistogramOpts::new(
                "roster_batch_operations",
                "Operations per batch request, by collection.",
            )
            .buckets(vec![
                1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0,
            ]),
            &["kind"],
        )
        .expect("valid metric");
        let db_connections = IntGaugeVec::new(
            Opts::new(
                "roster_db_connections",
                "Database pool connections, by pool and state (in_use, idle).",
            ),
            &["pool", "state"],
        )
        .expect("valid metric");
        for c in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(latency.clone()),
            Box::new(rate_limited.clone()),
            Box::new(writes.clone()),
            Box::new(batch_size.clone()),
            Box::new(db_connections.clone()),
        ] {
            registry.register(c).expect("metric registered once");
        }
        Metrics {
            registry,
            requests,
            latency,
            rate_limited,
            writes,
            batch_size,
            db_connections,
        }
    }

    /// The text exposition of every metric, the pool gauges read now.
    pub fn render(&self, db: &Db) -> String {
        let pool = |name: &str, size: u32, idle: usize| {
            let idle = idle as i64;
            self.db_connections
                .with_label_values(&[name, "in_use"])
                .set((size as i64 - idle).max(0));
            self.db_connections
                .with_label_values(&[name, "idle"])
                .set(idle);
        };
        match db {
            Db::Sqlite { read, write } => {
                pool("sqlite_read", read.size(), read.num_idle());
                pool("sqlite_write", write.size(), write.num_idle());
            }
            Db::Postgres(p) => pool("postgres", p.size(), p.num_idle()),
        }
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// `GET /metrics`.
pub(crate) async fn scrape(State(st): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        st.metrics.render(&st.db),
    )
        .into_response()
}

/// The client's request id, sanitized, or none (then the server makes one).
pub fn client_request_id(raw: &str) -> Option<String> {
    let id: String = raw
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
        .take(MAX_REQUEST_ID)
        .collect();
    (!id.is_empty()).then_some(id)
}

/// The route template of a request, with a known collection filled in (bounded:
/// one per kind), `unmatched` when no route matched.
pub fn route_of(template: Option<&str>, path: &str) -> String {
    let Some(t) = template else {
        return "unmatched".into();
    };
    if !t.contains("{collection}") {
        return t.to_string();
    }
    let segment = path
        .strip_prefix("/v1/")
        .and_then(|p| p.split('/').next())
        .unwrap_or("");
    let base = segment.strip_suffix(":batch").unwrap_or(segment);
    if Kind::ALL.into_iter().any(|k| k.collection() == base) {
        t.replace("{collection}", segment)
    } else {
        t.to_string()
    }
}

/// The collection and operation of a write (for `roster_writes_total`), if it is one.
fn write_of(method: &Method, route: &str) -> Option<(String, &'static str)> {
    let rest = route.strip_prefix("/v1/")?;
    let (collection, has_key) = match rest.split_once('/') {
        Some((c, _)) => (c, true),
        None => (rest, false),
    };
    if collection.contains('{') || collection.ends_with(":batch") {
        return None;
    }
    let known = collection == "account" || Kind::ALL.iter().any(|k| k.collection() == collection);
    if !known {
        return None;
    }
    let op = match (method.as_str(), has_key) {
        ("POST", false) if collection != "account" => "create",
        ("PATCH", _) => "update",
        ("DELETE", true) => "delete",
        _ => return None,
    };
    Some((collection.to_string(), op))
}

#[derive(serde::Deserialize)]
struct BatchShape {
    #[serde(default)]
    operations: Vec<BatchOpShape>,
}

#[derive(serde::Deserialize)]
struct BatchOpShape {
    #[serde(default)]
    op: String,
}

#[derive(serde::Deserialize)]
struct BatchResults {
    #[serde(default)]
    results: Vec<BatchResult>,
}

#[derive(serde::Deserialize)]
struct BatchResult {
    #[serde(default)]
    status: u16,
}

/// The outermost middleware (see the module doc).
pub(crate) async fn observe(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .and_then(client_request_id)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let method = req.method().clone();
    let route = route_of(
        req.extensions().get::<MatchedPath>().map(|m| m.as_str()),
        req.uri().path(),
    );
    // A batch's operations are counted from its body (read once here, bounded like the
    // handler's; a body the handler would refuse as too large is passed on unread).
    let mut batch: Option<(String, Vec<String>)> = None;
    let req = match route
        .strip_prefix("/v1/")
        .and_then(|r| r.strip_suffix(":batch"))
    {
        Some(kind) if method == Method::POST => {
            let (parts, body) = req.into_parts();
            match axum::body::to_bytes(body, super::BODY_LIMIT).await {
                Ok(bytes) => {
                    if let Ok(shape) = serde_json::from_slice::<BatchShape>(&bytes) {
                        let ops = shape.operations.into_iter().map(|o| o.op).collect();
                        batch = Some((kind.to_string(), ops));
                    }
                    Request::from_parts(parts, Body::from(bytes))
                }
                Err(_) => {
                    return super::problem::Problem::new(
                        axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                        "payload-too-large",
                        format!(
                            "the body is larger than {} MiB; split it into smaller batches",
                            super::BODY_LIMIT / (1024 * 1024)
                        ),
                    )
                    .into_response();
                }
            }
        }
        _ => req,
    };
    let span = tracing::info_span!("request", request_id = %id);
    let mut resp = next.run(req).instrument(span).await;
    let status = resp.status();
    let elapsed = started.elapsed();
    let m = &st.metrics;
    m.requests
        .with_label_values(&[method.as_str(), &route, status.as_str()])
        .inc();
    m.latency
        .with_label_values(&[method.as_str(), &route])
        .observe(elapsed.as_secs_f64());
    if status.is_success() {
        if let Some((kind, ops)) = &batch {
            m.batch_size
                .with_label_values(&[kind])
                .observe(ops.len() as f64);
            // Each operation has its own result: count those done (our own answer,
            // read back whole).
            let (parts, body) = resp.into_parts();
            let bytes = axum::body::to_bytes(body, usize::MAX)
                .await
                .unwrap_or_default();
            if let Ok(done) = serde_json::from_slice::<BatchResults>(&bytes) {
                for (op, result) in ops.iter().zip(done.results) {
                    if (200..300).contains(&result.status) {
                        m.writes.with_label_values(&[kind, op]).inc();
                    }
                }
            }
            resp = Response::from_parts(parts, Body::from(bytes));
        } else if let Some((kind, op)) = write_of(&method, &route) {
            m.writes.with_label_values(&[&kind, op]).inc();
        }
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID, v);
    }
    tracing::info!(
        target: "roster::access",
        method = %method,
        route = %route,
        status = status.as_u16(),
        latency_ms = (elapsed.as_secs_f64() * 1e6).round() / 1e3,
        request_id = %id,
        "{method} {route} {}",
        status.as_u16()
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_request_id_is_bounded_and_sanitized() {
        assert_eq!(client_request_id("abc-123").as_deref(), Some("abc-123"));
        assert_eq!(
            client_request_id("a b\r\nc<script>").as_deref(),
            Some("abcscript")
        );
        assert_eq!(client_request_id(" \n").as_deref(), None);
        let long = "x".repeat(500);
        assert_eq!(client_request_id(&long).unwrap().len(), MAX_REQUEST_ID);
    }

    #[test]
    fn routes_are_templates_with_known_collections_only() {
        let t = Some("/v1/{collection}/{*key}");
        assert_eq!(route_of(t, "/v1/teams/Europe%2FParis"), "/v1/teams/{*key}");
        assert_eq!(
            route_of(Some("/v1/{collection}"), "/v1/representatives:batch"),
            "/v1/representatives:batch"
        );
        assert_eq!(route_of(t, "/v1/bogus/x"), "/v1/{collection}/{*key}");
        assert_eq!(route_of(None, "/nope/jdoe"), "unmatched");
        assert_eq!(route_of(Some("/healthz"), "/healthz"), "/healthz");
    }

    #[test]
    fn writes_are_named_by_collection_and_operation() {
        let w = |m: Method, r: &str| write_of(&m, r);
        assert_eq!(
            w(Method::POST, "/v1/portals"),
            Some(("portals".into(), "create"))
        );
        assert_eq!(
            w(Method::PATCH, "/v1/teams/{*key}"),
            Some(("teams".into(), "update"))
        );
        assert_eq!(
            w(Method::DELETE, "/v1/managers/{*key}"),
            Some(("managers".into(), "delete"))
        );
        assert_eq!(
            w(Method::PATCH, "/v1/account"),
            Some(("account".into(), "update"))
        );
        assert_eq!(w(Method::GET, "/v1/portals"), None);
        assert_eq!(w(Method::POST, "/v1/lease"), None);
        assert_eq!(w(Method::POST, "/v1/portals:batch"), None);
    }
}
