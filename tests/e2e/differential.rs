//! The differential test: generated declarations (valid and invalid, every field shape
//! of `model::shape` and the cross-object rules) judged by the JSON Schema
//! (`schemas/roster.schema.json`), the loader's fast path and its tree path
//! (`ROSTER_LOAD_PATH=fast|tree` of `roster validate`) and a real `roster serve` (the
//! dry run `POST /v1/plan:check` of the declaration's creates); the verdicts (accept or
//! refuse) are identical. The schema judges only shapes: on the cross-object cases it
//! must accept (their shapes are valid). Bounded: a few hundred cases from a fixed seed.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::support::cli::{Harness, Server, bin, wait_output};

/// Licensed seats, for the server and `validate --seats`.
const SEATS: u32 = 3;

struct Case {
    what: String,
    /// The declaration, as JSON (the schema's input; written out as YAML).
    decl: Value,
    /// Whether the case is about a field shape (the schema judges it).
    shape: bool,
}

fn long(n: usize) -> String {
    "k".repeat(n)
}

fn keys() -> Vec<(String, bool)> {
    let mut v: Vec<(String, bool)> = [
        ("agent-7", true),
        ("Zoë Ünal", true),
        ("東京", true),
        ("\u{feff}bom", true),
        ("a@x.example", true),
        ("", false),
        (" ", false),
        (" lead", false),
        ("trail ", false),
        ("tab\tin", false),
        ("bell\u{7}", false),
        ("nel\u{85}x", false),
        ("nbsp\u{a0}", false),
        ("line\u{2028}", false),
    ]
    .iter()
    .map(|(s, ok)| (s.to_string(), *ok))
    .collect();
    v.push((long(512), true));
    v.push((long(513), false));
    v.push(("é".repeat(512), true));
    v
}

fn emails() -> Vec<(String, bool)> {
    let mut v: Vec<(String, bool)> = [
        ("a@x.example", true),
        ("zoë@exämple.fr", true),
        ("a.b+c@sub.x.example", true),
        ("a@b..c", true),
        ("a@b", false),
        ("", false),
        ("a b@x.example", false),
        ("a@x.example ", false),
        ("@x.example", false),
        ("a@.x.example", false),
        ("a@x.", false),
        ("a@@x.example", false),
        ("a\u{7}@x.example", false),
        ("a@x\u{a0}.example", false),
        ("a@x\u{3000}.example", false),
    ]
    .iter()
    .map(|(s, ok)| (s.to_string(), *ok))
    .collect();
    v.push((format!("{}@x.example", long(244)), true)); // 254
    v.push((format!("{}@x.example", long(245)), false)); // 255
    v
}

fn languages() -> Vec<(String, bool)> {
    [
        ("en", true),
        ("pt-BR", true),
        ("EN", false),
        ("pt-br", false),
        ("eng", false),
        ("", false),
        ("e n", false),
        ("fr-", false),
        ("é", false),
    ]
    .iter()
    .map(|(s, ok)| (s.to_string(), *ok))
    .collect()
}

fn usernames() -> Vec<(String, bool)> {
    let mut v: Vec<(String, bool)> = [
        ("jdoe", true),
        ("j.doe-2_x", true),
        ("Zoë", true),
        ("", false),
        (" ", false),
        ("j doe", false),
        ("j\tdoe", false),
        ("j\u{7}", false),
        ("j\u{2003}doe", false),
    ]
    .iter()
    .map(|(s, ok)| (s.to_string(), *ok))
    .collect();
    v.push(("é".repeat(100), true));
    v.push((long(101), false));
    v
}

/// Display names: free text, no shape (every surface takes them).
fn display_names() -> Vec<String> {
    ["", "Zoë", "a\u{7}b", " padded ", "tab\there"]
        .iter()
        .map(|s| s.to_string())
        .chain([long(5000)])
        .collect()
}

fn rep(login: &str) -> Value {
    json!({"login": login, "email": "r@x.example", "first_name": "Rita", "last_name": "Ray",
           "portals": ["web"], "team": "Europe"})
}

/// A valid declaration with one of every kind, `edit`ed.
fn base(edit: impl FnOnce(&mut Value)) -> Value {
    let mut d = json!({
        "portals": [{"name": "web", "features": ["multisession"]}],
        "teams": [{"name": "Europe", "teams": [{"name": "Paris"}]}],
        "administrators": [{"login": "root@x.example", "email": "root@x.example", "name": "Root"}],
        "managers": [{"login": "m@x.example", "email": "m@x.example", "name": "Mia",
                      "teams": ["Europe"], "team_rights": ["manage_representatives"]}],
        "representatives": [rep("r@x.example")],
        "campaigns": [{"name": "winter", "representatives": ["r@x.example"], "teams": ["Europe"]}],
        "contact_groups": [{"name": "book", "shared_with": {"r@x.example": "view", "m@x.example": "manage"}}],
    });
    edit(&mut d);
    d
}

fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    let mut long_paths = Vec::new();
    let mut shape = |what: String, ok_hint: bool, decl: Value| {
        let _ = ok_hint;
        out.push(Case {
            what,
            decl,
            shape: true,
        });
    };
    // Every value of every pool in every field of its shape. Keys that are references
    // elsewhere are changed alone: the references are dropped with them.
    for (k, ok) in keys() {
        shape(
            "portal.name".into(),
            ok,
            base(|d| {
                d["portals"][0]["name"] = json!(k);
                d["representatives"][0]["portals"] = json!([k]);
            }),
        );
        shape(
            "campaign.name".into(),
            ok,
            base(|d| d["campaigns"][0]["name"] = json!(k)),
        );
        shape(
            "contact_group.name".into(),
            ok,
            base(|d| d["contact_groups"][0]["name"] = json!(k)),
        );
        shape(
            "administrator.login".into(),
            ok,
            base(|d| d["administrators"][0]["login"] = json!(k)),
        );
        shape(
            "representative.login".into(),
            ok,
            base(|d| {
                d["representatives"][0]["login"] = json!(k);
                d["campaigns"][0]["representatives"] = json!([k]);
                d["contact_groups"][0]["shared_with"] = json!({ k.clone(): "view" });
            }),
        );
        let team = k.clone();
        let decl = base(|d| d["teams"][0]["teams"][0]["name"] = json!(team));
        if ok && k.chars().count() + "Europe/".len() > 512 {
            // A name the schema takes whose path (`Europe/…`) is longer than a key: the
            // path is composed of nested names, a rule across objects.
            long_paths.push(decl);
        } else {
            shape("team.name".into(), ok, decl);
        }
    }
    for bad in ["a/b", "/", "x/"] {
        shape(
            "team.name".into(),
            false,
            base(|d| d["teams"][0]["teams"][0]["name"] = json!(bad)),
        );
    }
    // A path longer than a key (two names of 300 characters).
    long_paths.push(base(|d| {
        d["teams"][0]["teams"][0]["name"] = json!(long(300));
        d["teams"][0]["teams"][0]["teams"] = json!([{"name": long(300)}]);
    }));
    for kind in ["portal", "manager"] {
        let (what, ptr, features) = match kind {
            "portal" => (
                "portal.features: not a session feature",
                "/portals/0/features",
                json!(["reports"]),
            ),
            _ => (
                "manager.grantable: not grantable",
                "/managers/0/grantable",
                json!(["file_transfer_send"]),
            ),
        };
        shape(
            what.into(),
            false,
            base(|d| {
                let (object, field) = ptr.rsplit_once('/').unwrap();
                d.pointer_mut(object).unwrap()[field] = features;
            }),
        );
    }
    for (e, ok) in emails() {
        for (what, ptr) in [
            ("administrator.email", "/administrators/0/email"),
            ("manager.email", "/managers/0/email"),
            ("representative.email", "/representatives/0/email"),
        ] {
            let e = e.clone();
            shape(
                what.into(),
                ok,
                base(|d| *d.pointer_mut(ptr).unwrap() = json!(e)),
            );
        }
        let login = e.clone();
        shape(
            "manager.login".into(),
            ok,
            base(|d| {
                d["managers"][0]["login"] = json!(login);
                d["contact_groups"][0]["shared_with"] = json!({"r@x.example": "view"});
            }),
        );
    }
    for (l, ok) in languages() {
        shape(
            "representative.language".into(),
            ok,
            base(|d| d["representatives"][0]["language"] = json!(l)),
        );
    }
    for (u, ok) in usernames() {
        shape(
            "representative.username".into(),
            ok,
            base(|d| d["representatives"][0]["username"] = json!(u)),
        );
    }
    for n in display_names() {
        for ptr in [
            "/representatives/0/first_name",
            "/representatives/0/last_name",
            "/managers/0/name",
        ] {
            let n = n.clone();
            shape(
                format!("display {}", ptr.rsplit('/').next().unwrap()),
                true,
                base(|d| *d.pointer_mut(ptr).unwrap() = json!(n)),
            );
        }
    }
    for m in [0, 1, 10, 11] {
        shape(
            "representative.multisession".into(),
            (1..=10).contains(&m),
            base(|d| d["representatives"][0]["multisession"] = json!(m)),
        );
    }
    // Random combinations: two to four fields of the representative at once.
    let mut rng = StdRng::seed_from_u64(0x5eed_d1ff);
    let pools: [(&str, Vec<(String, bool)>); 4] = [
        ("email", emails()),
        ("language", languages()),
        ("username", usernames()),
        ("login", keys()),
    ];
    for _ in 0..30 {
        let mut d = base(|_| {});
        let mut fields = Vec::new();
        for (field, pool) in &pools {
            if rng.random_bool(0.6) {
                let (v, _) = &pool[rng.random_range(0..pool.len())];
                d["representatives"][0][*field] = json!(v);
                fields.push(*field);
            }
        }
        if fields.contains(&"login") {
            let login = d["representatives"][0]["login"].clone();
            d["campaigns"][0]["representatives"] = json!([login]);
            d["contact_groups"][0]["shared_with"] = json!({"m@x.example": "view"});
        }
        shape(format!("representative {}", fields.join("+")), false, d);
    }

    // Cross-object rules (and object rules the schema cannot say).
    let mut rule = |what: &str, decl: Value| {
        out.push(Case {
            what: what.into(),
            decl,
            shape: false,
        })
    };
    let with_reps = |n: usize, edit: &dyn Fn(&mut Value, usize)| {
        base(|d| {
            let reps: Vec<Value> = (0..n)
                .map(|i| {
                    let mut r = rep(&format!("r{i}@x.example"));
                    r["first_name"] = json!(format!("Rita{i}"));
                    edit(&mut r, i);
                    r
                })
                .collect();
            d["representatives"] = json!(reps);
            d["campaigns"][0]["representatives"] = json!(["r0@x.example"]);
            d["contact_groups"][0]["shared_with"] = json!({"r0@x.example": "view"});
        })
    };
    rule(
        "seats: as many operators as seats",
        with_reps(3, &|_, _| {}),
    );
    rule("seats: one operator too many", with_reps(4, &|_, _| {}));
    rule(
        "seats: the fourth without support management",
        with_reps(4, &|r, i| {
            if i == 3 {
                r["support_management"] = json!(false);
            }
        }),
    );
    rule(
        "seats: the fourth inactive",
        with_reps(4, &|r, i| {
            if i == 3 {
                r["status"] = json!("inactive");
            }
        }),
    );
    for (what, features, login_of) in [
        (
            "login collision: manager = rep with admin center",
            json!(["admin_center_access"]),
            "/managers/0/login",
        ),
        (
            "no collision: manager = rep without admin center",
            json!([]),
            "/managers/0/login",
        ),
        (
            "login collision: administrator = rep with admin center",
            json!(["admin_center_access"]),
            "/administrators/0/login",
        ),
        (
            "no collision: administrator = rep without admin center",
            json!([]),
            "/administrators/0/login",
        ),
    ] {
        rule(
            what,
            base(|d| {
                *d.pointer_mut(login_of).unwrap() = json!("r@x.example");
                d["representatives"][0]["features"] = features;
                d["contact_groups"][0]["shared_with"] = json!({"r@x.example": "view"});
            }),
        );
    }
    rule(
        "login collision: administrator = manager",
        base(|d| d["administrators"][0]["login"] = json!("m@x.example")),
    );
    rule(
        "duplicate: two representatives, one login ignoring case",
        base(|d| {
            let mut other = rep("R@X.example");
            other["first_name"] = json!("Other");
            d["representatives"].as_array_mut().unwrap().push(other);
        }),
    );
    rule(
        "duplicate: two representatives, one user name",
        with_reps(2, &|r, _| r["username"] = json!("same")),
    );
    rule(
        "leader: a member of the team",
        base(|d| d["teams"][0]["leader"] = json!("r@x.example")),
    );
    rule(
        "leader: a member of a sub-team",
        base(|d| {
            d["representatives"][0]["team"] = json!("Europe/Paris");
            d["teams"][0]["leader"] = json!("r@x.example");
        }),
    );
    rule(
        "leader: not a member",
        base(|d| d["teams"][0]["teams"][0]["leader"] = json!("r@x.example")),
    );
    rule(
        "reference: an undeclared team",
        base(|d| d["representatives"][0]["team"] = json!("Asia")),
    );
    rule(
        "reference: an undeclared portal",
        base(|d| d["representatives"][0]["portals"] = json!(["mobile"])),
    );
    rule(
        "rule 1: reports without admin center",
        base(|d| d["representatives"][0]["features"] = json!(["reports"])),
    );
    rule(
        "rule 1: reports with admin center",
        base(|d| d["representatives"][0]["features"] = json!(["reports", "admin_center_access"])),
    );
    rule(
        "rule 4 (a warning): file transfer no portal enables",
        base(|d| d["representatives"][0]["features"] = json!(["file_transfer_send"])),
    );
    rule(
        "rule 4 (a warning): multisession 3 on a portal that enables it",
        base(|d| d["representatives"][0]["multisession"] = json!(3)),
    );
    rule(
        "a manager granting what it may grant",
        base(|d| d["managers"][0]["grantable"] = json!(["admin_center_access"])),
    );
    for decl in long_paths {
        rule("team.path: longer than a key", decl);
    }
    out
}

