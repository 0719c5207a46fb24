//! HTTP handlers: thin glue between requests and the engine/store (docs/api.md).
//!
//! Each handler parses what it needs (path, query, headers, JSON body — every parse
//! error is a 4xx problem), authenticates, and either reads from the store (filtering
//! by the caller's scope) or hands writes to [`engine::run`].

use std::collections::HashMap;
use std::fmt::Write as _;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::auth::{Actor, Permission, Sight, Src, TokenSpec, authenticate, token_view};
use super::domain::{Obj, normalize_key};
use super::engine::{self, CheckOp, Done, Op, with_version};
use super::lease;
use super::problem::{Problem, from_serde};
use super::{AppState, MAX_BATCH, MAX_LIMIT};
use crate::model::Kind;
use crate::model::rules::RuleCode;

pub(crate) fn routes() -> Router<AppState> {
    // `POST /v1/{collection}:batch` has a route of its own per collection, so that a
    // 405 there answers `Allow: POST` (not the collection's `GET, POST`).
    let mut batches = Router::new();
    for kind in Kind::ALL {
        batches = batches.route(
            &format!("/v1/{}:batch", kind.collection()),
            post(
                move |State(st): State<AppState>,
                      headers: HeaderMap,
                      body: Result<Bytes, BytesRejection>| async move {
                    let actor = writer(&st, &headers, "run a batch").await?;
                    let bytes = body_bytes(body)?;
                    batch(&st, &headers, &actor, kind, &bytes).await
                },
            ),
        );
    }
    batches
        .route("/openapi.json", get(openapi))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/v1/whoami", get(whoami))
        .route("/v1/account", get(account_get).patch(account_patch))
        .route("/v1/catalog", get(catalog))
        .route("/v1/audit", get(audit))
        .route("/v1/changes", get(changes))
        .route("/v1/plan:check", post(plan_check))
        .route("/v1/sign-in:change-password", post(change_password))
        .route("/v1/tokens", get(tokens_list).post(tokens_create))
        .route("/v1/tokens/{id}", delete(tokens_revoke))
        .route(
            "/v1/lease",
            get(lease::get).post(lease::take).delete(lease::break_lease),
        )
        .route("/v1/lease/{id}", put(lease::renew).delete(lease::release))
        .route("/v1/{collection}", get(list).post(create))
        .route(
            "/v1/{collection}/{*key}",
            get(get_one).patch(patch_one).delete(delete_one),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
}

type Res = Result<Response, Problem>;

async fn not_found() -> Problem {
    Problem::not_found("no such resource; see /openapi.json for the api")
}

async fn method_not_allowed() -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "this method is not allowed on this resource; see /openapi.json",
    )
}

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        super::openapi_json(),
    )
        .into_response()
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut r = (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response();
    if let Some(v) = body.get("version").and_then(Value::as_i64) {
        if let Ok(h) = HeaderValue::from_str(&format!("\"{v}\"")) {
            r.headers_mut().insert(header::ETAG, h);
        }
    }
    r
}

fn done_response(d: Done) -> Response {
    match d.body {
        Some(b) => json_response(d.status, &b),
        None => d.status.into_response(),
    }
}

fn auth_header(h: &HeaderMap) -> Option<&str> {
    h.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())
}

async fn actor(st: &AppState, h: &HeaderMap) -> Result<Actor, Problem> {
    authenticate(&st.db, auth_header(h)).await
}

/// The actor of a write: a `read` token is refused (403) before anything is parsed.
async fn writer(st: &AppState, h: &HeaderMap, what: &str) -> Result<Actor, Problem> {
    let actor = actor(st, h).await?;
    actor.require_write(what)?;
    Ok(actor)
}

fn kind_of(collection: &str) -> Result<Kind, Problem> {
    Kind::ALL
        .into_iter()
        .find(|k| k.collection() == collection)
        .ok_or_else(|| {
            Problem::not_found(format!(
                "no collection `{collection}`; collections are {}",
                Kind::ALL.map(|k| k.collection()).join(", ")
            ))
        })
}

fn path_param<T>(p: Result<Path<T>, PathRejection>) -> Result<T, Problem> {
    p.map(|Path(x)| x)
        .map_err(|e| Problem::bad_request(format!("bad path: {}", e.body_text())))
}

fn query_param(
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<HashMap<String, String>, Problem> {
    q.map(|Query(x)| x)
        .map_err(|e| Problem::bad_request(format!("bad query string: {}", e.body_text())))
}

fn body_bytes(b: Result<Bytes, BytesRejection>) -> Result<Bytes, Problem> {
    b.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                format!(
                    "the body is larger than {} MiB; split it into smaller batches",
                    super::BODY_LIMIT / (1024 * 1024)
                ),
            )
        } else {
            Problem::bad_request(format!("cannot read the body: {}", e.body_text()))
        }
    })
}

