//! End to end, issue 5 "Safety": the real `roster` binary against a real `roster serve`
//! on a free loopback port (its own SQLite file per test); every command and wait is
//! bounded. Each test asserts exit codes, output text and the server's state afterwards
//! (reads and the audit log through the API).
//!
//! Covers: ownership per kind (`unmanaged: ignore | warn | remove`); representatives
//! deactivated unless `on_remove: delete` and `--allow-delete`, and then deleted with the
//! statistics purge, said in words; `previously:` renames in place (audit: updates, no
//! delete + create) and the both-exist conflict; `protect: true` recorded on the live
//! object and surviving removal from the YAML until an explicit `protect: false`; the
//! removal threshold over objects and relationships (a declaration that keeps every
//! object but empties teams' memberships and rights stops, nothing written, `--force`
//! named and then proceeds; the policy's threshold is configurable); secrets: a planted
//! value followed through every output, file and log; a manager token's scope (rule 6).
//!
//! The harness (server, commands, HTTP) is shared with `reconcile`:
//! tests/e2e/support/cli.rs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::cli::{Harness, PAUSE, Paused, Run, encode};
use serde_json::{Value, json};

/// Longest any single command may run.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// This file's servers: 500 seats; a request is made once and its answer returned as is.
const HARNESS: Harness = Harness::plain("500");

module_server!();

impl Server {
    /// A `roster` command aimed at this server with the administrator token, run in `cwd`.
    fn command(&self, args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Command {
        let mut cmd = self.base_command(args, cwd);
        cmd.env_remove("RUST_LOG");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs `roster ARGS` in `cwd` with extra environment variables.
    fn run_in(&self, cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
        self.finish(self.command(args, cwd, env), &args.join(" "))
    }

    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        self.run_in(self.dir.path(), args, env)
    }

    /// The status of a GET (200, 404…).
    fn status_of(&self, path: &str) -> u16 {
        self.http("GET", path, None, None).0
    }

    fn rep(&self, login: &str) -> Value {
        self.get(&format!("/v1/representatives/{}", encode(login)))
    }

    /// `roster apply DIR --auto-approve` that must succeed.
    fn apply_ok(&self, decl: &Path, extra: &[&str], env: &[(&str, &str)]) -> Run {
        let mut args = vec!["apply", decl.to_str().unwrap(), "--auto-approve"];
        args.extend_from_slice(extra);
        let run = self.run(&args, env);
        assert_eq!(run.code, 0, "apply failed:\n{run}");
        run
    }

    fn plan(&self, decl: &Path, extra: &[&str], env: &[(&str, &str)]) -> Run {
        let mut args = vec!["plan", decl.to_str().unwrap(), "--detailed-exitcode"];
        args.extend_from_slice(extra);
        self.run(&args, env)
    }

    fn plan_json(&self, decl: &Path, extra: &[&str], env: &[(&str, &str)]) -> Value {
        let mut args = vec!["plan", decl.to_str().unwrap(), "--format", "json"];
        args.extend_from_slice(extra);
        let run = self.run(&args, env);
        assert_eq!(run.code, 0, "{run}");
        serde_json::from_str(&run.stdout).expect("plan --format json is json")
    }
}

/// Writes a declaration directory of one file.
fn declaration(root: &Path, name: &str, yaml: &str) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("org.yaml"), yaml).unwrap();
    dir
}

/// Replaces exactly one occurrence.
fn once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "{from:?} must occur once");
    text.replacen(from, to, 1)
}

/// Removes the list item whose first line is `first_line` (up to the next item or
/// section).
fn without_item(text: &str, first_line: &str) -> String {
    let mut out = String::new();
    let mut skipping = false;
    for line in text.split_inclusive('\n') {
        if line.trim_end() == first_line {
            skipping = true;
            continue;
        }
        if skipping && line.starts_with("    ") {
            continue;
        }
        skipping = false;
        out.push_str(line);
    }
    assert_ne!(out, text, "{first_line:?} not found");
    out
}

/// A small organization: two teams under Europe, one elsewhere, three representatives,
/// a manager of Europe/Paris, a contact group.
const BASE: &str = r#"version: 1
portals:
  - name: web
    features: [file_transfer_send, multisession]
teams:
  - name: Europe
    teams:
      - name: Paris
  - name: Americas
  - name: Asia
managers:
  - login: marie@acme.example
    email: marie@acme.example
    name: Marie Curie
    teams: [Europe/Paris]
    team_rights: [manage_representatives, session_replay]
    grantable: [admin_center_access, reports, session_replay, multisession]
representatives:
  - login: jdoe@acme.example
    email: jdoe@acme.example
    first_name: John
    last_name: Doe
    team: Europe/Paris
    language: fr
    features: [admin_center_access, reports]
    portals: [web]
  - login: asmith@acme.example
    email: asmith@acme.example
    first_name: Anna
    last_name: Smith
    team: Europe
    language: en
    portals: [web]
  - login: bnoel@acme.example
    email: bnoel@acme.example
    first_name: Bruno
    last_name: Noel
    team: Americas
    language: de

contact_groups:
  - name: key-accounts
    shared_with:
      jdoe@acme.example: connect
  - name: old-friends
    shared_with:
      asmith@acme.example: view
"#;

fn applied_base(server: &Server, root: &Path) -> PathBuf {
    let decl = declaration(root, "base", BASE);
    server.apply_ok(&decl, &[], &[]);
    let again = server.plan(&decl, &[], &[]);
    assert_eq!(again.code, 0, "the base converges:\n{again}");
    decl
}

// ---------------------------------------------------------------- ownership per kind