/// A YAML double-quoted scalar: every white space but the space, and every control
/// character, escaped (so that the file says the text exactly).
fn quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() || (c.is_whitespace() && c != ' ') || c == '\u{feff}' => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Block YAML of a JSON value (strings always quoted).
fn yaml(v: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, v) in m {
                out.push_str(&format!("{pad}{}:", quoted(k)));
                scalar_or_block(v, indent, out);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for item in a {
                out.push_str(&format!("{pad}-"));
                match item {
                    Value::Object(_) | Value::Array(_) => {
                        out.push('\n');
                        yaml(item, indent + 2, out);
                    }
                    _ => {
                        out.push(' ');
                        out.push_str(&flow(item));
                        out.push('\n');
                    }
                }
            }
        }
        other => {
            out.push_str(&pad);
            out.push_str(&flow(other));
            out.push('\n');
        }
    }
}

fn scalar_or_block(v: &Value, indent: usize, out: &mut String) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            yaml(v, indent + 2, out);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            yaml(v, indent + 2, out);
        }
        _ => {
            out.push(' ');
            out.push_str(&flow(v));
            out.push('\n');
        }
    }
}

fn flow(v: &Value) -> String {
    match v {
        Value::String(s) => quoted(s),
        Value::Object(m) if m.is_empty() => "{}".into(),
        Value::Array(a) if a.is_empty() => "[]".into(),
        other => other.to_string(),
    }
}

