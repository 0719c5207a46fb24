//! The CI renderings of a command's diagnostics (`--annotations`, `--sarif FILE`): GitHub
//! annotations on stderr as each diagnostic is shown, and one SARIF log of every
//! diagnostic the run showed, written when the command ends.
//!
//! `plan` and `apply` show diagnostics from several places (warnings, each kind of
//! failure, in `ops::plan` and `ops::apply`), all through `term::show_diagnostics`; so
//! the run's choice is held here for the length of the command ([`with`], called by
//! `ops::run`), the way `--color` is held by anstream, and `show_diagnostics` hands each
//! batch to [`show`]. `validate` renders its diagnostics itself and goes through the
//! same two functions. The renderings are the core's (`config::annotations`,
//! `config::sarif`); this module reads the environment (`GITHUB_ACTIONS`,
//! `GITHUB_WORKSPACE`, the current directory) and writes.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::Context;

use crate::config::{CiOutput, Diagnostic, RepoPaths, annotations, sarif};

use super::Exit;

struct Sink {
    annotations: bool,
    sarif: Option<PathBuf>,
    seen: Vec<Diagnostic>,
}

static SINK: Mutex<Option<Sink>> = Mutex::new(None);

/// Whether the process runs under GitHub Actions (which sets `GITHUB_ACTIONS=true`).
pub fn github_actions() -> bool {
    std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true")
}

/// Files named relative to `GITHUB_WORKSPACE` when it is set, else to their Git work
/// tree, else to the current directory.
pub fn repo_paths() -> RepoPaths {
    let workspace = std::env::var_os("GITHUB_WORKSPACE")
        .filter(|w| !w.is_empty())
        .map(PathBuf::from);
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    RepoPaths::new(workspace, cwd)
}

/// Runs a command with its CI outputs on: annotations for every diagnostic it shows,
/// and the SARIF log written at the end (also when the command failed: the log then
/// says the run did not succeed). `declaration` is the command's paths, whose first
/// file places the diagnostics that have no file. A log that cannot be written is an
/// error.
pub fn with(
    opts: &CiOutput,
    declaration: &[PathBuf],
    run: impl FnOnce() -> anyhow::Result<Exit>,
) -> anyhow::Result<Exit> {
    *lock() = Some(Sink {
        annotations: opts.annotations.enabled(github_actions()),
        sarif: opts.sarif.clone(),
        seen: Vec::new(),
    });
    let result = run();
    let Some(sink) = lock().take() else {
        return result;
    };
    if let Some(path) = sink.sarif {
        let first = if sink.seen.iter().any(|d| d.file.as_os_str().is_empty()) {
            crate::config::files(declaration).into_iter().next()
        } else {
            None
        };
        // The run succeeded when it got to its findings (none, or invalid, or refused);
        // not when the live system was unreachable, locked, or an apply failed.
        let completed = matches!(
            result,
            Ok(Exit::Success | Exit::Changes | Exit::Invalid | Exit::Refused)
        );
        let text = sarif::render(&sink.seen, &repo_paths(), completed, first.as_deref());
        let written = std::fs::write(&path, text)
            .with_context(|| format!("cannot write the SARIF log to {}", path.display()));
        if let Err(e) = written {
            if result.is_ok() {
                return Err(e);
            }
            // The command's own error is the one `main` reports; this one is extra.
            super::report_error(&e);
        }
    }
    result
}

/// Diagnostics the command shows: as annotations on stderr (when on), and kept for the
/// SARIF log (when asked for). Does nothing outside [`with`].
pub fn show(diags: &[Diagnostic]) {
    let mut guard = lock();
    let Some(sink) = guard.as_mut() else {
        return;
    };
    if sink.annotations && !diags.is_empty() {
        let text = annotations::render(diags, &repo_paths());
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(text.as_bytes()).and_then(|()| err.flush());
    }
    if sink.sarif.is_some() {
        sink.seen.extend_from_slice(diags);
    }
}

fn lock() -> std::sync::MutexGuard<'static, Option<Sink>> {
    SINK.lock().unwrap_or_else(|e| e.into_inner())
}
