//! The server check: `roster plan` sends the plan's writes to the live system's dry run
//! (`POST /v1/plan:check`), so that what the apply would be refused is reported at plan
//! time, at the declaring file:line:col, and nothing is written. Cases the plan itself
//! cannot see: a manager token sees only its teams, so a user name held outside them
//! and the seats taken by representatives outside them are known to the live system
//! only; and a concurrent edit between the plan's read and its check (a seat taken). A
//! manager acting without a right is refused by the plan's own rule-6 check first.
//! `--no-server-check` leaves them to the apply, which is refused as before. The
//! dry run itself leaves the store unchanged, on SQLite and PostgreSQL.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::support::cli::{Harness, Run, declaration};
use crate::support::server::Srv;

const HARNESS: Harness = Harness::plain("500");

crate::module_server!();

impl Server {
    fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut cmd = self.base_command(args, self.dir.path());
        cmd.env_remove("RUST_LOG")
            .env_remove("ROSTER_NO_SERVER_CHECK");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }

    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        self.finish(self.command(args, env), &args.join(" "))
    }

    fn manager_token(&self, login: &str) -> String {
        let (status, body) = self.http(
            "POST",
            "/v1/tokens",
            Some(json!({ "manager": login })),
            None,
        );
        assert_eq!(status, 201, "{body}");
        body["token"].as_str().unwrap().to_string()
    }
}

/// Europe/Paris (managed by marie, who may manage representatives there) and Americas,
/// with one representative in each.
const BASE: &str = r#"version: 1
teams:
  - name: Europe
    teams:
      - name: Paris
  - name: Americas
managers:
  - login: marie@acme.example
    email: marie@acme.example
    name: Marie Curie
    teams: [Europe/Paris]
    team_rights: [manage_representatives, edit_rep_name_login]
representatives:
  - login: jdoe@acme.example
    email: jdoe@acme.example
    first_name: John
    last_name: Doe
    team: Europe/Paris
    language: fr
  - login: bnoel@acme.example
    email: bnoel@acme.example
    first_name: Bruno
    last_name: Noel
    team: Americas
    language: de
"#;

/// What marie declares: her part of BASE (Americas' representative is not hers to
/// declare) and a new representative in Paris, with `extra` lines.
fn marie_adds(extra: &str) -> String {
    let mine = BASE.replace(
        "  - login: bnoel@acme.example\n    email: bnoel@acme.example\n    first_name: Bruno\n    last_name: Noel\n    team: Americas\n    language: de\n",
        "",
    );
    format!(
        "{mine}  - login: nina@acme.example\n    email: nina@acme.example\n    first_name: Nina\n    last_name: Ew\n    team: Europe/Paris\n    language: en\n{extra}"
    )
}

fn applied_base(server: &Server, root: &Path) -> PathBuf {
    let decl = declaration(root, "base", BASE);
    let run = server.run(&["apply", decl.to_str().unwrap(), "--auto-approve"], &[]);
    assert_eq!(run.code, 0, "{run}");
    decl
}

/// The 1-based line of the first line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).expect(needle) + 1
}

