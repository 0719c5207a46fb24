//! `roster apply`: make the live system match the declaration, or run a saved plan.
//!
//! `roster apply PATH…` makes a fresh plan (as `roster plan`), shows it, and asks for
//! `yes` on a terminal unless `--auto-approve`; without a terminal it refuses and names
//! `--auto-approve`. `roster apply --plan FILE` asks the change feed what changed since
//! the plan's cursor (`target.live`): nothing, for the same account and principal, and
//! the plan is current in one request. Otherwise it re-reads the live system and refuses
//! a stale plan, naming every object that changed since the plan was made. The executor
//! (`crate::apply`) then runs the changes and the report goes to stdout; exit 6 when any
//! change failed or was skipped (`--detailed-exitcode`: 2 when changes were applied, 0
//! when there was nothing to change). A plan that safety rules refuse, fresh or saved,
//! is shown with its refusals and nothing is written (exit 4, as for a stale plan). A fresh plan comes from `ops::plan::make_plan`, whose
//! warnings and failures are rendered here as `roster plan` renders them; the terminal
//! helpers (runtime, colours, the `yes` prompt) are `ops::term`'s.
//!
//! `--target`/`--exclude` cut a fresh plan down as for `roster plan` (the same
//! `PlanOptions`, also when the plan is made again under the lease); with `--plan` they
//! are refused by `cli`: a saved partial plan already holds only its own changes.
//!
//! Writes happen under the live system's apply lease (`ops::lease`): taken after the
//! confirmation, waiting up to `--lock-timeout` for another holder (else exit 7,
//! `Exit::Locked`), renewed while writing, released at the end; a plan that another
//! apply made stale meanwhile is made again (with `--auto-approve`) or refused.
//!
//! Testing aid (hidden, for the end-to-end tests): `ROSTER_TEST_PAUSE_BEFORE_WRITES_MS`
//! sleeps that long after the plan is final (and checked not stale, under the lease) and
//! before the first write, announcing the pause on stderr, so that a test can change the
//! live system in between deterministically.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::apply::{ApplyOptions, Progress, SecretResolver};
use crate::config::DiagnosticFormat;
use crate::plan::{PLAN_FORMAT_VERSION, Plan, PlanOptions};
use crate::provider::Provider;

use super::Exit;
use super::connect::{Endpoint, connect};
use super::plan::{Format, live_unreadable, make_plan, refused, render};
use super::term::{confirm, runtime, s, stderr_color, stdout_color};

/// The environment variable of the testing pause.
pub const PAUSE_ENV: &str = "ROSTER_TEST_PAUSE_BEFORE_WRITES_MS";

/// `roster apply`'s options.
#[derive(Debug, Clone)]
pub struct Options {
    /// Files or directories of the declaration (empty with `plan`).
    pub paths: Vec<PathBuf>,
    /// A plan saved with `plan --out`, run instead of a fresh one.
    pub plan: Option<PathBuf>,
    pub endpoint: Endpoint,
    /// `--force`, `--allow-delete` (of a fresh plan).
    pub safety: PlanOptions,
    pub auto_approve: bool,
    /// Independent changes sent at once, at least 1.
    pub parallelism: usize,
    /// Of the report on stdout.
    pub format: DiagnosticFormat,
    /// Exit 2 when changes were applied (0: nothing to change; 6 when some failed).
    pub detailed_exitcode: bool,
    /// Annotations and a SARIF log of the diagnostics (`ops::ci`, run by `ops::run`).
    pub ci: crate::config::CiOutput,
    /// How the live system's apply lease is taken (`ops::lease`).
    pub lock: super::lease::LockOptions,
    /// How the declaration is loaded (the parse cache, `--no-cache`).
    pub load: crate::config::LoadOptions,
}

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

