//! `cargo bench --bench scale`: roster at the scale of a large organization.
//!
//! Prints figures, not a statistical report (harness = false):
//! 1. generates the organization (default 100,000 representatives, 5,000 teams, 1,000
//!    managers, 50 portals) into `target/bench-org`, reused when the parameters match;
//! 2. the parse floor: every file through `saphyr-parser` (events only, the parser the
//!    config loader uses), in parallel on every core (rayon), with roster's allocator;
//! 3. `roster validate --no-cache` on the same files, as a child process: wall time and
//!    peak resident memory (`wait4` rusage), against the targets 1.5× the floor and 400 MB;
//!    then through the parse cache in a temporary state directory: the first run (writing
//!    every entry), warm runs (every file a hit; target: below the event-stream floor) and
//!    warm runs with one representatives file changed (differently each run);
//!    then `roster access --format json` (effective permissions) on the same files,
//!    against the target 2× validate;
//! 4. against a local `roster serve` (fresh SQLite database in a temporary directory, a
//!    free loopback port): the first `roster apply --auto-approve` of the whole org (target
//!    ≤ 30 s on SQLite, ≤ 45 s on PostgreSQL, the client ≤ 300 MB), the no-op
//!    `roster plan` (target ≤ 2× validate) and a 1,000-change plan and apply, all with `ROSTER_NO_CACHE=1`. HTTP requests are counted by a small counting
//!    proxy on loopback that forwards to the server (used for the counted runs only; timed
//!    runs go straight to the server).
//!    Then, with the change feed and the live snapshot (`<state-dir>/cache/live`): the peer
//!    (octoDNS's dry-run sync of as many records with as many changed, when installed) and,
//!    in the same run, the cold plan `--no-cache` and the cold plan with the caches on over
//!    an empty state directory (targets: <= 1/50 of the peer, <= 250 MB), no-op warm plans
//!    (target: <= 3 requests), and a warm plan after another client changed 1,000 objects
//!    on the live system and one declaration file changed in eleven (target: <= 1/200 of
//!    the peer, <= 250 MB), checked by its content (exit 2, 1,011 changes, the same as a
//!    plan `--no-cache`).
//!
//! Each part says so and is skipped when the command it needs is not implemented yet.
//! Run without `--bench` (as `cargo test --all-targets` does), it is a smoke run over a
//! 300-representative organization in a temporary directory, which panics on a wrong
//! outcome (a failed command, a plan after apply that is not empty), never on a slow one.
//! Every child process runs under a timeout. Only loopback is used.
//!
//! Environment: ROSTER_BENCH_REPS, ROSTER_BENCH_TEAMS, ROSTER_BENCH_MANAGERS,
//! ROSTER_BENCH_PORTALS, ROSTER_BENCH_SEED, ROSTER_BENCH_PER_FILE (the organization),
//! ROSTER_BENCH_RUNS (repetitions of the parse floor and validate, best kept; default 3),
//! ROSTER_BENCH_TIMEOUT (seconds per child process; default 900), ROSTER_BENCH_SKIP_LIVE=1
//! (skip part 4), ROSTER_BENCH_DATABASE (a postgres:// URL of an empty database: part 4 on
//! PostgreSQL instead of SQLite), ROSTER_BENCH_OCTODNS (the peer's `octodns-sync`; else
//! `target/octodns-venv/bin/octodns-sync`, else the PATH; skipped when absent, and in the
//! smoke run unless this is set).

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rayon::prelude::*;
use roster::generate::{GENERATOR_REVISION, GenerateOptions, generate};

// The parse floor runs with the allocator (and its build features) of the `roster` binary
// (src/main.rs), so the ratio compares the parser with roster, not two allocators.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BIN: &str = env!("CARGO_BIN_EXE_roster");

/// Outcomes that are wrong, not merely slow (a failed command, a no-op plan that is not
/// empty…). The run ends with exit 1 (a panic in a smoke run) when there are any.
static FAILURES: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn fail(what: impl Into<String>) {
    FAILURES.lock().unwrap().push(what.into());
}

fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .replace('_', "")
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a number")),
        Err(_) => default,
    }
}

/// The outcome of one child process.
struct Run {
    code: Option<i32>,
    secs: f64,
    /// Peak resident set size in kB (Linux `ru_maxrss`).
    max_rss_kb: i64,
    stdout: String,
    stderr: String,
    timed_out: bool,
}

impl Run {
    fn ok(&self) -> bool {
        self.code == Some(0)
    }
    fn not_implemented(&self) -> bool {
        self.stderr.contains("not implemented")
    }
    fn tail(&self) -> String {
        let s = if self.stderr.trim().is_empty() {
            &self.stdout
        } else {
            &self.stderr
        };
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(8)..].join("\n    ")
    }
}

