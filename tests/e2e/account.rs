//! The account declared (seed 003) and its password policy (seed 001): the real `roster`
//! binary against a real `roster serve` on loopback. A password breaking the declared
//! policy is refused at plan time at its file:line:col with nothing written and the
//! value printed nowhere; a compliant one applies after the account's own change; the
//! server refuses a breaking password sent directly (422 `password-policy`); a manager
//! token cannot change the account; export round-trips the account; a renamed account
//! plans (all three formats), applies, and the next plan is empty.

use std::path::Path;

use serde_json::{Value, json};

use crate::support::cli::{Harness, Run};

const HARNESS: Harness = Harness::plain("10");

module_server!();

/// Passes the policy below: 14+ characters, every class, a symbol, not the login.
const GOOD: &str = "Correct-Horse-Battery-9";
/// Breaks it: too short, no upper-case letter, no symbol, holds the login's local part.
const BAD: &str = "marie2026";

const POLICY: &str = "account:\n  name: ACME Support\n  password_policy:\n    min_length: 14\n    require_symbol: true\n";

fn declaration(account: &str) -> String {
    format!(
        "version: 1\n{account}managers:\n  - login: marie@acme.example\n    email: marie@acme.example\n    name: Marie Curie\n    password: {{ env: ACME_MARIE_PASSWORD, rotation: \"1\" }}\n"
    )
}

impl Server {
    fn run(&self, args: &[&str], password: Option<&str>) -> Run {
        let mut cmd = self.base_command(args, self.dir.path());
        if let Some(p) = password {
            cmd.env("ACME_MARIE_PASSWORD", p);
        }
        self.finish(cmd, &args.join(" "))
    }
}

fn write(dir: &Path, text: &str) -> String {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("org.yaml"), text).unwrap();
    dir.to_str().unwrap().to_string()
}

#[test]
fn the_account_and_its_password_policy_end_to_end() {
    let s = Server::start(&[]);
    let decl = s.dir.path().join("decl");
    let d = write(&decl, &declaration(POLICY));

    // A password breaking the declared policy: refused at plan time, at the password's
    // place, naming the rules, never the value; nothing written.
    for cmd in ["plan", "apply"] {
        let mut args = vec![cmd, d.as_str()];
        if cmd == "apply" {
            args.push("--auto-approve");
        }
        let run = s.run(&args, Some(BAD));
        assert_eq!(run.code, 3, "{cmd}: {run}");
        assert!(run.stderr.contains("password-policy"), "{run}");
        assert!(run.stderr.contains("org.yaml:11:15"), "{run}");
        assert!(
            run.stderr.contains("min_length") && run.stderr.contains("forbid_login"),
            "{run}"
        );
        assert!(
            !run.stdout.contains(BAD) && !run.stderr.contains(BAD),
            "the value was printed: {run}"
        );
    }
    let account = s.get("/v1/account");
    assert_eq!(account["name"], "default", "{account}");
    assert_eq!(account["password_policy"]["min_length"], 1, "{account}");
    assert_eq!(s.get("/v1/managers")["items"], json!([]));

    // A compliant one: the account changes first, then the manager is created.
    let plan = s.run(&["plan", &d], Some(GOOD));
    assert_eq!(plan.code, 0, "{plan}");
    assert!(plan.stdout.contains("account"), "{plan}");
    assert!(!plan.stdout.contains(GOOD) && !plan.stderr.contains(GOOD));
    let json_plan = s.run(&["plan", &d, "--format", "json"], Some(GOOD));
    let v: Value = serde_json::from_str(&json_plan.stdout).expect("a JSON plan");
    assert_eq!(
        v["changes"][0]["id"],
        json!({"kind": "account", "key": "account"})
    );
    assert_eq!(v["changes"][1]["depends_on"], json!([0]), "{v}");
    let apply = s.run(&["apply", &d, "--auto-approve"], Some(GOOD));
    assert_eq!(apply.code, 0, "{apply}");
    let account = s.get("/v1/account");
    assert_eq!(account["name"], "ACME Support");
    assert_eq!(account["password_policy"]["min_length"], 14);
    assert_eq!(account["password_policy"]["require_symbol"], true);
    let next = s.run(&["plan", &d, "--detailed-exitcode"], Some(GOOD));
    assert_eq!(next.code, 0, "{next}");

    // The server enforces the same policy on a password sent directly.
    let manager = s.get("/v1/managers/marie%40acme.example");
    let version = manager["version"].as_i64().unwrap();
    let (status, body) = s.http(
        "PATCH",
        "/v1/managers/marie%40acme.example",
        Some(json!({"password": {"value": BAD, "rotation": "2"}})),
        Some(version),
    );
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["code"], "password-policy", "{body}");
    assert!(!body.to_string().contains(BAD), "{body}");
    let (status, body) = s.http(
        "PATCH",
        "/v1/managers/marie%40acme.example",
        Some(json!({"password": {"value": GOOD, "rotation": "2"}})),
        Some(version),
    );
    assert_eq!(status, 200, "{body}");

    // A manager token may read the account, never change it.
    let (status, token) = s.http(
        "POST",
        "/v1/tokens",
        Some(json!({"manager": "marie@acme.example"})),
        None,
    );
    assert_eq!(status, 201, "{token}");
    let mt = token["token"].as_str().unwrap();
    let version = s.get("/v1/account")["version"].as_i64().unwrap();
    let (status, body) = s.http_as(
        mt,
        "PATCH",
        "/v1/account",
        Some(json!({"name": "Mine now"})),
        Some(version),
    );
    assert_eq!(status, 403, "{body}");
    assert_eq!(s.get("/v1/account")["name"], "ACME Support");

    // Export writes the account; planning the export changes nothing.
    let out = s.dir.path().join("exported");
    let export = s.run(&["export", "--out", out.to_str().unwrap()], None);
    assert_eq!(export.code, 0, "{export}");
    let text = std::fs::read_to_string(out.join("account.yaml")).unwrap();
    assert!(
        text.contains("name: ACME Support") && text.contains("min_length: 14"),
        "{text}"
    );
    let round = s.run(
        &["plan", out.to_str().unwrap(), "--detailed-exitcode"],
        None,
    );
    assert_eq!(round.code, 0, "{round}");

    // A new account name plans in every format, applies, and then nothing is left.
    let renamed = POLICY.replace("ACME Support", "ACME Global Support");
    write(&decl, &declaration(&renamed));
    for format in ["text", "json", "markdown"] {
        let run = s.run(
            &["plan", &d, "--format", format, "--detailed-exitcode"],
            Some(GOOD),
        );
        assert_eq!(run.code, 2, "{format}: {run}");
        assert!(
            run.stdout.contains("ACME Global Support"),
            "{format}: {run}"
        );
    }
    let apply = s.run(&["apply", &d, "--auto-approve"], Some(GOOD));
    assert_eq!(apply.code, 0, "{apply}");
    assert_eq!(s.get("/v1/account")["name"], "ACME Global Support");
    let next = s.run(&["plan", &d, "--detailed-exitcode"], Some(GOOD));
    assert_eq!(next.code, 0, "{next}");
}

