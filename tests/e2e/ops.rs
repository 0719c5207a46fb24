//! End to end, issue 16 "Operating the live system": what an operator sees of a running
//! `roster serve` — Prometheus metrics at `/metrics` (parsed with a text-format parser),
//! JSON access lines carrying the request id the CLI sends, HTTPS with a certificate
//! made by the test, and the CLI's refusal to send a token over plain HTTP to a host
//! that is not loopback. The real binary against a real `roster serve` on loopback.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::cli::{Harness, PAUSE, Paused, Run, bin, declaration, wait_output};

const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

const HARNESS: Harness = Harness::plain("100");

module_server!();

impl Server {
    fn command(&self, args: &[&str], env: &[(&str, &str)]) -> std::process::Command {
        let mut cmd = self.base_command(args, self.dir.path());
        cmd.env_remove("RUST_LOG")
            .env_remove("ROSTER_CA_CERT")
            .env_remove("ROSTER_ALLOW_INSECURE_HTTP");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }

    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        self.finish(self.command(args, env), &args.join(" "))
    }

    /// The server's JSON log lines (other lines left out).
    fn json_lines(&self) -> Vec<Value> {
        self.log()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v.is_object())
            .collect()
    }
}

const DECLARED: &str = r#"version: 1
teams:
  - name: Support
representatives:
  - login: ann@acme.example
    email: ann@acme.example
    first_name: Ann
    last_name: Lee
    team: Support
    language: en
  - login: bob@acme.example
    email: bob@acme.example
    first_name: Bob
    last_name: Stone
    team: Support
    language: en
"#;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A GET without a token, answering the body as text.
fn get_text(url: &str) -> (u16, String, Option<String>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let resp = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .get(url)
            .header("x-request-id", "probe-42 <bad>")
            .send()
            .await
            .unwrap();
        let id = resp
            .headers()
            .get("x-request-id")
            .map(|v| v.to_str().unwrap().to_string());
        (resp.status().as_u16(), resp.text().await.unwrap(), id)
    })
}

fn value_of(scrape: &prometheus_parse::Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match &s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => *v,
            prometheus_parse::Value::Histogram(b) => b.last().map(|b| b.count).unwrap_or(0.0),
            prometheus_parse::Value::Summary(_) => 0.0,
        })
        .sum()
}

#[test]
fn metrics_count_requests_by_route_writes_batches_and_rate_limited_requests() {
    let server = Server::start(&["--rate-limit", "5"]);
    let (status, body) = server.http("POST", "/v1/portals", Some(json!({"name": "web"})), None);
    assert_eq!(status, 201, "{body}");
    let (status, body) = server.http(
        "POST",
        "/v1/portals:batch",
        Some(json!({"operations": [
            {"op": "create", "body": {"name": "chat"}},
            {"op": "create", "body": {"name": "kiosk"}},
            {"op": "create", "body": {"name": "web"}}
        ]})),
        None,
    );
    assert_eq!(status, 200, "{body}");
    std::thread::sleep(Duration::from_millis(1100));
    // Thirty requests, five allowed a second: some are refused.
    let refused = (0..30)
        .filter(|_| server.http("GET", "/v1/portals", None, None).0 == 429)
        .count();
    assert!(refused > 0, "the rate limit never answered 429");

    let (status, text, id) = get_text(&format!("{}/metrics", server.endpoint()));
    assert_eq!(status, 200, "{text}");
    assert_eq!(id.as_deref(), Some("probe-42bad"), "sanitized and echoed");
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
    let v = |m: &str, l: &[(&str, &str)]| value_of(&scrape, m, l);
    assert_eq!(
        v(
            "roster_http_requests_total",
            &[
                ("method", "POST"),
                ("route", "/v1/portals"),
                ("status", "201")
            ]
        ),
        1.0
    );
    assert_eq!(
        v(
            "roster_http_requests_total",
            &[("route", "/v1/portals"), ("status", "429")]
        ),
        refused as f64
    );
    assert!(
        v(
            "roster_http_requests_total",
            &[
                ("method", "POST"),
                ("route", "/v1/portals:batch"),
                ("status", "200")
            ]
        ) == 1.0
    );
    assert!(
        !text.contains("/v1/portals/web"),
        "no raw path is a label:\n{text}"
    );
    assert_eq!(v("roster_rate_limited_requests_total", &[]), refused as f64);
    // One single create and two of the batch's three (the third name is taken).
    assert_eq!(
        v(
            "roster_writes_total",
            &[("kind", "portals"), ("op", "create")]
        ),
        3.0,
        "{text}"
    );
    assert_eq!(
        v("roster_batch_operations_count", &[("kind", "portals")]),
        1.0,
        "{text}"
    );
    assert_eq!(
        v("roster_batch_operations_sum", &[("kind", "portals")]),
        3.0,
        "{text}"
    );
    assert!(
        v(
            "roster_http_request_duration_seconds_count",
            &[("method", "GET"), ("route", "/v1/portals")]
        ) == 30.0,
        "{text}"
    );
    assert!(
        scrape
            .samples
            .iter()
            .any(|s| s.metric == "roster_db_connections" && s.labels.get("state") == Some("idle")),
        "{text}"
    );
}