/// Plans `decl` as marie: refused (exit 4) by `code` at `org.yaml:line`, nothing
/// written; with `--no-server-check` the plan passes and the apply meets the refusal.
fn refused_at_plan_then_at_apply_without_the_check(
    server: &Server,
    decl: &Path,
    token: &str,
    code: &str,
    line: usize,
) {
    let env = [("ROSTER_TOKEN", token)];
    let audit = server.audit_all().len();
    let d = decl.to_str().unwrap();
    let run = server.run(&["plan", d], &env);
    assert_eq!(run.code, 4, "{run}");
    assert!(run.stderr.contains("server-check"), "{run}");
    assert!(run.stderr.contains(code), "{run}");
    assert!(
        run.stderr.contains(&format!("org.yaml:{line}:")),
        "line {line}:\n{run}"
    );
    assert!(run.stdout.contains("would refuse 1 of them"), "{run}");
    // In a pipeline the refusal is an annotation and a SARIF result like any other.
    let sarif = server.dir.path().join("check.sarif");
    let run = server.run(
        &[
            "plan",
            d,
            "--annotations",
            "always",
            "--sarif",
            sarif.to_str().unwrap(),
        ],
        &env,
    );
    assert_eq!(run.code, 4, "{run}");
    let both = format!("{}{}", run.stdout, run.stderr);
    assert!(
        both.lines().any(|l| l.starts_with("::error file=")
            && l.contains(&format!("line={line},"))
            && l.contains("title=server-check::")),
        "{run}"
    );
    let log: Value = serde_json::from_str(&std::fs::read_to_string(&sarif).unwrap()).unwrap();
    let results = log["runs"][0]["results"].as_array().unwrap();
    assert!(
        results.iter().any(|r| r["ruleId"] == "server-check"
            && r["locations"][0]["physicalLocation"]["region"]["startLine"] == line),
        "{log:#}"
    );
    // The saved plan records the check, and apply of the fresh plan is refused alike.
    let out = server.dir.path().join("checked.json");
    let run = server.run(
        &[
            "plan",
            d,
            "--out",
            out.to_str().unwrap(),
            "--format",
            "json",
        ],
        &env,
    );
    assert_eq!(run.code, 4, "{run}");
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(saved["server_checked"], true, "{saved:#}");
    assert_eq!(saved["refusals"][0]["rule"], "server-check", "{saved:#}");
    let run = server.run(&["apply", d, "--auto-approve"], &env);
    assert_eq!(run.code, 4, "{run}");
    assert_eq!(
        server.audit_all().len(),
        audit,
        "nothing written by the checks"
    );

    // Without the check: planned (changes, exit 2), refused at apply as before (exit 6).
    let run = server.run(
        &["plan", d, "--no-server-check", "--detailed-exitcode"],
        &env,
    );
    assert_eq!(run.code, 2, "{run}");
    assert!(!run.stdout.contains("Server check"), "{run}");
    let run = server.run(
        &["apply", d, "--auto-approve"],
        &[("ROSTER_TOKEN", token), ("ROSTER_NO_SERVER_CHECK", "true")],
    );
    assert_eq!(run.code, 6, "{run}");
    assert!(
        run.stdout.contains(code) || run.stderr.contains(code),
        "{run}"
    );
}

#[test]
fn a_user_name_held_outside_a_managers_teams_is_refused_at_plan_time() {
    let server = Server::start(&[]);
    let tmp = tempfile::tempdir().unwrap();
    applied_base(&server, tmp.path());
    let token = server.manager_token("marie@acme.example");
    // bnoel@ holds `bnoel` (the console's proposal) in Americas, which marie cannot see.
    let text = marie_adds("    username: bnoel\n");
    let decl = declaration(tmp.path(), "taken", &text);
    let line = line_of(&text, "username: bnoel");
    refused_at_plan_then_at_apply_without_the_check(&server, &decl, &token, "username-taken", line);
}

/// Seats held outside a manager's teams: the live account counts its operators
/// account-wide (`GET /v1/account`), so the plan refuses on its own (rule `seats`), with
/// or without the server check, before anything is written.
#[test]
fn seats_taken_outside_a_managers_teams_are_refused_at_plan_time() {
    let server = Server::start(&[]);
    let tmp = tempfile::tempdir().unwrap();
    applied_base(&server, tmp.path());
    // Two active representatives, two seats: marie sees one of them; the account counts
    // both.
    let account = server.get("/v1/account");
    let (status, body) = server.http(
        "PATCH",
        "/v1/account",
        Some(json!({"seats": 2})),
        account["version"].as_i64(),
    );
    assert_eq!(status, 200, "{body}");
    let token = server.manager_token("marie@acme.example");
    let text = marie_adds("");
    let decl = declaration(tmp.path(), "full", &text);
    let line = line_of(&text, "login: nina@acme.example");
    let audit = server.audit_all().len();
    let d = decl.to_str().unwrap();
    for extra in [None, Some("--no-server-check")] {
        let mut args = vec!["plan", d];
        args.extend(extra);
        let run = server.run(&args, &[("ROSTER_TOKEN", token.as_str())]);
        assert_eq!(run.code, 4, "{extra:?}: {run}");
        assert!(run.stderr.contains("error[seats]"), "{run}");
        assert!(
            run.stderr.contains(&format!("full/org.yaml:{line}:"))
                || run.stderr.contains(&format!("org.yaml:{line}:")),
            "line {line}:\n{run}"
        );
        assert!(
            run.stdout
                .contains("Seats: 2 → 3 operators of 2 licensed seats."),
            "{run}"
        );
    }
    let run = server.run(
        &["apply", d, "--auto-approve"],
        &[("ROSTER_TOKEN", token.as_str())],
    );
    assert_eq!(run.code, 4, "{run}");
    assert_eq!(server.audit_all().len(), audit, "nothing written");
}

