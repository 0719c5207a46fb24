//! End to end, issue 16 "Backups": `roster serve backup` copies a SQLite database while
//! its server keeps serving; a server started over the restored copy gives the same plan
//! as the original did when the backup was taken, although the original changed since.
//! PostgreSQL is pointed at `pg_dump`, whose documented dump and restore give the same
//! result; a backup never overwrites a file.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::cli::{Harness, Run, bin, copy_acme, free_port, wait_output};
use serde_json::Value;

const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

const HARNESS: Harness = Harness::plain("500");

module_server!();

/// examples/acme in `dir/org` (`dir/edited` with Camille Martin renamed when `edit`).
fn declaration(dir: &Path, edit: bool) -> String {
    let org = dir.join(if edit { "edited" } else { "org" });
    copy_acme(&org, |_, text| {
        if edit {
            text.replace("last_name: Martin\n", "last_name: Martin-Roy\n")
        } else {
            text
        }
    });
    org.display().to_string()
}

fn roster(args: &[&str], cwd: &Path, endpoint: &str, token: &str) -> Run {
    let child = Command::new(bin())
        .args(args)
        .current_dir(cwd)
        .env("ROSTER_ENDPOINT", endpoint)
        .env("ROSTER_TOKEN", token)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .env_remove("ROSTER_DATABASE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_output(child, COMMAND_TIMEOUT, &args.join(" ")).into()
}

/// examples/acme applied to the live system at `endpoint`, then the plan of the edited
/// declaration (its path, and the JSON plan's text): what a restore must give again.
fn applied_then_planned(dir: &Path, endpoint: &str, token: &str) -> (String, String) {
    let org = declaration(dir, false);
    let edited = declaration(dir, true);
    let run = roster(&["apply", &org, "--auto-approve"], dir, endpoint, token);
    assert_eq!(run.code, 0, "{run}");
    let before = roster(&["plan", &edited, "--format", "json"], dir, endpoint, token);
    assert_eq!(before.code, 0, "{before}");
    (edited, before.stdout)
}

/// The plan's changes and summary: what a reviewer reads (not where it was made).
fn essence(plan_json: &str) -> Value {
    let v: Value = serde_json::from_str(plan_json).expect("a JSON plan");
    serde_json::json!({"changes": v["changes"], "summary": v["summary"], "refusals": v["refusals"]})
}

struct Restored(Child);

impl Drop for Restored {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `roster serve` over the database `url` (with `extra` flags), once it listens.
fn serve(url: &str, port: u16, extra: &[&str]) -> Restored {
    let child = Command::new(bin())
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--seats",
            "500",
        ])
        .args(["--database", url])
        .args(extra)
        .env_remove("ROSTER_DATABASE")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "roster serve did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
    Restored(child)
}

