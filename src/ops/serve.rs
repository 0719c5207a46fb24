//! `roster serve` and `roster token create`: glue from the CLI flags to [`crate::server`].
//!
//! `serve` builds a tokio runtime, starts the server, prints where it listens and where
//! the first administrator token was written (never the token), and serves until
//! SIGINT/SIGTERM (listened for before the server starts, so a signal right after the
//! "listening on" line still shuts down gracefully), then shuts down gracefully.
//! `token create` prints a new token once.

use anyhow::Context;

use crate::cli::{ServeArgs, TokenCommand};
use crate::server::{self, ServerConfig};

use super::Exit;

/// The database when neither `--database` nor ROSTER_DATABASE is given.
pub const DEFAULT_DATABASE: &str = "sqlite://.roster/live.db";

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

pub fn run(args: ServeArgs) -> anyhow::Result<Exit> {
    let cfg = ServerConfig {
        listen: args.listen,
        database: args.database.unwrap_or_else(|| DEFAULT_DATABASE.into()),
        admin_token_file: args.admin_token_file,
        seats: args.seats,
        rate_limit: args.rate_limit,
        inject_faults: args.inject_faults,
        fault_seed: args.fault_seed,
    };
    runtime()?.block_on(async move {
        // Listen for SIGINT/SIGTERM before anything else: once "listening on" is printed
        // a signal must always mean a graceful shutdown (exit 0), never the default
        // action (killed by the signal), however late this task gets scheduled.
        let signals = Signals::install()?;
        let srv = server::start(cfg).await?;
        anstream::eprintln!("roster serve: listening on {}", srv.url());
        if let Some(path) = &srv.admin_token_file {
            anstream::eprintln!(
                "roster serve: new account; the administrator token was written to {} (mode 0600)",
                path.display()
            );
        }
        signals.recv().await;
        anstream::eprintln!("roster serve: shutting down");
        srv.shutdown().await;
        Ok(Exit::Success)
    })
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

pub fn token(cmd: TokenCommand) -> anyhow::Result<Exit> {
    match cmd {
        TokenCommand::Create(a) => {
            let database = a.database.unwrap_or_else(|| DEFAULT_DATABASE.into());
            let token = runtime()?.block_on(async {
                match (&a.manager, &a.administrator) {
                    (Some(m), _) => server::create_token(&database, m).await,
                    (None, Some(ad)) => server::create_admin_token(&database, ad).await,
                    (None, None) => anyhow::bail!("give --manager LOGIN or --administrator LOGIN"),
                }
            })?;
            // The one place a token is ever shown.
            println!("{token}");
            Ok(Exit::Success)
        }
    }
}
