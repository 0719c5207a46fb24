//! The parse cache (`src/config/cache.rs`) through the real binary: `validate` twice on
//! `examples/acme` (the second run takes every file from the cache, as the `-v` log line
//! says), a corrupted entry ignored and rewritten, files with problems parsed every time
//! with the same positions as without the cache, `--no-cache` and `ROSTER_NO_CACHE`
//! writing nothing, and no secret value in any cache file after `validate` and `plan`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::cli::{Run, bin, copy_acme};

struct Dirs {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    decl: PathBuf,
    state: PathBuf,
}

fn dirs(edit: impl Fn(&str, String) -> String) -> Dirs {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let decl = root.join("acme");
    copy_acme(&decl, edit);
    Dirs {
        state: root.join("state"),
        root,
        decl,
        _tmp: tmp,
    }
}

fn roster(d: &Dirs, args: &[&str]) -> Run {
    let out = Command::new(bin())
        .current_dir(&d.root)
        .args(args)
        .env("ROSTER_STATE_DIR", &d.state)
        .env("NO_COLOR", "1")
        .env_remove("ROSTER_NO_CACHE")
        .env_remove("ROSTER_ENDPOINT")
        .env_remove("ROSTER_TOKEN")
        .env_remove("ROSTER_TOKEN_FILE")
        .env_remove("GITHUB_ACTIONS")
        .env_remove("ROSTER_ANNOTATIONS")
        .env_remove("RUST_LOG")
        .output()
        .expect("roster runs");
    out.into()
}

fn validate(d: &Dirs, extra: &[&str]) -> Run {
    let mut args = vec!["-v", "validate"];
    args.extend_from_slice(extra);
    args.push("acme");
    roster(d, &args)
}