/// Shows the plan about to be applied: on stdout, or on stderr when stdout carries the
/// JSON report (`--format json`), so that stdout stays one JSON document.
fn show_plan(plan: &Plan, format: DiagnosticFormat) {
    match format {
        DiagnosticFormat::Text => {
            anstream::print!("{}", render(plan, Format::Text, stdout_color()))
        }
        DiagnosticFormat::Json => {
            anstream::eprint!("{}", render(plan, Format::Text, stderr_color()))
        }
    }
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

pub fn run(args: Options) -> anyhow::Result<Exit> {
    // Refuse before any work when nobody can confirm.
    if args.plan.is_none() && !args.auto_approve && !std::io::stdin().is_terminal() {
        anyhow::bail!(
            "refusing to apply without confirmation: standard input is not a terminal; \
             review the plan (`roster plan`) and pass --auto-approve, or save it with \
             `roster plan --out FILE` and run `roster apply --plan FILE`"
        );
    }
    let saved = args.plan.as_deref().map(load_plan).transpose()?;
    let rt = runtime()?;
    rt.block_on(async {
        let conn = connect(&args.endpoint).await?;
        let result = apply(&args, saved, &conn.provider, &conn.name).await;
        conn.close().await;
        result
    })
}

async fn apply<P: Provider>(
    args: &Options,
    saved: Option<Plan>,
    provider: &P,
    endpoint: &str,
) -> anyhow::Result<Exit> {
    let plan = match saved {
        Some(plan) if plan.is_refused() => {
            show_plan(&plan, args.format);
            return Ok(refused(&plan));
        }
        Some(plan) if unchanged_since(&plan, provider, endpoint).await? => {
            show_plan(&plan, args.format);
            plan
        }
        Some(plan) => {
            let observed = match provider.read().await {
                Ok(o) => o,
                Err(e) => {
                    return Ok(live_unreadable(anyhow::Error::new(e).context(format!(
                        "cannot read the live system at {}",
                        provider.base_url()
                    ))));
                }
            };
            let wrong = crate::plan::binding::mismatches(&plan, endpoint, &observed, None);
            if !wrong.is_empty() {
                return Ok(refuse_saved(
                    "refusing the saved plan: it was made for another target:",
                    &wrong,
                    "make a new plan against this endpoint with this token (`roster plan --out FILE`) and apply that",
                ));
            }
            let stale = crate::plan::stale(&plan, &observed);
            if !stale.is_empty() {
                let n = stale.len();
                return Ok(refuse_saved(
                    &format!(
                        "the saved plan is stale: {n} object{} changed on the live system since it was made:",
                        s(n)
                    ),
                    &stale,
                    "make a new plan with `roster plan --out FILE` and apply that",
                ));
            }
            show_plan(&plan, args.format);
            plan
        }
        None => {
            let planned = match make_plan(&args.paths, &args.load, provider, &args.safety).await {
                Ok(p) => p,
                Err(failure) => return failure.report(),
            };
            planned.show();
            let plan = planned.plan;
            show_plan(&plan, args.format);
            if plan.is_refused() {
                return Ok(refused(&plan));
            }
            if !args.auto_approve && !plan.is_empty() {
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
    // The apply lease (`ops::lease`): taken before the first write, held to the last.
    let purpose = super::lease::purpose(&args.paths, args.plan.as_deref());
    let Some(lease) = super::lease::acquire(provider, &args.lock, &plan, &purpose).await? else {
        return Ok(Exit::Locked);
    };
    let plan = match plan_under_lease(args, plan, &lease, provider).await {
        Ok(plan) => plan,
        Err(exit) => {
            lease.release().await;
            return exit;
        }
    };
    let opts = ApplyOptions {
        parallelism: args.parallelism,
        ..ApplyOptions::new(resolver())
    };
    let progress = if args.format == DiagnosticFormat::Json {
        Progress::Quiet
    } else {
        Progress::auto()
    };
    let report = lease
        .around(async {
            pause_for_tests().await;
            crate::apply::execute(&plan, provider, &opts, progress).await
        })
        .await?;
    match args.format {
        DiagnosticFormat::Json => {
            // Written as serialized: no string of the whole report at 100,000 changes.
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            report
                .write_json(&mut out)
                .and_then(|()| std::io::Write::flush(&mut out))
                .context("cannot write the apply report")?;
        }
        DiagnosticFormat::Text => anstream::print!("{}", report.text(stdout_color())),
    }
    Ok(if !report.is_success() {
        Exit::ApplyFailed
    } else if args.detailed_exitcode && !plan.is_empty() {
        Exit::Changes
    } else {
        Exit::Success
    })
}

/// Whether the change feed shows the live system exactly as `plan` saw it (nothing
/// committed since its cursor, the same digest) and as the same target (endpoint,
/// account, principal): then the saved plan is current, asked in one request. False
/// when the feed cannot say or anything differs: the full read decides, and says why.
async fn unchanged_since<P: Provider>(
    plan: &Plan,
    provider: &P,
    endpoint: &str,
) -> anyhow::Result<bool> {
    let Some(mark) = plan.target.as_ref().and_then(|t| t.live.as_ref()) else {
        return Ok(false);
    };
    let since = match provider.since(&mark.cursor).await {
        Ok(Some(since)) => since,
        Ok(None) => return Ok(false),
        Err(e) => {
            tracing::debug!("the change feed cannot say what changed ({e}): reading in full");
            return Ok(false);
        }
    };
    if !crate::plan::binding::unchanged(plan, since.changed, &since.digest) {
        return Ok(false);
    }
    let seen = crate::model::Observed {
        account: since.account,
        principal: Some(since.principal),
        ..Default::default()
    };
    let current = crate::plan::binding::mismatches(plan, endpoint, &seen, None).is_empty();
    if current {
        tracing::debug!("the saved plan is current: nothing changed since its cursor");
    }
    Ok(current)
}

/// Says why a saved plan is refused (`header`, one line per reason, then `fix`); exit 4.
fn refuse_saved(header: &str, reasons: &[String], fix: &str) -> Exit {
    let mut msg = format!("error: {header}");
    for r in reasons {
        msg.push_str("\n  - ");
        msg.push_str(r);
    }
    anstream::eprintln!("{msg}\nnothing was changed; {fix}");
    Exit::Refused
}

/// Under the apply lease: the plan to run. `plan` itself when the live system did not
/// change since it was made (checked after a wait for the lease or a confirmation, see
/// `ops::lease`); when another apply changed it meanwhile (the one this apply waited
/// for), a fresh plan made again and shown (`--auto-approve`), else a refusal — the
/// `Err` is what `apply` answers once it has released the lease.
async fn plan_under_lease<P: Provider>(
    args: &Options,
    plan: Plan,
    lease: &super::lease::Guard<'_, P>,
    provider: &P,
) -> Result<Plan, anyhow::Result<Exit>> {
    let confirmed_on_a_terminal = args.plan.is_none() && !args.auto_approve;
    let stale = lease
        .recheck(&plan, confirmed_on_a_terminal)
        .await
        .map_err(Err)?;
    if stale.is_empty() {
        return Ok(plan);
    }
    if args.plan.is_some() || !args.auto_approve {
        anstream::eprintln!(
            "error: the live system changed since the plan was made (another apply ran meanwhile): {}; nothing was changed; make the plan again",
            stale.join(", ")
        );
        return Err(Ok(Exit::Refused));
    }
    anstream::eprintln!(
        "the live system changed before the apply lease was taken ({} object{}); planning again",
        stale.len(),
        s(stale.len())
    );
    match make_plan(&args.paths, &args.load, provider, &args.safety).await {
        Ok(planned) => {
            planned.show();
            show_plan(&planned.plan, args.format);
            if planned.plan.is_refused() {
                return Err(Ok(refused(&planned.plan)));
            }
            Ok(planned.plan)
        }
        Err(failure) => Err(failure.report()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_plan_of_another_format_or_not_a_plan_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let other = dir.path().join("old.json");
        std::fs::write(
            &other,
            r#"{"format_version": 99, "changes": [], "summary": {"create":0,"update":0,"rename":0,"move":0,"deactivate":0,"reactivate":0,"delete":0,"removals":0}, "fingerprint": {}}"#,
        )
        .unwrap();
        let e = load_plan(&other).unwrap_err().to_string();
        assert!(
            e.contains("format version 99") && e.contains("make the plan again"),
            "{e}"
        );

        let junk = dir.path().join("junk.json");
        std::fs::write(&junk, "[1, 2]").unwrap();
        let e = load_plan(&junk).unwrap_err().to_string();
        assert!(
            e.contains("is not a plan saved by `roster plan --out`"),
            "{e}"
        );

        let e = load_plan(&dir.path().join("missing.json"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot read the saved plan"), "{e}");
    }
}
