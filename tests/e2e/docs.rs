//! `roster completions` and `roster man`, through the real binary: every shell gets a
//! script that names every command, and every command gets a man page.

use assert_cmd::Command;

/// The commands `roster --help` lists (besides `help`).
const COMMANDS: &[&str] = &[
    "validate",
    "access",
    "plan",
    "apply",
    "export",
    "show",
    "schema",
    "serve",
    "token",
    "generate",
    "completions",
    "man",
];

fn roster() -> Command {
    let mut c = Command::cargo_bin("roster").expect("the roster binary is built");
    c.env_remove("ROSTER_ENDPOINT").env_remove("RUST_LOG");
    c
}

#[test]
fn completions_for_every_shell_name_every_command() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let out = roster().args(["completions", shell]).output().unwrap();
        assert!(out.status.success(), "{shell}: {out:?}");
        let script = String::from_utf8(out.stdout).unwrap();
        for cmd in COMMANDS {
            assert!(script.contains(cmd), "{shell}: no `{cmd}` in the script");
        }
        assert!(
            script.contains("detailed-exitcode"),
            "{shell}: plan's flags"
        );
    }
    let out = roster().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(64),
        "an unknown shell is a usage error (EX_USAGE), not 2 (changes)"
    );
}

#[test]
fn man_writes_a_page_for_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("man");
    let out = roster()
        .args(["man", "--out", out_dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let root = std::fs::read_to_string(out_dir.join("roster.1")).unwrap();
    assert!(
        root.starts_with(".ie") || root.contains(".TH"),
        "roff: {root:.200}"
    );
    for cmd in COMMANDS {
        let page = std::fs::read_to_string(out_dir.join(format!("roster-{cmd}.1")))
            .unwrap_or_else(|e| panic!("roster-{cmd}.1: {e}"));
        assert!(page.contains(".TH"), "roster-{cmd}.1 is a man page");
        assert!(
            page.contains(&format!("roster\\-{cmd}")),
            "roster-{cmd}.1 names itself"
        );
    }
    assert!(
        out_dir.join("roster-token-create.1").exists(),
        "sub-commands too"
    );
    assert!(!out_dir.join("roster-help.1").exists());
}
