//! End to end, issue 16 "Scale-out": what several replicas on one PostgreSQL share and
//! what they do not, and the readiness probe while their database is down.
//!
//! The rate limit is kept per replica by design (a shared limiter would add a database
//! write to every request, reads included, on the path the limit protects): with N
//! replicas behind a round-robin proxy and `--rate-limit L`, a token gets at most N × L
//! requests per second in all (README "Running the live system"). Objects, versions,
//! idempotency records, tokens and the apply lease are in the database and shared:
//! `server::two_replicas_share_one_postgresql`,
//! `lease::two_replicas_race_for_the_lease_on_one_postgresql`,
//! `tokens::revoked_and_expired_tokens_are_refused_on_two_postgresql_replicas`, and
//! below, a retry that lands on the other replica.

use crate::support::server::{self as server_support, Backend};

#[tokio::test]
#[cfg_attr(
    not(roster_test_postgres),
    ignore = "needs PostgreSQL: run `. .ci/postgres.sh; roster_pg_start` (sets ROSTER_TEST_POSTGRES), then `cargo test --all-targets`"
)]
async fn the_rate_limit_is_per_replica_as_documented() {
    let Some(s) = server_support::start_with(Backend::Postgres, |c| c.rate_limit = 3).await else {
        return;
    };
    let second = roster::server::start(roster::server::ServerConfig {
        listen: "127.0.0.1:0".into(),
        database: s.database.clone(),
        rate_limit: 3,
        ..Default::default()
    })
    .await
    .unwrap();
    let a = &s.admin;
    // Replica 1 until it limits the token.
    let mut served = 0;
    loop {
        let r = s.get(a, "/v1/whoami").await;
        if r.status == 429 {
            break;
        }
        assert_eq!(r.status, 200);
        served += 1;
        assert!(served < 20, "replica 1 never limited the token");
    }
    assert!(served >= 3, "replica 1 served its limit first: {served}");
    // At once, replica 2 still serves the same token its own limit: per replica.
    let http = reqwest::Client::new();
    let mut second_served = 0;
    for _ in 0..3 {
        let r = http
            .get(format!("{}/v1/whoami", second.url()))
            .bearer_auth(a)
            .send()
            .await
            .unwrap();
        if r.status() == 200 {
            second_served += 1;
        }
    }
    assert_eq!(second_served, 3, "replica 2 has its own budget");
    second.shutdown().await;
    s.stop().await;
}

/// A client's retry of a create (same `Idempotency-Key`) that the proxy sends to the other
/// replica gets the first answer again, and the object exists once.
#[tokio::test]
#[cfg_attr(
    not(roster_test_postgres),
    ignore = "needs PostgreSQL: run `. .ci/postgres.sh; roster_pg_start` (sets ROSTER_TEST_POSTGRES), then `cargo test --all-targets`"
)]
async fn a_retried_create_on_the_other_replica_is_replayed_not_repeated() {
    let Some(s) = server_support::start(Backend::Postgres).await else {
        return;
    };
    let second = roster::server::start(roster::server::ServerConfig {
        listen: "127.0.0.1:0".into(),
        database: s.database.clone(),
        ..Default::default()
    })
    .await
    .unwrap();
    let a = &s.admin;
    let body = serde_json::json!({"path": "Replicated"});
    let first = s.post_idem(a, "/v1/teams", "retry-1", &body).await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    let again = reqwest::Client::new()
        .post(format!("{}/v1/teams", second.url()))
        .bearer_auth(a)
        .header("idempotency-key", "retry-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status().as_u16(), 201, "the first answer, replayed");
    let replayed: serde_json::Value = again.json().await.unwrap();
    assert_eq!(replayed["version"], first.body["version"]);
    let teams = s.get(a, "/v1/teams").await;
    let n = teams.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["path"] == "Replicated")
        .count();
    assert_eq!(n, 1, "created once");
    second.shutdown().await;
    s.stop().await;
}

/// `/readyz` says 503 while the database does not answer (connections refused and the
/// pool's cut), `/healthz` stays 200, and both are 200 again once it answers.
#[tokio::test]
#[cfg_attr(
    not(roster_test_postgres),
    ignore = "needs PostgreSQL: run `. .ci/postgres.sh; roster_pg_start` (sets ROSTER_TEST_POSTGRES), then `cargo test --all-targets`"
)]
async fn readiness_fails_while_the_database_is_down_and_recovers() {
    let Some(s) = server_support::start(Backend::Postgres).await else {
        return;
    };
    let name = s.database.rsplit('/').next().unwrap().to_string();
    let admin = sqlx::PgPool::connect(&std::env::var("ROSTER_TEST_POSTGRES").unwrap())
        .await
        .unwrap();
    let probe = |path: &'static str| {
        let url = format!("{}{path}", s.base);
        async move {
            let r = reqwest::get(url).await.unwrap();
            let status = r.status().as_u16();
            (
                status,
                r.json::<serde_json::Value>().await.unwrap_or_default(),
            )
        }
    };
    assert_eq!(probe("/readyz").await.0, 200);
    // The database goes away: no new connections, the server's own ones cut.
    sqlx::query(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"))
        .execute(&admin)
        .await
        .unwrap();
    sqlx::query(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
    ))
    .execute(&admin)
    .await
    .unwrap();
    let (status, body) = probe("/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["reason"]
            .as_str()
            .unwrap_or("")
            .contains("does not answer"),
        "{body}"
    );
    assert_eq!(probe("/healthz").await.0, 200, "alive while not ready");
    sqlx::query(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
        .execute(&admin)
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (status, body) = probe("/readyz").await;
        if status == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not ready again: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    admin.close().await;
    s.stop().await;
}
