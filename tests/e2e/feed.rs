//! The live change feed (`GET /v1/changes`) and the client's live snapshot that `plan`
//! brings up to date from it (issue 14).
//!
//! On both backends: every kind of write (create, update, rename, delete) reported with
//! the object as it is now, paging, the digest, nothing from a dry run, the refusals
//! (another database's cursor, a cursor past the head, a malformed one, a manager's
//! token), and concurrent writers — on PostgreSQL through two replicas of one database —
//! that a reader following the feed all along never misses: its copy equals a full list.
//! Through the binary: a no-op plan with a snapshot is one request, a write made
//! behind roster's back shows in the next plan as with a full read, a damaged snapshot
//! and a write the feed never recorded (caught by the digest) fall back to a full read,
//! and `--no-cache` keeps no snapshot. A saved plan nothing changed for is found current
//! by one request; any change since (even to an object the plan does not touch) or
//! another token sends its stale check to the full read, which decides as before.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::cli::{Harness, Run, copy_acme};
use crate::support::server::Srv;

async fn feed(s: &Srv, since: Option<&str>, limit: Option<usize>) -> crate::support::server::Resp {
    let mut path = "/v1/changes".to_string();
    let mut sep = '?';
    if let Some(c) = since {
        path.push_str(&format!("{sep}since={c}"));
        sep = '&';
    }
    if let Some(l) = limit {
        path.push_str(&format!("{sep}limit={l}"));
    }
    s.get(&s.admin, &path).await
}

/// kind/key → the object (null: gone), in the order reported.
fn changes(body: &Value) -> Vec<(String, Value)> {
    body["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                format!(
                    "{}/{}",
                    c["kind"].as_str().unwrap(),
                    c["key"].as_str().unwrap()
                ),
                c["object"].clone(),
            )
        })
        .collect()
}

