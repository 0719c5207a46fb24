//! Diagnostics for CI systems, through the real binary: GitHub workflow commands
//! (`validate --format github`, and on stderr under `GITHUB_ACTIONS=true` or
//! `--annotations always`) and SARIF 2.1.0 (`validate --format sarif`, `--sarif FILE` on
//! validate and plan), for every file of `examples/invalid/` and for a plan a real
//! server refuses. Every SARIF log is checked against the official SARIF 2.1.0 JSON
//! Schema, vendored as `schemas/vendor/sarif-2.1.0.json` (OASIS's
//! `sarif-2.1/schema/sarif-schema-2.1.0.json`; a draft-04 schema).
//!
//! Runs from the crate root with `GITHUB_WORKSPACE` set to it, so that paths are the
//! same relative ones wherever the tests run; the version in SARIF snapshots is
//! redacted.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::support::cli::{Harness, Run, bin};

const HARNESS: Harness = Harness::plain("1");

module_server!();

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `roster ARGS` from the crate root, without colour, outside GitHub Actions unless
/// `env` says so.
fn roster(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .env("GITHUB_WORKSPACE", root())
        .env_remove("GITHUB_ACTIONS")
        .env_remove("ROSTER_ANNOTATIONS")
        .env_remove("ROSTER_ENDPOINT")
        .env_remove("RUST_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("runs roster").into()
}

fn invalid_files() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root().join("examples/invalid"))
        .expect("examples/invalid exists")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn sarif_validator() -> jsonschema::Validator {
    let text = std::fs::read_to_string(root().join("schemas/vendor/sarif-2.1.0.json"))
        .expect("the vendored SARIF schema");
    let schema: Value = serde_json::from_str(&text).expect("the SARIF schema is JSON");
    assert_eq!(
        schema["title"],
        "Static Analysis Results Format (SARIF) Version 2.1.0 JSON Schema"
    );
    jsonschema::draft4::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("the SARIF schema compiles")
}

fn assert_valid_sarif(validator: &jsonschema::Validator, log: &Value, what: &str) {
    let errors: Vec<String> = validator
        .iter_errors(log)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what}: not valid SARIF 2.1.0:\n{errors:#?}"
    );
}

fn parse(run: &Run, what: &str) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{what}: not JSON ({e}):\n{run}"))
}

#[test]
fn github_annotations_snapshot() {
    let mut all = String::new();
    for name in invalid_files() {
        let path = format!("examples/invalid/{name}");
        let run = roster(&["validate", "--format", "github", &path], &[]);
        assert!(
            run.stdout
                .lines()
                .all(|l| l.starts_with("::error file=") || l.starts_with("::warning file=")),
            "{name}: only workflow commands on stdout:\n{run}"
        );
        assert!(
            run.stdout.contains(&format!("file={path},line=")),
            "{name}: {run}"
        );
        assert!(!run.stderr.contains("::"), "{name}: none on stderr:\n{run}");
        all.push_str(&format!("== {name}\n{}", run.stdout));
    }
    insta::assert_snapshot!("github_annotations", all);
}

/// The log with the version that changes from release to release redacted.
fn redacted(mut log: Value) -> Value {
    let driver = &mut log["runs"][0]["tool"]["driver"];
    assert_eq!(driver["version"], env!("CARGO_PKG_VERSION"));
    driver["version"] = "[version]".into();
    driver["semanticVersion"] = "[version]".into();
    log
}

