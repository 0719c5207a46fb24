//! `roster plan`: load the declaration and read the live system at the same time, diff,
//! show the plan, and optionally save it for `roster apply --plan`.
//!
//! The declaration is parsed on a blocking thread while the live read (paged, every kind
//! concurrently) is in flight, so the slower of the two sets the time, not their sum.
//! Diagnostics and warnings go to stderr (file:line:col); the plan goes to stdout as text,
//! JSON or Markdown. A plan that safety rules refuse (seats, escalation, protected
//! objects, the removal threshold, deletion without permission, rename conflicts) is
//! still shown whole, with a banner naming each refusal, and exits 4 (`Exit::Refused`);
//! the refusals are also mapped back to the declaring file with `config::diagnostic_for`
//! and shown on stderr. A password the plan would set but cannot read (a missing
//! variable or file) makes the declaration invalid (exit 3): every such reference is
//! resolved at plan time and its value dropped at once.
//!
//! [`make_plan`] (shared with `apply`) prints nothing: it returns the plan with the
//! warnings, or a [`PlanFailure`]; [`run`] (and `ops::apply`) render them.
//!
//! The Markdown plan starts with a hidden marker naming the declaration's root (the paths
//! given, relative to the root of the repository that holds them: [`declaration_root`]) and keeps under
//! `--markdown-limit`; when `GITHUB_STEP_SUMMARY` names a file, the Markdown plan is
//! appended to it too, whatever `--format` is.
//!
//! With `--unmanaged-as-changes`, live objects no file declares under `unmanaged: warn`
//! count as changes for `--detailed-exitcode` (drift, for scheduled jobs); the JSON plan
//! lists them in `unmanaged` with their policy.
//!
//! `--target`/`--exclude` (in `PlanOptions::filter`) make a partial plan (`plan::target`):
//! the patterns are parsed by `cli`, so an unknown kind is a usage error (exit 64); a
//! pattern naming no change is a warning of the plan; a dependency excluded refuses it
//! (exit 4). A partial plan saved with `--out` holds only its changes.
//!
//! Exit codes: `ops::Exit` (0 no changes, 2 changes with `--detailed-exitcode`, 3
//! invalid, 4 refused, 5 live system unreadable).

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::config::{Diagnostic, Severity};
use crate::model::text::s;
use crate::model::{Desired, Observed};
use crate::plan::render::MarkdownOptions;
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
    /// The most characters of the Markdown plan (`--markdown-limit`).
    pub markdown_limit: usize,
    /// Live objects no file declares under `unmanaged: warn` (drift) count as changes for
    /// the exit code (`--unmanaged-as-changes`, for scheduled jobs).
    pub unmanaged_as_changes: bool,
    /// Annotations and a SARIF log of the diagnostics (`ops::ci`, run by `ops::run`).
    pub ci: crate::config::CiOutput,
    /// How the declaration is loaded (the parse cache, `--no-cache`).
    pub load: crate::config::LoadOptions,
}

/// Where `plan` appends its Markdown plan when set: a GitHub Actions job summary.
pub const STEP_SUMMARY_ENV: &str = "GITHUB_STEP_SUMMARY";

/// A fresh plan, what it was made from, the declaration's warnings (to be shown), and
/// the plan's refusals as diagnostics positioned in the files (empty unless a safety
/// rule refuses the plan, which still carries them in `plan.refusals`).
#[derive(Debug)]
pub struct Planned {
    pub plan: Plan,
    pub desired: Desired,
    pub observed: Observed,
    pub warnings: Vec<Diagnostic>,
    pub refusals: Vec<Diagnostic>,
    /// One line for stderr when the server check did not run although asked for (a live
    /// system without it, a plan too large for it, a check that failed).
    pub check_note: Option<String>,
}

impl Planned {
    /// Shows the warnings, the note on the server check, and the refusals on stderr.
    pub fn show(&self) {
        show_diagnostics(&self.warnings);
        if let Some(note) = &self.check_note {
            anstream::eprintln!("{note}");
        }
        show_diagnostics(&self.refusals);
    }
}

