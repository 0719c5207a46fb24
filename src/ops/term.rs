//! The terminal, for every command: the async runtime, whether a stream gets colours,
//! the `yes` confirmation prompt, diagnostics on stderr, and plural endings ([`s`], from
//! [`crate::model::text`]).
//!
//! The colour decision reads `--color` from the global choice `ops::init_logging`
//! records, then `NO_COLOR` and whether the stream is a terminal.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::Context;

pub use crate::model::text::s;

/// The tokio runtime of the commands that talk to a live system or serve one.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// How `NO_COLOR` is read. `validate` has always ignored an empty `NO_COLOR` (as the
/// convention says) while plan and apply honour it whenever set; kept apart so that
/// neither output changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoColor {
    WhenSet,
    WhenNonEmpty,
}

/// Whether to colour output written to a stream: `--color always/never`, else only on a
/// terminal and without `NO_COLOR`.
pub fn color_for(is_terminal: bool, no_color: NoColor) -> bool {
    match anstream::ColorChoice::global() {
        anstream::ColorChoice::Always | anstream::ColorChoice::AlwaysAnsi => true,
        anstream::ColorChoice::Never => false,
        anstream::ColorChoice::Auto => {
            let var = std::env::var_os("NO_COLOR");
            let off = match no_color {
                NoColor::WhenSet => var.is_some(),
                NoColor::WhenNonEmpty => var.is_some_and(|v| !v.is_empty()),
            };
            is_terminal && !off
        }
    }
}

pub fn stdout_color() -> bool {
    color_for(std::io::stdout().is_terminal(), NoColor::WhenSet)
}

pub fn stderr_color() -> bool {
    color_for(std::io::stderr().is_terminal(), NoColor::WhenSet)
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

/// Diagnostics of `plan` and `apply` go to stderr as text (stdout is the plan's).
pub(crate) fn show_diagnostics(diags: &[crate::config::Diagnostic]) {
    if !diags.is_empty() {
        anstream::eprint!(
            "{}",
            crate::config::render(diags, crate::config::DiagnosticFormat::Text, stderr_color())
        );
    }
}
