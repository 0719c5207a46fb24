//! The apply lease: the API (`/v1/lease`: take, conflict, renew, release, expiry,
//! breaking, the `Roster-Lease` check of writes, restarts, two replicas racing on one
//! PostgreSQL) and `roster apply` taking it (two concurrent applies: one fails at once
//! with exit 7 naming the holder, one waits with `--lock-timeout` and then succeeds,
//! and nothing is lost, on SQLite and PostgreSQL; a saved plan made stale during the wait
//! is refused; a broken lease's writes are refused; Ctrl-C releases it). Every wait is
//! bounded.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::cli::{Harness, PAUSE, Paused, Run};
use crate::support::server::{self as server_support, Backend, Srv};

// ---------------------------------------------------------------------------------
// The API
// ---------------------------------------------------------------------------------

async fn take(s: &Srv, token: &str, holder: &str, ttl: u64) -> server_support::Resp {
    s.post(
        token,
        "/v1/lease",
        &json!({"holder": holder, "purpose": "e2e", "ttl_seconds": ttl}),
    )
    .await
}

async fn put(s: &Srv, token: &str, id: &str, ttl: u64) -> server_support::Resp {
    s.call(
        Method::PUT,
        &format!("/v1/lease/{id}"),
        Some(token),
        &[],
        Some(json!({"ttl_seconds": ttl}).to_string().into_bytes()),
    )
    .await
}

async fn del(s: &Srv, token: &str, path: &str) -> server_support::Resp {
    s.call(Method::DELETE, path, Some(token), &[], None).await
}

/// A POST of a portal made under `lease` (a `Roster-Lease` header), or without one.
async fn write_under(s: &Srv, lease: Option<&str>, name: &str) -> server_support::Resp {
    let h: Vec<(&str, String)> = lease
        .map(|id| ("roster-lease", id.to_string()))
        .into_iter()
        .collect();
    s.call(
        Method::POST,
        "/v1/portals",
        Some(&s.admin),
        &h,
        Some(json!({"name": name}).to_string().into_bytes()),
    )
    .await
}

