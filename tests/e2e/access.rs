//! End to end, issue "Who can do what": `roster access` through the real binary — the
//! three formats on `examples/acme` (snapshots), the filters, `--expect` passing and
//! failing with its exit codes (0, 8, and 64 for a malformed one), and `--live` against
//! a real `roster serve` after `apply`, agreeing with the declaration.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::cli::{Harness, Run, bin, wait_output};

const HARNESS: Harness = Harness::plain("100");

module_server!();

fn acme() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/acme")
}

/// `roster access examples/acme ARGS` with no endpoint configured (the declaration only).
fn access(args: &[&str]) -> Run {
    let mut cmd = std::process::Command::new(bin());
    cmd.arg("access")
        .arg(acme())
        .args(args)
        .env_remove("ROSTER_ENDPOINT")
        .env_remove("ROSTER_TOKEN")
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    wait_output(
        cmd.spawn().unwrap(),
        std::time::Duration::from_secs(60),
        "roster access",
    )
    .into()
}

fn json(run: &Run) -> Value {
    assert_eq!(run.code, 0, "{run}");
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {run}"))
}

#[test]
fn text_of_the_acme_example() {
    let run = access(&[]);
    assert_eq!(run.code, 0, "{run}");
    assert!(run.stderr.is_empty(), "{run}");
    insta::assert_snapshot!("access_text", run.stdout);
}

#[test]
fn markdown_of_the_acme_example() {
    let run = access(&["--format", "markdown"]);
    assert_eq!(run.code, 0, "{run}");
    insta::assert_snapshot!("access_markdown", run.stdout);
}

#[test]
fn json_of_the_acme_example_follows_its_schema() {
    let run = access(&["--format", "json"]);
    let v = json(&run);
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/access.schema.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(&v).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");
    // Théo is inactive: nothing in effect, his features listed as without effect.
    let theo = &v["representatives"]["theo.petit@acme.example"];
    assert_eq!(theo["status"], "inactive");
    assert_eq!(theo["features"], serde_json::json!([]));
    insta::assert_json_snapshot!("access_json", v);
}

#[test]
fn filters_keep_a_team_and_its_sub_teams_logins_and_features() {
    let v = json(&access(&["--team", "Europe", "--format", "json"]));
    let reps: Vec<&String> = v["representatives"].as_object().unwrap().keys().collect();
    assert!(!reps.is_empty());
    for (login, r) in v["representatives"].as_object().unwrap() {
        let team = r["team"].as_str().unwrap();
        assert!(
            team == "Europe" || team.starts_with("Europe/"),
            "{login}: {team}"
        );
    }
    assert!(v["representatives"]["camille.martin@acme.example"].is_object());
    let managers: Vec<&String> = v["managers"].as_object().unwrap().keys().collect();
    assert_eq!(
        managers,
        [
            "klaus.becker@acme.example",
            "marie.curie@acme.example",
            "tomasz.kowalski@acme.example"
        ]
    );
    assert_eq!(v["filtered"], true);

    let v = json(&access(&[
        "--feature",
        "*session_replay",
        "--login",
        "*@ACME.example",
        "--format",
        "json",
    ]));
    let features: Vec<&String> = v["features"].as_object().unwrap().keys().collect();
    assert_eq!(features, ["session_replay", "export_session_replay"]);
    assert_eq!(
        v["managers"],
        serde_json::json!({}),
        "no --right: no manager"
    );
    assert_eq!(
        v["features"]["export_session_replay"],
        serde_json::json!(["jurgen.muller@acme.example", "sophie.laurent@acme.example"])
    );

    let v = json(&access(&["--right", "manage_managers", "--format", "json"]));
    let managers: Vec<&String> = v["managers"].as_object().unwrap().keys().collect();
    assert_eq!(managers, ["isabelle.roy@acme.example"]);

    let bad = access(&["--feature", "teleport"]);
    assert_eq!(bad.code, 64, "{bad}");
    assert!(bad.stderr.contains("names no feature"), "{bad}");
}

