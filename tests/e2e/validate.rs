//! `roster validate` and `roster schema`, through the real binary.
//!
//! Every file under `examples/invalid/` is run on its own: the rule code must appear at
//! the exact line:column (and the exit code must be 3, invalid, or 0 for the `warn-*` files).
//! Snapshots pin the plain rendering and the JSON document. Runs from the crate root
//! with relative paths, `NO_COLOR=1` and a pipe, so output is stable.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

fn roster() -> Command {
    let mut c = Command::cargo_bin("roster").expect("the roster binary is built");
    c.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .env_remove("GITHUB_ACTIONS")
        .env_remove("ROSTER_ANNOTATIONS")
        .env_remove("ROSTER_ENDPOINT")
        .env_remove("RUST_LOG");
    c
}

struct Run {
    code: i32,
    stdout: String,
}

fn validate(args: &[&str]) -> Run {
    let out = roster().arg("validate").args(args).output().expect("runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
    }
}

/// (file, exit code, expected severity[code] at line:col).
const CASES: &[(&str, i32, &str, usize, usize)] = &[
    ("admin-without-name.yaml", 3, "error[schema]", 5, 5),
    ("bad-email.yaml", 3, "error[schema]", 4, 12),
    ("bad-multisession.yaml", 3, "error[schema]", 7, 19),
    ("billion-laughs.yaml", 3, "error[input-limit]", 8, 8),
    ("duplicate-key.yaml", 3, "error[duplicate-key]", 7, 5),
    ("empty.yaml", 3, "error[empty-file]", 1, 1),
    ("grantable-feature.yaml", 3, "error[unknown-value]", 6, 38),
    ("malformed.yaml", 3, "error[yaml-syntax]", 5, 15),
    (
        "multisession-in-features.yaml",
        3,
        "error[unknown-value]",
        7,
        16,
    ),
    ("non-utf8.yaml", 3, "error[input-limit]", 3, 14),
    ("portal-feature.yaml", 3, "error[unknown-value]", 4, 33),
    (
        "rule1-feature-requires.yaml",
        3,
        "error[feature-requires]",
        7,
        16,
    ),
    (
        "rule1-grantable-requires.yaml",
        3,
        "error[feature-requires]",
        6,
        38,
    ),
    (
        "rule1-team-right-requires.yaml",
        3,
        "error[feature-requires]",
        6,
        43,
    ),
    (
        "rule2-admin-manager.yaml",
        3,
        "error[login-collision]",
        7,
        12,
    ),
    ("rule2-collision.yaml", 3, "error[login-collision]", 9, 12),
    ("rule2-duplicate-login.yaml", 3, "error[duplicate]", 7, 12),
    ("rule2-manager-login.yaml", 3, "error[manager-login]", 3, 12),
    (
        "rule3-campaign.yaml",
        3,
        "error[unresolved-reference]",
        4,
        23,
    ),
    (
        "rule3-contact-group.yaml",
        3,
        "error[unresolved-reference]",
        5,
        7,
    ),
    ("rule3-leader.yaml", 3, "error[leader-not-member]", 7, 13),
    (
        "rule3-unresolved-portal.yaml",
        3,
        "error[unresolved-reference]",
        7,
        15,
    ),
    (
        "rule3-unresolved-team.yaml",
        3,
        "error[unresolved-reference]",
        11,
        11,
    ),
    ("rule8-plaintext-password.yaml", 3, "error[secret]", 6, 15),
    ("rule8-two-sources.yaml", 3, "error[secret]", 6, 15),
    ("team-name-slash.yaml", 3, "error[schema]", 3, 11),
    ("unknown-key.yaml", 3, "error[unknown-key]", 7, 5),
    ("unknown-right.yaml", 3, "error[unknown-value]", 6, 43),
    ("unknown-section.yaml", 3, "error[unknown-key]", 2, 1),
    ("username-shape.yaml", 3, "error[schema]", 11, 15),
    ("version.yaml", 3, "error[version]", 2, 10),
    (
        "warn-inactive-team.yaml",
        0,
        "warning[inactive-team]",
        10,
        11,
    ),
    (
        "warn-rule4-feature-without-portal.yaml",
        0,
        "warning[feature-without-portal]",
        10,
        37,
    ),
    (
        "warn-rule7-delete-policy.yaml",
        0,
        "warning[delete-not-allowed]",
        3,
        25,
    ),
    ("wrong-type.yaml", 3, "error[schema]", 4, 24),
];

