//! `roster apply`: make the live system match the declaration, or run a saved plan.
//!
//! `roster apply PATH…` makes a fresh plan (as `roster plan`), shows it, and asks for
//! `yes` on a terminal unless `--auto-approve`; without a terminal it refuses and names
//! `--auto-approve`. `roster apply --plan FILE` re-reads the live system and refuses a
//! stale plan, naming every object that changed since the plan was made. The executor
//! (`crate::apply`) then runs the changes and the report goes to stdout; exit 1 when any
//! change failed or was skipped.
//!
//! Testing aid (hidden, for the end-to-end tests): `ROSTER_TEST_PAUSE_BEFORE_WRITES_MS`
//! sleeps that long after the plan is final (and checked not stale) and before the first
//! write, announcing the pause on stderr, so that a test can change the live system in
//! between deterministically.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::apply::{ApplyOptions, Progress, SecretResolver};
use crate::cli::{ApplyArgs, DiagnosticFormat, PlanFormat};
use crate::plan::{PLAN_FORMAT_VERSION, Plan};

use super::Exit;
use super::plan::{make_plan, render, stdout_color};

/// The environment variable of the testing pause.
pub const PAUSE_ENV: &str = "ROSTER_TEST_PAUSE_BEFORE_WRITES_MS";

/// Reads a plan saved by `roster plan --out`.
pub fn load_plan(path: &Path) -> anyhow::Result<Plan> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the saved plan {}", path.display()))?;
    let plan: Plan = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a plan saved by `roster plan --out`",
            path.display()
        )
    })?;
    anyhow::ensure!(
        plan.format_version == PLAN_FORMAT_VERSION,
        "{} has plan format version {}, this roster reads version {PLAN_FORMAT_VERSION}; make the plan again with this roster",
        path.display(),
        plan.format_version
    );
    Ok(plan)
}

fn resolver() -> SecretResolver {
    Arc::new(|s| crate::config::secrets::resolve(s).map_err(|e| e.to_string()))
}

/// Asks for `yes` on the terminal.
fn confirm(changes: usize) -> anyhow::Result<bool> {
    let mut err = std::io::stderr();
    write!(
        err,
        "\napply these {changes} change{}? only `yes` is accepted: ",
        if changes == 1 { "" } else { "s" }
    )?;
    err.flush()?;
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the confirmation")?;
    Ok(line.trim() == "yes")
}

async fn pause_for_tests() {
    if let Some(ms) = std::env::var(PAUSE_ENV)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        eprintln!("pausing {ms} ms before the first write ({PAUSE_ENV})");
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

pub fn run(args: ApplyArgs) -> anyhow::Result<Exit> {
    // Refuse before any work when nobody can confirm.
    if args.plan.is_none() && !args.auto_approve && !std::io::stdin().is_terminal() {
        anyhow::bail!(
            "refusing to apply without confirmation: standard input is not a terminal; \
             review the plan (`roster plan`) and pass --auto-approve, or save it with \
             `roster plan --out FILE` and run `roster apply --plan FILE`"
        );
    }
    let saved = args.plan.as_deref().map(load_plan).transpose()?;
    let rt = super::plan::runtime()?;
    rt.block_on(async {
        let conn = crate::provider::connect(&args.endpoint).await?;
        let result = apply(&args, saved, &conn.provider).await;
        conn.close().await;
        result
    })
}

async fn apply(
    args: &ApplyArgs,
    saved: Option<Plan>,
    provider: &crate::provider::HttpProvider,
) -> anyhow::Result<Exit> {
    let color = stdout_color();
    let plan = match saved {
        Some(plan) => {
            let observed = provider.read().await.with_context(|| {
                format!("cannot read the live system at {}", provider.base_url())
            })?;
            let stale = crate::plan::stale(&plan, &observed);
            if !stale.is_empty() {
                let mut msg = format!(
                    "the saved plan is stale: {} object{} changed on the live system since it was made:",
                    stale.len(),
                    if stale.len() == 1 { "" } else { "s" }
                );
                for s in &stale {
                    msg.push_str("\n  - ");
                    msg.push_str(s);
                }
                msg.push_str(
                    "\nnothing was changed; make a new plan with `roster plan --out FILE` and apply that",
                );
                anyhow::bail!(msg);
            }
            if plan.is_empty() {
                anstream::println!("the saved plan has no changes; nothing to do.");
                return Ok(Exit::Success);
            }
            plan
        }
        None => {
            let planned = match make_plan(&args.paths, provider, &args.safety).await? {
                Ok(p) => p,
                Err(exit) => return Ok(exit),
            };
            let plan = planned.plan;
            // With `--format json` stdout carries the report alone (machine-readable);
            // the plan a reviewer reads goes to stderr.
            if args.format == DiagnosticFormat::Json {
                anstream::eprint!(
                    "{}",
                    render(&plan, PlanFormat::Text, super::plan::stderr_color())
                );
            } else {
                anstream::print!("{}", render(&plan, PlanFormat::Text, color));
            }
            if plan.is_empty() {
                return Ok(Exit::Success);
            }
            if !args.auto_approve {
                let n = plan.changes.len();
                let yes = tokio::task::spawn_blocking(move || confirm(n))
                    .await
                    .context("the confirmation prompt stopped unexpectedly")??;
                if !yes {
                    anstream::eprintln!("apply cancelled; nothing was changed");
                    return Ok(Exit::Error);
                }
            }
            plan
        }
    };
    pause_for_tests().await;
    let opts = ApplyOptions {
        parallelism: usize::from(args.parallelism),
        ..ApplyOptions::new(resolver())
    };
    let progress = if args.format == DiagnosticFormat::Json {
        Progress::Quiet
    } else {
        Progress::auto()
    };
    let report = crate::apply::execute(&plan, provider, &opts, progress).await;
    match args.format {
        DiagnosticFormat::Json => print!("{}", report.json()),
        DiagnosticFormat::Text => anstream::print!("{}", report.text(color)),
    }
    Ok(if report.is_success() {
        Exit::Success
    } else {
        Exit::Error
    })
}