#[test]
fn a_plan_that_passes_the_check_says_so_and_applies() {
    let server = Server::start(&[]);
    let tmp = tempfile::tempdir().unwrap();
    applied_base(&server, tmp.path());
    let token = server.manager_token("marie@acme.example");
    let decl = declaration(tmp.path(), "ok", &marie_adds(""));
    let env = [("ROSTER_TOKEN", token.as_str())];
    let d = decl.to_str().unwrap();
    let run = server.run(&["plan", d, "--detailed-exitcode"], &env);
    assert_eq!(run.code, 2, "{run}");
    assert!(run.stdout.contains("would refuse none"), "{run}");
    let run = server.run(&["apply", d, "--auto-approve"], &env);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(
        server.get("/v1/representatives/nina%40acme.example")["team"],
        "Europe/Paris"
    );
}

/// (b) A manager acting without a right: klaus holds only `edit_rep_name_login` and
/// declares a new e-mail for a representative of his team, which needs
/// `manage_representatives`. The plan's own rule-6 check (`plan::scope`, asking
/// `model::rights` as the server does) already refuses it, at the e-mail's line, so the
/// server check never has to run: the refusal is `escalation`, not `server-check`, with
/// the check or without it, and apply writes nothing. The live system refuses the same
/// write on its own (403 `forbidden`, naming the right) — the two surfaces agree.
#[test]
fn a_manager_without_the_right_is_refused_at_plan_time_by_the_plans_own_check() {
    let server = Server::start(&[]);
    let tmp = tempfile::tempdir().unwrap();
    applied_base(&server, tmp.path());
    let (status, body) = server.http(
        "POST",
        "/v1/managers",
        Some(
            json!({"login": "klaus.becker@acme.example", "email": "klaus.becker@acme.example",
                    "name": "Klaus Becker", "teams": ["Europe/Paris"],
                    "team_rights": ["edit_rep_name_login"]}),
        ),
        None,
    );
    assert_eq!(status, 201, "{body}");
    let token = server.manager_token("klaus.becker@acme.example");
    let text = marie_adds("")
        .replace("    email: jdoe@acme.example\n", "    email: jdoe@evil.example\n")
        .replace(
            "  - login: nina@acme.example\n    email: nina@acme.example\n    first_name: Nina\n    last_name: Ew\n    team: Europe/Paris\n    language: en\n",
            "",
        );
    let decl = declaration(tmp.path(), "noright", &text);
    let line = line_of(&text, "email: jdoe@evil.example");
    let d = decl.to_str().unwrap();
    let env = [("ROSTER_TOKEN", token.as_str())];
    let audit = server.audit_all().len();
    for extra in [None, Some("--no-server-check")] {
        for cmd in [vec!["plan", d], vec!["apply", d, "--auto-approve"]] {
            let mut args = cmd.clone();
            args.extend(extra);
            let run = server.run(&args, &env);
            assert_eq!(run.code, 4, "{args:?}: {run}");
            assert!(run.stderr.contains("error[escalation]"), "{run}");
            assert!(run.stderr.contains("manage_representatives"), "{run}");
            assert!(
                run.stderr.contains(&format!("org.yaml:{line}:")),
                "line {line}:\n{run}"
            );
            assert!(!run.stderr.contains("server-check"), "{run}");
        }
    }
    assert_eq!(server.audit_all().len(), audit, "nothing written");
    assert_eq!(
        server.get("/v1/representatives/jdoe%40acme.example")["email"],
        "jdoe@acme.example"
    );
    let v = server.get("/v1/representatives/jdoe%40acme.example")["version"].as_i64();
    let (status, body) = server.http_as(
        &token,
        "PATCH",
        "/v1/representatives/jdoe%40acme.example",
        Some(json!({"email": "jdoe@evil.example"})),
        v,
    );
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("forbidden")),
        "{body}"
    );
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("manage_representatives"),
        "{body}"
    );
}