#[test]
fn sarif_snapshot_and_every_log_valid_against_the_official_schema() {
    let validator = sarif_validator();
    let mut results = serde_json::Map::new();
    for name in invalid_files() {
        let path = format!("examples/invalid/{name}");
        let run = roster(&["validate", "--format", "sarif", &path], &[]);
        let log = parse(&run, &name);
        assert_valid_sarif(&validator, &log, &name);
        let run0 = &log["runs"][0];
        let rules = run0["tool"]["driver"]["rules"].as_array().expect("rules");
        let found = run0["results"].as_array().expect("results");
        assert!(!found.is_empty(), "{name}: no result");
        for r in found {
            let index = r["ruleIndex"].as_u64().expect("ruleIndex") as usize;
            assert_eq!(rules[index]["id"], r["ruleId"], "{name}");
            let loc = &r["locations"][0]["physicalLocation"];
            assert_eq!(loc["artifactLocation"]["uri"], path.as_str(), "{name}");
            assert_eq!(loc["artifactLocation"]["uriBaseId"], "%SRCROOT%");
        }
        results.insert(name, run0["results"].clone());
    }
    insta::assert_json_snapshot!("sarif_results", results);

    // One whole log: the tool, its every rule with help and link, the invocation.
    let run = roster(
        &[
            "validate",
            "--format",
            "sarif",
            "examples/invalid/rule1-feature-requires.yaml",
        ],
        &[],
    );
    insta::assert_json_snapshot!("sarif_log", redacted(parse(&run, "rule1")));

    // The validator is not a formality: a log without its version is refused.
    let mut broken = parse(&run, "rule1");
    broken.as_object_mut().unwrap().remove("version");
    assert!(!validator.is_valid(&broken));
}

#[test]
fn sarif_file_is_written_besides_the_normal_output() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("roster.sarif");
    let path = "examples/invalid/warn-rule4-feature-without-portal.yaml";
    let run = roster(&["validate", "--sarif", file.to_str().unwrap(), path], &[]);
    assert!(
        run.stdout.contains("warning[feature-without-portal]"),
        "{run}"
    );
    let log: Value =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("written")).expect("JSON");
    assert_valid_sarif(&sarif_validator(), &log, "--sarif");
    let sarif_stdout = parse(&roster(&["validate", "--format", "sarif", path], &[]), path);
    assert_eq!(log, sarif_stdout);
    assert_eq!(log["runs"][0]["results"][0]["level"], "warning");
}

#[test]
fn under_github_actions_validate_annotates_on_stderr_unless_turned_off() {
    let path = "examples/invalid/rule3-leader.yaml";
    let expected = format!("::error file={path},line=7,col=13,");
    let gha = [("GITHUB_ACTIONS", "true")];

    let on = roster(&["validate", path], &gha);
    assert_ne!(on.code, 0, "{on}");
    assert!(
        on.stderr.lines().any(|l| l.starts_with(&expected)
            && l.contains(",title=leader-not-member::")
            && l.contains("%0Ahelp: ")),
        "{on}"
    );
    // The normal text is unchanged, on stdout.
    assert!(
        on.stdout
            .starts_with(&format!("{path}:7:13: error[leader-not-member]")),
        "{on}"
    );

    for (args, env) in [
        (vec!["validate", "--annotations", "never", path], &gha[..]),
        (
            vec!["validate", path],
            &[("GITHUB_ACTIONS", "true"), ("ROSTER_ANNOTATIONS", "never")][..],
        ),
        (vec!["validate", path], &[][..]),
    ] {
        let off = roster(&args, env);
        assert!(!off.stderr.contains("::error"), "{args:?} {env:?}:\n{off}");
        assert_eq!(off.stdout, on.stdout);
    }

    let always = roster(&["validate", "--annotations", "always", path], &[]);
    assert!(always.stderr.contains(&expected), "{always}");
}

