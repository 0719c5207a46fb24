//! End to end: the real `roster` binary against a real `roster serve` on a free loopback
//! port, started by each test over its own SQLite file. Every command and wait is bounded.
//!
//! Covers: apply to an empty system then no changes; one changed field makes exactly one
//! write (audit log); a stale saved plan is refused naming the object; a concurrent edit
//! during apply gets 412 while the other changes land; a flaky server (fault injection)
//! still converges without creating anything twice; export → plan round trips.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The binary under test: this build's, or `ROSTER_E2E_BIN` (e.g. a release build).
fn bin() -> PathBuf {
    std::env::var_os("ROSTER_E2E_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_roster")))
}
/// Longest any single command may run.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(180);

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/reconcile")
        .join(name)
}

/// Copies a fixture directory so that a test may edit it.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

/// Every `env: NAME` a declaration names, so that a test can provide them.
fn password_vars(dir: &Path) -> Vec<String> {
    let mut vars = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
                let text = std::fs::read_to_string(&p).unwrap();
                let mut rest = text.as_str();
                while let Some(i) = rest.find("env:") {
                    rest = &rest[i + 4..];
                    let name: String = rest
                        .trim_start()
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() && !vars.contains(&name) {
                        vars.push(name);
                    }
                }
            }
        }
    }
    vars
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits for a child with a deadline, collecting its output; kills it when late.
fn wait_output(mut child: Child, timeout: Duration, what: &str) -> Output {
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = out.read_to_end(&mut b);
        b
    });
    let t_err = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = err.read_to_end(&mut b);
        b
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`{what}` did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: t_out.join().unwrap(),
        stderr: t_err.join().unwrap(),
    }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// A `roster serve` child on a free loopback port over its own database.
