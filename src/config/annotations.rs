//! Diagnostics as GitHub workflow commands: `::error file=…,line=…,col=…::message`, which
//! GitHub Actions turns into annotations on the pull request's changed lines.
//!
//! Built from the same [`Diagnostic`]s as the text and JSON renderings (by
//! `ops::validate` for `--format github`, and by `ops::ci` on stderr for every command
//! that shows diagnostics); escaped exactly as GitHub's own toolkit (`@actions/core`,
//! `command.ts`) escapes a command's message and properties. Files are named relative to
//! the repository root ([`RepoPaths`]), which is what GitHub matches against the diff.
//! Whether to write them is [`Annotations`], an option type of the core (defined with
//! the other ones in `diagnostic`; the CLI maps `--annotations` onto it).

use super::diagnostic::{Diagnostic, RepoPaths, Severity, regions};

pub use super::diagnostic::Annotations;

/// A command's message, escaped as the toolkit's `escapeData`.
pub fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A command's property value, escaped as the toolkit's `escapeProperty`: the message's
/// escapes, and `:` and `,`, which separate properties.
pub fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// One workflow command, as the toolkit's `issueCommand` writes it.
fn command(name: &str, properties: &[(&str, String)], message: &str) -> String {
    let mut out = format!("::{name}");
    for (i, (key, value)) in properties.iter().enumerate() {
        out.push(if i == 0 { ' ' } else { ',' });
        out.push_str(key);
        out.push('=');
        out.push_str(&escape_property(value));
    }
    out.push_str("::");
    out.push_str(&escape_data(message));
    out
}

/// Every diagnostic as one `::error` / `::warning` line: the file (relative to the
/// repository root), its line and column and the end of the token there, the rule code
/// as the title, and the message with its `help:` line.
pub fn render(diags: &[Diagnostic], paths: &RepoPaths) -> String {
    let mut out = String::new();
    for (d, region) in diags.iter().zip(regions(diags)) {
        let mut props: Vec<(&str, String)> = Vec::new();
        if !d.file.as_os_str().is_empty() {
            props.push(("file", paths.display(&d.file)));
        }
        if let Some(r) = region {
            props.push(("line", r.line.to_string()));
            props.push(("col", r.column.to_string()));
            if let Some((end_line, end_column)) = r.end {
                props.push(("endLine", end_line.to_string()));
                props.push(("endColumn", end_column.to_string()));
            }
        }
        props.push(("title", d.rule.as_str().to_owned()));
        let mut message = d.message.clone();
        if !d.help.is_empty() {
            message.push_str("\nhelp: ");
            message.push_str(&d.help);
        }
        let name = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        out.push_str(&command(name, &props, &message));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::rules::RuleCode;

    #[test]
    fn escaping_is_the_toolkits() {
        assert_eq!(escape_data("100% done\r\nnext"), "100%25 done%0D%0Anext");
        assert_eq!(escape_data("a: b, c"), "a: b, c");
        assert_eq!(
            escape_property("C:\\dir\\a,b.yaml\n%"),
            "C%3A\\dir\\a%2Cb.yaml%0A%25"
        );
        // `%` first: an escape is never escaped again.
        assert_eq!(escape_property("%3A:"), "%253A%3A");
    }

    #[test]
    fn a_diagnostic_becomes_one_command_with_its_place_title_and_help() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a,b:c.yaml");
        std::fs::write(&f, "representatives:\n  - login: x@y.example\n").unwrap();
        let mut d = Diagnostic {
            severity: Severity::Warning,
            rule: RuleCode::FeatureWithoutPortal,
            file: f.clone(),
            line: 2,
            column: 12,
            message: "100% sure: `x`".into(),
            help: "add it, or not".into(),
            object: None,
        };
        let paths = RepoPaths::new(Some(dir.path().to_path_buf()), dir.path().to_path_buf());
        assert_eq!(
            render(std::slice::from_ref(&d), &paths),
            "::warning file=a%2Cb%3Ac.yaml,line=2,col=12,endLine=2,endColumn=22,\
             title=feature-without-portal::100%25 sure: `x`%0Ahelp: add it, or not\n"
        );
        d.severity = Severity::Error;
        d.file = Default::default();
        d.line = 0;
        d.column = 0;
        d.help.clear();
        assert_eq!(
            render(&[d], &paths),
            "::error title=feature-without-portal::100%25 sure: `x`\n"
        );
        assert!(Annotations::Auto.enabled(true) && !Annotations::Auto.enabled(false));
        assert!(Annotations::Always.enabled(false) && !Annotations::Never.enabled(true));
    }
}