/// Take, conflict, renew, writes under the lease, release; then a short lease expires
/// and is free again; an administrator breaks a manager's lease.
async fn the_lease_is_taken_renewed_released_and_expires(s: &Srv) {
    let a = &s.admin;
    assert_eq!(s.get(a, "/v1/lease").await.status, 404, "free at first");

    let r = take(s, a, "ann@ci-1 pid 1", 60).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(r.body["holder"], "ann@ci-1 pid 1");
    assert_eq!(r.body["taken_by"], "admin@localhost");
    let first_expiry = r.body["expires_at"].as_str().unwrap().to_string();

    // Held: another taker gets 409 naming the holder and its expiry, never the id.
    let r = take(s, a, "bob@ci-2 pid 2", 60).await;
    assert_eq!((r.status, r.code()), (409, "lease-held"), "{}", r.body);
    assert_eq!(r.body["lease"]["holder"], "ann@ci-1 pid 1");
    assert_eq!(r.body["lease"]["expires_at"], first_expiry.as_str());
    let detail = r.body["detail"].as_str().unwrap();
    assert!(
        detail.contains("ann@ci-1 pid 1") && detail.contains(&first_expiry),
        "{detail}"
    );
    assert!(
        !r.body.to_string().contains(&id),
        "the id is the holder's only"
    );
    let g = s.get(a, "/v1/lease").await;
    assert_eq!(
        (g.status, g.body["holder"].clone()),
        (200, json!("ann@ci-1 pid 1"))
    );
    assert!(g.body.get("id").is_none(), "{}", g.body);

    // Bad requests.
    assert_eq!(take(s, a, "x", 0).await.status, 422);
    assert_eq!(take(s, a, "x", 3601).await.status, 422);
    assert_eq!(take(s, a, " ", 60).await.status, 422);

    // Renewing moves the expiry later; another id is refused naming the holder.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let r = put(s, a, &id, 120).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body["expires_at"].as_str().unwrap() > first_expiry.as_str(),
        "{} after {first_expiry}",
        r.body["expires_at"]
    );
    let r = put(s, a, "not-the-id", 60).await;
    assert_eq!((r.status, r.code()), (409, "lease-held"), "{}", r.body);

    // Writes: under the lease, without a header (allowed), under another id (refused,
    // nothing written).
    assert_eq!(write_under(s, Some(&id), "under-lease").await.status, 201);
    assert_eq!(write_under(s, None, "no-header").await.status, 201);
    let r = write_under(s, Some("stale-id"), "refused").await;
    assert_eq!((r.status, r.code()), (409, "lease-not-held"), "{}", r.body);
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("ann@ci-1 pid 1 holds it now"),
        "{}",
        r.body
    );
    assert_eq!(s.get(a, "/v1/portals/refused").await.status, 404);

    // Release: free again; the old id no longer writes.
    assert_eq!(del(s, a, &format!("/v1/lease/{id}")).await.status, 204);
    assert_eq!(s.get(a, "/v1/lease").await.status, 404);
    assert_eq!(del(s, a, &format!("/v1/lease/{id}")).await.status, 404);
    let r = write_under(s, Some(&id), "after-release").await;
    assert_eq!((r.status, r.code()), (409, "lease-not-held"), "{}", r.body);

    // Expiry: a one-second lease lapses; it cannot be renewed; anyone may take it.
    let r = take(s, a, "crashed@ci-3 pid 3", 1).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let crashed = r.body["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.get(a, "/v1/lease").await.status != 404 {
        assert!(Instant::now() < deadline, "the lease never expired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = put(s, a, &crashed, 60).await;
    assert_eq!((r.status, r.code()), (409, "lease-expired"), "{}", r.body);
    let r = take(s, a, "next@ci-4 pid 4", 60).await;
    assert_eq!(r.status, 201, "an expired lease is free: {}", r.body);
    let next = r.body["id"].as_str().unwrap().to_string();
    let r = put(s, a, &crashed, 60).await;
    assert_eq!((r.status, r.code()), (409, "lease-held"), "{}", r.body);
    assert_eq!(del(s, a, &format!("/v1/lease/{next}")).await.status, 204);

    // A manager may take it; another token may not release it; an administrator may
    // break it without its id; a manager may not break.
    s.create(a, "teams", json!({"path": "T"})).await;
    s.create(
        a,
        "managers",
        json!({"login": "m@acme.example", "email": "m@acme.example", "name": "M",
               "teams": ["T"], "team_rights": ["manage_representatives"]}),
    )
    .await;
    let m = s.manager_token("m@acme.example").await;
    let r = take(s, &m, "m@laptop pid 5", 60).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["taken_by"], "m@acme.example");
    let mid = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(
        put(s, a, &mid, 60).await.status,
        403,
        "only its holder renews"
    );
    assert_eq!(del(s, &m, "/v1/lease").await.status, 403);
    assert_eq!(del(s, a, "/v1/lease").await.status, 204, "broken");
    assert_eq!(s.get(a, "/v1/lease").await.status, 404);
    s.create(
        a,
        "managers",
        json!({"login": "idle@acme.example", "email": "idle@acme.example", "name": "I",
               "teams": ["T"]}),
    )
    .await;
    let idle = s.manager_token("idle@acme.example").await;
    let r = take(s, &idle, "idle pid 6", 60).await;
    assert_eq!(
        r.status, 403,
        "a manager that can write nothing: {}",
        r.body
    );

    // Takes and releases are audited; renewals are not.
    let audit = s.get(a, "/v1/audit?limit=1000").await;
    let lease: Vec<(String, String, String)> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "lease")
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or_default().to_string();
            (s("action"), s("key"), s("actor"))
        })
        .collect();
    let l = |action: &str, key: &str, actor: &str| {
        (action.to_string(), key.to_string(), actor.to_string())
    };
    assert_eq!(
        lease,
        [
            l("create", "ann@ci-1 pid 1", "admin@localhost"),
            l("delete", "ann@ci-1 pid 1", "admin@localhost"),
            l("create", "crashed@ci-3 pid 3", "admin@localhost"),
            l("create", "next@ci-4 pid 4", "admin@localhost"),
            l("delete", "next@ci-4 pid 4", "admin@localhost"),
            l("create", "m@laptop pid 5", "m@acme.example"),
            l("delete", "m@laptop pid 5", "admin@localhost"),
        ]
    );
}
both_backends!(the_lease_is_taken_renewed_released_and_expires);

