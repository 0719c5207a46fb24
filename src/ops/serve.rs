//! `roster serve` and `roster token create`: glue from the CLI flags to [`crate::server`].
//!
//! `serve` builds a tokio runtime, starts the server, prints where it listens and where
//! the first administrator token was written (never the token), and serves until
//! SIGINT/SIGTERM, then shuts down gracefully. `token create` prints a new token once.

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
        let srv = server::start(cfg).await?;
        anstream::eprintln!("roster serve: listening on {}", srv.url());
        if let Some(path) = &srv.admin_token_file {
            anstream::eprintln!(
                "roster serve: new account; the administrator token was written to {} (mode 0600)",
                path.display()
            );
        }
        shutdown_signal().await;
        anstream::eprintln!("roster serve: shutting down");
        srv.shutdown().await;
        Ok(Exit::Success)
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
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