/// Runs `cmd` to completion (or kills it after `timeout`), measuring wall time and the
/// child's own peak memory through `wait4`.
fn run(cmd: &mut Command, timeout: Duration, logs: &Path) -> io::Result<Run> {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let out_path = logs.join(format!("run-{n}.out"));
    let err_path = logs.join(format!("run-{n}.err"));
    cmd.stdin(Stdio::null())
        .stdout(fs::File::create(&out_path)?)
        .stderr(fs::File::create(&err_path)?);
    let started = Instant::now();
    let child = cmd.spawn()?;
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data; wait4 fills it in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let mut timed_out = false;
    loop {
        // SAFETY: `pid` is our own child, not yet reaped (std's Child is never waited on).
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid {
            break;
        }
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        if !timed_out && started.elapsed() > timeout {
            timed_out = true;
            // SAFETY: signalling our own child by its id.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        thread::sleep(Duration::from_millis(2));
    }
    let secs = started.elapsed().as_secs_f64();
    drop(child);
    let code = if libc::WIFEXITED(status) {
        Some(libc::WEXITSTATUS(status))
    } else {
        None
    };
    Ok(Run {
        code,
        secs,
        max_rss_kb: usage.ru_maxrss,
        stdout: fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: fs::read_to_string(&err_path).unwrap_or_default(),
        timed_out,
    })
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .expect("the generated directory is readable")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    v.sort();
    v
}

/// Reads and parses every file into events, in parallel; returns the number of events.
fn parse_floor(files: &[PathBuf]) -> usize {
    files
        .par_iter()
        .map(|f| {
            let text = fs::read_to_string(f).expect("readable file");
            let mut n = 0;
            for ev in saphyr_parser::Parser::new_from_str(&text) {
                ev.expect("the generated YAML parses");
                n += 1;
            }
            n
        })
        .sum()
}

/// The floor as the issue measured it: every file loaded into saphyr's marked tree
/// (what "merely parsing with saphyr" gives a program), in parallel.
fn tree_floor(files: &[PathBuf]) -> usize {
    use saphyr::LoadableYamlNode;
    files
        .par_iter()
        .map(|f| {
            let text = fs::read_to_string(f).expect("readable file");
            saphyr::MarkedYaml::load_from_str(&text)
                .expect("the generated YAML parses")
                .len()
        })
        .sum()
}

/// Counts HTTP requests between roster and the server, by method and collection. Forwards
/// bytes as they are; parses only request heads (and skips `Content-Length` bodies).
#[derive(Default)]
struct Counter {
    by_method: Mutex<BTreeMap<String, u64>>,
    chunked: AtomicU64,
}

impl Counter {
    fn snapshot(&self) -> BTreeMap<String, u64> {
        self.by_method.lock().unwrap().clone()
    }
    fn reset(&self) {
        self.by_method.lock().unwrap().clear();
    }
}

fn describe(counts: &BTreeMap<String, u64>) -> String {
    let total: u64 = counts.values().sum();
    let writes: u64 = counts
        .iter()
        .filter(|(m, _)| !m.starts_with("GET ") && !m.starts_with("HEAD "))
        .map(|(_, n)| n)
        .sum();
    let parts: Vec<String> = counts.iter().map(|(m, n)| format!("{m} {n}")).collect();
    format!(
        "{total} requests ({writes} writes; {})",
        if parts.is_empty() {
            "none".to_string()
        } else {
            parts.join(", ")
        }
    )
}

fn proxy_connection(client: TcpStream, upstream: SocketAddr, counter: Arc<Counter>) {
    let Ok(server) = TcpStream::connect(upstream) else {
        return;
    };
    let (Ok(mut server_w), Ok(mut server_r), Ok(mut client_w)) =
        (server.try_clone(), server.try_clone(), client.try_clone())
    else {
        return;
    };
    thread::spawn(move || {
        let _ = io::copy(&mut server_r, &mut client_w);
        let _ = client_w.shutdown(std::net::Shutdown::Write);
    });
    let mut reader = BufReader::new(client);
    loop {
        let mut head = Vec::new();
        let mut content_length = 0usize;
        let mut chunked = false;
        loop {
            let mut line = Vec::new();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => {
                    let _ = server_w.shutdown(std::net::Shutdown::Write);
                    return;
                }
                Ok(_) => {}
            }
            let text = String::from_utf8_lossy(&line).to_ascii_lowercase();
            if let Some(v) = text.strip_prefix("content-length:") {
                content_length = v.trim().parse().unwrap_or(0);
            }
            if text.starts_with("transfer-encoding:") && text.contains("chunked") {
                chunked = true;
            }
            let end = line == b"\r\n" || line == b"\n";
            head.extend_from_slice(&line);
            if end && head.len() > line.len() {
                break;
            }
            if end {
                head.clear(); // stray blank line between requests
            }
        }
        // "PATCH /v1/representatives/x?y" counts as "PATCH /v1/representatives".
        let head_text = String::from_utf8_lossy(&head);
        let mut words = head_text.split_whitespace();
        let method = words.next().unwrap_or("?");
        let path = words.next().unwrap_or("");
        let path = path.split('?').next().unwrap_or("");
        let collection: Vec<&str> = path.split('/').take(3).collect();
        let label = format!("{method} {}", collection.join("/"));
        *counter.by_method.lock().unwrap().entry(label).or_default() += 1;
        if server_w.write_all(&head).is_err() {
            return;
        }
        if chunked {
            // Not expected from roster (JSON bodies carry a length): stop counting, just
            // forward the rest of this connection.
            counter.chunked.fetch_add(1, Ordering::Relaxed);
            let _ = io::copy(&mut reader, &mut server_w);
            return;
        }
        let mut body = (&mut reader).take(content_length as u64);
        if io::copy(&mut body, &mut server_w).is_err() {
            return;
        }
    }
}

fn start_proxy(upstream: SocketAddr) -> io::Result<(SocketAddr, Arc<Counter>)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let counter = Arc::new(Counter::default());
    let c = counter.clone();
    thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let c = c.clone();
            thread::spawn(move || proxy_connection(conn, upstream, c));
        }
    });
    Ok((addr, counter))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Kills the server we started when the bench ends, whatever happens.
struct ServerGuard(Child);

impl Drop for ServerGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Changes the language of the first `n` representatives (in file order) to `it`, which
/// the generator never uses: exactly `n` one-field updates.
fn make_changes(src: &Path, dst: &Path, n: usize) -> io::Result<usize> {
    fs::create_dir_all(dst)?;
    let mut left = n;
    for f in yaml_files(src) {
        let text = fs::read_to_string(&f)?;
        let mut out = String::with_capacity(text.len());
        for line in text.split_inclusive('\n') {
            if left > 0 && line.starts_with("    language: ") {
                out.push_str("    language: it\n");
                left -= 1;
            } else {
                out.push_str(line);
            }
        }
        fs::write(dst.join(f.file_name().unwrap()), out)?;
    }
    Ok(n - left)
}

/// A running process's peak resident set size (`VmHWM`, kB), from /proc.
fn peak_kb(pid: u32) -> Option<i64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn mb(kb: i64) -> f64 {
    kb as f64 / 1024.0
}

fn verdict(ok: bool) -> &'static str {
    if ok { "ok" } else { "MISSED" }
}

