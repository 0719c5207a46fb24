//! The live system over HTTP (reqwest against `roster::server::start` on 127.0.0.1:0):
//! every resource, every error path, the authorization matrix, concurrency, idempotency,
//! batches and bad input — on SQLite and, when ROSTER_TEST_POSTGRES is set (see build.rs,
//! .ci/postgres.sh and .ci/run), on PostgreSQL too.

use crate::support::server as server_support;

use reqwest::Method;
use serde_json::{Value, json};
use server_support::{Backend, Srv};

const PARIS: &str = "/v1/teams/Europe%2FParis";

fn rep(login: &str, team: &str) -> Value {
    json!({"login": login, "email": login, "first_name": "Ann", "last_name": "Lee", "team": team})
}

/// A small organization: portal `web`; teams Europe, Europe/Paris, Asia; reps in Paris
/// and Asia; managers marie (Europe, every right), bob (Asia, every right), nora
/// (Europe, no rights). Returns (marie, bob, nora) tokens.
async fn org(s: &Srv) -> (String, String, String) {
    let a = &s.admin;
    s.create(
        a,
        "portals",
        json!({"name": "web", "features": ["share_my_screen", "multisession"]}),
    )
    .await;
    s.create(a, "teams", json!({"path": "Europe"})).await;
    s.create(
        a,
        "teams",
        json!({"path": "Europe/Paris", "max_active_logins": 5}),
    )
    .await;
    s.create(a, "teams", json!({"path": "Asia"})).await;
    s.create(
        a,
        "representatives",
        json!({"login": "jdoe@acme.example", "email": "jdoe@acme.example", "first_name": "John", "last_name": "Doe",
               "team": "Europe/Paris", "features": ["admin_center_access", "reports"], "multisession": 2, "portals": ["web"]}),
    )
    .await;
    s.create(a, "representatives", rep("kim@acme.example", "Asia"))
        .await;
    let all_rights = json!([
        "manage_subteams",
        "manage_representatives",
        "edit_rep_name_login",
        "edit_rep_password",
        "session_replay",
        "manage_managers",
        "schedule_reports"
    ]);
    s.create(
        a,
        "managers",
        json!({"login": "marie@acme.example", "email": "marie@acme.example", "name": "Marie", "teams": ["Europe"],
               "team_rights": all_rights, "grantable": ["admin_center_access", "reports", "multisession"],
               "password": {"value": "s3cret-marie", "rotation": "2026-11"}}),
    )
    .await;
    s.create(
        a,
        "managers",
        json!({"login": "bob@acme.example", "email": "bob@acme.example", "name": "Bob", "teams": ["Asia"],
               "team_rights": all_rights, "grantable": ["admin_center_access", "reports", "multisession"]}),
    )
    .await;
    s.create(
        a,
        "managers",
        json!({"login": "nora@acme.example", "email": "nora@acme.example", "name": "Nora", "teams": ["Europe"]}),
    )
    .await;
    (
        s.manager_token("marie@acme.example").await,
        s.manager_token("bob@acme.example").await,
        s.manager_token("Nora@Acme.Example").await,
    )
}

async fn every_resource(s: &Srv) {
    let a = &s.admin;
    org(s).await;
    // whoami, catalog, account, openapi
    let w = s.get(a, "/v1/whoami").await;
    assert_eq!(
        w.body,
        json!({"role": "administrator", "login": "admin@localhost", "capabilities": ["plan-check", "change-feed"]})
    );
    let c = s.get(a, "/v1/catalog").await;
    assert_eq!(c.status, 200);
    assert_eq!(c.body["grantable_features"].as_array().unwrap().len(), 10);
    let acc = s.get(a, "/v1/account").await;
    assert_eq!(acc.body["seats"], 1000);
    assert_eq!(acc.etag().as_deref(), Some("\"1\""));
    let acc2 = s
        .patch(a, "/v1/account", Some(1), &json!({"name": "acme"}))
        .await;
    assert_eq!(
        (acc2.status, acc2.body["name"].clone(), acc2.version()),
        (200, json!("acme"), 2)
    );
    let oa = s.call(Method::GET, "/openapi.json", None, &[], None).await;
    assert_eq!(oa.body["openapi"], "3.1.0");

    // every collection: get, list, patch, delete
    let r = s.get(a, PARIS).await;
    assert_eq!(
        (r.status, r.body["path"].clone(), r.etag()),
        (200, json!("Europe/Paris"), Some("\"1\"".into()))
    );
    let r = s.get(a, "/v1/teams/Europe/Paris").await;
    assert_eq!(r.status, 200, "an unencoded slash works too");
    for (coll, n) in [
        ("portals", 1),
        ("teams", 3),
        ("administrators", 1),
        ("managers", 3),
        ("representatives", 2),
    ] {
        let l = s.get(a, &format!("/v1/{coll}")).await;
        assert_eq!(
            l.body["items"].as_array().unwrap().len(),
            n,
            "{coll}: {}",
            l.body
        );
        assert_eq!(l.body["next_cursor"], Value::Null);
    }
    let p = s
        .patch(
            a,
            "/v1/portals/web",
            Some(1),
            &json!({"features": ["share_my_screen"]}),
        )
        .await;
    assert_eq!((p.status, p.version()), (200, 2));
    assert_eq!(p.body["features"], json!(["share_my_screen"]));

    let adm = s
        .create(
            a,
            "administrators",
            json!({"login": "Root@Acme.Example", "email": "root@acme.example", "name": "Root"}),
        )
        .await;
    assert_eq!(
        adm["login"], "root@acme.example",
        "logins are stored lower case"
    );
    let r = s
        .patch(
            a,
            "/v1/administrators/ROOT@acme.example",
            Some(1),
            &json!({"name": "Root Two"}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        s.delete(a, "/v1/administrators/root@acme.example", Some(2))
            .await
            .status,
        204
    );
    assert_eq!(
        s.get(a, "/v1/administrators/root@acme.example")
            .await
            .status,
        404
    );

    let camp = s.create(a, "campaigns", json!({"name": "winter", "representatives": ["JDOE@acme.example"], "teams": ["Europe"]})).await;
    assert_eq!(camp["representatives"], json!(["jdoe@acme.example"]));
    let g = s.create(a, "contact-groups", json!({"name": "key accounts", "shared_with": {"jdoe@acme.example": "connect", "marie@acme.example": "manage"}})).await;
    assert_eq!(g["version"], 1);
    let g2 = s
        .patch(
            a,
            "/v1/contact-groups/key%20accounts",
            Some(1),
            &json!({"shared_with": {"marie@acme.example": null}}),
        )
        .await;
    assert_eq!(
        g2.body["shared_with"],
        json!({"jdoe@acme.example": "connect"})
    );
    assert_eq!(
        s.delete(a, "/v1/contact-groups/key%20accounts", Some(2))
            .await
            .status,
        204
    );
    assert_eq!(
        s.delete(a, "/v1/campaigns/winter", Some(1)).await.status,
        204
    );

    // manager password: stored hashed, read back as rotation only
    let m = s.get(a, "/v1/managers/marie@acme.example").await;
    assert_eq!(m.body["password"], json!({"rotation": "2026-11"}));
    assert!(!m.body.to_string().contains("s3cret"));

    // deactivate then delete a representative
    let r = s
        .patch(
            a,
            "/v1/representatives/kim@acme.example",
            Some(1),
            &json!({"status": "inactive"}),
        )
        .await;
    assert_eq!(r.body["status"], "inactive");
    let d = s
        .delete(a, "/v1/representatives/kim@acme.example", Some(2))
        .await;
    assert_eq!((d.status, d.code()), (409, "statistics-would-be-lost"));
    let d = s
        .delete(
            a,
            "/v1/representatives/kim@acme.example?purge_statistics=true",
            Some(2),
        )
        .await;
    assert_eq!(d.status, 204);

    // audit: every write, secrets redacted
    let au = s.get(a, "/v1/audit?limit=1000").await;
    let items = au.body["items"].as_array().unwrap();
    assert!(items.len() >= 15, "{} audit records", items.len());
    assert!(!au.body.to_string().contains("s3cret-marie"));
    let del = items
        .iter()
        .find(|i| i["action"] == "delete" && i["key"] == "kim@acme.example")
        .unwrap();
    assert_eq!(del["actor"], "admin@localhost");
    assert_eq!(del["before"]["status"], "inactive");
    assert_eq!(del["after"], Value::Null);
    let paged = s.get(a, "/v1/audit?limit=2").await;
    let next = paged.body["next_cursor"].as_str().unwrap();
    let p2 = s.get(a, &format!("/v1/audit?limit=2&cursor={next}")).await;
    assert!(p2.body["items"][0]["id"].as_i64() > paged.body["items"][1]["id"].as_i64());
}
both_backends!(every_resource);

/// List pages are built as text from the stored bodies (in the database, a page at a
/// time); a body that could hold a `version` of its own goes row by row. Either way every
/// item is the object as `GET` returns it, pages follow in key order, and the cursor
/// stops exactly at the end.
async fn list_pages_are_the_objects_as_get_returns_them(s: &Srv) {
    let a = &s.admin;
    org(s).await;
    for (i, first) in ["version", "Zoë \"quoted\"", "plain", "x", "version\"", "y"]
        .into_iter()
        .enumerate()
    {
        let mut r = rep(&format!("p{i}@acme.example"), "Asia");
        r["first_name"] = json!(first);
        assert_eq!(s.post(a, "/v1/representatives", &r).await.status, 201);
    }
    let patched = s
        .patch(
            a,
            "/v1/representatives/p3@acme.example",
            Some(1),
            &json!({"language": "pl"}),
        )
        .await;
    assert_eq!(patched.version(), 2);
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = s
            .get(a, &format!("/v1/representatives?limit=3&cursor={cursor}"))
            .await;
        assert_eq!(page.status, 200, "{}", page.body);
        let items = page.body["items"].as_array().unwrap().clone();
        assert!(items.len() <= 3);
        for item in items {
            let key = item["login"].as_str().unwrap().to_string();
            let one = s.get(a, &format!("/v1/representatives/{key}")).await;
            assert_eq!(item, one.body, "{key}");
            assert_eq!(item["version"].as_i64(), one.version().into());
            seen.push(key);
        }
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => break,
        }
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(seen, sorted, "pages follow in key order, each object once");
    assert_eq!(seen.len(), 8, "{seen:?}");
    // 8 objects in pages of 4: the second page is the last and says so.
    let first = s.get(a, "/v1/representatives?limit=4").await;
    let next = first.body["next_cursor"].as_str().unwrap().to_string();
    let last = s
        .get(a, &format!("/v1/representatives?limit=4&cursor={next}"))
        .await;
    assert_eq!(last.body["items"].as_array().unwrap().len(), 4);
    assert_eq!(last.body["next_cursor"], Value::Null);
}
both_backends!(list_pages_are_the_objects_as_get_returns_them);

