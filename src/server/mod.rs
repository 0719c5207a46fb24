//! The reference live system (`roster serve`): the console's admin API over HTTP.
//!
//! axum 0.8 over sqlx 0.8 (SQLite or PostgreSQL, same migrations). Layout:
//! - [`routes`]: thin handlers — parse the request, authenticate, call the engine or the
//!   store, render JSON / problems. The contract is docs/api.md and
//!   `schemas/openapi.json` ([`openapi_json`]).
//! - [`engine`]: every write (single or batch) in one serialized transaction, checking
//!   rules 1–3, 5, 6 so that the store never holds an invalid state.
//! - [`lease`]: the apply lease (`/v1/lease`) and the `Roster-Lease` check of writes.
//! - [`store`]: SQL, pools, migrations. [`auth`]: tokens and rule 6. [`domain`]: the
//!   model types as stored objects. [`problem`]: RFC 9457 errors.
//!
//! Middleware (outermost first): `metrics::observe` (request id, metrics, the access
//! line), panic catcher (500 problem, never a dropped connection), fault injection
//! (testing aid), per-token rate limit, body size limit. `GET /metrics` is
//! `metrics::scrape`. With [`ServerConfig::tls`] the server speaks HTTPS only
//! (rustls through axum-server); without it, plain HTTP (axum's own server).
//!
//! Other modules use [`start`] (a server on any address and database), [`embedded`]
//! (the CLI's in-process default over `<state-dir>/live.db`), [`create_token`] and
//! [`create_admin_token`] (`write` tokens without expiry), and [`issue_token`],
//! [`list_tokens`] and [`revoke_token`] (what `roster token` does).

// `Problem` is ~128 bytes; it travels only on error paths, where boxing buys nothing.
#![allow(clippy::result_large_err)]

pub mod auth;
pub mod domain;
pub mod engine;
pub mod lease;
pub mod metrics;
pub mod openapi;
pub mod problem;
pub mod routes;
pub mod store;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub use openapi::openapi_json;

use crate::model::{Administrator, Kind};
use problem::Problem;
use store::Db;

/// Largest request body (a batch of 1000 objects fits easily).
pub const BODY_LIMIT: usize = 16 * 1024 * 1024;
/// Most operations in one batch and items in one page.
pub const MAX_BATCH: usize = 1000;
pub const MAX_LIMIT: i64 = 1000;

/// How many rows of the change feed a server keeps (`GET /v1/changes`): a cursor older
/// than that is answered `410 cursor-expired` and the client reads everything again.
pub const FEED_KEEP: i64 = 1_000_000;
/// The administrator created on an empty database.
pub const FIRST_ADMIN: &str = "admin@localhost";
/// Its contact e-mail: an address as `model::shape` takes it (a dot in the domain), so
/// that an export of a new live system validates.
pub const FIRST_ADMIN_EMAIL: &str = "admin@localhost.localdomain";

/// How to run the server (the `roster serve` flags).
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// `host:port`; port 0 picks a free one.
    pub listen: String,
    /// `sqlite://PATH` or `postgres://…`.
    pub database: String,
    /// Where to write the first administrator token of an empty database (default:
    /// `<db dir>/admin.token` for SQLite, `.roster/admin.token` for PostgreSQL).
    pub admin_token_file: Option<PathBuf>,
    /// Licensed seats of a new account.
    pub seats: u32,
    /// Requests per second per token (0: unlimited).
    pub rate_limit: u32,
    /// Fraction of requests answered with an injected 429/503 (testing aid).
    pub inject_faults: f64,
    pub fault_seed: u64,
    /// Serve HTTPS with this certificate chain and key (PEM files).
    pub tls: Option<TlsFiles>,
}

/// The PEM files of `serve --tls-cert --tls-key`.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".into(),
            database: "sqlite://.roster/live.db".into(),
            admin_token_file: None,
            seats: 1000,
            rate_limit: 0,
            inject_faults: 0.0,
            fault_seed: 1,
            tls: None,
        }
    }
}

