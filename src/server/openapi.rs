//! The OpenAPI 3.1 document of the live API, served at `/openapi.json` and checked in as
//! `schemas/openapi.json` (a test fails when the copy is stale).
//!
//! Paths, parameters and responses are generated here from the same tables the router
//! uses (`Kind::ALL`, the problem codes), so they cannot drift from the server. Component
//! schemas of the model types come from their `schemars` derives (JSON Schema 2020-12,
//! which OpenAPI 3.1 adopts), with the API's two differences applied: objects carry a
//! `version`, and a password is written as `{value, rotation}` and read as `{rotation}`.
//! The result is checked to deserialize as a `utoipa::openapi::OpenApi` (utoipa 5).

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use crate::model::catalog::CatalogDoc;
use crate::model::{
    Account, Administrator, Campaign, ContactGroup, Kind, Manager, Portal, Principal,
    Representative, Team,
};

fn type_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Portal => "Portal",
        Kind::Team => "Team",
        Kind::Administrator => "Administrator",
        Kind::Manager => "Manager",
        Kind::Representative => "Representative",
        Kind::Campaign => "Campaign",
        Kind::ContactGroup => "ContactGroup",
        Kind::Account => "Account",
    }
}

fn r(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn problem_response(desc: &str) -> Value {
    json!({
        "description": desc,
        "content": { "application/problem+json": { "schema": r("Problem") } }
    })
}

fn json_response(desc: &str, schema: Value, etag: bool) -> Value {
    let mut v = json!({
        "description": desc,
        "content": { "application/json": { "schema": schema } }
    });
    if etag {
        v["headers"] = json!({ "ETag": { "description": "strong entity tag: \"<version>\"", "schema": { "type": "string" } } });
    }
    v
}

fn responses(mut ok: Vec<(&str, Value)>, errors: &[(&str, &str)]) -> Value {
    let mut m = Map::new();
    for (code, v) in ok.drain(..) {
        m.insert(code.to_string(), v);
    }
    let common = [
        (
            "401",
            "missing, unknown, revoked or expired token (`unauthorized`)",
        ),
        ("429", "rate limited (`rate-limited`), with Retry-After"),
        (
            "503",
            "temporarily unavailable (`unavailable`), with Retry-After",
        ),
    ];
    for (code, desc) in errors.iter().chain(common.iter()) {
        m.insert(code.to_string(), problem_response(desc));
    }
    Value::Object(m)
}

fn auth() -> Value {
    json!([{ "bearer": [] }])
}

fn add_version(schema: &mut Value) {
    if let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        props.remove("previously");
        props.insert(
            "version".into(),
            json!({"type": "integer", "minimum": 1, "description": "starts at 1, +1 per write; send it back as If-Match"}),
        );
    }
    if let Some(req) = schema.get_mut("required").and_then(Value::as_array_mut) {
        req.push(json!("version"));
    } else if let Some(o) = schema.as_object_mut() {
        o.insert("required".into(), json!(["version"]));
    }
}