fn parse_json(bytes: &[u8]) -> Result<Value, Problem> {
    if bytes.is_empty() {
        return Err(Problem::invalid_json(
            "the body is empty; send a json object",
        ));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| Problem::invalid_json(format!("the body is not valid json: {e}")))
}

fn parse_limit(q: &HashMap<String, String>) -> Result<i64, Problem> {
    parse_limit_or(q, 100)
}

/// `limit` (1 to [`MAX_LIMIT`]), `default` when not given.
fn parse_limit_or(q: &HashMap<String, String>, default: i64) -> Result<i64, Problem> {
    match q.get("limit") {
        None => Ok(default),
        Some(s) => match s.parse::<i64>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            _ => Err(Problem::bad_request(format!(
                "`limit` must be a whole number from 1 to {MAX_LIMIT}, not `{s}`"
            ))
            .with_pointer("/limit")),
        },
    }
}

fn encode_cursor(key: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.as_bytes())
}

fn decode_cursor(q: &HashMap<String, String>) -> Result<String, Problem> {
    let Some(c) = q.get("cursor").filter(|c| !c.is_empty()) else {
        return Ok(String::new());
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(c.as_bytes())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| {
            Problem::bad_request(
                "`cursor` is not one this server issued; pass `next_cursor` back unchanged",
            )
        })
}

/// If-Match: `"<version>"`, its weak form `W/"<version>"`, or a bare `<version>`: what
/// the OpenAPI document's pattern (`IF_MATCH_PATTERN`) says, nothing more.
fn if_match(h: &HeaderMap) -> Result<Option<i64>, Problem> {
    let Some(v) = h.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let s = v.to_str().unwrap_or("").trim();
    if s == "*" {
        return Err(Problem::precondition_required(
            "`If-Match: *` is not enough here; send the version you read, `If-Match: \"<version>\"`",
        ));
    }
    parse_version_tag(s).map(Some).ok_or_else(|| {
        Problem::bad_request(format!("`If-Match` must be `\"<version>\"`, not `{s}`"))
    })
}