/// `(hits, files, rejected, written)` from the `-v` line
/// `parse cache: H of N files from the cache files=N hits=H parsed=… rejected=R written=W …`.
fn cache_line(r: &Run) -> (usize, usize, usize, usize) {
    let line = r
        .stderr
        .lines()
        .find(|l| l.contains("parse cache: "))
        .unwrap_or_else(|| panic!("no parse cache line:\n{r}"));
    let field = |name: &str| -> usize {
        let at = line
            .find(&format!(" {name}="))
            .unwrap_or_else(|| panic!("{name} in {line}"));
        line[at + name.len() + 2..]
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    (
        field("hits"),
        field("files"),
        field("rejected"),
        field("written"),
    )
}

fn entries(state: &Path) -> Vec<PathBuf> {
    let dir = state.join("cache/parse");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| rd.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

fn acme_files() -> usize {
    std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/acme"))
        .unwrap()
        .count()
}

#[test]
fn the_second_validate_takes_every_file_from_the_cache_and_a_corrupted_entry_is_rewritten() {
    let d = dirs(|_, t| t);
    let n = acme_files();
    let first = validate(&d, &[]);
    assert_eq!(first.code, 0, "{first}");
    assert_eq!(cache_line(&first), (0, n, 0, n), "{first}");
    assert_eq!(entries(&d.state).len(), n);

    let second = validate(&d, &[]);
    assert_eq!(second.code, 0, "{second}");
    assert_eq!(cache_line(&second), (n, n, 0, 0), "{second}");
    assert_eq!(second.stdout, first.stdout);
    assert!(
        second
            .stderr
            .contains(&format!("parse cache: {n} of {n} files from the cache"))
    );

    // One entry damaged in its middle, another cut short: both ignored, parsed again and
    // rewritten; the result does not change.
    let all = entries(&d.state);
    let mut bytes = std::fs::read(&all[0]).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&all[0], &bytes).unwrap();
    let cut = std::fs::read(&all[1]).unwrap();
    std::fs::write(&all[1], &cut[..cut.len() / 3]).unwrap();
    let third = validate(&d, &[]);
    assert_eq!(third.code, 0, "{third}");
    assert_eq!(cache_line(&third), (n - 2, n, 2, 2), "{third}");
    assert_eq!(third.stdout, first.stdout);
    let fourth = validate(&d, &[]);
    assert_eq!(cache_line(&fourth), (n, n, 0, 0), "{fourth}");
}

#[test]
fn no_cache_and_roster_no_cache_write_nothing() {
    let d = dirs(|_, t| t);
    let r = validate(&d, &["--no-cache"]);
    assert_eq!(r.code, 0, "{r}");
    assert!(!r.stderr.contains("parse cache"), "{r}");
    let out = Command::new(bin())
        .current_dir(&d.root)
        .args(["-v", "validate", "acme"])
        .env("ROSTER_STATE_DIR", &d.state)
        .env("ROSTER_NO_CACHE", "true")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(!d.state.exists(), "nothing under the state directory");
    // The cache follows --state-dir too.
    let elsewhere = d.root.join("other-state");
    let r = roster(&d, &["validate", "--state-dir", "other-state", "acme"]);
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(entries(&elsewhere).len(), acme_files());
    assert!(!d.state.exists());
}

/// One file with a schema problem, another (itself without problems, so cached) that
/// names a team nobody declares: the second run reports both at the same line:column as
/// a run without the cache, and the broken file is never stored.
#[test]
fn problems_keep_their_positions_when_the_other_files_come_from_the_cache() {
    let d = dirs(|name, t| match name {
        "representatives-europe.yaml" => {
            t.replacen("team: Europe/Paris", "team: Europe/Nowhere", 1)
        }
        "representatives-americas.yaml" => t.replacen("language: ", "languagex: ", 1),
        _ => t,
    });
    let n = acme_files();
    let plain = |r: &Run| r.stdout.clone();
    let uncached = roster(&d, &["validate", "--no-cache", "acme"]);
    assert_eq!(uncached.code, 3, "{uncached}");
    assert!(
        uncached.stdout.contains("unresolved-reference"),
        "{uncached}"
    );
    assert!(uncached.stdout.contains("unknown-key"), "{uncached}");
    // The reference's line, found independently.
    let europe = std::fs::read_to_string(d.decl.join("representatives-europe.yaml")).unwrap();
    let line = europe
        .lines()
        .position(|l| l.contains("Europe/Nowhere"))
        .unwrap()
        + 1;
    assert!(
        uncached
            .stdout
            .contains(&format!("representatives-europe.yaml:{line}:")),
        "{uncached}"
    );
    let first = validate(&d, &[]);
    let second = validate(&d, &[]);
    assert_eq!(cache_line(&first), (0, n, 0, n - 1), "{first}");
    assert_eq!(cache_line(&second), (n - 1, n, 0, 0), "{second}");
    assert_eq!(plain(&first), plain(&uncached));
    assert_eq!(plain(&second), plain(&uncached));
    let json = |extra: &[&str]| {
        let mut args = vec!["validate", "--format", "json"];
        args.extend_from_slice(extra);
        args.push("acme");
        roster(&d, &args).stdout
    };
    assert_eq!(json(&[]), json(&["--no-cache"]));
}

/// A password planted in an environment variable and in a secret file that the
/// declaration references: after `validate` and `plan` twice each, no cache file holds
/// either value (declarations hold references only); after an apply that sets both and
/// two more plans, neither does the live snapshot (the API never answers a password).
#[test]
fn no_cache_file_holds_a_secret_value() {
    const ENV_VALUE: &str = "Planted-Env-Secret-7f3a91";
    const FILE_VALUE: &str = "Planted-File-Secret-c40e22";
    let d = dirs(|name, t| match name {
        "managers.yaml" => t.replacen(
            "    name: Marie Curie\n",
            "    name: Marie Curie\n    password: { env: CACHE_TEST_PASSWORD, rotation: \"1\" }\n",
            1,
        ),
        "representatives-europe.yaml" => t.replacen(
            "    team: Europe/Paris\n",
            "    team: Europe/Paris\n    password: { file: secret.txt }\n",
            1,
        ),
        _ => t,
    });
    std::fs::write(d.root.join("secret.txt"), FILE_VALUE).unwrap();
    let run = |args: &[&str]| -> Run {
        let out = Command::new(bin())
            .current_dir(&d.root)
            .args(args)
            .env("ROSTER_STATE_DIR", &d.state)
            .env("CACHE_TEST_PASSWORD", ENV_VALUE)
            .env("NO_COLOR", "1")
            .env_remove("ROSTER_NO_CACHE")
            .env_remove("ROSTER_ENDPOINT")
            .env_remove("ROSTER_TOKEN")
            .env_remove("ROSTER_TOKEN_FILE")
            .env_remove("GITHUB_ACTIONS")
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        out.into()
    };
    for _ in 0..2 {
        let v = run(&["validate", "acme"]);
        assert_eq!(v.code, 0, "{v}");
        let p = run(&["-v", "plan", "acme"]);
        assert_eq!(
            p.code, 0,
            "a plan of creates into the empty embedded system\n{p}"
        );
        assert!(p.stderr.contains("parse cache: "), "{p}");
        for r in [&v, &p] {
            assert!(!r.stdout.contains(ENV_VALUE) && !r.stdout.contains(FILE_VALUE));
            assert!(!r.stderr.contains(ENV_VALUE) && !r.stderr.contains(FILE_VALUE));
        }
    }
    let all = entries(&d.state);
    assert_eq!(all.len(), acme_files(), "every file was cached");
    // Applied (the live system now holds both passwords, hashed) and planned again
    // twice: the live snapshot, written and then brought up to date, holds neither.
    let a = run(&["apply", "acme", "--auto-approve"]);
    assert_eq!(a.code, 0, "{a}");
    for _ in 0..2 {
        let p = run(&["-vv", "plan", "acme"]);
        assert_eq!(p.code, 0, "{p}");
        assert!(!p.stderr.contains(ENV_VALUE) && !p.stderr.contains(FILE_VALUE));
    }
    let snapshots: Vec<PathBuf> = std::fs::read_dir(d.state.join("cache/live"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(!snapshots.is_empty(), "a live snapshot was kept");
    // Each file holds neither value; says whether it holds `needle`.
    let holds = |f: &Path, needle: &[&str]| -> bool {
        let bytes = std::fs::read(f).unwrap();
        let has = |n: &str| bytes.windows(n.len()).any(|w| w == n.as_bytes());
        assert!(
            !has(ENV_VALUE) && !has(FILE_VALUE),
            "{} holds a secret",
            f.display()
        );
        needle.iter().any(|n| has(n))
    };
    for f in &snapshots {
        assert!(holds(f, &["marie.curie"]), "the snapshot holds the people");
    }
    let mut saw_reference = false;
    for f in &all {
        saw_reference |= holds(f, &["CACHE_TEST_PASSWORD", "secret.txt"]);
    }
    assert!(saw_reference, "the references themselves are cached");
}