fn components() -> Map<String, Value> {
    let mut g = SchemaSettings::draft2020_12()
        .with(|s| {
            s.definitions_path = "/components/schemas".into();
            s.meta_schema = None;
        })
        .into_generator();
    fn add<T: JsonSchema>(
        g: &mut schemars::SchemaGenerator,
        out: &mut Map<String, Value>,
        name: &str,
    ) {
        let mut s = g.root_schema_for::<T>().to_value();
        if let Some(o) = s.as_object_mut() {
            o.remove("$schema");
            o.remove("components");
        }
        out.insert(name.into(), s);
    }
    let mut out = Map::new();
    add::<Portal>(&mut g, &mut out, "Portal");
    add::<Team>(&mut g, &mut out, "Team");
    add::<Administrator>(&mut g, &mut out, "Administrator");
    add::<Manager>(&mut g, &mut out, "Manager");
    add::<Representative>(&mut g, &mut out, "Representative");
    add::<Campaign>(&mut g, &mut out, "Campaign");
    add::<ContactGroup>(&mut g, &mut out, "ContactGroup");
    add::<Account>(&mut g, &mut out, "Account");
    add::<Principal>(&mut g, &mut out, "Principal");
    add::<CatalogDoc>(&mut g, &mut out, "CatalogDoc");
    for (k, v) in g.take_definitions(true) {
        out.entry(k).or_insert(v);
    }
    if let Some(props) = out
        .get_mut("SecretRef")
        .and_then(|s| s.get_mut("properties"))
        .and_then(Value::as_object_mut)
    {
        props.insert(
            "value".into(),
            json!({"type": "string", "writeOnly": true,
                   "description": "the password (write only; stored as an argon2id hash, never returned). The api takes only `value` and `rotation`; `env` and `file` are for declaration files."}),
        );
    }
    // The field shapes (`model::shape`) are in the types' schemas already: a request
    // the document calls valid is one whose fields the server's checks take.
    for kind in Kind::ALL {
        let mut s = out[type_name(kind)].clone();
        add_version(&mut s);
        if matches!(kind, Kind::Campaign | Kind::ContactGroup) {
            if let Some(props) = s.get_mut("properties").and_then(Value::as_object_mut) {
                props.insert(
                    "hidden_members".into(),
                    json!({"type": "integer", "minimum": 1, "readOnly": true,
                           "description": "answered to a manager token only: how many members (representatives and teams of a campaign, shared logins of a contact group) are outside its teams and left out of this object; a manager's write keeps them. Absent when there are none, and always for an administrator"}),
                );
            }
        }
        out.insert(format!("{}Object", type_name(kind)), s.clone());
        out.insert(
            format!("{}Page", type_name(kind)),
            json!({
                "type": "object",
                "required": ["items", "next_cursor"],
                "properties": {
                    "items": { "type": "array", "items": r(&format!("{}Object", type_name(kind))) },
                    "next_cursor": { "type": ["string", "null"], "description": "pass back as `cursor` for the next page; null on the last page" }
                }
            }),
        );
    }
    out.insert(
        "Problem".into(),
        json!({
            "type": "object",
            "description": "RFC 9457 problem details",
            "required": ["type", "title", "status", "detail", "code"],
            "properties": {
                "type": { "type": "string" },
                "title": { "type": "string" },
                "status": { "type": "integer" },
                "detail": { "type": "string" },
                "code": { "type": "string", "enum": super::problem::CODES.iter().map(|(c, _)| *c).collect::<Vec<_>>() },
                "pointer": { "type": "string", "description": "JSON pointer into the request body" },
                "lease": { "$ref": "#/components/schemas/LeaseHolder", "description": "`lease-held`: who holds the apply lease, until when" },
                "errors": { "type": "array", "items": {
                    "type": "object",
                    "required": ["pointer", "code", "detail"],
                    "properties": {
                        "pointer": { "type": "string" },
                        "code": { "type": "string", "description": "a rule code of model::rules::RuleCode" },
                        "detail": { "type": "string" }
                    }
                }}
            }
        }),
    );
    let idem_key = json!({ "type": "string", "minLength": 1, "maxLength": 255, "pattern": super::routes::IDEMPOTENCY_KEY_PATTERN });
    let batch_if_match = json!({ "type": "integer", "description": "the version read; without it this operation answers 428 `precondition-required`" });
    out.insert(
        "BatchRequest".into(),
        json!({
            "type": "object",
            "required": ["operations"],
            "additionalProperties": false,
            "properties": { "operations": { "type": "array", "maxItems": super::MAX_BATCH, "items": { "oneOf": [
                { "type": "object", "required": ["op", "body"], "additionalProperties": false, "properties": {
                    "op": { "const": "create" }, "body": { "type": "object" }, "idempotency_key": idem_key.clone() } },
                { "type": "object", "required": ["op", "key", "body"], "additionalProperties": false, "properties": {
                    "op": { "const": "update" }, "key": { "type": "string" }, "if_match": batch_if_match.clone(), "body": { "type": "object", "description": "merge patch" } } },
                { "type": "object", "required": ["op", "key"], "additionalProperties": false, "properties": {
                    "op": { "const": "delete" }, "key": { "type": "string" }, "if_match": batch_if_match.clone(), "purge_statistics": { "type": "boolean" } } }
            ]}}}
        }),
    );
    let kinds: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
    let kind = json!({ "type": "string", "enum": kinds, "description": "the kind of the object (singular, snake_case)" });
    let set_password = json!({ "type": "boolean", "description": "a password would be set with this write (its value is never sent: the right to set passwords is checked)" });
    out.insert(
        "PlanCheckRequest".into(),
        json!({
            "type": "object",
            "required": ["operations"],
            "additionalProperties": false,
            "properties": { "operations": { "type": "array", "maxItems": super::MAX_BATCH, "items": { "oneOf": [
                { "type": "object", "required": ["kind", "op", "body"], "additionalProperties": false, "properties": {
                    "kind": kind, "op": { "const": "create" }, "body": { "type": "object" },
                    "idempotency_key": { "type": "string", "minLength": 1, "maxLength": 255, "pattern": super::routes::IDEMPOTENCY_KEY_PATTERN, "description": "accepted and ignored: a check remembers nothing" },
                    "set_password": set_password } },
                { "type": "object", "required": ["kind", "op", "key", "body"], "additionalProperties": false, "properties": {
                    "kind": kind, "op": { "const": "update" }, "key": { "type": "string" },
                    "if_match": { "type": "integer", "description": "the version read; an object an earlier operation of the check wrote is checked against the version that write left" },
                    "body": { "type": "object", "description": "merge patch" }, "set_password": set_password } },
                { "type": "object", "required": ["kind", "op", "key"], "additionalProperties": false, "properties": {
                    "kind": kind, "op": { "const": "delete" }, "key": { "type": "string" }, "if_match": { "type": "integer" }, "purge_statistics": { "type": "boolean" } } }
            ]}}}
        }),
    );
    // `{"results": [...]}`, one per operation, in order: its status and `extra`.
    let results = |status: &str, extra: (&str, Value)| {
        json!({
            "type": "object",
            "required": ["results"],
            "properties": { "results": { "type": "array", "items": {
                "type": "object", "required": ["status"],
                "properties": {
                    "status": { "type": "integer", "description": status },
                    extra.0: extra.1
                }
            }}}
        })
    };
    out.insert(
        "PlanCheckResponse".into(),
        results(
            "the status the write would get",
            ("problem", json!({ "$ref": "#/components/schemas/Problem", "description": "why the write would be refused (4xx)" })),
        ),
    );
    out.insert(
        "BatchResponse".into(),
        results(
            "the status the single request would have had",
            (
                "body",
                json!({ "description": "the object (2xx), a Problem (4xx/5xx), or null (204)" }),
            ),
        ),
    );
    out.insert(
        "ChangesPage".into(),
        json!({
            "type": "object",
            "required": ["changes", "cursor", "more"],
            "properties": {
                "changes": { "type": "array", "items": {
                    "type": "object", "required": ["kind", "key", "object"],
                    "properties": {
                        "kind": { "type": "string", "enum": Kind::ALL.map(|k| k.name()) },
                        "key": { "type": "string" },
                        "object": { "description": "the object as a list shows it now (with its version), or null: deleted or renamed away" }
                    }
                }},
                "cursor": { "type": "string", "description": "ask with `since` set to this next" },
                "more": { "type": "boolean", "description": "more keys follow: ask again from `cursor` at once" },
                "digest": { "type": "object", "description": "on the last page of an answer with `since`: per kind, how many objects there are and the sum of their versions, to check a copy brought up to date against",
                    "additionalProperties": { "type": "object", "required": ["count", "versions"],
                        "properties": { "count": { "type": "integer" }, "versions": { "type": "integer" } } } },
                "whoami": { "allOf": [r("WhoAmI")], "description": "on the last page of an answer with `since`: what GET /v1/whoami answers, so that nothing changed is one request" },
                "account": { "allOf": [r("Account")], "description": "on the last page of an answer with `since`: what GET /v1/account answers" }
            }
        }),
    );
    out.insert(
        "WhoAmI".into(),
        json!({"allOf": [r("Principal"), {"type": "object", "properties": {
            "capabilities": {"type": "array", "items": {"type": "string"}, "description": "optional parts of the api this server has"}}}]}),
    );
    out.insert(
        "AuditPage".into(),
        json!({
            "type": "object",
            "required": ["items", "next_cursor"],
            "properties": {
                "items": { "type": "array", "items": {
                    "type": "object",
                    "required": ["id", "at", "actor", "action", "kind", "key"],
                    "properties": {
                        "id": { "type": "integer" }, "at": { "type": "string", "format": "date-time" },
                        "actor": { "type": "string" },
                        "token_id": { "type": ["string", "null"], "description": "the id of the token that made the write (never its value); null for the server's own and `roster token` writes" },
                        "action": { "type": "string", "enum": ["create", "update", "delete"] },
                        "kind": { "type": "string" }, "key": { "type": "string" },
                        "before": { "type": ["object", "null"] }, "after": { "type": ["object", "null"] }
                    }
                }},
                "next_cursor": { "type": ["string", "null"] }
            }
        }),
    );
    out.insert(
        "TokenRequest".into(),
        json!({ "type": "object", "additionalProperties": false,
                "properties": {
                    "manager": { "type": "string" }, "administrator": { "type": "string" },
                    "name": { "type": "string", "description": "what the token is for" },
                    "permission": { "type": "string", "enum": ["read", "write"], "default": "write",
                                    "description": "read: GET and HEAD only (reads, plans); every write is 403" },
                    "expires_in": { "type": "string", "pattern": "^[1-9][0-9]{0,3}[smhdw]$",
                                    "description": "a duration such as `30d` or `12h` (a number and a unit: s, m, h, d, w); default 90 days. The server also takes other humantime forms (`1h 30m`); an empty, zero or unreadable one is 422" },
                    "no_expiry": { "type": "boolean", "default": false, "description": "the token never expires" }
                },
                "not": { "required": ["manager", "administrator"] },
                "description": "at most one of manager and administrator (a manager token may name only itself); neither: a token for the caller itself" }),
    );
    let token_props = json!({
        "id": { "type": "string", "description": "public id: lists, revocation and the audit log use it" },
        "name": { "type": "string" },
        "role": { "type": "string", "enum": ["administrator", "manager"] },
        "login": { "type": "string" },
        "permission": { "type": "string", "enum": ["read", "write"] },
        "created_at": { "type": "string", "format": "date-time" },
        "expires_at": { "type": ["string", "null"], "format": "date-time" },
        "last_used_at": { "type": ["string", "null"], "format": "date-time", "description": "updated at most once a minute" }
    });
    let token_required = json!([
        "id",
        "name",
        "role",
        "login",
        "permission",
        "created_at",
        "expires_at",
        "last_used_at"
    ]);
    out.insert(
        "Token".into(),
        json!({ "type": "object", "required": token_required, "properties": token_props.clone(),
                "description": "a token, never its value" }),
    );
    let mut response_props = token_props;
    response_props["token"] = json!({ "type": "string", "pattern": format!("^{}$", super::auth::TOKEN_PATTERN),
        "description": "shown once; stored as a sha-256 hash. `roster_`, 32 random base62 characters, then the CRC32 of those 32 as 6 base62 digits" });
    let mut response_required = token_required;
    if let Some(a) = response_required.as_array_mut() {
        a.push(json!("token"));
    }
    out.insert(
        "TokenResponse".into(),
        json!({ "type": "object", "required": response_required, "properties": response_props }),
    );
    out.insert(
        "TokenList".into(),
        json!({ "type": "object", "required": ["items"],
                "properties": { "items": { "type": "array", "items": r("Token") } } }),
    );
    let lease_props = json!({
        "holder": { "type": "string", "description": "who holds it (free text: user@host and pid, or a CI run)" },
        "purpose": { "type": "string" },
        "taken_by": { "type": "string", "description": "the login of the token that took it" },
        "acquired_at": { "type": "string", "format": "date-time" },
        "expires_at": { "type": "string", "format": "date-time", "description": "free after this unless renewed" }
    });
    let mut with_id = lease_props.clone();
    with_id["id"] = json!({ "type": "string", "description": "the holder's handle: renew and release with it, send it as `Roster-Lease` on writes; shown only to the holder" });
    out.insert(
        "LeaseHolder".into(),
        json!({ "type": "object", "required": ["holder", "purpose", "taken_by", "acquired_at", "expires_at"], "properties": lease_props }),
    );
    out.insert(
        "Lease".into(),
        json!({ "type": "object", "required": ["id", "holder", "purpose", "taken_by", "acquired_at", "expires_at"], "properties": with_id }),
    );
    let ttl = json!({ "type": "integer", "minimum": super::lease::MIN_TTL, "maximum": super::lease::MAX_TTL, "description": "seconds from now until the lease expires" });
    out.insert(
        "LeaseRequest".into(),
        json!({ "type": "object", "additionalProperties": false, "required": ["holder", "ttl_seconds"],
                "properties": { "holder": { "type": "string", "minLength": 1, "maxLength": 200 },
                                "purpose": { "type": "string", "maxLength": 200 },
                                "ttl_seconds": ttl,
                                "id": { "type": "string", "pattern": super::lease::ID_PATTERN,
                                        "description": "a handle the client chooses, so that a retried take whose answer was lost gets its own lease back (201) instead of `lease-held`" } } }),
    );
    out.insert(
        "LeaseRenewal".into(),
        json!({ "type": "object", "additionalProperties": false, "required": ["ttl_seconds"],
                "properties": { "ttl_seconds": ttl } }),
    );
    out.insert(
        "AccountPatch".into(),
        json!({ "type": "object", "additionalProperties": false,
                "properties": { "name": { "type": "string", "pattern": crate::model::shape::NOT_BLANK_PATTERN }, "seats": { "type": "integer", "minimum": 0 }, "password_policy": { "$ref": "#/components/schemas/PasswordPolicy", "description": "the whole password policy every password stored must meet (fields left out take their defaults); checked on every password the server stores (422 `password-policy`)" }, "version": { "type": "integer" } } }),
    );
    out
}