struct Server {
    child: Child,
    port: u16,
    token: String,
    dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts a server; `extra` flags are added (2000 seats unless `--seats` is given).
    fn start(extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let token_file = dir.path().join("admin.token");
        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        let port = free_port();
        let child = Command::new(bin())
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--database")
            .arg(format!("sqlite://{}", dir.path().join("live.db").display()))
            .arg("--admin-token-file")
            .arg(&token_file)
            .args(if extra.contains(&"--seats") {
                &[][..]
            } else {
                &["--seats", "2000"][..]
            })
            .args(extra)
            .env_remove("ROSTER_ENDPOINT")
            .env_remove("ROSTER_TOKEN")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start roster serve");
        let mut server = Server {
            child,
            port,
            token: String::new(),
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!(
                    "roster serve exited with {status}:\n{}",
                    std::fs::read_to_string(server.dir.path().join("server.log")).unwrap()
                );
            }
            let token = std::fs::read_to_string(&token_file).unwrap_or_default();
            if !token.trim().is_empty() && TcpStream::connect(("127.0.0.1", port)).is_ok() {
                server.token = token.trim().to_string();
                break;
            }
            assert!(
                Instant::now() < deadline,
                "roster serve did not come up on port {port}:\n{}",
                std::fs::read_to_string(server.dir.path().join("server.log")).unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A `roster` command aimed at this server, run in `cwd`, passwords provided.
    fn command(&self, args: &[&str], cwd: &Path, passwords_from: Option<&Path>) -> Command {
        let mut cmd = Command::new(bin());
        cmd.args(args)
            .current_dir(cwd)
            .env("ROSTER_ENDPOINT", self.endpoint())
            .env("ROSTER_TOKEN", &self.token)
            .env("NO_COLOR", "1")
            .env_remove(PAUSE)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(dir) = passwords_from {
            for v in password_vars(dir) {
                cmd.env(v, "e2e-Initial-Passw0rd!");
            }
        }
        cmd
    }

    fn roster(&self, args: &[&str], declaration: Option<&Path>) -> Run {
        let cwd = self.dir.path();
        let child = self
            .command(args, cwd, declaration)
            .spawn()
            .expect("run roster");
        let out = wait_output(child, COMMAND_TIMEOUT, &args.join(" "));
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// One HTTP request with the admin token; retries 429/503 (the fault-injecting server).
    fn http(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        if_match: Option<i64>,
    ) -> (u16, Value) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap();
            for _ in 0..40 {
                let mut req = client
                    .request(
                        method.parse().unwrap(),
                        format!("{}{path}", self.endpoint()),
                    )
                    .bearer_auth(&self.token);
                if let Some(v) = if_match {
                    req = req.header("if-match", format!("\"{v}\""));
                }
                if let Some(b) = &body {
                    req = req.json(b);
                }
                match req.send().await {
                    Ok(resp) => {
                        let status = resp.status().as_u16();
                        let text = resp.text().await.unwrap_or_default();
                        if status == 429 || status == 503 {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
                        return (status, v);
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
            panic!("{method} {path}: the server kept failing");
        })
    }

    fn get(&self, path: &str) -> Value {
        let (status, v) = self.http("GET", path, None, None);
        assert_eq!(status, 200, "GET {path}: {v}");
        v
    }

    /// Every audit entry, in order.
    fn audit(&self) -> Vec<Value> {
        let mut items = Vec::new();
        let mut path = "/v1/audit?limit=1000".to_string();
        loop {
            let page = self.get(&path);
            items.extend(page["items"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => {
                    path = format!("/v1/audit?limit=1000&cursor={}", encode(c));
                }
                None => return items,
            }
        }
    }

    /// Applies a declaration to convergence on a healthy server.
    fn apply_ok(&self, dir: &Path) {
        let run = self.roster(
            &["apply", dir.to_str().unwrap(), "--auto-approve"],
            Some(dir),
        );
        assert_eq!(run.code, 0, "apply failed:\n{run}");
    }

    fn plan_exit(&self, dir: &Path) -> Run {
        self.roster(
            &["plan", dir.to_str().unwrap(), "--detailed-exitcode"],
            Some(dir),
        )
    }
}

const PAUSE: &str = "ROSTER_TEST_PAUSE_BEFORE_WRITES_MS";

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Edits a copied declaration file: replaces exactly one occurrence.
fn edit(file: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(file).unwrap();
    assert_eq!(
        text.matches(from).count(),
        1,
        "{from:?} must occur once in {}",
        file.display()
    );
    std::fs::write(file, text.replacen(from, to, 1)).unwrap();
}

/// The objects of the `small` fixture, as (kind, key).
const SMALL_OBJECTS: [(&str, &str); 12] = [
    ("portal", "web-support"),
    ("portal", "on"),
    ("team", "Europe"),
    ("team", "Europe/Paris"),
    ("team", "Americas"),
    ("administrator", "root@acme.example"),
    ("manager", "marie@acme.example"),
    ("representative", "jdoe@acme.example"),
    ("representative", "asmith@acme.example"),
    ("representative", "bnoel@acme.example"),
    ("campaign", "winter-renewals"),
    ("contact_group", "key-accounts"),
];

fn id_of((kind, key): (&str, &str)) -> (String, String) {
    (kind.to_string(), key.to_string())
}

/// How many times the audit log records the creation of each object.
fn creates_per_object(server: &Server) -> BTreeMap<(String, String), usize> {
    let mut creates = BTreeMap::new();
    for e in server.audit() {
        if e["action"] == "create" {
            let kind = e["kind"].as_str().unwrap_or_default().to_string();
            let key = e["key"].as_str().unwrap_or_default().to_string();
            *creates.entry((kind, key)).or_default() += 1;
        }
    }
    creates
}

fn small_copy(dir: &Path) -> PathBuf {
    let to = dir.join("decl");
    copy_dir(&fixture("small"), &to);
    to
}

#[test]
fn apply_to_an_empty_system_then_plan_shows_no_changes() {
    let server = Server::start(&[]);
    let decl = fixture("small");
    let first = server.plan_exit(&decl);
    assert_eq!(first.code, 2, "an empty system needs changes:\n{first}");
    server.apply_ok(&decl);
    let again = server.plan_exit(&decl);
    assert_eq!(again.code, 0, "apply must converge in one run:\n{again}");

    // Every declared object was created exactly once.
    let creates = creates_per_object(&server);
    for id in SMALL_OBJECTS {
        assert_eq!(creates.get(&id_of(id)), Some(&1), "{id:?}: {creates:?}");
    }
}

#[test]
fn one_changed_field_is_one_write() {
    let server = Server::start(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let decl = small_copy(tmp.path());
    server.apply_ok(&decl);
    edit(&decl.join("people.yaml"), "language: pl", "language: de");

    let plan = server.roster(
        &[
            "plan",
            decl.to_str().unwrap(),
            "--format",
            "json",
            "--detailed-exitcode",
        ],
        Some(&decl),
    );
    assert_eq!(plan.code, 2, "{plan}");
    let plan: Value = serde_json::from_str(&plan.stdout).expect("plan --format json is json");
    let changes = plan["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{plan:#}");
    assert_eq!(
        changes[0]["id"],
        json!({"kind": "representative", "key": "bnoel@acme.example"})
    );
    assert_eq!(changes[0]["patch"], json!({"language": "de"}), "{plan:#}");

    let before = server.audit().len();
    server.apply_ok(&decl);
    let audit = server.audit();
    let new: Vec<&Value> = audit[before..].iter().collect();
    assert_eq!(new.len(), 1, "exactly one write: {new:#?}");
    assert_eq!(new[0]["action"], "update");
    assert_eq!(new[0]["key"], "bnoel@acme.example");
    assert_eq!(server.plan_exit(&decl).code, 0);
}

#[test]
fn a_stale_saved_plan_is_refused_naming_the_object() {
    let server = Server::start(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let decl = small_copy(tmp.path());
    server.apply_ok(&decl);
    edit(&decl.join("people.yaml"), "language: pl", "language: de");
    let plan_file = tmp.path().join("plan.json");
    let saved = server.roster(
        &[
            "plan",
            decl.to_str().unwrap(),
            "--out",
            plan_file.to_str().unwrap(),
        ],
        Some(&decl),
    );
    assert_eq!(saved.code, 0, "{saved}");
    let text = std::fs::read_to_string(&plan_file).unwrap();
    assert!(text.contains("fingerprint"));
    assert!(
        !text.contains("e2e-Initial-Passw0rd!"),
        "no secret in a saved plan"
    );

    // Someone edits a representative directly on the server.
    let rep = server.get("/v1/representatives/asmith%40acme.example");
    let (status, body) = server.http(
        "PATCH",
        "/v1/representatives/asmith%40acme.example",
        Some(json!({"last_name": "Smith-Jones"})),
        rep["version"].as_i64(),
    );
    assert_eq!(status, 200, "{body}");

    let before = server.audit().len();
    let run = server.roster(
        &["apply", "--plan", plan_file.to_str().unwrap()],
        Some(&decl),
    );
    assert_eq!(run.code, 1, "{run}");
    assert!(run.stderr.contains("stale"), "{run}");
    assert!(
        run.stderr.contains("representative/asmith@acme.example"),
        "the changed object is named:\n{run}"
    );
    assert_eq!(server.audit().len(), before, "nothing was written");
}

#[test]
fn a_concurrent_edit_during_apply_fails_that_object_only() {
    let server = Server::start(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let decl = small_copy(tmp.path());
    server.apply_ok(&decl);
    let people = decl.join("people.yaml");
    edit(&people, "language: pl", "language: de");
    edit(&people, "last_name: Smith", "last_name: Smythe");
    edit(&people, "first_name: John", "first_name: Johnny");

    let mut cmd = server.command(
        &[
            "apply",
            decl.to_str().unwrap(),
            "--auto-approve",
            "--parallelism",
            "1",
        ],
        server.dir.path(),
        Some(&decl),
    );
    cmd.env(PAUSE, "5000");
    let mut child = cmd.spawn().unwrap();

    // Wait for the pause announcement, then edit one of the planned objects.
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut seen = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains(PAUSE) {
                let _ = tx.send(());
            }
            seen.push_str(&line);
            seen.push('\n');
        }
        seen
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("apply announces its pause before writing");
    let rep = server.get("/v1/representatives/asmith%40acme.example");
    let (status, body) = server.http(
        "PATCH",
        "/v1/representatives/asmith%40acme.example",
        Some(json!({"language": "it"})),
        rep["version"].as_i64(),
    );
    assert_eq!(status, 200, "{body}");

    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "apply did not finish");
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = reader.join().unwrap();
    assert_eq!(status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("failed  update representative/asmith@acme.example")
            && stdout.contains("precondition-failed (412)"),
        "the 412 is reported for that object:\n{stdout}"
    );
    assert!(stdout.contains("2 done, 1 failed"), "{stdout}");

    // The other two changes landed; the edited object kept the concurrent edit.
    assert_eq!(
        server.get("/v1/representatives/bnoel%40acme.example")["language"],
        "de"
    );
    assert_eq!(
        server.get("/v1/representatives/jdoe%40acme.example")["first_name"],
        "Johnny"
    );
    let asmith = server.get("/v1/representatives/asmith%40acme.example");
    assert_eq!(asmith["language"], "it");
    assert_eq!(asmith["last_name"], "Smith");

    // A re-run converges.
    server.apply_ok(&decl);
    assert_eq!(server.plan_exit(&decl).code, 0);
}

#[test]
fn a_flaky_server_converges_and_creates_nothing_twice() {
    let server = Server::start(&["--inject-faults", "0.3", "--fault-seed", "7"]);
    let decl = fixture("small");
    let mut converged = false;
    let mut log = String::new();
    for attempt in 1..=8 {
        let apply = server.roster(
            &[
                "apply",
                decl.to_str().unwrap(),
                "--auto-approve",
                "--parallelism",
                "4",
            ],
            Some(&decl),
        );
        log.push_str(&format!("--- apply #{attempt}\n{apply}\n"));
        let plan = server.plan_exit(&decl);
        log.push_str(&format!("--- plan #{attempt}\n{plan}\n"));
        if plan.code == 0 {
            eprintln!("converged after {attempt} apply run(s)");
            converged = true;
            break;
        }
    }
    assert!(converged, "did not converge in 8 runs:\n{log}");
    let creates = creates_per_object(&server);
    for id in SMALL_OBJECTS {
        assert!(
            creates.contains_key(&id_of(id)),
            "{id:?} never created: {creates:?}"
        );
    }
    assert!(
        creates.values().all(|&n| n == 1),
        "an object was created twice: {creates:?}\n{log}"
    );
}

#[test]
fn export_then_plan_shows_no_changes() {
    let server = Server::start(&[]);
    let decl = fixture("small");
    server.apply_ok(&decl);
    let out = server.dir.path().join("exported");
    let run = server.roster(&["export", "--out", out.to_str().unwrap()], None);
    assert_eq!(run.code, 0, "{run}");
    for f in [
        "portals.yaml",
        "teams.yaml",
        "administrators.yaml",
        "managers.yaml",
        "representatives.yaml",
        "campaigns.yaml",
        "contact_groups.yaml",
        "roster.schema.json",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let teams = std::fs::read_to_string(out.join("teams.yaml")).unwrap();
    assert!(
        teams.starts_with("# yaml-language-server: $schema=./roster.schema.json\n"),
        "{teams}"
    );
    assert!(
        teams.contains("    teams:\n      - name: Paris\n"),
        "nested:\n{teams}"
    );
    let managers = std::fs::read_to_string(out.join("managers.yaml")).unwrap();
    assert!(!managers.contains("    password"), "{managers}");

    let plan = server.plan_exit(&out);
    assert_eq!(plan.code, 0, "export → plan must show no change:\n{plan}");
}

#[test]
fn export_of_a_generated_organization_round_trips() {
    let server = Server::start(&[]);
    let generated = server.dir.path().join("generated");
    let gen_run = server.roster(
        &[
            "generate",
            "--out",
            generated.to_str().unwrap(),
            "--representatives",
            "300",
            "--teams",
            "20",
            "--managers",
            "5",
            "--portals",
            "3",
        ],
        None,
    );
    if gen_run.code != 0 && gen_run.stderr.contains("not implemented") {
        eprintln!("skipped: `roster generate` is not implemented in this build");
        return;
    }
    assert_eq!(gen_run.code, 0, "{gen_run}");
    server.apply_ok(&generated);
    assert_eq!(server.plan_exit(&generated).code, 0);
    let out = server.dir.path().join("exported");
    let run = server.roster(&["export", "--out", out.to_str().unwrap()], None);
    assert_eq!(run.code, 0, "{run}");
    let plan = server.plan_exit(&out);
    assert_eq!(plan.code, 0, "export → plan must show no change:\n{plan}");
}

#[test]
fn apply_without_a_terminal_needs_auto_approve() {
    let server = Server::start(&[]);
    let decl = fixture("small");
    let before = server.audit().len();
    let run = server.roster(&["apply", decl.to_str().unwrap()], Some(&decl));
    assert_eq!(run.code, 1, "{run}");
    assert!(run.stderr.contains("--auto-approve"), "{run}");
    assert_eq!(server.audit().len(), before, "nothing was written");
}

#[test]
fn the_acme_example_applies_converges_and_round_trips() {
    let acme = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/acme");
    if !acme.is_dir() {
        eprintln!("skipped: examples/acme is not in this tree");
        return;
    }
    let server = Server::start(&[]);
    server.apply_ok(&acme);
    let again = server.plan_exit(&acme);
    assert_eq!(again.code, 0, "{again}");
    let out = server.dir.path().join("exported");
    let run = server.roster(&["export", "--out", out.to_str().unwrap()], None);
    assert_eq!(run.code, 0, "{run}");
    let plan = server.plan_exit(&out);
    assert_eq!(plan.code, 0, "export → plan must show no change:\n{plan}");
}

#[test]
fn a_plan_time_rule_error_points_into_the_files_and_writes_nothing() {
    // Two active representatives, one licensed seat (rule 5, known only from the live account).
    let server = Server::start(&["--seats", "1"]);
    let decl = fixture("small");
    let before = server.audit().len();
    let run = server.roster(
        &["apply", decl.to_str().unwrap(), "--auto-approve"],
        Some(&decl),
    );
    assert_eq!(run.code, 1, "{run}");
    assert!(run.stderr.contains("seats"), "{run}");
    assert!(
        run.stderr.contains("people.yaml:") || run.stderr.contains("org.yaml:"),
        "the error names file:line:col:\n{run}"
    );
    assert_eq!(server.audit().len(), before, "nothing was written");
}

#[test]
fn without_an_endpoint_the_embedded_live_system_is_used() {
    let tmp = tempfile::tempdir().unwrap();
    let decl = fixture("small");
    let run = |args: &[&str]| {
        let mut cmd = Command::new(bin());
        cmd.args(args)
            .current_dir(tmp.path())
            .env_remove("ROSTER_ENDPOINT")
            .env_remove("ROSTER_TOKEN")
            .env_remove("ROSTER_STATE_DIR")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for v in password_vars(&decl) {
            cmd.env(v, "e2e-Initial-Passw0rd!");
        }
        wait_output(cmd.spawn().unwrap(), COMMAND_TIMEOUT, &args.join(" "))
    };
    let d = decl.to_str().unwrap();
    let apply = run(&["apply", d, "--auto-approve"]);
    assert!(
        apply.status.success(),
        "{}",
        String::from_utf8_lossy(&apply.stderr)
    );
    assert!(tmp.path().join(".roster/live.db").is_file());
    let plan = run(&["plan", d, "--detailed-exitcode"]);
    assert_eq!(
        plan.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&plan.stdout)
    );
}

/// Ignored until the plan treats declared objects a manager token cannot see (parent
/// teams, other teams' representatives, administrators) as out of scope rather than as
/// creates: the server lists to a manager only its teams and what is in them (docs/api.md),
/// so today a whole-organization declaration applied with a manager token is refused with
/// `escalation` errors for every invisible object. Run with `--ignored` to check a fix.
#[test]
fn a_manager_token_changes_only_what_is_in_its_teams() {
    let server = Server::start(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let decl = small_copy(tmp.path());
    server.apply_ok(&decl);
    let db = format!("sqlite://{}", server.dir.path().join("live.db").display());
    let token = server.roster(
        &[
            "token",
            "create",
            "--manager",
            "marie@acme.example",
            "--database",
            &db,
        ],
        None,
    );
    assert_eq!(token.code, 0, "{token}");
    let manager_token = token.stdout.trim().to_string();
    let people = decl.join("people.yaml");
    edit(&people, "language: fr", "language: de"); // jdoe, in Europe/Paris: in scope
    edit(&people, "language: pl", "language: it"); // bnoel, in Americas: out of scope

    let as_manager = |args: &[&str]| {
        let mut cmd = server.command(args, server.dir.path(), Some(&decl));
        cmd.env("ROSTER_TOKEN", &manager_token);
        let out = wait_output(cmd.spawn().unwrap(), COMMAND_TIMEOUT, &args.join(" "));
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    };
    let d = decl.to_str().unwrap();
    let apply = as_manager(&["apply", d, "--auto-approve"]);
    assert_eq!(apply.code, 0, "{apply}");
    assert!(
        apply.stdout.contains("as manager marie@acme.example"),
        "{apply}"
    );
    assert_eq!(
        server.get("/v1/representatives/jdoe%40acme.example")["language"],
        "de"
    );
    assert_eq!(
        server.get("/v1/representatives/bnoel%40acme.example")["language"],
        "pl",
        "outside the manager's teams: untouched"
    );
    let plan = as_manager(&["plan", d, "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "{plan}");
}

#[test]
fn a_saved_plan_applies_when_nothing_changed_since() {
    let server = Server::start(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let decl = small_copy(tmp.path());
    server.apply_ok(&decl);
    edit(
        &decl.join("people.yaml"),
        "last_name: Doe",
        "last_name: Doe-Martin",
    );
    let plan_file = tmp.path().join("plan.json");
    let md = server.roster(
        &[
            "plan",
            decl.to_str().unwrap(),
            "--format",
            "markdown",
            "--out",
            plan_file.to_str().unwrap(),
        ],
        Some(&decl),
    );
    assert_eq!(md.code, 0, "{md}");
    assert!(md.stdout.contains("jdoe@acme.example"), "{md}");

    let run = server.roster(
        &[
            "apply",
            "--plan",
            plan_file.to_str().unwrap(),
            "--format",
            "json",
        ],
        Some(&decl),
    );
    assert_eq!(run.code, 0, "{run}");
    let report: Value = serde_json::from_str(&run.stdout).expect("the json report is stdout");
    assert_eq!(
        report["summary"],
        json!({"done": 1, "failed": 0, "skipped": 0})
    );
    assert_eq!(
        server.get("/v1/representatives/jdoe%40acme.example")["last_name"],
        "Doe-Martin"
    );
    assert_eq!(server.plan_exit(&decl).code, 0);
}
