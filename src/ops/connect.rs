//! Where the live system is, for `plan`, `apply` and `export`: an endpoint with a token
//! ([`Endpoint`], from `--endpoint` / `ROSTER_ENDPOINT` and `--token-file` /
//! `ROSTER_TOKEN`), or the embedded default: the reference server started in-process
//! on loopback over `<state-dir>/live.db`, talked to over HTTP like any endpoint.
//!
//! A token is never sent over plain `http://` to anything but loopback (127.0.0.0/8,
//! `::1`, `localhost`) unless `--allow-insecure-http` / `ROSTER_ALLOW_INSECURE_HTTP` says
//! so: [`check_transport`] refuses before any connection is made ([`InsecureHttp`],
//! exit 64, the command line must change).
//!
//! Here in `ops`, not in `provider`, because starting the embedded server puts `server`
//! below the command, not below the HTTP client: the provider only gets a URL and a
//! token. The [`Connection`] goes back to the command, which closes it when done.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::provider::{ClientOptions, HttpProvider, Snapshots};
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
    /// A PEM bundle of certificate authorities to trust (self-signed deployments).
    pub ca_cert: Option<PathBuf>,
    /// Send the token over plain HTTP to a host that is not loopback anyway.
    pub allow_insecure_http: bool,
    /// Keep the live state under `<state-dir>/cache/live` and bring it up to date from
    /// the live change feed (`plan`, `apply`; off with `--no-cache`).
    pub snapshots: bool,
}

/// Refusal to send a token over plain HTTP to a host that is not loopback.
#[derive(Debug, thiserror::Error)]
#[error(
    "refusing to send the api token over plain http to {host}: anyone on the network \
     between could read it and act as its principal; use an https:// endpoint, or pass \
     --allow-insecure-http (ROSTER_ALLOW_INSECURE_HTTP=1) if this network is trusted; \
     nothing was sent"
)]
pub struct InsecureHttp {
    pub host: String,
}

/// Whether `url` may carry `token`: https always, plain http only to loopback or when
/// allowed. A url that does not parse is left to the provider's own check.
pub fn check_transport(
    url: &str,
    has_token: bool,
    allow_insecure: bool,
) -> Result<(), InsecureHttp> {
    let Ok(parsed) = url::Url::parse(url.trim()) else {
        return Ok(());
    };
    if parsed.scheme() != "http" || !has_token || allow_insecure {
        return Ok(());
    }
    let loopback = match parsed.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    if loopback {
        Ok(())
    } else {
        Err(InsecureHttp {
            host: parsed.host_str().unwrap_or("").to_string(),
        })
    }
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
    let options = ClientOptions {
        ca_cert: endpoint.ca_cert.clone(),
    };
    let mut conn = match endpoint.url.as_deref().filter(|e| !e.trim().is_empty()) {
        Some(url) => Connection {
            provider: {
                check_transport(url, token.is_some(), endpoint.allow_insecure_http)?;
                HttpProvider::with_options(url, token, &options)?
            },
            name: url.trim().to_string(),
            embedded: None,
        },
        None => connect_embedded(&endpoint.state_dir, token).await?,
    };
    if endpoint.snapshots {
        conn.provider = conn.provider.with_snapshots(Snapshots {
            dir: endpoint.state_dir.join(crate::provider::snapshot_subdir()),
            endpoint: conn.name.clone(),
        });
    }
    Ok(conn)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_goes_over_plain_http_to_loopback_only() {
        for ok in [
            "http://127.0.0.1:8080",
            "http://127.9.9.9",
            "http://[::1]:80/api",
            "http://LOCALHOST:1",
            "https://192.0.2.1",
        ] {
            assert!(check_transport(ok, true, false).is_ok(), "{ok}");
        }
        let e = check_transport("http://192.0.2.1/api", true, false).unwrap_err();
        assert_eq!(e.host, "192.0.2.1");
        assert!(e.to_string().contains("--allow-insecure-http"), "{e}");
        assert!(check_transport("http://console.example", true, false).is_err());
        assert!(check_transport("http://localhost.evil.example", true, false).is_err());
        assert!(
            check_transport("http://192.0.2.1", true, true).is_ok(),
            "allowed"
        );
        assert!(
            check_transport("http://192.0.2.1", false, false).is_ok(),
            "no token"
        );
    }
}