fn main() {
    // `cargo bench` passes `--bench`. Without it (`cargo test --all-targets` runs this
    // binary too) this is a smoke run: a small org in a temporary directory, one run each.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let (reps, teams, managers, portals) = if smoke {
        (300, 20, 10, 4)
    } else {
        (100_000, 5_000, 1_000, 50)
    };
    let opts = GenerateOptions {
        representatives: env_usize("ROSTER_BENCH_REPS", reps),
        teams: env_usize("ROSTER_BENCH_TEAMS", teams),
        managers: env_usize("ROSTER_BENCH_MANAGERS", managers),
        portals: env_usize("ROSTER_BENCH_PORTALS", portals),
        seed: env_usize("ROSTER_BENCH_SEED", 1) as u64,
        per_file: env_usize("ROSTER_BENCH_PER_FILE", if smoke { 100 } else { 5_000 }),
    };
    let runs = env_usize("ROSTER_BENCH_RUNS", if smoke { 1 } else { 3 }).max(1);
    let timeout = Duration::from_secs(env_usize("ROSTER_BENCH_TIMEOUT", 900) as u64);
    let skip_live = std::env::var("ROSTER_BENCH_SKIP_LIVE").is_ok_and(|v| v == "1");
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("CARGO_TARGET_TMPDIR is target/tmp")
        .to_path_buf();
    let scratch = tempfile::tempdir().expect("a temporary directory");
    let logs = scratch.path();
    let org = if smoke {
        logs.join("smoke-org")
    } else {
        target.join("bench-org")
    };

    if smoke {
        println!("roster scale benchmark, smoke run (use `cargo bench --bench scale` for figures)");
    } else {
        println!("roster scale benchmark");
    }
    println!(
        "  machine: {} cores (rayon threads: {}), binary: {BIN}",
        thread::available_parallelism().map_or(1, |n| n.get()),
        rayon::current_num_threads()
    );

    // 1. The organization.
    let stamp = format!("{opts:?} revision {GENERATOR_REVISION}\n");
    let stamp_path = org.join(".bench-params");
    if fs::read_to_string(&stamp_path).ok().as_deref() == Some(stamp.as_str()) {
        println!("\n[generate] reusing {} ({stamp:?})", org.display());
    } else {
        let t = Instant::now();
        let stats = generate(&opts, &org).expect("generate the organization");
        fs::write(&stamp_path, &stamp).expect("write the parameters stamp");
        println!(
            "\n[generate] {} files, {:.1} MB in {:.2}s into {}",
            stats.files.len(),
            stats.bytes as f64 / 1e6,
            t.elapsed().as_secs_f64(),
            org.display()
        );
    }
    let files = yaml_files(&org);
    let bytes: u64 = files
        .iter()
        .map(|f| fs::metadata(f).map_or(0, |m| m.len()))
        .sum();
    println!(
        "  {} representatives, {} teams, {} managers, {} portals; {} files, {:.1} MB",
        opts.representatives,
        opts.teams,
        opts.managers,
        opts.portals,
        files.len(),
        bytes as f64 / 1e6
    );

    // 2. The parse floor.
    let mut floor = f64::INFINITY;
    let mut events = 0;
    for _ in 0..runs {
        let t = Instant::now();
        events = parse_floor(&files);
        floor = floor.min(t.elapsed().as_secs_f64());
    }
    println!(
        "\n[parse floor] saphyr-parser events only, {} threads: {floor:.3}s (best of {runs}), {events} events, {:.0} MB/s",
        rayon::current_num_threads(),
        bytes as f64 / 1e6 / floor
    );

    let mut tree = f64::INFINITY;
    for _ in 0..runs {
        let t = Instant::now();
        tree_floor(&files);
        tree = tree.min(t.elapsed().as_secs_f64());
    }
    println!(
        "[parse floor] saphyr marked tree (the issue's floor), {} threads: {tree:.3}s (best of {runs})",
        rayon::current_num_threads(),
    );

    // 3. validate. Cold: every file parsed (`--no-cache`: no entry read or written).
    let state = logs.join("state");
    let mut validate_secs = None;
    let mut best: Option<Run> = None;
    for _ in 0..runs {
        let r = run(
            Command::new(BIN)
                .arg("validate")
                .arg("--no-cache")
                .arg(&org)
                .env("ROSTER_STATE_DIR", &state),
            timeout,
            logs,
        )
        .expect("run roster validate");
        let keep = best.as_ref().is_none_or(|b| r.secs < b.secs);
        let stop = !r.ok();
        if keep || stop {
            best = Some(r);
        }
        if stop {
            break;
        }
    }
    let v = best.expect("at least one run");
    if v.ok() {
        let ratio = v.secs / floor;
        println!(
            "\n[validate] roster validate: {:.3}s (best of {runs}), peak {:.0} MB",
            v.secs,
            mb(v.max_rss_kb)
        );
        println!(
            "  validate / parse floor = {ratio:.2}x (target <= 1.5x: {}); peak memory target <= 400 MB: {}",
            verdict(ratio <= 1.5),
            verdict(mb(v.max_rss_kb) <= 400.0)
        );
        let tree_ratio = v.secs / tree;
        println!(
            "  validate / saphyr tree floor = {tree_ratio:.2}x (target <= 1.5x: {})",
            verdict(tree_ratio <= 1.5),
        );
        validate_secs = Some(v.secs);
    } else if v.not_implemented() {
        println!("\n[validate] skipped: `roster validate` is not implemented yet");
    } else {
        fail("roster validate failed");
        println!(
            "\n[validate] FAILED (exit {:?}{}) after {:.2}s, peak {:.0} MB:\n    {}",
            v.code,
            if v.timed_out { ", timed out" } else { "" },
            v.secs,
            mb(v.max_rss_kb),
            v.tail()
        );
    }

    // 3b. validate through the parse cache.
    if validate_secs.is_some() {
        warm(&org, &files, &state, logs, timeout, runs, floor);
    }
    // 3c. access: the same declaration, effective permissions as JSON (the largest
    // rendering) and one expectation, target <= 2x validate.
    let mut best: Option<Run> = None;
    for _ in 0..runs {
        let r = run(
            Command::new(BIN).arg("access").arg(&org).args([
                "--format",
                "json",
                "--expect",
                "reports at-least 1",
            ]),
            timeout,
            logs,
        )
        .expect("run roster access");
        let keep = best.as_ref().is_none_or(|b| r.secs < b.secs);
        let stop = !r.ok();
        if keep || stop {
            best = Some(r);
        }
        if stop {
            break;
        }
    }
    let a = best.expect("at least one run");
    if a.ok() {
        let ratio = validate_secs.map(|v| a.secs / v);
        println!(
            "\n[access] roster access --format json: {:.3}s (best of {runs}), peak {:.0} MB; access / validate = {} (target <= 2x: {})",
            a.secs,
            mb(a.max_rss_kb),
            ratio.map_or("n/a".into(), |r| format!("{r:.2}x")),
            ratio.map_or("n/a", |r| verdict(r <= 2.0)),
        );
    } else if a.not_implemented() {
        println!("\n[access] skipped: `roster access` is not implemented yet");
    } else {
        fail("roster access failed");
        println!(
            "\n[access] FAILED (exit {:?}{}) after {:.2}s, peak {:.0} MB:\n    {}",
            a.code,
            if a.timed_out { ", timed out" } else { "" },
            a.secs,
            mb(a.max_rss_kb),
            a.tail()
        );
    }

    // 4. Against a live server.
    if skip_live {
        println!("\n[live] skipped: ROSTER_BENCH_SKIP_LIVE=1");
    } else {
        live(&opts, &org, logs, timeout, validate_secs, runs, smoke);
    }
    let failures = FAILURES.lock().unwrap().clone();
    if failures.is_empty() {
        return;
    }
    let list = failures.join("; ");
    if smoke {
        panic!("the smoke run found failures: {list}");
    }
    eprintln!("\nfailures: {list}");
    std::process::exit(1);
}

