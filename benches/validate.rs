//! Benchmark of `config::load` against the floor it cannot beat: parsing the same files
//! in parallel without building anything (saphyr events only).
//!
//! Target (issue "Declared state"): 100,000 representatives (~36 MB of YAML in many
//! files) validate within 1.5x the time of merely parsing them on 2 cores, with peak
//! memory under 400 MB. Run: `cargo bench --bench validate` (env `REPS` to change size).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rayon::prelude::*;

const FEATURES: &[&str] = &[
    "admin_center_access",
    "reports",
    "session_replay",
    "share_my_screen",
    "file_transfer_send",
    "restart_reconnect",
];

fn generate(dir: &Path, reps: usize, per_file: usize, teams: usize) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut org = String::from(
        "version: 1\nportals:\n  - name: web\n    features: [restart_reconnect, file_transfer_send, file_transfer_receive, share_my_screen, view_control_other_screens, multisession]\nteams:\n",
    );
    for t in 0..teams {
        let _ = write!(
            org,
            "  - name: Region{t}\n    description: Region number {t} of the benchmark organization\n    teams:\n      - name: Desk\n        max_active_logins: 40\n"
        );
    }
    org.push_str("managers:\n");
    for t in 0..teams {
        let _ = write!(
            org,
            "  - login: manager{t}@bench.example\n    email: manager{t}@bench.example\n    name: Manager {t}\n    password: {{ env: BENCH_PW }}\n    teams: [Region{t}, Region{t}/Desk]\n    team_rights: [manage_representatives, session_replay, schedule_reports]\n    grantable: [admin_center_access, reports, session_replay, multisession]\n"
        );
    }
    let p = dir.join("org.yaml");
    std::fs::write(&p, org).expect("write");
    files.push(p);
    let mut i = 0;
    let mut n = 0;
    while i < reps {
        let mut s = String::from("representatives:\n");
        for _ in 0..per_file.min(reps - i) {
            let t = i % teams;
            let f = &FEATURES[..1 + i % FEATURES.len()];
            let _ = write!(
                s,
                "  - login: rep{i:06}@bench.example\n    email: rep{i:06}@bench.example\n    first_name: Firstname{i}\n    last_name: Lastname{}\n    team: Region{t}/Desk\n    language: en\n    status: {}\n    sign_in: {{ force_password_change: true }}\n    features: [{}]\n    multisession: {}\n    portals: [web]\n",
                i % 977,
                if i % 10 == 0 { "inactive" } else { "active" },
                f.join(", "),
                1 + i % 3
            );
            i += 1;
        }
        let p = dir.join(format!("reps-{n:03}.yaml"));
        std::fs::write(&p, s).expect("write");
        files.push(p);
        n += 1;
    }
    files
}

fn parse_only(files: &[PathBuf]) -> usize {
    files
        .par_iter()
        .map(|f| {
            let text = std::fs::read_to_string(f).expect("read");
            let mut parser = saphyr_parser::Parser::new_from_str(&text);
            let mut n = 0usize;
            while let Some(Ok(_)) = parser.next_event() {
                n += 1;
            }
            n
        })
        .sum()
}

fn best_of<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut last = None;
    for _ in 0..runs {
        // Drop the previous result first: peak memory must count one run only.
        drop(last.take());
        let t = Instant::now();
        let v = f();
        best = best.min(t.elapsed());
        last = Some(v);
    }
    (best, last.expect("ran at least once"))
}

fn peak_rss_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024)
}

fn main() {
    let reps: usize = std::env::var("REPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let files = generate(dir.path(), reps, 5_000, 200);
    let bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
        .sum();
    println!(
        "{} files, {:.1} MB, {reps} representatives",
        files.len(),
        bytes as f64 / 1e6
    );
    if std::env::var_os("PHASES").is_some() {
        phases(&files);
    }
    let (parse, events) = best_of(3, || parse_only(&files));
    println!("parse only (parallel): {parse:?} ({events} events)");
    let (load, loaded) = best_of(3, || roster::config::load(&[dir.path().to_owned()]));
    match loaded {
        Ok(l) => println!(
            "config::load: {load:?} ({} objects, {} warnings)",
            l.desired.org.len(),
            l.warnings.len()
        ),
        Err(e) => panic!("the generated organization is invalid: {e}"),
    }
    let ratio = load.as_secs_f64() / parse.as_secs_f64();
    println!("ratio load/parse: {ratio:.2} (target <= 1.5)");
    if let Some(mib) = peak_rss_mib() {
        println!("peak RSS: {mib} MiB (target <= 400)");
    }
}

#[allow(dead_code)]
pub fn phases(files: &[PathBuf]) {
    let texts: Vec<String> = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    let t = Instant::now();
    let values: Vec<serde_json::Value> = texts
        .par_iter()
        .map(|s| roster::config::yaml::parse(s).unwrap().unwrap())
        .collect();
    println!("  yaml->value: {:?}", t.elapsed());
    let t = Instant::now();
    let n: usize = values
        .par_iter()
        .map(|v| roster::config::schema::check(v).len())
        .sum();
    println!("  schema check: {:?} ({n})", t.elapsed());
    let t = Instant::now();
    let d: Vec<roster::model::Declaration> = values
        .into_par_iter()
        .map(|v| serde_json::from_value(v).unwrap())
        .collect();
    println!("  from_value: {:?} ({})", t.elapsed(), d.len());
}
