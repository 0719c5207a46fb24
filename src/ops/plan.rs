//! `roster plan`: load the declaration and read the live system at the same time, diff,
//! show the plan, and optionally save it for `roster apply --plan`.
//!
//! The declaration is parsed on a blocking thread while the live read (paged, every kind
//! concurrently) is in flight, so the slower of the two sets the time, not their sum.
//! Diagnostics and warnings go to stderr (file:line:col); the plan goes to stdout as text,
//! JSON or Markdown. Plan-time rule errors (seats, escalation, protected objects, the
//! removal threshold, deletion without permission, rename conflicts) are mapped back to
//! the declaring file with `config::diagnostic_for` and stop with exit 1 before any write.
//! So is a password the plan would set but cannot read (a missing variable or file):
//! every such reference is resolved at plan time and its value dropped at once.
//!
//! Exit codes (`--detailed-exitcode`): 0 no changes, 1 error, 2 changes.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::cli::{DiagnosticFormat, PlanArgs, PlanFormat, SafetyArgs};
use crate::model::{Desired, Observed};
use crate::plan::{self, Plan, PlanOptions};
use crate::provider::HttpProvider;

use super::Exit;

/// The tokio runtime of the commands that talk to a live system.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Whether to colour output written to a stream: `--color always/never` (recorded
/// globally by `init_logging`), else only on a terminal and without `NO_COLOR`.
pub(crate) fn color_for(is_terminal: bool) -> bool {
    match anstream::ColorChoice::global() {
        anstream::ColorChoice::Always | anstream::ColorChoice::AlwaysAnsi => true,
        anstream::ColorChoice::Never => false,
        anstream::ColorChoice::Auto => is_terminal && std::env::var_os("NO_COLOR").is_none(),
    }
}

pub(crate) fn stdout_color() -> bool {
    color_for(std::io::stdout().is_terminal())
}

pub(crate) fn stderr_color() -> bool {
    color_for(std::io::stderr().is_terminal())
}

/// A fresh plan and what it was made from.
#[derive(Debug)]
pub struct Planned {
    pub plan: Plan,
    pub desired: Desired,
    pub observed: Observed,
}

/// Loads the declaration (on a blocking thread) while reading the live system, then
/// diffs. Diagnostics are printed to stderr; `Err(Exit::Error)` means they were and the
/// command must stop; an `anyhow` error is anything else (the live system unreachable…).
pub async fn make_plan(
    paths: &[PathBuf],
    provider: &HttpProvider,
    safety: &SafetyArgs,
) -> anyhow::Result<Result<Planned, Exit>> {
    let owned: Vec<PathBuf> = paths.to_vec();
    let started = std::time::Instant::now();
    let load = tokio::task::spawn_blocking(move || {
        let loaded = crate::config::load(&owned);
        tracing::debug!(elapsed = ?started.elapsed(), "plan: declaration loaded");
        loaded
    });
    let read = async {
        let observed = provider.read().await;
        tracing::debug!(elapsed = ?started.elapsed(), "plan: live system read");
        observed
    };
    let (loaded, observed) = tokio::join!(load, read);
    let loaded = loaded.context("the declaration loader stopped unexpectedly")?;
    let loaded = match loaded {
        Ok(l) => l,
        Err(diags) => {
            anstream::eprint!(
                "{}",
                crate::config::render(&diags.0, DiagnosticFormat::Text, stderr_color())
            );
            return Ok(Err(Exit::Error));
        }
    };
    if !loaded.warnings.is_empty() {
        anstream::eprint!(
            "{}",
            crate::config::render(&loaded.warnings, DiagnosticFormat::Text, stderr_color())
        );
    }
    let observed = observed
        .with_context(|| format!("cannot read the live system at {}", provider.base_url()))?;
    let mut desired = loaded.desired;
    let options = PlanOptions {
        allow_delete: safety.allow_delete,
        force: safety.force,
    };
    let diffed = plan::make(&mut desired, &observed, &options);
    tracing::debug!(elapsed = ?started.elapsed(), "plan: diffed");
    match diffed {
        Ok(plan) => {
            if let Err(exit) = check_secrets(&plan, &desired) {
                return Ok(Err(exit));
            }
            Ok(Ok(Planned {
                plan,
                desired,
                observed,
            }))
        }
        Err(errors) => {
            let diags: Vec<crate::config::Diagnostic> = errors
                .0
                .iter()
                .map(|e| {
                    crate::config::diagnostic_for(
                        &desired.origins,
                        &e.id,
                        &e.pointer,
                        e.rule,
                        e.message.clone(),
                        e.help.clone(),
                        crate::config::Severity::Error,
                    )
                })
                .collect();
            anstream::eprint!(
                "{}",
                crate::config::render(&diags, DiagnosticFormat::Text, stderr_color())
            );
            anstream::eprintln!(
                "error: the plan breaks {} rule{}; nothing was changed",
                diags.len(),
                if diags.len() == 1 { "" } else { "s" }
            );
            Ok(Err(Exit::Error))
        }
    }
}