/// `roster validate` through the parse cache in `state`: the first run (every file parsed
/// and stored), warm runs (every file a hit) and warm runs with one file changed (a fresh
/// change each run, so that file is always parsed), against the event-stream floor.
fn warm(
    org: &Path,
    files: &[PathBuf],
    state: &Path,
    logs: &Path,
    timeout: Duration,
    runs: usize,
    floor: f64,
) {
    let validate = |dir: &Path| -> Run {
        run(
            Command::new(BIN)
                .args(["-v", "validate"])
                .arg(dir)
                .env("ROSTER_STATE_DIR", state)
                .env_remove("ROSTER_NO_CACHE")
                .env_remove("RUST_LOG"),
            timeout,
            logs,
        )
        .expect("run roster validate")
    };
    let hits = |r: &Run| -> Option<usize> {
        let line = r.stderr.lines().find(|l| l.contains("parse cache: "))?;
        let at = line.find("parse cache: ")? + "parse cache: ".len();
        line[at..].split_whitespace().next()?.parse().ok()
    };
    let _ = fs::remove_dir_all(state);
    let first = validate(org);
    if !first.ok() {
        fail("roster validate writing the parse cache failed");
        println!("\n[validate, cached] FAILED:\n    {}", first.tail());
        return;
    }
    let entries: u64 = fs::read_dir(state.join("cache/parse"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0);
    println!(
        "\n[validate, cached] first run (parses and writes every entry): {:.3}s, peak {:.0} MB; cache {:.1} MB",
        first.secs,
        mb(first.max_rss_kb),
        entries as f64 / 1e6
    );
    let best_of = |make: &mut dyn FnMut(usize) -> PathBuf, expect_hits: usize| -> Option<Run> {
        let mut best: Option<Run> = None;
        for i in 0..runs {
            let dir = make(i);
            let r = validate(&dir);
            if !r.ok() || hits(&r) != Some(expect_hits) {
                fail(format!(
                    "cached roster validate: exit {:?}, {:?} hits (expected {expect_hits})",
                    r.code,
                    hits(&r)
                ));
                println!("  FAILED:\n    {}", r.tail());
                return None;
            }
            if best.as_ref().is_none_or(|b| r.secs < b.secs) {
                best = Some(r);
            }
        }
        best
    };
    let n = files.len();
    let Some(w) = best_of(&mut |_| org.to_path_buf(), n) else {
        return;
    };
    println!(
        "  warm (all {n} files from the cache): {:.3}s (best of {runs}), peak {:.0} MB; warm / parse floor = {:.2}x (target < 1x: {})",
        w.secs,
        mb(w.max_rss_kb),
        w.secs / floor,
        verdict(w.secs < floor)
    );
    // One representatives file changed, differently on every run.
    let changed = logs.join("one-changed-org");
    fs::create_dir_all(&changed).expect("a directory for the changed org");
    for f in files {
        fs::copy(f, changed.join(f.file_name().unwrap())).expect("copy the org");
    }
    let target = files
        .iter()
        .rev()
        .find(|f| {
            f.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("representatives"))
        })
        .unwrap_or(&files[0]);
    let original = fs::read_to_string(target).expect("readable file");
    let name = target.file_name().unwrap().to_owned();
    let Some(c) = best_of(
        &mut |i| {
            let text = original.replacen("    language: ", "    language: it\n    # was: ", 1)
                + &format!("# change {i}\n");
            fs::write(changed.join(&name), text).expect("write the changed file");
            changed.clone()
        },
        n - 1,
    ) else {
        return;
    };
    println!(
        "  warm, one file of {n} changed ({}): {:.3}s (best of {runs}), peak {:.0} MB; / parse floor = {:.2}x",
        name.to_string_lossy(),
        c.secs,
        mb(c.max_rss_kb),
        c.secs / floor
    );
}