async fn every_write_is_reported(s: &Srv) {
    let a = &s.admin;
    let head = feed(s, None, None).await;
    assert_eq!(head.status, 200, "{}", head.body);
    assert_eq!(head.body["changes"], json!([]), "{}", head.body);
    assert!(
        head.body.get("digest").is_none(),
        "the head alone: {}",
        head.body
    );
    let c0 = head.body["cursor"].as_str().unwrap().to_string();

    let web = s
        .create(
            a,
            "portals",
            json!({"name": "web", "features": ["share_my_screen"]}),
        )
        .await;
    s.create(
        a,
        "representatives",
        json!({"login": "ann@acme.example", "email": "ann@acme.example", "first_name": "Ann", "last_name": "Lee"}),
    )
    .await;
    let v = web["version"].as_i64().unwrap();
    let r = s
        .patch(
            a,
            "/v1/portals/web",
            Some(v),
            &json!({"features": ["file_transfer_send"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = s
        .patch(
            a,
            "/v1/portals/web",
            Some(r.version()),
            &json!({"name": "site"}),
        )
        .await;
    assert_eq!(r.status, 200, "rename: {}", r.body);
    let site_version = r.version();
    let rep = s.get(a, "/v1/representatives/ann@acme.example").await;
    let r = s
        .delete(
            a,
            "/v1/representatives/ann@acme.example?purge_statistics=true",
            Some(rep.version()),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);

    let r = feed(s, Some(&c0), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let got: BTreeMap<String, Value> = changes(&r.body).into_iter().collect();
    assert_eq!(
        got.len(),
        3,
        "each key once, at its last change: {:#}",
        r.body
    );
    assert_eq!(got["portal/web"], Value::Null, "renamed away: {:#}", r.body);
    assert_eq!(
        got["portal/site"]["features"],
        json!(["file_transfer_send"])
    );
    assert_eq!(got["portal/site"]["version"], json!(site_version));
    assert_eq!(
        got["representative/ann@acme.example"],
        Value::Null,
        "deleted"
    );
    let order: Vec<String> = changes(&r.body).into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        order.last().map(String::as_str),
        Some("representative/ann@acme.example"),
        "in the order of the last change: {order:?}"
    );
    assert_eq!(r.body["more"], json!(false));
    let digest = &r.body["digest"];
    assert_eq!(
        digest["portal"],
        json!({"count": 1, "versions": site_version}),
        "{digest}"
    );
    assert_eq!(digest["representative"]["count"], 0, "{digest}");
    assert_eq!(digest["administrator"]["count"], 1, "{digest}");
    let c1 = r.body["cursor"].as_str().unwrap().to_string();
    assert_ne!(c1, c0);

    // Page by page: the same keys.
    let mut cursor = c0.clone();
    let mut paged = Vec::new();
    for _ in 0..10 {
        let r = feed(s, Some(&cursor), Some(1)).await;
        assert_eq!(r.status, 200, "{}", r.body);
        paged.extend(changes(&r.body).into_iter().map(|(k, _)| k));
        cursor = r.body["cursor"].as_str().unwrap().to_string();
        if r.body["more"] == json!(false) {
            break;
        }
        assert!(
            r.body.get("digest").is_none(),
            "the digest is on the last page only"
        );
    }
    assert_eq!(paged, order, "pages of one");
    assert_eq!(cursor, c1);

    // Nothing new, and a dry run adds nothing.
    let r = s
        .post(
            a,
            "/v1/plan:check",
            &json!({"operations": [{"kind": "portal", "op": "create", "body": {"name": "dry"}}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["results"][0]["status"], 201, "{}", r.body);
    let r = feed(s, Some(&c1), None).await;
    assert_eq!(
        (r.status, r.body["changes"].clone()),
        (200, json!([])),
        "{}",
        r.body
    );
    assert_eq!(r.body["cursor"], json!(c1), "the dry run moved the cursor");

    // Refusals.
    let (epoch, seq) = c1.split_once('.').unwrap();
    let other = format!("{}.{seq}", "0".repeat(epoch.len()));
    let r = feed(s, Some(&other), None).await;
    assert_eq!((r.status, r.code()), (410, "cursor-expired"), "{}", r.body);
    let ahead = format!("{epoch}.{}", seq.parse::<i64>().unwrap() + 1000);
    let r = feed(s, Some(&ahead), None).await;
    assert_eq!(
        (r.status, r.code()),
        (410, "cursor-expired"),
        "a cursor past the head (a restored database): {}",
        r.body
    );
    let r = feed(s, Some("nonsense"), None).await;
    assert_eq!(
        (r.status, r.body["pointer"].clone()),
        (400, json!("/since")),
        "{}",
        r.body
    );
    let r = feed(s, Some(&c1), Some(0)).await;
    assert_eq!(r.status, 400, "{}", r.body);

    s.create(a, "teams", json!({"path": "Europe"})).await;
    s.create(
        a,
        "managers",
        json!({"login": "marie@acme.example", "email": "marie@acme.example", "name": "Marie",
               "teams": ["Europe"], "team_rights": ["manage_representatives"]}),
    )
    .await;
    let marie = s.manager_token("marie@acme.example").await;
    let r = s.get(&marie, &format!("/v1/changes?since={c1}")).await;
    assert_eq!((r.status, r.code()), (403, "forbidden"), "{}", r.body);
    assert!(!r.body.to_string().contains("ann@"), "{}", r.body);
    let who = s.get(&marie, "/v1/whoami").await;
    assert_eq!(
        who.body["capabilities"],
        json!(["plan-check"]),
        "{}",
        who.body
    );
}

both_backends!(every_write_is_reported);

/// One writer's work: creates, updates and deletes of its own portals.
async fn write_portals(base: String, token: String, writer: usize) {
    let http = reqwest::Client::new();
    for i in 0..24 {
        let name = format!("w{writer}-{i:02}");
        let r = http
            .post(format!("{base}/v1/portals"))
            .bearer_auth(&token)
            .json(&json!({"name": name, "features": []}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{name}");
        let version = r.json::<Value>().await.unwrap()["version"]
            .as_i64()
            .unwrap();
        let url = format!("{base}/v1/portals/{name}");
        let if_match = format!("\"{version}\"");
        let r = match i % 3 {
            0 => http
                .patch(&url)
                .bearer_auth(&token)
                .header("if-match", &if_match)
                .json(&json!({"features": ["share_my_screen"]}))
                .send()
                .await
                .unwrap(),
            1 => http
                .delete(&url)
                .bearer_auth(&token)
                .header("if-match", &if_match)
                .send()
                .await
                .unwrap(),
            _ => continue,
        };
        assert!(r.status().is_success(), "{name}: {}", r.status());
    }
}

async fn concurrent_writers_never_slip_past_the_cursor(s: &Srv) {
    // On PostgreSQL a second replica of the same database takes half of the writes.
    let second = if s.database.starts_with("postgres") {
        Some(
            roster::server::start(roster::server::ServerConfig {
                listen: "127.0.0.1:0".into(),
                database: s.database.clone(),
                ..Default::default()
            })
            .await
            .unwrap(),
        )
    } else {
        None
    };
    let bases: Vec<String> = std::iter::once(s.base.clone())
        .chain(second.as_ref().map(|r| r.url()))
        .collect();
    let mut cursor = feed(s, None, None).await.body["cursor"]
        .as_str()
        .unwrap()
        .to_string();
    let done = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            tokio::spawn(write_portals(
                bases[w % bases.len()].clone(),
                s.admin.clone(),
                w,
            ))
        })
        .collect();
    let watcher = {
        let done = done.clone();
        tokio::spawn(async move {
            for w in writers {
                w.await.unwrap();
            }
            done.store(true, Ordering::SeqCst);
        })
    };
    // The reader follows the feed while the writers write, and once more after.
    let mut copy: BTreeMap<String, i64> = BTreeMap::new();
    let (mut polls, mut busy_polls) = (0, 0);
    loop {
        let last = done.load(Ordering::SeqCst);
        let r = feed(s, Some(&cursor), None).await;
        assert_eq!(r.status, 200, "{}", r.body);
        polls += 1;
        let got = changes(&r.body);
        if !got.is_empty() && !last {
            busy_polls += 1;
        }
        for (id, obj) in got {
            let key = id.strip_prefix("portal/").unwrap().to_string();
            match obj["version"].as_i64() {
                Some(v) => copy.insert(key, v),
                None => copy.remove(&key),
            };
        }
        cursor = r.body["cursor"].as_str().unwrap().to_string();
        if last && r.body["more"] == json!(false) {
            break;
        }
        assert!(polls < 10_000, "the writers never finished");
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    watcher.await.unwrap();
    let list = s.get(&s.admin, "/v1/portals?limit=1000").await;
    let live: BTreeMap<String, i64> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["version"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(live.len(), 4 * 16, "creates minus deletes");
    assert_eq!(copy, live, "the copy kept from the feed is the live state");
    assert!(
        busy_polls >= 2,
        "the reader read while the writers wrote ({busy_polls} of {polls} polls)"
    );
    if let Some(r) = second {
        r.shutdown().await;
    }
}

both_backends!(concurrent_writers_never_slip_past_the_cursor);

const HARNESS: Harness = Harness::plain("200");

module_server!();

impl Server {
    fn roster(&self, args: &[&str], cwd: &Path, state: &Path) -> Run {
        let mut cmd = self.base_command(args, cwd);
        cmd.env("ROSTER_STATE_DIR", state)
            .env_remove("ROSTER_NO_CACHE");
        self.finish(cmd, &args.join(" "))
    }
}

/// The reads a `-vv` run made, one line each (the client's own log lines; a plan with
/// changes also sends its server check, a POST).
fn requests(run: &Run) -> Vec<String> {
    run.stderr
        .lines()
        .filter(|l| l.contains("DEBUG GET ") && l.contains(" → ") && l.contains("attempt(s)"))
        .map(str::to_string)
        .collect()
}

#[test]
fn a_plan_brings_its_snapshot_up_to_date_from_the_feed() {
    let server = Server::start(&[]);
    let root = tempfile::tempdir().unwrap();
    let decl = root.path().join("acme");
    copy_acme(&decl, |_, t| t);
    let d = decl.to_str().unwrap();
    let state = root.path().join("state");
    let cwd = root.path();
    let run = server.roster(&["apply", d, "--auto-approve"], cwd, &state);
    assert_eq!(run.code, 0, "{run}");

    // The first plan after the apply reads the apply's writes from the feed; the next,
    // with nothing changed, is the feed alone (its last page says who the token is and
    // what the account is).
    let run = server.roster(&["plan", d, "--detailed-exitcode"], cwd, &state);
    assert_eq!(run.code, 0, "{run}");
    let run = server.roster(&["plan", d, "--detailed-exitcode", "-vv"], cwd, &state);
    assert_eq!(run.code, 0, "{run}");
    let reqs = requests(&run);
    assert_eq!(reqs.len(), 1, "{reqs:#?}");
    assert!(
        reqs.iter().any(|l| l.contains("/v1/changes?since=")),
        "{reqs:#?}"
    );
    let full = server.roster(&["plan", d, "--no-cache", "-vv"], cwd, &state);
    assert_eq!(full.code, 0, "{full}");
    assert!(requests(&full).len() > 8, "a full read lists every kind");

    // A write behind roster's back shows in the next plan, exactly as a full read sees it.
    let felix = server.get("/v1/representatives/felix.weber@acme.example");
    let (st, body) = server.http(
        "PATCH",
        "/v1/representatives/felix.weber@acme.example",
        Some(json!({"first_name": "Phil"})),
        felix["version"].as_i64(),
    );
    assert_eq!(st, 200, "{body}");
    let warm = server.roster(&["plan", d, "--detailed-exitcode", "-vv"], cwd, &state);
    assert_eq!(warm.code, 2, "{warm}");
    assert_eq!(requests(&warm).len(), 1, "{warm}");
    let cold = server.roster(
        &["plan", d, "--detailed-exitcode", "--no-cache"],
        cwd,
        &state,
    );
    assert_eq!(cold.code, 2, "{cold}");
    assert!(warm.stdout.contains("felix.weber@acme.example"), "{warm}");
    assert_eq!(
        warm.stdout, cold.stdout,
        "the snapshot's plan is the full read's"
    );

    // A damaged snapshot is ignored and rewritten.
    let live = state.join("cache/live");
    let files: Vec<_> = std::fs::read_dir(&live)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "bin"))
        .collect();
    assert_eq!(files.len(), 1, "one endpoint, one token: {files:?}");
    let mut bytes = std::fs::read(&files[0]).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&files[0], &bytes).unwrap();
    let run = server.roster(&["plan", d, "--detailed-exitcode", "-vv"], cwd, &state);
    assert_eq!(run.code, 2, "{run}");
    assert_eq!(run.stdout, cold.stdout);
    assert!(requests(&run).len() > 8, "read in full: {run}");
    let run = server.roster(&["plan", d, "--detailed-exitcode", "-vv"], cwd, &state);
    assert_eq!(requests(&run).len(), 1, "rewritten: {run}");

    // A write the feed never recorded (straight into the database) moves a version:
    // the digest no longer matches, and the plan reads in full.
    let url = server.database();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        sqlx::query(
            "UPDATE objects SET version = version + 1, body = json_set(body, '$.last_name', 'Hidden') \
             WHERE kind = 'representative' AND key = 'felix.weber@acme.example'",
        )
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
    });
    let run = server.roster(&["plan", d, "--detailed-exitcode", "-vv"], cwd, &state);
    assert_eq!(run.code, 2, "{run}");
    assert!(run.stderr.contains("do not match the live digest"), "{run}");
    let cold = server.roster(
        &["plan", d, "--detailed-exitcode", "--no-cache"],
        cwd,
        &state,
    );
    assert!(cold.stdout.contains("Hidden"), "{cold}");
    assert_eq!(run.stdout, cold.stdout);

    // `--no-cache` keeps no snapshot.
    let other = root.path().join("other-state");
    let run = server.roster(&["plan", d, "--no-cache"], cwd, &other);
    assert_eq!(run.code, 0, "{run}");
    assert!(
        !other.join("cache/live").exists(),
        "no snapshot with --no-cache"
    );
}

/// A server with acme applied through the binary, and the directory holding the
/// declaration (`acme`) and the state directory (`state`).
fn acme_applied() -> (Server, tempfile::TempDir) {
    let server = Server::start(&[]);
    let root = tempfile::tempdir().unwrap();
    let decl = root.path().join("acme");
    copy_acme(&decl, |_, t| t);
    let run = server.roster(
        &["apply", decl.to_str().unwrap(), "--auto-approve"],
        root.path(),
        &root.path().join("state"),
    );
    assert_eq!(run.code, 0, "{run}");
    (server, root)
}

/// `apply --plan`: a saved plan records the feed's cursor and digest (`target.live`); with
/// nothing committed since, its stale check is that one feed request.
#[test]
fn a_saved_plan_nothing_changed_for_is_current_in_one_request() {
    let (server, root) = acme_applied();
    let decl = root.path().join("acme");
    let d = decl.to_str().unwrap();
    let (cwd, state) = (root.path(), root.path().join("state"));
    let edit = |from: &str, to: &str| {
        copy_acme(&decl, |file, t| {
            if file == "representatives-tier2.yaml" {
                t.replace("first_name: Felix", to)
            } else {
                t.replace("first_name: Felix", from)
            }
        })
    };
    let save = |name: &str| -> std::path::PathBuf {
        let out = root.path().join(name);
        let run = server.roster(&["plan", d, "--out", out.to_str().unwrap()], cwd, &state);
        assert_eq!(run.code, 0, "{run}");
        let plan: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
        let live = &plan["target"]["live"];
        assert!(live["cursor"].is_string(), "{plan:#}");
        assert!(
            live["digest"]["representative"]["count"].as_i64() > Some(0),
            "{plan:#}"
        );
        out
    };

    // Nothing changed since the plan: one GET, the feed since the plan's cursor.
    edit("first_name: Felix", "first_name: Phil");
    let plan = save("phil.json");
    let run = server.roster(
        &["apply", "--plan", plan.to_str().unwrap(), "-vv"],
        cwd,
        &state,
    );
    assert_eq!(run.code, 0, "{run}");
    let reqs = requests(&run);
    assert_eq!(reqs.len(), 1, "{reqs:#?}");
    assert!(
        reqs[0].contains("/v1/changes?since=") && reqs[0].contains("limit=1"),
        "{reqs:#?}"
    );
    assert!(run.stderr.contains("the saved plan is current"), "{run}");
    let felix = server.get("/v1/representatives/felix.weber@acme.example");
    assert_eq!(felix["first_name"], "Phil", "applied: {felix}");

    // A change since, even to an object the plan does not touch: the feed says so, and
    // the read the stale check always made decides (here the snapshot brought up to
    // date; every object read is in the plan's fingerprint): stale, refused, nothing
    // written.
    edit("first_name: Felix", "first_name: Felix");
    let plan = save("felix.json");
    let reps = server.get("/v1/representatives?limit=1000");
    let other = reps["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["login"] != "felix.weber@acme.example")
        .unwrap()
        .clone();
    let login = other["login"].as_str().unwrap().to_string();
    let (st, body) = server.http(
        "PATCH",
        &format!("/v1/representatives/{login}"),
        Some(json!({"last_name": "Elsewhere"})),
        other["version"].as_i64(),
    );
    assert_eq!(st, 200, "{body}");
    let run = server.roster(
        &["apply", "--plan", plan.to_str().unwrap(), "-vv"],
        cwd,
        &state,
    );
    assert_eq!(run.code, 4, "{run}");
    assert!(
        run.stderr.contains("stale") && run.stderr.contains(&login),
        "{run}"
    );
    assert!(requests(&run).len() >= 2, "read again: {run}");
    let felix = server.get("/v1/representatives/felix.weber@acme.example");
    assert_eq!(felix["first_name"], "Phil", "nothing written: {felix}");
}

/// Issue 14: a plan through the caches (the parse cache and the live snapshot, kept in
/// one state directory across rounds) equals the same plan `--no-cache`, over seeded
/// random rounds of edits to the declaration's files and writes to the live system
/// behind roster's back (renames of people, language changes, deletions), with an apply
/// every few rounds so that the live system moves on too.
#[test]
fn a_cached_plan_equals_an_uncached_plan_over_random_edits() {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    let seed: u64 = std::env::var("ROSTER_CACHE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(14);
    let mut rng = StdRng::seed_from_u64(seed);
    let (server, root) = acme_applied();
    let decl = root.path().join("acme");
    let d = decl.to_str().unwrap();
    let (cwd, state) = (root.path(), root.path().join("state"));
    let files = [
        "representatives-europe.yaml",
        "representatives-americas.yaml",
        "representatives-tier2.yaml",
    ];
    let languages = ["en", "fr", "de", "pl"];
    let mut checked = 0;
    for round in 0..12 {
        let mut edits = Vec::new();
        for _ in 0..rng.random_range(1..=3) {
            if rng.random_bool(0.5) {
                // A declaration edit: the n-th first name or language of one file.
                let file = decl.join(files[rng.random_range(0..files.len())]);
                let text = std::fs::read_to_string(&file).unwrap();
                let field = if rng.random_bool(0.5) {
                    "first_name: "
                } else {
                    "language: "
                };
                let at: Vec<usize> = text.match_indices(field).map(|(i, _)| i).collect();
                let i = at[rng.random_range(0..at.len())] + field.len();
                let end = i + text[i..].find('\n').unwrap();
                let value = if field == "language: " {
                    languages[rng.random_range(0..languages.len())].to_string()
                } else {
                    format!("Name{}", rng.random_range(0..1000))
                };
                let edited = format!("{}{value}{}", &text[..i], &text[end..]);
                std::fs::write(&file, edited).unwrap();
                edits.push(format!("{}: {field}{value}", file.display()));
            } else {
                // A live write behind roster's back: a representative renamed, its
                // language changed, or deleted.
                let reps = server.get("/v1/representatives?limit=1000");
                let items = reps["items"].as_array().unwrap();
                let r = &items[rng.random_range(0..items.len())];
                let login = r["login"].as_str().unwrap().to_string();
                let path = format!("/v1/representatives/{login}");
                let (body, what) = match rng.random_range(0..3) {
                    0 => (
                        Some(json!({"last_name": format!("Live{}", rng.random_range(0..1000))})),
                        "renamed",
                    ),
                    1 => (
                        Some(json!({"language": languages[rng.random_range(0..languages.len())]})),
                        "language",
                    ),
                    _ => (None, "deleted"),
                };
                let (st, answer) = match body {
                    Some(b) => server.http("PATCH", &path, Some(b), r["version"].as_i64()),
                    None => server.http(
                        "DELETE",
                        &format!("{path}?purge_statistics=true"),
                        None,
                        r["version"].as_i64(),
                    ),
                };
                // A deletion of someone a team or a group refers to is refused (409).
                assert!(matches!(st, 200 | 204 | 409), "{st} {answer}");
                if st != 409 {
                    edits.push(format!("live {login}: {what}"));
                }
            }
        }
        let cached = server.roster(&["plan", d, "--detailed-exitcode"], cwd, &state);
        let uncached = server.roster(
            &["plan", d, "--detailed-exitcode", "--no-cache"],
            cwd,
            &state,
        );
        assert_eq!(
            (cached.code, &cached.stdout),
            (uncached.code, &uncached.stdout),
            "seed {seed}, round {round}, after {edits:#?}:\ncached: {cached}\nuncached: {uncached}"
        );
        checked += usize::from(cached.code == 2);
        if round % 4 == 3 {
            let run = server.roster(&["apply", d, "--auto-approve"], cwd, &state);
            assert!(matches!(run.code, 0 | 6), "{run}");
        }
    }
    assert!(
        checked >= 6,
        "most rounds planned changes ({checked} of 12)"
    );
}
