//! Diagnostics: one problem at one file:line:column, and their renderings.
//!
//! Built by the loader and the rules (and, through [`super::diagnostic_for`], by `plan`
//! for plan-time rules); rendered by [`render`] for `roster validate`, `plan` and `apply`:
//! a source snippet on a terminal (miette's graphical handler), one plain line per
//! problem on a pipe, or JSON for machines. A snippet never shows the value of a
//! `password` key, whatever it holds. The choice between text and JSON is
//! [`DiagnosticFormat`], defined here (not in `cli`) so that the core needs no clap type.
//!
//! For CI systems the same diagnostics are also rendered as GitHub workflow commands
//! ([`super::annotations`]) and as SARIF ([`super::sarif`]); both name files relative to
//! the repository root ([`RepoPaths`]) and mark the token at the diagnostic's place
//! ([`regions`], the token a terminal snippet underlines). [`CiOutput`] and
//! [`ValidateFormat`] are their option types.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::model::ObjectId;
use crate::model::rules::RuleCode;

use super::yaml;

/// How diagnostics (and apply's report) are written: text for people (snippets on a
/// terminal, plain lines on a pipe), JSON for machines. The CLI's `--format` maps onto it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DiagnosticFormat {
    #[default]
    Text,
    Json,
}

/// `roster validate --format`: the two formats of [`DiagnosticFormat`], and the CI
/// renderings that only `validate` prints on stdout (`plan` and `apply` add them on
/// stderr or in a file, through [`CiOutput`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ValidateFormat {
    #[default]
    Text,
    Json,
    /// GitHub workflow commands only (`::error file=…::…`).
    Github,
    /// A SARIF 2.1.0 log.
    Sarif,
}

/// When to write GitHub annotations besides the normal output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Annotations {
    /// Only under GitHub Actions (`GITHUB_ACTIONS=true`).
    #[default]
    Auto,
    Always,
    Never,
}

impl Annotations {
    /// Whether annotations are written, given whether the run is under GitHub Actions.
    pub fn enabled(self, github_actions: bool) -> bool {
        match self {
            Annotations::Auto => github_actions,
            Annotations::Always => true,
            Annotations::Never => false,
        }
    }
}

/// The CI renderings a command writes besides its normal output: GitHub annotations on
/// stderr, and a SARIF log into a file (every diagnostic the run showed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CiOutput {
    pub annotations: Annotations,
    pub sarif: Option<PathBuf>,
}

/// How bad a diagnostic is: errors fail validation, warnings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Error,
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One problem. `line` and `column` are 1-based; both are 0 only when the problem has no
/// place in any file (an object that no file declares).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostic {
    pub severity: Severity,
    /// The stable rule code (`unknown-key`, `feature-requires`, …).
    #[serde(rename = "code")]
    pub rule: RuleCode,
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
    pub help: String,
    /// The object concerned, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<ObjectId>,
}

impl Diagnostic {
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// `file:line:col`, or just the file when there is no line.
    pub fn place(&self) -> String {
        if self.line == 0 {
            self.file.display().to_string()
        } else {
            format!("{}:{}:{}", self.file.display(), self.line, self.column)
        }
    }

    /// Sort key: file, then line, then column (then code and message, for stability).
    pub(crate) fn sort_key(&self) -> (&Path, usize, usize, RuleCode, &str) {
        (&self.file, self.line, self.column, self.rule, &self.message)
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.file.as_os_str().is_empty() {
            write!(f, "{}: ", self.place())?;
        }
        write!(f, "{}[{}]: {}", self.severity, self.rule, self.message)?;
        if !self.help.is_empty() {
            write!(f, "\n  help: {}", self.help)?;
        }
        Ok(())
    }
}

/// Sorts by file, line, column and removes exact repeats.
pub fn sort(diags: &mut Vec<Diagnostic>) {
    diags.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    diags.dedup_by(|a, b| a.sort_key() == b.sort_key());
}