/// The version of an entity tag as `IF_MATCH_PATTERN` describes it.
fn parse_version_tag(s: &str) -> Option<i64> {
    let s = s.strip_prefix("W/").unwrap_or(s);
    let digits = match s.strip_prefix('"') {
        Some(rest) => rest.strip_suffix('"')?,
        None => s,
    };
    if digits.is_empty() || digits.len() > 18 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The `If-Match` header as the server parses it (see [`if_match`]).
pub(crate) const IF_MATCH_PATTERN: &str = r#"^(W/)?("[0-9]{1,18}"|[0-9]{1,18})$"#;

/// An `Idempotency-Key`: 1 to 255 visible ASCII characters (a batch's
/// `idempotency_key` too).
pub(crate) const IDEMPOTENCY_KEY_PATTERN: &str = "^[!-~]{1,255}$";

fn idempotency_key_ok(k: &str) -> bool {
    (1..=255).contains(&k.len()) && k.bytes().all(|b| (b'!'..=b'~').contains(&b))
}

/// The JSON text of one stored item with its `version`, for list pages: the stored body
/// (compact JSON written by `serde_json`, never holding `version`) with `,"version":N`
/// spliced in before its closing brace — the same text as [`stored_item`] serialized,
/// without parsing and re-serializing every body. A body that does not look like that
/// goes the slow way.
fn stored_item_text(body: &str, version: i64) -> Result<String, Problem> {
    let mut out = String::with_capacity(body.len() + 24);
    push_stored_item(&mut out, body, version)?;
    Ok(out)
}

/// [`stored_item_text`], appended to `out`.
fn push_stored_item(out: &mut String, body: &str, version: i64) -> Result<(), Problem> {
    let b = body.trim_end();
    if b.starts_with('{') && b.ends_with('}') && !b.contains("\"version\"") {
        let inner = b[1..b.len() - 1].trim();
        out.push('{');
        out.push_str(inner);
        if !inner.is_empty() {
            out.push(',');
        }
        // Writing to a String cannot fail.
        let _ = write!(out, "\"version\":{version}}}");
        return Ok(());
    }
    out.push_str(&stored_item(body, version)?.to_string());
    Ok(())
}

fn stored_item(body: &str, version: i64) -> Result<Value, Problem> {
    let v: Value =
        serde_json::from_str(body).map_err(|e| Problem::internal(format!("stored body: {e}")))?;
    Ok(with_version(v, version))
}

async fn list(
    State(st): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Res {
    let collection = path_param(path)?;
    let kind = kind_of(&collection)?;
    let q = query_param(query)?;
    let actor = actor(&st, &headers).await?;
    actor.may_read_kind(kind)?;
    let limit = parse_limit(&q)?;
    let mut cursor = decode_cursor(&q)?;
    // Only a manager's reads are scoped by team (every team path is read for that, so
    // not for an administrator, who would throw them away on every page).
    let teams = match kind {
        Kind::Team | Kind::Representative if matches!(actor, Actor::Manager { .. }) => {
            actor.scope_teams(&st.db.team_keys().await?)
        }
        _ => None,
    };
    // Managers see only the managers in their scope, and of campaigns and contact groups
    // only their members in scope: filtered here, page by page.
    let filter = matches!(actor, Actor::Manager { .. })
        && matches!(kind, Kind::Manager | Kind::Campaign | Kind::ContactGroup);
    let mut sight = Sight::default();
    if teams.is_none() && !filter {
        let page = st.db.list_text(kind, &cursor, limit).await?;
        fn split(text: &str, sep: char) -> Vec<&str> {
            if text.is_empty() {
                Vec::new()
            } else {
                text.split(sep).collect()
            }
        }
        let (bodies, versions) = (split(&page.bodies, '\n'), split(&page.versions, ','));
        // Otherwise a body held a raw newline: the page is read row by row below.
        if bodies.len() == page.count && versions.len() == page.count {
            let mut items = String::with_capacity(page.bodies.len() + 16 * page.count);
            for (i, (body, version)) in bodies.into_iter().zip(versions).enumerate() {
                let version = version
                    .parse()
                    .map_err(|_| Problem::internal(format!("stored version `{version}`")))?;
                if i > 0 {
                    items.push(',');
                }
                push_stored_item(&mut items, body, version)?;
            }
            let next = page.more.then_some(page.last).flatten();
            return Ok(page_response(&items, next.as_deref()));
        }
    }
    let want = limit as usize + 1;
    let mut items: Vec<(String, String)> = Vec::new();
    loop {
        let chunk = if filter { MAX_LIMIT } else { limit + 1 };
        let rows = st.db.list(kind, &cursor, chunk, teams.as_deref()).await?;
        let exhausted = (rows.len() as i64) < chunk;
        for r in rows {
            cursor = r.key.clone();
            let text = if filter {
                let obj = Obj::from_stored(kind, &r.body)?;
                match sight.view(&actor, &mut Src::Db(&st.db), obj).await? {
                    Some(seen) => stored_item_text(&seen.to_body().to_string(), r.version)?,
                    None => continue,
                }
            } else {
                stored_item_text(&r.body, r.version)?
            };
            items.push((r.key.clone(), text));
            if items.len() >= want {
                break;
            }
        }
        if exhausted || items.len() >= want {
            break;
        }
    }
    let next = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(|(k, _)| k.clone())
    } else {
        None
    };
    let items: Vec<String> = items.into_iter().map(|(_, v)| v).collect();
    Ok(page_response(&items.join(","), next.as_deref()))
}

/// `{"items":[…],"next_cursor":…}` built as text around items that are already JSON
/// (joined by commas); `next` is the last key of the page when more follow.
fn page_response(items: &str, next: Option<&str>) -> Response {
    let next = Value::from(next.map(encode_cursor)).to_string();
    let mut body = String::with_capacity(items.len() + next.len() + 32);
    body.push_str("{\"items\":[");
    body.push_str(items);
    body.push_str("],\"next_cursor\":");
    body.push_str(&next);
    body.push('}');
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

async fn get_one(
    State(st): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Res {
    let (collection, key) = path_param(path)?;
    let kind = kind_of(&collection)?;
    let actor = actor(&st, &headers).await?;
    actor.may_read_kind(kind)?;
    let key = normalize_key(kind, &key);
    let missing = || Problem::not_found(format!("no {kind} `{key}`"));
    let row = st.db.get(kind, &key).await?.ok_or_else(missing)?;
    if actor.manager().is_none() {
        return Ok(json_response(
            StatusCode::OK,
            &stored_item(&row.body, row.version)?,
        ));
    }
    let obj = Obj::from_stored(kind, &row.body)?;
    let Some(seen) = Sight::default()
        .view(&actor, &mut Src::Db(&st.db), obj)
        .await?
    else {
        return Err(missing());
    };
    Ok(json_response(
        StatusCode::OK,
        &with_version(seen.to_body(), row.version),
    ))
}

/// `POST /v1/{collection}` (`:batch` has its own routes, see [`routes`]).
async fn create(
    State(st): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Res {
    let collection = path_param(path)?;
    let kind = kind_of(&collection)?;
    let actor = writer(&st, &headers, "create objects").await?;
    let bytes = body_bytes(body)?;
    let value = parse_json(&bytes)?;
    let idem = headers
        .get("idempotency-key")
        .map(|v| {
            v.to_str()
                .ok()
                .filter(|k| idempotency_key_ok(k))
                .map(str::to_string)
                .ok_or_else(|| {
                    Problem::bad_request(
                        "`Idempotency-Key` must have 1 to 255 visible ascii characters, without spaces",
                    )
                })
        })
        .transpose()?;
    let op = Op::Create {
        body: value,
        idempotency_key: idem,
    };
    single(&st, &headers, &actor, kind, op).await
}

async fn single(st: &AppState, headers: &HeaderMap, actor: &Actor, kind: Kind, op: Op) -> Res {
    let lease = lease::from_headers(headers)?;
    let mut results = engine::run(&st.db, actor, kind, vec![op], lease.as_deref()).await?;
    match results.pop() {
        Some(Ok(d)) => Ok(done_response(d)),
        Some(Err(p)) => Err(p),
        None => Err(Problem::internal("no result")),
    }
}

/// The body of a batch or a check: `{"operations": [...]}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Operations<T> {
    operations: Vec<T>,
}

/// The operations of a batch or check body: an empty body, one that is not the envelope
/// and more than [`MAX_BATCH`] operations are refused as a whole (`what`: "a batch",
/// "a check"; `split`: what to do instead).
fn operations<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    what: &str,
    split: &str,
) -> Result<Vec<T>, Problem> {
    if bytes.is_empty() {
        return Err(Problem::invalid_json(
            "the body is empty; send {\"operations\": [...]}",
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let req: Operations<T> = serde_path_to_error::deserialize(de).map_err(from_serde)?;
    if req.operations.len() > MAX_BATCH {
        return Err(Problem::bad_request(format!(
            "{what} holds at most {MAX_BATCH} operations, not {}; {split}",
            req.operations.len()
        ))
        .with_pointer("/operations"));
    }
    Ok(req.operations)
}

/// One operation of a batch, refused as a whole batch (422) when its shape breaks the
/// OpenAPI document's `BatchRequest`: a body that is not an object, a `null` or
/// non-integer `if_match`, a bad `idempotency_key`. Rule failures stay per operation.
#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
enum BatchOp {
    Create {
        body: Map<String, Value>,
        #[serde(default, deserialize_with = "idempotency_key")]
        idempotency_key: Option<String>,
    },
    Update {
        key: String,
        #[serde(default, deserialize_with = "version")]
        if_match: Option<i64>,
        body: Map<String, Value>,
    },
    Delete {
        key: String,
        #[serde(default, deserialize_with = "version")]
        if_match: Option<i64>,
        #[serde(default)]
        purge_statistics: bool,
    },
}

/// A present `if_match`: an integer (not `null`); absent is `None` (428 for that operation).
fn version<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    i64::deserialize(d).map(Some)
}

/// A present `idempotency_key`: as the `Idempotency-Key` header.
fn idempotency_key<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let k = String::deserialize(d)?;
    if idempotency_key_ok(&k) {
        Ok(Some(k))
    } else {
        Err(serde::de::Error::custom(
            "an idempotency key has 1 to 255 visible ascii characters, without spaces",
        ))
    }
}

async fn batch(st: &AppState, headers: &HeaderMap, actor: &Actor, kind: Kind, bytes: &[u8]) -> Res {
    let lease = lease::from_headers(headers)?;
    let ops = operations::<BatchOp>(bytes, "a batch", "split it")?
        .into_iter()
        .map(|o| engine_op(kind, o, true))
        .collect();
    let results = engine::run(&st.db, actor, kind, ops, lease.as_deref()).await?;
    let results: Vec<Value> = results
        .into_iter()
        .map(|r| match r {
            Ok(d) => json!({"status": d.status.as_u16(), "body": d.body}),
            Err(p) => json!({"status": p.status.as_u16(), "body": p.to_json()}),
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({ "results": results }),
    ))
}

/// A batch's (or a check's) operation as the engine takes it; a check keeps no
/// idempotency key (it remembers nothing).
fn engine_op(kind: Kind, o: BatchOp, keep_idempotency: bool) -> Op {
    match o {
        BatchOp::Create {
            body,
            idempotency_key,
        } => Op::Create {
            body: Value::Object(body),
            idempotency_key: idempotency_key.filter(|_| keep_idempotency),
        },
        BatchOp::Update {
            key,
            if_match,
            body,
        } => Op::Update {
            key: normalize_key(kind, &key),
            if_match,
            patch: Value::Object(body),
        },
        BatchOp::Delete {
            key,
            if_match,
            purge_statistics,
        } => Op::Delete {
            key: normalize_key(kind, &key),
            if_match,
            purge_statistics,
        },
    }
}

/// What `GET /v1/whoami` advertises in `capabilities`: the optional parts of the api
/// this server has, so that a client uses them only where they exist.
pub const CAPABILITIES: &[&str] = &[PLAN_CHECK, CHANGE_FEED];

/// The capability of `GET /v1/changes`.
pub const CHANGE_FEED: &str = "change-feed";

/// Most keys one answer of `GET /v1/changes` reports (and its default).
pub const FEED_LIMIT: i64 = MAX_LIMIT;

/// `GET /v1/changes?since=CURSOR`: every object key a committed write touched after the
/// cursor, each with the object as it is now (`null`: gone), and the new cursor. Without
/// `since`: the head only. Administrators only: a manager's view of an object depends on
/// its scope, and a change feed of keys would name logins outside it.
async fn changes(
    State(st): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Res {
    let q = query_param(query)?;
    let actor = actor(&st, &headers).await?;
    actor.require_admin("read the change feed (a manager's plan reads its teams in full)")?;
    let limit = parse_limit_or(&q, FEED_LIMIT)?;
    let since = match q.get("since") {
        None => None,
        Some(c) => Some(
            c.split_once('.')
                .and_then(|(epoch, seq)| Some((epoch.to_string(), seq.parse::<i64>().ok()?)))
                .filter(|(_, seq)| *seq >= 0)
                .ok_or_else(|| {
                    Problem::bad_request(format!(
                        "`since` must be a cursor this endpoint returned, not `{c}`"
                    ))
                    .with_pointer("/since")
                })?,
        ),
    };
    let read = st
        .db
        .feed(since.as_ref().map(|(_, seq)| *seq), limit)
        .await?;
    let cursor = |seq: i64| format!("{}.{seq}", read.epoch);
    if let Some((epoch, seq)) = &since {
        if *epoch != read.epoch || !(read.pruned_through..=read.head).contains(seq) {
            return Err(Problem::new(
                StatusCode::GONE,
                "cursor-expired",
                if *epoch != read.epoch {
                    "the cursor is from another database: read everything again".to_string()
                } else {
                    format!(
                        "the cursor is older than the changes this server keeps (or from \
                         before a restore): read everything again; the feed is at `{}`",
                        cursor(read.head)
                    )
                },
            ));
        }
    }
    let mut body =
        String::with_capacity(64 + read.rows.iter().map(|r| r.key.len() + 32).sum::<usize>());
    body.push_str("{\"changes\":[");
    for (i, r) in read.rows.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        let _ = write!(
            body,
            "{{\"kind\":{},\"key\":{},\"object\":",
            Value::from(r.kind.as_str()),
            Value::from(r.key.as_str())
        );
        match (&r.body, r.version) {
            (Some(b), Some(v)) => push_stored_item(&mut body, b, v)?,
            _ => body.push_str("null"),
        }
        body.push('}');
    }
    let next = match read.rows.last() {
        Some(last) if read.more => last.seq,
        _ => read.head,
    };
    let _ = write!(
        body,
        "],\"cursor\":{},\"more\":{}",
        Value::from(cursor(next)),
        read.more
    );
    if since.is_some() && !read.more {
        let digest: Map<String, Value> = Kind::ALL
            .iter()
            .map(|k| {
                let (count, versions) = read
                    .digest
                    .iter()
                    .find(|(kind, ..)| kind == k.name())
                    .map_or((0, 0), |(_, c, v)| (*c, *v));
                (
                    k.name().to_string(),
                    json!({"count": count, "versions": versions}),
                )
            })
            .collect();
        // What a client bringing its copy up to date would otherwise ask next, so that
        // "nothing changed" is one request: who the token acts as, and the account
        // (read after the changes: a change to it is never older than the feed's).
        let _ = write!(
            body,
            ",\"digest\":{},\"whoami\":{},\"account\":{}",
            Value::Object(digest),
            whoami_body(&actor)?,
            account_body(&st).await?
        );
    }
    body.push('}');
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response())
}

/// The capability of `POST /v1/plan:check`.
pub const PLAN_CHECK: &str = "plan-check";

/// One operation of a check: `kind`, `set_password`, and a batch operation's members.
fn check_item(i: usize, item: Value) -> Result<CheckOp, Problem> {
    let at = format!("/operations/{i}");
    let Value::Object(mut obj) = item else {
        return Err(Problem::invalid_field(
            RuleCode::Schema,
            &at,
            "an operation is a json object",
        ));
    };
    let kind = match obj.remove("kind") {
        None => Err(format!("{at}/kind is missing")),
        Some(k) => serde_json::from_value::<Kind>(k).map_err(|_| {
            format!(
                "{at}/kind must be one of {}",
                Kind::ALL.map(|k| k.name()).join(", ")
            )
        }),
    }
    .map_err(|m| Problem::invalid_field(RuleCode::Schema, &format!("{at}/kind"), m))?;
    let set_password = match obj.remove("set_password") {
        None => false,
        Some(Value::Bool(b)) => b,
        Some(_) => {
            return Err(Problem::invalid_field(
                RuleCode::Schema,
                &format!("{at}/set_password"),
                "`set_password` is true or false",
            ));
        }
    };
    let op: BatchOp = serde_path_to_error::deserialize(Value::Object(obj)).map_err(|e| {
        let mut p = from_serde(e);
        p.prefix_pointers(&at);
        p
    })?;
    Ok(CheckOp {
        kind,
        op: engine_op(kind, op, false),
        set_password,
    })
}

/// `POST /v1/plan:check`: a dry run of a whole plan's writes, of every kind, in order,
/// in one transaction that is always rolled back (`engine::check`). A `read` token may
/// call it: it writes nothing. Per operation: the status the write would get and, when
/// refused, its problem.
async fn plan_check(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Res {
    let actor = actor(&st, &headers).await?;
    let bytes = body_bytes(body)?;
    let ops = operations::<Value>(&bytes, "a check", "check a smaller plan")?
        .into_iter()
        .enumerate()
        .map(|(i, item)| check_item(i, item))
        .collect::<Result<Vec<_>, Problem>>()?;
    let results = engine::check(&st.db, &actor, ops).await?;
    let results: Vec<Value> = results
        .into_iter()
        .map(|r| match r {
            Ok(d) => json!({"status": d.status.as_u16()}),
            Err(p) => json!({"status": p.status.as_u16(), "problem": p.to_json()}),
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({ "results": results }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordChange {
    login: String,
    current_password: String,
    new_password: String,
}

/// `POST /v1/sign-in:change-password`: the person changes its own password, as at a
/// console's sign-in; proven by the current password, so no token (one sent is not
/// read). 204, or 401 alike for every reason the change is refused.
async fn change_password(State(st): State<AppState>, body: Result<Bytes, BytesRejection>) -> Res {
    let bytes = body_bytes(body)?;
    parse_json(&bytes)?;
    let de = &mut serde_json::Deserializer::from_slice(&bytes);
    let req: PasswordChange = serde_path_to_error::deserialize(de).map_err(from_serde)?;
    engine::change_own_password(&st.db, &req.login, req.current_password, req.new_password).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn patch_one(
    State(st): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Res {
    let (collection, key) = path_param(path)?;
    let kind = kind_of(&collection)?;
    let actor = writer(&st, &headers, "change objects").await?;
    let bytes = body_bytes(body)?;
    let patch = parse_json(&bytes)?;
    let op = Op::Update {
        key: normalize_key(kind, &key),
        if_match: if_match(&headers)?,
        patch,
    };
    single(&st, &headers, &actor, kind, op).await
}

async fn delete_one(
    State(st): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Res {
    let (collection, key) = path_param(path)?;
    let kind = kind_of(&collection)?;
    let q = query_param(query)?;
    let actor = writer(&st, &headers, "delete objects").await?;
    let purge = match q.get("purge_statistics").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(Problem::bad_request(format!(
                "`purge_statistics` must be true or false, not `{other}`"
            )));
        }
    };
    let op = Op::Delete {
        key: normalize_key(kind, &key),
        if_match: if_match(&headers)?,
        purge_statistics: purge,
    };
    single(&st, &headers, &actor, kind, op).await
}

/// Liveness, without a token: the process answers.
async fn healthz() -> Response {
    json_response(StatusCode::OK, &json!({"status": "ok"}))
}

/// Readiness, without a token: the database answers and its migrations are applied
/// (503 otherwise, with the reason), for a load balancer or an orchestrator.
async fn readyz(State(st): State<AppState>) -> Response {
    match st.db.ready().await {
        Ok(()) => json_response(StatusCode::OK, &json!({"status": "ready"})),
        Err(why) => json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"status": "not ready", "reason": why}),
        ),
    }
}

async fn whoami(State(st): State<AppState>, headers: HeaderMap) -> Res {
    let actor = actor(&st, &headers).await?;
    Ok(json_response(StatusCode::OK, &whoami_body(&actor)?))
}

/// What `GET /v1/whoami` answers for `actor`: its principal and the capabilities it may
/// use (the change feed serves administrator tokens only).
fn whoami_body(actor: &Actor) -> Result<Value, Problem> {
    let mut body =
        serde_json::to_value(actor.principal()).map_err(|e| Problem::internal(e.to_string()))?;
    if let Some(obj) = body.as_object_mut() {
        let caps: Vec<&str> = CAPABILITIES
            .iter()
            .copied()
            .filter(|c| *c != CHANGE_FEED || actor.manager().is_none())
            .collect();
        obj.insert("capabilities".into(), json!(caps));
    }
    Ok(body)
}

async fn catalog(State(st): State<AppState>, headers: HeaderMap) -> Res {
    actor(&st, &headers).await?;
    let body = serde_json::to_value(crate::model::catalog::catalog_doc())
        .map_err(|e| Problem::internal(e.to_string()))?;
    Ok(json_response(StatusCode::OK, &body))
}

async fn account_get(State(st): State<AppState>, headers: HeaderMap) -> Res {
    actor(&st, &headers).await?;
    Ok(json_response(StatusCode::OK, &account_body(&st).await?))
}

/// What `GET /v1/account` answers.
async fn account_body(st: &AppState) -> Result<Value, Problem> {
    let (name, seats, version) = st
        .db
        .account()
        .await?
        .ok_or_else(|| Problem::internal("the account row is missing"))?;
    // Counts only, so a manager token learns no login outside its teams.
    let (operators, users) = st.db.seat_counts().await?;
    let policy = st.db.password_policy().await?;
    Ok(
        json!({"name": name, "seats": seats, "operators": operators, "users": users,
              "password_policy": policy, "version": version}),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountPatch {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    seats: Option<u32>,
    /// The whole policy (fields left out take their defaults).
    #[serde(default)]
    password_policy: Option<crate::model::PasswordPolicy>,
    #[serde(default)]
    #[allow(dead_code)]
    version: Option<i64>,
}

async fn account_patch(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Res {
    let actor = writer(&st, &headers, "change the account").await?;
    actor.require_admin("change the account")?;
    let bytes = body_bytes(body)?;
    parse_json(&bytes)?;
    let de = &mut serde_json::Deserializer::from_slice(&bytes);
    let patch: AccountPatch = serde_path_to_error::deserialize(de).map_err(from_serde)?;
    let expected = if_match(&headers)?.ok_or_else(|| {
        Problem::precondition_required("changing the account needs `If-Match: \"<version>\"`")
    })?;
    if patch
        .name
        .as_deref()
        .is_some_and(crate::model::is_blank_account_name)
    {
        return Err(Problem::invalid_field(
            RuleCode::Schema,
            "/name",
            "the account name is empty",
        ));
    }
    if let Some(why) = patch.password_policy.as_ref().and_then(|p| p.problem()) {
        return Err(Problem::invalid_field(
            RuleCode::Schema,
            "/password_policy/min_length",
            why,
        ));
    }
    let lease_id = lease::from_headers(&headers)?;
    let mut tx = st.db.begin().await?;
    if let Some(id) = &lease_id {
        lease::check(&mut tx, id).await?;
    }
    let old_policy = tx.password_policy().await?;
    let (name, seats, version) = tx
        .account()
        .await?
        .ok_or_else(|| Problem::internal("the account row is missing"))?;
    if version != expected {
        return Err(Problem::precondition_failed(format!(
            "the account is at version {version}, not {expected}; read it again and retry"
        )));
    }
    let new_name = patch.name.unwrap_or(name.clone());
    let new_seats = patch.seats.map(i64::from).unwrap_or(seats);
    let active = tx.count_operators().await?;
    if new_seats < active {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "seats-exceeded",
            format!("{active} operators (active representatives with support management) hold seats; seats cannot go below that (asked {new_seats}); deactivate some or turn off their `support_management` first"),
        )
        .with_pointer("/seats"));
    }
    if !tx
        .update_account_cas(&new_name, new_seats, expected)
        .await?
    {
        return Err(Problem::precondition_failed(
            "the account changed meanwhile; read it again and retry",
        ));
    }
    let new_policy = patch.password_policy.unwrap_or(old_policy);
    if new_policy != old_policy {
        tx.set_password_policy(&new_policy).await?;
    }
    let before = json!({"name": name, "seats": seats, "password_policy": old_policy,
                        "version": version});
    let after = json!({"name": new_name, "seats": new_seats, "password_policy": new_policy,
                       "version": version + 1});
    tx.audit(
        &super::store::now_rfc3339(),
        actor.login(),
        actor.token_id(),
        "update",
        "account",
        "account",
        Some(&before.to_string()),
        Some(&after.to_string()),
    )
    .await?;
    tx.commit().await?;
    Ok(json_response(StatusCode::OK, &after))
}

async fn audit(
    State(st): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Res {
    let q = query_param(query)?;
    let actor = actor(&st, &headers).await?;
    actor.require_admin("read the audit log")?;
    let limit = parse_limit(&q)?;
    let after = match q.get("cursor").filter(|c| !c.is_empty()) {
        None => 0,
        Some(c) => c.parse::<i64>().map_err(|_| {
            Problem::bad_request(
                "`cursor` is not one this server issued; pass `next_cursor` back unchanged",
            )
        })?,
    };
    let mut rows = st.db.audit_page(after, limit + 1).await?;
    let next = if rows.len() > limit as usize {
        rows.truncate(limit as usize);
        rows.last().map(|r| r.id.to_string())
    } else {
        None
    };
    let parse = |s: &Option<String>| {
        s.as_deref()
            .and_then(|s| serde_json::from_str::<Value>(s).ok())
    };
    let items: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({"id": r.id, "at": r.at, "actor": r.actor, "token_id": r.token_id,
                   "action": r.action, "kind": r.kind, "key": r.key,
                   "before": parse(&r.before), "after": parse(&r.after)})
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({"items": items, "next_cursor": next}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRequest {
    #[serde(default)]
    manager: Option<String>,
    #[serde(default)]
    administrator: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    permission: Option<String>,
    /// A duration like `30d` (default: 90 days).
    #[serde(default)]
    expires_in: Option<String>,
    #[serde(default)]
    no_expiry: bool,
}

/// `POST /v1/tokens`: an administrator creates a token for any administrator or
/// manager; a manager only for itself (`manager` its own login). With neither named
/// (`{}`), the token is the caller's own, whichever its role.
async fn tokens_create(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Res {
    let actor = writer(&st, &headers, "create tokens").await?;
    let bytes = body_bytes(body)?;
    parse_json(&bytes)?;
    let de = &mut serde_json::Deserializer::from_slice(&bytes);
    let req: TokenRequest = serde_path_to_error::deserialize(de).map_err(from_serde)?;
    let (manager, administrator) = match (&actor, req.manager, req.administrator) {
        // Neither named: a token for the caller itself, whichever its role.
        (Actor::Manager { .. }, None, None) => (Some(actor.login().to_string()), None),
        (Actor::Administrator { .. }, None, None) => (None, Some(actor.login().to_string())),
        (_, m, a) => (m, a),
    };
    let (role, kind, login) = match (manager, administrator) {
        (Some(m), None) => ("manager", Kind::Manager, m.to_lowercase()),
        (None, Some(a)) => ("administrator", Kind::Administrator, a.to_lowercase()),
        _ => {
            return Err(Problem::invalid_field(
                RuleCode::Schema,
                "",
                "give exactly one of `manager` and `administrator`",
            ));
        }
    };
    if let Actor::Manager { login: me, .. } = &actor {
        if role != "manager" || &login != me {
            return Err(Problem::forbidden(format!(
                "manager `{me}` may create tokens for itself only"
            )));
        }
    }
    let permission = match req.permission.as_deref() {
        None => Permission::Write,
        Some(p) => Permission::parse(p).ok_or_else(|| {
            Problem::invalid_field(
                RuleCode::Schema,
                "/permission",
                format!("`permission` is `read` or `write`, not `{p}`"),
            )
        })?,
    };
    let expires_at = TokenSpec::expiry(req.expires_in.as_deref(), req.no_expiry)
        .map_err(|e| Problem::invalid_field(RuleCode::Schema, "/expires_in", e))?;
    let spec = TokenSpec {
        name: req.name.trim().to_string(),
        permission,
        expires_at,
    };
    let lease_id = lease::from_headers(&headers)?;
    let mut tx = st.db.begin().await?;
    if let Some(id) = &lease_id {
        lease::check(&mut tx, id).await?;
    }
    if !tx.exists(kind, &login).await? {
        return Err(Problem::invalid_field(
            RuleCode::UnresolvedReference,
            &format!("/{role}"),
            format!("no {kind} `{login}`"),
        ));
    }
    let (token, row) = super::auth::issue_token(
        &mut tx,
        actor.login(),
        actor.token_id(),
        role,
        &login,
        &spec,
    )
    .await?;
    tx.commit().await?;
    let mut body = token_view(&row);
    body["token"] = Value::String(token);
    Ok(json_response(StatusCode::CREATED, &body))
}

/// `GET /v1/tokens`: every token to an administrator, its own to a manager; never a
/// token's value.
async fn tokens_list(State(st): State<AppState>, headers: HeaderMap) -> Res {
    let actor = actor(&st, &headers).await?;
    let of = match &actor {
        Actor::Administrator { .. } => None,
        Actor::Manager { login, .. } => Some(("manager", login.as_str())),
    };
    let items: Vec<Value> = st.db.tokens(of).await?.iter().map(token_view).collect();
    Ok(json_response(StatusCode::OK, &json!({"items": items})))
}

/// `DELETE /v1/tokens/{id}`: revokes a token (an administrator any, a manager its
/// own); 204, 404 when there is no such token (or it is another's).
async fn tokens_revoke(
    State(st): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Res {
    let id = path_param(path)?;
    let actor = writer(&st, &headers, "revoke tokens").await?;
    let mut tx = st.db.begin().await?;
    let row = tx
        .token_by_id(&id)
        .await?
        .filter(|t| match &actor {
            Actor::Administrator { .. } => true,
            Actor::Manager { login, .. } => t.role == "manager" && &t.login == login,
        })
        .ok_or_else(|| Problem::not_found(format!("no token `{id}`")))?;
    super::auth::revoke(&mut tx, &row, actor.login(), actor.token_id()).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod list_text_tests {
    use super::*;

    #[test]
    fn spliced_item_text_is_the_parsed_and_reserialized_item() {
        for body in [
            r#"{"name":"web","features":["a"],"note":"say \"hi\""}"#,
            r#"{}"#,
            r#"{"name":"x","version":3}"#,
        ] {
            let fast = stored_item_text(body, 42).unwrap();
            let slow = stored_item(body, 42).unwrap().to_string();
            assert_eq!(fast, slow, "{body}");
        }
    }
}