/// Why no plan was made. Every variant but `Live` carries diagnostics positioned in
/// the declaration's files, ready to render; nothing was written in any case. (A plan
/// a safety rule refuses is still made: see [`Planned::refusals`].)
#[derive(Debug)]
pub enum PlanFailure {
    /// The declaration does not load (schema, YAML, declaration rules); its warnings
    /// are among the diagnostics.
    Invalid(Vec<Diagnostic>),
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
    /// exit: an invalid declaration (and a password that cannot be read) is
    /// [`Exit::Invalid`], a live system that cannot be read [`Exit::Unreachable`]; an
    /// internal error goes back as an `anyhow` error for `main` to report.
    pub fn report(self) -> anyhow::Result<Exit> {
        match self {
            PlanFailure::Invalid(diags) => {
                show_diagnostics(&diags);
                Ok(Exit::Invalid)
            }
            PlanFailure::Secrets { warnings, errors } => {
                show_diagnostics(&warnings);
                show_diagnostics(&errors);
                let n = errors.len();
                let policy = errors
                    .iter()
                    .filter(|d| d.rule == crate::model::rules::RuleCode::PasswordPolicy)
                    .count();
                if policy == 0 {
                    anstream::eprintln!(
                        "error: {n} password{} cannot be read; nothing was changed",
                        s(n)
                    );
                } else {
                    anstream::eprintln!(
                        "error: {n} password{} cannot be sent ({policy} breaking the account's \
                         password policy); nothing was changed",
                        s(n)
                    );
                }
                Ok(Exit::Invalid)
            }
            PlanFailure::Live {
                warnings,
                base_url,
                error,
            } => {
                show_diagnostics(&warnings);
                Ok(live_unreadable(anyhow::Error::new(error).context(format!(
                    "cannot read the live system at {base_url}"
                ))))
            }
            PlanFailure::Internal(e) => Err(e),
        }
    }
}

/// Reports that the live system cannot be read (unreachable, or a token it refuses)
/// and gives its exit code.
pub fn live_unreadable(err: anyhow::Error) -> Exit {
    super::report_error(&err);
    Exit::Unreachable
}

/// Says on stderr that safety rules refuse `plan` (shown above it in full), nothing
/// was changed, and gives the exit code.
pub fn refused(plan: &Plan) -> Exit {
    let n = plan.refusals.len();
    anstream::eprintln!(
        "error: the plan breaks {n} safety rule{} ({}); nothing was changed; the plan shows \
         what it would do and how to proceed",
        s(n),
        plan.refusal_codes()
    );
    Exit::Refused
}

/// `--unmanaged-as-changes`: says on stderr which live objects no file declares under
/// `unmanaged: warn` now count as changes, and how many there are.
fn show_drift(plan: &Plan) -> usize {
    let drift: Vec<String> = plan.drift().map(|u| u.id.to_string()).collect();
    if !drift.is_empty() {
        let n = drift.len();
        let listed: Vec<&str> = drift.iter().take(10).map(String::as_str).collect();
        anstream::eprintln!(
            "drift: {n} live object{} no file declares (`unmanaged: warn`) count as changes \
             (--unmanaged-as-changes): {}{}",
            s(n),
            listed.join(", "),
            if n > listed.len() {
                format!(
                    " and {} more (the JSON plan lists them all)",
                    n - listed.len()
                )
            } else {
                String::new()
            }
        );
    }
    drift.len()
}

