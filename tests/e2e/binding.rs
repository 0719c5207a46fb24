//! End to end, issue 12 "a saved plan bound to its target": a plan saved by `roster
//! plan --out` records the endpoint, the account, the principal, roster's version and a
//! digest of the declaration; `roster apply --plan` refuses another endpoint or another
//! principal (exit 4, nothing written) and runs on its own target; `roster show`
//! renders a saved plan without a live system.

use std::path::{Path, PathBuf};

use crate::support::cli::{Harness, Run, copy_acme};
use serde_json::Value;

const HARNESS: Harness = Harness::plain("500");

module_server!();

impl Server {
    fn roster(&self, args: &[&str], cwd: &Path) -> Run {
        let mut cmd = self.base_command(args, cwd);
        cmd.env_remove("RUST_LOG");
        self.finish(cmd, &args.join(" "))
    }

    fn roster_as(&self, token: &str, args: &[&str], cwd: &Path) -> Run {
        let mut cmd = self.base_command(args, cwd);
        cmd.env_remove("RUST_LOG").env("ROSTER_TOKEN", token);
        self.finish(cmd, &args.join(" "))
    }
}

/// examples/acme in `dir/org`, with Camille Martin (Europe/Paris) renamed when `edit`.
fn declaration(dir: &Path, edit: bool) -> PathBuf {
    let org = dir.join("org");
    copy_acme(&org, |_, text| {
        if edit {
            text.replace("last_name: Martin\n", "last_name: Martin-Roy\n")
        } else {
            text
        }
    });
    org
}

/// A server with examples/acme applied, and a plan of the edit saved in `dir/plan.json`.
fn applied(dir: &Path) -> Server {
    let server = Server::start(&[]);
    let org = declaration(dir, false);
    let run = server.roster(&["apply", org.to_str().unwrap(), "--auto-approve"], dir);
    assert_eq!(run.code, 0, "{run}");
    server
}

#[test]
fn a_saved_plan_is_refused_on_another_endpoint_and_runs_on_its_own() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let a = applied(dir);
    let b = applied(dir);
    let org = declaration(dir, true);
    let run = a.roster(&["plan", org.to_str().unwrap(), "--out", "plan.json"], dir);
    assert_eq!(run.code, 0, "{run}");
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("plan.json")).unwrap()).unwrap();
    let target = &saved["target"];
    assert_eq!(target["endpoint"], a.endpoint(), "{saved}");
    assert_eq!(target["roster_version"], env!("CARGO_PKG_VERSION"));
    assert!(
        target["declaration"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    assert!(!target["account"].as_str().unwrap().is_empty());
    assert_eq!(saved["changes"].as_array().unwrap().len(), 1, "{saved}");

    let audit_b = b.audit().len();
    let run = b.roster(&["apply", "--plan", "plan.json"], dir);
    assert_eq!(run.code, 4, "another endpoint is refused: {run}");
    assert!(
        run.stderr.contains(&a.endpoint()) && run.stderr.contains(&b.endpoint()),
        "names both endpoints: {run}"
    );
    assert!(run.stderr.contains("nothing was changed"), "{run}");
    assert_eq!(
        b.audit().len(),
        audit_b,
        "nothing written on the other endpoint"
    );

    let run = a.roster(&["apply", "--plan", "plan.json"], dir);
    assert_eq!(run.code, 0, "its own endpoint runs it: {run}");
    let rep = a.get("/v1/representatives/camille.martin%40acme.example");
    assert_eq!(rep["last_name"], "Martin-Roy", "{rep}");
}

#[test]
fn a_saved_plan_is_refused_for_another_principal() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let server = applied(dir);
    let org = declaration(dir, true);
    let run = server.roster(&["plan", org.to_str().unwrap(), "--out", "plan.json"], dir);
    assert_eq!(run.code, 0, "{run}");
    let db = server.database();
    let token = server.roster(
        &[
            "token",
            "create",
            "--manager",
            "marie.curie@acme.example",
            "--database",
            &db,
        ],
        dir,
    );
    assert_eq!(token.code, 0, "{token}");
    let audit = server.audit().len();
    let run = server.roster_as(token.stdout.trim(), &["apply", "--plan", "plan.json"], dir);
    assert_eq!(run.code, 4, "another principal is refused: {run}");
    assert!(
        run.stderr.contains("made as administrator")
            && run.stderr.contains("manager marie.curie@acme.example"),
        "names both principals: {run}"
    );
    assert_eq!(server.audit().len(), audit, "nothing written");
}

#[test]
fn show_renders_a_saved_plan_without_a_live_system() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let server = applied(dir);
    let org = declaration(dir, true);
    let run = server.roster(&["plan", org.to_str().unwrap(), "--out", "plan.json"], dir);
    assert_eq!(run.code, 0, "{run}");
    drop(server);
    let show = |format: &str| -> Run {
        let out = std::process::Command::new(crate::support::cli::bin())
            .args(["show", "plan.json", "--format", format])
            .current_dir(dir)
            .env("NO_COLOR", "1")
            .env("ROSTER_ENDPOINT", "http://127.0.0.1:9")
            .output()
            .unwrap();
        out.into()
    };
    let text = show("text");
    assert_eq!(text.code, 0, "{text}");
    assert!(
        text.stdout.contains("camille.martin@acme.example"),
        "{text}"
    );
    assert!(text.stderr.contains("against http://127.0.0.1:"), "{text}");
    let md = show("markdown");
    assert!(
        md.stdout.contains("camille.martin@acme.example") && md.stdout.contains('|'),
        "{md}"
    );
    let json = show("json");
    let v: Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(
        v["changes"][0]["id"]["key"], "camille.martin@acme.example",
        "{v}"
    );
    let missing = std::process::Command::new(crate::support::cli::bin())
        .args(["show", "nope.json"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert_ne!(missing.status.code(), Some(0));
}