/// Renders diagnostics. `Text` with `color` draws source snippets (for a terminal);
/// `Text` without `color` is one `file:line:col: severity[code]: message` line per
/// problem plus its `help:` line (for pipes and logs); `Json` is a document
/// `{ "valid", "errors", "warnings", "diagnostics": [...] }`.
pub fn render(diags: &[Diagnostic], format: DiagnosticFormat, color: bool) -> String {
    let errors = diags.iter().filter(|d| d.is_error()).count();
    let warnings = diags.len() - errors;
    match format {
        DiagnosticFormat::Json => {
            let doc = serde_json::json!({
                "valid": errors == 0,
                "errors": errors,
                "warnings": warnings,
                "diagnostics": diags,
            });
            let mut s = serde_json::to_string_pretty(&doc).unwrap_or_default();
            s.push('\n');
            s
        }
        DiagnosticFormat::Text if color => render_fancy(diags),
        DiagnosticFormat::Text => {
            let mut s = String::new();
            for d in diags {
                s.push_str(&d.to_string());
                s.push('\n');
            }
            s
        }
    }
}

/// A file's text prepared for snippets: passwords masked.
struct Source {
    text: String,
    line_starts: Vec<usize>,
}

impl Source {
    fn load(file: &Path) -> Option<Source> {
        let bytes = std::fs::read(file).ok()?;
        if bytes.len() > super::MAX_FILE_BYTES {
            return None;
        }
        let text = String::from_utf8(bytes).ok()?;
        let located = yaml::locate_many(&text, &[], true);
        // Span masking handles valid YAML exactly; the line heuristic also covers text
        // that does not parse.
        let text = yaml::mask_password_lines(&yaml::mask(&text, &located.password_spans));
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Some(Source { text, line_starts })
    }

    /// Byte offset and length of the token at a 1-based line and character column.
    fn span(&self, line: usize, column: usize) -> Option<(usize, usize)> {
        let start = *self.line_starts.get(line.checked_sub(1)?)?;
        let rest = &self.text[start..];
        let line_text = rest.split('\n').next().unwrap_or("");
        let offset: usize = line_text
            .chars()
            .take(column.saturating_sub(1))
            .map(char::len_utf8)
            .sum();
        let token = &line_text[offset..];
        let len: usize = token
            .chars()
            .take_while(|c| !matches!(c, ':' | ',' | ']' | '}' | '#') && !c.is_whitespace())
            .map(char::len_utf8)
            .sum();
        Some((start + offset, len.max(1).min(token.len().max(1))))
    }
}

impl Source {
    /// How many characters the token at a 1-based line and column spans, when there is
    /// one (not past the end of the line).
    fn token_width(&self, line: usize, column: usize) -> Option<usize> {
        let (offset, len) = self.span(line, column)?;
        let token = self.text.get(offset..offset + len)?;
        let width = token
            .chars()
            .take_while(|c| *c != '\n' && *c != '\r')
            .count();
        (width > 0).then_some(width)
    }
}

/// A diagnostic's place for the CI renderings: its 1-based line and column and, when
/// the file can be read, the last character of the token there (inclusive, on the same
/// line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    pub line: usize,
    pub column: usize,
    pub end: Option<(usize, usize)>,
}

/// The [`Region`] of each diagnostic (`None` for one with no line), reading each file
/// concerned once.
pub fn regions(diags: &[Diagnostic]) -> Vec<Option<Region>> {
    let mut sources: HashMap<&Path, Option<Source>> = HashMap::new();
    diags
        .iter()
        .map(|d| {
            if d.line == 0 || d.file.as_os_str().is_empty() {
                return None;
            }
            let src = sources
                .entry(d.file.as_path())
                .or_insert_with(|| Source::load(&d.file));
            let end = src
                .as_ref()
                .and_then(|s| s.token_width(d.line, d.column))
                .map(|w| (d.line, d.column + w - 1));
            Some(Region {
                line: d.line,
                column: d.column,
                end,
            })
        })
        .collect()
}