fn paths() -> Map<String, Value> {
    let mut p = Map::new();
    let limit = json!({"name": "limit", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1, "maximum": super::MAX_LIMIT, "default": 100}});
    let cursor =
        json!({"name": "cursor", "in": "query", "required": false, "schema": {"type": "string"}});
    let if_match = json!({"name": "If-Match", "in": "header", "required": true,
        "schema": {"type": "string", "pattern": super::routes::IF_MATCH_PATTERN},
        "description": "\"<version>\" of the object as read (also `W/\"<version>\"` or a bare number); missing or `*`: 428 `precondition-required`"});
    let lease = json!({"name": "Roster-Lease", "in": "header", "required": false, "schema": {"type": "string", "pattern": super::lease::ID_PATTERN}, "description": "the apply lease this write is made under: refused (409 `lease-not-held`) unless it is the current one; without it the write is not checked against the lease"});
    let idem = json!({"name": "Idempotency-Key", "in": "header", "required": false, "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": super::routes::IDEMPOTENCY_KEY_PATTERN}, "description": "1 to 255 visible ascii characters; same key and body: the first response again; same key, other body: 422"});
    for kind in Kind::ALL {
        let t = type_name(kind);
        let coll = kind.collection();
        let key = json!({"name": "key", "in": "path", "required": true, "schema": {"type": "string"},
                         "description": format!("the {}, percent-encoded (a team path's `/` as %2F)", kind.key_field())});
        p.insert(
            format!("/v1/{coll}"),
            json!({
                "get": {
                    "operationId": format!("list_{}", kind.section()),
                    "summary": format!("List {} (keyset pagination, ordered by {})", kind.section(), kind.key_field()),
                    "security": auth(),
                    "parameters": [limit, cursor],
                    "responses": responses(vec![("200", json_response("a page", r(&format!("{t}Page")), false))],
                        &[("400", "bad limit or cursor (`bad-request`)"), ("403", "not allowed for this token (`forbidden`)")])
                },
                "post": {
                    "operationId": format!("create_{}", kind.name()),
                    "summary": format!("Create a {}", kind.name()),
                    "security": auth(),
                    "parameters": [idem, lease],
                    "requestBody": { "required": true, "content": { "application/json": { "schema": r(t) } } },
                    "responses": responses(vec![("201", json_response("created", r(&format!("{t}Object")), true))], &[
                        ("400", "malformed json (`invalid-json`)"),
                        ("403", "outside the token's scope or rights (`forbidden`, `escalation`)"),
                        ("409", "exists already (`already-exists`), seats exceeded (`seats-exceeded`), a representative's user name held by another (`username-taken`), or a `Roster-Lease` that is not the current lease (`lease-not-held`)"),
                        ("413", "body too large (`payload-too-large`)"),
                        ("422", "breaks a rule (`validation`), unknown field (`unknown-field`), idempotency key reused (`idempotency-key-reused`)"),
                    ])
                }
            }),
        );
        p.insert(
            format!("/v1/{coll}/{{key}}"),
            json!({
                "parameters": [key],
                "get": {
                    "operationId": format!("get_{}", kind.name()),
                    "security": auth(),
                    "responses": responses(vec![("200", json_response("the object", r(&format!("{t}Object")), true))],
                        &[("403", "not allowed for this token (`forbidden`)"), ("404", "no such object, or outside the token's scope (`not-found`)")])
                },
                "patch": {
                    "operationId": format!("update_{}", kind.name()),
                    "summary": "Merge patch (RFC 7396); patching the key field renames in place",
                    "security": auth(),
                    "parameters": [if_match, lease],
                    "requestBody": { "required": true, "content": { "application/merge-patch+json": { "schema": { "type": "object" } }, "application/json": { "schema": { "type": "object" } } } },
                    "responses": responses(vec![("200", json_response("the updated object", r(&format!("{t}Object")), true))], &[
                        ("400", "malformed json or If-Match (`invalid-json`, `bad-request`)"),
                        ("403", "outside the token's scope or rights (`forbidden`, `escalation`)"),
                        ("404", "no such object (`not-found`)"),
                        ("409", "rename target exists, seats exceeded, a leader leaving its team, a rename merging two contact-group entries of different permissions, a user name held by another representative, a `Roster-Lease` that is not the current lease (`already-exists`, `seats-exceeded`, `conflict`, `username-taken`, `lease-not-held`)"),
                        ("412", "the version does not match (`precondition-failed`)"),
                        ("413", "body too large (`payload-too-large`)"),
                        ("422", "breaks a rule (`validation`) or unknown field (`unknown-field`)"),
                        ("428", "If-Match missing (`precondition-required`)"),
                    ])
                },
                "delete": {
                    "operationId": format!("delete_{}", kind.name()),
                    "security": auth(),
                    "parameters": [if_match, lease, {"name": "purge_statistics", "in": "query", "required": false, "schema": {"type": "boolean"},
                                              "description": "representatives only: required to delete (statistics are lost)"}],
                    "responses": responses(vec![("204", json!({"description": "deleted"}))], &[
                        ("400", "malformed If-Match, Roster-Lease or purge_statistics (`bad-request`)"),
                        ("403", "outside the token's scope or rights (`forbidden`)"),
                        ("404", "no such object (`not-found`)"),
                        ("409", "still referred to (`conflict`), a team with members or sub-teams (`team-not-empty`), a representative without purge_statistics (`statistics-would-be-lost`), a `Roster-Lease` that is not the current lease (`lease-not-held`)"),
                        ("412", "the version does not match (`precondition-failed`)"),
                        ("428", "If-Match missing (`precondition-required`)"),
                    ])
                }
            }),
        );
        p.insert(
            format!("/v1/{coll}:batch"),
            json!({
                "post": {
                    "operationId": format!("batch_{}", kind.section()),
                    "summary": format!("Up to {} creates, updates and deletes of {}; one result per operation, in order", super::MAX_BATCH, kind.section()),
                    "security": auth(),
                    "parameters": [lease],
                    "requestBody": { "required": true, "content": { "application/json": { "schema": r("BatchRequest") } } },
                    "responses": responses(vec![("200", json_response("one result per operation", r("BatchResponse"), false))], &[
                        ("400", "malformed json or more than 1000 operations (`invalid-json`, `bad-request`)"),
                        ("409", "a `Roster-Lease` that is not the current lease (`lease-not-held`); nothing written"),
                        ("413", "body too large (`payload-too-large`)"),
                        ("422", "malformed operation (`validation`, `unknown-field`)"),
                    ])
                }
            }),
        );
    }
    p.insert("/healthz".into(), json!({"get": {"operationId": "healthz", "security": [],
        "description": "liveness: the process answers; no token",
        "responses": {"200": {"description": "alive", "content": {"application/json": {"schema": {"type": "object", "properties": {"status": {"type": "string", "enum": ["ok"]}}, "required": ["status"]}}}}}}}));
    p.insert("/readyz".into(), json!({"get": {"operationId": "readyz", "security": [],
        "description": "readiness: the database answers and every migration is applied; no token",
        "responses": {
            "200": {"description": "ready", "content": {"application/json": {"schema": {"type": "object", "properties": {"status": {"type": "string", "enum": ["ready"]}}, "required": ["status"]}}}},
            "503": {"description": "not ready, with the reason", "content": {"application/json": {"schema": {"type": "object", "properties": {"status": {"type": "string", "enum": ["not ready"]}, "reason": {"type": "string"}}, "required": ["status", "reason"]}}}}
        }}}));
    p.insert("/v1/whoami".into(), json!({"get": {"operationId": "whoami", "security": auth(),
        "description": "who the token acts as (`role`, `login`), and the optional parts of the api this server has (`capabilities`: `plan-check` for POST /v1/plan:check, `change-feed` for GET /v1/changes, administrator tokens only)",
        "responses": responses(vec![("200", json_response("who the token acts as", r("WhoAmI"), false))], &[])}}));
    p.insert("/v1/plan:check".into(), json!({"post": {"operationId": "check_plan",
        "summary": format!("Dry run of up to {} writes of any kinds, in order, through the write path, in one transaction that is always rolled back", super::MAX_BATCH),
        "description": "nothing is written, audited or remembered; a read token may call it; one result per operation, in order",
        "security": auth(),
        "requestBody": { "required": true, "content": { "application/json": { "schema": r("PlanCheckRequest") } } },
        "responses": responses(vec![("200", json_response("one result per operation", r("PlanCheckResponse"), false))], &[
            ("400", "malformed json or more than 1000 operations (`invalid-json`, `bad-request`)"),
            ("413", "body too large (`payload-too-large`)"),
            ("422", "malformed operation (`validation`, `unknown-field`)"),
        ])}}));
    p.insert("/v1/sign-in:change-password".into(), json!({"post": {"operationId": "change_own_password",
        "summary": "The person changes its own password, as at a console's sign-in; clears a representative's `sign_in.force_password_change`",
        "description": "no token: the current password proves who asks. The account is the representative, manager or administrator holding `login` whose password `current_password` is; an inactive representative may not. Audited with the person as actor; no value is stored or logged in clear",
        "security": [],
        "requestBody": {"required": true, "content": {"application/json": {"schema": {
            "type": "object", "additionalProperties": false,
            "required": ["login", "current_password", "new_password"],
            "properties": {
                "login": {"type": "string"},
                "current_password": {"type": "string", "writeOnly": true},
                "new_password": {"type": "string", "writeOnly": true, "minLength": 1}
            }}}}},
        "responses": {
            "204": {"description": "changed"},
            "400": problem_response("malformed json (`invalid-json`)"),
            "401": problem_response("unknown login, wrong current password, no password set, or an account that may not sign in: one answer for all (`unauthorized`)"),
            "409": problem_response("the account changed meanwhile (`conflict`); try again"),
            "422": problem_response("a missing or unknown field, an empty new password or the current one again (`validation`, `unknown-field`, rule code `secret`), or a new password the account's password policy refuses (`password-policy`)"),
            "429": problem_response("rate limited (`rate-limited`), with Retry-After"),
            "503": problem_response("temporarily unavailable (`unavailable`), with Retry-After")
        }}}));
    p.insert("/v1/catalog".into(), json!({"get": {"operationId": "catalog", "security": auth(),
        "responses": responses(vec![("200", json_response("rights, features and their rules", r("CatalogDoc"), false))], &[])}}));
    p.insert("/v1/account".into(), json!({
        "get": {"operationId": "get_account", "security": auth(),
            "responses": responses(vec![("200", json_response("the account", r("Account"), true))], &[])},
        "patch": {"operationId": "update_account", "security": auth(), "parameters": [if_match, lease],
            "requestBody": {"required": true, "content": {"application/json": {"schema": r("AccountPatch")}}},
            "responses": responses(vec![("200", json_response("the account", r("Account"), true))], &[
                ("400", "malformed json (`invalid-json`)"), ("403", "administrators only (`forbidden`)"),
                ("409", "seats below the active representatives (`seats-exceeded`), a `Roster-Lease` that is not the current lease (`lease-not-held`)"),
                ("412", "version mismatch (`precondition-failed`)"), ("422", "unknown field or bad value"),
                ("428", "If-Match missing (`precondition-required`)")])}
    }));
    p.insert("/v1/audit".into(), json!({"get": {"operationId": "audit", "security": auth(),
        "parameters": [limit, cursor],
        "responses": responses(vec![("200", json_response("audit records, oldest first; secrets never appear", r("AuditPage"), false))],
            &[("400", "bad limit or cursor"), ("403", "administrators only (`forbidden`)")])}}));
    p.insert("/v1/changes".into(), json!({"get": {"operationId": "changes",
        "summary": "The change feed: every object key a committed write touched after `since`, in commit order, each with the object as it is now",
        "security": auth(),
        "parameters": [
            {"name": "since", "in": "query", "required": false, "description": "a cursor this endpoint returned; without it, the answer names the head only",
             "schema": {"type": "string", "pattern": "^[0-9a-f]{1,64}\\.[0-9]{1,18}$"}},
            {"name": "limit", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1, "maximum": super::routes::FEED_LIMIT, "default": super::routes::FEED_LIMIT}}],
        "responses": responses(vec![("200", json_response("the keys changed since the cursor, and the cursor to ask from next", r("ChangesPage"), false))],
            &[("400", "bad limit or cursor (`bad-request`)"), ("403", "administrator tokens only (`forbidden`)"),
              ("410", "the cursor is from another database, or older than the changes kept (`cursor-expired`): read everything again")])}}));
    p.insert("/v1/tokens".into(), json!({
        "get": {"operationId": "list_tokens", "summary": "Every token (administrator) or one's own (manager), never a value", "security": auth(),
            "responses": responses(vec![("200", json_response("the tokens", r("TokenList"), false))], &[])},
        "post": {"operationId": "create_token", "security": auth(), "parameters": [lease],
        "requestBody": {"required": true, "content": {"application/json": {"schema": r("TokenRequest")}}},
        "responses": responses(vec![("201", json_response("the new token (shown once)", r("TokenResponse"), false))],
            &[("400", "malformed json"), ("403", "a read token, or a manager asking for another's token (`forbidden`)"),
              ("409", "a `Roster-Lease` that is not the current lease (`lease-not-held`)"), ("422", "no such manager or administrator, bad permission or expiry")])}}));
    p.insert("/v1/tokens/{id}".into(), json!({"delete": {"operationId": "revoke_token",
        "summary": "Revoke a token: refused from the next request on, on every replica", "security": auth(),
        "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}, "description": "the token's id"}],
        "responses": responses(vec![("204", json!({"description": "revoked"}))],
            &[("403", "a read token (`forbidden`)"), ("404", "no such token, or another's (`not-found`)")])}}));
    let lease_id = json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string"}, "description": "the id `POST /v1/lease` answered"});
    p.insert("/v1/lease".into(), json!({
        "get": {"operationId": "get_lease", "summary": "Who holds the apply lease (never its id)", "security": auth(),
            "responses": responses(vec![("200", json_response("the current holder", r("LeaseHolder"), false))],
                &[("404", "nobody holds it (`not-found`)")])},
        "post": {"operationId": "take_lease", "summary": "Take the apply lease; an expired lease is free", "security": auth(),
            "requestBody": {"required": true, "content": {"application/json": {"schema": r("LeaseRequest")}}},
            "responses": responses(vec![("201", json_response("the lease, with its id", r("Lease"), false))], &[
                ("400", "malformed json (`invalid-json`)"),
                ("403", "a manager holding no team right (`forbidden`)"),
                ("409", "held by another (`lease-held`, naming the holder and its expiry in `lease`)"),
                ("422", "bad holder, purpose or ttl_seconds (`validation`, `unknown-field`)")])},
        "delete": {"operationId": "break_lease", "summary": "Break the current apply lease, whoever holds it (administrators)", "security": auth(),
            "responses": responses(vec![("204", json!({"description": "released"}))], &[
                ("403", "administrators only (`forbidden`)"), ("404", "nobody holds it (`not-found`)")])}
    }));
    p.insert("/v1/lease/{id}".into(), json!({
        "parameters": [lease_id],
        "put": {"operationId": "renew_lease", "summary": "Renew: the lease now expires ttl_seconds from now", "security": auth(),
            "requestBody": {"required": true, "content": {"application/json": {"schema": r("LeaseRenewal")}}},
            "responses": responses(vec![("200", json_response("the renewed lease", r("Lease"), false))], &[
                ("400", "malformed json (`invalid-json`)"),
                ("403", "taken with another token (`forbidden`)"),
                ("404", "released, or expired and taken again (`not-found`)"),
                ("409", "expired (`lease-expired`), or held by another (`lease-held`)"),
                ("422", "bad ttl_seconds (`validation`)")])},
        "delete": {"operationId": "release_lease", "summary": "Release the lease (its holder, or an administrator)", "security": auth(),
            "responses": responses(vec![("204", json!({"description": "released"}))], &[
                ("403", "taken with another token, and not an administrator (`forbidden`)"),
                ("404", "released already, or expired and taken again (`not-found`)")])}
    }));
    p.insert("/openapi.json".into(), json!({"get": {"operationId": "openapi", "security": [],
        "responses": {"200": {"description": "this document", "content": {"application/json": {"schema": {"type": "object"}}}}}}}));
    p
}

