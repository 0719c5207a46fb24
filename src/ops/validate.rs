//! `roster validate`: load the declaration, check every rule, print the diagnostics.
//!
//! Input: files/directories from the command line; `--seats N` adds rule 5 without a live
//! system. Output on stdout: every diagnostic (snippets on a terminal, plain lines on a
//! pipe, JSON with `--format json`, GitHub workflow commands with `--format github`, a
//! SARIF log with `--format sarif`) and, in text mode, a one-line summary. Besides,
//! through `ops::ci`: annotations on stderr (`--annotations`; not with `--format
//! github`, which already prints them) and a SARIF log in a file (`--sarif FILE`). Exit 0
//! when valid (warnings allowed), 3 (`Exit::Invalid`) when not.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;

use crate::config::{self, Annotations, CiOutput, Diagnostic, DiagnosticFormat, ValidateFormat};

use super::Exit;
use super::term::{s, stdout_color};

/// `roster validate`'s options.
#[derive(Debug, Clone)]
pub struct Options {
    /// Files or directories of the declaration.
    pub paths: Vec<PathBuf>,
    pub format: ValidateFormat,
    /// Licensed seats, to check rule 5 without a live system.
    pub seats: Option<u32>,
    /// Annotations on stderr and a SARIF log in a file.
    pub ci: CiOutput,
    /// How the declaration is loaded (the parse cache, `--no-cache`).
    pub load: config::LoadOptions,
}

pub fn run(args: Options) -> anyhow::Result<Exit> {
    let mut ci = args.ci.clone();
    if args.format == ValidateFormat::Github {
        ci.annotations = Annotations::Never;
    }
    let paths = args.paths.clone();
    super::ci::with(&ci, &paths, || validate(args))
}

fn validate(args: Options) -> anyhow::Result<Exit> {
    let (mut diags, summary) = match config::load_with(&args.paths, &args.load) {
        Ok(loaded) => {
            let mut diags = loaded.warnings;
            if let Some(seats) = args.seats {
                diags.extend(config::check_seats(&loaded.desired, seats));
            }
            let n = loaded.desired.org.len();
            // The process ends right after: freeing 100,000 objects one by one would only
            // delay the exit.
            std::mem::forget(loaded.desired);
            (diags, format!("{n} object{} declared", s(n)))
        }
        Err(e) => (e.0, String::new()),
    };
    config::diagnostic::sort(&mut diags);
    let errors = diags.iter().filter(|d| d.is_error()).count();
    let warnings = diags.len() - errors;
    super::ci::show(&diags);
    let text = match args.format {
        ValidateFormat::Text => {
            config::render(&diags, DiagnosticFormat::Text, stdout_color())
                + &summary_line(errors, warnings, &summary)
        }
        ValidateFormat::Json => config::render(&diags, DiagnosticFormat::Json, false),
        ValidateFormat::Github => config::annotations::render(&diags, &super::ci::repo_paths()),
        ValidateFormat::Sarif => {
            let first = config::files(&args.paths).into_iter().next();
            config::sarif::render(&diags, &super::ci::repo_paths(), true, first.as_deref())
        }
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("cannot write to stdout")?;
    Ok(if diags.iter().any(Diagnostic::is_error) {
        Exit::Invalid
    } else {
        Exit::Success
    })
}

fn summary_line(errors: usize, warnings: usize, objects: &str) -> String {
    let plural = |n: usize, w: &str| format!("{n} {w}{}", s(n));
    if errors == 0 {
        format!("valid: {objects}, {}\n", plural(warnings, "warning"))
    } else {
        format!(
            "invalid: {}, {}\n",
            plural(errors, "error"),
            plural(warnings, "warning")
        )
    }
}