fn live(
    opts: &GenerateOptions,
    org: &Path,
    logs: &Path,
    timeout: Duration,
    validate: Option<f64>,
    runs: usize,
    smoke: bool,
) {
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    // ROSTER_BENCH_DATABASE: a postgres:// URL of an empty database to measure the server
    // on PostgreSQL instead of a fresh SQLite file.
    let database = std::env::var("ROSTER_BENCH_DATABASE")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| format!("sqlite://{}", logs.join("live.db").display()));
    // Never the user or password of the URL.
    let shown = if database.starts_with("postgres") {
        let host = database.rsplit('@').next().unwrap_or_default();
        let host = host.rsplit("://").next().unwrap_or_default();
        format!("PostgreSQL {host}")
    } else {
        format!("SQLite {}", database.trim_start_matches("sqlite://"))
    };
    let token = logs.join("admin.token");
    let seats = (opts.representatives * 2).max(1000);
    let server = Command::new(BIN)
        .args(["serve", "--listen", &addr.to_string()])
        .arg("--database")
        .arg(&database)
        .arg("--admin-token-file")
        .arg(&token)
        .args(["--seats", &seats.to_string()])
        .stdin(Stdio::null())
        .stdout(fs::File::create(logs.join("serve.out")).unwrap())
        .stderr(fs::File::create(logs.join("serve.err")).unwrap())
        .spawn()
        .expect("spawn roster serve");
    let mut server = ServerGuard(server);
    let started = Instant::now();
    loop {
        if let Ok(Some(status)) = server.0.try_wait() {
            let err = fs::read_to_string(logs.join("serve.err")).unwrap_or_default();
            if err.contains("not implemented") {
                println!("\n[live] skipped: `roster serve` is not implemented yet");
            } else {
                fail("roster serve exited");
                println!(
                    "\n[live] skipped: `roster serve` exited ({status}): {}",
                    err.trim()
                );
            }
            return;
        }
        if TcpStream::connect(addr).is_ok() && token.exists() {
            break;
        }
        if started.elapsed() > Duration::from_secs(60) {
            fail("roster serve did not listen");
            println!("\n[live] skipped: `roster serve` did not listen on {addr} within 60s");
            return;
        }
        thread::sleep(Duration::from_millis(50));
    }
    println!(
        "\n[live] roster serve on {addr}, {shown} ({seats} seats), ready in {:.2}s",
        started.elapsed().as_secs_f64()
    );
    let (proxy, counter) = start_proxy(addr).expect("start the counting proxy");
    let roster = |cmd: &str, dir: &Path, endpoint: SocketAddr, extra: &[&str]| -> Run {
        let mut c = Command::new(BIN);
        c.arg(cmd)
            .arg(dir)
            .arg("--endpoint")
            .arg(format!("http://{endpoint}"))
            .arg("--token-file")
            .arg(&token)
            .args(extra)
            // Every file parsed, as before the parse cache: these figures stay comparable.
            .env("ROSTER_NO_CACHE", "1");
        run(&mut c, timeout, logs).expect("run roster")
    };
    let report_failure = |what: &str, r: &Run| {
        if r.not_implemented() {
            println!("  {what}: skipped, not implemented yet");
        } else {
            fail(format!("{what} failed"));
            println!(
                "  {what}: FAILED (exit {:?}{}) after {:.2}s:\n    {}",
                r.code,
                if r.timed_out { ", timed out" } else { "" },
                r.secs,
                r.tail()
            );
        }
    };

    // First apply of the whole org, straight to the server.
    let a = roster("apply", org, addr, &["--auto-approve"]);
    if !a.ok() {
        report_failure("first apply", &a);
        return;
    }
    // Issue 14: <= 30 s on SQLite, <= 45 s on PostgreSQL, the client <= 300 MB.
    let apply_target = if database.starts_with("postgres") {
        45.0
    } else {
        30.0
    };
    println!(
        "  first apply (whole org, empty server): {:.2}s, peak {:.0} MB (target <= {apply_target:.0} s: {}; client <= 300 MB: {})",
        a.secs,
        mb(a.max_rss_kb),
        verdict(a.secs <= apply_target),
        verdict(mb(a.max_rss_kb) <= 300.0)
    );

    // No-op plan: timed straight (best of `runs`, as validate), then counted through the
    // proxy.
    let mut p = roster("plan", org, addr, &["--detailed-exitcode"]);
    for _ in 1..runs {
        if p.code != Some(0) {
            break;
        }
        let again = roster("plan", org, addr, &["--detailed-exitcode"]);
        if again.code != p.code || again.secs < p.secs {
            p = again;
        }
    }
    match p.code {
        Some(0) => {
            let target = validate.map(|v| 2.0 * v);
            println!(
                "  no-op plan: {:.3}s (best of {runs}), peak {:.0} MB; plan / validate = {} (target <= 2x validate = {}: {})",
                p.secs,
                mb(p.max_rss_kb),
                validate.map_or("n/a".into(), |v| format!("{:.2}x", p.secs / v)),
                target.map_or("n/a".into(), |t| format!("{t:.3}s")),
                target.map_or("n/a", |t| verdict(p.secs <= t))
            );
        }
        Some(2) => {
            fail("the plan after the first apply is not empty");
            println!(
                "  no-op plan: NOT EMPTY after the first apply (exit 2) in {:.2}s; first lines:\n    {}",
                p.secs,
                p.stdout.lines().take(12).collect::<Vec<_>>().join("\n    ")
            )
        }
        _ => {
            report_failure("no-op plan", &p);
            return;
        }
    }
    counter.reset();
    let p = roster("plan", org, proxy, &["--detailed-exitcode"]);
    println!(
        "  no-op plan through the counting proxy: exit {:?}, {:.2}s, {}",
        p.code,
        p.secs,
        describe(&counter.snapshot())
    );
    if p.code != Some(0) {
        fail("the no-op plan through the proxy did not exit 0");
    }

    // 1,000 changes.
    let changed = logs.join("changed-org");
    let n = make_changes(org, &changed, 1000.min(opts.representatives)).expect("copy the org");
    counter.reset();
    let p = roster(
        "plan",
        &changed,
        proxy,
        &["--detailed-exitcode", "--format", "json"],
    );
    let plan_changes = serde_json::from_str::<serde_json::Value>(&p.stdout)
        .ok()
        .and_then(|v| v.get("changes").and_then(|c| c.as_array()).map(|c| c.len()));
    println!(
        "  {n}-change plan: exit {:?} (expect 2), {:.2}s, {} changes in the JSON plan, {}",
        p.code,
        p.secs,
        plan_changes.map_or("?".into(), |c| c.to_string()),
        describe(&counter.snapshot())
    );
    if p.code != Some(2) || plan_changes != Some(n) {
        fail(format!(
            "the {n}-change plan did not show {n} changes with exit 2"
        ));
    }
    // The server check's cost: the same plan without it (the plan above ran it).
    counter.reset();
    let unchecked = roster(
        "plan",
        &changed,
        proxy,
        &["--detailed-exitcode", "--no-server-check"],
    );
    let share = (p.secs - unchecked.secs) / unchecked.secs.max(1e-9) * 100.0;
    println!(
        "  {n}-change plan without the server check: exit {:?}, {:.2}s; the check costs {share:.0}% of the plan (target ≤ 25%), {}",
        unchecked.code,
        unchecked.secs,
        describe(&counter.snapshot())
    );
    if unchecked.code != Some(2) {
        fail(format!(
            "the {n}-change plan without the server check did not exit 2"
        ));
    }
    if !p.stdout.contains("\"server_checked\": true") {
        fail(format!("the {n}-change plan was not server-checked"));
    }
    counter.reset();
    let a = roster("apply", &changed, proxy, &["--auto-approve"]);
    if !a.ok() {
        report_failure(&format!("{n}-change apply"), &a);
        return;
    }
    println!(
        "  {n}-change apply: {:.2}s, {}",
        a.secs,
        describe(&counter.snapshot())
    );
    counter.reset();
    let p = roster("plan", &changed, proxy, &["--detailed-exitcode"]);
    println!(
        "  plan after it: exit {:?} (expect 0), {}",
        p.code,
        describe(&counter.snapshot())
    );
    if p.code != Some(0) {
        fail(format!("the plan after the {n}-change apply is not empty"));
    }
    // The live part with the change feed: the live system is now `changed`.
    feed(&Feed {
        org,
        base: &changed,
        logs,
        timeout,
        runs,
        addr,
        proxy,
        counter: &counter,
        token: &token,
        smoke,
    });
    if counter.chunked.load(Ordering::Relaxed) > 0 {
        println!("  note: some requests used chunked bodies; counts after them are low");
    }
    if let Some(kb) = peak_kb(server.0.id()) {
        println!(
            "  roster serve peak memory over the whole run: {:.0} MB",
            mb(kb)
        );
    }
    drop(server);
}