/// A PATCH that changes nothing keeps the version and writes no audit record; one that
/// changes something bumps it once.
async fn a_patch_that_changes_nothing_writes_nothing(s: &Srv) {
    let a = &s.admin;
    org(s).await;
    let path = "/v1/representatives/kim@acme.example";
    let audited = |body: &Value| body["items"].as_array().unwrap().len();
    let before = s.get(a, "/v1/audit?limit=1000").await;
    let v = s.get(a, path).await.version();
    for patch in [json!({}), json!({"first_name": "Ann"})] {
        let r = s.patch(a, path, Some(v), &patch).await;
        assert_eq!((r.status, r.version()), (200, v), "{patch}");
        assert_eq!(r.etag(), Some(format!("\"{v}\"")));
    }
    let after = s.get(a, "/v1/audit?limit=1000").await;
    assert_eq!(audited(&after.body), audited(&before.body));
    let r = s
        .patch(a, path, Some(v), &json!({"first_name": "Anna"}))
        .await;
    assert_eq!((r.status, r.version()), (200, v + 1));
    let after = s.get(a, "/v1/audit?limit=1000").await;
    assert_eq!(audited(&after.body), audited(&before.body) + 1);
    // A stale version is still refused, change or not.
    let r = s.patch(a, path, Some(v), &json!({})).await;
    assert_eq!(r.status, 412);
}
both_backends!(a_patch_that_changes_nothing_writes_nothing);

async fn usernames_are_unique_ignoring_case(s: &Srv) {
    let a = &s.admin;
    s.create(a, "teams", json!({"path": "T"})).await;
    let named = |login: &str, username: &str| {
        let mut r = rep(login, "T");
        r["username"] = json!(username);
        r
    };
    s.create(a, "representatives", named("ann@acme.example", "alee"))
        .await;
    let r = s
        .post(a, "/v1/representatives", &named("bob@acme.example", "ALee"))
        .await;
    assert_eq!((r.status, r.code()), (409, "username-taken"), "{}", r.body);
    assert_eq!(r.body["pointer"], "/username");
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("ann@acme.example"),
        "{}",
        r.body
    );
    s.create(a, "representatives", named("bob@acme.example", "blee"))
        .await;
    let bob = "/v1/representatives/bob@acme.example";
    let r = s.patch(a, bob, Some(1), &json!({"username": "alee"})).await;
    assert_eq!((r.status, r.code()), (409, "username-taken"));
    // The shape of a user name is the loader's (model::rules::username_problem).
    for bad in ["", "b lee", "b\u{7}lee"] {
        let r = s.patch(a, bob, Some(1), &json!({ "username": bad })).await;
        assert_eq!(
            (r.status, r.code()),
            (422, "validation"),
            "{bad:?}: {}",
            r.body
        );
        assert_eq!(r.body["errors"][0]["pointer"], "/username", "{}", r.body);
    }
    // Changing case, or anything else, of one's own name is no conflict.
    let ann = "/v1/representatives/ann@acme.example";
    let r = s.patch(a, ann, Some(1), &json!({"username": "ALee"})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = s.patch(a, ann, Some(2), &json!({"language": "de"})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // In one batch: ann gives up her name, then bob takes it; a name given up by a
    // deleted representative is free again, a name taken earlier in the batch is not.
    let ops = json!({"operations": [
        {"op": "update", "key": "ann@acme.example", "if_match": 3, "body": {"username": "ann2"}},
        {"op": "update", "key": "bob@acme.example", "if_match": 1, "body": {"username": "alee"}},
        {"op": "create", "body": named("cy@acme.example", "ann2")},
        {"op": "delete", "key": "ann@acme.example", "if_match": 4, "purge_statistics": true},
        {"op": "create", "body": named("cy@acme.example", "ann2")},
        {"op": "create", "body": named("dee@acme.example", "blee")},
        {"op": "create", "body": named("eve@acme.example", "blee")}
    ]});
    let r = s.post(a, "/v1/representatives:batch", &ops).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let results = r.body["results"].as_array().unwrap();
    let st: Vec<u64> = results
        .iter()
        .map(|x| x["status"].as_u64().unwrap())
        .collect();
    assert_eq!(st, vec![200, 200, 409, 204, 201, 201, 409], "{}", r.body);
    assert_eq!(results[2]["body"]["code"], "username-taken");
    assert_eq!(results[6]["body"]["code"], "username-taken");
    // Created without a user name: the console proposes the default one (Ann Lee:
    // `alee`), numbered past those held — here by bob, then by fay herself in the batch.
    let fay = s
        .create(a, "representatives", rep("fay@acme.example", "T"))
        .await;
    assert_eq!(fay["username"], "alee2");
    let ops = json!({"operations": [
        {"op": "create", "body": rep("gus@acme.example", "T")},
        {"op": "create", "body": rep("hal@acme.example", "T")}
    ]});
    let r = s.post(a, "/v1/representatives:batch", &ops).await;
    let names: Vec<&Value> = r.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| &x["body"]["username"])
        .collect();
    assert_eq!(names, [&json!("alee3"), &json!("alee4")], "{}", r.body);
    // An explicit null asks for none (roster writes the name in a later update).
    let mut none = rep("ida@acme.example", "T");
    none["username"] = Value::Null;
    let ida = s.create(a, "representatives", none).await;
    assert!(ida.get("username").is_none(), "{ida}");
}
both_backends!(usernames_are_unique_ignoring_case);