/// A listening server. Dropping it without [`RunningServer::shutdown`] leaves it
/// running until the runtime ends.
pub struct RunningServer {
    pub addr: SocketAddr,
    /// The first administrator's token, when this start created the account.
    pub admin_token: Option<String>,
    /// Where that token was written (mode 0600).
    pub admin_token_file: Option<PathBuf>,
    /// Whether it speaks HTTPS.
    pub tls: bool,
    db: Db,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningServer {
    /// `http://addr` (`https://` with TLS), the base URL (the API is under `/v1`).
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Stops accepting, lets in-flight requests finish, closes the database.
    pub async fn shutdown(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let _ = (&mut self.task).await;
        self.db.close().await;
    }
}

#[derive(Clone)]
pub(crate) struct AppState {
    pub db: Db,
    rate_limit: u32,
    rate: Arc<Mutex<HashMap<String, (u64, u32)>>>,
    faults: f64,
    fault_rng: Arc<Mutex<StdRng>>,
    pub metrics: Arc<metrics::Metrics>,
}

/// Starts serving; returns once listening.
pub async fn start(cfg: ServerConfig) -> anyhow::Result<RunningServer> {
    if !(0.0..=1.0).contains(&cfg.inject_faults) {
        anyhow::bail!(
            "--inject-faults must be between 0.0 and 1.0, not {}",
            cfg.inject_faults
        );
    }
    // Before touching the database: a wrong certificate path fails at once.
    let tls = cfg.tls.as_ref().map(load_tls).transpose()?;
    let db = Db::connect(&cfg.database).await?;
    let admin_token = bootstrap(&db, cfg.seats).await?;
    let mut admin_token_file = None;
    if let Some(token) = &admin_token {
        let path = cfg.admin_token_file.clone().unwrap_or_else(|| {
            store::sqlite_dir(&cfg.database)
                .unwrap_or_else(|| PathBuf::from(".roster"))
                .join("admin.token")
        });
        write_secret_file(&path, token)?;
        admin_token_file = Some(path);
    }
    let listener = tokio::net::TcpListener::bind(&cfg.listen)
        .await
        .with_context(|| format!("cannot listen on {}; is the address free?", cfg.listen))?;
    let addr = listener.local_addr()?;
    let state = AppState {
        db: db.clone(),
        rate_limit: cfg.rate_limit,
        rate: Arc::new(Mutex::new(HashMap::new())),
        faults: cfg.inject_faults,
        fault_rng: Arc::new(Mutex::new(StdRng::seed_from_u64(cfg.fault_seed))),
        metrics: Arc::new(metrics::Metrics::new()),
    };
    let app = router(state);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let purge_db = db.clone();
    let task = tokio::spawn(async move {
        // Expired idempotency records are purged every hour, the first time an hour after
        // start (lookups ignore expired records anyway, so a command's short-lived
        // embedded server never writes for this).
        // The change feed keeps its newest FEED_KEEP rows: pruned at start (a command's
        // embedded server lives only seconds) and then every hour.
        let purge = async move {
            let hour = std::time::Duration::from_secs(3600);
            let mut every = tokio::time::interval_at(tokio::time::Instant::now() + hour, hour);
            let prune = |db: Db| async move {
                match db.prune_changes(FEED_KEEP).await {
                    Ok(n) => tracing::debug!(pruned = n, "old change feed rows"),
                    Err(e) => tracing::warn!("cannot prune the change feed: {e}"),
                }
            };
            prune(purge_db.clone()).await;
            loop {
                every.tick().await;
                let cutoff = engine::idempotency_cutoff(time::OffsetDateTime::now_utc());
                match purge_db.purge_idempotency(&cutoff).await {
                    Ok(n) => tracing::debug!(purged = n, "expired idempotency records"),
                    Err(e) => tracing::warn!("cannot purge expired idempotency records: {e}"),
                }
                prune(purge_db.clone()).await;
            }
        };
        let make = app.into_make_service_with_connect_info::<SocketAddr>();
        let serve: std::pin::Pin<Box<dyn Future<Output = std::io::Result<()>> + Send>> = match tls {
            None => Box::pin(
                axum::serve(listener, make)
                    .with_graceful_shutdown(async move {
                        let _ = stopped.await;
                    })
                    .into_future(),
            ),
            Some(tls) => {
                let handle = axum_server::Handle::new();
                let on_stop = handle.clone();
                tokio::spawn(async move {
                    let _ = stopped.await;
                    on_stop.graceful_shutdown(Some(std::time::Duration::from_secs(30)));
                });
                let server = axum_server::from_tcp_rustls(
                    listener.into_std()?,
                    axum_server::tls_rustls::RustlsConfig::from_config(tls),
                )?
                .handle(handle);
                Box::pin(server.serve(make))
            }
        };
        tokio::select! {
            served = serve => served,
            never = purge => never,
        }
    });
    let tls = cfg.tls.is_some();
    tracing::info!(
        "listening on {}://{addr}",
        if tls { "https" } else { "http" }
    );
    Ok(RunningServer {
        addr,
        admin_token,
        admin_token_file,
        tls,
        db,
        stop: Some(stop),
        task,
    })
}

/// The CLI's in-process live system: 127.0.0.1:0 over `state_dir/live.db`, with the
/// administrator token kept in `state_dir/admin.token` (0600) so later runs reuse it.
pub async fn embedded(state_dir: &Path) -> anyhow::Result<(RunningServer, String)> {
    let token_file = state_dir.join("admin.token");
    let cfg = ServerConfig {
        listen: "127.0.0.1:0".into(),
        database: format!("sqlite://{}", state_dir.join("live.db").display()),
        admin_token_file: Some(token_file.clone()),
        ..ServerConfig::default()
    };
    let server = start(cfg.clone()).await?;
    if let Some(t) = &server.admin_token {
        let t = t.clone();
        return Ok((server, t));
    }
    if let Ok(t) = std::fs::read_to_string(&token_file) {
        let t = t.trim().to_string();
        if !t.is_empty() {
            if let Some((role, _)) = server.db.token(&auth::hash_token(&t)).await? {
                if role == "administrator" {
                    return Ok((server, t));
                }
            }
        }
    }
    // The token file is gone or stale: issue a new one for the first administrator.
    let login = first_admin(&server.db).await?;
    let t = create_admin_token(&cfg.database, &login).await?;
    write_secret_file(&token_file, &t)?;
    Ok((server, t))
}

async fn first_admin(db: &Db) -> anyhow::Result<String> {
    let rows = db.list(Kind::Administrator, "", 1, None).await?;
    rows.into_iter()
        .next()
        .map(|r| r.key)
        .context("the database has no administrator; it cannot issue an administrator token")
}

/// Creates a `write` token without expiry acting as manager `login` (lower-cased) and
/// returns it (shown once, stored hashed).
pub async fn create_token(database: &str, manager_login: &str) -> anyhow::Result<String> {
    let spec = auth::TokenSpec::unlimited("");
    Ok(issue_token(database, "manager", manager_login, &spec)
        .await?
        .0)
}

/// An online, consistent copy of the SQLite database at `database` into the new file
/// `out` (`VACUUM INTO`: one snapshot, taken while a server keeps serving it). A
/// PostgreSQL database is backed up with its own tools (`pg_dump`): README "Backups".
pub async fn backup(database: &str, out: &Path) -> anyhow::Result<()> {
    let Some(path) = store::sqlite_path(database) else {
        anyhow::bail!(
            "`roster serve backup` copies SQLite databases; back up PostgreSQL ({}) with \
             `pg_dump --format=custom` and restore with `pg_restore` (README \"Backups\")",
            store::redact_url(database)
        );
    };
    anyhow::ensure!(
        path.is_file(),
        "no SQLite database at {}; give the server's --database",
        path.display()
    );
    anyhow::ensure!(
        !out.exists(),
        "{} exists; a backup never overwrites a file",
        out.display()
    );
    let db = Db::connect(database).await?;
    let result = db.vacuum_into(out).await;
    db.close().await;
    result.with_context(|| format!("cannot write the backup {}", out.display()))?;
    // The copy's change feed gets an epoch of its own: a live system restored from it
    // answers the cursors of the original with 410, so no client's snapshot takes the
    // restored history for a continuation of the one it followed.
    let copy = Db::connect(&format!("sqlite://{}", out.display())).await?;
    let result = copy.new_feed_epoch().await;
    copy.close().await;
    result.with_context(|| format!("cannot renew the change feed's epoch in {}", out.display()))
}

/// Creates a `write` token without expiry acting as administrator `login`.
pub async fn create_admin_token(database: &str, login: &str) -> anyhow::Result<String> {
    let spec = auth::TokenSpec::unlimited("");
    Ok(issue_token(database, "administrator", login, &spec)
        .await?
        .0)
}

/// Creates a token as `spec` says for `role` (`manager` or `administrator`) `login`
/// (lower-cased) in `database`; returns it (shown once, stored hashed) and its row.
pub async fn issue_token(
    database: &str,
    role: &str,
    login: &str,
    spec: &auth::TokenSpec,
) -> anyhow::Result<(String, store::TokenRow)> {
    let kind = if role == "administrator" {
        Kind::Administrator
    } else {
        Kind::Manager
    };
    let db = Db::connect(database).await?;
    let result = async {
        let login = login.to_lowercase();
        let mut tx = db.begin().await?;
        if !tx.exists(kind, &login).await? {
            anyhow::bail!(
                "no {kind} `{login}` in {}; create it first",
                store::redact_url(database)
            );
        }
        let made =
            auth::issue_token(&mut tx, "roster token create", None, role, &login, spec).await?;
        tx.commit().await?;
        Ok(made)
    }
    .await;
    db.close().await;
    result
}

/// The tokens in `database` (never their values).
pub async fn list_tokens(database: &str) -> anyhow::Result<Vec<store::TokenRow>> {
    let db = Db::connect(database).await?;
    let result = db.tokens(None).await;
    db.close().await;
    Ok(result?)
}

/// Revokes the token with public id `id` in `database` (false: no such token).
pub async fn revoke_token(database: &str, id: &str) -> anyhow::Result<bool> {
    let db = Db::connect(database).await?;
    let result = async {
        let mut tx = db.begin().await?;
        let Some(row) = tx.token_by_id(id).await? else {
            return Ok(false);
        };
        auth::revoke(&mut tx, &row, "roster token revoke", None).await?;
        tx.commit().await?;
        Ok(true)
    }
    .await;
    db.close().await;
    result
}

/// On an empty database: the account, the first administrator and its token.
async fn bootstrap(db: &Db, seats: u32) -> anyhow::Result<Option<String>> {
    let mut tx = db.begin().await?;
    if !tx.init_account("default", seats as i64).await? {
        tx.commit().await?;
        return Ok(None);
    }
    let admin = Administrator::new(FIRST_ADMIN, FIRST_ADMIN_EMAIL, "Administrator");
    let body = serde_json::to_value(&admin)?;
    let now = store::now_rfc3339();
    tx.insert(
        Kind::Administrator,
        FIRST_ADMIN,
        &body.to_string(),
        &store::Columns::default(),
    )
    .await?;
    let token = auth::new_token();
    let hash = auth::hash_token(&token);
    let row = store::TokenRow {
        id: auth::token_id(&hash),
        name: "first administrator".into(),
        role: "administrator".into(),
        login: FIRST_ADMIN.into(),
        permission: auth::Permission::Write.as_str().into(),
        created_at: now.clone(),
        expires_at: None,
        last_used_at: None,
    };
    tx.insert_token(&hash, &row).await?;
    let after = engine::with_version(body, 1).to_string();
    tx.audit(
        &now,
        "roster serve",
        None,
        "create",
        "administrator",
        FIRST_ADMIN,
        None,
        Some(&after),
    )
    .await?;
    tx.commit().await?;
    Ok(Some(token))
}

/// Writes a secret to a file readable by its owner only (0600).
pub fn write_secret_file(path: &Path, secret: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("cannot write the token file {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    use std::io::Write;
    writeln!(f, "{secret}")?;
    Ok(())
}

/// The rustls configuration of `--tls-cert` / `--tls-key` (ring; HTTP/1.1 and h2).
fn load_tls(files: &TlsFiles) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot read the certificate {} (--tls-cert): {e}",
                files.cert.display()
            )
        })?;
    anyhow::ensure!(
        !certs.is_empty(),
        "{} (--tls-cert) holds no PEM certificate",
        files.cert.display()
    );
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| {
        anyhow::anyhow!(
            "cannot read the private key {} (--tls-key): {e}",
            files.key.display()
        )
    })?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("cannot set up tls")?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .with_context(|| {
        format!(
            "the key {} does not fit the certificate {}",
            files.key.display(),
            files.cert.display()
        )
    })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn router(state: AppState) -> Router {
    routes::routes()
        .route("/metrics", axum::routing::get(metrics::scrape))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            rate_limit,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            inject_faults,
        ))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            |_: Box<dyn std::any::Any + Send>| {
                Problem::internal("the server hit a bug while handling this request; it was logged")
                    .into_response()
            },
        ))
        // Outermost: a panic's 500 is counted and logged too. The access line names the
        // route template, never the raw path, headers or bodies (tokens, passwords).
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::observe,
        ))
        .with_state(state)
}

