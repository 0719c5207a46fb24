//! The authorization matrix of a manager token (rule 6; seed 000's team rights, seed
//! 002's scoping), table-driven: every field group of a write × the right it needs held
//! or not × every write endpoint (the single request, `POST /v1/{collection}:batch` and
//! the dry run `POST /v1/plan:check`), each outcome asserted, and the store unchanged
//! after every refusal — on SQLite and PostgreSQL.
//!
//! "Held" is a manager holding that one right (or that one grantable feature) and
//! nothing else, so it shows the right suffices; "not held" is a manager holding every
//! other team right and grantable feature, so it shows nothing else covers the write.
//! The expectations are the seeds' (what `docs/api.md` tabulates from
//! `model::rights::operations`), written here independently of the code.

use reqwest::Method;
use roster::model::catalog::GRANTABLE_FEATURES;
use roster::model::{Feature, TeamRight};
use serde_json::{Value, json};

use crate::support::server::Srv;

/// What a write needs of the manager.
#[derive(Clone, Copy)]
enum Need {
    Right(TeamRight),
    Grant(Feature),
}

/// The write under test, on an object made fresh for each attempt.
#[derive(Clone)]
enum Write {
    /// `POST` of this body (the `{n}` in it made unique).
    Create(&'static str, Value),
    /// `PATCH` of the target with this merge patch.
    Update(Value),
    /// `DELETE` of the target.
    Delete,
}

/// One row: a field group, the collection, how the target is made, the write, what it
/// needs, and the status when the right is held (when not held: 403 with `denied`).
struct Row {
    label: &'static str,
    collection: &'static str,
    /// The plan-check `kind`.
    kind: &'static str,
    /// The target's body, made by the administrator (`{n}` made unique); None: none.
    target: Option<Value>,
    write: Write,
    need: Need,
    held: u16,
    denied: &'static str,
}

const MANAGE: Need = Need::Right(TeamRight::ManageRepresentatives);
const NAMES: Need = Need::Right(TeamRight::EditRepNameLogin);
const PASSWORD: Need = Need::Right(TeamRight::EditRepPassword);

fn felix(status: &str) -> Value {
    json!({"login": "felix.weber-{n}@acme.example", "email": "felix.weber-{n}@acme.example",
           "first_name": "Felix", "last_name": "Weber", "team": "Europe/Paris", "status": status,
           "language": "de", "features": ["admin_center_access"], "multisession": 1,
           "portals": ["web"], "username": "fweber{n}"})
}

fn rows() -> Vec<Row> {
    let rep = |label, write, need, held, denied| Row {
        label,
        collection: "representatives",
        kind: "representative",
        target: Some(felix("active")),
        write,
        need,
        held,
        denied,
    };
    let update = |label, patch: Value, need, held, denied| {
        rep(label, Write::Update(patch), need, held, denied)
    };
    vec![
        // The names and the login: `edit_rep_name_login`.
        update(
            "first name",
            json!({"first_name": "Fritz"}),
            NAMES,
            200,
            "forbidden",
        ),
        update(
            "last name",
            json!({"last_name": "Weiss"}),
            NAMES,
            200,
            "forbidden",
        ),
        update(
            "user name",
            json!({"username": "fw-{n}"}),
            NAMES,
            200,
            "forbidden",
        ),
        update(
            "login (a rename)",
            json!({"login": "felix.w-{n}@acme.example"}),
            NAMES,
            200,
            "forbidden",
        ),
        // A password: `edit_rep_password`.
        update(
            "password",
            json!({"password": {"value": "Correct-Horse-7-battery", "rotation": "r{n}"}}),
            PASSWORD,
            200,
            "forbidden",
        ),
        // E-mail, language, sign-in settings, portals: `manage_representatives`.
        update(
            "e-mail",
            json!({"email": "fw-{n}@acme.example"}),
            MANAGE,
            200,
            "forbidden",
        ),
        update(
            "language",
            json!({"language": "fr"}),
            MANAGE,
            200,
            "forbidden",
        ),
        update(
            "sign-in settings",
            json!({"sign_in": {"force_password_change": true}}),
            MANAGE,
            200,
            "forbidden",
        ),
        update(
            "portals",
            json!({"portals": ["web", "chat"]}),
            MANAGE,
            200,
            "forbidden",
        ),
        // Status: deactivate and reactivate.
        update(
            "deactivate",
            json!({"status": "inactive"}),
            MANAGE,
            200,
            "forbidden",
        ),
        Row {
            target: Some(felix("inactive")),
            ..update(
                "reactivate",
                json!({"status": "active"}),
                MANAGE,
                200,
                "forbidden",
            )
        },
        // The case: several managed fields at once, the first is enough.
        update(
            "klaus: deactivate, e-mail and portals at once",
            json!({"status": "inactive", "email": "attacker@evil.example", "portals": []}),
            MANAGE,
            200,
            "forbidden",
        ),
        // A move between the manager's teams, and out of them (never, whatever it holds).
        update(
            "move inside its teams",
            json!({"team": "Europe/Lyon"}),
            MANAGE,
            200,
            "forbidden",
        ),
        update(
            "move out of its teams",
            json!({"team": "Asia"}),
            MANAGE,
            403,
            "forbidden",
        ),
        // Features and multisession: only those in `grantable`, whatever the team rights.
        update(
            "feature in grantable",
            json!({"features": ["admin_center_access", "reports"]}),
            Need::Grant(Feature::Reports),
            200,
            "escalation",
        ),
        update(
            "feature turned off",
            json!({"features": []}),
            Need::Grant(Feature::AdminCenterAccess),
            200,
            "escalation",
        ),
        update(
            "multisession",
            json!({"multisession": 3}),
            Need::Grant(Feature::Multisession),
            200,
            "escalation",
        ),
        // Create and delete: `manage_representatives`.
        Row {
            target: None,
            ..rep(
                "create",
                Write::Create(
                    "felix.weber-{n}@acme.example",
                    json!({"login": "felix.weber-{n}@acme.example",
                           "email": "felix.weber-{n}@acme.example", "first_name": "Felix",
                           "last_name": "Weber", "team": "Europe/Paris"}),
                ),
                MANAGE,
                201,
                "forbidden",
            )
        },
        rep("delete", Write::Delete, MANAGE, 204, "forbidden"),
        // Sub-teams: `manage_subteams`.
        Row {
            label: "create a sub-team",
            collection: "teams",
            kind: "team",
            target: None,
            write: Write::Create("Europe/T{n}", json!({"path": "Europe/T{n}"})),
            need: Need::Right(TeamRight::ManageSubteams),
            held: 201,
            denied: "forbidden",
        },
        Row {
            label: "change a sub-team",
            collection: "teams",
            kind: "team",
            target: Some(json!({"path": "Europe/T{n}"})),
            write: Write::Update(json!({"description": "d{n}"})),
            need: Need::Right(TeamRight::ManageSubteams),
            held: 200,
            denied: "forbidden",
        },
        Row {
            label: "delete a sub-team",
            collection: "teams",
            kind: "team",
            target: Some(json!({"path": "Europe/T{n}"})),
            write: Write::Delete,
            need: Need::Right(TeamRight::ManageSubteams),
            held: 204,
            denied: "forbidden",
        },
        // Managers: `manage_managers`.
        Row {
            label: "create a manager",
            collection: "managers",
            kind: "manager",
            target: None,
            write: Write::Create(
                "m{n}@acme.example",
                json!({"login": "m{n}@acme.example", "email": "m{n}@acme.example", "name": "M",
                       "teams": ["Europe/Paris"]}),
            ),
            need: Need::Right(TeamRight::ManageManagers),
            held: 201,
            denied: "forbidden",
        },
        Row {
            label: "change a manager",
            collection: "managers",
            kind: "manager",
            target: Some(
                json!({"login": "m{n}@acme.example", "email": "m{n}@acme.example",
                                "name": "M", "teams": ["Europe/Paris"]}),
            ),
            write: Write::Update(json!({"name": "M{n}"})),
            need: Need::Right(TeamRight::ManageManagers),
            held: 200,
            denied: "forbidden",
        },
        Row {
            label: "delete a manager",
            collection: "managers",
            kind: "manager",
            target: Some(
                json!({"login": "m{n}@acme.example", "email": "m{n}@acme.example",
                                "name": "M", "teams": ["Europe/Paris"]}),
            ),
            write: Write::Delete,
            need: Need::Right(TeamRight::ManageManagers),
            held: 204,
            denied: "forbidden",
        },
        // A campaign's members: `manage_representatives`.
        Row {
            label: "create a campaign with a member",
            collection: "campaigns",
            kind: "campaign",
            target: None,
            write: Write::Create(
                "c{n}",
                json!({"name": "c{n}", "representatives": ["base@acme.example"]}),
            ),
            need: MANAGE,
            held: 201,
            denied: "forbidden",
        },
    ]
}

/// The endpoints one write goes through.
#[derive(Debug, Clone, Copy)]
enum Endpoint {
    Single,
    Batch,
    Check,
}

fn fill(v: &Value, n: usize) -> Value {
    serde_json::from_str(&v.to_string().replace("{n}", &n.to_string())).unwrap()
}

fn url_key(key: &str) -> String {
    key.replace('/', "%2F")
}

/// A manager holding exactly what `need` names (`holds`), or everything else.
async fn manager_for(s: &Srv, need: Need, holds: bool, n: usize) -> String {
    let every_right: Vec<TeamRight> = TeamRight::ALL.to_vec();
    let every_feature: Vec<Feature> = GRANTABLE_FEATURES.to_vec();
    let (rights, grantable): (Vec<TeamRight>, Vec<Feature>) = match (need, holds) {
        (Need::Right(r), true) => (vec![r], vec![]),
        (Need::Right(r), false) => (
            every_right.into_iter().filter(|x| *x != r).collect(),
            every_feature,
        ),
        // A feature's prerequisites come with it (rule 1 holds for `grantable` too).
        (Need::Grant(f), true) => {
            let mut g = vec![f];
            if f == Feature::Reports {
                g.push(Feature::AdminCenterAccess);
            }
            (vec![], g)
        }
        (Need::Grant(f), false) => (
            every_right,
            every_feature
                .into_iter()
                .filter(|x| *x != f && !requires(*x, f))
                .collect(),
        ),
    };
    let login = format!("mgr{n}@acme.example");
    let rights: Vec<&str> = rights.iter().map(|r| r.id()).collect();
    let grantable: Vec<&str> = grantable.iter().map(|f| f.id()).collect();
    s.create(
        &s.admin,
        "managers",
        json!({"login": login, "email": login, "name": "Mgr", "teams": ["Europe"],
               "team_rights": rights, "grantable": grantable}),
    )
    .await;
    s.manager_token(&login).await
}

/// Whether feature `x` needs `f` on (rule 1): leaving `f` out of a grantable set leaves
/// out what depends on it.
fn requires(x: Feature, f: Feature) -> bool {
    use Feature::*;
    match f {
        AdminCenterAccess => matches!(x, Reports | SessionReplay | ExportSessionReplay),
        SessionReplay => x == ExportSessionReplay,
        _ => false,
    }
}

/// The administrator's view of an object (None: absent).
async fn read(s: &Srv, collection: &str, key: &str) -> Option<Value> {
    let r = s
        .get(&s.admin, &format!("/v1/{collection}/{}", url_key(key)))
        .await;
    match r.status {
        200 => Some(r.body),
        404 => None,
        other => panic!("GET {collection}/{key}: {other} {}", r.body),
    }
}

/// One attempt: the status and problem code the write got.
async fn attempt(
    s: &Srv,
    token: &str,
    row: &Row,
    ep: Endpoint,
    key: &str,
    version: i64,
    n: usize,
) -> (u16, String) {
    let coll = row.collection;
    match (ep, &row.write) {
        (Endpoint::Single, Write::Create(_, body)) => {
            let r = s.post(token, &format!("/v1/{coll}"), &fill(body, n)).await;
            (r.status, r.code().to_string())
        }
        (Endpoint::Single, Write::Update(patch)) => {
            let path = format!("/v1/{coll}/{}", url_key(key));
            let r = s.patch(token, &path, Some(version), &fill(patch, n)).await;
            (r.status, r.code().to_string())
        }
        (Endpoint::Single, Write::Delete) => {
            let purge = if coll == "representatives" {
                "?purge_statistics=true"
            } else {
                ""
            };
            let path = format!("/v1/{coll}/{}{purge}", url_key(key));
            let r = s.delete(token, &path, Some(version)).await;
            (r.status, r.code().to_string())
        }
        (Endpoint::Batch | Endpoint::Check, w) => {
            let mut op = match w {
                Write::Create(_, body) => json!({"op": "create", "body": fill(body, n)}),
                Write::Update(patch) => {
                    json!({"op": "update", "key": key, "if_match": version, "body": fill(patch, n)})
                }
                Write::Delete if coll == "representatives" => {
                    json!({"op": "delete", "key": key, "if_match": version, "purge_statistics": true})
                }
                Write::Delete => json!({"op": "delete", "key": key, "if_match": version}),
            };
            let path = match ep {
                Endpoint::Batch => format!("/v1/{coll}:batch"),
                _ => {
                    op["kind"] = json!(row.kind);
                    // The dry run is told that a password would be set, never its value.
                    if let Some(pw) = op.get_mut("body").and_then(|b| b.get_mut("password")) {
                        pw.as_object_mut().unwrap().remove("value");
                        op["set_password"] = json!(true);
                    }
                    "/v1/plan:check".to_string()
                }
            };
            let r = s.post(token, &path, &json!({"operations": [op]})).await;
            assert_eq!(r.status, 200, "{} {ep:?}: {}", row.label, r.body);
            let res = &r.body["results"][0];
            let problem = match ep {
                Endpoint::Batch => &res["body"],
                _ => &res["problem"],
            };
            (
                res["status"].as_u64().unwrap() as u16,
                problem["code"].as_str().unwrap_or("").to_string(),
            )
        }
    }
}

async fn the_matrix(s: &Srv) {
    let a = &s.admin;
    s.create(
        a,
        "portals",
        json!({"name": "web", "features": ["share_my_screen", "multisession"]}),
    )
    .await;
    s.create(a, "portals", json!({"name": "chat", "features": []}))
        .await;
    for t in ["Europe", "Europe/Paris", "Europe/Lyon", "Asia"] {
        s.create(a, "teams", json!({"path": t})).await;
    }
    s.create(
        a,
        "representatives",
        json!({"login": "base@acme.example", "email": "base@acme.example",
               "first_name": "Bea", "last_name": "Se", "team": "Europe/Paris"}),
    )
    .await;
    let mut n = 0;
    let mut outcomes = 0;
    for row in rows() {
        for holds in [true, false] {
            n += 1;
            let token = manager_for(s, row.need, holds, n).await;
            for ep in [Endpoint::Single, Endpoint::Batch, Endpoint::Check] {
                n += 1;
                let (key, version) = match &row.target {
                    Some(body) => {
                        let made = s.create(a, row.collection, fill(body, n)).await;
                        let key = made
                            .get("login")
                            .or(made.get("path"))
                            .or(made.get("name"))
                            .and_then(Value::as_str)
                            .unwrap()
                            .to_string();
                        (key, made["version"].as_i64().unwrap())
                    }
                    None => (String::new(), 0),
                };
                let before = match &row.write {
                    Write::Create(k, _) => {
                        let k = k.replace("{n}", &n.to_string());
                        (k.clone(), read(s, row.collection, &k).await)
                    }
                    _ => (key.clone(), read(s, row.collection, &key).await),
                };
                let (status, code) = attempt(s, &token, &row, ep, &key, version, n).await;
                let want = if holds { row.held } else { 403 };
                let context = format!(
                    "{} via {ep:?}, {}: {status} {code}",
                    row.label,
                    if holds { "held" } else { "not held" }
                );
                assert_eq!(status, want, "{context}");
                outcomes += 1;
                if status == 403 {
                    assert_eq!(
                        code,
                        if holds { "forbidden" } else { row.denied },
                        "{context}"
                    );
                }
                // Nothing is written by a refusal, nor ever by the dry run.
                if status == 403 || matches!(ep, Endpoint::Check) {
                    assert_eq!(
                        read(s, row.collection, &before.0).await,
                        before.1,
                        "{context}: the store changed"
                    );
                    if let Write::Update(patch) = &row.write {
                        if let Some(renamed) = fill(patch, n)["login"].as_str() {
                            assert_eq!(read(s, row.collection, renamed).await, None, "{context}");
                        }
                    }
                }
            }
        }
    }
    assert_eq!(outcomes, rows().len() * 2 * 3);

    // The case, by name: klaus (edit_rep_name_login only) deactivating felix,
    // changing his e-mail and taking his portals in one PATCH: 403, nothing written.
    s.create(
        a,
        "managers",
        json!({"login": "klaus.becker@acme.example", "email": "klaus.becker@acme.example",
               "name": "Klaus Becker", "teams": ["Europe"], "team_rights": ["edit_rep_name_login"]}),
    )
    .await;
    let klaus = s.manager_token("klaus.becker@acme.example").await;
    let felix = s
        .create(
            a,
            "representatives",
            fill(&felix("active"), 0)
                .as_object()
                .map(|o| {
                    let mut o = o.clone();
                    o.insert("login".into(), json!("felix.weber@acme.example"));
                    o.insert("email".into(), json!("felix.weber@acme.example"));
                    Value::Object(o)
                })
                .unwrap(),
        )
        .await;
    let path = "/v1/representatives/felix.weber@acme.example";
    let r = s
        .patch(
            &klaus,
            path,
            felix["version"].as_i64(),
            &json!({"status": "inactive", "email": "attacker@evil.example", "portals": []}),
        )
        .await;
    assert_eq!((r.status, r.code()), (403, "forbidden"), "{}", r.body);
    let detail = r.body["detail"].as_str().unwrap();
    assert!(detail.contains("manage_representatives"), "{detail}");
    assert_eq!(s.get(a, path).await.body, felix, "nothing written");
    // No PUT: a replace is a PATCH (405 whoever asks, before any right is looked at).
    let r = s
        .call(
            Method::PUT,
            path,
            Some(&klaus),
            &[("if-match", "\"1\"".into())],
            Some(b"{}".to_vec()),
        )
        .await;
    assert_eq!(r.status, 405, "{}", r.body);
    // A token for the caller itself needs no name, whichever its role.
    for (token, role, login) in [
        (a.as_str(), "administrator", "admin@localhost"),
        (klaus.as_str(), "manager", "klaus.becker@acme.example"),
    ] {
        let r = s.post(token, "/v1/tokens", &json!({})).await;
        assert_eq!(r.status, 201, "{}", r.body);
        assert_eq!(
            (r.body["role"].as_str(), r.body["login"].as_str()),
            (Some(role), Some(login))
        );
    }
    let r = s
        .post(
            &klaus,
            "/v1/tokens",
            &json!({"administrator": "admin@localhost"}),
        )
        .await;
    assert_eq!((r.status, r.code()), (403, "forbidden"), "{}", r.body);
}
both_backends!(the_matrix);
