//! Rule 6's read scope (seed 002): a manager token reads nothing outside its teams. Logins
//! planted outside the manager's teams (`zz-hidden-…`) as representatives, managers,
//! campaign members and contact-group shares never appear in any answer to it — lists,
//! single reads, writes, errors, batches — while its writes keep the members it cannot
//! see and need `manage_representatives` to change members. On both backends.

use crate::support::server as server_support;

use serde_json::{Value, json};
use server_support::Srv;

const PLANTED: &str = "zz-hidden";
const HIDDEN_REP: &str = "zz-hidden-rep@other.example";
const HIDDEN_MGR: &str = "zz-hidden-mgr@other.example";

/// Teams Europe, Europe/Paris, Europe/Empty, Other; rep jdoe (Paris) and the hidden rep
/// (Other); managers marie (Europe, manage_representatives), nora (Europe, no right) and
/// the hidden manager (Europe/Empty and Other: outside marie's scope); campaigns and
/// groups mixing both. Returns (marie, nora).
async fn planted(s: &Srv) -> (String, String) {
    let a = &s.admin;
    for t in ["Europe", "Europe/Paris", "Europe/Empty", "Other"] {
        s.create(a, "teams", json!({"path": t})).await;
    }
    for (login, team, username) in [
        ("jdoe@acme.example", "Europe/Paris", "jdoe"),
        (HIDDEN_REP, "Other", "zzh"),
    ] {
        s.create(
            a,
            "representatives",
            json!({"login": login, "email": login, "first_name": "A", "last_name": "B",
                   "team": team, "username": username}),
        )
        .await;
    }
    for (login, teams, rights) in [
        (
            "marie@acme.example",
            json!(["Europe"]),
            json!(["manage_representatives", "manage_subteams"]),
        ),
        ("nora@acme.example", json!(["Europe"]), json!([])),
        (HIDDEN_MGR, json!(["Europe/Empty", "Other"]), json!([])),
    ] {
        s.create(
            a,
            "managers",
            json!({"login": login, "email": login, "name": "M", "teams": teams, "team_rights": rights}),
        )
        .await;
    }
    s.create(
        a,
        "campaigns",
        json!({"name": "mixed", "representatives": ["jdoe@acme.example", HIDDEN_REP], "teams": ["Europe", "Other"]}),
    )
    .await;
    s.create(
        a,
        "campaigns",
        json!({"name": "elsewhere", "representatives": [HIDDEN_REP]}),
    )
    .await;
    s.create(
        a,
        "contact-groups",
        json!({"name": "mixed-g", "shared_with": {"jdoe@acme.example": "view", HIDDEN_MGR: "manage", HIDDEN_REP: "connect"}}),
    )
    .await;
    s.create(
        a,
        "contact-groups",
        json!({"name": "elsewhere-g", "shared_with": {HIDDEN_REP: "view"}}),
    )
    .await;
    (
        s.manager_token("marie@acme.example").await,
        s.manager_token("nora@acme.example").await,
    )
}

/// Every answer to the manager, collected to be searched for the planted logins.
struct Seen<'s> {
    s: &'s Srv,
    token: String,
    bodies: Vec<(String, Value)>,
}

impl Seen<'_> {
    fn keep(&mut self, what: &str, status: u16, body: &Value) -> Value {
        self.bodies
            .push((format!("{what} → {status}"), body.clone()));
        body.clone()
    }
    async fn get(&mut self, path: &str) -> (u16, Value) {
        let r = self.s.get(&self.token, path).await;
        self.keep(&format!("GET {path}"), r.status, &r.body);
        (r.status, r.body)
    }
    async fn version(&self, path: &str) -> i64 {
        self.s.get(&self.s.admin, path).await.version()
    }
    async fn patch(&mut self, path: &str, body: &Value) -> (u16, Value) {
        let v = self.version(path).await;
        let r = self.s.patch(&self.token, path, Some(v), body).await;
        self.keep(&format!("PATCH {path}"), r.status, &r.body);
        (r.status, r.body)
    }
    async fn delete(&mut self, path: &str) -> (u16, Value) {
        let v = self.version(path).await;
        let r = self.s.delete(&self.token, path, Some(v)).await;
        self.keep(&format!("DELETE {path}"), r.status, &r.body);
        (r.status, r.body)
    }
    async fn post(&mut self, path: &str, body: &Value) -> (u16, Value) {
        let r = self.s.post(&self.token, path, body).await;
        self.keep(&format!("POST {path}"), r.status, &r.body);
        (r.status, r.body)
    }
}

