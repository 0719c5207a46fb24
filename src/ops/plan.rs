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
//! [`make_plan`] (shared with `apply`) prints nothing: it returns the plan with the
//! warnings, or a [`PlanFailure`]; [`run`] (and `ops::apply`) render them.
//!
//! Exit codes (`--detailed-exitcode`): 0 no changes, 1 error, 2 changes.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::config::{Diagnostic, Severity};
use crate::model::text::s;
use crate::model::{Desired, Observed};
use crate::plan::{self, Plan, PlanOptions};
use crate::provider::{Provider, ProviderError};

use super::Exit;
use super::connect::{Endpoint, connect};
use super::term::{show_diagnostics, stdout_color};

/// How a plan is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Text,
    Json,
    Markdown,
}

/// `roster plan`'s options.
#[derive(Debug, Clone)]
pub struct Options {
    /// Files or directories of the declaration.
    pub paths: Vec<PathBuf>,
    pub endpoint: Endpoint,
    /// `--force`, `--allow-delete`.
    pub safety: PlanOptions,
    pub format: Format,
    /// Where to save the plan for `apply --plan`.
    pub out: Option<PathBuf>,
    /// Exit 2 when there are changes.
    pub detailed_exitcode: bool,
    /// Annotations and a SARIF log of the diagnostics (`ops::ci`, run by `ops::run`).
    pub ci: crate::config::CiOutput,
}

/// A fresh plan, what it was made from, and the declaration's warnings (to be shown).
#[derive(Debug)]
pub struct Planned {
    pub plan: Plan,
    pub desired: Desired,
    pub observed: Observed,
    pub warnings: Vec<Diagnostic>,
}

/// Why no plan was made. Every variant but `Live` carries diagnostics positioned in
/// the declaration's files, ready to render; nothing was written in any case.
#[derive(Debug)]
pub enum PlanFailure {
    /// The declaration does not load (schema, YAML, declaration rules); its warnings
    /// are among the diagnostics.
    Invalid(Vec<Diagnostic>),
    /// The plan breaks plan-time rules (seats, escalation, protected objects, the
    /// removal threshold, deletion without permission, rename conflicts).
    Refused {
        warnings: Vec<Diagnostic>,
        errors: Vec<Diagnostic>,
    },
    /// Passwords the plan would set cannot be read now.
    Secrets {
        warnings: Vec<Diagnostic>,
        errors: Vec<Diagnostic>,
    },
    /// The live system could not be read.
    Live {
        warnings: Vec<Diagnostic>,
        base_url: String,
        error: ProviderError,
    },
    /// The loader's thread stopped (a panic); not the user's doing.
    Internal(anyhow::Error),
}

impl PlanFailure {
    /// Prints the failure on stderr as `plan` and `apply` always have, and gives the
    /// exit: diagnostics are the user's to fix (exit 1 after showing them); a live or
    /// internal error goes back as an `anyhow` error for `main` to report.
    pub fn report(self) -> anyhow::Result<Exit> {
        let (errors, tail) = match self {
            PlanFailure::Invalid(diags) => {
                show_diagnostics(&diags);
                return Ok(Exit::Error);
            }
            PlanFailure::Refused { warnings, errors } => {
                show_diagnostics(&warnings);
                let n = errors.len();
                (errors, format!("the plan breaks {n} rule{}", s(n)))
            }
            PlanFailure::Secrets { warnings, errors } => {
                show_diagnostics(&warnings);
                let n = errors.len();
                (errors, format!("{n} password{} cannot be read", s(n)))
            }
            PlanFailure::Live {
                warnings,
                base_url,
                error,
            } => {
                show_diagnostics(&warnings);
                return Err(anyhow::Error::new(error)
                    .context(format!("cannot read the live system at {base_url}")));
            }
            PlanFailure::Internal(e) => return Err(e),
        };
        show_diagnostics(&errors);
        anstream::eprintln!("error: {tail}; nothing was changed");
        Ok(Exit::Error)
    }
}

/// Loads the declaration (on a blocking thread) while reading the live system, then
/// diffs. Prints nothing: the warnings come back in [`Planned`], every reason to stop
/// in a [`PlanFailure`], for the command to show.
pub async fn make_plan<P: Provider>(
    paths: &[PathBuf],
    provider: &P,
    safety: &PlanOptions,
) -> Result<Planned, PlanFailure> {
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
    let loaded = loaded
        .map_err(|e| {
            PlanFailure::Internal(
                anyhow::Error::new(e).context("the declaration loader stopped unexpectedly"),
            )
        })?
        .map_err(|diags| PlanFailure::Invalid(diags.0))?;
    let crate::config::Loaded {
        mut desired,
        warnings,
    } = loaded;
    let observed = match observed {
        Ok(o) => o,
        Err(error) => {
            return Err(PlanFailure::Live {
                warnings,
                base_url: provider.base_url().to_string(),
                error,
            });
        }
    };
    let diffed = plan::make(&mut desired, &observed, safety);
    tracing::debug!(elapsed = ?started.elapsed(), "plan: diffed");
    let plan = match diffed {
        Ok(plan) => plan,
        Err(refused) => {
            let errors = refused
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
                        Severity::Error,
                    )
                })
                .collect();
            return Err(PlanFailure::Refused { warnings, errors });
        }
    };
    let errors = unreadable_secrets(&plan, &desired);
    if !errors.is_empty() {
        return Err(PlanFailure::Secrets { warnings, errors });
    }
    Ok(Planned {
        plan,
        desired,
        observed,
        warnings,
    })
}

/// Rule 8 at plan time: every password the plan would set (creates, changed
/// `rotation`) must be readable now, not only when apply sends it. Each reference is
/// resolved and the value dropped at once; the errors name the object and the variable
/// or file, never a value.
fn unreadable_secrets(plan: &Plan, desired: &Desired) -> Vec<Diagnostic> {
    plan.changes
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
                Severity::Error,
            ))
        })
        .collect()
}

/// Renders a plan in the chosen format.
pub fn render(plan: &Plan, format: Format, color: bool) -> String {
    match format {
        Format::Text => plan::render::text(plan, color),
        Format::Json => plan::render::json(plan),
        Format::Markdown => plan::render::markdown(plan),
    }
}

/// Saves a plan for `roster apply --plan` (JSON; secrets only as references).
pub fn save(plan: &Plan, path: &Path) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(plan).context("cannot serialize the plan")? + "\n";
    std::fs::write(path, text)
        .with_context(|| format!("cannot write the plan to {}", path.display()))
}

pub fn run(opts: Options) -> anyhow::Result<Exit> {
    let rt = super::term::runtime()?;
    rt.block_on(async {
        let conn = connect(&opts.endpoint).await?;
        let result = make_plan(&opts.paths, &conn.provider, &opts.safety).await;
        conn.close().await;
        let Planned {
            plan,
            desired,
            observed,
            warnings,
        } = match result {
            Ok(p) => p,
            Err(failure) => return failure.report(),
        };
        show_diagnostics(&warnings);
        // The process ends right after: freeing both organisations object by object
        // (200,000 objects at scale) would only delay the exit.
        std::mem::forget((desired, observed));
        if let Some(out) = &opts.out {
            save(&plan, out)?;
            anstream::eprintln!(
                "saved the plan to {}; run `roster apply --plan {}` to apply exactly this",
                out.display(),
                out.display()
            );
        }
        anstream::print!("{}", render(&plan, opts.format, stdout_color()));
        Ok(if opts.detailed_exitcode && !plan.is_empty() {
            Exit::Changes
        } else {
            Exit::Success
        })
    })
}