/// A take whose answer was lost is retried with the same client-chosen id: the retry
/// gets the same lease (201), not `lease-held` on its own lease; someone else's take
/// with that id, or after a release, is not a replay.
async fn a_retried_take_gets_its_own_lease_back(s: &Srv) {
    let a = &s.admin;
    let id = "retry-0123456789abcdef";
    let body = json!({"holder": "ann@ci-1 pid 1", "ttl_seconds": 60, "id": id});
    let first = s.post(a, "/v1/lease", &body).await;
    assert_eq!(first.status, 201, "{}", first.body);
    assert_eq!(first.body["id"], id);
    let again = s.post(a, "/v1/lease", &body).await;
    assert_eq!(again.status, 201, "the retry is a replay: {}", again.body);
    assert_eq!(
        (&again.body["id"], &again.body["expires_at"]),
        (&first.body["id"], &first.body["expires_at"]),
        "the same lease, unchanged"
    );
    // Another holder's take is refused, even naming that id.
    s.create(a, "teams", json!({"path": "T"})).await;
    s.create(
        a,
        "managers",
        json!({"login": "m@acme.example", "email": "m@acme.example", "name": "M",
               "teams": ["T"], "team_rights": ["manage_representatives"]}),
    )
    .await;
    let m = s.manager_token("m@acme.example").await;
    let other = s.post(&m, "/v1/lease", &body).await;
    assert_eq!(
        (other.status, other.code()),
        (409, "lease-held"),
        "{}",
        other.body
    );
    let short = s
        .post(
            a,
            "/v1/lease",
            &json!({"holder": "x", "ttl_seconds": 60, "id": "short"}),
        )
        .await;
    assert_eq!(short.status, 422, "{}", short.body);
    assert_eq!(del(s, a, &format!("/v1/lease/{id}")).await.status, 204);
    // Taken once and released: the same id takes a new lease (audited again).
    let after = s.post(a, "/v1/lease", &body).await;
    assert_eq!(after.status, 201, "{}", after.body);
    let audit = s.get(a, "/v1/audit?limit=1000").await;
    let takes = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "lease" && e["action"] == "create")
        .count();
    assert_eq!(takes, 2, "a replay is not audited");
}
both_backends!(a_retried_take_gets_its_own_lease_back);

/// The lease is a row of the database: a restarted server (SQLite) still knows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lease_survives_a_restart() {
    let mut s = server_support::start(Backend::Sqlite).await.unwrap();
    let r = take(&s, &s.admin, "ann@ci-1 pid 1", 600).await;
    assert_eq!(r.status, 201, "{}", r.body);
    s.server.take().unwrap().shutdown().await;
    let again = roster::server::start(roster::server::ServerConfig {
        listen: "127.0.0.1:0".into(),
        database: s.database.clone(),
        admin_token_file: None,
        ..Default::default()
    })
    .await
    .unwrap();
    s.base = again.url();
    let r = take(&s, &s.admin, "bob@ci-2 pid 2", 60).await;
    assert_eq!((r.status, r.code()), (409, "lease-held"), "{}", r.body);
    assert_eq!(r.body["lease"]["holder"], "ann@ci-1 pid 1");
    again.shutdown().await;
}

/// Two replicas over one PostgreSQL database, many takers at once through both: each
/// round exactly one wins and every other is told who holds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(roster_test_postgres),
    ignore = "needs PostgreSQL: run `. .ci/postgres.sh; roster_pg_start` (sets ROSTER_TEST_POSTGRES), then `cargo test --all-targets`"
)]
async fn two_replicas_race_for_the_lease_on_one_postgresql() {
    let s = server_support::start(Backend::Postgres).await.unwrap();
    let second = roster::server::start(roster::server::ServerConfig {
        listen: "127.0.0.1:0".into(),
        database: s.database.clone(),
        admin_token_file: None,
        ..Default::default()
    })
    .await
    .unwrap();
    let bases = [s.base.clone(), second.url()];
    let http = reqwest::Client::new();
    for round in 0..5 {
        let tries = (0..8).map(|i| {
            let url = format!("{}/v1/lease", bases[i % 2]);
            let req = http
                .post(url)
                .bearer_auth(&s.admin)
                .json(&json!({"holder": format!("taker {i}"), "ttl_seconds": 60}));
            async move {
                let r = req.send().await.unwrap();
                let status = r.status().as_u16();
                (status, r.json::<Value>().await.unwrap())
            }
        });
        let answers = futures::future::join_all(tries).await;
        let won: Vec<&Value> = answers
            .iter()
            .filter(|(st, _)| *st == 201)
            .map(|(_, b)| b)
            .collect();
        assert_eq!(won.len(), 1, "round {round}: {answers:?}");
        let winner = won[0]["holder"].as_str().unwrap();
        for (st, body) in &answers {
            if *st != 201 {
                assert_eq!(*st, 409, "round {round}: {body}");
                assert_eq!(body["lease"]["holder"], winner, "round {round}");
            }
        }
        let id = won[0]["id"].as_str().unwrap();
        let r = http
            .delete(format!("{}/v1/lease/{id}", bases[(round + 1) % 2]))
            .bearer_auth(&s.admin)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status().as_u16(),
            204,
            "released through the other replica"
        );
    }
    second.shutdown().await;
    s.stop().await;
}