/// Names diagnostics' files as CI systems expect them: relative to the repository root,
/// with `/` between the parts. The root is `workspace` (GitHub's `GITHUB_WORKSPACE`)
/// when given, else the Git work tree holding the file (the nearest directory above it
/// with a `.git`), else `cwd`. A file outside the root stays as given.
#[derive(Debug, Clone)]
pub struct RepoPaths {
    workspace: Option<PathBuf>,
    cwd: PathBuf,
}

impl RepoPaths {
    pub fn new(workspace: Option<PathBuf>, cwd: PathBuf) -> RepoPaths {
        let real = |p: PathBuf| std::fs::canonicalize(&p).unwrap_or(p);
        let cwd = real(cwd);
        let workspace = workspace.map(|w| real(if w.is_absolute() { w } else { cwd.join(w) }));
        RepoPaths { workspace, cwd }
    }

    /// The file relative to its repository root, `None` when it is outside (or empty).
    pub fn relative(&self, file: &Path) -> Option<String> {
        if file.as_os_str().is_empty() {
            return None;
        }
        let abs = self.absolute(file);
        let root = match &self.workspace {
            Some(w) => w.clone(),
            None => abs
                .parent()
                .and_then(|dir| dir.ancestors().find(|a| a.join(".git").exists()))
                .map(Path::to_path_buf)
                .unwrap_or_else(|| self.cwd.clone()),
        };
        let rel = abs.strip_prefix(&root).ok()?;
        let parts: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        (!parts.is_empty()).then(|| parts.join("/"))
    }

    /// The file relative to its repository root, or as given when outside.
    pub fn display(&self, file: &Path) -> String {
        self.relative(file)
            .unwrap_or_else(|| file.display().to_string())
    }

    /// The file as an absolute path (symbolic links resolved when it exists).
    pub fn absolute(&self, file: &Path) -> PathBuf {
        let joined = if file.is_absolute() {
            file.to_path_buf()
        } else {
            self.cwd.join(file)
        };
        std::fs::canonicalize(&joined).unwrap_or(joined)
    }
}

