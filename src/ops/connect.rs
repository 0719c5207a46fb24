//! Where the live system is, for `plan`, `apply` and `export`: an endpoint with a token
//! ([`Endpoint`], from `--endpoint` / `ROSTER_ENDPOINT` and `--token-file` /
//! `ROSTER_TOKEN`), or the embedded default: the reference server started in-process
//! on loopback over `<state-dir>/live.db`, talked to over HTTP like any endpoint.
//!
//! Here in `ops`, not in `provider`, because starting the embedded server puts `server`
//! below the command, not below the HTTP client: the provider only gets a URL and a
//! token. The [`Connection`] goes back to the command, which closes it when done.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::provider::HttpProvider;
use crate::server;

/// Where the live system is (the endpoint options of `plan`, `apply`, `export`).
#[derive(Debug, Clone, Default)]
pub struct Endpoint {
    /// Base URL of the live API; none (or blank) means the embedded default.
    pub url: Option<String>,
    /// File holding the API token (otherwise `ROSTER_TOKEN`).
    pub token_file: Option<PathBuf>,
    /// Directory of the embedded live system's database and token.
    pub state_dir: PathBuf,
}

/// A provider and, for the embedded default, the in-process server it talks to (kept
/// alive as long as the connection; [`Connection::close`] stops it cleanly).
pub struct Connection {
    pub provider: HttpProvider,
    /// What a saved plan records as its endpoint: the URL, or `embedded:<database>`
    /// (the embedded server's port changes from run to run, its database does not).
    pub name: String,
    embedded: Option<server::RunningServer>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("provider", &self.provider)
            .field("embedded", &self.embedded.is_some())
            .finish()
    }
}

impl Connection {
    /// Whether this is the embedded default server (no endpoint configured).
    pub fn is_embedded(&self) -> bool {
        self.embedded.is_some()
    }

    /// Stops the embedded server, if any.
    pub async fn close(self) {
        if let Some(s) = self.embedded {
            s.shutdown().await;
        }
    }
}

/// Reads the token: `--token-file` (trimmed), else `ROSTER_TOKEN`, else none.
pub fn token_from(endpoint: &Endpoint) -> anyhow::Result<Option<String>> {
    if let Some(path) = &endpoint.token_file {
        let t = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the token file {}", path.display()))?;
        let t = t.trim().to_string();
        anyhow::ensure!(
            !t.is_empty(),
            "the token file {} is empty; write the api token into it",
            path.display()
        );
        return Ok(Some(t));
    }
    Ok(std::env::var("ROSTER_TOKEN")
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty()))
}

/// Connects to the endpoint, or, without one, starts the embedded reference server on
/// loopback over `<state-dir>/live.db` and connects to it over HTTP.
pub async fn connect(endpoint: &Endpoint) -> anyhow::Result<Connection> {
    let token = token_from(endpoint)?;
    match endpoint.url.as_deref().filter(|e| !e.trim().is_empty()) {
        Some(url) => Ok(Connection {
            provider: HttpProvider::new(url, token)?,
            name: url.trim().to_string(),
            embedded: None,
        }),
        None => connect_embedded(&endpoint.state_dir, token).await,
    }
}

async fn connect_embedded(state_dir: &Path, token: Option<String>) -> anyhow::Result<Connection> {
    std::fs::create_dir_all(state_dir).with_context(|| {
        format!(
            "cannot create the embedded live system's directory {}",
            state_dir.display()
        )
    })?;
    let (server, admin_token) = server::embedded(state_dir).await.with_context(|| {
        format!(
            "cannot start the embedded live system over {}",
            state_dir.join("live.db").display()
        )
    })?;
    let base = format!("http://{}", server.addr);
    tracing::info!("using the embedded live system at {base}");
    let provider = HttpProvider::new(&base, Some(token.unwrap_or(admin_token)))?;
    let db = state_dir.join("live.db");
    let db = std::fs::canonicalize(&db).unwrap_or(db);
    Ok(Connection {
        provider,
        name: format!("embedded:{}", db.display()),
        embedded: Some(server),
    })
}