// ---------------------------------------------------------------------------------
// `roster apply` and the lease
// ---------------------------------------------------------------------------------

const COMMAND_TIMEOUT: Duration = Duration::from_secs(180);

const HARNESS: Harness = Harness {
    seats: "2000",
    command_timeout: COMMAND_TIMEOUT,
    retry_busy: true,
};

module_server!();

fn small() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reconcile/small")
}

impl Server {
    fn apply_command(&self, extra: &[&str]) -> std::process::Command {
        let decl = small();
        let mut args = vec!["apply", decl.to_str().unwrap(), "--auto-approve"];
        args.extend_from_slice(extra);
        let mut cmd = self.base_command(&args, self.dir.path());
        cmd.env("ROSTER_E2E_MANAGER_PASSWORD", "e2e-Initial-Passw0rd!")
            .env_remove("ROSTER_LOCK_TIMEOUT");
        cmd
    }

    /// How many times the audit log records each write of an object (the lease's own
    /// records left out), by (action, kind, key).
    fn object_writes(&self) -> BTreeMap<(String, String, String), usize> {
        let mut n = BTreeMap::new();
        for e in self.audit() {
            if e["actor"] == "roster serve" {
                continue;
            }
            let s = |k: &str| e[k].as_str().unwrap_or_default().to_string();
            *n.entry((s("action"), s("kind"), s("key"))).or_default() += 1;
        }
        n
    }
}

