//! Where the live system is: `--endpoint` / `ROSTER_ENDPOINT` with `--token-file` /
//! `ROSTER_TOKEN`, or the embedded default (the reference server started in-process on
//! loopback over `<state-dir>/live.db`, talked to over HTTP like any endpoint).

use std::path::Path;

use super::HttpProvider;
use crate::cli::EndpointArgs;

use crate::server;

/// A provider and, for the embedded default, the in-process server it talks to (kept
/// alive as long as the connection; [`Connection::close`] stops it cleanly).
pub struct Connection {
    pub provider: HttpProvider,
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
pub fn token_from(args: &EndpointArgs) -> anyhow::Result<Option<String>> {
    use anyhow::Context;
    if let Some(path) = &args.token_file {
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

/// Connects to `--endpoint` / `ROSTER_ENDPOINT`, or, with neither, starts the embedded
/// reference server on loopback over `<state-dir>/live.db` and connects to it over HTTP.
pub async fn connect(args: &EndpointArgs) -> anyhow::Result<Connection> {
    let token = token_from(args)?;
    match args.endpoint.as_deref().filter(|e| !e.trim().is_empty()) {
        Some(endpoint) => Ok(Connection {
            provider: HttpProvider::new(endpoint, token)?,
            embedded: None,
        }),
        None => connect_embedded(&args.state_dir, token).await,
    }
}

async fn connect_embedded(state_dir: &Path, token: Option<String>) -> anyhow::Result<Connection> {
    use anyhow::Context;
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
    Ok(Connection {
        provider,
        embedded: Some(server),
    })
}
