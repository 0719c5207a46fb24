//! Executor tests against a scripted loopback server.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::*;
use crate::model::ObjectId;
use crate::plan::Summary;
use crate::provider::testing::{MockServer, problem};
use crate::provider::{HttpProvider, RetryPolicy};

pub(crate) fn change(kind: Kind, key: &str, action: Action, deps: &[usize]) -> Change {
    Change {
        id: ObjectId::new(kind, key),
        action,
        previously: None,
        version: (action != Action::Create).then_some(3),
        after: (action == Action::Create).then(|| json!({ kind.key_field(): key })),
        patch: (action != Action::Create && action != Action::Delete).then(|| {
            let mut m = Map::new();
            m.insert("description".into(), json!("x"));
            m
        }),
        fields: vec![],
        set_password: None,
        depends_on: deps.to_vec(),
        reason: String::new(),
    }
}

pub(crate) fn plan(changes: Vec<Change>) -> Plan {
    Plan {
        format_version: 1,
        principal: None,
        target: None,
        changes,
        summary: Summary::default(),
        unmanaged: vec![],
        out_of_scope: vec![],
        warnings: vec![],
        partial: None,
        refusals: vec![],
        seats: None,
        group_shares: vec![],
        effects: vec![],
        fingerprint: BTreeMap::from([("portal/p".to_string(), 1)]),
        server_checked: false,
    }
}

fn no_secrets() -> SecretResolver {
    Arc::new(|s: &SecretRef| Err(format!("no secret for {:?}", s.env)))
}

fn provider(server: &MockServer) -> HttpProvider {
    HttpProvider::new(&server.url(), Some("t".into()))
        .unwrap()
        .with_retry(RetryPolicy {
            max_retries: 2,
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
            max_retry_after: Duration::from_millis(10),
        })
}

/// Answers every write with success (the body echoed with version 1).
fn echo() -> Box<crate::provider::testing::Handler> {
    Box::new(|s| {
        if s.path.ends_with(":batch") {
            let req: Value = serde_json::from_str(&s.body).unwrap();
            let n = req["operations"].as_array().unwrap().len();
            let results: Vec<Value> = (0..n).map(|_| json!({"status": 201, "body": {}})).collect();
            return Some((200, vec![], json!({ "results": results }).to_string()));
        }
        match s.method.as_str() {
            "DELETE" => Some((204, vec![], String::new())),
            _ => Some((200, vec![], s.body.clone())),
        }
    })
}

#[tokio::test]
async fn a_failure_skips_its_dependents_transitively_and_the_rest_runs() {
    let server = MockServer::start(
        vec![],
        Some(Box::new(|s| {
            if s.path == "/v1/teams" {
                Some(problem(422, "validation", "Bad team"))
            } else {
                Some((201, vec![], "{}".into()))
            }
        })),
    )
    .await;
    let p = plan(vec![
        change(Kind::Team, "A", Action::Create, &[]),
        change(Kind::Representative, "r@x.example", Action::Create, &[0]),
        change(Kind::Portal, "p", Action::Create, &[]),
        change(Kind::Campaign, "c", Action::Create, &[1]),
    ]);
    let report = execute(
        &p,
        &provider(&server),
        &ApplyOptions::new(no_secrets()),
        Progress::Quiet,
    )
    .await;
    let status: Vec<&str> = report.changes.iter().map(|c| c.status).collect();
    assert_eq!(status, ["failed", "skipped", "done", "skipped"]);
    assert_eq!(report.changes[0].code.as_deref(), Some("validation"));
    assert!(
        report.changes[3]
            .error
            .as_deref()
            .unwrap()
            .contains("depends on create representative/r@x.example"),
        "{:?}",
        report.changes[3]
    );
    let paths: Vec<String> = server.seen().into_iter().map(|s| s.path).collect();
    assert_eq!(paths.len(), 2, "{paths:?}");
    assert!(!report.is_success());
    let text = report.text(false);
    assert!(
        text.contains("failed  create team/A: validation (422): bad team"),
        "{text}"
    );
    assert!(
        text.contains("1 done, 1 failed, 2 skipped (of 4)"),
        "{text}"
    );
    // A run under a second reads in milliseconds, a longer one in seconds.
    let mut r = report.clone();
    r.elapsed_ms = 48;
    assert!(
        r.text(false).contains(" in 48 ms; fix"),
        "{}",
        r.text(false)
    );
    r.elapsed_ms = 2345;
    assert!(r.text(false).contains(" in 2.3s; fix"), "{}", r.text(false));
}

#[tokio::test]
async fn a_dependent_starts_only_after_its_dependency_succeeded() {
    let server = MockServer::start(vec![], Some(echo())).await;
    let p = plan(vec![
        change(Kind::Campaign, "c", Action::Create, &[1]),
        change(Kind::Team, "A", Action::Create, &[]),
    ]);
    let report = execute(
        &p,
        &provider(&server),
        &ApplyOptions::new(no_secrets()),
        Progress::Quiet,
    )
    .await;
    assert!(report.is_success());
    let paths: Vec<String> = server.seen().into_iter().map(|s| s.path).collect();
    assert_eq!(paths, ["/v1/teams", "/v1/campaigns"]);
}

