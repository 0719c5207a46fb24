//! Helpers for the `server` test module: a server started in-process on 127.0.0.1:0 over a fresh
//! SQLite file or a fresh PostgreSQL database (ROSTER_TEST_POSTGRES), and a small HTTP
//! client that returns status, headers and JSON.

#![allow(dead_code)]

use reqwest::Method;
use roster::server::{self, RunningServer, ServerConfig};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct Srv {
    pub server: Option<RunningServer>,
    pub base: String,
    pub admin: String,
    pub database: String,
    pub http: reqwest::Client,
    _dir: tempfile::TempDir,
}

pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Resp {
    pub fn code(&self) -> &str {
        self.body.get("code").and_then(Value::as_str).unwrap_or("")
    }
    pub fn etag(&self) -> Option<String> {
        self.headers
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
    pub fn version(&self) -> i64 {
        self.body["version"].as_i64().expect("body has a version")
    }
}

/// Why a PostgreSQL test is ignored: it runs only when `ROSTER_TEST_POSTGRES` was set at
/// build time (`cfg(roster_test_postgres)`, see build.rs), as `.ci/run` does after
/// `.ci/postgres.sh` has started a cluster.
pub const NEEDS_POSTGRES: &str = "needs PostgreSQL: run `. .ci/postgres.sh; roster_pg_start` (sets ROSTER_TEST_POSTGRES), then `cargo test --all-targets`";

/// A fresh database URL for the backend (always `Some`). A PostgreSQL test is ignored
/// without `ROSTER_TEST_POSTGRES` ([`NEEDS_POSTGRES`]); forced to run without it
/// (`--include-ignored`) it fails rather than passing with nothing checked.
pub async fn fresh_database(backend: Backend, dir: &std::path::Path) -> Option<String> {
    match backend {
        Backend::Sqlite => Some(format!("sqlite://{}", dir.join("live.db").display())),
        Backend::Postgres => {
            let Ok(base) = std::env::var("ROSTER_TEST_POSTGRES") else {
                panic!("ROSTER_TEST_POSTGRES is not set; this test {NEEDS_POSTGRES}");
            };
            let name = format!("roster_t_{}", uuid::Uuid::new_v4().simple());
            let pool = sqlx::PgPool::connect(&base)
                .await
                .expect("connect to ROSTER_TEST_POSTGRES");
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&pool)
                .await
                .expect("create a test database");
            pool.close().await;
            let (prefix, _) = base.rsplit_once('/').expect("url with a database");
            Some(format!("{prefix}/{name}"))
        }
    }
}

pub async fn start(backend: Backend) -> Option<Srv> {
    start_with(backend, |_| {}).await
}

pub async fn start_with(backend: Backend, tweak: impl FnOnce(&mut ServerConfig)) -> Option<Srv> {
    let dir = tempfile::tempdir().unwrap();
    let database = fresh_database(backend, dir.path()).await?;
    let mut cfg = ServerConfig {
        listen: "127.0.0.1:0".into(),
        database: database.clone(),
        admin_token_file: Some(dir.path().join("admin.token")),
        seats: 1000,
        rate_limit: 0,
        inject_faults: 0.0,
        fault_seed: 1,
        ..Default::default()
    };
    tweak(&mut cfg);
    let server = server::start(cfg).await.expect("server starts");
    let admin = server
        .admin_token
        .clone()
        .expect("a fresh database yields a token");
    Some(Srv {
        base: server.url(),
        server: Some(server),
        admin,
        database,
        http: reqwest::Client::new(),
        _dir: dir,
    })
}

impl Srv {
    pub async fn stop(mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, String)],
        body: Option<Vec<u8>>,
    ) -> Resp {
        let mut rb = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        for (k, v) in headers {
            rb = rb.header(*k, v);
        }
        if let Some(b) = body {
            rb = rb.header("content-type", "application/json").body(b);
        }
        let r = rb.send().await.expect("request sent");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let bytes = r.bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        Resp {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, token: &str, path: &str) -> Resp {
        self.call(Method::GET, path, Some(token), &[], None).await
    }

    pub async fn post(&self, token: &str, path: &str, body: &Value) -> Resp {
        self.call(
            Method::POST,
            path,
            Some(token),
            &[],
            Some(body.to_string().into_bytes()),
        )
        .await
    }

    pub async fn post_idem(&self, token: &str, path: &str, key: &str, body: &Value) -> Resp {
        self.call(
            Method::POST,
            path,
            Some(token),
            &[("idempotency-key", key.to_string())],
            Some(body.to_string().into_bytes()),
        )
        .await
    }

    pub async fn patch(&self, token: &str, path: &str, version: Option<i64>, body: &Value) -> Resp {
        let h: Vec<(&str, String)> = version
            .map(|v| ("if-match", format!("\"{v}\"")))
            .into_iter()
            .collect();
        self.call(
            Method::PATCH,
            path,
            Some(token),
            &h,
            Some(body.to_string().into_bytes()),
        )
        .await
    }

    pub async fn delete(&self, token: &str, path: &str, version: Option<i64>) -> Resp {
        let h: Vec<(&str, String)> = version
            .map(|v| ("if-match", format!("\"{v}\"")))
            .into_iter()
            .collect();
        self.call(Method::DELETE, path, Some(token), &h, None).await
    }

    /// Creates and asserts 201; returns the body.
    pub async fn create(&self, token: &str, collection: &str, body: Value) -> Value {
        let r = self.post(token, &format!("/v1/{collection}"), &body).await;
        assert_eq!(r.status, 201, "create {collection}: {}", r.body);
        r.body
    }

    /// A manager token through POST /v1/tokens.
    pub async fn manager_token(&self, login: &str) -> String {
        let r = self
            .post(
                &self.admin,
                "/v1/tokens",
                &serde_json::json!({ "manager": login }),
            )
            .await;
        assert_eq!(r.status, 201, "token: {}", r.body);
        r.body["token"].as_str().unwrap().to_string()
    }
}

/// Runs a test body against SQLite (`NAME::sqlite`) and PostgreSQL (`NAME::postgres`,
/// ignored without PostgreSQL, see [`NEEDS_POSTGRES`]; the `ignore` reason repeats it
/// because the attribute takes a literal only).
macro_rules! both_backends {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                if let Some(s) = $crate::support::server::start($crate::support::server::Backend::Sqlite).await {
                    super::$name(&s).await;
                    s.stop().await;
                }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[cfg_attr(
                not(roster_test_postgres),
                ignore = "needs PostgreSQL: run `. .ci/postgres.sh; roster_pg_start` (sets ROSTER_TEST_POSTGRES), then `cargo test --all-targets`"
            )]
            async fn postgres() {
                if let Some(s) = $crate::support::server::start($crate::support::server::Backend::Postgres).await {
                    super::$name(&s).await;
                    s.stop().await;
                }
            }
        }
    };
}
