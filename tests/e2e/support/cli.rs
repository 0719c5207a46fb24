//! Shared end-to-end harness for the `reconcile` and `safety` test modules: the real `roster`
//! binary (this build's, or `ROSTER_E2E_BIN`) against a real `roster serve` child on a free
//! loopback port over its own SQLite file in a temporary directory. Every command and wait
//! is bounded; the server is killed when its [`Server`] is dropped.
//!
//! Each test module keeps its own specifics (default seats, command timeout, whether HTTP
//! requests retry a busy server, how commands get their environment) in a [`Harness`] and
//! in its own `impl Server` block.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The testing pause of `roster apply` (see src/ops/apply.rs).
pub const PAUSE: &str = "ROSTER_TEST_PAUSE_BEFORE_WRITES_MS";

/// The binary under test: this build's, or `ROSTER_E2E_BIN` (e.g. a release build).
pub fn bin() -> PathBuf {
    std::env::var_os("ROSTER_E2E_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_roster")))
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Percent-encodes a path segment or query value.
pub fn encode(s: &str) -> String {
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

/// Waits for a child with a deadline, collecting its output; kills it when late.
pub fn wait_output(mut child: Child, timeout: Duration, what: &str) -> Output {
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

/// One finished `roster` command: exit code and its output as text.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
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

/// What differs between the test files that use this harness.
pub struct Harness {
    /// `--seats` given to the server unless the test's own flags name `--seats`.
    pub seats: &'static str,
    /// Longest any single command may run.
    pub command_timeout: Duration,
    /// Whether HTTP requests retry 429/503 answers and failed sends (a fault-injecting
    /// server); without it one request is made and its answer returned as is.
    pub retry_busy: bool,
}

impl Harness {
    /// A server with `seats` licensed seats, 120 s per command, answers taken as they
    /// are: what most test files want.
    pub const fn plain(seats: &'static str) -> Harness {
        Harness {
            seats,
            command_timeout: Duration::from_secs(120),
            retry_busy: false,
        }
    }
}

/// Writes `yaml` as the one file (`org.yaml`) of a declaration directory `root/name`.
pub fn declaration(root: &Path, name: &str, yaml: &str) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("org.yaml"), yaml).unwrap();
    dir
}

/// `examples/acme` copied into `to` (created), each file's text through `edit` (given
/// the file's name and its text).
pub fn copy_acme(to: &Path, edit: impl Fn(&str, String) -> String) {
    std::fs::create_dir_all(to).unwrap();
    let acme = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/acme");
    for e in std::fs::read_dir(acme).unwrap() {
        let p = e.unwrap().path();
        let file = p.file_name().unwrap().to_str().unwrap().to_string();
        let text = edit(&file, std::fs::read_to_string(&p).unwrap());
        std::fs::write(to.join(&file), text).unwrap();
    }
}

/// A `roster serve` child on a free loopback port over its own database.
pub struct Server {
    pub child: Child,
    pub port: u16,
    pub token: String,
    pub dir: tempfile::TempDir,
    pub command_timeout: Duration,
    pub retry_busy: bool,
    /// The database URL the server runs on.
    pub database_url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts a server and waits (up to 60 s) until it listens and wrote its admin token;
    /// `extra` flags are added.
    pub fn start_with(harness: &Harness, extra: &[&str]) -> Server {
        Server::start_on(harness, None, extra)
    }