/// The request ids a `-vv` run of the CLI logged.
fn request_ids(stderr: &str) -> Vec<String> {
    stderr
        .split("request id ")
        .skip(1)
        .map(|rest| {
            rest.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect::<String>()
        })
        .filter(|id| id.starts_with("roster-"))
        .collect()
}

#[test]
fn json_access_lines_carry_the_request_ids_the_cli_sends_and_a_failed_write_names_its_own() {
    let server = Server::start(&["--log-format", "json"]);
    let tmp = tempfile::tempdir().unwrap();
    let decl = declaration(tmp.path(), "declared", DECLARED);
    let run = server.run(&["plan", s(&decl), "-vv"], &[]);
    assert_eq!(run.code, 0, "{run}");
    let ids = request_ids(&run.stderr);
    assert!(
        ids.len() >= 3,
        "the plan's requests are logged with ids:\n{run}"
    );
    let lines = server.json_lines();
    let log = server.log();
    assert!(
        log.lines()
            .all(|l| serde_json::from_str::<Value>(l).is_ok()),
        "every line is json:\n{log}"
    );
    assert!(
        lines.iter().any(|l| l["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("listening on http://")),
        "{log}"
    );
    for id in &ids {
        let line = lines
            .iter()
            .find(|l| l["request_id"] == id.as_str())
            .unwrap_or_else(|| panic!("no server line for {id}:\n{}", server.log()));
        assert_eq!(line["target"], "roster::access");
        // Reads, and the plan's dry run of its writes (`POST /v1/plan:check`).
        assert!(
            line["method"] == "GET" || line["route"] == "/v1/plan:check",
            "{line}"
        );
        assert!(line["route"].as_str().unwrap().starts_with('/'), "{line}");
        assert!(
            line["status"].is_u64() && line["latency_ms"].is_number(),
            "{line}"
        );
    }

    // A write that fails (Bob changed between plan and write) names its request id,
    // and the server's line for it says 412.
    let run = server.run(&["apply", s(&decl), "--auto-approve"], &[]);
    assert_eq!(run.code, 0, "{run}");
    let changed = declaration(tmp.path(), "changed", &DECLARED.replace("Stone", "Stones"));
    let paused = Paused::start(server.command(
        &["apply", s(&changed), "--auto-approve"],
        &[(PAUSE, "3000")],
    ));
    let bob = server.get("/v1/representatives/bob%40acme.example");
    let (status, body) = server.http(
        "PATCH",
        "/v1/representatives/bob%40acme.example",
        Some(json!({"language": "fr"})),
        bob["version"].as_i64(),
    );
    assert_eq!(status, 200, "{body}");
    let (status, stdout, stderr) = paused.finish(COMMAND_TIMEOUT);
    assert_eq!(status.code(), Some(6), "{stdout}\n{stderr}");
    let all = format!("{stdout}\n{stderr}");
    let failed: Vec<String> = request_ids(&all)
        .into_iter()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(
        failed.len(),
        1,
        "the failed write names its request id:\n{all}"
    );
    let line = server
        .json_lines()
        .into_iter()
        .find(|l| l["request_id"] == failed[0].as_str())
        .unwrap_or_else(|| panic!("no server line for {}:\n{}", failed[0], server.log()));
    assert_eq!(line["status"], 412, "{line}");
    assert_eq!(line["method"], "PATCH");
    assert_eq!(line["route"], "/v1/representatives/{*key}");
}

/// A self-signed certificate for `localhost` and 127.0.0.1, written as PEM files.
fn certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let made =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    (cert, key)
}

#[test]
fn a_plan_over_https_with_the_deployments_own_ca() {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(certs.path());
    let server = Server::start(&["--tls-cert", s(&cert), "--tls-key", s(&key)]);
    let tmp = tempfile::tempdir().unwrap();
    let decl = declaration(tmp.path(), "declared", DECLARED);
    let https = format!("https://localhost:{}", server.port);
    let env = [("ROSTER_ENDPOINT", https.as_str())];

    let run = server.run(
        &[
            "plan",
            s(&decl),
            "--detailed-exitcode",
            "--ca-cert",
            s(&cert),
        ],
        &env,
    );
    assert_eq!(run.code, 2, "changes planned over https:\n{run}");
    assert!(run.stdout.contains("ann@acme.example"), "{run}");
    let run = server.run(
        &["apply", s(&decl), "--auto-approve"],
        &[env[0], ("ROSTER_CA_CERT", s(&cert))],
    );
    assert_eq!(run.code, 0, "{run}");
    let audit = server.audit_over_https(&cert);
    let made = |kind: &str| audit.iter().filter(|e| e["kind"] == kind).count();
    assert_eq!((made("team"), made("representative")), (1, 2), "{audit:?}");

    // Without the CA the certificate is not trusted; plain http is not answered.
    let run = server.run(&["plan", s(&decl)], &env);
    assert_eq!(run.code, 5, "{run}");
    assert!(run.stderr.to_lowercase().contains("certificate"), "{run}");
}

impl Server {
    fn audit_over_https(&self, ca: &Path) -> Vec<Value> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let pem = std::fs::read(ca).unwrap();
            let client = reqwest::Client::builder()
                .no_proxy()
                .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
                .build()
                .unwrap();
            let page: Value = client
                .get(format!(
                    "https://localhost:{}/v1/audit?limit=1000",
                    self.port
                ))
                .bearer_auth(&self.token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            page["items"].as_array().unwrap().clone()
        })
    }
}