/// Copies the org in `src` to `dst`, setting the `language` of the representatives whose
/// position (in file order) `pick` answers; returns how many lines changed and the files
/// that differ from `src`.
fn relanguage(
    src: &Path,
    dst: &Path,
    pick: &dyn Fn(usize) -> Option<&'static str>,
) -> io::Result<(usize, Vec<String>)> {
    fs::create_dir_all(dst)?;
    let mut i = 0;
    let mut changed = 0;
    let mut files = Vec::new();
    for f in yaml_files(src) {
        let text = fs::read_to_string(&f)?;
        let mut out = String::with_capacity(text.len());
        let before = changed;
        for line in text.split_inclusive('\n') {
            match line.strip_prefix("    language: ") {
                Some(was) => {
                    match pick(i).filter(|new| was.trim_end() != *new) {
                        Some(new) => {
                            out.push_str("    language: ");
                            out.push_str(new);
                            out.push('\n');
                            changed += 1;
                        }
                        None => out.push_str(line),
                    }
                    i += 1;
                }
                None => out.push_str(line),
            }
        }
        let name = f.file_name().unwrap();
        if changed > before {
            files.push(name.to_string_lossy().into_owned());
        }
        fs::write(dst.join(name), out)?;
    }
    Ok((changed, files))
}

/// How many representatives (`language` lines) the org in `dir` declares.
fn count_reps(dir: &Path) -> usize {
    yaml_files(dir)
        .iter()
        .map(|p| fs::read_to_string(p).map_or(0, |t| t.matches("\n    language: ").count()))
        .sum()
}

/// The changes of a JSON plan.
fn json_changes(stdout: &str) -> Option<Vec<serde_json::Value>> {
    serde_json::from_str::<serde_json::Value>(stdout)
        .ok()?
        .get("changes")?
        .as_array()
        .cloned()
}

fn total_requests(counts: &BTreeMap<String, u64>) -> u64 {
    counts.values().sum()
}

/// octoDNS's `octodns-sync`: `ROSTER_BENCH_OCTODNS`, else a virtual environment under
/// `target/octodns-venv`, else the `PATH`.
fn octodns() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("ROSTER_BENCH_OCTODNS") {
        return Some(PathBuf::from(p)).filter(|p| p.is_file());
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/octodns-venv/bin/octodns-sync");
    if venv.is_file() {
        return Some(venv);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("octodns-sync"))
            .find(|p| p.is_file())
    })
}

/// The peer, side by side: octoDNS's dry-run sync of `n` A records with `changed` of them
/// different (two YAML providers, as in `shared/bench/octodns`), timed as a child
/// process. Returns its wall time when it ran and planned `changed` updates.
fn peer(n: usize, changed: usize, logs: &Path, timeout: Duration) -> Option<f64> {
    let Some(sync) = octodns() else {
        println!(
            "  peer: skipped, octoDNS is not installed (python3 -m venv target/octodns-venv && target/octodns-venv/bin/pip install octodns==1.22.0)"
        );
        return None;
    };
    let dir = logs.join("octodns");
    let write = || -> io::Result<()> {
        fs::create_dir_all(dir.join("src"))?;
        fs::create_dir_all(dir.join("dst"))?;
        fs::write(
            dir.join("cfg.yaml"),
            "providers:\n  src:\n    class: octodns.provider.yaml.YamlProvider\n    directory: ./src\n  dst:\n    class: octodns.provider.yaml.YamlProvider\n    directory: ./dst\nzones:\n  example.com.:\n    sources: [src]\n    targets: [dst]\n",
        )?;
        let mut s = String::from("---\n");
        let mut d = String::from("---\n");
        for i in 0..n {
            let ip = format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255);
            let ip2 = if i >= changed {
                ip.clone()
            } else {
                format!("192.168.{}.{}", (i >> 8) & 255, i & 255)
            };
            s.push_str(&format!(
                "rep{i:06}:\n  ttl: 300\n  type: A\n  value: {ip}\n"
            ));
            d.push_str(&format!(
                "rep{i:06}:\n  ttl: 300\n  type: A\n  value: {ip2}\n"
            ));
        }
        fs::write(dir.join("src/example.com.yaml"), s)?;
        fs::write(dir.join("dst/example.com.yaml"), d)
    };
    write().expect("write octoDNS's zones");
    let r = run(
        Command::new(&sync)
            .args(["--config-file", "cfg.yaml"])
            .current_dir(&dir),
        timeout,
        logs,
    )
    .expect("run octodns-sync");
    let updates = r
        .stderr
        .lines()
        .chain(r.stdout.lines())
        .find_map(|l| l.split("Updates=").nth(1))
        .and_then(|v| v.split(',').next())
        .and_then(|v| v.trim().parse::<usize>().ok());
    if !r.ok() || updates != Some(changed) {
        println!(
            "  peer: octoDNS dry-run sync FAILED or planned {updates:?} updates (expected {changed}; exit {:?}):\n    {}",
            r.code,
            r.tail()
        );
        return None;
    }
    println!(
        "  peer: octoDNS dry-run sync ({}), {n} records, {changed} changed: {:.2}s, peak {:.0} MB, {changed} updates planned",
        sync.display(),
        r.secs,
        mb(r.max_rss_kb)
    );
    Some(r.secs)
}