#[test]
fn unmanaged_objects_are_listed_warned_or_removed_per_kind() {
    let server = Server::start(&[]);
    let tmp = tempfile::tempdir().unwrap();
    applied_base(&server, tmp.path());
    // The declaration no longer mentions asmith nor the contact group `old-friends`.
    let text = without_item(BASE, "  - login: asmith@acme.example");
    let text = without_item(&text, "  - name: old-friends");
    let decl = declaration(tmp.path(), "fewer", &text);

    // Default `ignore`: no change, both listed as information (text and JSON).
    let run = server.plan(&decl, &[], &[]);
    assert_eq!(run.code, 0, "{run}");
    assert!(
        run.stdout
            .contains("representative/asmith@acme.example (unmanaged: ignore)"),
        "{run}"
    );
    assert!(
        run.stdout
            .contains("contact_group/old-friends (unmanaged: ignore)"),
        "{run}"
    );
    let plan = server.plan_json(&decl, &[], &[]);
    let unmanaged: Vec<String> = plan["unmanaged"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| format!("{}/{} {}", u["id"]["kind"], u["id"]["key"], u["policy"]).replace('"', ""))
        .collect();
    assert!(
        unmanaged.contains(&"representative/asmith@acme.example ignore".to_string()),
        "{unmanaged:?}"
    );

    // `warn`: listed and warned.
    let warn = format!(
        "policy:\n  representatives: {{ unmanaged: warn }}\n  contact_groups: {{ unmanaged: warn }}\n{text}"
    );
    let decl = declaration(tmp.path(), "warn", &warn);
    let run = server.plan(&decl, &[], &[]);
    assert_eq!(run.code, 0, "{run}");
    assert!(run.stdout.contains("Warnings:"), "{run}");
    assert!(
        run.stdout.contains(
            "representative/asmith@acme.example exists in the live system but no file declares it"
        ),
        "{run}"
    );

    // `remove`: the representative (a kind with a status) is deactivated, the contact
    // group (no status) is deleted. Unmanaged objects are still listed.
    // Teams and managers too: a team has a status (deactivated), a manager not (deleted).
    let text = without_item(&text, "  - name: Asia");
    let text = once(
        &without_item(&text, "  - login: marie@acme.example"),
        "managers:\n",
        "managers: []\n",
    );
    let remove = format!(
        "policy:\n  representatives: {{ unmanaged: remove }}\n  contact_groups: {{ unmanaged: remove }}\n  teams: {{ unmanaged: remove }}\n  managers: {{ unmanaged: remove }}\n{text}"
    );
    let decl = declaration(tmp.path(), "remove", &remove);
    let run = server.plan(&decl, &[], &[]);
    assert_eq!(run.code, 2, "{run}");
    assert!(
        run.stdout
            .contains("- deactivate representative/asmith@acme.example"),
        "{run}"
    );
    assert!(
        run.stdout.contains("- delete contact_group/old-friends"),
        "{run}"
    );
    assert!(run.stdout.contains("- deactivate team/Asia"), "{run}");
    assert!(
        run.stdout.contains("- delete manager/marie@acme.example"),
        "{run}"
    );
    assert!(
        run.stdout
            .contains("representative/asmith@acme.example (unmanaged: remove)"),
        "{run}"
    );
    server.apply_ok(&decl, &[], &[]);
    let asmith = server.rep("asmith@acme.example");
    assert_eq!(asmith["status"], "inactive", "deactivated, still there");
    assert_eq!(server.status_of("/v1/contact-groups/old-friends"), 404);
    assert_eq!(server.status_of("/v1/contact-groups/key-accounts"), 200);
    assert_eq!(server.get("/v1/teams/Asia")["active"], false, "deactivated");
    assert_eq!(server.status_of("/v1/managers/marie%40acme.example"), 404);
    assert_eq!(server.plan(&decl, &[], &[]).code, 0, "converged");
}

// ------------------------------------------------ deactivate, or delete with statistics