#[test]
fn declared_seats_are_refused_at_their_place() {
    let s = Server::start(&[]);
    let d = write(
        &s.dir.path().join("seats"),
        "version: 1\naccount:\n  name: ACME\n  seats: 40\n",
    );
    let run = s.run(&["plan", &d], None);
    assert_eq!(run.code, 3, "{run}");
    assert!(run.stderr.contains("org.yaml:4:3"), "{run}");
    assert!(run.stderr.contains("read-only"), "{run}");
    assert_eq!(s.get("/v1/account")["name"], "default");
}

/// A blank account name and an out-of-range `min_length` are refused by `plan` at their
/// place, as `PATCH /v1/account` refuses them (one check each, in `model`).
#[test]
fn what_the_server_refuses_of_the_account_plan_refuses_first() {
    let s = Server::start(&[]);
    let d = write(
        &s.dir.path().join("blank"),
        "version: 1\naccount:\n  name: \"   \"\n",
    );
    let run = s.run(&["plan", &d], None);
    assert_eq!(run.code, 3, "{run}");
    assert!(run.stderr.contains("org.yaml:3:9"), "{run}");
    let (st, body) = s.http(
        "PATCH",
        "/v1/account",
        Some(serde_json::json!({"name": "   "})),
        s.get("/v1/account")["version"].as_i64(),
    );
    assert_eq!(st, 422, "{body}");
    let d = write(
        &s.dir.path().join("long"),
        "version: 1\naccount:\n  password_policy:\n    min_length: 129\n",
    );
    let run = s.run(&["plan", &d], None);
    assert_eq!(run.code, 3, "{run}");
    assert!(run.stderr.contains("org.yaml:4:17"), "{run}");
    let (st, body) = s.http(
        "PATCH",
        "/v1/account",
        Some(serde_json::json!({"password_policy": {"min_length": 129}})),
        s.get("/v1/account")["version"].as_i64(),
    );
    assert_eq!(st, 422, "{body}");
    assert_eq!(s.get("/v1/account")["name"], "default", "nothing written");
}
