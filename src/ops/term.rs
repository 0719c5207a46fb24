//! The terminal, for every command: the async runtime, whether a stream gets colours,
//! the `yes` confirmation prompt, diagnostics on stderr, and plural endings ([`s`], from
//! [`crate::model::text`]).
//!
//! The colour decision is anstream's ([`color_for`]), after `--color`, which
//! `ops::init_logging` records globally.

use std::io::{BufRead, Write};

use anyhow::Context;

pub use crate::model::text::s;

/// The tokio runtime of the commands that talk to a live system or serve one.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Whether output written to `stream` gets colours, decided in one place by anstream:
/// `--color always|never` (recorded globally by `ops::init_logging`), else `NO_COLOR`
/// when non-empty, `CLICOLOR_FORCE`, `CLICOLOR=0`, `TERM=dumb` and whether the stream
/// is a terminal — the conventions every command follows alike.
pub fn color_for<S: anstream::stream::RawStream>(stream: &S) -> bool {
    anstream::AutoStream::choice(stream) != anstream::ColorChoice::Never
}

pub fn stdout_color() -> bool {
    color_for(&std::io::stdout())
}

pub fn stderr_color() -> bool {
    color_for(&std::io::stderr())
}

/// Asks on stderr whether to apply `changes` changes; only `yes` is accepted.
pub fn confirm(changes: usize) -> anyhow::Result<bool> {
    let mut err = std::io::stderr();
    write!(
        err,
        "\napply these {changes} change{}? only `yes` is accepted: ",
        s(changes)
    )?;
    err.flush()?;
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the confirmation")?;
    Ok(line.trim() == "yes")
}

/// Diagnostics of `plan` and `apply` go to stderr as text (stdout is the plan's), and
/// to the run's CI outputs (`ops::ci`: annotations, the SARIF log).
pub(crate) fn show_diagnostics(diags: &[crate::config::Diagnostic]) {
    super::ci::show(diags);
    if !diags.is_empty() {
        anstream::eprint!(
            "{}",
            crate::config::render(diags, crate::config::DiagnosticFormat::Text, stderr_color())
        );
    }
}