/// Loads the declaration (on a blocking thread) while reading the live system, then
/// diffs. Prints nothing: the warnings and refusals come back in [`Planned`], every
/// reason there is no plan in a [`PlanFailure`], for the command to show.
pub async fn make_plan<P: Provider>(
    paths: &[PathBuf],
    load: &crate::config::LoadOptions,
    provider: &P,
    safety: &PlanOptions,
) -> Result<Planned, PlanFailure> {
    let owned: Vec<PathBuf> = paths.to_vec();
    let options = load.clone();
    let started = std::time::Instant::now();
    let load = tokio::task::spawn_blocking(move || {
        let loaded = crate::config::load_with(&owned, &options);
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
    let mut plan = plan::make(&mut desired, &observed, safety);
    tracing::debug!(elapsed = ?started.elapsed(), "plan: diffed");
    let check_note = if safety.server_check {
        server_check(&mut plan, &observed, provider).await
    } else {
        None
    };
    tracing::debug!(elapsed = ?started.elapsed(), "plan: server check");
    let refusals: Vec<Diagnostic> = plan
        .refusals
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
    let errors = unreadable_secrets(&plan, &desired, &observed);
    if !errors.is_empty() {
        // Every error at once: the refusals too, not only the passwords.
        let mut all = refusals;
        all.extend(errors);
        return Err(PlanFailure::Secrets {
            warnings,
            errors: all,
        });
    }
    Ok(Planned {
        plan,
        desired,
        observed,
        warnings,
        refusals,
        check_note,
    })
}

/// The server check: when the plan has changes and no refusal of its own, and the live
/// system lists the `plan-check` capability, its writes are sent as a dry run
/// (`Provider::check`) and every one the live system would refuse becomes a refusal
/// (rule `server-check`) on the change's object, at the server's pointer. Gives the one
/// line to show when the check was asked for but did not run.
async fn server_check<P: Provider>(
    plan: &mut Plan,
    observed: &Observed,
    provider: &P,
) -> Option<String> {
    if plan.is_empty() || plan.is_refused() {
        return None;
    }
    if !observed
        .capabilities
        .iter()
        .any(|c| c == crate::provider::PLAN_CHECK)
    {
        return Some(format!(
            "note: the live system at {} has no server check (no `{}` capability); the plan \
             is not checked against its write path",
            provider.base_url(),
            crate::provider::PLAN_CHECK
        ));
    }
    let n = crate::apply::checked_changes(plan).count();
    if n == 0 {
        return None;
    }
    if n > MAX_CHECKED_CHANGES {
        return Some(format!(
            "note: the plan has {n} changes, more than the {MAX_CHECKED_CHANGES} the server \
             check takes at once; the plan is not checked against the live system's write path"
        ));
    }
    pause_before_check().await;
    let results = match provider.check(&crate::apply::check_ops(plan)).await {
        Ok(r) => r,
        Err(e) => {
            return Some(format!(
                "warning: the server check failed ({e}); the plan is not checked against the \
                 live system's write path"
            ));
        }
    };
    let refused: Vec<plan::Refusal> = crate::apply::checked_changes(plan)
        .zip(results)
        .filter_map(|(change, r)| {
            let problem = r.problem?;
            Some(refusal_of(change, r.status, &problem))
        })
        .collect();
    plan.refusals.extend(refused);
    plan.refusals
        .sort_by(|a, b| (a.rule, &a.id, &a.pointer).cmp(&(b.rule, &b.id, &b.pointer)));
    plan.server_checked = true;
    None
}

/// Testing aid (hidden, for the end-to-end tests): `ROSTER_TEST_PAUSE_BEFORE_SERVER_CHECK_MS`
/// sleeps that long after the plan is made from the live read and before its server
/// check, announcing the pause on stderr, so that a test can change the live system in
/// that window deterministically (what only the server check can then catch).
pub const CHECK_PAUSE_ENV: &str = "ROSTER_TEST_PAUSE_BEFORE_SERVER_CHECK_MS";

async fn pause_before_check() {
    if let Some(ms) = std::env::var(CHECK_PAUSE_ENV)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        eprintln!("pausing {ms} ms before the server check ({CHECK_PAUSE_ENV})");
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
}

/// The most changes one server check takes (the live API's limit per request).
pub const MAX_CHECKED_CHANGES: usize = 1000;

/// A refusal of the server check: the change's object, the field the server named (its
/// pointer, else the first of its `errors`; a password's `/value` is the password), the
/// server's code, status and detail.
fn refusal_of(
    change: &plan::Change,
    status: u16,
    problem: &crate::provider::Problem,
) -> plan::Refusal {
    let pointer = problem
        .pointer
        .clone()
        .filter(|p| !p.is_empty())
        .or_else(|| problem.errors.first().map(|e| e.pointer.clone()))
        .unwrap_or_default();
    let pointer = match pointer.strip_suffix("/value") {
        Some(p) if p == "/password" => p.to_string(),
        _ => pointer,
    };
    let detail = problem.detail.clone().unwrap_or_default();
    plan::Refusal {
        rule: crate::model::rules::RuleCode::ServerCheck,
        id: change.id.clone(),
        objects: Vec::new(),
        pointer,
        message: format!(
            "the live system would refuse to {}: {} ({status}): {detail}",
            crate::apply::describe(change),
            problem.code
        ),
        help: "fix the declaration (or the live state) and plan again; `--no-server-check` \
               skips this check, and apply would then meet the same refusal"
            .into(),
    }
}

/// Rule 8 at plan time: every password the plan would set (creates, changed
/// `rotation`) must be readable now, not only when apply sends it. Each reference is
/// resolved and the value dropped at once; the errors name the object and the variable
/// or file, never a value.
///
/// Each value read is also checked against the account's password policy as it will be
/// when the password is sent (`Desired::effective_policy`: the declared one, applied
/// first, else the live one): a break is a `password-policy` error at the password,
/// naming the rules broken, never the value.
fn unreadable_secrets(plan: &Plan, desired: &Desired, observed: &Observed) -> Vec<Diagnostic> {
    let policy = desired.effective_policy(&observed.account);
    let whose = if desired
        .account
        .as_ref()
        .is_some_and(|a| a.password_policy.is_some())
    {
        "the declared `account.password_policy`"
    } else {
        "the live account's password policy"
    };
    plan.changes
        .iter()
        .filter_map(|c| {
            let r = c.set_password.as_ref()?;
            let err = match crate::config::secrets::resolve(r) {
                Ok(value) => {
                    let breaks = policy.check(&value.0, &c.id.key);
                    drop(value);
                    if breaks.is_empty() {
                        return None;
                    }
                    return Some(crate::config::diagnostic_for(
                        &desired.origins,
                        &c.id,
                        "/password",
                        crate::model::rules::RuleCode::PasswordPolicy,
                        format!(
                            "the password of {} breaks {whose}: {}",
                            c.id,
                            crate::model::password::describe(&breaks)
                        ),
                        "set a password that meets the policy in the variable or file the \
                         declaration names (and a new `rotation` if it exists already)",
                        Severity::Error,
                    ));
                }
                Err(err) => err,
            };
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

/// The digest a saved plan records of the declaration at `paths` (its files as the
/// loader reads them, read once more: only their bytes count).
fn declaration_digest(paths: &[PathBuf]) -> anyhow::Result<String> {
    let mut read = Vec::new();
    for f in crate::config::files(paths) {
        let bytes = std::fs::read(&f)
            .with_context(|| format!("cannot read {} again for its digest", f.display()))?;
        read.push((f.to_string_lossy().into_owned(), bytes));
    }
    Ok(plan::binding::digest(
        read.iter().map(|(p, b)| (p.as_str(), b.as_slice())),
    ))
}

/// Renders a plan in the chosen format (Markdown with the default framing).
pub fn render(plan: &Plan, format: Format, color: bool) -> String {
    render_with(plan, format, color, &MarkdownOptions::default())
}

/// Renders a plan in the chosen format, Markdown framed by `md`.
pub fn render_with(plan: &Plan, format: Format, color: bool, md: &MarkdownOptions) -> String {
    match format {
        Format::Text => plan::render::text(plan, color),
        Format::Json => plan::render::json(plan),
        Format::Markdown => plan::render::markdown_with(plan, md),
    }
}

/// The repository `path` is in: the nearest directory from `path` up that holds `.git`.
fn repository_root(path: &Path) -> Option<PathBuf> {
    path.ancestors()
        .find(|d| d.join(".git").exists())
        .map(Path::to_path_buf)
}

/// `path` without `.` and with `..` applied, lexically (no file system access).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// The declaration's root as the Markdown marker names it: each path given (relative
/// to `cwd`, or absolute) relative to `repo`, `/`-separated, joined by spaces; a path
/// outside `repo` as it was given; the repository itself is `.`.
pub fn declaration_root(paths: &[PathBuf], cwd: &Path, repo: &Path) -> String {
    let repo = normalize(repo);
    paths
        .iter()
        .map(|p| {
            let full = normalize(&cwd.join(p));
            match full.strip_prefix(&repo) {
                Ok(rel) if rel.as_os_str().is_empty() => ".".to_string(),
                Ok(rel) => rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/"),
                Err(_) => p.display().to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The framing of `plan`'s Markdown: the root of `paths` in the repository that holds
/// the first of them (else relative to the current directory).
fn markdown_options(paths: &[PathBuf], limit: usize) -> MarkdownOptions {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let repo = paths
        .first()
        .and_then(|p| repository_root(&normalize(&cwd.join(p))))
        .unwrap_or_else(|| cwd.clone());
    MarkdownOptions {
        root: declaration_root(paths, &cwd, &repo),
        limit,
    }
}

/// Appends the Markdown plan to the job summary `GITHUB_STEP_SUMMARY` names, when set.
/// A summary that cannot be written is a warning: the plan's exit code stays its own.
fn append_step_summary(plan: &Plan, md: &MarkdownOptions) {
    let Some(path) = std::env::var_os(STEP_SUMMARY_ENV).filter(|p| !p.is_empty()) else {
        return;
    };
    let text = plan::render::markdown_with(plan, md);
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, format!("{text}\n").as_bytes()));
    if let Err(e) = written {
        anstream::eprintln!(
            "warning: cannot append the plan to {STEP_SUMMARY_ENV} ({}): {e}",
            Path::new(&path).display()
        );
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
        let result = make_plan(&opts.paths, &opts.load, &conn.provider, &opts.safety).await;
        let endpoint = conn.name.clone();
        conn.close().await;
        let planned = match result {
            Ok(p) => p,
            Err(failure) => return failure.report(),
        };
        planned.show();
        let Planned {
            mut plan,
            desired,
            observed,
            ..
        } = planned;
        // Only a saved plan records the declaration's digest: reading every file again
        // costs what a plan that is only shown need not pay.
        let digest = match &opts.out {
            Some(_) => Some(declaration_digest(&opts.paths)?),
            None => None,
        };
        plan.target = Some(crate::plan::binding::Target::new(
            &endpoint, &observed, digest,
        ));
        // The process ends right after: freeing both organisations object by object
        // (200,000 objects at scale) would only delay the exit.
        std::mem::forget((desired, observed));
        if let Some(out) = &opts.out {
            save(&plan, out)?;
            if plan.is_refused() {
                anstream::eprintln!(
                    "saved the refused plan to {}; `roster apply --plan` refuses it too",
                    out.display()
                );
            } else {
                anstream::eprintln!(
                    "saved the plan to {}; run `roster apply --plan {}` to apply exactly this",
                    out.display(),
                    out.display()
                );
            }
        }
        let md = markdown_options(&opts.paths, opts.markdown_limit);
        anstream::print!("{}", render_with(&plan, opts.format, stdout_color(), &md));
        append_step_summary(&plan, &md);
        let drift = if opts.unmanaged_as_changes {
            show_drift(&plan)
        } else {
            0
        };
        Ok(if plan.is_refused() {
            refused(&plan)
        } else if opts.detailed_exitcode && (!plan.is_empty() || drift > 0) {
            Exit::Changes
        } else {
            Exit::Success
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_is_each_path_relative_to_the_repository() {
        let repo = Path::new("/work/repo");
        let at = |cwd: &str, paths: &[&str]| {
            let paths: Vec<PathBuf> = paths.iter().map(PathBuf::from).collect();
            declaration_root(&paths, Path::new(cwd), repo)
        };
        assert_eq!(at("/work/repo", &["teams/europe"]), "teams/europe");
        assert_eq!(at("/work/repo", &["./teams/europe/"]), "teams/europe");
        assert_eq!(at("/work/repo/teams", &["europe"]), "teams/europe");
        assert_eq!(
            at("/work/repo/teams", &["../asia", "europe"]),
            "asia teams/europe"
        );
        assert_eq!(
            at("/elsewhere", &["/work/repo/teams/europe"]),
            "teams/europe"
        );
        assert_eq!(at("/work/repo", &["."]), ".");
        assert_eq!(at("/work/repo", &["/outside/decl"]), "/outside/decl");
    }

    #[test]
    fn the_repository_root_is_the_nearest_directory_with_git() {
        let tmp = tempfile::tempdir().unwrap();
        let sub = tmp.path().join("a/b");
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::create_dir(tmp.path().join("a/.git")).unwrap();
        assert_eq!(repository_root(&sub), Some(tmp.path().join("a")));
        assert_eq!(
            repository_root(&tmp.path().join("a")),
            Some(tmp.path().join("a"))
        );
    }
}