#[test]
fn a_refused_plan_or_apply_is_annotated_and_written_as_valid_sarif() {
    // One licensed seat, two active representatives: rule 5 refuses the plan.
    let server = Server::start(&[]);
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("plan.sarif");
    let before = server.audit().len();
    for command in [&["plan"][..], &["apply", "--auto-approve"][..]] {
        let _ = std::fs::remove_file(&file);
        let mut args = command.to_vec();
        args.extend(["tests/fixtures/valid", "--sarif", file.to_str().unwrap()]);
        let mut cmd = server.base_command(&args, root());
        cmd.env("GITHUB_ACTIONS", "true")
            .env("GITHUB_WORKSPACE", root())
            .env_remove("ROSTER_ANNOTATIONS")
            .env_remove("RUST_LOG");
        let run = server.finish(cmd, &args.join(" "));
        assert_ne!(run.code, 0, "{args:?}: {run}");
        assert!(run.stderr.contains("error[seats]"), "{args:?}: {run}");
        assert!(
            run.stderr
                .lines()
                .any(|l| l.starts_with("::error file=tests/fixtures/valid/")
                    && l.contains(",title=seats::")),
            "{args:?}: {run}"
        );
        let log: Value =
            serde_json::from_str(&std::fs::read_to_string(&file).expect("written")).expect("JSON");
        assert_valid_sarif(&sarif_validator(), &log, &args.join(" "));
        let results = log["runs"][0]["results"].as_array().expect("results");
        assert!(
            results.iter().any(|r| r["ruleId"] == "seats"
                && r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                    .as_str()
                    .is_some_and(|u| u.starts_with("tests/fixtures/valid/"))),
            "{args:?}: {log:#}"
        );
        assert_eq!(
            log["runs"][0]["invocations"][0]["executionSuccessful"],
            true
        );
    }
    assert_eq!(server.audit().len(), before, "nothing was written");
}

#[test]
fn a_live_system_that_cannot_be_read_leaves_a_log_of_an_unsuccessful_run() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("plan.sarif");
    let port = crate::support::cli::free_port();
    let run = roster(
        &[
            "plan",
            "tests/fixtures/valid",
            "--sarif",
            file.to_str().unwrap(),
            "--endpoint",
            &format!("http://127.0.0.1:{port}"),
        ],
        &[("ROSTER_TOKEN", "not-a-token")],
    );
    assert_ne!(run.code, 0, "{run}");
    let log: Value =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("written")).expect("JSON");
    assert_valid_sarif(&sarif_validator(), &log, "unreachable");
    assert_eq!(
        log["runs"][0]["invocations"][0]["executionSuccessful"],
        false
    );
    assert_eq!(log["runs"][0]["results"], serde_json::json!([]));
}

#[test]
fn a_refusal_about_an_undeclared_object_is_placed_at_the_top_of_the_declaration() {
    // A protected representative that the YAML no longer declares, under a policy that
    // would remove it: the refusal names an object no file declares.
    let server = Server::start(&["--seats", "10"]);
    let tmp = tempfile::tempdir().expect("tempdir");
    let decl = tmp.path().join("org");
    std::fs::create_dir_all(&decl).expect("mkdir");
    let yaml = decl.join("org.yaml");
    std::fs::write(
        &yaml,
        "representatives:\n  - login: ann@acme.example\n    email: ann@acme.example\n    \
         first_name: Ann\n    last_name: Smith\n    protect: true\n",
    )
    .expect("write");
    let run = server.finish(
        server.base_command(&["apply", "org", "--auto-approve"], tmp.path()),
        "apply",
    );
    assert_eq!(run.code, 0, "{run}");
    std::fs::write(
        &yaml,
        "policy:\n  representatives: { unmanaged: remove }\nrepresentatives: []\n",
    )
    .expect("write");
    let file = tmp.path().join("plan.sarif");
    let mut cmd = server.base_command(
        &["plan", "org", "--sarif", file.to_str().unwrap()],
        tmp.path(),
    );
    cmd.env("GITHUB_ACTIONS", "true")
        .env("GITHUB_WORKSPACE", tmp.path());
    let run = server.finish(cmd, "plan --sarif");
    assert_ne!(run.code, 0, "{run}");
    assert!(
        run.stderr
            .lines()
            .any(|l| l.starts_with("::error title=protected::")),
        "an annotation with no file:\n{run}"
    );
    let log: Value =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("written")).expect("JSON");
    assert_valid_sarif(&sarif_validator(), &log, "protected");
    let result = &log["runs"][0]["results"][0];
    assert_eq!(result["ruleId"], "protected", "{log:#}");
    assert_eq!(
        result["locations"][0]["physicalLocation"],
        serde_json::json!({
            "artifactLocation": { "uri": "org/org.yaml", "uriBaseId": "%SRCROOT%" },
            "region": { "startLine": 1, "startColumn": 1 },
        })
    );
    assert_eq!(
        result["properties"]["object"],
        "representative/ann@acme.example"
    );
}