/// Fixed one-second windows per token (or per anonymous caller).
async fn rate_limit(State(st): State<AppState>, req: Request, next: Next) -> Response {
    if st.rate_limit == 0 {
        return next.run(req).await;
    }
    let who = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .map(|h| auth::hash_token(&String::from_utf8_lossy(h.as_bytes())))
        .unwrap_or_else(|| "anonymous".into());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let over = {
        let mut map = st.rate.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 10_000 {
            map.retain(|_, (sec, _)| *sec == now);
        }
        let e = map.entry(who).or_insert((now, 0));
        if e.0 != now {
            *e = (now, 0);
        }
        e.1 += 1;
        e.1 > st.rate_limit
    };
    if over {
        st.metrics.rate_limited.inc();
        return Problem::rate_limited(1).into_response();
    }
    next.run(req).await
}

/// Testing aid: a deterministic share of requests fails with 429 or 503, half before
/// handling and half after (the write is done, the answer lost).
async fn inject_faults(State(st): State<AppState>, req: Request, next: Next) -> Response {
    if st.faults <= 0.0 || !req.uri().path().starts_with("/v1/") {
        return next.run(req).await;
    }
    let (hit, variant) = {
        let mut rng = st.fault_rng.lock().unwrap_or_else(|e| e.into_inner());
        let hit = rng.random::<f64>() < st.faults;
        (hit, rng.random_range(0..4u8))
    };
    if !hit {
        return next.run(req).await;
    }
    let fault = |v: u8| match v % 2 {
        0 => {
            let mut p = Problem::rate_limited(0);
            p.detail = "injected fault: too many requests; retry".into();
            p.into_response()
        }
        _ => Problem::unavailable("injected fault: temporarily unavailable; retry", 1)
            .into_response(),
    };
    if variant < 2 {
        return fault(variant);
    }
    let _lost = next.run(req).await;
    fault(variant)
}