struct Feed<'a> {
    /// The generated organization.
    org: &'a Path,
    /// What the live system holds when the part starts (a copy of the org).
    base: &'a Path,
    logs: &'a Path,
    timeout: Duration,
    runs: usize,
    addr: SocketAddr,
    proxy: SocketAddr,
    counter: &'a Counter,
    token: &'a Path,
    smoke: bool,
}

/// The change feed and the live snapshot: cold plans (`--no-cache`, then the caches on
/// over an empty state directory), no-op warm plans, and a warm plan after 1,000 objects
/// changed on the live system and one declaration file changed; octoDNS side by side.
fn feed(f: &Feed) {
    println!("\n[live, change feed] the live snapshot and the parse cache");
    let plan = |dir: &Path, endpoint: SocketAddr, state: Option<&Path>, extra: &[&str]| -> Run {
        let mut c = Command::new(BIN);
        c.arg("plan")
            .arg(dir)
            .arg("--endpoint")
            .arg(format!("http://{endpoint}"))
            .arg("--token-file")
            .arg(f.token)
            .args(["--detailed-exitcode", "--format", "json"])
            .args(extra)
            .env_remove("RUST_LOG");
        match state {
            Some(s) => c.env("ROSTER_STATE_DIR", s).env_remove("ROSTER_NO_CACHE"),
            None => c.env("ROSTER_NO_CACHE", "1"),
        };
        f.counter.reset();
        run(&mut c, f.timeout, f.logs).expect("run roster plan")
    };
    // The live system holds `base`; the declaration `org` differs from it in as many
    // changes as `make_changes` made.
    let cold_expect = {
        let p = plan(f.org, f.addr, None, &[]);
        let n = json_changes(&p.stdout).map(|c| c.len());
        if p.code != Some(2) || n.is_none_or(|n| n == 0) {
            fail("the cold plan of the org against the changed live system");
            println!("  cold plan: FAILED (exit {:?}):\n    {}", p.code, p.tail());
            return;
        }
        n.unwrap()
    };

    // The peer, in the same run, just before roster's cold plans.
    let peer_secs = if f.smoke && std::env::var_os("ROSTER_BENCH_OCTODNS").is_none() {
        println!("  peer: skipped in the smoke run (set ROSTER_BENCH_OCTODNS to run it)");
        None
    } else {
        let reps = count_reps(f.org);
        peer(reps, cold_expect, f.logs, f.timeout)
    };
    let ratio = |secs: f64, share: f64| -> String {
        peer_secs.map_or("peer n/a".into(), |o| {
            format!(
                "roster / octoDNS = 1/{:.0} (target <= 1/{share:.0}: {})",
                o / secs,
                verdict(secs * share <= o)
            )
        })
    };

    // Cold, --no-cache: every file parsed, every object read.
    let mut best: Option<Run> = None;
    for _ in 0..f.runs {
        let p = plan(f.org, f.addr, None, &[]);
        if p.code != Some(2) || json_changes(&p.stdout).map(|c| c.len()) != Some(cold_expect) {
            fail("the cold --no-cache plan");
            println!(
                "  cold plan --no-cache: FAILED (exit {:?}):\n    {}",
                p.code,
                p.tail()
            );
            return;
        }
        if best.as_ref().is_none_or(|b| p.secs < b.secs) {
            best = Some(p);
        }
    }
    let c = best.expect("at least one run");
    println!(
        "  cold plan --no-cache ({cold_expect} changes): {:.3}s (best of {}), peak {:.0} MB (<= 250 MB: {}); {}",
        c.secs,
        f.runs,
        mb(c.max_rss_kb),
        verdict(mb(c.max_rss_kb) <= 250.0),
        ratio(c.secs, 50.0)
    );

    // Cold, the caches on over an empty state directory: the first plan on this machine.
    let state = f.logs.join("feed-state");
    let mut best: Option<(Run, BTreeMap<String, u64>)> = None;
    for _ in 0..f.runs {
        let _ = fs::remove_dir_all(&state);
        let p = plan(f.org, f.proxy, Some(&state), &[]);
        if p.code != Some(2) || json_changes(&p.stdout).map(|c| c.len()) != Some(cold_expect) {
            fail("the first plan over an empty state directory");
            println!(
                "  cold plan, empty state dir: FAILED (exit {:?}):\n    {}",
                p.code,
                p.tail()
            );
            return;
        }
        if best.as_ref().is_none_or(|(b, _)| p.secs < b.secs) {
            best = Some((p, f.counter.snapshot()));
        }
    }
    let (c, counts) = best.expect("at least one run");
    let snapshot_mb = fs::read_dir(state.join("cache/live")).map_or(0, |d| {
        d.flatten()
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum::<u64>()
    }) as f64
        / 1e6;
    if snapshot_mb == 0.0 {
        fail("the first plan with the cache on wrote no live snapshot");
    }
    println!(
        "  cold plan, caches on, empty state dir (first plan on this machine): {:.3}s (best of {}), peak {:.0} MB (<= 250 MB: {}); {}; live snapshot {snapshot_mb:.1} MB; {}",
        c.secs,
        f.runs,
        mb(c.max_rss_kb),
        verdict(mb(c.max_rss_kb) <= 250.0),
        ratio(c.secs, 50.0),
        describe(&counts)
    );

    // No-op warm plans: the live system as the snapshot has it, the declaration it holds.
    let mut best: Option<(Run, BTreeMap<String, u64>)> = None;
    let mut most = 0;
    for _ in 0..f.runs.max(2) {
        let p = plan(f.base, f.proxy, Some(&state), &[]);
        let counts = f.counter.snapshot();
        if p.code != Some(0) {
            fail("the no-op warm plan is not empty");
            println!(
                "  no-op warm plan: FAILED (exit {:?}):\n    {}",
                p.code,
                p.tail()
            );
            return;
        }
        most = most.max(total_requests(&counts));
        if best.as_ref().is_none_or(|(b, _)| p.secs < b.secs) {
            best = Some((p, counts));
        }
    }
    let (w, counts) = best.expect("at least one run");
    println!(
        "  no-op warm plan: {:.3}s (best of {}), peak {:.0} MB; {}; at most {most} requests a run (target <= 3: {})",
        w.secs,
        f.runs.max(2),
        mb(w.max_rss_kb),
        describe(&counts),
        verdict(most <= 3)
    );
    if most > 3 {
        fail(format!(
            "a no-op warm plan made {most} requests (target <= 3)"
        ));
    }

    // The saved-plan stale check: the no-op plan saved, then `apply --plan` of it with
    // nothing changed since; its reads (target: one request, the feed since the plan's
    // cursor).
    let saved = f.logs.join("noop-plan.json");
    let p = plan(
        f.base,
        f.proxy,
        Some(&state),
        &["--out", saved.to_str().unwrap()],
    );
    if p.code == Some(0) {
        let mut c = Command::new(BIN);
        c.args(["apply", "--plan"])
            .arg(&saved)
            .arg("--endpoint")
            .arg(format!("http://{}", f.proxy))
            .arg("--token-file")
            .arg(f.token)
            .env("ROSTER_STATE_DIR", &state)
            .env_remove("ROSTER_NO_CACHE")
            .env_remove("RUST_LOG");
        f.counter.reset();
        let a = run(&mut c, f.timeout, f.logs).expect("run roster apply --plan");
        let counts = f.counter.snapshot();
        let reads: u64 = counts
            .iter()
            .filter(|(m, _)| m.starts_with("GET "))
            .map(|(_, n)| n)
            .sum();
        if !a.ok() {
            fail("apply --plan of the saved no-op plan");
        }
        println!(
            "  saved-plan stale check (apply --plan, nothing changed since): exit {:?}, {:.3}s, {reads} read request(s) (target 1: {}); {}",
            a.code,
            a.secs,
            verdict(reads == 1),
            describe(&counts)
        );
    } else {
        fail("plan --out of the no-op plan");
    }

    // The live system changes in 1,000 objects since the last plan (another client's
    // apply, without caches), and one declaration file changes in eleven objects.
    let total = count_reps(f.base);
    let m = 1000.min(total / 2);
    let k = 11.min(total - m);
    let elsewhere = f.logs.join("feed-live-org");
    let (live_changed, _) = relanguage(f.base, &elsewhere, &|i| (i >= total - m).then_some("nl"))
        .expect("write the live change");
    let mut c = Command::new(BIN);
    c.arg("apply")
        .arg(&elsewhere)
        .arg("--endpoint")
        .arg(format!("http://{}", f.addr))
        .arg("--token-file")
        .arg(f.token)
        .arg("--auto-approve")
        .env("ROSTER_NO_CACHE", "1");
    let a = run(&mut c, f.timeout, f.logs).expect("run roster apply");
    if !a.ok() || live_changed != m {
        fail("changing the live system for the warm plan");
        println!(
            "  live change: FAILED (exit {:?}):\n    {}",
            a.code,
            a.tail()
        );
        return;
    }
    let declared = f.logs.join("feed-warm-org");
    let (decl_changed, files) = relanguage(f.base, &declared, &|i| (i < k).then_some("pt"))
        .expect("write the changed declaration");
    if decl_changed != k || files.len() != 1 {
        fail("the warm declaration");
        return;
    }
    let w = plan(&declared, f.proxy, Some(&state), &["-v"]);
    let counts = f.counter.snapshot();
    let changes = json_changes(&w.stdout);
    let hits = w
        .stderr
        .lines()
        .find(|l| l.contains("parse cache: "))
        .map(|l| l[l.find("parse cache: ").unwrap()..].trim().to_string());
    let expect = m + k;
    let right = w.code == Some(2) && changes.as_ref().map(|c| c.len()) == Some(expect);
    println!(
        "  warm plan ({a_secs:.2}s apply of {m} changed objects by another client first; declaration {} changed in {k}): exit {:?} (expect 2), {} changes (expect {expect}: {}), {:.3}s, peak {:.0} MB (<= 250 MB: {}); {}; {}; {}",
        files[0],
        w.code,
        changes.as_ref().map_or("?".into(), |c| c.len().to_string()),
        verdict(right),
        w.secs,
        mb(w.max_rss_kb),
        verdict(mb(w.max_rss_kb) <= 250.0),
        ratio(w.secs, 200.0),
        hits.as_deref().unwrap_or("parse cache: ?"),
        describe(&counts),
        a_secs = a.secs,
    );
    if !right {
        fail(format!(
            "the warm plan did not show {expect} changes with exit 2"
        ));
        println!("    {}", w.tail());
        return;
    }
    // The snapshot brought up to date plans exactly as a full read does.
    let full = plan(&declared, f.addr, None, &[]);
    if json_changes(&full.stdout) != changes {
        fail("the warm plan differs from the same plan with --no-cache");
        println!("  warm plan against --no-cache: the changes DIFFER");
    } else {
        println!(
            "  warm plan against the same plan --no-cache ({:.3}s): the same {expect} changes",
            full.secs
        );
    }
}