async fn nothing_outside_the_teams_reaches_a_manager(s: &Srv) {
    let a = &s.admin;
    let (marie, nora) = planted(s).await;
    let mut m = Seen {
        s,
        token: marie.clone(),
        bodies: vec![],
    };
    for c in [
        "portals",
        "teams",
        "administrators",
        "managers",
        "representatives",
        "campaigns",
        "contact-groups",
    ] {
        m.get(&format!("/v1/{c}")).await;
        m.get(&format!("/v1/{c}?limit=1")).await;
    }
    for p in [
        "/v1/whoami",
        "/v1/audit",
        "/v1/account",
        "/v1/catalog",
        "/v1/tokens",
        "/v1/lease",
    ] {
        m.get(p).await;
    }
    assert_eq!(
        m.get("/v1/audit").await.0,
        403,
        "audit: administrators only"
    );

    // The apply lease taken by the hidden manager: marie learns it is held, not by whom.
    let path = format!("/v1/managers/{}", HIDDEN_MGR.replace('@', "%40"));
    let v = s.get(a, &path).await.version();
    let r = s
        .patch(
            a,
            &path,
            Some(v),
            &json!({"team_rights": ["manage_subteams"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let hidden = s.manager_token(HIDDEN_MGR).await;
    let taken = s
        .post(
            &hidden,
            "/v1/lease",
            &json!({"holder": "ci pid 1", "ttl_seconds": 60}),
        )
        .await;
    assert_eq!(taken.status, 201, "{}", taken.body);
    let (st, lease) = m.get("/v1/lease").await;
    assert_eq!(
        (st, &lease["taken_by"]),
        (200, &json!("a manager of other teams")),
        "{lease}"
    );
    let (st, _) = m
        .post(
            "/v1/lease",
            &json!({"holder": "marie pid 2", "ttl_seconds": 60}),
        )
        .await;
    assert_eq!(st, 409);
    let id = taken.body["id"].as_str().unwrap().to_string();
    assert_eq!(
        s.delete(&hidden, &format!("/v1/lease/{id}"), None)
            .await
            .status,
        204
    );

    // Campaigns and groups: the members in scope and a count of the others.
    let (st, c) = m.get("/v1/campaigns/mixed").await;
    assert_eq!(st, 200);
    assert_eq!(
        (&c["representatives"], &c["teams"], &c["hidden_members"]),
        (&json!(["jdoe@acme.example"]), &json!(["Europe"]), &json!(2))
    );
    let (_, g) = m.get("/v1/contact-groups/mixed-g").await;
    assert_eq!(
        (&g["shared_with"], &g["hidden_members"]),
        (&json!({"jdoe@acme.example": "view"}), &json!(2))
    );
    assert_eq!(m.get("/v1/campaigns/elsewhere").await.0, 404);
    assert_eq!(m.get("/v1/contact-groups/elsewhere-g").await.0, 404);
    let (_, list) = m.get("/v1/campaigns").await;
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["mixed"],
        "one whose members are all hidden is not shown"
    );
    let admin_view = s.get(a, "/v1/campaigns/mixed").await.body;
    assert!(
        admin_view.get("hidden_members").is_none(),
        "administrators read objects whole: {admin_view}"
    );

    // Writes keep the hidden members, and answer with what the manager sees.
    let (st, c) = m
        .patch(
            "/v1/campaigns/mixed",
            &json!({"representatives": [], "teams": ["Europe/Paris"]}),
        )
        .await;
    assert_eq!((st, &c["representatives"]), (200, &json!([])), "{c}");
    let whole = s.get(a, "/v1/campaigns/mixed").await.body;
    assert_eq!(
        (&whole["representatives"], &whole["teams"]),
        (&json!([HIDDEN_REP]), &json!(["Europe/Paris", "Other"])),
        "the hidden members are kept"
    );
    let (st, _) = m
        .patch(
            "/v1/contact-groups/mixed-g",
            &json!({"shared_with": {"jdoe@acme.example": "connect"}}),
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(
        s.get(a, "/v1/contact-groups/mixed-g").await.body["shared_with"],
        json!({"jdoe@acme.example": "connect", HIDDEN_MGR: "manage", HIDDEN_REP: "connect"})
    );
    let (st, _) = m
        .patch(
            "/v1/campaigns/mixed",
            &json!({"representatives": ["jdoe@acme.example"]}),
        )
        .await;
    assert_eq!(st, 200, "with manage_representatives: a member added");

    // Errors name nothing out of sight.
    assert_eq!(
        m.delete("/v1/campaigns/mixed").await.0,
        403,
        "hidden members"
    );
    assert_eq!(m.delete("/v1/contact-groups/mixed-g").await.0, 403);
    let (st, r) = m
        .patch("/v1/campaigns/mixed", &json!({"name": "renamed"}))
        .await;
    assert_eq!((st, r["code"].as_str()), (403, Some("forbidden")), "{r}");
    let (st, r) = m.delete("/v1/teams/Europe%2FEmpty").await;
    assert_eq!(st, 409, "{r}");
    assert!(
        r["detail"].as_str().unwrap().contains("1 object outside"),
        "{r}"
    );
    let (st, r) = m.post("/v1/campaigns", &json!({"name": "elsewhere"})).await;
    assert_eq!((st, r["code"].as_str()), (409, Some("already-exists")));
    let (st, r) = m
        .post(
            "/v1/representatives",
            &json!({"login": "new@acme.example", "email": "new@acme.example", "first_name": "N",
                    "last_name": "N", "team": "Europe/Paris", "username": "zzh"}),
        )
        .await;
    assert_eq!((st, r["code"].as_str()), (409, Some("username-taken")));
    let path = "/v1/representatives/jdoe@acme.example?purge_statistics=true";
    let v = m.version("/v1/representatives/jdoe@acme.example").await;
    let r = s.delete(&marie, path, Some(v)).await;
    m.keep("DELETE jdoe", r.status, &r.body);
    assert_eq!(r.status, 409, "{}", r.body);

    // A batch: each result as the single request would answer.
    let v = m.version("/v1/campaigns/mixed").await;
    let (st, b) = m
        .post(
            "/v1/campaigns:batch",
            &json!({"operations": [
                {"op": "update", "key": "mixed", "if_match": v, "body": {"active": false}},
                {"op": "delete", "key": "mixed", "if_match": v + 1},
                {"op": "create", "body": {"name": "fresh", "representatives": ["jdoe@acme.example"]}},
                {"op": "create", "body": {"name": "elsewhere"}}
            ]}),
        )
        .await;
    assert_eq!(st, 200);
    let statuses: Vec<i64> = b["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_i64().unwrap())
        .collect();
    assert_eq!(statuses, [200, 403, 201, 409], "{b}");
    assert_eq!(b["results"][0]["body"]["hidden_members"], 2, "{b}");

    for (what, body) in &m.bodies {
        assert!(
            !body.to_string().contains(PLANTED),
            "{what} names a login outside marie's teams: {body}"
        );
    }

    // Rights: members need manage_representatives; an unseen member is refused.
    let v = s.get(a, "/v1/campaigns/fresh").await.version();
    let r = s
        .patch(
            &nora,
            "/v1/campaigns/fresh",
            Some(v),
            &json!({"representatives": []}),
        )
        .await;
    assert_eq!((r.status, r.code()), (403, "forbidden"), "{}", r.body);
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("manage_representatives")
    );
    let r = s
        .post(
            &marie,
            "/v1/campaigns",
            &json!({"name": "out", "representatives": [HIDDEN_REP]}),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let r = s
        .post(
            &marie,
            "/v1/contact-groups",
            &json!({"name": "out", "shared_with": {HIDDEN_MGR: "view"}}),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let v = s.get(a, "/v1/campaigns/fresh").await.version();
    assert_eq!(
        s.delete(&marie, "/v1/campaigns/fresh", Some(v))
            .await
            .status,
        204,
        "every member in sight: it may delete"
    );
}
both_backends!(nothing_outside_the_teams_reaches_a_manager);