/// Spawns `cmd` and waits (up to 60 s) for a line of its stderr containing `announce`;
/// returns the child and a reader of the rest of stderr.
fn start_paused(
    mut cmd: Command,
    announce: &'static str,
) -> (std::process::Child, std::thread::JoinHandle<String>) {
    use std::io::BufRead;
    let mut child = cmd.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut seen = String::new();
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if line.contains(announce) {
                let _ = tx.send(());
            }
            seen.push_str(&line);
            seen.push('\n');
        }
        seen
    });
    rx.recv_timeout(std::time::Duration::from_secs(60))
        .expect("the command announces its pause");
    (child, reader)
}

fn finish(
    child: std::process::Child,
    reader: std::thread::JoinHandle<String>,
) -> (i32, String, String) {
    let out = child.wait_with_output().unwrap();
    let stderr = reader.join().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
    )
}

/// A representative of Americas, out of marie's sight, who takes a seat.
fn another_operator(server: &Server, login: &str) {
    let (status, body) = server.http(
        "POST",
        "/v1/representatives",
        Some(
            json!({"login": login, "email": login, "first_name": "Olga", "last_name": "Rand",
                    "team": "Americas"}),
        ),
        None,
    );
    assert_eq!(status, 201, "{body}");
}

/// (c) A seat limit hit by a concurrent edit. The plan reads the account's operators
/// account-wide, so an edit made *before* the plan's read is caught by the plan's own
/// seat rule (`seats`, asserted below). What only the server check catches is an edit
/// in the window between the plan's read and its check: the test holds the plan in that
/// window (the hidden pause of `ops::plan`), an administrator takes the last seat
/// through the API, and the check refuses with the server's `seats-exceeded` at the
/// declaring line; nothing is written. Without the check, the same race (held in
/// apply's pause before its first write) is refused by the live system at apply (exit 6)
/// and nothing is written either.
#[test]
fn a_seat_taken_by_a_concurrent_edit_is_refused_by_the_server_check() {
    let server = Server::start(&[]);
    let tmp = tempfile::tempdir().unwrap();
    applied_base(&server, tmp.path());
    let account = server.get("/v1/account");
    let (status, body) = server.http(
        "PATCH",
        "/v1/account",
        Some(json!({"seats": 3})),
        account["version"].as_i64(),
    );
    assert_eq!(status, 200, "{body}");
    let token = server.manager_token("marie@acme.example");
    let text = marie_adds("");
    let decl = declaration(tmp.path(), "race", &text);
    let line = line_of(&text, "login: nina@acme.example");
    let d = decl.to_str().unwrap();
    let env = [("ROSTER_TOKEN", token.as_str())];
    // Planned cleanly: the last seat is free.
    let run = server.run(&["plan", d, "--detailed-exitcode"], &env);
    assert_eq!(run.code, 2, "{run}");
    assert!(
        run.stdout
            .contains("Seats: 2 → 3 operators of 3 licensed seats."),
        "{run}"
    );
    assert!(run.stdout.contains("would refuse none"), "{run}");

    // The concurrent edit lands after the plan's read, before its check.
    let pause = "ROSTER_TEST_PAUSE_BEFORE_SERVER_CHECK_MS";
    let (child, reader) = start_paused(
        server.command(
            &["plan", d],
            &[("ROSTER_TOKEN", token.as_str()), (pause, "3000")],
        ),
        pause,
    );
    another_operator(&server, "olga@acme.example");
    let audit = server.audit_all().len();
    let (code, stdout, stderr) = finish(child, reader);
    let run = format!("{stdout}\n{stderr}");
    assert_eq!(code, 4, "{run}");
    assert!(stderr.contains("error[server-check]"), "{run}");
    assert!(stderr.contains("seats-exceeded"), "{run}");
    assert!(
        stderr.contains(&format!("org.yaml:{line}:")),
        "line {line}:\n{run}"
    );
    assert!(
        stdout.contains("Seats: 2 → 3 operators of 3 licensed seats."),
        "{run}"
    );
    assert!(stdout.contains("would refuse 1 of them"), "{run}");
    assert_eq!(
        server.audit_all().len(),
        audit,
        "nothing written by the check"
    );

    // Planned again after the edit: the plan's own seat rule sees it from the fresh read.
    for extra in [None, Some("--no-server-check")] {
        let mut args = vec!["plan", d];
        args.extend(extra);
        let run = server.run(&args, &env);
        assert_eq!(run.code, 4, "{extra:?}: {run}");
        assert!(run.stderr.contains("error[seats]"), "{run}");
        assert!(!run.stderr.contains("server-check"), "{run}");
    }

    // Without the check: the seat is freed, the apply plans cleanly, and the concurrent
    // edit takes the seat again while the apply waits before its first write.
    let v = server.get("/v1/representatives/olga%40acme.example")["version"].as_i64();
    let (status, body) = server.http(
        "DELETE",
        "/v1/representatives/olga%40acme.example?purge_statistics=true",
        None,
        v,
    );
    assert_eq!(status, 204, "{body}");
    let (child, reader) = start_paused(
        server.command(
            &["apply", d, "--auto-approve", "--no-server-check"],
            &[
                ("ROSTER_TOKEN", token.as_str()),
                (crate::support::cli::PAUSE, "3000"),
            ],
        ),
        crate::support::cli::PAUSE,
    );
    another_operator(&server, "olga2@acme.example");
    let (code, stdout, stderr) = finish(child, reader);
    let run = format!("{stdout}\n{stderr}");
    assert_eq!(code, 6, "refused at apply: {run}");
    assert!(run.contains("seats-exceeded"), "{run}");
    let (status, _) = server.http("GET", "/v1/representatives/nina%40acme.example", None, None);
    assert_eq!(status, 404, "nothing written: {run}");
}

