//! End to end, issue 12 "workflow examples": the shell steps of `examples/ci/github/`
//! and `examples/ci/gitlab/`, exactly as the files hold them, run by bash against a real
//! `roster serve` on loopback, in a copy of a repository whose declaration is
//! `examples/acme` in `org/`. (`.ci/check-ci-examples` checks the same files against
//! their CI systems' schemas, a workflow linter and shellcheck.)
//!
//! What is not run needs the CI system itself: `uses:` actions (checkout, the SARIF and
//! artifact uploads), the steps that talk to GitHub's or GitLab's own API (the sticky
//! comment and the merge-request note) and the `cargo install` of roster (the test puts
//! the binary it built first on `PATH` instead). The runner's part is played as the
//! runners document it: GitHub runs `bash --noprofile --norc -eo pipefail` with
//! `GITHUB_OUTPUT`, `GITHUB_STEP_SUMMARY` and `GITHUB_ACTIONS=true`; GitLab runs a job's
//! script entries in one bash with `set -eo pipefail`, its `variables` expanded.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::cli::{Harness, Run, bin, copy_acme, wait_output};
use saphyr::{LoadableYamlNode, Yaml};
use serde_json::{Map, Value};

const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

const HARNESS: Harness = Harness::plain("500");

module_server!();

fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// A YAML document as JSON (strings, numbers, booleans, null, lists and maps), enough
/// for workflow files.
fn to_json(y: &Yaml) -> Value {
    if let Some(m) = y.as_mapping() {
        let mut out = Map::new();
        for (k, v) in m {
            let key = k
                .as_str()
                .map(str::to_string)
                .or_else(|| k.as_integer().map(|i| i.to_string()))
                .or_else(|| k.as_bool().map(|b| b.to_string()))
                .expect("a scalar key");
            out.insert(key, to_json(v));
        }
        Value::Object(out)
    } else if let Some(s) = y.as_sequence() {
        Value::Array(s.iter().map(to_json).collect())
    } else if let Some(s) = y.as_str() {
        Value::String(s.to_string())
    } else if let Some(i) = y.as_integer() {
        Value::from(i)
    } else if let Some(b) = y.as_bool() {
        Value::Bool(b)
    } else {
        Value::Null
    }
}

fn load(rel: &str) -> Value {
    let text = std::fs::read_to_string(repo_file(rel)).unwrap();
    let docs = Yaml::load_from_str(&text).unwrap_or_else(|e| panic!("{rel}: {e}"));
    to_json(&docs[0])
}

/// A checkout of a configuration repository: `org/` holds examples/acme.
fn checkout() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_acme(&dir.path().join("org"), |_, text| text);
    dir
}

/// An edit whose plan the removal threshold refuses: the threshold at nothing, and
/// Sophie Laurent loses a feature.
fn remove_beyond_the_threshold(cwd: &Path) {
    let edit = |file: &str, from: &str, to: &str| {
        let path = cwd.join("org").join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{file}: no `{from}`");
        std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    };
    edit(
        "policy.yaml",
        "removal_threshold: { count: 10, percent: 25 }",
        "removal_threshold: { count: 0, percent: 0 }",
    );
    edit(
        "representatives-europe.yaml",
        "      - export_session_replay\n",
        "",
    );
}

