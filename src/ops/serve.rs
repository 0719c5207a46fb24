//! `roster serve` and `roster token create`: glue from a [`ServerConfig`] / [`TokenFor`]
//! (mapped from the flags by `cli`) to [`crate::server`].
//!
//! `serve` builds a tokio runtime, starts the server, prints where it listens and where
//! the first administrator token was written (never the token), and serves until
//! SIGINT/SIGTERM (listened for before the server starts, so a signal right after the
//! "listening on" line still shuts down gracefully), then shuts down gracefully.
//! `token create` prints a new token once (its id, permission and expiry go to
//! stderr); `token list` shows tokens without their values; `token revoke` deletes
//! one by id. All three work on the database directly (`--database`); over the API the
//! same is `POST /v1/tokens`, `GET /v1/tokens` and `DELETE /v1/tokens/{id}`.
//! `serve backup` copies a SQLite database while it is served.
//! With `--log-format json` its lines are log events too (one JSON object per line,
//! nothing else on stderr).

use anyhow::Context;

use crate::server::{self, ServerConfig, auth};

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

/// What `roster token` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenAction {
    Create(TokenCreate),
    List { database: String, json: bool },
    Revoke { id: String, database: String },
}

/// `roster token create`'s options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenCreate {
    pub who: TokenFor,
    pub name: String,
    /// A `read` token (otherwise `write`).
    pub read_only: bool,
    /// A humantime duration (default [`crate::server::auth::DEFAULT_EXPIRY`]).
    pub expires_in: Option<String>,
    pub no_expiry: bool,
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

/// `roster serve backup`: which database, and the new file to copy it into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backup {
    pub database: String,
    pub out: std::path::PathBuf,
}

pub fn backup(b: Backup) -> anyhow::Result<Exit> {
    runtime()?.block_on(server::backup(&b.database, &b.out))?;
    anstream::eprintln!(
        "roster serve: backed up {} to {}",
        crate::server::store::redact_url(&b.database),
        b.out.display()
    );
    Ok(Exit::Success)
}

pub fn token(action: TokenAction) -> anyhow::Result<Exit> {
    match action {
        TokenAction::Create(c) => create_token(c),
        TokenAction::List { database, json } => {
            let rows = runtime()?.block_on(server::list_tokens(&database))?;
            if json {
                let items: Vec<_> = rows.iter().map(auth::token_view).collect();
                println!("{}", serde_json::to_string_pretty(&items)?);
            } else {
                print!("{}", token_table(&rows));
            }
            Ok(Exit::Success)
        }
        TokenAction::Revoke { id, database } => {
            if runtime()?.block_on(server::revoke_token(&database, &id))? {
                eprintln!("roster token: revoked token {id}");
                Ok(Exit::Success)
            } else {
                anyhow::bail!("no token `{id}`; `roster token list` shows the ids")
            }
        }
    }
}

fn create_token(c: TokenCreate) -> anyhow::Result<Exit> {
    let (role, login, database) = match &c.who {
        TokenFor::Manager { login, database } => ("manager", login, database),
        TokenFor::Administrator { login, database } => ("administrator", login, database),
        TokenFor::Nobody => anyhow::bail!("give --manager LOGIN or --administrator LOGIN"),
    };
    let spec = auth::TokenSpec {
        name: c.name.trim().to_string(),
        permission: if c.read_only {
            auth::Permission::Read
        } else {
            auth::Permission::Write
        },
        expires_at: auth::TokenSpec::expiry(c.expires_in.as_deref(), c.no_expiry)
            .map_err(|e| anyhow::anyhow!("--expires-in: {e}"))?,
    };
    let (token, row) = runtime()?.block_on(server::issue_token(database, role, login, &spec))?;
    // The one place a token is ever shown.
    println!("{token}");
    eprintln!(
        "roster token: created {} token {} for {role} {} ({})",
        row.permission,
        row.id,
        row.login,
        match &row.expires_at {
            Some(e) => format!("expires {e}"),
            None => "never expires".into(),
        }
    );
    Ok(Exit::Success)
}

/// `token list` as text: one line per token, aligned; never a value.
fn token_table(rows: &[crate::server::store::TokenRow]) -> String {
    if rows.is_empty() {
        return "no tokens\n".into();
    }
    let dash = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
    let mut table: Vec<[String; 7]> = vec![[
        "ID".into(),
        "NAME".into(),
        "PRINCIPAL".into(),
        "PERMISSION".into(),
        "CREATED".into(),
        "EXPIRES".into(),
        "LAST USED".into(),
    ]];
    for r in rows {
        table.push([
            r.id.clone(),
            if r.name.is_empty() {
                "-".into()
            } else {
                r.name.clone()
            },
            format!("{}:{}", r.role, r.login),
            r.permission.clone(),
            r.created_at.clone(),
            dash(&r.expires_at),
            dash(&r.last_used_at),
        ]);
    }
    let mut width = [0usize; 7];
    for row in &table {
        for (w, c) in width.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for row in &table {
        let cells: Vec<String> = row
            .iter()
            .zip(width)
            .map(|(c, w)| format!("{c:w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}