#[test]
fn a_token_is_not_sent_over_plain_http_to_a_host_that_is_not_loopback() {
    let tmp = tempfile::tempdir().unwrap();
    let decl = declaration(tmp.path(), "declared", DECLARED);
    let started = Instant::now();
    let child = std::process::Command::new(bin())
        .args(["plan", s(&decl), "--endpoint", "http://192.0.2.1:8080"])
        .current_dir(tmp.path())
        .env("ROSTER_TOKEN", "not-a-real-token")
        .env("NO_COLOR", "1")
        .env_remove("ROSTER_ALLOW_INSECURE_HTTP")
        .env_remove("ROSTER_TOKEN_FILE")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let run: Run = wait_output(child, COMMAND_TIMEOUT, "plan over http").into();
    assert_eq!(run.code, 64, "{run}");
    assert!(
        run.stderr
            .contains("refusing to send the api token over plain http to 192.0.2.1")
            && run.stderr.contains("--allow-insecure-http")
            && run.stderr.contains("nothing was sent"),
        "{run}"
    );
    assert!(!run.stderr.contains("not-a-real-token"), "{run}");
    // No connection was tried: TEST-NET-1 never answers, a connection attempt would take
    // the ten-second connect timeout and its retries.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(!run.stderr.contains("cannot reach"), "{run}");
}

/// The pool gauges name each backend's pools: SQLite's reader and writer, PostgreSQL's
/// one pool, with the connections it holds counted as in use or idle.
async fn metrics_show_the_database_pools(s: &crate::support::server::Srv) {
    let r = s.get(&s.admin, "/v1/portals").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let text = s
        .http
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
    let pools: &[&str] = if s.database.starts_with("sqlite") {
        &["sqlite_read", "sqlite_write"]
    } else {
        &["postgres"]
    };
    for pool in pools {
        let held = value_of(&scrape, "roster_db_connections", &[("pool", pool)]);
        assert!(held >= 1.0, "{pool}: {held}\n{text}");
        for state in ["in_use", "idle"] {
            assert!(
                scrape
                    .samples
                    .iter()
                    .any(|x| x.metric == "roster_db_connections"
                        && x.labels.get("pool") == Some(*pool)
                        && x.labels.get("state") == Some(state)),
                "{pool} {state}\n{text}"
            );
        }
    }
}
both_backends!(metrics_show_the_database_pools);