/// `PATH` with the roster under test first.
fn path_with_roster() -> String {
    let dir = bin().parent().unwrap().to_path_buf();
    format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// Runs a bash script in `cwd` with exactly `env` (plus PATH and HOME), bounded.
fn bash(args: &[&str], script: &str, cwd: &Path, env: &BTreeMap<String, String>) -> Run {
    let file = cwd.join(".step.sh");
    std::fs::write(&file, script).unwrap();
    let mut cmd = Command::new("bash");
    cmd.args(args)
        .arg(&file)
        .current_dir(cwd)
        .env_clear()
        .env("PATH", path_with_roster())
        .env("HOME", cwd)
        .env("NO_COLOR", "1")
        .envs(env)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let run: Run = wait_output(cmd.spawn().unwrap(), COMMAND_TIMEOUT, script).into();
    std::fs::remove_file(&file).unwrap();
    run
}

/// The GitHub workflow, run step by step as a runner would.
struct GitHub {
    workflow: Value,
    /// What `${{ … }}` expressions stand for in this test.
    expressions: BTreeMap<&'static str, String>,
}

impl GitHub {
    fn new(server: &Server) -> GitHub {
        let mut expressions = BTreeMap::new();
        expressions.insert("vars.ROSTER_ENDPOINT", server.endpoint());
        expressions.insert("secrets.ROSTER_PLAN_TOKEN", server.token.clone());
        expressions.insert("secrets.ROSTER_APPLY_TOKEN", server.token.clone());
        GitHub {
            workflow: load("examples/ci/github/roster.yml"),
            expressions,
        }
    }

    fn expand(&self, value: &str) -> String {
        let mut out = value.to_string();
        while let Some(start) = out.find("${{") {
            let end = start + out[start..].find("}}").expect("a closed expression") + 2;
            let expr = out[start + 3..end - 2].trim();
            let v = self
                .expressions
                .get(expr)
                .unwrap_or_else(|| panic!("the test does not know `{expr}`"));
            out.replace_range(start..end, v);
        }
        out
    }

    /// Runs the step `id` of `job` in `cwd`; the step's outputs come back parsed.
    fn step(&self, job: &str, id: &str, cwd: &Path) -> (Run, BTreeMap<String, String>) {
        let steps = self.workflow["jobs"][job]["steps"].as_array().unwrap();
        let step = steps
            .iter()
            .find(|s| s["id"] == id)
            .unwrap_or_else(|| panic!("no step `{id}` in job `{job}`"));
        let mut env = BTreeMap::new();
        for scope in [
            &self.workflow["env"],
            &self.workflow["jobs"][job]["env"],
            &step["env"],
        ] {
            for (k, v) in scope.as_object().into_iter().flatten() {
                env.insert(k.clone(), self.expand(v.as_str().unwrap()));
            }
        }
        let output = cwd.join(".github_output");
        std::fs::write(&output, "").unwrap();
        env.insert("GITHUB_ACTIONS".into(), "true".into());
        env.insert("GITHUB_WORKSPACE".into(), cwd.display().to_string());
        env.insert("GITHUB_OUTPUT".into(), output.display().to_string());
        env.insert(
            "GITHUB_STEP_SUMMARY".into(),
            cwd.join(".step_summary.md").display().to_string(),
        );
        let script = self.expand(step["run"].as_str().unwrap());
        let run = bash(
            &["--noprofile", "--norc", "-eo", "pipefail"],
            &script,
            cwd,
            &env,
        );
        let outputs = std::fs::read_to_string(&output)
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        (run, outputs)
    }
}

#[test]
fn github_workflow_validates_plans_and_applies() {
    let server = Server::start(&[]);
    let gh = GitHub::new(&server);
    let repo = checkout();
    let cwd = repo.path();

    let (run, _) = gh.step("plan", "validate", cwd);
    assert_eq!(run.code, 0, "validate: {run}");
    let sarif: Value =
        serde_json::from_str(&std::fs::read_to_string(cwd.join("roster.sarif")).unwrap())
            .expect("validate wrote a SARIF log for the upload step");
    assert_eq!(sarif["version"], "2.1.0");

    let (run, out) = gh.step("plan", "plan", cwd);
    assert_eq!(run.code, 0, "plan: {run}");
    assert_eq!(out.get("exit").map(String::as_str), Some("2"), "{run}");
    let md = std::fs::read_to_string(cwd.join("plan.md")).unwrap();
    assert!(
        md.starts_with("<!-- roster-plan root=\"org\" -->"),
        "the comment step finds its comment by this first line:\n{md}"
    );
    let summary = std::fs::read_to_string(cwd.join(".step_summary.md")).unwrap();
    assert!(summary.contains("roster-plan"), "job summary: {summary}");
    let plan: Value =
        serde_json::from_str(&std::fs::read_to_string(cwd.join("plan.json")).unwrap()).unwrap();
    assert!(!plan["changes"].as_array().unwrap().is_empty());

    let (run, _) = gh.step("apply", "apply", cwd);
    assert_eq!(run.code, 0, "apply: {run}");
    assert!(
        server.get("/v1/representatives")["items"]
            .as_array()
            .is_some_and(|a| a.len() > 30),
        "apply created the representatives"
    );

    let (run, out) = gh.step("plan", "plan", cwd);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(
        out.get("exit").map(String::as_str),
        Some("0"),
        "no changes left: {run}"
    );

    // A refused plan (the removal threshold) still gets its comment (the step succeeds, exit=4 goes to the
    // failing step after the comment), and nothing is written.
    remove_beyond_the_threshold(cwd);
    let before = server.get("/v1/representatives");
    let (run, out) = gh.step("plan", "plan", cwd);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(out.get("exit").map(String::as_str), Some("4"), "{run}");
    let md = std::fs::read_to_string(cwd.join("plan.md")).unwrap();
    assert!(
        md.contains("removal-threshold"),
        "the banner names the rule:\n{md}"
    );
    assert_eq!(server.get("/v1/representatives"), before);
}

/// The GitLab pipeline: a job's `script` entries that do not talk to GitLab's API.
fn gitlab_job(pipeline: &Value, job: &str, cwd: &Path, vars: &BTreeMap<String, String>) -> Run {
    let mut env = vars.clone();
    for scope in [&pipeline["variables"], &pipeline[job]["variables"]] {
        for (k, v) in scope.as_object().into_iter().flatten() {
            let v = v.as_str().unwrap();
            let v = match v.strip_prefix('$') {
                Some(name) => vars.get(name).cloned().unwrap_or_default(),
                None => v.to_string(),
            };
            env.insert(k.clone(), v);
        }
    }
    let entries: Vec<&str> = pipeline[job]["script"]
        .as_array()
        .unwrap_or_else(|| panic!("no script in job `{job}`"))
        .iter()
        .map(|e| e.as_str().unwrap())
        .filter(|e| !e.contains("CI_API_V4_URL"))
        .collect();
    assert!(!entries.is_empty(), "{job}: nothing to run");
    let script = format!("set -eo pipefail\n{}\n", entries.join("\n"));
    bash(&["--noprofile", "--norc"], &script, cwd, &env)
}

#[test]
fn gitlab_pipeline_validates_plans_and_applies() {
    let server = Server::start(&[]);
    let pipeline = load("examples/ci/gitlab/.gitlab-ci.yml");
    let repo = checkout();
    let cwd = repo.path();
    let vars: BTreeMap<String, String> = [
        ("ROSTER_ENDPOINT", server.endpoint()),
        ("ROSTER_PLAN_TOKEN", server.token.clone()),
        ("ROSTER_APPLY_TOKEN", server.token.clone()),
        ("GITLAB_CI", "true".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();

    let run = gitlab_job(&pipeline, "validate", cwd, &vars);
    assert_eq!(run.code, 0, "validate: {run}");
    assert!(cwd.join("roster.sarif").exists(), "the artifact path");

    let run = gitlab_job(&pipeline, "plan", cwd, &vars);
    assert_eq!(run.code, 0, "plan: {run}");
    assert_eq!(
        std::fs::read_to_string(cwd.join("plan.exit"))
            .unwrap()
            .trim(),
        "2"
    );
    let md = std::fs::read_to_string(cwd.join("plan.md")).unwrap();
    assert!(md.starts_with("<!-- roster-plan root=\"org\" -->"), "{md}");
    assert!(cwd.join("plan.json").exists());

    let run = gitlab_job(&pipeline, "apply", cwd, &vars);
    assert_eq!(run.code, 0, "apply: {run}");

    let run = gitlab_job(&pipeline, "plan", cwd, &vars);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(
        std::fs::read_to_string(cwd.join("plan.exit"))
            .unwrap()
            .trim(),
        "0"
    );

    // Refused: the job fails (after the note), and nothing is written.
    remove_beyond_the_threshold(cwd);
    let before = server.get("/v1/representatives");
    let run = gitlab_job(&pipeline, "plan", cwd, &vars);
    assert_ne!(run.code, 0, "a refused plan fails the job: {run}");
    assert_eq!(
        std::fs::read_to_string(cwd.join("plan.exit"))
            .unwrap()
            .trim(),
        "4"
    );
    assert_eq!(server.get("/v1/representatives"), before);
}
