//! Declared state: YAML files → a validated [`Desired`] (DESIGN §1, §2).
//!
//! Owns the whole boundary between the user's files and the typed model:
//!
//! - [`yaml`]: saphyr-parser events → `serde_json::Value` (YAML 1.2 core schema, duplicate
//!   keys, alias and size limits), and "locate" mode: a JSON pointer → line:column.
//! - [`schema`]: the JSON Schema generated from [`crate::model::Declaration`] (checked in
//!   as `schemas/roster.schema.json`), compiled once, errors mapped to rule codes.
//! - [`rules`]: the product rules over the merged declaration (the default user names
//!   are `model::usernames`, re-exported there, shared with `plan` and `server`).
//! - [`diagnostic`]: [`Diagnostic`], its renderings (snippet, plain, JSON) and
//!   [`DiagnosticFormat`] (a core type: the CLI maps `--format` onto it).
//! - [`cache`]: the parse cache, each problem-free file's typed contents under
//!   `<state-dir>/cache/parse`, keyed by a digest of its text ([`load_with`]).
//! - [`secrets`]: reading `{env}` / `{file}` password references at plan/apply time.
//! - [`annotations`] and [`sarif`]: the diagnostics for CI systems (GitHub workflow
//!   commands, SARIF 2.1.0), with their option types ([`CiOutput`], [`ValidateFormat`]).
//!
//! Data flow: `ops::validate`/`ops::plan` call [`load`]; the resulting [`Desired`] goes to
//! `plan`. Plan-time rules (seats, non-escalation) come back through [`diagnostic_for`] to
//! be positioned in the user's files.
//!
//! Performance: files are parsed in parallel (`parallel`, an ordered parallel map); a file without problems goes from YAML
//! events straight to typed objects (`fast`), others through a `Value` tree that is dropped
//! once typed. Objects keep only an [`Origin`] (file + JSON pointer). Line and column are
//! computed only for problems, by re-reading the files concerned.

pub mod annotations;
pub mod cache;
pub mod diagnostic;
mod fast;
mod load;
mod parallel;
pub mod rules;
pub mod sarif;
pub mod schema;
pub mod secrets;
pub mod yaml;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::model::rules::RuleCode;
use crate::model::{Desired, ObjectId, Origin};
pub use annotations::Annotations;
pub use cache::CacheStats;
pub use diagnostic::{CiOutput, Diagnostic, DiagnosticFormat, RepoPaths, Severity, ValidateFormat};

/// Largest declaration file accepted (`input-limit` above it).
pub const MAX_FILE_BYTES: usize = 64 << 20;

/// A successfully loaded declaration, with its warnings (rules 4 and 7).
#[derive(Debug)]
pub struct Loaded {
    pub desired: Desired,
    pub warnings: Vec<Diagnostic>,
}

/// Every problem of a failed load, errors and warnings, sorted by file, line, column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn errors(&self) -> usize {
        self.0.iter().filter(|d| d.is_error()).count()
    }
    pub fn warnings(&self) -> usize {
        self.0.len() - self.errors()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (e, w) = (self.errors(), self.warnings());
        write!(
            f,
            "the declaration is not valid: {e} error{}, {w} warning{}",
            crate::model::text::s(e),
            crate::model::text::s(w)
        )?;
        if let Some(first) = self.0.iter().find(|d| d.is_error()) {
            write!(f, "; first: {}: {}", first.place(), first.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// How [`load_with`] loads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// The parse cache's directory ([`cache`]); `None` parses every file.
    pub cache_dir: Option<PathBuf>,
}

impl LoadOptions {
    /// The parse cache under a state directory (`<state-dir>/cache/parse`), or none.
    pub fn state_dir(state_dir: &Path, use_cache: bool) -> Self {
        LoadOptions {
            cache_dir: use_cache.then(|| state_dir.join(cache::SUBDIR)),
        }
    }
}

/// Loads files and directories (every `*.yaml`/`*.yml` below, sorted) into one validated
/// declaration. On any error, returns every problem found (errors and warnings). Parses
/// every file (no cache): see [`load_with`].
pub fn load(paths: &[PathBuf]) -> Result<Loaded, Diagnostics> {
    load::load(paths, &LoadOptions::default())
}

/// [`load`], with options (the parse cache).
pub fn load_with(paths: &[PathBuf], options: &LoadOptions) -> Result<Loaded, Diagnostics> {
    load::load(paths, options)
}

/// The files [`load`] reads for `paths`, in its order (a saved plan records their
/// digest: see `plan::binding`).
pub fn files(paths: &[PathBuf]) -> Vec<PathBuf> {
    load::files(paths)
}

/// Renders diagnostics: see [`diagnostic::render`].
pub fn render(diags: &[Diagnostic], format: DiagnosticFormat, color: bool) -> String {
    diagnostic::render(diags, format, color)
}

/// A diagnostic about a declared object, positioned in its file: `rel_pointer` is relative
/// to the object (`/features`, `/team`, `""` for the object itself). Used for plan-time
/// rules (seats, escalation). An object that no file declares gets an empty file and
/// line/column 0.
pub fn diagnostic_for(
    desired_origins: &BTreeMap<ObjectId, Origin>,
    id: &ObjectId,
    rel_pointer: &str,
    rule: RuleCode,
    message: impl Into<String>,
    help: impl Into<String>,
    severity: Severity,
) -> Diagnostic {
    let finding = rules::Finding {
        severity,
        rule,
        at: rules::At::Object(
            id.clone(),
            rules::Rel::Pointer(rel_pointer.to_owned(), schema::Anchor::Value),
        ),
        message: message.into(),
        help: help.into(),
        related: None,
    };
    let located = load::finding_to_pending(finding.clone(), desired_origins)
        .and_then(|p| load::resolve(vec![p]).pop());
    match located {
        Some(d) => d,
        None => Diagnostic {
            severity,
            rule,
            file: PathBuf::new(),
            line: 0,
            column: 0,
            message: finding.message,
            help: finding.help,
            object: Some(id.clone()),
        },
    }
}

/// Rule 5 without a live system (`validate --seats N`): an error when the declaration has
/// more active representatives than `seats`.
pub fn check_seats(desired: &Desired, seats: u32) -> Option<Diagnostic> {
    let f = rules::check_seats(&desired.org, seats)?;
    let p = load::finding_to_pending(f, &desired.origins)?;
    load::resolve(vec![p]).pop()
}

/// Line and column (1-based) of the value at a JSON pointer in a file; for a pointer that
/// does not exist, of its nearest existing ancestor. `None` when the file cannot be read.
pub fn locate(file: &Path, pointer: &str) -> Option<(usize, usize)> {
    locate_node(file, pointer).map(|n| n.value)
}

/// Line and column (1-based) of the key of the mapping member at a JSON pointer (for an
/// unknown key); the value's position for a list element.
pub fn locate_key(file: &Path, pointer: &str) -> Option<(usize, usize)> {
    locate_node(file, pointer).map(|n| n.key.unwrap_or(n.value))
}

fn locate_node(file: &Path, pointer: &str) -> Option<yaml::NodePos> {
    let text = load::read_text(file).ok()?;
    let t = yaml::Target::Pointer(pointer.to_owned());
    yaml::locate_many(&text, std::slice::from_ref(&t), false)
        .found
        .remove(&t)
}