#[test]
fn representatives_are_deleted_only_with_the_policy_and_the_flag() {
    let server = Server::start(&[]);
    let tmp = tempfile::tempdir().unwrap();
    applied_base(&server, tmp.path());
    let text = without_item(BASE, "  - login: bnoel@acme.example");

    // Policy `on_remove: delete` alone: deactivated, and the plan says what the flag does.
    let delete_policy =
        format!("policy:\n  representatives: {{ unmanaged: remove, on_remove: delete }}\n{text}");
    let decl = declaration(tmp.path(), "delete", &delete_policy);
    let run = server.plan(&decl, &[], &[]);
    assert_eq!(run.code, 2, "{run}");
    assert!(
        run.stdout
            .contains("- deactivate representative/bnoel@acme.example"),
        "{run}"
    );
    assert!(run.stdout.contains("--allow-delete"), "{run}");
    assert!(!run.stdout.contains("- delete "), "{run}");

    // The flag alone (policy `deactivate`): still deactivated.
    let deactivate_policy = format!("policy:\n  representatives: {{ unmanaged: remove }}\n{text}");
    let decl_d = declaration(tmp.path(), "deactivate", &deactivate_policy);
    let run = server.plan(&decl_d, &["--allow-delete"], &[]);
    assert_eq!(run.code, 2, "{run}");
    assert!(
        run.stdout
            .contains("- deactivate representative/bnoel@acme.example"),
        "{run}"
    );
    server.apply_ok(&decl_d, &["--allow-delete"], &[]);
    let bnoel = server.rep("bnoel@acme.example");
    assert_eq!(bnoel["status"], "inactive");

    // Policy and flag: a deletion, and the plan says in words that statistics are lost,
    // in every format.
    let run = server.plan(&decl, &["--allow-delete"], &[]);
    assert_eq!(run.code, 2, "{run}");
    assert!(
        run.stdout
            .contains("- delete representative/bnoel@acme.example"),
        "{run}"
    );
    assert!(
        run.stdout.contains("loses its statistics irreversibly"),
        "{run}"
    );
    let md = server.run(
        &[
            "plan",
            decl.to_str().unwrap(),
            "--allow-delete",
            "--format",
            "markdown",
        ],
        &[],
    );
    assert_eq!(md.code, 0, "{md}");
    assert!(md.stdout.contains("statistics"), "{md}");
    let plan = server.plan_json(&decl, &["--allow-delete"], &[]);
    let change = &plan["changes"][0];
    assert_eq!(change["action"], "delete", "{plan:#}");
    assert!(
        change["reason"]
            .as_str()
            .unwrap()
            .contains("loses its statistics irreversibly"),
        "{plan:#}"
    );

    // The live system deletes a representative only with the explicit statistics purge.
    let (status, body) = server.http(
        "DELETE",
        "/v1/representatives/bnoel%40acme.example",
        None,
        bnoel["version"].as_i64(),
    );
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["code"], "statistics-would-be-lost");

    let before = server.audit().len();
    server.apply_ok(&decl, &["--allow-delete"], &[]);
    assert_eq!(
        server.status_of("/v1/representatives/bnoel%40acme.example"),
        404
    );
    let audit = server.audit();
    let new: Vec<&Value> = audit[before..].iter().collect();
    assert_eq!(new.len(), 1, "{new:#?}");
    assert_eq!(new[0]["action"], "delete");
    assert_eq!(new[0]["key"], "bnoel@acme.example");
    assert_eq!(server.plan(&decl, &["--allow-delete"], &[]).code, 0);
}

// ------------------------------------------------------------------------- renames

#[test]
fn previously_renames_in_place_and_a_rename_onto_an_existing_name_is_an_error() {
    let server = Server::start(&[]);
    let tmp = tempfile::tempdir().unwrap();
    applied_base(&server, tmp.path());
    let jdoe_before = server.rep("jdoe@acme.example");

    let mut text = BASE.to_string();
    text = once(
        &text,
        "  - login: jdoe@acme.example\n",
        "  - login: john.doe@acme.example\n    previously: jdoe@acme.example\n",
    );
    text = once(
        &text,
        "      jdoe@acme.example: connect",
        "      john.doe@acme.example: connect",
    );
    text = once(
        &text,
        "  - login: marie@acme.example\n",
        "  - login: marie.curie@acme.example\n    previously: marie@acme.example\n",
    );
    text = once(
        &text,
        "  - name: Americas\n",
        "  - name: America\n    previously: Americas\n",
    );
    text = once(&text, "    team: Americas\n", "    team: America\n");
    let decl = declaration(tmp.path(), "renamed", &text);

    let plan = server.plan_json(&decl, &[], &[]);
    let actions: Vec<(String, String)> = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["action"].as_str().unwrap().to_string(),
                format!(
                    "{}/{}",
                    c["id"]["kind"].as_str().unwrap(),
                    c["id"]["key"].as_str().unwrap()
                ),
            )
        })
        .collect();
    assert_eq!(
        actions,
        vec![
            ("rename".into(), "team/America".into()),
            ("rename".into(), "manager/marie.curie@acme.example".into()),
            (
                "rename".into(),
                "representative/john.doe@acme.example".into()
            ),
        ],
        "one rename change per object, never delete + create: {plan:#}"
    );

    let before = server.audit().len();
    server.apply_ok(&decl, &[], &[]);
    let audit = server.audit();
    let new: Vec<&Value> = audit[before..].iter().collect();
    assert!(
        new.iter().all(|e| e["action"] == "update"),
        "renames are updates in the audit log: {new:#?}"
    );
    let rename_of = |kind: &str, field: &str, old: &str, new_key: &str| {
        assert!(
            new.iter().any(|e| e["kind"] == kind
                && e["before"][field] == old
                && e["after"][field] == new_key),
            "{kind} {old} → {new_key} in {new:#?}"
        );
    };
    rename_of(
        "representative",
        "login",
        "jdoe@acme.example",
        "john.doe@acme.example",
    );
    rename_of(
        "manager",
        "login",
        "marie@acme.example",
        "marie.curie@acme.example",
    );
    rename_of("team", "path", "Americas", "America");

    // The same object: the old key is gone, the new one keeps everything else.
    assert_eq!(
        server.status_of("/v1/representatives/jdoe%40acme.example"),
        404
    );
    let john = server.rep("john.doe@acme.example");
    for f in [
        "username",
        "first_name",
        "team",
        "features",
        "portals",
        "language",
    ] {
        assert_eq!(john[f], jdoe_before[f], "{f} kept");
    }
    assert_eq!(server.rep("bnoel@acme.example")["team"], "America");
    assert_eq!(
        server.get("/v1/contact-groups/key-accounts")["shared_with"],
        json!({"john.doe@acme.example": "connect"})
    );
    assert_eq!(server.plan(&decl, &[], &[]).code, 0, "converged");

    // A rename whose old and new names both exist is an error; nothing is written.
    let conflict = once(
        &text,
        "  - login: asmith@acme.example\n",
        "  - login: asmith@acme.example\n    previously: bnoel@acme.example\n",
    );
    let conflict = without_item(&conflict, "  - login: bnoel@acme.example");
    let decl = declaration(tmp.path(), "conflict", &conflict);
    let before = server.audit().len();
    let run = server.run(&["apply", decl.to_str().unwrap(), "--auto-approve"], &[]);
    assert_eq!(run.code, 4, "{run}");
    assert!(run.stderr.contains("error[rename-conflict]"), "{run}");
    assert!(
        run.stderr.contains(
            "cannot rename representative `bnoel@acme.example` to `asmith@acme.example`: both exist"
        ),
        "{run}"
    );
    assert_eq!(server.audit().len(), before, "nothing written");
}