#[tokio::test]
async fn many_ready_changes_of_one_kind_go_as_one_batch() {
    let server = MockServer::start(vec![], Some(echo())).await;
    let changes: Vec<Change> = (0..20)
        .map(|i| {
            change(
                Kind::Representative,
                &format!("r{i}@x.example"),
                Action::Create,
                &[],
            )
        })
        .chain(std::iter::once(change(
            Kind::Portal,
            "p",
            Action::Update,
            &[],
        )))
        .collect();
    let report = execute(
        &plan(changes),
        &provider(&server),
        &ApplyOptions::new(no_secrets()),
        Progress::Quiet,
    )
    .await;
    assert!(report.is_success(), "{}", report.text(false));
    assert_eq!(report.summary.done, 21);
    let seen = server.seen();
    assert_eq!(seen.len(), 2, "one batch and one patch");
    let batch = seen
        .iter()
        .find(|s| s.path == "/v1/representatives:batch")
        .unwrap();
    let body: Value = serde_json::from_str(&batch.body).unwrap();
    let ops = body["operations"].as_array().unwrap();
    assert_eq!(ops.len(), 20);
    let keys: std::collections::BTreeSet<&str> = ops
        .iter()
        .map(|o| o["idempotency_key"].as_str().unwrap())
        .collect();
    assert_eq!(keys.len(), 20, "every create has its own idempotency key");
    let patch = seen.iter().find(|s| s.method == "PATCH").unwrap();
    assert_eq!(patch.path, "/v1/portals/p");
    assert_eq!(patch.if_match.as_deref(), Some("\"3\""));
}

#[tokio::test]
async fn passwords_are_resolved_at_send_time_and_never_reported() {
    let server = MockServer::start(vec![], Some(echo())).await;
    let mut ok = change(Kind::Manager, "m@x.example", Action::Create, &[]);
    ok.after = Some(json!({"login": "m@x.example", "password": {"env": "M_PW", "rotation": "r1"}}));
    ok.set_password = Some(SecretRef {
        env: Some("M_PW".into()),
        rotation: Some("r1".into()),
        ..SecretRef::default()
    });
    let mut missing = change(Kind::Manager, "n@x.example", Action::Create, &[]);
    missing.set_password = Some(SecretRef {
        env: Some("N_PW".into()),
        ..SecretRef::default()
    });
    let resolver: SecretResolver = Arc::new(|s: &SecretRef| match s.env.as_deref() {
        Some("M_PW") => Ok(SecretValue("hunter2-secret".into())),
        Some(v) => Err(format!("environment variable {v} is not set")),
        None => Err("no reference".into()),
    });
    let report = execute(
        &plan(vec![ok, missing]),
        &provider(&server),
        &ApplyOptions::new(resolver),
        Progress::Quiet,
    )
    .await;
    let seen = server.seen();
    assert_eq!(seen.len(), 1, "nothing is sent for the unreadable password");
    let body: Value = serde_json::from_str(&seen[0].body).unwrap();
    assert_eq!(
        body["password"],
        json!({"value": "hunter2-secret", "rotation": "r1"})
    );
    assert_eq!(report.changes[1].status, "failed");
    let err = report.changes[1].error.as_deref().unwrap();
    assert!(
        err.contains("manager/n@x.example") && err.contains("N_PW is not set"),
        "{err}"
    );
    assert!(!report.json().contains("hunter2"));
    assert!(!report.text(false).contains("hunter2"));
}

#[tokio::test]
async fn renames_patch_the_old_key_and_representative_deletes_purge() {
    let server = MockServer::start(vec![], Some(echo())).await;
    let mut rename = change(Kind::Representative, "new@x.example", Action::Rename, &[]);
    rename.previously = Some("old@x.example".into());
    rename.patch = Some(
        json!({"login": "new@x.example"})
            .as_object()
            .unwrap()
            .clone(),
    );
    let delete = change(Kind::Representative, "gone@x.example", Action::Delete, &[]);
    let report = execute(
        &plan(vec![rename, delete]),
        &provider(&server),
        &ApplyOptions {
            parallelism: 1,
            ..ApplyOptions::new(no_secrets())
        },
        Progress::Quiet,
    )
    .await;
    assert!(report.is_success(), "{}", report.text(false));
    let seen = server.seen();
    assert_eq!(seen[0].method, "PATCH");
    assert_eq!(seen[0].path, "/v1/representatives/old%40x.example");
    assert_eq!(seen[1].method, "DELETE");
    assert_eq!(
        seen[1].path,
        "/v1/representatives/gone%40x.example?purge_statistics=true"
    );
    assert_eq!(seen[1].if_match.as_deref(), Some("\"3\""));
}

