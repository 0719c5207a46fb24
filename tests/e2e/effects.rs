//! End to end, issue "Who can do what" in plans: after `apply` of examples/acme on a real
//! `roster serve`, taking `file_transfer_send` away from the `mobile-app` portal makes
//! the plan say who loses it in effect — every representative whose only enabling
//! portal it was, as `roster access` of the two declarations says independently — in
//! text, Markdown and JSON; under a small removal threshold (the declaration's policy)
//! those indirect losses refuse the plan (exit 4) unless `--force`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::cli::{Harness, Run, bin, copy_acme, wait_output};

const HARNESS: Harness = Harness::plain("500");

module_server!();

impl Server {
    fn roster(&self, args: &[&str], cwd: &Path) -> Run {
        let mut cmd = self.base_command(args, cwd);
        cmd.env_remove("RUST_LOG");
        self.finish(cmd, &args.join(" "))
    }
}

const MOBILE: &str = "features: [file_transfer_send, file_transfer_receive, share_my_screen]";

fn declaration(dir: &Path, name: &str, edit: impl Fn(&str, String) -> String) -> PathBuf {
    let org = dir.join(name);
    copy_acme(&org, edit);
    org
}

/// `mobile-app` without `file_transfer_send`; the removal threshold as given.
fn without_transfer(threshold: &'static str) -> impl Fn(&str, String) -> String {
    move |file, text| match file {
        "portals.yaml" => {
            assert!(text.contains(MOBILE));
            text.replace(MOBILE, "features: [file_transfer_receive, share_my_screen]")
        }
        "policy.yaml" => {
            let old = "removal_threshold: { count: 10, percent: 25 }";
            assert!(text.contains(old));
            text.replace(old, threshold)
        }
        _ => text,
    }
}

/// The holders of `file_transfer_send` in effect by `roster access` of a declaration.
fn holders(org: &Path) -> BTreeSet<String> {
    let mut cmd = std::process::Command::new(bin());
    cmd.arg("access")
        .arg(org)
        .args(["--format", "json"])
        .env_remove("ROSTER_ENDPOINT")
        .env_remove("ROSTER_TOKEN")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let run: Run = wait_output(
        cmd.spawn().unwrap(),
        std::time::Duration::from_secs(60),
        "roster access",
    )
    .into();
    assert_eq!(run.code, 0, "{run}");
    let v: Value = serde_json::from_str(&run.stdout).unwrap();
    v["features"]["file_transfer_send"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_portal_feature_taken_away_names_who_loses_it_and_counts_toward_the_threshold() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let server = Server::start(&[]);
    let acme = declaration(dir, "acme", |_, t| t);
    let run = server.roster(&["apply", acme.to_str().unwrap(), "--auto-approve"], dir);
    assert_eq!(run.code, 0, "{run}");

    // Under the example's own threshold: shown, not refused.
    let org = declaration(
        dir,
        "org",
        without_transfer("removal_threshold: { count: 10, percent: 25 }"),
    );
    let expected: BTreeSet<String> = holders(&acme).difference(&holders(&org)).cloned().collect();
    assert!(
        expected.len() >= 2,
        "the example has reps only mobile-app enables: {expected:?}"
    );
    let o = org.to_str().unwrap();

    let run = server.roster(&["plan", o, "--format", "json"], dir);
    assert_eq!(run.code, 0, "{run}");
    let plan: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(plan["changes"].as_array().unwrap().len(), 1, "{plan}");
    let effects = plan["effects"].as_array().unwrap();
    let loses: Vec<&Value> = effects
        .iter()
        .filter(|e| e["change"] == "loses" && e["what"] == "feature file_transfer_send")
        .collect();
    assert_eq!(loses.len(), 1, "one group: {effects:?}");
    let people: BTreeSet<String> = loses[0]["people"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect();
    assert_eq!(people, expected);
    assert_eq!(loses[0]["because"][0]["key"], "mobile-app");

    let text = server.roster(&["plan", o], dir);
    assert_eq!(text.code, 0, "{text}");
    assert!(
        text.stdout.contains("Who gains or loses what (in effect):"),
        "{text}"
    );
    let line = format!(
        "{} representatives lose feature file_transfer_send (via portal/mobile-app): ",
        expected.len()
    );
    assert!(text.stdout.contains(&line), "{text}");
    for login in &expected {
        assert!(text.stdout.contains(login.as_str()), "{login}: {text}");
    }
    let md = server.roster(&["plan", o, "--format", "markdown"], dir);
    assert_eq!(md.code, 0, "{md}");
    assert!(
        md.stdout
            .contains("### Who gains or loses what (in effect)"),
        "{md}"
    );

    // A small threshold: the one direct removal is under it, the indirect losses are not.
    let small = declaration(
        dir,
        "small",
        without_transfer("removal_threshold: { count: 2, percent: 0 }"),
    );
    let s = small.to_str().unwrap();
    let run = server.roster(&["plan", s], dir);
    assert_eq!(run.code, 4, "{run}");
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(all.contains("removal-threshold"), "{run}");
    assert!(
        all.contains(&format!("removes {} objects", expected.len() + 1)),
        "{run}"
    );
    let forced = server.roster(&["plan", s, "--force"], dir);
    assert_eq!(forced.code, 0, "{forced}");
    assert!(forced.stdout.contains(&line), "{forced}");
    let before = server.audit().len();
    let run = server.roster(&["apply", s, "--auto-approve"], dir);
    assert_eq!(run.code, 4, "apply refuses it too: {run}");
    assert_eq!(server.audit().len(), before, "nothing written");
}

/// A team's status is an input of effect too: deactivating `Americas`, which the
/// `fibre-migration` campaign selects, makes its representatives lose that campaign,
/// and the plan says so (and `roster access` of the declaration agrees).
#[test]
fn a_team_deactivated_takes_its_campaigns_from_its_members() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let server = Server::start(&[]);
    let acme = declaration(dir, "acme", |_, t| t);
    let run = server.roster(&["apply", acme.to_str().unwrap(), "--auto-approve"], dir);
    assert_eq!(run.code, 0, "{run}");
    let org = declaration(dir, "org", |file, text| match file {
        "teams.yaml" => {
            let old = "  - name: Americas\n";
            assert!(text.contains(old));
            text.replace(old, "  - name: Americas\n    active: false\n")
        }
        _ => text,
    });
    let run = server.roster(&["plan", org.to_str().unwrap(), "--format", "json"], dir);
    assert_eq!(run.code, 0, "{run}");
    let plan: Value = serde_json::from_str(&run.stdout).unwrap();
    let loses: Vec<&Value> = plan["effects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["change"] == "loses" && e["what"] == "campaign fibre-migration")
        .collect();
    assert_eq!(loses.len(), 1, "{:#}", plan["effects"]);
    let people = loses[0]["people"].as_array().unwrap();
    assert!(people.len() >= 2, "{people:?}");
    assert!(
        people
            .iter()
            .all(|p| p.as_str().unwrap().ends_with("@acme.example")),
        "{people:?}"
    );
    assert_eq!(loses[0]["because"][0]["key"], "Americas", "{:#}", loses[0]);
}
