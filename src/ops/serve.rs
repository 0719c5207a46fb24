//! `roster serve` and `roster token create`: glue from a [`ServerConfig`] / [`TokenFor`]
//! (mapped from the flags by `cli`) to [`crate::server`].
//!
//! `serve` builds a tokio runtime, starts the server, prints where it listens and where
//! the first administrator token was written (never the token), and serves until
//! SIGINT/SIGTERM (listened for before the server starts, so a signal right after the
//! "listening on" line still shuts down gracefully), then shuts down gracefully.
//! `token create` prints a new token once. With `--log-format json` those lines are log
//! events too (one JSON object per line, nothing else on stderr).

use anyhow::Context;

use crate::server::{self, ServerConfig};

use super::Exit;
use super::term::runtime;

/// The database when neither `--database` nor ROSTER_DATABASE is given.
pub const DEFAULT_DATABASE: &str = "sqlite://.roster/live.db";

/// Whom `token create` makes a token for, and in which database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenFor {
    Manager {
        login: String,
        database: String,
    },
    Administrator {
        login: String,
        database: String,
    },
    /// Neither was given (clap requires one; kept for a caller that is not clap).
    Nobody,
}

/// `cfg.database` is already defaulted (to [`DEFAULT_DATABASE`]) by the caller.
pub fn run(cfg: ServerConfig) -> anyhow::Result<Exit> {
    runtime()?.block_on(async move {
        // Listen for SIGINT/SIGTERM before anything else: once "listening on" is printed
        // a signal must always mean a graceful shutdown (exit 0), never the default
        // action (killed by the signal), however late this task gets scheduled.
        let signals = Signals::install()?;
        let srv = server::start(cfg).await?;
        say(&format!("listening on {}", srv.url()));
        if let Some(path) = &srv.admin_token_file {
            say(&format!(
                "new account; the administrator token was written to {} (mode 0600)",
                path.display()
            ));
        }
        signals.recv().await;
        say("shutting down");
        srv.shutdown().await;
        Ok(Exit::Success)
    })
}

/// One line of `roster serve` on stderr: `roster serve: …`, or a log event when the
/// logs are JSON.
fn say(line: &str) {
    match super::serve_log_format() {
        super::LogFormat::Json => tracing::info!("{line}"),
        super::LogFormat::Text => anstream::eprintln!("roster serve: {line}"),
    }
}

/// The shutdown signals, registered eagerly (tokio's `ctrl_c()` and a `signal()` call
/// inside a not-yet-polled future would register only when first polled).
struct Signals {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(windows)]
    ctrl_c: tokio::signal::windows::CtrlC,
}

impl Signals {
    fn install() -> anyhow::Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Signals {
                int: signal(SignalKind::interrupt())
                    .context("cannot listen for SIGINT (needed for a graceful shutdown)")?,
                term: signal(SignalKind::terminate())
                    .context("cannot listen for SIGTERM (needed for a graceful shutdown)")?,
            })
        }
        #[cfg(windows)]
        {
            Ok(Signals {
                ctrl_c: tokio::signal::windows::ctrl_c()
                    .context("cannot listen for ctrl-c (needed for a graceful shutdown)")?,
            })
        }
        #[cfg(not(any(unix, windows)))]
        {
            Ok(Signals {})
        }
    }

    /// Waits for the first of SIGINT or SIGTERM (ctrl-c on Windows).
    async fn recv(mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.int.recv() => {},
            _ = self.term.recv() => {},
        }
        #[cfg(windows)]
        {
            self.ctrl_c.recv().await;
        }
        #[cfg(not(any(unix, windows)))]
        {
            let _ = &mut self;
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

pub fn token(who: TokenFor) -> anyhow::Result<Exit> {
    let token = runtime()?.block_on(async {
        match &who {
            TokenFor::Manager { login, database } => server::create_token(database, login).await,
            TokenFor::Administrator { login, database } => {
                server::create_admin_token(database, login).await
            }
            TokenFor::Nobody => anyhow::bail!("give --manager LOGIN or --administrator LOGIN"),
        }
    })?;
    // The one place a token is ever shown.
    println!("{token}");
    Ok(Exit::Success)
}