// ------------------------------------------------------------------- the dry run itself

/// Every kind's list and the audit log, as the administrator reads them.
async fn everything(s: &Srv) -> Vec<Value> {
    let mut all = Vec::new();
    for c in [
        "portals",
        "teams",
        "administrators",
        "managers",
        "representatives",
        "campaigns",
        "contact-groups",
    ] {
        all.push(s.get(&s.admin, &format!("/v1/{c}?limit=1000")).await.body);
    }
    all.push(s.get(&s.admin, "/v1/audit?limit=1000").await.body);
    all.push(s.get(&s.admin, "/v1/account").await.body);
    all
}

async fn the_dry_run_leaves_the_store_unchanged(s: &Srv) {
    s.create(&s.admin, "portals", json!({"name": "web", "features": []}))
        .await;
    s.create(&s.admin, "teams", json!({"path": "Europe"})).await;
    let rep = s
        .create(
            &s.admin,
            "representatives",
            json!({"login": "jdoe@acme.example", "email": "jdoe@acme.example",
                   "first_name": "John", "last_name": "Doe", "team": "Europe",
                   "language": "fr", "status": "active", "features": [], "portals": ["web"]}),
        )
        .await;
    let before = everything(s).await;
    let ops = json!({"operations": [
        {"kind": "team", "op": "create", "body": {"path": "Europe/Paris"}},
        {"kind": "representative", "op": "create", "set_password": true, "body": {
            "login": "ann@acme.example", "email": "ann@acme.example", "first_name": "Ann",
            "last_name": "Lee", "team": "Europe/Paris", "language": "en", "status": "active",
            "features": [], "portals": [], "password": {"rotation": "r1"}}},
        {"kind": "representative", "op": "update", "key": "jdoe@acme.example",
         "if_match": rep["version"], "body": {"team": "Europe/Paris"}},
        {"kind": "team", "op": "update", "key": "Europe/Paris", "body": {"leader": "ann@acme.example"}},
        {"kind": "representative", "op": "update", "key": "jdoe@acme.example", "if_match": 99,
         "body": {"language": "de"}},
        {"kind": "portal", "op": "delete", "key": "web", "if_match": 1},
        {"kind": "representative", "op": "create", "body": {"login": "x@acme.example"}}
    ]});
    let r = s.post(&s.admin, "/v1/plan:check", &ops).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let results = r.body["results"].as_array().unwrap();
    let statuses: Vec<u64> = results
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    // The update of jdoe follows its earlier update in the check (version 2, not 99 … the
    // earlier write's version is used), the portal is still used, the last create breaks
    // the schema.
    assert_eq!(&statuses[..4], &[201, 201, 200, 200], "{:#}", r.body);
    assert_eq!(
        statuses[4], 200,
        "the version the earlier write left: {:#}",
        r.body
    );
    assert_eq!(results[5]["problem"]["code"], "conflict", "{:#}", r.body);
    assert_eq!(statuses[6], 422, "{:#}", r.body);
    assert_eq!(everything(s).await, before, "the dry run wrote something");

    // A read token may ask; a manager without the right to set passwords is told so.
    let read = s
        .post(
            &s.admin,
            "/v1/tokens",
            &json!({"administrator": "admin@localhost", "permission": "read"}),
        )
        .await;
    assert_eq!(read.status, 201, "{}", read.body);
    let read = read.body["token"].as_str().unwrap().to_string();
    let r = s
        .post(
            &read,
            "/v1/plan:check",
            &json!({"operations": [
        {"kind": "portal", "op": "create", "body": {"name": "p2", "features": []}}]}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["results"][0]["status"].as_u64()),
        (200, Some(201)),
        "{}",
        r.body
    );
    s.create(
        &s.admin,
        "managers",
        json!({"login": "m@acme.example", "email": "m@acme.example",
        "name": "M", "teams": ["Europe"], "team_rights": ["manage_representatives"]}),
    )
    .await;
    let m = s.manager_token("m@acme.example").await;
    let before = everything(s).await;
    let r = s.post(&m, "/v1/plan:check", &json!({"operations": [
        {"kind": "representative", "op": "update", "key": "jdoe@acme.example",
         "if_match": rep["version"], "set_password": true, "body": {"password": {"rotation": "r2"}}}]})).await;
    assert_eq!(r.body["results"][0]["status"], 403, "{:#}", r.body);
    // Malformed operations and too many are refused as a whole.
    let r = s
        .post(
            &s.admin,
            "/v1/plan:check",
            &json!({"operations": [{"kind": "nope", "op": "create", "body": {}}]}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["pointer"].as_str()),
        (422, Some("/operations/0/kind")),
        "{}",
        r.body
    );
    let many: Vec<Value> = (0..1001)
        .map(|i| json!({"kind": "portal", "op": "delete", "key": format!("p{i}"), "if_match": 1}))
        .collect();
    let r = s
        .post(&s.admin, "/v1/plan:check", &json!({"operations": many}))
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(everything(s).await, before, "nothing written");
    let who = s.get(&read, "/v1/whoami").await;
    assert_eq!(
        who.body["capabilities"],
        json!(["plan-check", "change-feed"]),
        "{}",
        who.body
    );
}
both_backends!(the_dry_run_leaves_the_store_unchanged);