// ----------------------------------------------------------------------- protection

#[test]
fn protection_is_recorded_live_and_survives_removal_from_the_yaml() {
    let server = Server::start(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let protected = once(
        BASE,
        "  - login: asmith@acme.example\n",
        "  - login: asmith@acme.example\n    protect: true\n",
    );
    let decl = declaration(tmp.path(), "protected", &protected);
    server.apply_ok(&decl, &[], &[]);
    assert_eq!(server.rep("asmith@acme.example")["protect"], true);

    // Removed from the YAML, with a policy that would delete it: refused, named.
    let removed = without_item(BASE, "  - login: asmith@acme.example");
    let removed = without_item(&removed, "  - name: old-friends");
    let removed = format!(
        "policy:\n  representatives: {{ unmanaged: remove, on_remove: delete }}\n{removed}"
    );
    let decl = declaration(tmp.path(), "removed", &removed);
    let before = server.audit().len();
    for extra in [&[][..], &["--allow-delete"][..]] {
        let run = server.plan(&decl, extra, &[]);
        assert_eq!(run.code, 4, "{run}");
        assert!(run.stderr.contains("error[protected]"), "{run}");
        assert!(
            run.stderr
                .contains("representative/asmith@acme.example is protected"),
            "{run}"
        );
        let mut args = vec!["apply", decl.to_str().unwrap(), "--auto-approve"];
        args.extend_from_slice(extra);
        let run = server.run(&args, &[]);
        assert_eq!(run.code, 4, "{run}");
    }
    assert_eq!(server.audit().len(), before, "nothing written");

    // Declared again without `protect`: the live protection stays (no change at all).
    let decl = declaration(tmp.path(), "plain", BASE);
    let run = server.plan(&decl, &[], &[]);
    assert_eq!(run.code, 0, "leaving `protect` out keeps it:\n{run}");
    // …and a deactivation of it is refused too.
    let inactive = once(
        BASE,
        "  - login: asmith@acme.example\n",
        "  - login: asmith@acme.example\n    status: inactive\n",
    );
    let decl = declaration(tmp.path(), "inactive", &inactive);
    let run = server.plan(&decl, &[], &[]);
    assert_eq!(run.code, 4, "{run}");
    assert!(run.stderr.contains("would deactivate it"), "{run}");
    assert_eq!(server.rep("asmith@acme.example")["status"], "active");

    // An explicit `protect: false` lifts it; then the removal goes through.
    let lifted = once(
        BASE,
        "  - login: asmith@acme.example\n",
        "  - login: asmith@acme.example\n    protect: false\n",
    );
    let decl = declaration(tmp.path(), "lifted", &lifted);
    let run = server.plan(&decl, &[], &[]);
    assert_eq!(run.code, 2, "{run}");
    assert!(run.stdout.contains("protect: true → false"), "{run}");
    server.apply_ok(&decl, &[], &[]);
    let asmith = server.rep("asmith@acme.example");
    assert!(asmith["protect"] != true, "{asmith}");
    // The contact group `old-friends` (not declared, left in place) still refers to
    // asmith: the live system would refuse the deletion, so the plan does.
    let decl = declaration(tmp.path(), "removed2", &removed);
    let run = server.plan(&decl, &["--allow-delete"], &[]);
    assert_eq!(run.code, 4, "{run}");
    assert!(run.stderr.contains("error[unresolved-reference]"), "{run}");
    assert!(
        run.stderr
            .contains("contact_group/old-friends (shared_with)"),
        "{run}"
    );
    let removed = removed.replacen(
        "policy:\n",
        "policy:\n  contact_groups: { unmanaged: remove }\n",
        1,
    );
    let decl = declaration(tmp.path(), "removed3", &removed);
    server.apply_ok(&decl, &["--allow-delete"], &[]);
    assert_eq!(server.status_of("/v1/contact-groups/old-friends"), 404);
    assert_eq!(
        server.status_of("/v1/representatives/asmith%40acme.example"),
        404
    );
}

// ------------------------------------------------------------------ removal threshold

/// 8 teams of 3 representatives (each with 3 features and a portal) and 4 managers of
/// 2 teams with 4 rights each; `emptied` keeps every object but takes every membership,
/// feature, portal, manager team and right away (the known failure of other tools: a
/// declaration that still lists everyone, with the relationships gone).
fn threshold_org(emptied: bool, policy: &str) -> String {
    let mut s = String::from("version: 1\n");
    s.push_str(policy);
    s.push_str("portals:\n  - name: web\n    features: [file_transfer_send]\nteams:\n");
    for t in 0..8 {
        s.push_str(&format!("  - name: T{t}\n"));
    }
    s.push_str("managers:\n");
    for m in 0..4 {
        s.push_str(&format!(
            "  - login: m{m}@acme.example\n    email: m{m}@acme.example\n    name: Manager {m}\n"
        ));
        if emptied {
            s.push_str("    teams: []\n    team_rights: []\n");
        } else {
            s.push_str(&format!(
                "    teams: [T{}, T{}]\n    team_rights: [manage_representatives, schedule_reports, session_replay, cancel_requests]\n",
                2 * m,
                2 * m + 1
            ));
        }
    }
    s.push_str("representatives:\n");
    for t in 0..8 {
        for r in 0..3 {
            s.push_str(&format!(
                "  - login: r{t}x{r}@acme.example\n    email: r{t}x{r}@acme.example\n    first_name: Rep\n    last_name: T{t}x{r}\n"
            ));
            if !emptied {
                s.push_str(&format!(
                    "    team: T{t}\n    features: [admin_center_access, reports, file_transfer_send]\n    portals: [web]\n"
                ));
            }
        }
    }
    s
}

#[test]
fn removal_threshold_stops_a_plan_that_empties_teams_and_force_proceeds() {
    let server = Server::start(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let full = declaration(tmp.path(), "full", &threshold_org(false, ""));
    server.apply_ok(&full, &[], &[]);
    let emptied = declaration(tmp.path(), "emptied", &threshold_org(true, ""));

    // Every object is still declared, yet the plan stops before any write.
    let before = server.audit().len();
    let run = server.plan(&emptied, &[], &[]);
    assert_eq!(run.code, 4, "{run}");
    assert!(run.stderr.contains("error[removal-threshold]"), "{run}");
    assert!(run.stderr.contains("--force"), "names --force:\n{run}");
    assert!(
        run.stderr
            .contains("manager/m0@acme.example loses teams T0"),
        "says which removals:\n{run}"
    );
    assert!(
        run.stderr
            .contains("manager/m0@acme.example loses team_rights cancel_requests"),
        "{run}"
    );
    assert!(
        run.stderr
            .contains("this plan removes 144 objects and relationships"),
        "24 memberships, 72 features, 24 portals, 8 manager teams, 16 rights:\n{run}"
    );
    assert!(run.stderr.contains("… and "), "the rest is counted:\n{run}");
    let run = server.run(&["apply", emptied.to_str().unwrap(), "--auto-approve"], &[]);
    assert_eq!(run.code, 4, "{run}");
    assert!(run.stderr.contains("--force"), "{run}");
    assert_eq!(server.audit().len(), before, "nothing was written");
    assert_eq!(server.rep("r0x0@acme.example")["team"], "T0");

    // A small removal under the threshold goes through without --force.
    let mut small = threshold_org(false, "");
    small = once(
        &small,
        "  - login: r7x2@acme.example\n    email: r7x2@acme.example\n    first_name: Rep\n    last_name: T7x2\n    team: T7\n    features: [admin_center_access, reports, file_transfer_send]\n",
        "  - login: r7x2@acme.example\n    email: r7x2@acme.example\n    first_name: Rep\n    last_name: T7x2\n    team: T7\n    features: [admin_center_access]\n",
    );
    let small = declaration(tmp.path(), "small", &small);
    let run = server.plan(&small, &[], &[]);
    assert_eq!(run.code, 2, "2 removals are under the threshold:\n{run}");

    // The threshold is configurable: raised, the emptying plan needs no --force.
    let raised = declaration(
        tmp.path(),
        "raised",
        &threshold_org(
            true,
            "policy:\n  removal_threshold: { count: 1000, percent: 100 }\n",
        ),
    );
    assert_eq!(server.plan(&raised, &[], &[]).code, 2);
    // Lowered, the small plan stops.
    let lowered = std::fs::read_to_string(small.join("org.yaml"))
        .unwrap()
        .replacen(
            "version: 1\n",
            "version: 1\npolicy:\n  removal_threshold: { count: 1, percent: 0 }\n",
            1,
        );
    let lowered = declaration(tmp.path(), "lowered", &lowered);
    let run = server.plan(&lowered, &[], &[]);
    assert_eq!(run.code, 4, "{run}");
    assert!(run.stderr.contains("error[removal-threshold]"), "{run}");

    // --force proceeds.
    let run = server.run(
        &[
            "apply",
            emptied.to_str().unwrap(),
            "--auto-approve",
            "--force",
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{run}");
    let r = server.rep("r0x0@acme.example");
    assert!(r.get("team").is_none_or(Value::is_null), "{r}");
    assert_eq!(r["features"], json!([]));
    let m = server.get("/v1/managers/m0%40acme.example");
    assert_eq!(m["team_rights"], json!([]), "{m}");
    assert_eq!(server.plan(&emptied, &[], &[]).code, 0, "converged");
}

// -------------------------------------------------------------------------- secrets

const PLANTED: &str = "S3cr3t-Planted-7f1c";
const PLANTED_2: &str = "S3cr3t-Planted-7f1c-rotated";

fn secrets_org(rotation: &str, pw_file: &Path) -> String {
    format!(
        r#"version: 1
teams:
  - name: Europe
managers:
  - login: marie@acme.example
    email: marie@acme.example
    name: Marie Curie
    password: {{ env: SAFETY_MANAGER_PASSWORD, rotation: "{rotation}" }}
    teams: [Europe]
    team_rights: [manage_representatives]
representatives:
  - login: jdoe@acme.example
    email: jdoe@acme.example
    first_name: John
    last_name: Doe
    team: Europe
    password: {{ file: "{}", rotation: "{rotation}" }}
"#,
        pw_file.display()
    )
}

/// Everything a test produced, to search for a secret.
#[derive(Default)]
struct Outputs(Vec<(String, String)>);

impl Outputs {
    fn run(&mut self, what: &str, run: &Run) {
        self.0
            .push((format!("{what} (stdout)"), run.stdout.clone()));
        self.0
            .push((format!("{what} (stderr)"), run.stderr.clone()));
    }
    fn text(&mut self, what: &str, text: String) {
        self.0.push((what.to_string(), text));
    }
    fn dir(&mut self, what: &str, dir: &Path) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                self.dir(what, &p);
            } else {
                let bytes = std::fs::read(&p).unwrap();
                self.text(
                    &format!("{what}: {}", p.display()),
                    String::from_utf8_lossy(&bytes).into_owned(),
                );
            }
        }
    }
    fn assert_clean(&self) {
        // The value, and a few of its obvious transformations.
        let b64 = {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(PLANTED)
        };
        let needles = [
            PLANTED.to_string(),
            "S3cr3t-Planted".into(),
            b64,
            hex::encode(PLANTED),
        ];
        for (what, text) in &self.0 {
            for n in &needles {
                assert!(
                    !text.contains(n.as_str()),
                    "the secret appears in {what}:\n{text}"
                );
            }
        }
    }
}

#[test]
fn a_planted_secret_appears_in_no_output_file_or_log() {
    let server = Server::start(&["-vvv"]);
    let tmp = tempfile::tempdir().unwrap();
    let pw_file = tmp.path().join("jdoe.password");
    std::fs::write(&pw_file, format!("{PLANTED}\n")).unwrap();
    let env = [("SAFETY_MANAGER_PASSWORD", PLANTED)];
    let mut out = Outputs::default();
    let decl = declaration(tmp.path(), "v1", &secrets_org("r1", &pw_file));

    // Every rendering of the plan, at every verbosity, and a saved plan.
    for fmt in ["text", "json", "markdown"] {
        let run = server.run(
            &["-vvv", "plan", decl.to_str().unwrap(), "--format", fmt],
            &env,
        );
        assert_eq!(run.code, 0, "{run}");
        out.run(&format!("plan --format {fmt} -vvv"), &run);
    }
    let run = server.run(&["plan", decl.to_str().unwrap()], &env);
    assert!(
        run.stdout
            .contains("password: (set from env SAFETY_MANAGER_PASSWORD)"),
        "the plan names the reference:\n{run}"
    );
    out.run("plan", &run);
    let saved = tmp.path().join("saved.json");
    let run = server.run(
        &[
            "-vv",
            "plan",
            decl.to_str().unwrap(),
            "--out",
            saved.to_str().unwrap(),
        ],
        &env,
    );
    assert_eq!(run.code, 0, "{run}");
    out.run("plan --out", &run);
    out.text("saved plan", std::fs::read_to_string(&saved).unwrap());

    // Created on the server through the saved plan (apply resolves the references).
    let run = server.run(&["-vvv", "apply", "--plan", saved.to_str().unwrap()], &env);
    assert_eq!(run.code, 0, "{run}");
    assert!(
        run.stderr.contains("POST /v1/representatives"),
        "-vvv logs the requests:\n{run}"
    );
    out.run("apply --plan -vvv", &run);
    assert_eq!(
        server.get("/v1/managers/marie%40acme.example")["password"],
        json!({"rotation": "r1"}),
        "the password was set"
    );
    assert_eq!(
        server.rep("jdoe@acme.example")["password"],
        json!({"rotation": "r1"})
    );
    // Unchanged rotation: the password is not sent again.
    let run = server.plan(&decl, &[], &env);
    assert_eq!(run.code, 0, "{run}");

    // A rotation: new values, new markers; JSON report and text report.
    std::fs::write(&pw_file, PLANTED_2).unwrap();
    let env2 = [("SAFETY_MANAGER_PASSWORD", PLANTED_2)];
    let decl2 = declaration(tmp.path(), "v2", &secrets_org("r2", &pw_file));
    for fmt in ["text", "json", "markdown"] {
        let run = server.run(&["plan", decl2.to_str().unwrap(), "--format", fmt], &env2);
        assert_eq!(run.code, 0, "{run}");
        assert!(run.stdout.contains("r2"), "the rotation shows:\n{run}");
        out.run(&format!("rotation plan --format {fmt}"), &run);
    }
    let run = server.run(
        &[
            "-vvv",
            "apply",
            decl2.to_str().unwrap(),
            "--auto-approve",
            "--format",
            "json",
        ],
        &env2,
    );
    assert_eq!(run.code, 0, "{run}");
    out.run("rotation apply --format json -vvv", &run);
    let report: Value = serde_json::from_str(&run.stdout).expect("the report is json");
    assert!(report.is_object(), "{report}");
    assert_eq!(
        server.rep("jdoe@acme.example")["password"],
        json!({"rotation": "r2"})
    );

    // Error paths. A referenced file that cannot be read, a missing variable: the plan
    // stops, naming the object and the source, not only apply.
    let decl3 = declaration(
        tmp.path(),
        "v3",
        &secrets_org("r3", &tmp.path().join("no-such-dir/pw")),
    );
    let before = server.audit().len();
    let run = server.run(&["-vvv", "plan", decl3.to_str().unwrap()], &env);
    assert_eq!(run.code, 3, "{run}");
    assert!(run.stderr.contains("error[secret]"), "{run}");
    assert!(
        run.stderr
            .contains("the password of representative/jdoe@acme.example cannot be read"),
        "{run}"
    );
    assert!(run.stderr.contains("no-such-dir/pw"), "{run}");
    out.run("plan with an unreadable file", &run);
    let run = server.run(&["plan", decl3.to_str().unwrap()], &[]);
    assert_eq!(run.code, 3, "{run}");
    assert!(
        run.stderr.contains("`SAFETY_MANAGER_PASSWORD` is not set"),
        "{run}"
    );
    let run = server.run(&["apply", decl3.to_str().unwrap(), "--auto-approve"], &env);
    assert_eq!(run.code, 3, "{run}");
    out.run("apply with an unreadable file", &run);
    assert_eq!(server.audit().len(), before, "nothing was written");

    // A password written as text in the YAML (a mistake): the diagnostics mask it.
    let typed = once(
        &secrets_org("r1", &pw_file),
        "    password: { env: SAFETY_MANAGER_PASSWORD, rotation: \"r1\" }",
        &format!("    password: {PLANTED}"),
    );
    let decl4 = declaration(tmp.path(), "typed", &typed);
    for fmt in ["text", "json"] {
        let run = server.run(
            &["-vvv", "validate", decl4.to_str().unwrap(), "--format", fmt],
            &[],
        );
        assert_eq!(run.code, 3, "{run}");
        out.run(&format!("validate a password as text --format {fmt}"), &run);
    }
    let run = server.run(&["-vvv", "plan", decl4.to_str().unwrap()], &[]);
    assert_eq!(run.code, 3, "{run}");
    out.run("plan a password as text", &run);
    let valued = once(
        &secrets_org("r1", &pw_file),
        "    password: { env: SAFETY_MANAGER_PASSWORD, rotation: \"r1\" }",
        &format!("    password: {{ env: SAFETY_MANAGER_PASSWORD, value: \"{PLANTED}\" }}"),
    );
    let decl5 = declaration(tmp.path(), "valued", &valued);
    let run = server.run(&["-vvv", "plan", decl5.to_str().unwrap()], &env);
    assert_eq!(run.code, 3, "a `value` in YAML is refused:\n{run}");
    out.run("plan a password value in the YAML", &run);

    // A server error on the object being given a password: the PATCH of a rotation gets
    // 412 because the representative changed during the apply's pause.
    let env3 = [("SAFETY_MANAGER_PASSWORD", PLANTED), (PAUSE, "1500")];
    std::fs::write(&pw_file, PLANTED).unwrap();
    let decl6 = declaration(tmp.path(), "v6", &secrets_org("r6", &pw_file));
    let cmd = server.command(
        &[
            "-vvv",
            "apply",
            decl6.to_str().unwrap(),
            "--auto-approve",
            "--parallelism",
            "1",
        ],
        server.dir.path(),
        &env3,
    );
    let paused = Paused::start(cmd);
    let jdoe = server.rep("jdoe@acme.example");
    let (status, body) = server.http(
        "PATCH",
        "/v1/representatives/jdoe%40acme.example",
        Some(json!({"language": "it"})),
        jdoe["version"].as_i64(),
    );
    assert_eq!(status, 200, "{body}");
    let (status, stdout, stderr) = paused.finish(COMMAND_TIMEOUT);
    assert_eq!(status.code(), Some(6), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("representative/jdoe@acme.example") && stdout.contains("412"),
        "the failure is reported for that object:\n{stdout}"
    );
    out.text("apply with a 412 (stdout)", stdout);
    out.text("apply with a 412 (stderr)", stderr);

    // The server's error answers never echo a password sent in the wrong shape.
    for password in [
        json!(PLANTED),
        json!({"value": [PLANTED]}),
        json!({"value": PLANTED, "env": "X"}),
    ] {
        let (status, problem) = server.http(
            "POST",
            "/v1/representatives",
            Some(json!({"login": "x@acme.example", "email": "x@acme.example",
                        "first_name": "X", "last_name": "Y", "password": password})),
            None,
        );
        assert_eq!(status, 422, "{problem}");
        out.text("server error answer", problem.to_string());
    }

    // Export, the audit log, the server's own -vvv log, the database file.
    let exported = tmp.path().join("exported");
    let run = server.run(
        &["-vvv", "export", "--out", exported.to_str().unwrap()],
        &[],
    );
    assert_eq!(run.code, 0, "{run}");
    out.run("export", &run);
    out.dir("export", &exported);
    out.text("audit log", serde_json::to_string(&server.audit()).unwrap());
    let server_log = server.log();
    assert!(
        server_log.contains("POST /v1/representatives") && server_log.contains("PATCH /v1/"),
        "the server logs its requests at -vvv:\n{server_log}"
    );
    out.text("server log (-vvv)", server_log);
    let db = server.dir.path().join("live.db");
    let mut raw = std::fs::read(&db).unwrap();
    if let Ok(wal) = std::fs::read(server.dir.path().join("live.db-wal")) {
        raw.extend(wal);
    }
    out.text("database file", String::from_utf8_lossy(&raw).into_owned());
    out.dir("working directory", &tmp.path().join("v1"));
    out.assert_clean();
    // The second value too.
    for (what, text) in &out.0 {
        assert!(
            !text.contains(PLANTED_2),
            "the rotated secret appears in {what}"
        );
    }
}

// ----------------------------------------------------------------------- manager scope

#[test]
fn a_manager_token_plans_only_its_teams_and_rule_6_is_reported_at_plan_time() {
    let server = Server::start(&[]);
    let tmp = tempfile::tempdir().unwrap();
    applied_base(&server, tmp.path());

    // A manager token through the command line, another through the API.
    let tok = server.run(
        &[
            "token",
            "create",
            "--manager",
            "marie@acme.example",
            "--database",
            &server.database(),
        ],
        &[],
    );
    assert_eq!(tok.code, 0, "{tok}");
    let cli_token = tok.stdout.trim().to_string();
    assert!(!cli_token.is_empty() && !cli_token.contains(' '), "{tok}");
    let (status, body) = server.http(
        "POST",
        "/v1/tokens",
        Some(json!({"manager": "marie@acme.example"})),
        None,
    );
    assert_eq!(status, 201, "{body}");
    let api_token = body["token"].as_str().unwrap().to_string();

    for token in [&cli_token, &api_token] {
        let env = [("ROSTER_TOKEN", token.as_str())];
        // The whole organization, unchanged: no change; the rest is out of scope.
        let decl = tmp.path().join("base");
        let run = server.plan(&decl, &[], &env);
        assert_eq!(run.code, 0, "{run}");
        assert!(
            run.stdout
                .contains("Outside the token's scope (never touched):"),
            "{run}"
        );
        for id in [
            "team/Americas",
            "representative/bnoel@acme.example",
            "representative/asmith@acme.example",
        ] {
            assert!(run.stdout.contains(&format!("  {id}\n")), "{id}:\n{run}");
        }
    }
    let env = [("ROSTER_TOKEN", cli_token.as_str())];

    // Changes inside and outside the scope: only the inside one is planned and written.
    let mut text = once(BASE, "    language: fr\n", "    language: es\n");
    text = once(&text, "    language: de\n", "    language: pt\n");
    let decl = declaration(tmp.path(), "mixed", &text);
    let plan = server.plan_json(&decl, &[], &env);
    assert_eq!(plan["principal"]["role"], "manager", "{plan:#}");
    let changes = plan["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{plan:#}");
    assert_eq!(changes[0]["id"]["key"], "jdoe@acme.example");
    assert!(
        plan["out_of_scope"]
            .as_array()
            .unwrap()
            .contains(&json!({"kind": "representative", "key": "bnoel@acme.example"})),
        "{plan:#}"
    );
    let before = server.audit().len();
    server.apply_ok(&decl, &[], &env);
    let audit = server.audit();
    let new: Vec<&Value> = audit[before..].iter().collect();
    assert_eq!(new.len(), 1, "{new:#?}");
    assert_eq!(new[0]["actor"], "marie@acme.example");
    assert_eq!(new[0]["key"], "jdoe@acme.example");
    assert_eq!(server.rep("jdoe@acme.example")["language"], "es");
    assert_eq!(
        server.rep("bnoel@acme.example")["language"],
        "de",
        "never touched"
    );

    // What the server would refuse under rule 6 stops the plan, naming rule and object:
    // a feature outside `grantable`, a name change without `edit_rep_name_login`, a move
    // out of the scope, a new sub-team without `manage_subteams`, a portal.
    let mut text = once(BASE, "    language: fr\n", "    language: es\n");
    text = once(
        &text,
        "    features: [admin_center_access, reports]\n    portals: [web]\n",
        "    features: [admin_center_access, reports, file_transfer_send]\n    portals: [web]\n",
    );
    text = once(&text, "    last_name: Doe\n", "    last_name: Doe-Martin\n");
    text = once(
        &text,
        "      - name: Paris\n",
        "      - name: Paris\n        teams:\n          - name: North\n",
    );
    text = once(
        &text,
        "    features: [file_transfer_send, multisession]\n",
        "    features: [file_transfer_send]\n",
    );
    text = once(
        &text,
        "    team_rights: [manage_representatives, session_replay]\n",
        "    team_rights: [manage_representatives]\n",
    );
    let decl = declaration(tmp.path(), "escalating", &text);
    let before = server.audit().len();
    let run = server.plan(&decl, &[], &env);
    assert_eq!(run.code, 4, "{run}");
    for needle in [
        "error[escalation]",
        "rule 6",
        "may not grant or revoke file_transfer_send on representative/jdoe@acme.example",
        "lacks the team right `edit_rep_name_login` needed to change the name or login of representative jdoe@acme.example",
        "lacks the team right `manage_subteams` needed to change team Europe/Paris/North",
        "cannot update portal/web",
        "manager marie@acme.example cannot update manager marie@acme.example without the `manage_managers` right",
    ] {
        assert!(run.stderr.contains(needle), "{needle}:\n{run}");
    }
    // The live system refuses the same writes with this token (what the plan predicts).
    let jdoe = server.rep("jdoe@acme.example");
    for (path, body, version) in [
        (
            "/v1/representatives/jdoe%40acme.example",
            json!({"last_name": "Doe-Martin"}),
            jdoe["version"].as_i64(),
        ),
        (
            "/v1/representatives/jdoe%40acme.example",
            json!({"features": ["admin_center_access", "reports", "file_transfer_send"]}),
            jdoe["version"].as_i64(),
        ),
        (
            "/v1/managers/marie%40acme.example",
            json!({"team_rights": ["manage_representatives"]}),
            server.get("/v1/managers/marie%40acme.example")["version"].as_i64(),
        ),
    ] {
        let (status, problem) =
            server.http_as(&cli_token, "PATCH", path, Some(body.clone()), version);
        assert_eq!(status, 403, "{path} {body}: {problem}");
    }
    let run = server.run(&["apply", decl.to_str().unwrap(), "--auto-approve"], &env);
    assert_eq!(run.code, 4, "{run}");
    assert_eq!(server.audit().len(), before, "nothing was written");

    // A representative moved out of the scope.
    let text = once(BASE, "    team: Europe/Paris\n", "    team: Americas\n");
    let text = text.replace("    language: fr\n", "    language: es\n");
    let decl = declaration(tmp.path(), "moving-out", &text);
    let run = server.plan(&decl, &[], &env);
    assert_eq!(run.code, 4, "{run}");
    assert!(
        run.stderr
            .contains("representative jdoe@acme.example would be in team Americas, outside the teams of manager marie@acme.example"),
        "{run}"
    );
}
