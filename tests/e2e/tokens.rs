//! Tokens with a lifecycle: `read` tokens plan and are refused on every write endpoint
//! of the API (each non-GET operation of the served OpenAPI document, the batch
//! endpoints included); revoked and expired tokens are refused on the next request, on a
//! second replica too; listings (API and `roster token list`) never show a value; the
//! value matches the pattern documented in docs/api.md, with its checksum; a manager
//! token stops working for teams its manager lost, and for good once it is deleted; the
//! audit log names the token of each write by id.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::cli::Harness;
use crate::support::server::{self as server_support, Backend, Srv};

const HARNESS: Harness = Harness {
    seats: "2000",
    command_timeout: Duration::from_secs(180),
    retry_busy: false,
};

module_server!();

/// A token for `body` through POST /v1/tokens as `by`; returns the whole answer.
async fn token(s: &Srv, by: &str, body: Value) -> Value {
    let r = s.post(by, "/v1/tokens", &body).await;
    assert_eq!(r.status, 201, "token: {}", r.body);
    r.body
}

fn value(t: &Value) -> String {
    t["token"].as_str().expect("a token value").to_string()
}

/// The regex docs/api.md documents for token values (the line starting `Pattern:`).
fn documented_pattern() -> regex::Regex {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/api.md")).unwrap();
    let line = doc
        .lines()
        .find(|l| l.starts_with("Token pattern: `"))
        .expect("docs/api.md documents the token pattern");
    let pattern = line
        .trim_start_matches("Token pattern: `")
        .split('`')
        .next()
        .unwrap();
    regex::Regex::new(&format!("^{pattern}$")).unwrap()
}