#[test]
fn a_restored_backup_plans_as_the_original_did_when_it_was_taken() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let server = Server::start(&[]);
    let (endpoint, token) = (server.endpoint(), server.token.clone());
    let (edited, before) = applied_then_planned(dir, &endpoint, &token);
    assert_eq!(essence(&before)["changes"].as_array().unwrap().len(), 1);

    // Online: the server is running (and answering) while the copy is taken.
    let backup = dir.join("backup.db");
    let run = roster(
        &[
            "serve",
            "backup",
            "--database",
            &server.database(),
            "--out",
            backup.to_str().unwrap(),
        ],
        dir,
        &endpoint,
        &token,
    );
    assert_eq!(run.code, 0, "{run}");
    assert!(run.stderr.contains("backed up"), "{run}");

    // The original moves on: the edit is applied there.
    let run = roster(
        &["apply", &edited, "--auto-approve"],
        dir,
        &endpoint,
        &token,
    );
    assert_eq!(run.code, 0, "{run}");
    let after = roster(
        &["plan", &edited, "--format", "json"],
        dir,
        &endpoint,
        &token,
    );
    assert!(
        essence(&after.stdout)["changes"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // Restore = a server over the copy (its own file, as an operator would put it back).
    let restored_db = dir.join("restored.db");
    std::fs::copy(&backup, &restored_db).unwrap();
    let port = free_port();
    let _restored = serve(&format!("sqlite://{}", restored_db.display()), port, &[]);
    let restored = format!("http://127.0.0.1:{port}");
    let again = roster(
        &["plan", &edited, "--format", "json"],
        dir,
        &restored,
        &token,
    );
    assert_eq!(
        again.code, 0,
        "the administrator token is in the backup too: {again}"
    );
    assert_eq!(
        essence(&again.stdout),
        essence(&before),
        "the restored copy plans as the original did when the backup was taken"
    );

    // The copy's change feed has an epoch of its own: the original's cursor is refused
    // there (a snapshot kept from the original is read in full, never continued).
    let (st, head) = server.http("GET", "/v1/changes", None, None);
    assert_eq!(st, 200, "{head}");
    let cursor = head["cursor"].as_str().unwrap().to_string();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (status, body) = rt.block_on(async {
        let r = reqwest::Client::new()
            .get(format!("{restored}/v1/changes?since={cursor}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        (
            r.status().as_u16(),
            r.json::<serde_json::Value>().await.unwrap(),
        )
    });
    assert_eq!(
        (status, body["code"].as_str()),
        (410, Some("cursor-expired")),
        "{body}"
    );
}

#[test]
fn a_backup_never_overwrites_and_postgresql_is_pointed_at_pg_dump() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let server = Server::start(&[]);
    let existing = dir.join("exists.db");
    std::fs::write(&existing, "keep me").unwrap();
    let run = roster(
        &[
            "serve",
            "backup",
            "--database",
            &server.database(),
            "--out",
            existing.to_str().unwrap(),
        ],
        dir,
        "",
        "",
    );
    assert_eq!(run.code, 1, "{run}");
    assert!(run.stderr.contains("never overwrites"), "{run}");
    assert_eq!(std::fs::read_to_string(&existing).unwrap(), "keep me");

    let run = roster(
        &[
            "serve",
            "backup",
            "--database",
            "postgres://roster:secret-password@192.0.2.1/roster",
            "--out",
            dir.join("pg.db").to_str().unwrap(),
        ],
        dir,
        "",
        "",
    );
    assert_eq!(run.code, 1, "{run}");
    assert!(run.stderr.contains("pg_dump"), "{run}");
    assert!(
        !run.stderr.contains("secret-password"),
        "the password is redacted: {run}"
    );
    assert!(!dir.join("pg.db").exists());
}

/// The documented PostgreSQL equivalent: `pg_dump --format=custom` while the server
/// serves, `pg_restore` into an empty database, a server over it plans as the original
/// did when the dump was taken.
#[test]
#[cfg_attr(
    not(roster_test_postgres),
    ignore = "needs PostgreSQL: run `. .ci/postgres.sh; roster_pg_start` (sets ROSTER_TEST_POSTGRES), then `cargo test --all-targets`"
)]
fn a_pg_dump_restored_with_pg_restore_plans_as_the_original_did() {
    use crate::support::server::{Backend, fresh_database};
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let original = rt.block_on(fresh_database(Backend::Postgres, dir)).unwrap();
    let empty = rt.block_on(fresh_database(Backend::Postgres, dir)).unwrap();
    let token_file = dir.join("admin.token");
    let port = free_port();
    let server = serve(
        &original,
        port,
        &["--admin-token-file", token_file.to_str().unwrap()],
    );
    let endpoint = format!("http://127.0.0.1:{port}");
    let token = std::fs::read_to_string(&token_file)
        .unwrap()
        .trim()
        .to_string();
    let (edited, before) = applied_then_planned(dir, &endpoint, &token);

    let dump = dir.join("roster.dump");
    let out = Command::new("pg_dump")
        .args(["--format=custom", "--file"])
        .arg(&dump)
        .arg(&original)
        .output()
        .expect("pg_dump (installed with PostgreSQL)");
    assert!(out.status.success(), "pg_dump: {out:?}");
    let run = roster(
        &["apply", &edited, "--auto-approve"],
        dir,
        &endpoint,
        &token,
    );
    assert_eq!(run.code, 0, "the original moves on: {run}");
    drop(server);

    let out = Command::new("pg_restore")
        .args(["--no-owner", "--dbname", &empty])
        .arg(&dump)
        .output()
        .expect("pg_restore");
    assert!(out.status.success(), "pg_restore: {out:?}");
    let port = free_port();
    let _restored = serve(&empty, port, &[]);
    let again = roster(
        &["plan", &edited, "--format", "json"],
        dir,
        &format!("http://127.0.0.1:{port}"),
        &token,
    );
    assert_eq!(again.code, 0, "{again}");
    assert_eq!(essence(&again.stdout), essence(&before));
}
