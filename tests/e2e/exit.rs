//! End to end, issue 12 "Pull requests and CI pipelines": the exit codes a pipeline
//! branches on (one test per row of README "Exit codes", `ops::Exit`), a plan that
//! safety rules block, still shown whole in every format while nothing is written, and
//! the Markdown plan where reviewers read it (its root marker, the job summary). The
//! real `roster` binary against a real `roster serve` on a free loopback port; every
//! command and wait is bounded.
//!
//! The harness (server, commands, HTTP) is shared: tests/e2e/support/cli.rs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::cli::{Harness, PAUSE, Paused, Run, bin, declaration, free_port, wait_output};
use serde_json::{Value, json};

/// Longest any single command may run.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

const HARNESS: Harness = Harness::plain("100");

module_server!();

impl Server {
    fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut cmd = self.base_command(args, self.dir.path());
        cmd.env_remove("RUST_LOG").env_remove("GITHUB_STEP_SUMMARY");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }

    fn run(&self, args: &[&str]) -> Run {
        self.run_env(args, &[])
    }

    fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        self.finish(self.command(args, env), &args.join(" "))
    }

    /// Runs `roster ARGS` in `cwd` with extra environment variables.
    fn run_in(&self, cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = self.command(args, env);
        cmd.current_dir(cwd);
        self.finish(cmd, &args.join(" "))
    }

    fn writes(&self) -> usize {
        self.audit().len()
    }
}

/// Two representatives of one team; Ann is protected, and undeclared representatives
/// are removed.
const DECLARED: &str = r#"version: 1
policy:
  representatives: { unmanaged: remove }
teams:
  - name: Support
representatives:
  - login: ann@acme.example
    email: ann@acme.example
    first_name: Ann
    last_name: Lee
    team: Support
    language: en
    protect: true
  - login: bob@acme.example
    email: bob@acme.example
    first_name: Bob
    last_name: Stone
    team: Support
    language: en
"#;

/// [`DECLARED`] without Ann (so the plan would deactivate her, which `protect` refuses)
/// and with Bob's language changed.
fn blocked_yaml() -> String {
    let (head, rest) = DECLARED.split_once("  - login: ann@acme.example").unwrap();
    let (_, bob) = rest.split_once("  - login: bob@acme.example").unwrap();
    format!("{head}  - login: bob@acme.example{bob}").replace("language: en", "language: fr")
}