/// The documented checksum, computed here independently: CRC-32 (IEEE) of the 32
/// random characters, in 6 base62 digits (0-9, A-Z, a-z), most significant first.
fn checksum(random: &str) -> String {
    const DIGITS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut n = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(random.as_bytes()) as u64;
    let mut out = vec![b'0'; 6];
    for d in out.iter_mut().rev() {
        *d = DIGITS[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8(out).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_values_match_the_documented_pattern_and_checksum() {
    let s = server_support::start(Backend::Sqlite).await.unwrap();
    let re = documented_pattern();
    let t = value(
        &token(
            &s,
            &s.admin,
            json!({"administrator": "admin@localhost", "name": "ci"}),
        )
        .await,
    );
    for v in [&s.admin, &t] {
        assert!(re.is_match(v), "{} does not match {re}", &v[..7]);
        let random = &v["roster_".len().."roster_".len() + 32];
        assert_eq!(&v["roster_".len() + 32..], checksum(random), "checksum");
    }
    // A token with a wrong checksum matches the shape but not the checksum.
    let mut bad = t.clone().into_bytes();
    bad[9] = if bad[9] == b'x' { b'y' } else { b'x' };
    let bad = String::from_utf8(bad).unwrap();
    assert_ne!(&bad["roster_".len() + 32..], checksum(&bad[7..39]));
    let r = s.get(&bad, "/v1/teams").await;
    assert_eq!(r.status, 401);
    assert!(
        r.body["detail"].as_str().unwrap().contains("checksum"),
        "{}",
        r.body
    );
    s.stop().await;
}

/// Every write operation the server documents (and serves), with a body where it
/// needs one; `{collection}` and `{key}` filled in.
fn write_operations(doc: &Value) -> Vec<(Method, String)> {
    let mut out = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ["post", "put", "patch", "delete"] {
            // The dry run writes nothing: a read token may call it (docs/api.md).
            if ops.get(method).is_none() || path == "/v1/plan:check" {
                continue;
            }
            // An operation without a token (a person's own password change) is not a
            // token's write.
            if ops[method]["security"] == serde_json::json!([]) {
                continue;
            }
            let path = path
                .replace("{collection}", "teams")
                .replace("{key}", "Europe")
                .replace("{id}", "0123456789abcdef");
            out.push((
                Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(),
                path,
            ));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_token_reads_and_is_refused_on_every_write_endpoint() {
    let s = server_support::start(Backend::Sqlite).await.unwrap();
    s.create(&s.admin, "teams", json!({"path": "Europe"})).await;
    let read = token(
        &s,
        &s.admin,
        json!({"administrator": "admin@localhost", "permission": "read", "name": "pr"}),
    )
    .await;
    assert_eq!(read["permission"], "read");
    let read = value(&read);
    assert_eq!(s.get(&read, "/v1/teams/Europe").await.status, 200);
    assert_eq!(s.get(&read, "/v1/audit").await.status, 200);
    let doc = s
        .call(Method::GET, "/openapi.json", None, &[], None)
        .await
        .body;
    let ops = write_operations(&doc);
    for batch in ["/v1/teams:batch", "/v1/representatives:batch"] {
        assert!(
            ops.iter().any(|(m, p)| m == Method::POST && p == batch),
            "the batch endpoints are among them: {ops:?}"
        );
    }
    assert!(ops.len() >= 10, "{ops:?}");
    let audit = s.get(&s.admin, "/v1/audit").await.body["items"]
        .as_array()
        .unwrap()
        .len();
    for (method, path) in &ops {
        let body = match path.as_str() {
            p if p.ends_with(":batch") => {
                json!({"operations": [{"op": "create", "body": {"path": "Asia"}}]})
            }
            "/v1/lease" => json!({"holder": "h", "ttl_seconds": 60}),
            p if p.starts_with("/v1/lease/") => json!({"ttl_seconds": 60}),
            "/v1/tokens" => json!({"administrator": "admin@localhost"}),
            "/v1/account" => json!({"seats": 5}),
            _ => json!({"path": "Asia", "description": "d"}),
        };
        let send = (*method != Method::DELETE).then(|| body.to_string().into_bytes());
        let h = [("if-match", "\"1\"".to_string())];
        let r = s.call(method.clone(), path, Some(&read), &h, send).await;
        assert_eq!(r.status, 403, "{method} {path}: {}", r.body);
        assert_eq!(r.code(), "forbidden", "{method} {path}");
        let detail = r.body["detail"].as_str().unwrap();
        assert!(
            detail.contains("is a read token"),
            "{method} {path}: {detail}"
        );
    }
    let after = s.get(&s.admin, "/v1/audit").await.body["items"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(after, audit, "nothing was written");
    s.stop().await;
}

fn small() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reconcile/small")
}

/// `roster token create|list|revoke` on the database; `plan` with a read token works
/// and `apply` with it is refused, writing nothing.
#[test]
fn a_read_token_plans_and_cannot_apply_and_the_cli_lists_and_revokes() {
    let server = Server::start(&[]);
    let db = server.database();
    let cli = |args: &[&str]| {
        let mut cmd = server.base_command(args, server.dir.path());
        cmd.arg("--database").arg(&db);
        server.finish(cmd, args[1])
    };
    let made = cli(&[
        "token",
        "create",
        "--administrator",
        "admin@localhost",
        "--permission",
        "read",
        "--name",
        "pr-pipeline",
        "--expires-in",
        "30d",
    ]);
    assert_eq!(made.code, 0, "{made}");
    let read = made.stdout.trim().to_string();
    assert!(read.starts_with("roster_"), "{made}");
    assert!(made.stderr.contains("read token"), "{made}");
    let decl = small();
    let mut plan = server.base_command(
        &["plan", decl.to_str().unwrap(), "--detailed-exitcode"],
        server.dir.path(),
    );
    plan.env("ROSTER_TOKEN", &read)
        .env("ROSTER_E2E_MANAGER_PASSWORD", "e2e-Initial-Passw0rd!");
    let plan = server.finish(plan, "plan");
    assert_eq!(plan.code, 2, "a read token plans (changes):\n{plan}");
    let before = server.audit_all().len();
    let mut apply = server.base_command(
        &["apply", decl.to_str().unwrap(), "--auto-approve"],
        server.dir.path(),
    );
    apply
        .env("ROSTER_TOKEN", &read)
        .env("ROSTER_E2E_MANAGER_PASSWORD", "e2e-Initial-Passw0rd!");
    let apply = server.finish(apply, "apply");
    assert_ne!(apply.code, 0, "{apply}");
    assert!(apply.stderr.contains("read token"), "{apply}");
    assert_eq!(server.audit_all().len(), before, "nothing written");

    let list = cli(&["token", "list"]);
    assert_eq!(list.code, 0, "{list}");
    assert!(list.stdout.contains("pr-pipeline"), "{list}");
    assert!(
        list.stdout.contains("administrator:admin@localhost"),
        "{list}"
    );
    assert!(!list.stdout.contains(&read[7..]), "no value: {list}");
    assert!(
        !list.stdout.contains(&server.token[7..]),
        "no value: {list}"
    );
    let json = cli(&["token", "list", "--format", "json"]);
    let rows: Value = serde_json::from_str(&json.stdout).unwrap();
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "pr-pipeline")
        .unwrap()
        .clone();
    assert_eq!(row["permission"], "read");
    assert!(row["expires_at"].is_string() && row["last_used_at"].is_string());
    assert!(!json.stdout.contains(&read[7..]));
    let id = row["id"].as_str().unwrap();
    let revoked = cli(&["token", "revoke", id]);
    assert_eq!(revoked.code, 0, "{revoked}");
    let (status, _) = server.http_as(&read, "GET", "/v1/teams", None, None);
    assert_eq!(status, 401, "revoked");
    let again = cli(&["token", "revoke", id]);
    assert_ne!(again.code, 0, "{again}");
}

async fn second_replica(s: &Srv) -> roster::server::RunningServer {
    roster::server::start(roster::server::ServerConfig {
        listen: "127.0.0.1:0".into(),
        database: s.database.clone(),
        seats: 10,
        ..Default::default()
    })
    .await
    .unwrap()
}

async fn status_at(base: &str, token: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .get(format!("{base}/v1/teams"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn revoked_and_expired_tokens_are_refused_on_every_replica(backend: Backend) {
    let Some(s) = server_support::start(backend).await else {
        return;
    };
    let second = second_replica(&s).await;
    let (one, two) = (s.base.clone(), second.url());
    let t = token(&s, &s.admin, json!({"administrator": "admin@localhost"})).await;
    let (v, id) = (value(&t), t["id"].as_str().unwrap().to_string());
    assert!(t["expires_at"].is_string(), "a default expiry: {t}");
    assert_eq!(status_at(&one, &v).await.0, 200);
    assert_eq!(status_at(&two, &v).await.0, 200);
    let r = s
        .call(
            Method::DELETE,
            &format!("/v1/tokens/{id}"),
            Some(&s.admin),
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    for base in [&one, &two] {
        let (st, body) = status_at(base, &v).await;
        assert_eq!(st, 401, "revoked, refused at {base}: {body}");
    }
    let short = token(
        &s,
        &s.admin,
        json!({"administrator": "admin@localhost", "expires_in": "2s"}),
    )
    .await;
    let v = value(&short);
    assert_eq!(status_at(&two, &v).await.0, 200, "valid until it expires");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    for base in [&two, &one] {
        let (st, body) = status_at(base, &v).await;
        assert_eq!(st, 401, "expired, refused at {base}: {body}");
        assert!(
            body["detail"].as_str().unwrap().contains("expired"),
            "{body}"
        );
    }
    let never = token(
        &s,
        &s.admin,
        json!({"administrator": "admin@localhost", "no_expiry": true}),
    )
    .await;
    assert_eq!(never["expires_at"], Value::Null);
    second.shutdown().await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_and_expired_tokens_are_refused_on_two_sqlite_replicas() {
    revoked_and_expired_tokens_are_refused_on_every_replica(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(roster_test_postgres),
    ignore = "needs PostgreSQL: run `. .ci/postgres.sh; roster_pg_start` (sets ROSTER_TEST_POSTGRES), then `cargo test --all-targets`"
)]
async fn revoked_and_expired_tokens_are_refused_on_two_postgresql_replicas() {
    revoked_and_expired_tokens_are_refused_on_every_replica(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_listing_shows_no_value_and_managers_see_their_own() {
    let s = server_support::start(Backend::Sqlite).await.unwrap();
    let a = &s.admin;
    s.create(a, "teams", json!({"path": "Europe"})).await;
    for login in ["m@acme.example", "n@acme.example"] {
        s.create(
            a,
            "managers",
            json!({"login": login, "email": login, "name": "M", "teams": ["Europe"]}),
        )
        .await;
    }
    let m = value(&token(&s, a, json!({"manager": "m@acme.example", "name": "m1"})).await);
    let n = value(&token(&s, a, json!({"manager": "n@acme.example"})).await);
    // A manager makes tokens for itself only.
    let own = token(&s, &m, json!({"name": "m2", "permission": "read"})).await;
    assert_eq!(own["login"], "m@acme.example");
    let r = s
        .post(&m, "/v1/tokens", &json!({"manager": "n@acme.example"}))
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let all = s.get(a, "/v1/tokens").await;
    assert_eq!(all.status, 200);
    let text = all.body.to_string();
    for v in [a, &m, &n, &value(&own)] {
        assert!(!text.contains(&v[7..]), "no value in {text}");
    }
    assert!(!text.contains("\"token\""), "{text}");
    let items = all.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 4, "{text}");
    for i in items {
        for f in ["id", "name", "role", "login", "permission", "created_at"] {
            assert!(i.get(f).is_some(), "{f} in {i}");
        }
    }
    let mine = s.get(&m, "/v1/tokens").await.body;
    let logins: Vec<&str> = mine["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["login"].as_str().unwrap())
        .collect();
    assert_eq!(logins, ["m@acme.example", "m@acme.example"], "{mine}");
    assert!(mine["items"][0]["last_used_at"].is_string(), "{mine}");
    // A manager cannot revoke another's token (it does not see it).
    let n_id = items
        .iter()
        .find(|i| i["login"] == "n@acme.example")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = s
        .call(
            Method::DELETE,
            &format!("/v1/tokens/{n_id}"),
            Some(&m),
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(s.get(&n, "/v1/teams").await.status, 200, "still valid");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_names_the_token_of_each_write() {
    let s = server_support::start(Backend::Sqlite).await.unwrap();
    let t = token(&s, &s.admin, json!({"administrator": "admin@localhost"})).await;
    let (v, id) = (value(&t), t["id"].as_str().unwrap().to_string());
    s.create(&v, "teams", json!({"path": "Audited"})).await;
    let audit = s.get(&s.admin, "/v1/audit").await.body;
    let text = audit.to_string();
    assert!(
        !text.contains(&v[7..]) && !text.contains(&s.admin[7..]),
        "{text}"
    );
    let items = audit["items"].as_array().unwrap();
    let write = items.iter().find(|i| i["key"] == "Audited").unwrap();
    assert_eq!(write["token_id"], json!(id), "{write}");
    let made = items
        .iter()
        .find(|i| i["kind"] == "token" && i["after"]["id"] == json!(id))
        .unwrap();
    assert!(
        made["token_id"].is_string(),
        "the admin token made it: {made}"
    );
    assert_ne!(made["token_id"], json!(id));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_token_stops_working_for_teams_its_manager_lost() {
    let s = server_support::start(Backend::Sqlite).await.unwrap();
    let a = &s.admin;
    for path in ["Europe", "Europe/Paris", "Asia", "Asia/Tokyo"] {
        s.create(a, "teams", json!({"path": path})).await;
    }
    let m = s
        .create(
            a,
            "managers",
            json!({"login": "m@acme.example", "email": "m@acme.example", "name": "M",
                   "teams": ["Europe"], "team_rights": ["manage_subteams"]}),
        )
        .await;
    let t = s.manager_token("m@acme.example").await;
    let paris = "/v1/teams/Europe%2FParis";
    let r = s
        .patch(&t, paris, Some(1), &json!({"description": "one"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = s
        .patch(
            a,
            "/v1/managers/m@acme.example",
            Some(m["version"].as_i64().unwrap()),
            &json!({"teams": ["Asia"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // The very next request: Europe is gone from its scope, Asia is in.
    assert_eq!(s.get(&t, paris).await.status, 404, "no longer visible");
    let r = s
        .patch(&t, paris, Some(2), &json!({"description": "two"}))
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let r = s
        .patch(
            &t,
            "/v1/teams/Asia%2FTokyo",
            Some(1),
            &json!({"description": "t"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = s.delete(a, "/v1/managers/m@acme.example", Some(2)).await;
    assert_eq!(r.status, 204, "{}", r.body);
    let r = s.get(&t, "/v1/teams").await;
    assert_eq!(r.status, 401, "the manager is gone: {}", r.body);
    s.stop().await;
}