/// Rule 8 at plan time: every password the plan would set (creates, changed
/// `rotation`) must be readable now, not only when apply sends it. Each reference is
/// resolved and the value dropped at once; the errors name the object and the variable
/// or file, never a value.
fn check_secrets(plan: &Plan, desired: &Desired) -> Result<(), Exit> {
    let diags: Vec<crate::config::Diagnostic> = plan
        .changes
        .iter()
        .filter_map(|c| {
            let r = c.set_password.as_ref()?;
            let err = crate::config::secrets::resolve(r).err()?;
            Some(crate::config::diagnostic_for(
                &desired.origins,
                &c.id,
                "/password",
                crate::model::rules::RuleCode::Secret,
                format!("the password of {} cannot be read: {err}", c.id),
                "provide the variable or file the declaration names (or fix the reference); \
                 roster reads it at plan time and sends it only on create or when `rotation` \
                 changes",
                crate::config::Severity::Error,
            ))
        })
        .collect();
    if diags.is_empty() {
        return Ok(());
    }
    anstream::eprint!(
        "{}",
        crate::config::render(&diags, DiagnosticFormat::Text, stderr_color())
    );
    anstream::eprintln!(
        "error: {} password{} cannot be read; nothing was changed",
        diags.len(),
        if diags.len() == 1 { "" } else { "s" }
    );
    Err(Exit::Error)
}

/// Renders a plan in the chosen format.
pub fn render(plan: &Plan, format: PlanFormat, color: bool) -> String {
    match format {
        PlanFormat::Text => plan::render::text(plan, color),
        PlanFormat::Json => plan::render::json(plan),
        PlanFormat::Markdown => plan::render::markdown(plan),
    }
}

/// Saves a plan for `roster apply --plan` (JSON; secrets only as references).
pub fn save(plan: &Plan, path: &Path) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(plan).context("cannot serialize the plan")? + "\n";
    std::fs::write(path, text)
        .with_context(|| format!("cannot write the plan to {}", path.display()))
}

pub fn run(args: PlanArgs) -> anyhow::Result<Exit> {
    let rt = runtime()?;
    rt.block_on(async {
        let conn = crate::provider::connect(&args.endpoint).await?;
        let result = make_plan(&args.paths, &conn.provider, &args.safety).await;
        conn.close().await;
        let planned = match result? {
            Ok(p) => p,
            Err(exit) => return Ok(exit),
        };
        let Planned {
            plan,
            desired,
            observed,
        } = planned;
        // The process ends right after: freeing both organisations object by object
        // (200,000 objects at scale) would only delay the exit.
        std::mem::forget((desired, observed));
        if let Some(out) = &args.out {
            save(&plan, out)?;
            anstream::eprintln!(
                "saved the plan to {}; run `roster apply --plan {}` to apply exactly this",
                out.display(),
                out.display()
            );
        }
        anstream::print!("{}", render(&plan, args.format, stdout_color()));
        Ok(if args.detailed_exitcode && !plan.is_empty() {
            Exit::Changes
        } else {
            Exit::Success
        })
    })
}
