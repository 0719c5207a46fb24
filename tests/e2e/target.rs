//! End to end, issue 12 "targeting": `--target KIND/KEY` and `--exclude KIND/KEY` on
//! `plan` and `apply`. A targeted change brings what it depends on (a new
//! representative's new team), and the plan names it and says it is partial; a
//! dependency left out by `--exclude` refuses the plan (exit 4, nothing written); an
//! excluded removal is not applied while the other changes are; a saved partial plan
//! applies only its own changes; an unknown kind is a usage error.

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

    fn writes(&self) -> usize {
        self.audit().len()
    }
}

const NILS: &str = "nils.berg@acme.example";
const CAMILLE: &str = "/v1/representatives/camille.martin%40acme.example";
const MICHAL: &str = "michal.lewandowski@acme.example";

/// examples/acme in `dir/<name>`, each file through `edit`.
fn declaration(dir: &Path, name: &str, edit: impl Fn(&str, String) -> String) -> PathBuf {
    let org = dir.join(name);
    copy_acme(&org, edit);
    org
}

/// Camille renamed (an update elsewhere), and a new team Europe/Nordics with a new
/// representative in it.
fn with_new_team(file: &str, text: String) -> String {
    let text = text.replace("last_name: Martin\n", "last_name: Martin-Roy\n");
    match file {
        "teams.yaml" => text.replace(
            "      - name: Lyon\n",
            "      - name: Nordics\n        description: Nordic support\n      - name: Lyon\n",
        ),
        "representatives-europe.yaml" => format!(
            "{text}  - login: {NILS}\n    email: {NILS}\n    first_name: Nils\n    \
             last_name: Berg\n    language: en\n    team: Europe/Nordics\n    \
             portals: [web-support]\n"
        ),
        _ => text,
    }
}

/// A server with examples/acme applied.
fn applied(dir: &Path) -> Server {
    let server = Server::start(&[]);
    let org = declaration(dir, "acme", |_, t| t);
    let run = server.roster(&["apply", org.to_str().unwrap(), "--auto-approve"], dir);
    assert_eq!(run.code, 0, "{run}");
    server
}

#[test]
fn a_target_pulls_in_the_team_it_needs_and_the_plan_says_it_is_partial() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let server = applied(dir);
    let org = declaration(dir, "org", with_new_team);
    let org = org.to_str().unwrap();
    let target = format!("representative/{NILS}");

    let text = server.roster(&["plan", org, "--target", &target], dir);
    assert_eq!(text.code, 0, "{text}");
    assert!(
        text.stdout
            .contains("partial plan: 1 change left out by --target/--exclude"),
        "{text}"
    );
    assert!(
        text.stdout
            .contains(&format!("team/Europe/Nordics (create), needed by {target}")),
        "names what it pulled in: {text}"
    );
    assert!(text.stdout.contains("Plan: 2 to create."), "{text}");
    assert!(!text.stdout.contains("camille.martin"), "{text}");

    let md = server.roster(
        &["plan", org, "--target", &target, "--format", "markdown"],
        dir,
    );
    assert!(
        md.stdout
            .contains("partial plan: 1 change left out by --target/--exclude"),
        "{md}"
    );

    let run = server.roster(
        &["plan", org, "--target", &target, "--out", "plan.json"],
        dir,
    );
    assert_eq!(run.code, 0, "{run}");
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("plan.json")).unwrap()).unwrap();
    assert_eq!(saved["partial"]["left_out"], 1, "{saved}");
    assert_eq!(saved["partial"]["targets"][0], target.as_str(), "{saved}");
    assert_eq!(
        saved["partial"]["pulled_in"][0]["id"]["key"], "Europe/Nordics",
        "{saved}"
    );
    let keys: Vec<&str> = saved["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"]["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["Europe/Nordics", NILS], "{saved}");

    // The saved partial plan applies only its own changes.
    let run = server.roster(&["apply", "--plan", "plan.json"], dir);
    assert_eq!(run.code, 0, "{run}");
    let rep = server.get(&format!("/v1/representatives/{}", NILS.replace('@', "%40")));
    assert_eq!(rep["team"], "Europe/Nordics", "{rep}");
    assert_eq!(
        server.get(CAMILLE)["last_name"],
        "Martin",
        "the change left out is not applied"
    );
    // What is left is the change left out.
    let rest = server.roster(&["plan", org, "--detailed-exitcode"], dir);
    assert_eq!(rest.code, 2, "{rest}");
    assert!(rest.stdout.contains("Plan: 1 to update."), "{rest}");
}

