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

/// The right → writes table of docs/api.md is the one the catalogue generates, so the
/// docs cannot drift from what the server enforces and the plan predicts.
#[test]
fn the_rights_table_of_the_api_docs_is_generated_from_the_catalogue() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/api.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    let (start, end) = ("<!-- rights-table:start -->\n", "<!-- rights-table:end -->");
    let from = doc.find(start).expect("the start marker") + start.len();
    let to = doc.find(end).expect("the end marker");
    let table = roster::model::rights::operations_table();
    if std::env::var_os("ROSTER_UPDATE_DOCS").is_some() {
        let updated = format!("{}{table}{}", &doc[..from], &doc[to..]);
        std::fs::write(&path, updated).unwrap();
        return;
    }
    assert_eq!(
        &doc[from..to],
        table,
        "docs/api.md's rights table is stale: run `ROSTER_UPDATE_DOCS=1 cargo test --test e2e docs::`"
    );
    // Every right of the catalogue has its row.
    for right in roster::model::TeamRight::ALL {
        assert!(table.contains(&format!("| `{}` |", right.id())), "{right}");
    }
}