/// A server holding [`DECLARED`], and a temporary directory with it.
fn applied() -> (Server, tempfile::TempDir, PathBuf) {
    let server = Server::start(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let decl = declaration(tmp.path(), "declared", DECLARED);
    let run = server.run(&["apply", decl.to_str().unwrap(), "--auto-approve"]);
    assert_eq!(run.code, 0, "{run}");
    (server, tmp, decl)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn exit_0_and_2_no_changes_and_changes_for_plan_and_apply_with_detailed_exitcode() {
    let server = Server::start(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let decl = declaration(tmp.path(), "declared", DECLARED);
    let run = server.run(&["plan", s(&decl)]);
    assert_eq!(run.code, 0, "changes without --detailed-exitcode: 0\n{run}");
    let run = server.run(&["plan", s(&decl), "--detailed-exitcode"]);
    assert_eq!(run.code, 2, "{run}");
    let run = server.run(&["apply", s(&decl), "--auto-approve", "--detailed-exitcode"]);
    assert_eq!(run.code, 2, "apply made changes:\n{run}");
    let run = server.run(&["apply", s(&decl), "--auto-approve", "--detailed-exitcode"]);
    assert_eq!(run.code, 0, "nothing left to change:\n{run}");
    let run = server.run(&["plan", s(&decl), "--detailed-exitcode"]);
    assert_eq!(run.code, 0, "{run}");
}

/// A pipeline sets the options it always wants once, in its environment.
#[test]
fn the_options_a_pipeline_sets_have_environment_variables() {
    let server = Server::start(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let decl = declaration(tmp.path(), "declared", DECLARED);
    let on = [("ROSTER_DETAILED_EXITCODE", "true")];
    let run = server.run_env(&["plan", s(&decl)], &on);
    assert_eq!(
        run.code, 2,
        "ROSTER_DETAILED_EXITCODE=true is --detailed-exitcode\n{run}"
    );
    let off = [("ROSTER_DETAILED_EXITCODE", "false")];
    let run = server.run_env(&["plan", s(&decl)], &off);
    assert_eq!(run.code, 0, "and false is its absence\n{run}");
    let run = server.run_env(
        &["apply", s(&decl), "--auto-approve"],
        &[("ROSTER_PARALLELISM", "0")],
    );
    assert_eq!(
        run.code, 64,
        "ROSTER_PARALLELISM is checked as --parallelism is\n{run}"
    );
    assert!(run.stderr.contains("parallelism"), "{run}");
}

#[test]
fn exit_1_error_apply_without_a_terminal_nor_auto_approve() {
    let server = Server::start(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let decl = declaration(tmp.path(), "declared", DECLARED);
    let before = server.writes();
    let run = server.run(&["apply", s(&decl)]);
    assert_eq!(run.code, 1, "{run}");
    assert!(run.stderr.contains("--auto-approve"), "{run}");
    assert_eq!(server.writes(), before);
}

#[test]
fn exit_3_invalid_declaration_on_validate_plan_and_apply() {
    let server = Server::start(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let before = server.writes();
    let bad = declaration(
        tmp.path(),
        "bad",
        &DECLARED.replace(
            "    language: en\n    protect",
            "    langage: en\n    protect",
        ),
    );
    for args in [
        vec!["validate", s(&bad)],
        vec!["plan", s(&bad), "--detailed-exitcode"],
        vec!["apply", s(&bad), "--auto-approve", "--detailed-exitcode"],
    ] {
        let run = server.run(&args);
        assert_eq!(run.code, 3, "{args:?}\n{run}");
        assert!(
            format!("{}{}", run.stdout, run.stderr).contains("error[unknown-key]"),
            "{run}"
        );
    }
    // A password that cannot be read makes the declaration invalid too.
    let secret = declaration(
        tmp.path(),
        "secret",
        &DECLARED.replace(
            "    protect: true\n",
            "    protect: true\n    password: { env: EXIT_TEST_NO_SUCH_VAR }\n",
        ),
    );
    let run = server.run(&["plan", s(&secret)]);
    assert_eq!(run.code, 3, "{run}");
    assert!(run.stderr.contains("error[secret]"), "{run}");
    assert_eq!(server.writes(), before, "nothing was written");
}

#[test]
fn exit_4_a_blocked_plan_is_shown_whole_in_every_format_and_nothing_is_written() {
    let (server, tmp, _) = applied();
    let blocked = declaration(tmp.path(), "blocked", &blocked_yaml());
    let before = server.writes();

    // Text: the banner first, then the whole plan, refused one and the other change.
    let run = server.run(&["plan", s(&blocked), "--detailed-exitcode"]);
    assert_eq!(run.code, 4, "{run}");
    assert!(
        run.stdout
            .starts_with("This plan is refused: 1 safety rule blocks it"),
        "{run}"
    );
    assert!(
        run.stdout
            .contains("✗ protected: representative/ann@acme.example"),
        "{run}"
    );
    assert!(run.stdout.contains("to proceed:") && run.stdout.contains("protect: false"));
    assert!(
        run.stdout
            .contains("- deactivate representative/ann@acme.example"),
        "{run}"
    );
    assert!(
        run.stdout
            .contains("~ update representative/bob@acme.example"),
        "{run}"
    );
    // The diagnostic on stderr as before (file:line:col when the object is declared).
    assert!(run.stderr.contains("error[protected]"), "{run}");

    // JSON: the refusals listed, the changes all there.
    let run = server.run(&["plan", s(&blocked), "--format", "json"]);
    assert_eq!(run.code, 4, "{run}");
    let plan: Value = serde_json::from_str(&run.stdout).expect("json");
    assert_eq!(plan["refusals"][0]["rule"], "protected");
    assert_eq!(
        plan["refusals"][0]["id"],
        json!({"kind": "representative", "key": "ann@acme.example"})
    );
    assert!(
        plan["refusals"][0]["help"]
            .as_str()
            .unwrap()
            .contains("protect: false")
    );
    assert_eq!(plan["changes"].as_array().unwrap().len(), 2, "{plan}");

    // Markdown: a caution banner at the top naming the rule, the object, how to proceed.
    let run = server.run(&["plan", s(&blocked), "--format", "markdown"]);
    assert_eq!(run.code, 4, "{run}");
    let md = &run.stdout;
    let banner = md.find("> [!CAUTION]").expect("a banner");
    let table = md.find("| action | count |").expect("the counts");
    assert!(banner < table, "the banner comes first:\n{md}");
    assert!(
        md.contains("`protected` — `representative/ann@acme.example`"),
        "{md}"
    );
    assert!(md.contains("**To proceed:**"), "{md}");
    assert!(md.contains("**ann@acme.example** is deactivated"), "{md}");

    // apply shows it the same way and writes nothing.
    let run = server.run(&["apply", s(&blocked), "--auto-approve"]);
    assert_eq!(run.code, 4, "{run}");
    assert!(
        run.stdout
            .starts_with("This plan is refused: 1 safety rule blocks it"),
        "{run}"
    );
    assert!(run.stderr.contains("nothing was changed"), "{run}");

    // A saved plan with refusals: saved, and refused by apply --plan.
    let saved = tmp.path().join("saved.json");
    let run = server.run(&["plan", s(&blocked), "--out", s(&saved)]);
    assert_eq!(run.code, 4, "{run}");
    let text = std::fs::read_to_string(&saved).unwrap();
    assert!(text.contains("\"refusals\""), "{text}");
    let run = server.run(&["apply", "--plan", s(&saved)]);
    assert_eq!(run.code, 4, "{run}");
    assert!(run.stdout.contains("✗ protected"), "{run}");
    assert_eq!(server.writes(), before, "nothing was written");
    assert_eq!(
        server.get("/v1/representatives/bob%40acme.example")["language"],
        "en"
    );
}

#[test]
fn exit_4_a_stale_saved_plan_is_refused() {
    let (server, tmp, _) = applied();
    let changed = declaration(
        tmp.path(),
        "changed",
        &DECLARED.replace(
            "Bob\n    last_name: Stone\n    team: Support\n    language: en",
            "Bob\n    last_name: Stone\n    team: Support\n    language: de",
        ),
    );
    let saved = tmp.path().join("saved.json");
    let run = server.run(&["plan", s(&changed), "--out", s(&saved)]);
    assert_eq!(run.code, 0, "{run}");
    let bob = server.get("/v1/representatives/bob%40acme.example");
    let (status, body) = server.http(
        "PATCH",
        "/v1/representatives/bob%40acme.example",
        Some(json!({"last_name": "Stone-Smith"})),
        bob["version"].as_i64(),
    );
    assert_eq!(status, 200, "{body}");
    let before = server.writes();
    let run = server.run(&["apply", "--plan", s(&saved)]);
    assert_eq!(run.code, 4, "{run}");
    assert!(run.stderr.contains("stale"), "{run}");
    assert_eq!(server.writes(), before);
}

#[test]
fn exit_5_a_token_the_live_system_refuses() {
    let (server, tmp, decl) = applied();
    let saved = tmp.path().join("saved.json");
    let run = server.run(&["plan", s(&decl), "--out", s(&saved)]);
    assert_eq!(run.code, 0, "{run}");
    let bad = [("ROSTER_TOKEN", "not-a-token-of-this-server")];
    for args in [
        vec!["plan", s(&decl), "--detailed-exitcode"],
        vec!["apply", s(&decl), "--auto-approve"],
        vec!["apply", "--plan", s(&saved)],
    ] {
        let run = server.run_env(&args, &bad);
        assert_eq!(run.code, 5, "{args:?}\n{run}");
        assert!(run.stderr.contains("401"), "{run}");
        assert!(!run.stderr.contains("not-a-token-of-this-server"), "{run}");
    }
}

#[test]
fn exit_5_nothing_listens_at_the_endpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let decl = declaration(tmp.path(), "declared", DECLARED);
    let port = free_port();
    let mut cmd = Command::new(bin());
    cmd.args(["plan", s(&decl), "--detailed-exitcode"])
        .args(["--endpoint", &format!("http://127.0.0.1:{port}")])
        .env("ROSTER_TOKEN", "unused")
        .env_remove("ROSTER_ENDPOINT")
        .env_remove("ROSTER_TOKEN_FILE")
        .env("NO_COLOR", "1")
        .current_dir(tmp.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let run: Run = wait_output(cmd.spawn().unwrap(), COMMAND_TIMEOUT, "plan, closed port").into();
    assert_eq!(run.code, 5, "{run}");
    assert!(run.stderr.contains("cannot read the live system"), "{run}");
}

#[test]
fn exit_6_apply_partly_failed_even_with_detailed_exitcode() {
    let (server, tmp, _) = applied();
    let changed = declaration(
        tmp.path(),
        "changed",
        &DECLARED.replace("language: en", "language: it"),
    );
    let cmd = server.command(
        &[
            "apply",
            s(&changed),
            "--auto-approve",
            "--detailed-exitcode",
        ],
        &[(PAUSE, "3000")],
    );
    let paused = Paused::start(cmd);
    // Bob changes on the live system between plan and write: his update fails (412).
    let bob = server.get("/v1/representatives/bob%40acme.example");
    let (status, body) = server.http(
        "PATCH",
        "/v1/representatives/bob%40acme.example",
        Some(json!({"last_name": "Stone-Smith"})),
        bob["version"].as_i64(),
    );
    assert_eq!(status, 200, "{body}");
    let (status, stdout, stderr) = paused.finish(COMMAND_TIMEOUT);
    assert_eq!(status.code(), Some(6), "{stdout}\n{stderr}");
    assert!(stdout.contains("412"), "{stdout}");
    assert_eq!(
        server.get("/v1/representatives/ann%40acme.example")["language"],
        "it",
        "the independent change was made"
    );
}

#[test]
fn exit_64_usage() {
    let out = Command::new(bin())
        .args(["plan", "--no-such-option"])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
}

#[test]
fn the_markdown_plan_names_its_root_relative_to_the_repository() {
    let server = Server::start(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(repo.join(".git")).unwrap();
    let europe = declaration(&repo.join("teams"), "europe", DECLARED);
    let asia = declaration(
        &repo.join("teams"),
        "asia",
        &DECLARED.replace("acme.example", "asia.example"),
    );
    let markdown = |cwd: &Path, path: &str| {
        let run = server.run_in(cwd, &["plan", path, "--format", "markdown"], &[]);
        assert_eq!(run.code, 0, "{run}");
        run.stdout.lines().next().unwrap_or("").to_string()
    };
    let first = markdown(&repo.join("teams"), "europe");
    assert_eq!(first, r#"<!-- roster-plan root="teams/europe" -->"#);
    assert_eq!(
        markdown(&repo, "teams/europe/"),
        first,
        "the same root from the top"
    );
    assert_eq!(
        markdown(tmp.path(), s(&europe)),
        first,
        "and from an absolute path"
    );
    assert_eq!(
        markdown(&repo, s(&asia)),
        r#"<!-- roster-plan root="teams/asia" -->"#,
        "two roots of one repository have two markers"
    );
}

#[test]
fn plan_appends_the_markdown_plan_to_the_job_summary_whatever_the_format() {
    let (server, tmp, decl) = applied();
    let blocked = declaration(tmp.path(), "blocked", &blocked_yaml());
    let summary = tmp.path().join("summary.md");
    std::fs::write(&summary, "# earlier step\n").unwrap();
    let env = [("GITHUB_STEP_SUMMARY", summary.to_str().unwrap())];
    let run = server.run_in(tmp.path(), &["plan", "blocked", "--format", "json"], &env);
    assert_eq!(run.code, 4, "{run}");
    assert!(run.stdout.starts_with('{'), "stdout stays JSON:\n{run}");
    let run = server.run_in(tmp.path(), &["plan", "declared"], &env);
    assert_eq!(run.code, 0, "{run}");
    let text = std::fs::read_to_string(&summary).unwrap();
    assert!(
        text.starts_with("# earlier step\n"),
        "appended, not replaced:\n{text}"
    );
    let blocked_at = text
        .find("<!-- roster-plan root=\"blocked\" -->\n## roster plan")
        .expect("the blocked plan");
    let declared_at = text
        .find("<!-- roster-plan root=\"declared\" -->\n## roster plan")
        .expect("the second plan");
    assert!(blocked_at < declared_at, "{text}");
    assert!(
        text[blocked_at..declared_at].contains("> [!CAUTION]"),
        "{text}"
    );
    assert!(text[declared_at..].contains("No changes."), "{text}");
    let _ = (blocked, decl);
}

#[test]
fn markdown_limit_keeps_removals_and_counts_what_is_left_out() {
    let (server, tmp, _) = applied();
    let blocked = declaration(tmp.path(), "blocked", &blocked_yaml());
    let run = server.run(&[
        "plan",
        s(&blocked),
        "--format",
        "markdown",
        "--markdown-limit",
        "1500",
    ]);
    assert_eq!(run.code, 4, "{run}");
    let md = &run.stdout;
    assert!(md.len() <= 1500, "{} chars:\n{md}", md.len());
    assert!(md.contains("> [!CAUTION]"), "{md}");
    assert!(md.contains("**ann@acme.example** is deactivated"), "{md}");
}

#[test]
fn unmanaged_as_changes_makes_drift_under_warn_exit_2_and_the_json_plan_lists_it() {
    let (server, tmp, decl) = applied();
    // Bob is live but no longer declared, under `unmanaged: warn`.
    let (head, _) = DECLARED.split_once("  - login: bob@acme.example").unwrap();
    let warned = declaration(
        tmp.path(),
        "warned",
        &head.replace("{ unmanaged: remove }", "{ unmanaged: warn }"),
    );
    let run = server.run(&["plan", s(&warned), "--detailed-exitcode"]);
    assert_eq!(run.code, 0, "drift alone is no change by default:\n{run}");
    let run = server.run(&[
        "plan",
        s(&warned),
        "--detailed-exitcode",
        "--unmanaged-as-changes",
    ]);
    assert_eq!(run.code, 2, "{run}");
    assert!(
        run.stderr
            .contains("drift: 1 live object no file declares (`unmanaged: warn`) count as changes"),
        "{run}"
    );
    assert!(
        run.stderr.contains("representative/bob@acme.example"),
        "{run}"
    );
    let run = server.run(&[
        "plan",
        s(&warned),
        "--format",
        "json",
        "--unmanaged-as-changes",
    ]);
    assert_eq!(run.code, 0, "without --detailed-exitcode: 0\n{run}");
    let plan: Value = serde_json::from_str(&run.stdout).unwrap();
    assert!(
        plan["changes"].as_array().is_none_or(Vec::is_empty),
        "{plan}"
    );
    let unmanaged = plan["unmanaged"].as_array().unwrap();
    assert!(
        unmanaged.contains(&json!({
            "id": {"kind": "representative", "key": "bob@acme.example"},
            "policy": "warn"
        })),
        "{plan}"
    );
    // Undeclared objects under `unmanaged: ignore` (the local administrator) are no drift.
    let run = server.run(&[
        "plan",
        s(&decl),
        "--detailed-exitcode",
        "--unmanaged-as-changes",
    ]);
    assert_eq!(run.code, 0, "{run}");
    assert!(!run.stderr.contains("drift"), "{run}");
}