#[test]
fn an_excluded_dependency_refuses_the_plan_naming_it_and_nothing_is_written() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let server = applied(dir);
    let org = declaration(dir, "org", with_new_team);
    let org = org.to_str().unwrap();
    let target = format!("representative/{NILS}");
    let before = server.writes();

    let args = ["--target", &target, "--exclude", "team/Europe/*"];
    let plan = server.roster(&[&["plan", org][..], &args[..]].concat(), dir);
    assert_eq!(plan.code, 4, "refused: {plan}");
    assert!(plan.stdout.contains("target-dependency"), "{plan}");
    assert!(
        plan.stdout.contains("team/Europe/Nordics")
            && plan.stdout.contains("--exclude team/Europe/*"),
        "names the dependency and the pattern: {plan}"
    );
    let json = server.roster(
        &[&["plan", org, "--format", "json"][..], &args[..]].concat(),
        dir,
    );
    let v: Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(v["refusals"][0]["rule"], "target-dependency", "{v}");
    assert_eq!(
        v["refusals"][0]["objects"][0]["key"], "Europe/Nordics",
        "{v}"
    );

    let apply = server.roster(
        &[&["apply", org, "--auto-approve"][..], &args[..]].concat(),
        dir,
    );
    assert_eq!(apply.code, 4, "{apply}");
    assert_eq!(server.writes(), before, "nothing written");
}

#[test]
fn an_excluded_removal_is_not_applied_while_the_other_changes_are() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let server = applied(dir);
    // Michał is removed from the files under `unmanaged: remove, on_remove: deactivate`;
    // Camille's name changes.
    let org = declaration(dir, "org", |file, text| {
        let text = text
            .replace("last_name: Martin\n", "last_name: Martin-Roy\n")
            .replace(
                "representatives: { unmanaged: warn, on_remove: deactivate }",
                "representatives: { unmanaged: remove, on_remove: deactivate }",
            );
        if file == "representatives-europe.yaml" {
            let cut = text.find(&format!("  - login: {MICHAL}")).unwrap();
            text[..cut].to_string()
        } else {
            text
        }
    });
    let org = org.to_str().unwrap();
    let exclude = "representative/michal.*";

    let full = server.roster(&["plan", org], dir);
    assert!(
        full.stdout
            .contains(&format!("deactivate representative/{MICHAL}")),
        "without --exclude the removal is planned: {full}"
    );

    let run = server.roster(&["apply", org, "--auto-approve", "--exclude", exclude], dir);
    assert_eq!(run.code, 0, "{run}");
    assert!(
        run.stdout
            .contains("partial plan: 1 change left out by --target/--exclude"),
        "{run}"
    );
    let michal = server.get(&format!(
        "/v1/representatives/{}",
        MICHAL.replace('@', "%40")
    ));
    assert_eq!(michal["status"], "active", "not deactivated: {michal}");
    assert_eq!(server.get(CAMILLE)["last_name"], "Martin-Roy");
}

#[test]
fn an_unknown_kind_is_a_usage_error_and_a_pattern_naming_nothing_a_warning() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let server = applied(dir);
    let org = declaration(dir, "org", with_new_team);
    let org = org.to_str().unwrap();

    let run = server.roster(&["plan", org, "--target", "agent/x"], dir);
    assert_eq!(run.code, 64, "{run}");
    assert!(
        run.stderr.contains("unknown kind `agent`") && run.stderr.contains("representative"),
        "{run}"
    );

    // A saved plan is applied whole: targeting it is a usage error too.
    let run = server.roster(
        &["apply", "--plan", "plan.json", "--target", "team/Europe/*"],
        dir,
    );
    assert_eq!(run.code, 64, "{run}");
    assert!(run.stderr.contains("cannot be used with"), "{run}");

    let run = server.roster(
        &[
            "plan",
            org,
            "--target",
            "team/Asia*",
            "--target",
            "team/Europe/*",
        ],
        dir,
    );
    assert_eq!(run.code, 0, "{run}");
    assert!(
        run.stdout
            .contains("`--target team/Asia*` names no change of this plan"),
        "{run}"
    );
    assert!(run.stdout.contains("Plan: 1 to create."), "{run}");
}