fn render_fancy(diags: &[Diagnostic]) -> String {
    use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteDiagnostic};
    let handler = GraphicalReportHandler::new_themed(GraphicalTheme::unicode())
        .with_context_lines(2)
        .with_links(false);
    let mut sources: HashMap<&Path, Option<Source>> = HashMap::new();
    let mut out = String::new();
    for d in diags {
        let severity = match d.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        };
        let mut md = MietteDiagnostic::new(d.message.clone())
            .with_code(d.rule.as_str())
            .with_severity(severity);
        if !d.help.is_empty() {
            md = md.with_help(d.help.clone());
        }
        let src = sources
            .entry(d.file.as_path())
            .or_insert_with(|| Source::load(&d.file));
        let name = d.file.display().to_string();
        let rendered = match src
            .as_ref()
            .and_then(|s| Some((s, s.span(d.line, d.column)?)))
        {
            Some((s, (offset, len))) => {
                let md = md.with_label(LabeledSpan::at(offset..offset + len, "here"));
                let report = miette::Report::new(md)
                    .with_source_code(miette::NamedSource::new(name, s.text.clone()));
                let mut buf = String::new();
                handler
                    .render_report(&mut buf, report.as_ref())
                    .map(|()| buf)
                    .ok()
            }
            None => {
                let mut buf = String::new();
                if !d.file.as_os_str().is_empty() {
                    buf.push_str(&format!("{}\n", d.place()));
                }
                handler.render_report(&mut buf, &md).map(|()| buf).ok()
            }
        };
        out.push_str(&rendered.unwrap_or_else(|| format!("{d}\n")));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diag(file: &str, line: usize, col: usize, sev: Severity) -> Diagnostic {
        Diagnostic {
            severity: sev,
            rule: RuleCode::Schema,
            file: file.into(),
            line,
            column: col,
            message: "bad".into(),
            help: "fix it".into(),
            object: None,
        }
    }

    #[test]
    fn plain_rendering_and_sorting() {
        let mut d = vec![
            diag("b.yaml", 1, 1, Severity::Error),
            diag("a.yaml", 3, 2, Severity::Warning),
            diag("a.yaml", 3, 1, Severity::Error),
        ];
        sort(&mut d);
        let s = render(&d, DiagnosticFormat::Text, false);
        assert_eq!(
            s,
            "a.yaml:3:1: error[schema]: bad\n  help: fix it\n\
             a.yaml:3:2: warning[schema]: bad\n  help: fix it\n\
             b.yaml:1:1: error[schema]: bad\n  help: fix it\n"
        );
    }

    #[test]
    fn json_rendering_counts() {
        let d = vec![diag("a.yaml", 1, 1, Severity::Warning)];
        let v: serde_json::Value =
            serde_json::from_str(&render(&d, DiagnosticFormat::Json, false)).unwrap();
        assert_eq!(v["valid"], true);
        assert_eq!(v["warnings"], 1);
        assert_eq!(v["diagnostics"][0]["code"], "schema");
    }

    #[test]
    fn regions_end_at_the_token_and_paths_are_relative_to_the_git_root() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        std::fs::create_dir_all(repo.join(".git")).unwrap();
        std::fs::create_dir_all(repo.join("org/sub")).unwrap();
        let f = repo.join("org/sub/r.yaml");
        std::fs::write(&f, "teams:\n  - name: Paris # here\n").unwrap();
        let d = diag(f.to_str().unwrap(), 2, 11, Severity::Error);
        let r = regions(std::slice::from_ref(&d))[0].unwrap();
        assert_eq!((r.line, r.column, r.end), (2, 11, Some((2, 15))));
        let past_the_end = diag(f.to_str().unwrap(), 2, 40, Severity::Error);
        assert_eq!(regions(&[past_the_end])[0].unwrap().end, None);
        assert_eq!(regions(&[diag("", 0, 0, Severity::Error)])[0], None);

        // From anywhere inside the work tree, and for a relative path too.
        let paths = RepoPaths::new(None, repo.join("org"));
        assert_eq!(paths.relative(&f).as_deref(), Some("org/sub/r.yaml"));
        assert_eq!(
            paths.relative(Path::new("sub/r.yaml")).as_deref(),
            Some("org/sub/r.yaml")
        );
        // A workspace wins over the Git root; a file outside it stays as given.
        let ws = RepoPaths::new(Some(repo.join("org")), dir.path().to_path_buf());
        assert_eq!(ws.relative(&f).as_deref(), Some("sub/r.yaml"));
        let outside = dir.path().join("elsewhere.yaml");
        assert_eq!(ws.relative(&outside), None);
        assert_eq!(ws.display(&outside), outside.display().to_string());
        // No Git work tree: relative to the current directory.
        let plain = dir.path().join("plain");
        std::fs::create_dir_all(&plain).unwrap();
        let paths = RepoPaths::new(None, dir.path().to_path_buf());
        assert_eq!(
            paths.relative(&plain.join("a.yaml")).as_deref(),
            Some("plain/a.yaml")
        );
    }

    #[test]
    fn fancy_snippet_masks_passwords() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("m.yaml");
        std::fs::write(
            &f,
            "managers:\n  - login: m@x.example\n    password: hunter2\n",
        )
        .unwrap();
        let mut d = diag(f.to_str().unwrap(), 3, 15, Severity::Error);
        d.rule = RuleCode::Secret;
        let s = render(&[d], DiagnosticFormat::Text, true);
        assert!(!s.contains("hunter2"), "{s}");
        assert!(s.contains("m@x.example"), "{s}");
    }
}
