//! Diagnostics as a SARIF 2.1.0 log (OASIS), the format code-scanning services read
//! (GitHub's `github/codeql-action/upload-sarif`, GitLab, Azure DevOps…).
//!
//! One run of the tool `roster`: its rules are the model's whole rule-code catalogue
//! ([`RuleCode::ALL`], with each code's summary, description and a link to the README's
//! rules table), and each diagnostic is one result with its rule, level, message and
//! place: the file relative to the repository root (`uriBaseId` `%SRCROOT%`,
//! [`RepoPaths`]) and the region of the token there ([`regions`]). A diagnostic about an
//! object that no file declares (a protected live object a plan would remove) is placed
//! at the top of the declaration's first file: SARIF allows a result without a
//! location, but GitHub's code scanning refuses the whole log then. Built with
//! `serde_json` (the log is small and fixed in shape; a SARIF object-model crate would
//! add a large generated API for the dozen fields used); `tests/e2e` validates every log
//! against the official schema, vendored as `schemas/vendor/sarif-2.1.0.json`.
//!
//! Called by `ops::validate` (`--format sarif`, `--sarif FILE`) and `ops::ci` (`plan`
//! and `apply --sarif FILE`).

use std::path::Path;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};

use super::diagnostic::{Diagnostic, RepoPaths, Severity, regions};
use crate::model::rules::RuleCode;

/// The schema a log names in `$schema`: SARIF 2.1.0 with its errata, as OASIS publishes it.
pub const SCHEMA_URI: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";

/// roster's home (Cargo.toml's `repository`): the tool's `informationUri`.
pub const INFORMATION_URI: &str = env!("CARGO_PKG_REPOSITORY");

/// Where the rules table is (the README's "Rules" section): every rule's `helpUri`.
pub fn rules_table_uri() -> String {
    format!("{INFORMATION_URI}#rules")
}

/// The characters of a relative path kept as they are in its URI (RFC 3986 unreserved,
/// and `/` between the parts).
const PATH: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// The SARIF log of `diags`. `execution_successful` is false when the command stopped
/// for another reason than its diagnostics (the live system could not be read): a log
/// with no result then does not mean "nothing wrong". `fallback` (the declaration's
/// first file) places the diagnostics that have no file.
pub fn log(
    diags: &[Diagnostic],
    paths: &RepoPaths,
    execution_successful: bool,
    fallback: Option<&Path>,
) -> Value {
    let version = env!("CARGO_PKG_VERSION");
    let help_uri = rules_table_uri();
    let rules: Vec<Value> = RuleCode::ALL
        .iter()
        .map(|code| {
            let level = if code.default_severity_is_warning() {
                "warning"
            } else {
                "error"
            };
            let mut rule = json!({
                "id": code.as_str(),
                "shortDescription": { "text": code.summary() },
                "fullDescription": { "text": code.description() },
                "help": {
                    "text": format!("{} See the rules table: {help_uri}", code.description()),
                },
                "helpUri": help_uri,
                "defaultConfiguration": { "level": level },
            });
            if let Some(n) = code.number() {
                rule["properties"] = json!({ "tags": [format!("rule-{n}")] });
            }
            rule
        })
        .collect();
    let results: Vec<Value> = diags
        .iter()
        .zip(regions(diags))
        .map(|(d, region)| {
            let mut text = d.message.clone();
            if !d.help.is_empty() {
                text.push_str("\nhelp: ");
                text.push_str(&d.help);
            }
            let mut result = json!({
                "ruleId": d.rule.as_str(),
                "ruleIndex": RuleCode::ALL.iter().position(|c| *c == d.rule),
                "level": match d.severity {
                    Severity::Error => "error",
                    Severity::Warning => "warning",
                },
                "message": { "text": text },
            });
            if d.file.as_os_str().is_empty() {
                if let Some(file) = fallback {
                    result["locations"] = json!([{ "physicalLocation": {
                        "artifactLocation": artifact(file, paths),
                        "region": { "startLine": 1, "startColumn": 1 },
                    }}]);
                }
            } else {
                let mut physical = json!({ "artifactLocation": artifact(&d.file, paths) });
                if let Some(r) = region {
                    let mut reg = json!({ "startLine": r.line, "startColumn": r.column });
                    if let Some((end_line, end_column)) = r.end {
                        reg["endLine"] = json!(end_line);
                        // SARIF's end column is the one after the region.
                        reg["endColumn"] = json!(end_column + 1);
                    }
                    physical["region"] = reg;
                }
                result["locations"] = json!([{ "physicalLocation": physical }]);
            }
            if let Some(object) = &d.object {
                result["properties"] = json!({ "object": object.to_string() });
            }
            result
        })
        .collect();
    json!({
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "roster",
                    "version": version,
                    "semanticVersion": version,
                    "informationUri": INFORMATION_URI,
                    "rules": rules,
                }
            },
            "invocations": [{ "executionSuccessful": execution_successful }],
            "columnKind": "unicodeCodePoints",
            "results": results,
        }]
    })
}