fn invalid_files() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/invalid");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("examples/invalid exists")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn every_invalid_example_reports_its_rule_at_the_exact_place() {
    for (file, code, what, line, col) in CASES {
        let path = format!("examples/invalid/{file}");
        let run = validate(&[&path]);
        assert_eq!(run.code, *code, "{file}: exit code\n{}", run.stdout);
        let expected = format!("{path}:{line}:{col}: {what}:");
        assert!(
            run.stdout.lines().any(|l| l.starts_with(&expected)),
            "{file}: expected a line starting with `{expected}`, got:\n{}",
            run.stdout
        );
    }
}

#[test]
fn every_example_file_is_covered_and_starts_with_the_schema_comment() {
    let covered: Vec<&str> = CASES.iter().map(|c| c.0).collect();
    for name in invalid_files() {
        assert!(covered.contains(&name.as_str()), "{name} has no test case");
        let bytes = std::fs::read(Path::new("examples/invalid").join(&name))
            .or_else(|_| {
                std::fs::read(
                    Path::new(env!("CARGO_MANIFEST_DIR"))
                        .join("examples/invalid")
                        .join(&name),
                )
            })
            .expect("readable");
        assert!(
            bytes
                .starts_with(b"# yaml-language-server: $schema=../../schemas/roster.schema.json\n"),
            "{name} lacks the schema comment"
        );
    }
}

#[test]
fn plain_diagnostics_snapshot() {
    let mut all = String::new();
    for name in invalid_files() {
        let run = validate(&[&format!("examples/invalid/{name}")]);
        all.push_str(&format!("== {name} (exit {})\n{}", run.code, run.stdout));
    }
    insta::assert_snapshot!("plain_diagnostics", all);
}

#[test]
fn json_diagnostics_snapshot() {
    let run = validate(&[
        "--format",
        "json",
        "examples/invalid/rule2-collision.yaml",
        "examples/invalid/rule3-campaign.yaml",
        "examples/invalid/warn-rule4-feature-without-portal.yaml",
    ]);
    assert_eq!(run.code, 3);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("valid JSON");
    assert_eq!(v["valid"], false);
    assert_eq!(v["errors"], 2);
    insta::assert_snapshot!("json_diagnostics", run.stdout);
}

#[test]
fn a_plain_password_never_appears_in_any_output() {
    let secret = "correct-horse-battery-staple";
    let file = "examples/invalid/rule8-plaintext-password.yaml";
    for args in [
        vec!["validate", file],
        vec!["--color", "always", "validate", file],
        vec!["validate", "--format", "json", file],
    ] {
        let out = roster().args(&args).output().expect("runs");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(3));
        assert!(text.contains("secret"), "{args:?}: {text}");
        assert!(
            !text.contains(secret),
            "{args:?} printed the password:\n{text}"
        );
    }
}

#[test]
fn terminal_rendering_shows_a_snippet() {
    let out = roster()
        .args([
            "--color",
            "always",
            "validate",
            "examples/invalid/unknown-right.yaml",
        ])
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("team_rights: [manage_representatives, sesion_replay]"),
        "{text}"
    );
    assert!(text.contains("did you mean `session_replay`?"), "{text}");
}