/// Apply A holds the lease (paused before its first write); apply B without
/// `--lock-timeout` exits 7 at once naming A and writes nothing; apply C with
/// `--lock-timeout` waits, finds A's work done, and succeeds with nothing left to do.
/// Every declared object is created exactly once and the plan is clean afterwards.
fn two_concurrent_applies(server: &Server) {
    let mut a = server.apply_command(&[]);
    a.env(PAUSE, "10000");
    let a = Paused::start(a);

    let b: Run = server.finish(server.apply_command(&[]), "apply b");
    assert_eq!(b.code, 7, "held by another: exit 7 (locked)\n{b}");
    assert!(
        b.stderr.contains("apply lease is held by")
            && b.stderr.contains("pid ")
            && b.stderr.contains("roster apply ")
            && b.stderr.contains("until ")
            && b.stderr.contains("nothing was written"),
        "names the holder and its expiry:\n{b}"
    );
    assert!(
        server.object_writes().is_empty(),
        "nothing written while A pauses and B gave up: {:?}",
        server.object_writes()
    );

    let c: Run = server.finish(server.apply_command(&["--lock-timeout", "2m"]), "apply c");
    let (status, a_out, a_err) = a.finish(COMMAND_TIMEOUT);
    assert_eq!(status.code(), Some(0), "apply a:\n{a_out}\n{a_err}");
    assert_eq!(c.code, 0, "apply c waits, then succeeds:\n{c}");
    assert!(
        c.stderr.contains("apply lease is held by") && c.stderr.contains("waiting up to"),
        "says who it waits for:\n{c}"
    );
    assert!(
        c.stderr.contains("planning again"),
        "the plan made before A wrote is made again:\n{c}"
    );

    // Nothing lost, nothing twice: one create per declared object (and the team
    // leader set once its representative exists), each write once.
    let writes = server.object_writes();
    let creates = writes.keys().filter(|(action, _, _)| action == "create");
    assert_eq!(creates.count(), 12, "{writes:?}");
    assert!(writes.values().all(|n| *n == 1), "{writes:?}");
    let plan = server.finish(
        {
            let decl = small();
            let mut cmd = server.base_command(
                &["plan", decl.to_str().unwrap(), "--detailed-exitcode"],
                server.dir.path(),
            );
            cmd.env("ROSTER_E2E_MANAGER_PASSWORD", "e2e-Initial-Passw0rd!");
            cmd
        },
        "plan",
    );
    assert_eq!(plan.code, 0, "the live state is the declaration:\n{plan}");
    let (status, lease) = server.http("GET", "/v1/lease", None, None);
    assert_eq!(status, 404, "both released the lease: {lease}");
    let taken: Vec<String> = server
        .audit_all()
        .iter()
        .filter(|e| e["kind"] == "lease")
        .map(|e| e["action"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        taken,
        ["create", "delete", "create", "delete"],
        "A and C took and released it; B never held it"
    );
}

/// A saved plan applied while another apply holds the lease waits for it
/// (`ROSTER_LOCK_TIMEOUT`), then finds that the other apply changed what it planned,
/// and refuses, writing nothing: a saved plan is never made again behind the reviewer.
#[test]
fn a_saved_plan_that_another_apply_made_stale_is_refused_after_the_wait() {
    let server = Server::start(&[]);
    let saved = server.dir.path().join("plan.json");
    let decl = small();
    let mut plan = server.base_command(
        &[
            "plan",
            decl.to_str().unwrap(),
            "--out",
            saved.to_str().unwrap(),
        ],
        server.dir.path(),
    );
    plan.env("ROSTER_E2E_MANAGER_PASSWORD", "e2e-Initial-Passw0rd!");
    let plan = server.finish(plan, "plan --out");
    assert_eq!(plan.code, 0, "{plan}");

    let mut a = server.apply_command(&[]);
    a.env(PAUSE, "4000");
    let a = Paused::start(a);
    let mut b = server.base_command(
        &["apply", "--plan", saved.to_str().unwrap()],
        server.dir.path(),
    );
    b.env("ROSTER_E2E_MANAGER_PASSWORD", "e2e-Initial-Passw0rd!")
        .env("ROSTER_LOCK_TIMEOUT", "2m");
    let b = server.finish(b, "apply --plan");
    let (status, a_out, a_err) = a.finish(COMMAND_TIMEOUT);
    assert_eq!(status.code(), Some(0), "apply a:\n{a_out}\n{a_err}");
    assert_eq!(b.code, 4, "refused (exit 4), not an error: {b}");
    assert!(
        b.stderr.contains("waiting up to")
            && b.stderr.contains("another apply ran meanwhile")
            && b.stderr.contains("nothing was changed"),
        "{b}"
    );
    let writes = server.object_writes();
    assert!(writes.values().all(|n| *n == 1), "{writes:?}");
    let (status, lease) = server.http("GET", "/v1/lease", None, None);
    assert_eq!(status, 404, "released after the refusal: {lease}");
}

/// An administrator breaks the lease of an apply paused before its first write: every
/// write that apply then sends carries the broken lease and is refused, so nothing is
/// written behind the back of whoever takes the lease next.
#[test]
fn an_apply_whose_lease_was_broken_writes_nothing() {
    let server = Server::start(&[]);
    let mut a = server.apply_command(&[]);
    a.env(PAUSE, "3000");
    let a = Paused::start(a);
    let (status, body) = server.http("DELETE", "/v1/lease", None, None);
    assert_eq!(status, 204, "broken: {body}");
    let (status, stdout, stderr) = a.finish(COMMAND_TIMEOUT);
    assert_ne!(status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("lease-not-held"), "{stdout}\n{stderr}");
    assert!(
        server.object_writes().is_empty(),
        "{:?}",
        server.object_writes()
    );
}

/// Ctrl-C while apply holds the lease stops it and releases the lease at once (no
/// waiting for it to expire), having written nothing here (it was paused).
#[cfg(unix)]
#[test]
fn ctrl_c_stops_the_apply_and_releases_the_lease() {
    let server = Server::start(&[]);
    let mut a = server.apply_command(&[]);
    a.env(PAUSE, "30000");
    let a = Paused::start(a);
    let (status, body) = server.http("GET", "/v1/lease", None, None);
    assert_eq!(status, 200, "held while paused: {body}");
    std::thread::sleep(Duration::from_millis(200));
    // SAFETY: signalling our own child process by its id.
    assert_eq!(unsafe { libc::kill(a.id() as i32, libc::SIGINT) }, 0);
    let t0 = Instant::now();
    let (status, stdout, stderr) = a.finish(Duration::from_secs(20));
    assert!(t0.elapsed() < Duration::from_secs(15), "stopped at once");
    assert_eq!(status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    let (status, body) = server.http("GET", "/v1/lease", None, None);
    assert_eq!(status, 404, "released: {body}");
    assert!(server.object_writes().is_empty());
}

#[test]
fn two_concurrent_applies_on_sqlite() {
    two_concurrent_applies(&Server::start(&[]));
}

#[test]
#[cfg_attr(
    not(roster_test_postgres),
    ignore = "needs PostgreSQL: run `. .ci/postgres.sh; roster_pg_start` (sets ROSTER_TEST_POSTGRES), then `cargo test --all-targets`"
)]
fn two_concurrent_applies_on_postgresql() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let database = rt
        .block_on(server_support::fresh_database(
            Backend::Postgres,
            dir.path(),
        ))
        .unwrap();
    let server = Server(crate::support::cli::Server::start_on(
        &HARNESS,
        Some(&database),
        &[],
    ));
    two_concurrent_applies(&server);
}