async fn a_taken_username_names_its_holder_only_within_scope(s: &Srv) {
    let a = &s.admin;
    let (marie, bob, _) = org(s).await;
    let r = s
        .patch(
            a,
            "/v1/representatives/kim@acme.example",
            Some(1),
            &json!({"username": "kim"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let mut body = rep("new@acme.example", "Europe/Paris");
    body["username"] = json!("KIM");
    // marie (Europe) may not learn who holds it in Asia …
    let r = s.post(&marie, "/v1/representatives", &body).await;
    assert_eq!((r.status, r.code()), (409, "username-taken"), "{}", r.body);
    let detail = r.body["detail"].as_str().unwrap();
    assert!(!detail.contains("kim@acme.example"), "{detail}");
    assert!(detail.contains("outside this token's teams"), "{detail}");
    // … bob (Asia) may.
    body["team"] = json!("Asia");
    let r = s.post(&bob, "/v1/representatives", &body).await;
    assert_eq!((r.status, r.code()), (409, "username-taken"), "{}", r.body);
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("kim@acme.example")
    );
}
both_backends!(a_taken_username_names_its_holder_only_within_scope);

async fn error_paths(s: &Srv) {
    let a = &s.admin;
    let (marie, _, _) = org(s).await;
    // 400
    let r = s
        .call(
            Method::POST,
            "/v1/portals",
            Some(a),
            &[],
            Some(b"{\"name\":".to_vec()),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "invalid-json"));
    assert_eq!(r.headers["content-type"], "application/problem+json");
    let r = s.get(a, "/v1/representatives?limit=100000").await;
    assert_eq!((r.status, r.code()), (400, "bad-request"));
    let r = s.get(a, "/v1/representatives?limit=0").await;
    assert_eq!(r.status, 400);
    let r = s.get(a, "/v1/representatives?cursor=%%%").await;
    assert_eq!(r.status, 400);
    // 401
    let r = s.call(Method::GET, "/v1/teams", None, &[], None).await;
    assert_eq!((r.status, r.code()), (401, "unauthorized"));
    let r = s.get("rst_bogus", "/v1/teams").await;
    assert_eq!(r.status, 401);
    // 403
    let r = s.post(&marie, "/v1/portals", &json!({"name": "x"})).await;
    assert_eq!((r.status, r.code()), (403, "forbidden"));
    let r = s.get(&marie, "/v1/audit").await;
    assert_eq!(r.status, 403);
    // 404
    assert_eq!(s.get(a, "/v1/teams/Nowhere").await.code(), "not-found");
    assert_eq!(s.get(a, "/v1/widgets").await.status, 404);
    assert_eq!(s.get(a, "/nothing").await.status, 404);
    assert_eq!(
        s.get(&marie, "/v1/representatives/kim@acme.example")
            .await
            .status,
        404,
        "out of scope is invisible"
    );
    // 405
    let r = s.call(Method::PUT, "/v1/teams", Some(a), &[], None).await;
    assert_eq!((r.status, r.code()), (405, "method-not-allowed"));
    // 409
    let r = s.post(a, "/v1/teams", &json!({"path": "Asia"})).await;
    assert_eq!((r.status, r.code()), (409, "already-exists"));
    let r = s.delete(a, "/v1/teams/Europe", Some(1)).await;
    assert_eq!((r.status, r.code()), (409, "team-not-empty"));
    let r = s.delete(a, "/v1/portals/web", Some(1)).await;
    assert_eq!((r.status, r.code()), (409, "conflict"));
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("jdoe@acme.example"),
        "{}",
        r.body
    );
    // 412 / 428
    let r = s
        .patch(a, "/v1/teams/Asia", Some(7), &json!({"description": "x"}))
        .await;
    assert_eq!((r.status, r.code()), (412, "precondition-failed"));
    let r = s
        .patch(a, "/v1/teams/Asia", None, &json!({"description": "x"}))
        .await;
    assert_eq!((r.status, r.code()), (428, "precondition-required"));
    let r = s.delete(a, "/v1/teams/Asia", None).await;
    assert_eq!(r.status, 428);
    // 422
    let r = s
        .post(
            a,
            "/v1/representatives",
            &json!({"login": "x@acme.example", "email": "x@acme.example",
        "first_name": "X", "last_name": "Y", "team": "Asia", "features": ["reports"]}),
        )
        .await;
    assert_eq!((r.status, r.code()), (422, "validation"));
    assert_eq!(r.body["errors"][0]["code"], "feature-requires");
    assert_eq!(r.body["errors"][0]["pointer"], "/features/0");
    let r = s
        .post(
            a,
            "/v1/representatives",
            &json!({"login": "x@acme.example", "email": "x@acme.example",
        "first_name": "X", "last_name": "Y", "team": "Mars"}),
        )
        .await;
    assert_eq!(r.body["errors"][0]["code"], "unresolved-reference");
    assert_eq!(r.body["errors"][0]["pointer"], "/team");
    let r = s
        .post(
            a,
            "/v1/teams",
            &json!({"path": "Europe/Lyon", "colour": "red"}),
        )
        .await;
    assert_eq!((r.status, r.code()), (422, "unknown-field"));
    assert_eq!(r.body["pointer"], "/colour");
    // 413
    let big = format!("{{\"name\":\"{}\"}}", "x".repeat(17 * 1024 * 1024));
    let r = s
        .call(
            Method::POST,
            "/v1/portals",
            Some(a),
            &[],
            Some(big.into_bytes()),
        )
        .await;
    assert_eq!((r.status, r.code()), (413, "payload-too-large"));
}
both_backends!(error_paths);

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() {
    let s = server_support::start_with(Backend::Sqlite, |c| c.rate_limit = 3)
        .await
        .unwrap();
    let mut limited = None;
    for _ in 0..20 {
        let r = s.get(&s.admin, "/v1/whoami").await;
        if r.status == 429 {
            limited = Some(r);
            break;
        }
    }
    let r = limited.expect("the 4th request within a second is limited");
    assert_eq!(r.code(), "rate-limited");
    assert!(r.headers.get("retry-after").is_some());
    s.stop().await;
}

/// Each row: (label, method, path, body, expected status for administrator, manager in
/// scope, manager out of scope, manager without the right); no token and a bad token
/// are always 401. Paths use objects created by `org` and the rows run in order.
async fn authorization_matrix(s: &Srv) {
    let (marie, bob, nora) = org(s).await;
    let a = s.admin.clone();
    // Helper objects each actor can act on without interfering.
    struct Row {
        label: &'static str,
        method: Method,
        path: String,
        body: Option<Value>,
        expect: [u16; 4],
    }
    let ops: Vec<Row> = vec![
        Row {
            label: "create portal",
            method: Method::POST,
            path: "/v1/portals".into(),
            body: Some(json!({"name": "p-{who}"})),
            expect: [201, 403, 403, 403],
        },
        Row {
            label: "patch portal",
            method: Method::PATCH,
            path: "/v1/portals/web".into(),
            body: Some(json!({"features": ["share_my_screen", "multisession"]})),
            expect: [200, 403, 403, 403],
        },
        Row {
            label: "create administrator",
            method: Method::POST,
            path: "/v1/administrators".into(),
            body: Some(
                json!({"login": "adm-{who}@acme.example", "email": "a@acme.example", "name": "A"}),
            ),
            expect: [201, 403, 403, 403],
        },
        Row {
            label: "create team",
            method: Method::POST,
            path: "/v1/teams".into(),
            body: Some(json!({"path": "Europe/T-{who}"})),
            expect: [201, 201, 403, 403],
        },
        Row {
            label: "patch team",
            method: Method::PATCH,
            path: PARIS.into(),
            body: Some(json!({"description": "d-{who}"})),
            expect: [200, 200, 403, 403],
        },
        Row {
            label: "create representative",
            method: Method::POST,
            path: "/v1/representatives".into(),
            body: Some(rep("r-{who}@acme.example", "Europe/Paris")),
            expect: [201, 201, 403, 403],
        },
        Row {
            label: "patch representative",
            method: Method::PATCH,
            path: "/v1/representatives/jdoe@acme.example".into(),
            body: Some(json!({"language": "fr"})),
            expect: [200, 200, 403, 200],
        },
        Row {
            label: "grant feature",
            method: Method::PATCH,
            path: "/v1/representatives/jdoe@acme.example".into(),
            body: Some(json!({"features": ["admin_center_access", "reports", "share_my_screen"]})),
            expect: [200, 403, 403, 403],
        },
        Row {
            label: "create manager",
            method: Method::POST,
            path: "/v1/managers".into(),
            body: Some(
                json!({"login": "m-{who}@acme.example", "email": "m@acme.example", "name": "M", "teams": ["Europe/Paris"], "team_rights": ["manage_representatives"]}),
            ),
            expect: [201, 201, 403, 403],
        },
        Row {
            label: "create campaign",
            method: Method::POST,
            path: "/v1/campaigns".into(),
            body: Some(json!({"name": "c-{who}", "representatives": ["jdoe@acme.example"]})),
            expect: [201, 201, 403, 403],
        },
        Row {
            label: "create contact group",
            method: Method::POST,
            path: "/v1/contact-groups".into(),
            body: Some(json!({"name": "g-{who}", "shared_with": {"jdoe@acme.example": "view"}})),
            expect: [201, 201, 403, 403],
        },
        Row {
            label: "patch account",
            method: Method::PATCH,
            path: "/v1/account".into(),
            body: Some(json!({"name": "n-{who}"})),
            expect: [200, 403, 403, 403],
        },
        // A manager may create tokens for itself only.
        Row {
            label: "create token",
            method: Method::POST,
            path: "/v1/tokens".into(),
            body: Some(json!({"manager": "nora@acme.example"})),
            expect: [201, 403, 403, 201],
        },
        Row {
            label: "delete team",
            method: Method::DELETE,
            path: "/v1/teams/Europe%2FT-{who}".into(),
            body: None,
            expect: [204, 204, 403, 403],
        },
    ];
    let actors = [
        ("admin", a.as_str()),
        ("marie", marie.as_str()),
        ("bob", bob.as_str()),
        ("nora", nora.as_str()),
    ];
    for row in &ops {
        // No token and a bad token: 401 before anything else.
        for token in [None, Some("rst_not-a-token")] {
            let path = row.path.replace("{who}", "anon");
            let body = row
                .body
                .as_ref()
                .map(|b| b.to_string().replace("{who}", "anon").into_bytes());
            let r = s
                .call(
                    row.method.clone(),
                    &path,
                    token,
                    &[("if-match", "\"1\"".into())],
                    body,
                )
                .await;
            assert_eq!(
                r.status, 401,
                "{} with token {token:?}: {}",
                row.label, r.body
            );
        }
        for (i, (who, token)) in actors.iter().enumerate() {
            // The team to delete is the one this actor created (or, for actors that
            // could not create one, one the administrator created for them).
            let path = row.path.replace("{who}", who);
            if row.label == "delete team" && row.expect[i] != 204 {
                s.create(&a, "teams", json!({"path": format!("Europe/T-{who}")}))
                    .await;
            }
            if row.label == "grant feature" {
                // Start each attempt from the feature being off.
                let cur = s.get(&a, &path).await.version();
                let r = s
                    .patch(
                        &a,
                        &path,
                        Some(cur),
                        &json!({"features": ["admin_center_access", "reports"]}),
                    )
                    .await;
                assert_eq!(r.status, 200);
            }
            let mut headers = vec![];
            if row.method != Method::POST {
                let current = if path == "/v1/account" {
                    s.get(&a, "/v1/account").await.version()
                } else {
                    s.get(&a, &path).await.version()
                };
                headers.push(("if-match", format!("\"{current}\"")));
            }
            let body = row
                .body
                .as_ref()
                .map(|b| b.to_string().replace("{who}", who).into_bytes());
            let r = s
                .call(row.method.clone(), &path, Some(token), &headers, body)
                .await;
            assert_eq!(
                r.status, row.expect[i],
                "{} as {who}: {}",
                row.label, r.body
            );
            if row.label == "grant feature" && *who == "marie" {
                assert_eq!(r.code(), "escalation");
            }
        }
    }
    // Rule 6 on managers: more rights than one's own is an escalation.
    let r = s
        .post(
            &marie,
            "/v1/managers",
            &json!({"login": "z@acme.example", "email": "z@acme.example", "name": "Z",
        "teams": ["Europe"], "team_rights": ["monthly_reports"]}),
        )
        .await;
    assert_eq!((r.status, r.code()), (403, "escalation"));
    let r = s
        .post(
            &marie,
            "/v1/managers",
            &json!({"login": "z@acme.example", "email": "z@acme.example", "name": "Z",
        "teams": ["Asia"]}),
        )
        .await;
    assert_eq!((r.status, r.code()), (403, "escalation"));
    // Scoped reads.
    let l = s.get(&marie, "/v1/representatives").await;
    let logins: Vec<&str> = l.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["login"].as_str().unwrap())
        .collect();
    assert!(
        logins.contains(&"jdoe@acme.example") && !logins.contains(&"kim@acme.example"),
        "{logins:?}"
    );
    let l = s.get(&marie, "/v1/teams").await;
    assert!(
        l.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["path"].as_str().unwrap().starts_with("Europe"))
    );
    let l = s.get(&marie, "/v1/managers").await;
    let managers: Vec<&str> = l.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["login"].as_str().unwrap())
        .collect();
    assert!(
        managers.contains(&"nora@acme.example") && !managers.contains(&"bob@acme.example"),
        "{managers:?}"
    );
    assert_eq!(s.get(&marie, "/v1/administrators").await.status, 403);
    assert_eq!(
        s.get(&marie, "/v1/whoami").await.body,
        json!({"role": "manager", "login": "marie@acme.example", "capabilities": ["plan-check"]})
    );
}
both_backends!(authorization_matrix);