    /// [`Server::start_with`] over `database` (a URL; default: a fresh SQLite file in the
    /// server's directory).
    pub fn start_on(harness: &Harness, database: Option<&str>, extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let database_url = database
            .map(str::to_string)
            .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("live.db").display()));
        let token_file = dir.path().join("admin.token");
        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        let port = free_port();
        let seats = ["--seats", harness.seats];
        let child = Command::new(bin())
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--database")
            .arg(&database_url)
            .arg("--admin-token-file")
            .arg(&token_file)
            .args(if extra.contains(&"--seats") {
                &[][..]
            } else {
                &seats[..]
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
            command_timeout: harness.command_timeout,
            retry_busy: harness.retry_busy,
            database_url,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("roster serve exited with {status}:\n{}", server.log());
            }
            let token = std::fs::read_to_string(&token_file).unwrap_or_default();
            if !token.trim().is_empty() && TcpStream::connect(("127.0.0.1", port)).is_ok() {
                server.token = token.trim().to_string();
                break;
            }
            assert!(
                Instant::now() < deadline,
                "roster serve did not come up on port {port}:\n{}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The server's database URL (for commands that open it directly).
    pub fn database(&self) -> String {
        self.database_url.clone()
    }

    /// What the server wrote to stdout and stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// A `roster ARGS` command aimed at this server with the administrator token, run in
    /// `cwd`, without colour nor the apply pause, output piped.
    pub fn base_command(&self, args: &[&str], cwd: &Path) -> Command {
        let mut cmd = Command::new(bin());
        cmd.args(args)
            .current_dir(cwd)
            .env("ROSTER_ENDPOINT", self.endpoint())
            .env("ROSTER_TOKEN", &self.token)
            .env("NO_COLOR", "1")
            .env_remove(PAUSE)
            .env_remove("GITHUB_ACTIONS")
            .env_remove("ROSTER_ANNOTATIONS")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Runs a command to its end within the command timeout.
    pub fn finish(&self, mut cmd: Command, what: &str) -> Run {
        let child = cmd.spawn().expect("run roster");
        wait_output(child, self.command_timeout, what).into()
    }

    /// One HTTP request with a token (retrying a busy server when the harness says so).
    pub fn http_as(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
        if_match: Option<i64>,
    ) -> (u16, Value) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let attempts = if self.retry_busy { 40 } else { 1 };
        rt.block_on(async {
            let client = reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap();
            for _ in 0..attempts {
                let mut req = client
                    .request(
                        method.parse().unwrap(),
                        format!("{}{path}", self.endpoint()),
                    )
                    .bearer_auth(token);
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
                        if self.retry_busy && (status == 429 || status == 503) {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
                        return (status, v);
                    }
                    Err(e) if !self.retry_busy => panic!("{method} {path}: request not sent: {e}"),
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
            panic!("{method} {path}: the server kept failing");
        })
    }

    /// One HTTP request with the administrator token.
    pub fn http(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        if_match: Option<i64>,
    ) -> (u16, Value) {
        self.http_as(&self.token, method, path, body, if_match)
    }

    /// A GET that must answer 200.
    pub fn get(&self, path: &str) -> Value {
        let (status, v) = self.http("GET", path, None, None);
        assert_eq!(status, 200, "GET {path}: {v}");
        v
    }

    /// Every audit entry of a write, in order: the apply lease's records (`kind`
    /// `lease`, which every apply takes and releases) left out.
    pub fn audit(&self) -> Vec<Value> {
        let mut all = self.audit_all();
        all.retain(|e| e["kind"] != "lease");
        all
    }

    /// Every audit entry, in order.
    pub fn audit_all(&self) -> Vec<Value> {
        let mut items = Vec::new();
        let mut path = "/v1/audit?limit=1000".to_string();
        loop {
            let page = self.get(&path);
            items.extend(page["items"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => path = format!("/v1/audit?limit=1000&cursor={}", encode(c)),
                None => return items,
            }
        }
    }
}

/// A command started with [`PAUSE`] set, stopped in its announced pause before writing.
pub struct Paused {
    child: Child,
    stderr: JoinHandle<String>,
}

impl Paused {
    /// Spawns `cmd` (which must set [`PAUSE`]) and waits up to 60 s for its announcement.
    pub fn start(mut cmd: Command) -> Paused {
        let mut child = cmd.spawn().unwrap();
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
        Paused {
            child,
            stderr: reader,
        }
    }

    /// The command's process id (to signal it).
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Lets the command finish within `timeout`: its exit status, stdout and stderr.
    pub fn finish(mut self, timeout: Duration) -> (ExitStatus, String, String) {
        let mut stdout = String::new();
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut stdout)
            .unwrap();
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < deadline, "apply did not finish");
            std::thread::sleep(Duration::from_millis(20));
        };
        let stderr = self.stderr.join().unwrap();
        (status, stdout, stderr)
    }
}

/// Defines `Server` in the calling test module: the harness's server with that module's
/// own helpers (its `impl Server { … }`), started by `Server::start(extra)` with the
/// module's `HARNESS` (extra flags added; 2000 seats unless `--seats` is given).
#[macro_export]
macro_rules! module_server {
    () => {
        /// The shared harness's server, with this module's helpers.
        struct Server($crate::support::cli::Server);

        impl std::ops::Deref for Server {
            type Target = $crate::support::cli::Server;
            fn deref(&self) -> &$crate::support::cli::Server {
                &self.0
            }
        }

        impl Server {
            fn start(extra: &[&str]) -> Server {
                Server($crate::support::cli::Server::start_with(&HARNESS, extra))
            }
        }
    };
}