#[test]
fn valid_multi_file_directory_exits_zero() {
    let run = validate(&["tests/fixtures/valid"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(run.stdout, "valid: 10 objects declared, 0 warnings\n");
    let json = validate(&["--format", "json", "tests/fixtures/valid"]);
    assert_eq!(json.code, 0);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).expect("valid JSON");
    assert_eq!(v["valid"], true);
}

#[test]
fn seats_flag_checks_rule_5() {
    let run = validate(&["--seats", "1", "tests/fixtures/valid"]);
    assert_eq!(run.code, 3, "{}", run.stdout);
    assert!(
        run.stdout
            .contains("error[seats]: 2 operators (active representatives with support management) exceed the 1 licensed seats"),
        "{}",
        run.stdout
    );
    assert_eq!(validate(&["--seats", "2", "tests/fixtures/valid"]).code, 0);
}

#[test]
fn library_load_fills_usernames_paths_origins_and_sections() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/valid");
    let loaded = roster::config::load(&[dir]).expect("valid");
    let d = loaded.desired;
    let names: Vec<(&str, &str)> = d
        .org
        .representatives
        .values()
        .map(|r| (r.login.as_str(), r.username.as_deref().unwrap_or("")))
        .collect();
    assert_eq!(
        names,
        vec![
            ("jane.doe@acme.example", "jdoe"),
            ("jdoe@acme.example", "jdoe2"),
            ("lech@acme.example", "lwalesa"),
        ]
    );
    assert!(d.org.teams.contains_key("Europe/Paris"));
    assert_eq!(
        d.org.teams["Europe/Paris"].leader.as_deref(),
        Some("jdoe@acme.example")
    );
    let id = roster::model::ObjectId::new(roster::model::Kind::Team, "Europe/Paris");
    assert_eq!(d.origins[&id].pointer, "/teams/0/teams/0");
    assert!(d.sections.contains(&roster::model::Kind::ContactGroup));
    assert!(!d.sections.contains(&roster::model::Kind::Administrator));
    assert_eq!(
        d.policy.representatives.unmanaged,
        roster::model::Unmanaged::Warn
    );
    assert!(
        d.org.contact_groups["key-accounts"]
            .shared_with
            .contains_key("marie@acme.example")
    );
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(&p, text).expect("write");
    p
}

#[test]
fn an_object_declared_in_two_files_is_reported_at_the_later_naming_the_earlier() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let rep = "representatives:\n  - login: jdoe@acme.example\n    email: jdoe@acme.example\n    first_name: John\n    last_name: Doe\n";
    write(tmp.path(), "a.yaml", rep);
    write(tmp.path(), "sub/b.yaml", &format!("# comment\n{rep}"));
    write(tmp.path(), "c.yaml", "policy: {}\n");
    write(tmp.path(), "d.yml", "policy: {}\n");
    write(tmp.path(), "ignored.txt", "not yaml");
    let out = roster()
        .current_dir(tmp.path())
        .args(["validate", "."])
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(
        text.contains(
            "./sub/b.yaml:3:12: error[duplicate]: representative `jdoe@acme.example` is declared twice (the other is at ./a.yaml:2:12)"
        ),
        "{text}"
    );
    assert!(
        text.contains("./d.yml:1:1: error[duplicate]: the `policy` section is declared twice (the other is at ./c.yaml:1:1)"),
        "{text}"
    );
}

#[test]
fn missing_path_is_unreadable() {
    let run = validate(&["examples/does-not-exist.yaml"]);
    assert_eq!(run.code, 3);
    assert!(
        run.stdout
            .starts_with("examples/does-not-exist.yaml:1:1: error[unreadable]: cannot read"),
        "{}",
        run.stdout
    );
}