async fn rules_are_enforced(s: &Srv) {
    let a = &s.admin;
    org(s).await;
    // Rule 2: a manager login equal to a rep's with admin_center_access.
    let r = s
        .post(
            a,
            "/v1/managers",
            &json!({"login": "jdoe@acme.example", "email": "j@acme.example", "name": "J"}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["errors"][0]["code"].clone()),
        (422, json!("login-collision"))
    );
    let r = s
        .post(
            a,
            "/v1/administrators",
            &json!({"login": "marie@acme.example", "email": "m@acme.example", "name": "M"}),
        )
        .await;
    assert_eq!(r.body["errors"][0]["code"], "login-collision");
    let r = s
        .post(
            a,
            "/v1/managers",
            &json!({"login": "not-an-email", "email": "j@acme.example", "name": "J"}),
        )
        .await;
    assert_eq!(r.body["errors"][0]["code"], "manager-login");
    // Rule 3: leader must be in the team or below.
    let r = s
        .patch(
            a,
            "/v1/teams/Asia",
            Some(1),
            &json!({"leader": "jdoe@acme.example"}),
        )
        .await;
    assert_eq!(r.body["errors"][0]["code"], "leader-not-member");
    let r = s
        .patch(
            a,
            "/v1/teams/Europe",
            Some(1),
            &json!({"leader": "jdoe@acme.example"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = s
        .patch(
            a,
            "/v1/representatives/jdoe@acme.example",
            Some(1),
            &json!({"team": "Asia"}),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (409, "conflict"),
        "a leader cannot leave its team"
    );
    let r = s
        .post(a, "/v1/teams", &json!({"path": "Nowhere/Child"}))
        .await;
    assert_eq!(r.body["errors"][0]["code"], "unresolved-reference");
    // Rule 5: seats.
    let acc = s.get(a, "/v1/account").await;
    let r = s
        .patch(a, "/v1/account", Some(acc.version()), &json!({"seats": 1}))
        .await;
    assert_eq!((r.status, r.code()), (409, "seats-exceeded"));
    let r = s
        .patch(a, "/v1/account", Some(acc.version()), &json!({"seats": 2}))
        .await;
    assert_eq!(r.status, 200);
    let r = s
        .post(a, "/v1/representatives", &rep("three@acme.example", "Asia"))
        .await;
    assert_eq!((r.status, r.code()), (409, "seats-exceeded"));
    let r = s
        .post(
            a,
            "/v1/representatives",
            &json!({"login": "three@acme.example", "email": "t@acme.example",
        "first_name": "T", "last_name": "H", "team": "Asia", "status": "inactive"}),
        )
        .await;
    assert_eq!(r.status, 201, "inactive reps take no seat");
    let r = s
        .patch(
            a,
            "/v1/representatives/three@acme.example",
            Some(1),
            &json!({"status": "active"}),
        )
        .await;
    assert_eq!(r.code(), "seats-exceeded");
    // Seed 003: users without support management take no seat, however many; the
    // account counts operators and users.
    for n in 0..3 {
        let mut user = rep(&format!("user{n}@acme.example"), "Asia");
        user["support_management"] = json!(false);
        let r = s.post(a, "/v1/representatives", &user).await;
        assert_eq!(r.status, 201, "a user beyond the seats: {}", r.body);
    }
    let acc = s.get(a, "/v1/account").await;
    assert_eq!(
        (
            &acc.body["seats"],
            &acc.body["operators"],
            &acc.body["users"]
        ),
        (&json!(2), &json!(2), &json!(5)),
        "{}",
        acc.body
    );
    let r = s
        .patch(
            a,
            "/v1/representatives/user0@acme.example",
            Some(1),
            &json!({"support_management": true}),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (409, "seats-exceeded"),
        "an operator beyond the seats"
    );
    // Renames keep identity and follow references.
    s.create(
        a,
        "campaigns",
        json!({"name": "c", "representatives": ["kim@acme.example"], "teams": ["Europe/Paris"]}),
    )
    .await;
    let r = s
        .patch(
            a,
            "/v1/representatives/kim@acme.example",
            Some(1),
            &json!({"login": "kim.new@acme.example"}),
        )
        .await;
    assert_eq!((r.status, r.version()), (200, 2));
    assert_eq!(
        s.get(a, "/v1/campaigns/c").await.body["representatives"],
        json!(["kim.new@acme.example"])
    );
    let r = s
        .patch(a, PARIS, Some(1), &json!({"path": "Europe/Lyon"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        s.get(a, "/v1/representatives/jdoe@acme.example").await.body["team"],
        "Europe/Lyon"
    );
    assert_eq!(
        s.get(a, "/v1/campaigns/c").await.body["teams"],
        json!(["Europe/Lyon"])
    );
    let r = s
        .patch(a, "/v1/teams/Europe", Some(2), &json!({"path": "EU"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(s.get(a, "/v1/teams/EU%2FLyon").await.status, 200);
    assert_eq!(
        s.get(a, "/v1/managers/marie@acme.example").await.body["teams"],
        json!(["EU"])
    );
    assert_eq!(
        s.get(a, "/v1/representatives/jdoe@acme.example").await.body["team"],
        "EU/Lyon"
    );
    let r = s
        .patch(a, "/v1/teams/EU", Some(3), &json!({"path": "EU/Lyon/Loop"}))
        .await;
    assert_eq!(r.status, 422, "a team cannot move under itself");
}
both_backends!(rules_are_enforced);

async fn concurrent_writers_lose_nothing(s: &Srv) {
    let a = &s.admin;
    s.create(a, "teams", json!({"path": "T"})).await;
    // Two writers with the same version: exactly one wins, the other gets 412.
    for round in 1..=5i64 {
        let p1 = json!({"description": format!("one-{round}")});
        let p2 = json!({"description": format!("two-{round}")});
        let (r1, r2) = tokio::join!(
            s.patch(a, "/v1/teams/T", Some(round), &p1),
            s.patch(a, "/v1/teams/T", Some(round), &p2)
        );
        let mut statuses = [r1.status, r2.status];
        statuses.sort();
        assert_eq!(statuses, [200, 412], "round {round}");
        let winner = if r1.status == 200 { &p1 } else { &p2 };
        let now = s.get(a, "/v1/teams/T").await;
        assert_eq!(now.body["description"], winner["description"]);
        assert_eq!(now.version(), round + 1);
    }
    // Pagination under concurrent inserts: every pre-existing item seen exactly once.
    let ops: Vec<Value> = (0..300)
        .map(|i| json!({"op": "create", "body": {"name": format!("p{:04}", i * 2)}}))
        .collect();
    let r = s
        .post(a, "/v1/portals:batch", &json!({"operations": ops}))
        .await;
    assert_eq!(r.status, 200);
    let writer = async {
        for i in 0..60 {
            let r = s
                .post(
                    a,
                    "/v1/portals",
                    &json!({"name": format!("p{:04}", i * 10 + 1)}),
                )
                .await;
            assert_eq!(r.status, 201);
        }
    };
    let reader = async {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/v1/portals?limit=7&cursor={c}"),
                None => "/v1/portals?limit=7".into(),
            };
            let page = s.get(a, &path).await;
            assert_eq!(page.status, 200);
            for it in page.body["items"].as_array().unwrap() {
                seen.push(it["name"].as_str().unwrap().to_string());
            }
            match page.body["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
        }
        seen
    };
    let ((), seen) = tokio::join!(writer, reader);
    for i in 0..300 {
        let name = format!("p{:04}", i * 2);
        assert_eq!(seen.iter().filter(|n| **n == name).count(), 1, "{name}");
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), seen.len(), "no duplicates");
}
both_backends!(concurrent_writers_lose_nothing);

async fn idempotency_and_batches(s: &Srv) {
    let a = &s.admin;
    s.create(a, "teams", json!({"path": "T"})).await;
    let body = rep("idem@acme.example", "T");
    let r1 = s.post_idem(a, "/v1/representatives", "k-1", &body).await;
    assert_eq!(r1.status, 201);
    let r2 = s.post_idem(a, "/v1/representatives", "k-1", &body).await;
    assert_eq!((r2.status, &r2.body), (201, &r1.body), "replayed");
    let other = rep("other@acme.example", "T");
    let r3 = s.post_idem(a, "/v1/representatives", "k-1", &other).await;
    assert_eq!((r3.status, r3.code()), (422, "idempotency-key-reused"));
    let r4 = s.post(a, "/v1/representatives", &body).await;
    assert_eq!(r4.status, 409, "without the key a second create conflicts");

    // Batch: mixed results, one per operation, in order.
    let ops = json!({"operations": [
        {"op": "create", "body": rep("b1@acme.example", "T"), "idempotency_key": "b-1"},
        {"op": "create", "body": rep("b1@acme.example", "T")},
        {"op": "create", "body": rep("b2@acme.example", "Nowhere")},
        {"op": "update", "key": "idem@acme.example", "if_match": 1, "body": {"language": "de"}},
        {"op": "update", "key": "idem@acme.example", "if_match": 1, "body": {"language": "pl"}},
        {"op": "update", "key": "idem@acme.example", "body": {"language": "pl"}},
        {"op": "delete", "key": "idem@acme.example", "if_match": 2},
        {"op": "delete", "key": "idem@acme.example", "if_match": 2, "purge_statistics": true},
        {"op": "delete", "key": "ghost@acme.example", "if_match": 1, "purge_statistics": true},
        {"op": "create", "body": {"login": "bad"}}
    ]});
    let r = s.post(a, "/v1/representatives:batch", &ops).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let st: Vec<u64> = r.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["status"].as_u64().unwrap())
        .collect();
    assert_eq!(st, vec![201, 409, 422, 200, 412, 428, 409, 204, 404, 422]);
    assert_eq!(
        r.body["results"][2]["body"]["errors"][0]["pointer"],
        "/team"
    );
    // The batch create with an idempotency key replays.
    let again = json!({"operations": [{"op": "create", "body": rep("b1@acme.example", "T"), "idempotency_key": "b-1"}]});
    let r = s.post(a, "/v1/representatives:batch", &again).await;
    assert_eq!(r.body["results"][0]["status"], 201);
    // Several creates (read ahead in one query): a replay, a new one, the same key again
    // within the batch (replays the create just made), an existing key without a key.
    let ops = json!({"operations": [
        {"op": "create", "body": rep("b1@acme.example", "T"), "idempotency_key": "b-1"},
        {"op": "create", "body": rep("b3@acme.example", "T"), "idempotency_key": "b-3"},
        {"op": "create", "body": rep("b3@acme.example", "T"), "idempotency_key": "b-3"},
        {"op": "create", "body": rep("b4@acme.example", "T"), "idempotency_key": "b-3"},
        {"op": "create", "body": rep("b3@acme.example", "T")}
    ]});
    let r = s.post(a, "/v1/representatives:batch", &ops).await;
    let results = r.body["results"].as_array().unwrap();
    let st: Vec<u64> = results
        .iter()
        .map(|x| x["status"].as_u64().unwrap())
        .collect();
    assert_eq!(st, vec![201, 201, 201, 422, 409], "{}", r.body);
    assert_eq!(
        results[1]["body"], results[2]["body"],
        "replayed, not created twice"
    );
    // Batch limits and shape.
    let many: Vec<Value> = (0..1001)
        .map(|i| json!({"op": "create", "body": {"name": format!("x{i}")}}))
        .collect();
    let r = s
        .post(a, "/v1/portals:batch", &json!({"operations": many}))
        .await;
    assert_eq!((r.status, r.code()), (400, "bad-request"));
    let r = s
        .post(
            a,
            "/v1/portals:batch",
            &json!({"operations": [{"op": "explode"}]}),
        )
        .await;
    assert_eq!(r.status, 422);
    let r = s
        .post(a, "/v1/widgets:batch", &json!({"operations": []}))
        .await;
    assert_eq!(r.status, 404);
}
both_backends!(idempotency_and_batches);

async fn bad_input_is_a_clear_4xx(s: &Srv) {
    let a = &s.admin;
    s.create(a, "teams", json!({"path": "T"})).await;
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("empty body", vec![], 400, "invalid-json"),
        ("not json", b"hello".to_vec(), 400, "invalid-json"),
        ("array", b"[1,2]".to_vec(), 422, "validation"),
        ("unknown field", br#"{"login":"u@x.example","email":"u@x.example","first_name":"a","last_name":"b","shoe":1}"#.to_vec(), 422, "unknown-field"),
        ("bad enum", br#"{"login":"u@x.example","email":"u@x.example","first_name":"a","last_name":"b","status":"sleeping"}"#.to_vec(), 422, "validation"),
        ("wrong type", br#"{"login":"u@x.example","email":"u@x.example","first_name":"a","last_name":"b","multisession":"many"}"#.to_vec(), 422, "validation"),
        ("out of range", br#"{"login":"u@x.example","email":"u@x.example","first_name":"a","last_name":"b","multisession":11}"#.to_vec(), 422, "validation"),
        ("huge number", br#"{"login":"u@x.example","email":"u@x.example","first_name":"a","last_name":"b","multisession":1e400}"#.to_vec(), 400, "invalid-json"),
        ("deep nesting", "[".repeat(100_000).into_bytes(), 400, "invalid-json"),
        ("env password", br#"{"login":"u@x.example","email":"u@x.example","first_name":"a","last_name":"b","password":{"env":"X"}}"#.to_vec(), 422, "validation"),
        ("empty login", br#"{"login":"","email":"u@x.example","first_name":"a","last_name":"b"}"#.to_vec(), 422, "validation"),
        ("control char", b"{\"login\":\"a\\u0000b@x.example\",\"email\":\"u@x.example\",\"first_name\":\"a\",\"last_name\":\"b\"}".to_vec(), 422, "validation"),
    ];
    for (label, body, status, code) in cases {
        let r = s
            .call(
                Method::POST,
                "/v1/representatives",
                Some(a),
                &[],
                Some(body),
            )
            .await;
        assert_eq!((r.status, r.code()), (status, code), "{label}: {}", r.body);
        assert!(
            r.body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{label}"
        );
    }
    // SQL metacharacters are just data.
    let nasty = "Robert'); DROP TABLE objects;--";
    let t = s.create(a, "teams", json!({"path": nasty})).await;
    assert_eq!(t["path"], nasty);
    let g = s
        .create(a, "contact-groups", json!({"name": "50% off _ \\ \" '"}))
        .await;
    assert_eq!(g["name"], "50% off _ \\ \" '");
    let enc = "Robert%27%29%3B%20DROP%20TABLE%20objects%3B--";
    assert_eq!(s.get(a, &format!("/v1/teams/{enc}")).await.status, 200);
    assert_eq!(
        s.get(a, "/v1/teams").await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // Bad headers and queries.
    // (method, path, token, header, body, status)
    type Call<'a> = (
        Method,
        &'a str,
        Option<&'a str>,
        (&'a str, &'a str),
        Option<&'a [u8]>,
        u16,
    );
    let bad: [Call; 4] = [
        (
            Method::PATCH,
            "/v1/teams/T",
            Some(a),
            ("if-match", "\"abc\""),
            Some(b"{}"),
            400,
        ),
        (
            Method::PATCH,
            "/v1/teams/T",
            Some(a),
            ("if-match", "*"),
            Some(b"{}"),
            428,
        ),
        (
            Method::DELETE,
            "/v1/representatives/x?purge_statistics=maybe",
            Some(a),
            ("if-match", "\"1\""),
            None,
            400,
        ),
        (
            Method::GET,
            "/v1/teams",
            None,
            ("authorization", "Basic Zm9vOmJhcg=="),
            None,
            401,
        ),
    ];
    for (method, path, token, (name, value), body, status) in bad {
        let label = format!("{method} {path} with {name}: {value}");
        let r = s
            .call(
                method,
                path,
                token,
                &[(name, value.into())],
                body.map(<[u8]>::to_vec),
            )
            .await;
        assert_eq!(r.status, status, "{label}");
    }
}
both_backends!(bad_input_is_a_clear_4xx);

/// With injected faults (half before, half after the write) a client that retries with
/// the same Idempotency-Key converges: every object exactly once.
#[tokio::test]
async fn injected_faults_converge_with_idempotency_keys() {
    let s = server_support::start_with(Backend::Sqlite, |c| {
        c.inject_faults = 0.4;
        c.fault_seed = 7;
    })
    .await
    .unwrap();
    let mut faults = 0;
    for i in 0..30 {
        let body = json!({"name": format!("p{i}")});
        let mut attempts = 0;
        loop {
            attempts += 1;
            let r = s
                .post_idem(&s.admin, "/v1/portals", &format!("k{i}"), &body)
                .await;
            if r.status == 201 {
                break;
            }
            assert!(matches!(r.status, 429 | 503), "{}", r.body);
            assert!(r.headers.get("retry-after").is_some());
            faults += 1;
            assert!(attempts < 50);
        }
    }
    assert!(faults > 0, "the seed injects some faults");
    let mut names = vec![];
    loop {
        let r = s.get(&s.admin, "/v1/portals?limit=1000").await;
        if r.status == 200 {
            for it in r.body["items"].as_array().unwrap() {
                names.push(it["name"].as_str().unwrap().to_string());
            }
            break;
        }
    }
    assert_eq!(names.len(), 30);
    s.stop().await;
}

#[tokio::test]
async fn a_restart_keeps_the_data_and_issues_no_new_token() {
    let dir = tempfile::tempdir().unwrap();
    let (srv, token) = roster::server::embedded(dir.path()).await.unwrap();
    let file = dir.path().join("admin.token");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{}/v1/teams", srv.url()))
        .bearer_auth(&token)
        .json(&json!({"path": "Kept"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    srv.shutdown().await;
    let (srv, token2) = roster::server::embedded(dir.path()).await.unwrap();
    assert!(srv.admin_token.is_none());
    assert_eq!(token, token2, "the token file is reused");
    let r = http
        .get(format!("{}/v1/teams/Kept", srv.url()))
        .bearer_auth(&token2)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A manager token made the way `roster token create` does.
    let r = http
        .post(format!("{}/v1/teams", srv.url()))
        .bearer_auth(&token2)
        .json(&json!({"path": "Kept/Sub"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = http
        .post(format!("{}/v1/managers", srv.url()))
        .bearer_auth(&token2)
        .json(&json!({"login": "m@x.example", "email": "m@x.example", "name": "M", "teams": ["Kept"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let db = format!("sqlite://{}", dir.path().join("live.db").display());
    let mt = roster::server::create_token(&db, "M@x.example")
        .await
        .unwrap();
    let r = http
        .get(format!("{}/v1/whoami", srv.url()))
        .bearer_auth(&mt)
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["login"], "m@x.example");
    assert!(
        roster::server::create_token(&db, "nobody@x.example")
            .await
            .is_err()
    );
    srv.shutdown().await;
}

#[test]
fn checked_in_openapi_is_up_to_date() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/openapi.json");
    let current = roster::server::openapi_json();
    if std::env::var_os("ROSTER_UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &current).unwrap();
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == current,
        "schemas/openapi.json is out of date; regenerate it with `ROSTER_UPDATE_OPENAPI=1 cargo test --test server checked_in_openapi`"
    );
}

/// 20,000 representatives (with idempotency keys, audit records and references) through
/// concurrent batches against SQLite all land, exactly once. How fast is a benchmark's
/// question (`cargo bench --bench scale`), not a test's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_batches_create_every_representative_once() {
    bulk_create(20_000).await;
}

/// The probes answer without a token: `/healthz` while the process runs, `/readyz` only
/// while the database answers with every migration applied (503 with the reason when one
/// goes missing, 200 again once it is back); on both backends.
async fn health_and_readiness_probes(s: &Srv) {
    let r = s.call(Method::GET, "/healthz", None, &[], None).await;
    assert_eq!((r.status, r.body["status"].clone()), (200, json!("ok")));
    let r = s.call(Method::GET, "/readyz", None, &[], None).await;
    assert_eq!(
        (r.status, r.body["status"].clone()),
        (200, json!("ready")),
        "{}",
        r.body
    );
    // Take the last migration's record away behind the server's back, then restore it.
    let set_success = |on: bool| {
        let url = s.database.clone();
        async move {
            let sql = format!(
                "UPDATE _sqlx_migrations SET success = {} WHERE version = 3",
                if on { "TRUE" } else { "FALSE" }
            );
            if url.starts_with("sqlite") {
                let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
                sqlx::query(&sql).execute(&pool).await.unwrap();
                pool.close().await;
            } else {
                let pool = sqlx::PgPool::connect(&url).await.unwrap();
                sqlx::query(&sql).execute(&pool).await.unwrap();
                pool.close().await;
            }
        }
    };
    set_success(false).await;
    let r = s.call(Method::GET, "/readyz", None, &[], None).await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.body["reason"], json!("5 of 6 migrations applied"));
    let r = s.call(Method::GET, "/healthz", None, &[], None).await;
    assert_eq!(r.status, 200, "alive while not ready");
    set_success(true).await;
    let r = s.call(Method::GET, "/readyz", None, &[], None).await;
    assert_eq!(r.status, 200, "ready again: {}", r.body);
}

both_backends!(health_and_readiness_probes);

/// Every path and method of the OpenAPI document is routed (an anonymous request gets
/// the documented 401, never 404/405), and what it documents for 401 is a problem.
#[tokio::test]
async fn openapi_paths_are_all_served() {
    let s = server_support::start(Backend::Sqlite).await.unwrap();
    let doc: Value = serde_json::from_str(&roster::server::openapi_json()).unwrap();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Ok(m) = method.to_uppercase().parse::<Method>() else {
                continue;
            };
            if method == "parameters" {
                continue;
            }
            let url = path.replace("{key}", "some%2Fkey");
            let r = s
                .call(m.clone(), &url, None, &[], Some(b"{}".to_vec()))
                .await;
            let documented = op["responses"].as_object().unwrap();
            assert!(
                documented.contains_key(&r.status.to_string()),
                "{method} {path} answered {} which the document does not list",
                r.status
            );
            // Operations without a token (`security: []`) answer for themselves: the
            // probes, the document, a person's own password change (401 there for a
            // wrong password, 422 for this empty body).
            if op["security"] != json!([]) {
                assert_eq!(r.status, 401, "{method} {path}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 7 * 6 + 7, "checked {checked} operations");
    s.stop().await;
}

async fn bulk_create(n: usize) {
    let s = server_support::start_with(Backend::Sqlite, |c| c.seats = n as u32)
        .await
        .unwrap();
    s.create(
        &s.admin,
        "portals",
        json!({"name": "web", "features": ["share_my_screen"]}),
    )
    .await;
    for t in 0..50 {
        s.create(&s.admin, "teams", json!({"path": format!("T{t:02}")}))
            .await;
    }
    let started = std::time::Instant::now();
    let ids: Vec<usize> = (0..n).collect();
    let chunks: Vec<Vec<usize>> = ids.chunks(1000).map(<[usize]>::to_vec).collect();
    let mut tasks = futures::stream::iter(chunks.into_iter().map(|chunk| {
        let s = &s;
        async move {
            let ops: Vec<Value> = chunk
                .iter()
                .map(|i| {
                    json!({"op": "create", "idempotency_key": format!("r{i}"), "body": {
                        "login": format!("rep{i:06}@acme.example"), "email": format!("rep{i:06}@acme.example"),
                        "first_name": "Rep", "last_name": format!("N{i}"), "team": format!("T{:02}", i % 50),
                        "features": ["admin_center_access", "reports"], "portals": ["web"]}})
                })
                .collect();
            let r = s.post(&s.admin, "/v1/representatives:batch", &json!({"operations": ops})).await;
            assert_eq!(r.status, 200);
            assert!(r.body["results"].as_array().unwrap().iter().all(|x| x["status"] == 201));
        }
    }))
    .buffer_unordered(2);
    use futures::StreamExt;
    while tasks.next().await.is_some() {}
    drop(tasks);
    eprintln!(
        "created {n} representatives in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let mut seen = std::collections::BTreeSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("/v1/representatives?limit=1000&cursor={c}"),
            None => "/v1/representatives?limit=1000".to_string(),
        };
        let page = s.get(&s.admin, &url).await;
        assert_eq!(page.status, 200);
        for item in page.body["items"].as_array().unwrap() {
            let login = item["login"].as_str().unwrap().to_string();
            assert!(seen.insert(login.clone()), "{login} listed twice");
            assert_eq!(item["version"], 1, "{login} written more than once");
        }
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), n, "every representative was created");
    s.stop().await;
}

async fn manager_tokens_cannot_escalate(s: &Srv) {
    let a = &s.admin;
    let (marie, _, nora) = org(s).await;
    // A manager who may add representatives but not set passwords or names.
    s.create(a, "managers", json!({"login": "lea@acme.example", "email": "lea@acme.example", "name": "Lea",
        "teams": ["Europe/Paris"], "team_rights": ["manage_representatives"], "grantable": ["reports", "admin_center_access"]})).await;
    let lea = s.manager_token("lea@acme.example").await;
    // POST with a feature outside grantable.
    let mut body = rep("new@acme.example", "Europe/Paris");
    body["features"] = json!(["share_my_screen"]);
    let r = s.post(&lea, "/v1/representatives", &body).await;
    assert_eq!((r.status, r.code()), (403, "escalation"));
    // Turning OFF a feature outside grantable is an escalation too.
    let cur = s
        .get(a, "/v1/representatives/jdoe@acme.example")
        .await
        .version();
    let r = s
        .patch(
            a,
            "/v1/representatives/jdoe@acme.example",
            Some(cur),
            &json!({"features": ["admin_center_access", "reports", "file_transfer_send"]}),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = s
        .patch(
            &marie,
            "/v1/representatives/jdoe@acme.example",
            Some(cur + 1),
            &json!({"features": ["admin_center_access", "reports"]}),
        )
        .await;
    assert_eq!((r.status, r.code()), (403, "escalation"));
    // multisession is grantable for marie, not for lea.
    let r = s
        .patch(
            &lea,
            "/v1/representatives/jdoe@acme.example",
            Some(cur + 1),
            &json!({"multisession": 3}),
        )
        .await;
    assert_eq!((r.status, r.code()), (403, "escalation"));
    let r = s
        .patch(
            &marie,
            "/v1/representatives/jdoe@acme.example",
            Some(cur + 1),
            &json!({"multisession": 3}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // Names and passwords need their rights.
    let v = r.version();
    let r = s
        .patch(
            &lea,
            "/v1/representatives/jdoe@acme.example",
            Some(v),
            &json!({"last_name": "Smith"}),
        )
        .await;
    assert_eq!((r.status, r.code()), (403, "forbidden"));
    let r = s
        .patch(
            &lea,
            "/v1/representatives/jdoe@acme.example",
            Some(v),
            &json!({"password": {"value": "pw-1"}}),
        )
        .await;
    assert_eq!(r.status, 403);
    let r = s
        .patch(
            &marie,
            "/v1/representatives/jdoe@acme.example",
            Some(v),
            &json!({"password": {"value": "pw-1", "rotation": "r1"}}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["password"], json!({"rotation": "r1"}));
    // Grantable features inside scope are fine.
    let r = s
        .post(&lea, "/v1/representatives", &{
            let mut b = rep("ok@acme.example", "Europe/Paris");
            b["features"] = json!(["admin_center_access", "reports"]);
            b
        })
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    // Without manage_representatives a manager may not deactivate a representative,
    // move it between its own teams, or change its e-mail, language, sign-in settings or
    // portals (the same rights as `model::rights`, which the plan predicts with).
    s.create(
        a,
        "managers",
        json!({"login": "klaus@acme.example", "email": "klaus@acme.example", "name": "Klaus",
        "teams": ["Europe"], "team_rights": ["edit_rep_name_login"]}),
    )
    .await;
    let klaus = s.manager_token("klaus@acme.example").await;
    let felix = "/v1/representatives/ok@acme.example";
    let v = s.get(a, felix).await.version();
    for patch in [
        json!({"status": "inactive", "email": "attacker@evil.example", "portals": []}),
        json!({"status": "inactive"}),
        json!({"team": "Europe"}),
        json!({"email": "attacker@evil.example"}),
        json!({"language": "de"}),
        json!({"sign_in": {"force_password_change": true}}),
        json!({"portals": ["web"]}),
    ] {
        let r = s.patch(&klaus, felix, Some(v), &patch).await;
        assert_eq!(
            (r.status, r.code()),
            (403, "forbidden"),
            "{patch}: {}",
            r.body
        );
        assert!(
            r.body["detail"]
                .as_str()
                .unwrap()
                .contains("manage_representatives"),
            "{}",
            r.body
        );
    }
    assert_eq!(s.get(a, felix).await.version(), v, "nothing was written");
    // What its one right covers it may do.
    let r = s
        .patch(&klaus, felix, Some(v), &json!({"last_name": "Weber"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // A manager without manage_managers cannot create managers; with it, not above itself.
    let m = json!({"login": "sub@acme.example", "email": "sub@acme.example", "name": "Sub", "teams": ["Europe/Paris"]});
    assert_eq!(s.post(&nora, "/v1/managers", &m).await.status, 403);
    assert_eq!(s.post(&lea, "/v1/managers", &m).await.status, 403);
    let r = s
        .post(&marie, "/v1/managers", &{
            let mut b = m.clone();
            b["grantable"] = json!(["admin_center_access", "session_replay"]);
            b
        })
        .await;
    assert_eq!((r.status, r.code()), (403, "escalation"));
    assert_eq!(s.post(&marie, "/v1/managers", &m).await.status, 201);
    // Moving a representative out of scope is refused.
    let v = s
        .get(a, "/v1/representatives/ok@acme.example")
        .await
        .version();
    let r = s
        .patch(
            &lea,
            "/v1/representatives/ok@acme.example",
            Some(v),
            &json!({"team": "Asia"}),
        )
        .await;
    assert_eq!(r.status, 403);
    // A deleted manager's token stops working.
    let v = s.get(a, "/v1/managers/lea@acme.example").await.version();
    assert_eq!(
        s.delete(a, "/v1/managers/lea@acme.example", Some(v))
            .await
            .status,
        204
    );
    assert_eq!(s.get(&lea, "/v1/whoami").await.status, 401);
}
both_backends!(manager_tokens_cannot_escalate);

/// Two server replicas over one PostgreSQL database: the version check in SQL keeps
/// concurrent writers through different replicas from losing an update.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(roster_test_postgres),
    ignore = "needs PostgreSQL: run `. .ci/postgres.sh; roster_pg_start` (sets ROSTER_TEST_POSTGRES), then `cargo test --all-targets`"
)]
async fn two_replicas_share_one_postgresql() {
    let Some(s) = server_support::start(Backend::Postgres).await else {
        return;
    };
    let second = roster::server::start(roster::server::ServerConfig {
        listen: "127.0.0.1:0".into(),
        database: s.database.clone(),
        admin_token_file: None,
        seats: 10,
        rate_limit: 0,
        inject_faults: 0.0,
        fault_seed: 1,
        ..Default::default()
    })
    .await
    .unwrap();
    assert!(second.admin_token.is_none(), "the account exists already");
    let a = &s.admin;
    s.create(a, "teams", json!({"path": "Shared"})).await;
    let http = reqwest::Client::new();
    for round in 1..=5i64 {
        let pa = json!({"description": format!("a{round}")});
        let one = s.patch(a, "/v1/teams/Shared", Some(round), &pa);
        let two = http
            .patch(format!("{}/v1/teams/Shared", second.url()))
            .bearer_auth(a)
            .header("if-match", format!("\"{round}\""))
            .json(&json!({"description": format!("b{round}")}))
            .send();
        let (r1, r2) = tokio::join!(one, two);
        let mut st = [r1.status, r2.unwrap().status().as_u16()];
        st.sort();
        assert_eq!(st, [200, 412], "round {round}");
    }
    let r = http
        .get(format!("{}/v1/teams/Shared", second.url()))
        .bearer_auth(a)
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["version"], 6);
    second.shutdown().await;
    s.stop().await;
}

async fn renames_leave_no_stale_references(s: &Srv) {
    let a = &s.admin;
    s.create(a, "teams", json!({"path": "T"})).await;
    s.create(a, "representatives", rep("dual@acme.example", "T"))
        .await;
    s.create(
        a,
        "managers",
        json!({"login": "dual@acme.example", "email": "dual@acme.example", "name": "D"}),
    )
    .await;
    s.create(
        a,
        "contact-groups",
        json!({"name": "g", "shared_with": {"dual@acme.example": "view"}}),
    )
    .await;
    let r = s.delete(a, "/v1/managers/dual@acme.example", Some(1)).await;
    assert_eq!(
        (r.status, r.code()),
        (409, "conflict"),
        "the group refers to the manager"
    );
    let r = s
        .patch(
            a,
            "/v1/representatives/dual@acme.example",
            Some(1),
            &json!({"login": "dual2@acme.example"}),
        )
        .await;
    assert_eq!(r.status, 200);
    let g = s.get(a, "/v1/contact-groups/g").await;
    assert_eq!(
        (g.body["shared_with"].clone(), g.version()),
        (json!({"dual2@acme.example": "view"}), 2)
    );
    let r = s.delete(a, "/v1/managers/dual@acme.example", Some(1)).await;
    assert_eq!(
        r.status, 204,
        "no stale reference keeps the manager: {}",
        r.body
    );
    let r = s
        .delete(
            a,
            "/v1/representatives/dual2@acme.example?purge_statistics=true",
            Some(2),
        )
        .await;
    assert_eq!((r.status, r.code()), (409, "conflict"));
    // Audit holds the cascaded update, made by the same actor.
    let au = s.get(a, "/v1/audit?limit=1000").await;
    assert!(
        au.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["kind"] == "contact_group" && i["action"] == "update")
    );
}
both_backends!(renames_leave_no_stale_references);

/// A `shared_with` login held by a representative AND a manager (docs/api.md, "Shared
/// logins"): the group refers to both; renaming either moves the entry to the new login,
/// symmetrically; a rename that would merge two entries of different permissions is
/// refused before anything is written; at the same permission they merge.
async fn shared_logins_follow_renames(s: &Srv) {
    let a = &s.admin;
    s.create(a, "teams", json!({"path": "T"})).await;
    for login in ["both@acme.example", "x@acme.example"] {
        s.create(a, "representatives", rep(login, "T")).await;
    }
    for login in ["both@acme.example", "y@acme.example"] {
        s.create(
            a,
            "managers",
            json!({"login": login, "email": login, "name": "M"}),
        )
        .await;
    }
    s.create(
        a,
        "contact-groups",
        json!({"name": "g", "shared_with": {"both@acme.example": "connect"}}),
    )
    .await;
    // Both holders of the login are kept from deletion by the group.
    let r = s
        .delete(
            a,
            "/v1/representatives/both@acme.example?purge_statistics=true",
            Some(1),
        )
        .await;
    assert_eq!((r.status, r.code()), (409, "conflict"), "{}", r.body);
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("contact_group `g`")
    );
    // Renaming the manager (the other kind than renames_leave_no_stale_references):
    // the entry follows it; the representative is no longer shared with.
    let r = s
        .patch(
            a,
            "/v1/managers/both@acme.example",
            Some(1),
            &json!({"login": "both-m@acme.example"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let g = s.get(a, "/v1/contact-groups/g").await;
    assert_eq!(
        (g.body["shared_with"].clone(), g.version()),
        (json!({"both-m@acme.example": "connect"}), 2)
    );
    let r = s
        .delete(
            a,
            "/v1/representatives/both@acme.example?purge_statistics=true",
            Some(1),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    let r = s
        .delete(a, "/v1/managers/both-m@acme.example", Some(2))
        .await;
    assert_eq!((r.status, r.code()), (409, "conflict"), "{}", r.body);

    // Different permissions for the old and the new login: refused, nothing written.
    s.create(
        a,
        "contact-groups",
        json!({"name": "h", "shared_with": {"x@acme.example": "view", "y@acme.example": "manage"}}),
    )
    .await;
    let r = s
        .patch(
            a,
            "/v1/representatives/x@acme.example",
            Some(1),
            &json!({"login": "y@acme.example"}),
        )
        .await;
    assert_eq!((r.status, r.code()), (409, "conflict"), "{}", r.body);
    let detail = r.body["detail"].as_str().unwrap();
    assert!(detail.contains("contact_group `h`"), "{detail}");
    assert!(
        detail.contains("view") && detail.contains("manage"),
        "{detail}"
    );
    assert_eq!(
        s.get(a, "/v1/representatives/x@acme.example")
            .await
            .version(),
        1
    );
    let h = s.get(a, "/v1/contact-groups/h").await;
    assert_eq!(h.version(), 1);
    // The same permission: the entries merge, and the group now refers to both holders
    // of the new login.
    let r = s
        .patch(
            a,
            "/v1/contact-groups/h",
            Some(1),
            &json!({"shared_with": {"y@acme.example": "view"}}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["shared_with"].clone()),
        (
            200,
            json!({"x@acme.example": "view", "y@acme.example": "view"})
        ),
        "{}",
        r.body
    );
    let r = s
        .patch(
            a,
            "/v1/representatives/x@acme.example",
            Some(1),
            &json!({"login": "y@acme.example"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let h = s.get(a, "/v1/contact-groups/h").await;
    assert_eq!(
        (h.body["shared_with"].clone(), h.version()),
        (json!({"y@acme.example": "view"}), 3)
    );
    let r = s.delete(a, "/v1/managers/y@acme.example", Some(1)).await;
    assert_eq!((r.status, r.code()), (409, "conflict"), "{}", r.body);
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("contact_group `h`")
    );
    let r = s
        .delete(
            a,
            "/v1/representatives/y@acme.example?purge_statistics=true",
            Some(2),
        )
        .await;
    assert_eq!((r.status, r.code()), (409, "conflict"), "{}", r.body);
}
both_backends!(shared_logins_follow_renames);

/// A child process killed on drop, so that a failed assertion never leaves a server
/// running behind the test.
#[cfg(unix)]
struct KillOnDrop(std::process::Child);

#[cfg(unix)]
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits for `child` to exit, at most `limit`; panics (naming `what`) when it does not.
#[cfg(unix)]
fn wait_at_most(
    child: &mut std::process::Child,
    limit: std::time::Duration,
    what: &str,
) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what} did not exit within {limit:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The real binary: `roster serve` prints where it listens and where the token went
/// (never the token), serves, and exits 0 on SIGTERM; `roster token create` prints one.
///
/// Robust on a loaded machine: stderr is read on its own thread with a deadline (log
/// lines — e.g. sqlx's slow-statement warning — may come before the listening line),
/// every HTTP call and process has a generous but bounded timeout, and SIGTERM is sent
/// only after the server answered (it listens for signals before printing anything).
#[cfg(unix)]
#[tokio::test]
async fn roster_serve_binary_serves_and_stops_on_sigterm() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    const LIMIT: Duration = Duration::from_secs(120);
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("db/live.db").display());
    let child = Command::new(env!("CARGO_BIN_EXE_roster"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database",
            &db,
            "--seats",
            "3",
        ])
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let stderr = child.0.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Readiness: the listening line (printed once bound) and the token-file line.
    let token_file = dir.path().join("db/admin.token");
    let mut lines: Vec<String> = vec![];
    let deadline = Instant::now() + LIMIT;
    let listening = |l: &String| l.starts_with("roster serve: listening on ");
    let token_line = |l: &String| l.contains("administrator token was written to");
    while !(lines.iter().any(listening) && lines.iter().any(token_line)) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => lines.push(l),
            Err(e) => panic!("roster serve is not ready after {LIMIT:?} ({e}); stderr: {lines:?}"),
        }
    }
    let url = lines
        .iter()
        .find(|l| listening(l))
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{lines:?}");
    let at = |f: fn(&String) -> bool| lines.iter().position(f).unwrap();
    assert!(
        at(|l| l.starts_with("roster serve: listening on "))
            < at(|l| l.contains("administrator token was written to")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .find(|l| token_line(l))
            .unwrap()
            .contains(&token_file.display().to_string()),
        "{lines:?}"
    );
    let token = std::fs::read_to_string(&token_file)
        .unwrap()
        .trim()
        .to_string();
    assert!(!token.is_empty());
    let http = reqwest::Client::builder().timeout(LIMIT).build().unwrap();
    let r = http
        .get(format!("{url}/v1/account"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["seats"], 3);
    let mut create = Command::new(env!("CARGO_BIN_EXE_roster"))
        .args([
            "token",
            "create",
            "--administrator",
            "ADMIN@localhost",
            "--database",
            &db,
        ])
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_at_most(&mut create, LIMIT, "roster token create");
    let out = create.wait_with_output().unwrap();
    assert!(
        status.success(),
        "roster token create: {status:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let t2 = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(!t2.is_empty() && t2 != token);
    let r = http
        .get(format!("{url}/v1/whoami"))
        .bearer_auth(&t2)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let killed = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = wait_at_most(&mut child.0, LIMIT, "roster serve after SIGTERM");
    // The process is gone, so its stderr is closed: the reader ends.
    reader.join().unwrap();
    lines.extend(rx.try_iter());
    assert!(
        status.success(),
        "exit status {status:?}; stderr: {lines:?}"
    );
    assert!(
        lines.iter().any(|l| l == "roster serve: shutting down"),
        "{lines:?}"
    );
    assert!(
        lines.iter().all(|l| !l.contains(&token)),
        "the token is never printed"
    );
}