/// `roster validate` over the file with one load path: true when it accepts.
fn loader(file: &Path, state: &Path, path: &str, what: &str) -> bool {
    let child = Command::new(bin())
        .args(["validate", "--seats", &SEATS.to_string()])
        .arg(file)
        .env("ROSTER_LOAD_PATH", path)
        .env("ROSTER_NO_CACHE", "true")
        .env("ROSTER_STATE_DIR", state)
        .env("NO_COLOR", "1")
        .env_remove("GITHUB_ACTIONS")
        .env_remove("ROSTER_ANNOTATIONS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run roster validate");
    let out = wait_output(child, Duration::from_secs(60), "roster validate");
    match out.status.code() {
        Some(0) => true,
        // With `fast`, a file the fast path declines is refused: it declines exactly what
        // the schema refuses, so a valid file declined shows as a divergence.
        Some(3) => false,
        other => panic!(
            "{what}: validate ({path}) exited with {other:?}:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// The declaration as the plan's creates: teams flat, parents first and without their
/// leader (set by an update once the representatives exist, as a plan orders it).
fn operations(d: &Value) -> Vec<Value> {
    let mut ops = Vec::new();
    let create = |kind: &str, body: &Value| json!({"kind": kind, "op": "create", "body": body});
    let list = |section: &str| d[section].as_array().cloned().unwrap_or_default();
    for p in list("portals") {
        ops.push(create("portal", &p));
    }
    let mut leaders = Vec::new();
    fn teams(
        items: &[Value],
        parent: Option<&str>,
        ops: &mut Vec<Value>,
        leaders: &mut Vec<Value>,
    ) {
        for t in items {
            let name = t["name"].as_str().unwrap_or_default();
            let path = match parent {
                Some(p) => format!("{p}/{name}"),
                None => name.to_string(),
            };
            let mut body = t.clone();
            let m = body.as_object_mut().unwrap();
            m.remove("name");
            m.remove("teams");
            if let Some(l) = m.remove("leader") {
                leaders.push(
                    json!({"kind": "team", "op": "update", "key": path, "body": {"leader": l}}),
                );
            }
            m.insert("path".into(), json!(path));
            ops.push(json!({"kind": "team", "op": "create", "body": body}));
            let subs = t["teams"].as_array().cloned().unwrap_or_default();
            teams(&subs, Some(&path), ops, leaders);
        }
    }
    teams(&list("teams"), None, &mut ops, &mut leaders);
    for (section, kind) in [
        ("administrators", "administrator"),
        ("managers", "manager"),
        ("representatives", "representative"),
    ] {
        for o in list(section) {
            ops.push(create(kind, &o));
        }
    }
    ops.extend(leaders);
    for (section, kind) in [
        ("campaigns", "campaign"),
        ("contact_groups", "contact_group"),
    ] {
        for o in list(section) {
            ops.push(create(kind, &o));
        }
    }
    ops
}

fn server_accepts(server: &Server, d: &Value, what: &str) -> bool {
    let (status, answer) = server.http(
        "POST",
        "/v1/plan:check",
        Some(json!({"operations": operations(d)})),
        None,
    );
    match status {
        200 => answer["results"]
            .as_array()
            .expect("results")
            .iter()
            .all(|r| (200..300).contains(&r["status"].as_u64().unwrap_or(0))),
        // A body the server cannot take at all (a key a path cannot carry).
        400 | 422 => false,
        other => panic!("{what}: plan:check answered {other}: {answer}"),
    }
}

#[test]
fn schema_fast_path_tree_path_and_server_reach_one_verdict() {
    let started = std::time::Instant::now();
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/roster.schema.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let validator = jsonschema::draft202012::new(&schema).expect("the schema compiles");
    let server = Server::start_with(&Harness::plain("3"), &[]);
    let dir = tempfile::tempdir().unwrap();
    let cases = cases();
    assert!(cases.len() >= 250, "{} cases", cases.len());
    // Two workers: the loader's two runs per case are child processes.
    let verdicts: Vec<(bool, bool, bool, bool)> = std::thread::scope(|scope| {
        let chunks: Vec<_> = cases
            .chunks(cases.len().div_ceil(2))
            .enumerate()
            .map(|(w, chunk)| {
                let (server, validator, dir) = (&server, &validator, dir.path());
                scope.spawn(move || {
                    let state = dir.join(format!("state{w}"));
                    chunk
                        .iter()
                        .enumerate()
                        .map(|(i, c)| {
                            let file = dir.join(format!("case-{w}-{i}.yaml"));
                            let mut text = String::new();
                            yaml(&c.decl, 0, &mut text);
                            std::fs::write(&file, &text).unwrap();
                            (
                                validator.is_valid(&c.decl),
                                loader(&file, &state, "fast", &c.what),
                                loader(&file, &state, "tree", &c.what),
                                server_accepts(server, &c.decl, &c.what),
                            )
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        chunks.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let mut divergent = Vec::new();
    let mut per_kind: std::collections::BTreeMap<String, (usize, usize)> = Default::default();
    for (c, &(schema, fast, tree, server)) in cases.iter().zip(&verdicts) {
        let kind = c.what.split(['.', ' ', ':']).next().unwrap().to_string();
        let e = per_kind.entry(kind).or_default();
        if tree {
            e.0 += 1;
        } else {
            e.1 += 1;
        }
        let schema_ok = if c.shape { schema == tree } else { schema };
        if !(schema_ok && fast == tree && tree == server) {
            let mut text = String::new();
            yaml(&c.decl, 0, &mut text);
            divergent.push(format!(
                "{}: schema {schema}, fast {fast}, tree {tree}, server {server}\n{}",
                c.what,
                if text.len() < 3000 {
                    text
                } else {
                    "(long)".into()
                }
            ));
        }
    }
    let accepted = verdicts.iter().filter(|v| v.2).count();
    eprintln!(
        "differential: {} cases ({}), {accepted} accepted, {} refused, in {:?}",
        cases.len(),
        per_kind
            .iter()
            .map(|(k, (a, r))| format!("{k} {}", a + r))
            .collect::<Vec<_>>()
            .join(", "),
        cases.len() - accepted,
        started.elapsed()
    );
    assert!(
        divergent.is_empty(),
        "{} of {} cases divide the surfaces:\n{}",
        divergent.len(),
        cases.len(),
        divergent.join("\n")
    );
    // Both verdicts occur, on shapes and on rules.
    for shape in [true, false] {
        let of: Vec<bool> = cases
            .iter()
            .zip(&verdicts)
            .filter(|(c, _)| c.shape == shape)
            .map(|(_, v)| v.2)
            .collect();
        assert!(of.contains(&true) && of.contains(&false), "shape {shape}");
    }
}