/// The document as a JSON value.
pub fn openapi_value() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "roster live api",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The reference live system of roster (`roster serve`): the admin API of a remote-support console. Human summary: docs/api.md."
        },
        "servers": [{ "url": "/" }],
        "paths": Value::Object(paths()),
        "components": {
            "schemas": Value::Object(components()),
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer", "description": "administrator or manager token; stored as a sha-256 hash" } }
        },
        "security": auth()
    })
}

/// The document, pretty-printed with a final newline (what `schemas/openapi.json` holds).
pub fn openapi_json() -> String {
    let mut s = serde_json::to_string_pretty(&openapi_value()).unwrap_or_default();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_is_an_openapi_3_1_document_for_utoipa() {
        let doc: utoipa::openapi::OpenApi =
            serde_json::from_value(openapi_value()).expect("utoipa reads it");
        assert!(doc.paths.paths.contains_key("/v1/representatives/{key}"));
        assert!(doc.paths.paths.contains_key("/v1/contact-groups:batch"));
    }

    #[test]
    fn every_ref_resolves() {
        let v = openapi_value();
        let schemas = v["components"]["schemas"].as_object().unwrap().clone();
        fn walk(v: &Value, schemas: &Map<String, Value>) {
            match v {
                Value::Object(m) => {
                    if let Some(Value::String(r)) = m.get("$ref") {
                        let name = r
                            .strip_prefix("#/components/schemas/")
                            .expect("component ref");
                        assert!(schemas.contains_key(name), "dangling $ref {r}");
                    }
                    m.values().for_each(|x| walk(x, schemas));
                }
                Value::Array(a) => a.iter().for_each(|x| walk(x, schemas)),
                _ => {}
            }
        }
        walk(&v, &schemas);
        assert!(schemas["SecretRef"]["properties"]["value"].is_object());
        assert!(schemas["RepresentativeObject"]["properties"]["version"].is_object());
    }
}
