//! Sign-in as it works (seed 001): `force_password_change` is a one-time action. roster
//! sends it with a password (a create, a new `rotation`); the person changes the
//! password through the reference server's `POST /v1/sign-in:change-password`, which
//! clears it as a console does; roster's next plan has nothing to change, and a later
//! rotation sends the flag once more. The route on both backends: refusals alike for an
//! unknown login, a wrong password and an inactive representative; the audit record
//! names the person and never a password.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::cli::{Harness, Run, declaration};
use crate::support::server::Srv;

const HARNESS: Harness = Harness {
    seats: "50",
    command_timeout: Duration::from_secs(120),
    retry_busy: false,
};

module_server!();

const PASSWORD_VAR: &str = "SIGNIN_ANA_PASSWORD";
const INITIAL: &str = "Initial-Passw0rd!";

fn org(rotation: &str) -> String {
    format!(
        "representatives:
  - login: ana.silva@acme.example
    email: ana.silva@acme.example
    first_name: Ana
    last_name: Silva
    password: {{ env: {PASSWORD_VAR}, rotation: \"{rotation}\" }}
    sign_in: {{ force_password_change: true }}
"
    )
}

impl Server {
    fn roster(&self, args: &[&str], cwd: &Path) -> Run {
        let mut cmd = self.base_command(args, cwd);
        cmd.env(PASSWORD_VAR, INITIAL);
        self.finish(cmd, &args.join(" "))
    }

    fn forced(&self) -> bool {
        let rep = self.get("/v1/representatives/ana.silva@acme.example");
        rep["sign_in"]["force_password_change"] == json!(true)
    }

    fn change_password(&self, current: &str, new: &str) -> (u16, Value) {
        self.http_as(
            "",
            "POST",
            "/v1/sign-in:change-password",
            Some(json!({"login": "Ana.Silva@acme.example", "current_password": current, "new_password": new})),
            None,
        )
    }
}

#[test]
fn a_forced_password_change_is_applied_once_and_not_planned_again_once_done() {
    let server = Server::start(&[]);
    let root = tempfile::tempdir().unwrap();
    let dir = declaration(root.path(), "org", &org("2026-01"));
    let d = dir.to_str().unwrap();

    let run = server.roster(&["apply", d, "--auto-approve"], root.path());
    assert_eq!(run.code, 0, "{run}");
    assert!(server.forced(), "created with the forced change");

    // The person signs in and changes the password: a wrong current one changes nothing.
    let (status, body) = server.change_password("wrong", "Chosen-by-Ana-1");
    assert_eq!(status, 401, "{body}");
    assert!(server.forced());
    let (status, body) = server.change_password(INITIAL, "Chosen-by-Ana-1");
    assert_eq!(status, 204, "{body}");
    assert!(!server.forced(), "the server cleared the one-time flag");
    // The new password is the one now: the old one is refused.
    let (status, _) = server.change_password(INITIAL, "Chosen-by-Ana-2");
    assert_eq!(status, 401);

    let run = server.roster(&["plan", d, "--detailed-exitcode"], root.path());
    assert_eq!(
        run.code, 0,
        "no drift once the person changed the password:\n{run}"
    );
    assert!(!run.stdout.contains("force_password_change"), "{run}");

    // A new rotation sets the password again, and with it the forced change.
    std::fs::write(dir.join("org.yaml"), org("2026-02")).unwrap();
    let run = server.roster(&["plan", d, "--detailed-exitcode"], root.path());
    assert_eq!(run.code, 2, "{run}");
    assert!(run.stdout.contains("force_password_change"), "{run}");
    let run = server.roster(&["apply", d, "--auto-approve"], root.path());
    assert_eq!(run.code, 0, "{run}");
    assert!(server.forced(), "sent again with the rotated password");
    let run = server.roster(&["plan", d, "--detailed-exitcode"], root.path());
    assert_eq!(run.code, 0, "applied once:\n{run}");
}

async fn change(s: &Srv, login: &str, current: &str, new: &str) -> (u16, Value) {
    let r = s
        .http
        .post(format!("{}/v1/sign-in:change-password", s.base))
        .json(&json!({"login": login, "current_password": current, "new_password": new}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn own_password_change(s: &Srv) {
    let rep = json!({"login": "bo@acme.example", "email": "bo@acme.example",
        "first_name": "Bo", "last_name": "Lund",
        "password": {"value": "first-Secret-1", "rotation": "r1"},
        "sign_in": {"force_password_change": true, "self_service_password_reset": true}});
    let created = s.create(&s.admin, "representatives", rep).await;
    let v1 = created["version"].as_i64().unwrap();

    // Refused alike: unknown login, wrong password, an account without a password.
    let (st1, unknown) = change(s, "nobody@acme.example", "x", "y").await;
    let (st2, wrong) = change(s, "bo@acme.example", "not-it", "y").await;
    assert_eq!((st1, st2), (401, 401));
    assert_eq!(unknown, wrong, "one body whether the login exists or not");
    assert_eq!(unknown["code"], "unauthorized");
    s.create(&s.admin, "representatives",
        json!({"login": "np@acme.example", "email": "np@acme.example", "first_name": "N", "last_name": "P"}))
        .await;
    assert_eq!(change(s, "np@acme.example", "", "y").await.0, 401);

    // Shapes: a missing field, an unknown one, the same password again.
    let r = s
        .post(
            "",
            "/v1/sign-in:change-password",
            &json!({"login": "bo@acme.example"}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    let (st, body) = change(s, "bo@acme.example", "first-Secret-1", "first-Secret-1").await;
    assert_eq!(st, 422, "{body}");
    assert_eq!(body["errors"][0]["code"], "secret", "{body}");
    assert!(!body.to_string().contains("first-Secret-1"), "{body}");

    let (st, body) = change(s, "bo@acme.example", "first-Secret-1", "second-Secret-2").await;
    assert_eq!(st, 204, "{body}");
    let got = s.get(&s.admin, "/v1/representatives/bo@acme.example").await;
    assert_eq!(got.body["version"], json!(v1 + 1));
    assert_eq!(
        got.body["sign_in"],
        json!({"self_service_password_reset": true})
    );
    assert_eq!(
        got.body["password"],
        json!({"rotation": "r1"}),
        "the marker stays"
    );

    let audit = s.get(&s.admin, "/v1/audit?limit=1000").await;
    let last = audit.body["items"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["actor"], "bo@acme.example", "{last}");
    assert_eq!(last["token_id"], Value::Null, "{last}");
    assert_eq!(last["kind"], "representative");
    assert_eq!(
        last["before"]["sign_in"]["force_password_change"],
        json!(true)
    );
    let text = audit.body.to_string();
    assert!(!text.contains("Secret-"), "no password in the audit log");

    // An inactive representative may not sign in, so may not change it either.
    let r = s
        .patch(
            &s.admin,
            "/v1/representatives/bo@acme.example",
            Some(v1 + 1),
            &json!({"status": "inactive"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let (st, body) = change(s, "bo@acme.example", "second-Secret-2", "third-Secret-3").await;
    assert_eq!((st, &body), (401, &wrong));
}

both_backends!(own_password_change);

fn admin_org(status: &str) -> String {
    format!(
        "administrators:
  - login: ola.nowak@acme.example
    email: ola.nowak@acme.example
    first_name: Ola
    last_name: Nowak
    language: pl
    status: {status}
    password: {{ env: {PASSWORD_VAR}, rotation: \"1\" }}
"
    )
}

/// Seed 004: an administrator is a full user (names, e-mail, password, language,
/// status); planned, applied, signed in with, and refused once inactive.
#[test]
fn administrators_are_full_users() {
    let server = Server::start(&[]);
    let root = tempfile::tempdir().unwrap();
    let bad = declaration(
        root.path(),
        "bad",
        "administrators:\n  - login: x@acme.example\n    email: x@acme.example\n    first_name: X\n",
    );
    let run = server.roster(&["validate", bad.to_str().unwrap()], root.path());
    assert_ne!(run.code, 0, "{run}");
    assert!(
        run.stdout.contains("org.yaml:2:") && run.stdout.contains("no name"),
        "{run}"
    );

    let dir = declaration(root.path(), "org", &admin_org("active"));
    let d = dir.to_str().unwrap();
    let run = server.roster(&["apply", d, "--auto-approve"], root.path());
    assert_eq!(run.code, 0, "{run}");
    let live = server.get("/v1/administrators/ola.nowak@acme.example");
    assert_eq!(live["language"], "pl", "{live}");
    assert_eq!(live["last_name"], "Nowak", "{live}");
    assert_eq!(live["password"], json!({"rotation": "1"}), "{live}");
    let run = server.roster(&["plan", d, "--detailed-exitcode"], root.path());
    assert_eq!(run.code, 0, "{run}");

    // The account's password policy holds for a person's own change too.
    let set_min = |n: i64| {
        let version = server.get("/v1/account")["version"].as_i64().unwrap();
        let (st, body) = server.http(
            "PATCH",
            "/v1/account",
            Some(json!({"password_policy": {"min_length": n}})),
            Some(version),
        );
        assert_eq!(st, 200, "{body}");
    };
    set_min(20);
    let (st, body) = server.http_as(
        "",
        "POST",
        "/v1/sign-in:change-password",
        Some(json!({"login": "ola.nowak@acme.example", "current_password": INITIAL, "new_password": "Ola-own-1"})),
        None,
    );
    assert_eq!(
        (st, body["code"].as_str()),
        (422, Some("password-policy")),
        "{body}"
    );
    assert_eq!(body["pointer"], "/new_password", "{body}");
    assert!(
        !body.to_string().contains("Ola-own-1"),
        "no value in the answer: {body}"
    );
    set_min(1);

    // The declared password is hers: she changes it, and holds a token that works.
    let (st, body) = server.http_as(
        "",
        "POST",
        "/v1/sign-in:change-password",
        Some(json!({"login": "ola.nowak@acme.example", "current_password": INITIAL, "new_password": "Ola-own-1"})),
        None,
    );
    assert_eq!(st, 204, "{body}");
    let (st, tok) = server.http(
        "POST",
        "/v1/tokens",
        Some(json!({"administrator": "ola.nowak@acme.example"})),
        None,
    );
    assert_eq!(st, 201, "{tok}");
    let tok = tok["token"].as_str().unwrap().to_string();
    assert_eq!(server.http_as(&tok, "GET", "/v1/whoami", None, None).0, 200);

    std::fs::write(dir.join("org.yaml"), admin_org("inactive")).unwrap();
    let run = server.roster(&["plan", d, "--detailed-exitcode"], root.path());
    assert_eq!(run.code, 2, "{run}");
    assert!(run.stdout.contains("status"), "{run}");
    let run = server.roster(&["apply", d, "--auto-approve"], root.path());
    assert_eq!(run.code, 0, "{run}");
    let (st, body) = server.http_as(&tok, "GET", "/v1/whoami", None, None);
    assert_eq!(
        st, 401,
        "an inactive administrator's token is refused: {body}"
    );
    let run = server.roster(&["plan", d, "--detailed-exitcode"], root.path());
    assert_eq!(run.code, 0, "{run}");
}

/// Seed 003: one `contact_group_shares` entry shares every declared group; a group's own
/// entry for that login wins; the plan shows each group gaining it, and a second plan
/// after apply has nothing to change.
#[test]
fn contact_groups_shared_all_at_once() {
    let server = Server::start(&[]);
    let root = tempfile::tempdir().unwrap();
    let yaml = "representatives:
  - login: lea@acme.example
    email: lea@acme.example
    first_name: Lea
    last_name: Roux
contact_groups:
  - name: hospitals
  - name: schools
  - name: banks
    shared_with: { lea@acme.example: manage }
contact_group_shares:
  - { login: Lea@acme.example, permission: view }
";
    let dir = declaration(root.path(), "org", yaml);
    let d = dir.to_str().unwrap();
    // The entry is one line with its count; banks keeps its own entry.
    let run = server.roster(&["plan", d], root.path());
    assert_eq!(run.code, 0, "{run}");
    assert!(
        run.stdout.contains(
            "+ lea@acme.example gains view on 2 of 3 contact groups (contact_group_shares)"
        ),
        "{run}"
    );
    assert!(
        run.stdout
            .contains("1 representative gains view on 2 of 3 contact groups"),
        "{run}"
    );
    assert!(
        !run.stdout.contains("contact group hospitals (view)"),
        "no per-group effect: {run}"
    );
    let run = server.roster(&["plan", d, "--format", "json"], root.path());
    assert_eq!(run.code, 0, "{run}");
    let plan: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        plan["group_shares"],
        json!([{"login": "lea@acme.example", "permission": "view", "change": "gains",
                "groups": ["hospitals", "schools"], "of": 3, "declared": true}]),
        "{plan}"
    );
    let groups = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["id"]["kind"] == "contact_group")
        .count();
    assert_eq!(groups, 3, "the per-group changes stay: {plan}");
    let run = server.roster(&["apply", d, "--auto-approve"], root.path());
    assert_eq!(run.code, 0, "{run}");
    for (g, p) in [
        ("hospitals", "view"),
        ("schools", "view"),
        ("banks", "manage"),
    ] {
        let live = server.get(&format!("/v1/contact-groups/{g}"));
        assert_eq!(
            live["shared_with"],
            json!({"lea@acme.example": p}),
            "{g}: {live}"
        );
    }
    let run = server.roster(&["plan", d, "--detailed-exitcode"], root.path());
    assert_eq!(run.code, 0, "{run}");
    // A fourth group is one more gain, of 1 of 4.
    let four = yaml.replace("  - name: banks\n", "  - name: clinics\n  - name: banks\n");
    std::fs::write(dir.join("org.yaml"), &four).unwrap();
    let run = server.roster(&["plan", d], root.path());
    assert_eq!(run.code, 0, "{run}");
    assert!(
        run.stdout
            .contains("lea@acme.example gains view on 1 of 4 contact groups"),
        "{run}"
    );
    // Removing the entry is one loss line; the updates are folded into it.
    let gone = yaml.replace(
        "contact_group_shares:\n  - { login: Lea@acme.example, permission: view }\n",
        "",
    );
    std::fs::write(dir.join("org.yaml"), &gone).unwrap();
    let run = server.roster(&["plan", d, "--detailed-exitcode"], root.path());
    assert_eq!(run.code, 2, "{run}");
    assert!(
        run.stdout.contains(
            "- lea@acme.example loses view on 2 of 3 contact groups (not in contact_group_shares)"
        ),
        "{run}"
    );
    assert!(
        !run.stdout.contains("update contact_group/hospitals"),
        "folded: {run}"
    );
    let run = server.roster(&["plan", d, "--format", "markdown"], root.path());
    assert!(
        run.stdout.contains("lea@acme.example loses view on 2 of 3"),
        "{run}"
    );
    std::fs::write(dir.join("org.yaml"), yaml).unwrap();
    // An undeclared login is reported once, at the entry's own line and column.
    let unknown = declaration(
        root.path(),
        "unknown",
        &format!("{yaml}  - {{ login: lee@acme.example, permission: connect }}\n"),
    );
    let run = server.roster(&["validate", unknown.to_str().unwrap()], root.path());
    assert_eq!(run.code, 3, "{run}");
    let at = format!("{}:13:14:", unknown.join("org.yaml").display());
    assert!(run.stdout.contains(&at), "{at}: {run}");
    assert_eq!(
        run.stdout
            .matches("`lee@acme.example` is not declared")
            .count(),
        1,
        "{run}"
    );
    // Twice in the list is an error at its line.
    let bad = declaration(
        root.path(),
        "bad",
        &format!("{yaml}  - {{ login: lea@acme.example, permission: connect }}\n"),
    );
    let run = server.roster(&["validate", bad.to_str().unwrap()], root.path());
    assert_ne!(run.code, 0, "{run}");
    assert!(run.stdout.contains("twice"), "{run}");
}