#[test]
fn expectations_pass_exit_0_and_a_failure_exits_8_naming_who_breaks_it() {
    let ok = access(&[
        "--expect",
        "feature:export_session_replay only-within Support-Tier2,Europe",
        "--expect",
        "session_replay at-most 7",
        "--expect",
        "theo.petit@acme.example lacks file_transfer_send",
        "--expect",
        "jurgen.muller@acme.example holds right:session_replay",
    ]);
    assert_eq!(ok.code, 8, "jurgen is no manager: {ok}");
    assert!(
        ok.stderr
            .contains("jurgen.muller@acme.example does not hold team right session_replay"),
        "{ok}"
    );
    assert_eq!(ok.stderr.lines().count(), 1, "only the failed one: {ok}");
    let ok = access(&[
        "--expect",
        "feature:export_session_replay only-within Support-Tier2,Europe",
        "--expect",
        "session_replay at-most 7",
        "--expect",
        "theo.petit@acme.example lacks file_transfer_send",
    ]);
    assert_eq!(ok.code, 0, "{ok}");
    assert!(ok.stdout.contains("Expectations:"), "{ok}");
    assert!(!ok.stdout.contains("FAILED"), "{ok}");

    // Nobody outside Support-Tier2 holds session replay: false in ACME.
    let bad = access(&[
        "--expect",
        "session_replay only-within Support-Tier2",
        "--expect",
        "reports at-least 1",
        "--format",
        "json",
    ]);
    assert_eq!(bad.code, 8, "{bad}");
    let v: Value = serde_json::from_str(&bad.stdout).unwrap();
    let failed = &v["expectations"][0];
    assert_eq!(failed["ok"], false);
    let breakers: Vec<&str> = failed["breakers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["login"].as_str().unwrap())
        .collect();
    assert!(
        breakers.contains(&"sophie.laurent@acme.example"),
        "{breakers:?}"
    );
    assert!(
        breakers.contains(&"klaus.becker@acme.example"),
        "a manager of Europe too"
    );
    assert!(
        !breakers.contains(&"jurgen.muller@acme.example"),
        "{breakers:?}"
    );
    assert_eq!(v["expectations"][1]["ok"], true);
    assert!(
        bad.stderr
            .contains("error: expectation failed: `session_replay only-within Support-Tier2`")
            && bad.stderr.contains("sophie.laurent@acme.example (Europe)"),
        "{bad}"
    );

    for (expect, says) in [
        (
            "session_replay within Support-Tier2",
            "unknown verb `within`",
        ),
        ("session_replay at-most", "three words"),
        ("session_replay at-most many", "not a count"),
    ] {
        let run = access(&["--expect", expect]);
        assert_eq!(run.code, 64, "{run}");
        assert!(run.stderr.contains(says), "{expect}: {run}");
        assert!(run.stdout.is_empty(), "{run}");
    }
}

#[test]
fn live_access_after_apply_agrees_with_the_declaration() {
    let server = Server::start(&[]);
    let acme = acme();
    let cwd = server.dir.path().to_path_buf();
    let run = server.finish(
        server.base_command(&["apply", acme.to_str().unwrap(), "--auto-approve"], &cwd),
        "apply",
    );
    assert_eq!(run.code, 0, "{run}");
    let live = server.finish(
        server.base_command(&["access", "--live", "--format", "json"], &cwd),
        "access --live",
    );
    let live = json(&live);
    let declared = json(&access(&["--format", "json"]));
    assert_eq!(live["source"], "live");
    assert_eq!(declared["source"], "declaration");
    for key in ["representatives", "managers", "features", "team_rights"] {
        assert_eq!(live[key], declared[key], "{key} differ");
    }
    // The live system also has the server's own administrator.
    let admins: Vec<&str> = live["administrators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(admins.contains(&"helene.fabre@acme.example"), "{admins:?}");
    let paths_and_live = server.finish(
        server.base_command(&["access", acme.to_str().unwrap(), "--live"], &cwd),
        "access PATHS --live",
    );
    assert_eq!(paths_and_live.code, 64, "{paths_and_live}");
}