/// The log as pretty-printed JSON, ending with a newline.
pub fn render(
    diags: &[Diagnostic],
    paths: &RepoPaths,
    execution_successful: bool,
    fallback: Option<&Path>,
) -> String {
    let log = log(diags, paths, execution_successful, fallback);
    let mut s = serde_json::to_string_pretty(&log).unwrap_or_default();
    s.push('\n');
    s
}

/// A file relative to `%SRCROOT%` (the repository root); one outside it as a `file:` URI.
fn artifact(file: &Path, paths: &RepoPaths) -> Value {
    match paths.relative(file) {
        Some(rel) => json!({
            "uri": utf8_percent_encode(&rel, PATH).to_string(),
            "uriBaseId": "%SRCROOT%",
        }),
        None => {
            let uri = url::Url::from_file_path(paths.absolute(file))
                .map(String::from)
                .unwrap_or_else(|()| {
                    utf8_percent_encode(&file.to_string_lossy(), PATH).to_string()
                });
            json!({ "uri": uri })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_result_names_its_rule_level_place_and_the_catalogue_every_rule() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("my teams.yaml");
        std::fs::write(&f, "teams:\n  - name: Paris\n").unwrap();
        let d = Diagnostic {
            severity: Severity::Error,
            rule: RuleCode::LeaderNotMember,
            file: f.clone(),
            line: 2,
            column: 11,
            message: "not a member".into(),
            help: "add them".into(),
            object: None,
        };
        let paths = RepoPaths::new(Some(dir.path().to_path_buf()), dir.path().to_path_buf());
        let mut undeclared = d.clone();
        undeclared.file = Default::default();
        undeclared.line = 0;
        undeclared.column = 0;
        let log = log(&[d, undeclared], &paths, true, Some(&f));
        let run = &log["runs"][0];
        let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
        assert_eq!(rules.len(), RuleCode::ALL.len());
        let r = &run["results"][0];
        assert_eq!(r["ruleId"], "leader-not-member");
        assert_eq!(
            rules[r["ruleIndex"].as_u64().unwrap() as usize]["id"],
            "leader-not-member"
        );
        assert_eq!(r["level"], "error");
        assert_eq!(r["message"]["text"], "not a member\nhelp: add them");
        let loc = &r["locations"][0]["physicalLocation"];
        assert_eq!(loc["artifactLocation"]["uri"], "my%20teams.yaml");
        assert_eq!(loc["artifactLocation"]["uriBaseId"], "%SRCROOT%");
        assert_eq!(
            loc["region"],
            json!({"startLine": 2, "startColumn": 11, "endLine": 2, "endColumn": 16})
        );
        assert!(rules_table_uri().starts_with("https://") && rules_table_uri().ends_with("#rules"));
        // No file: at the top of the fallback file.
        let top = &run["results"][1]["locations"][0]["physicalLocation"];
        assert_eq!(top["artifactLocation"]["uri"], "my%20teams.yaml");
        assert_eq!(top["region"], json!({"startLine": 1, "startColumn": 1}));
        let failed = super::log(&[], &paths, false, None);
        assert_eq!(failed["runs"][0]["results"], json!([]));
        assert_eq!(
            failed["runs"][0]["invocations"][0]["executionSuccessful"],
            false
        );

        // Outside the root: an absolute file URI, no base.
        let elsewhere = RepoPaths::new(Some(dir.path().join("repo")), dir.path().to_path_buf());
        let a = artifact(&f, &elsewhere);
        assert!(a["uri"].as_str().unwrap().starts_with("file:///"), "{a}");
        assert!(a.get("uriBaseId").is_none());
    }
}