#[test]
fn all_problems_of_a_run_are_reported_sorted() {
    let tmp = tempfile::tempdir().expect("tempdir");
    write(
        tmp.path(),
        "a.yaml",
        "representatives:\n  - login: a@x.example\n    email: a@x.example\n    first_name: A\n    last_name: B\n    langauge: fr\n    features: [reports]\n    team: Nowhere\n",
    );
    write(tmp.path(), "b.yaml", "version: 3\n");
    let out = roster()
        .current_dir(tmp.path())
        .args(["validate", "a.yaml", "b.yaml"])
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let codes: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with("  ") && l.contains(": error["))
        .collect();
    assert_eq!(codes.len(), 4, "{text}");
    assert!(
        codes[0].starts_with("a.yaml:6:5: error[unknown-key]"),
        "{text}"
    );
    assert!(
        codes[1].starts_with("a.yaml:7:16: error[feature-requires]"),
        "{text}"
    );
    assert!(
        codes[2].starts_with("a.yaml:8:11: error[unresolved-reference]"),
        "{text}"
    );
    assert!(
        codes[3].starts_with("b.yaml:1:10: error[version]"),
        "{text}"
    );
}

#[test]
fn schema_command_prints_the_checked_in_file() {
    let out = roster().arg("schema").output().expect("runs");
    assert_eq!(out.status.code(), Some(0));
    let checked_in =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/roster.schema.json"))
            .expect("schemas/roster.schema.json exists");
    assert!(
        out.stdout == checked_in,
        "`roster schema` differs from schemas/roster.schema.json: regenerate it with \
         `roster schema > schemas/roster.schema.json`"
    );
    assert!(checked_in.ends_with(b"}\n"));
    let plan = roster()
        .args(["schema", "--kind", "plan"])
        .output()
        .expect("runs");
    assert_eq!(plan.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&plan.stdout).expect("JSON");
    assert_eq!(v["$schema"], "https://json-schema.org/draft/2020-12/schema");
    let openapi = roster()
        .args(["schema", "--kind", "openapi"])
        .output()
        .expect("runs");
    assert_eq!(openapi.status.code(), Some(0));
    let checked_in_openapi =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/openapi.json"))
            .expect("schemas/openapi.json is checked in");
    assert!(
        openapi.stdout == checked_in_openapi,
        "`roster schema --kind openapi` differs from schemas/openapi.json"
    );
}

#[test]
fn every_schema_property_has_a_description() {
    let v: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/roster.schema.json"),
        )
        .expect("read"),
    )
    .expect("JSON");
    let mut missing = Vec::new();
    fn walk(
        v: &serde_json::Value,
        path: &str,
        root: &serde_json::Value,
        missing: &mut Vec<String>,
    ) {
        if let Some(props) = v.get("properties").and_then(|p| p.as_object()) {
            for (k, p) in props {
                let described = p.get("description").is_some()
                    || p.get("$ref")
                        .and_then(|r| r.as_str())
                        .and_then(|r| root.pointer(r.trim_start_matches('#')))
                        .is_some_and(|t| t.get("description").is_some());
                if !described {
                    missing.push(format!("{path}/{k}"));
                }
            }
        }
        if let Some(defs) = v.get("$defs").and_then(|d| d.as_object()) {
            for (k, d) in defs {
                walk(d, &format!("$defs/{k}"), root, missing);
            }
        }
    }
    walk(&v, "", &v, &mut missing);
    assert!(
        missing.is_empty(),
        "properties without a description: {missing:?}"
    );
}

#[test]
fn library_load_records_which_usernames_the_yaml_writes() {
    let dir = tempfile::tempdir().unwrap();
    let rep = |login: &str, extra: &str| {
        format!(
            "  - login: {login}\n    email: {login}\n    first_name: Jo\n    last_name: Doe\n{extra}"
        )
    };
    let text = format!(
        "representatives:\n{}{}",
        rep("a@acme.example", ""),
        rep("b@acme.example", "    username: Boss\n")
    );
    std::fs::write(dir.path().join("people.yaml"), text).unwrap();
    let d = roster::config::load(&[dir.path().to_path_buf()])
        .expect("valid")
        .desired;
    let declared: Vec<&str> = d.declared_usernames.iter().map(String::as_str).collect();
    assert_eq!(declared, ["b@acme.example"]);
    assert_eq!(
        d.org.representatives["a@acme.example"].username.as_deref(),
        Some("jdoe")
    );
    assert_eq!(
        d.org.representatives["b@acme.example"].username.as_deref(),
        Some("Boss")
    );
}