#[test]
fn idempotency_keys_are_deterministic_per_plan_change_and_body() {
    let p1 = plan(vec![]);
    let mut p2 = plan(vec![]);
    p2.fingerprint.insert("portal/q".into(), 2);
    let body = json!({"name": "p", "password": {"value": "a", "rotation": "r"}});
    let same_but_value = json!({"name": "p", "password": {"value": "b", "rotation": "r"}});
    let k = |p: &Plan, i, b: &Value| idempotency_key(&plan_key(p), i, b);
    assert_eq!(k(&p1, 0, &body), k(&p1, 0, &body));
    assert_eq!(
        k(&p1, 0, &body),
        k(&p1, 0, &same_but_value),
        "the value is not hashed"
    );
    assert_ne!(k(&p1, 0, &body), k(&p1, 1, &body));
    assert_ne!(k(&p1, 0, &body), k(&p2, 0, &body));
    assert!(k(&p1, 0, &body).starts_with("roster-"));
}

#[tokio::test]
async fn a_dependency_cycle_is_reported_not_hung() {
    let server = MockServer::start(vec![], Some(echo())).await;
    let p = plan(vec![
        change(Kind::Team, "A", Action::Create, &[1]),
        change(Kind::Team, "B", Action::Create, &[0]),
        change(Kind::Team, "C", Action::Create, &[7]),
    ]);
    let report = tokio::time::timeout(
        Duration::from_secs(5),
        execute(
            &p,
            &provider(&server),
            &ApplyOptions::new(no_secrets()),
            Progress::Quiet,
        ),
    )
    .await
    .expect("no hang");
    let status: Vec<&str> = report.changes.iter().map(|c| c.status).collect();
    assert_eq!(status, ["skipped", "skipped", "failed"]);
    assert!(server.seen().is_empty());
}

#[tokio::test]
async fn a_large_group_is_spread_over_parallel_batches_of_at_most_batch_max() {
    let server = MockServer::start(vec![], Some(echo())).await;
    let changes: Vec<Change> = (0..100)
        .map(|i| change(Kind::Portal, &format!("p{i:03}"), Action::Create, &[]))
        .collect();
    let opts = ApplyOptions {
        parallelism: 4,
        batch_min: 16,
        batch_max: 20,
        ..ApplyOptions::new(no_secrets())
    };
    let report = execute(&plan(changes), &provider(&server), &opts, Progress::Quiet).await;
    assert!(report.is_success(), "{}", report.text(false));
    let sizes: Vec<usize> = server
        .seen()
        .iter()
        .map(|s| {
            assert_eq!(s.path, "/v1/portals:batch");
            let v: Value = serde_json::from_str(&s.body).unwrap();
            v["operations"].as_array().unwrap().len()
        })
        .collect();
    assert_eq!(sizes.iter().sum::<usize>(), 100);
    assert!(sizes.iter().all(|&n| (16..=20).contains(&n)), "{sizes:?}");
}

#[tokio::test]
async fn an_update_of_an_object_created_earlier_in_the_plan_uses_the_created_version() {
    let server = MockServer::start(
        vec![],
        Some(Box::new(|s| match s.method.as_str() {
            "POST" => Some((201, vec![], r#"{"path":"Europe","version":1}"#.into())),
            _ => Some((200, vec![], r#"{"path":"Europe","version":2}"#.into())),
        })),
    )
    .await;
    let create = change(Kind::Team, "Europe", Action::Create, &[]);
    let mut update = change(Kind::Team, "Europe", Action::Update, &[0]);
    update.version = None;
    let mut again = change(Kind::Team, "Europe", Action::Update, &[1]);
    again.version = Some(1);
    let report = execute(
        &plan(vec![create, update, again]),
        &provider(&server),
        &ApplyOptions::new(no_secrets()),
        Progress::Quiet,
    )
    .await;
    assert!(report.is_success(), "{}", report.text(false));
    let if_match: Vec<Option<String>> = server.seen().into_iter().map(|s| s.if_match).collect();
    assert_eq!(
        if_match,
        [None, Some("\"1\"".into()), Some("\"2\"".into())],
        "each write chains on the version the previous one returned"
    );
}

#[tokio::test]
async fn batches_that_set_passwords_stay_small() {
    let server = MockServer::start(vec![], Some(echo())).await;
    let changes: Vec<Change> = (0..120)
        .map(|i| {
            let mut c = change(
                Kind::Manager,
                &format!("m{i:03}@x.example"),
                Action::Create,
                &[],
            );
            c.set_password = Some(SecretRef {
                env: Some("PW".into()),
                ..SecretRef::default()
            });
            c
        })
        .collect();
    let resolver: SecretResolver = Arc::new(|_| Ok(SecretValue("pw".into())));
    let opts = ApplyOptions {
        parallelism: 1,
        ..ApplyOptions::new(resolver)
    };
    let report = execute(&plan(changes), &provider(&server), &opts, Progress::Quiet).await;
    assert!(report.is_success(), "{}", report.text(false));
    let sizes: Vec<usize> = server
        .seen()
        .iter()
        .map(|s| {
            let v: Value = serde_json::from_str(&s.body).unwrap();
            v["operations"].as_array().map_or(1, Vec::len)
        })
        .collect();
    assert_eq!(sizes.iter().sum::<usize>(), 120);
    assert!(
        sizes.iter().all(|&n| n <= BATCH_MAX_WITH_PASSWORDS),
        "{sizes:?}"
    );
}
