//! The apply lease (`/v1/lease`): one per account, so that two `roster apply` runs (two
//! pipelines, two people) never write at once.
//!
//! A client takes it (`POST`, with a free-text `holder` and `purpose` and a time to
//! live), renews it while it writes (`PUT /v1/lease/{id}`), and releases it at the end
//! (`DELETE /v1/lease/{id}`). A lease whose expiry has passed is free: a crashed client's
//! lease lapses by itself. The row lives in the database (`lease`, migrations
//! `0003_lease.sql`), so it holds across replicas sharing one PostgreSQL and across
//! restarts; every change to it runs in the store's serialized write transaction, and
//! the take is one insert-or-replace-if-expired statement, so two takers racing on two
//! replicas cannot both win. Times are the server's clock (replicas keep theirs in sync).
//!
//! The lease `id` is the holder's handle: answered once, to the taker, and never shown
//! to anyone else (`GET` and the `lease-held` problem name the holder, not the id).
//! Renewing and releasing need the id and the principal that took it; an administrator
//! may break the current lease without it (`DELETE /v1/lease`).
//!
//! Writes and the lease: a write that carries `Roster-Lease: <id>` is refused (409
//! `lease-not-held`, nothing written) unless that id is the current, unexpired lease —
//! checked inside the write's own transaction, so a client that lost its lease (it
//! expired, or was broken) never writes over the next holder. Writes without the header
//! are not refused: the lease coordinates clients that take it, it does not lock the API
//! for everyone else (an administrator fixing something by hand still can).
//!
//! Taking and releasing (or breaking) are recorded in the audit log (`kind` `lease`,
//! `key` the holder); renewals are not.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::auth::{Actor, authenticate, login_in_scope};
use super::problem::{Problem, from_serde};
use super::store::{LeaseRow, Tx, now_rfc3339};
use crate::model::rules::RuleCode;

/// Shortest and longest time to live a lease may be taken or renewed for, in seconds.
pub const MIN_TTL: u64 = 1;
pub const MAX_TTL: u64 = 3600;
/// The request header naming the lease a write is made under.
pub const HEADER: &str = "roster-lease";

/// A lease id, the client's or the server's: 16 to 64 of `0-9A-Za-z_-` (the OpenAPI
/// document's pattern of `id` and of the `Roster-Lease` header).
pub(crate) const ID_PATTERN: &str = "^[0-9A-Za-z_-]{16,64}$";
/// Longest `holder` and `purpose`, in characters.
const MAX_TEXT: usize = 200;

type Res = Result<Response, Problem>;

fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// Unix milliseconds as RFC 3339 (UTC).
fn rfc3339_ms(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .map(super::store::rfc3339)
        .unwrap_or_default()
}

fn principal_of(actor: &Actor) -> String {
    match actor {
        Actor::Administrator { login, .. } => format!("administrator:{login}"),
        Actor::Manager { login, .. } => format!("manager:{login}"),
    }
}

/// Who took the lease, by login (what the audit log records).
fn taker(row: &LeaseRow) -> &str {
    row.principal
        .split_once(':')
        .map_or(row.principal.as_str(), |(_, login)| login)
}

/// Who took the lease, as `actor` may learn it (rule 6: a manager token learns no login
/// outside its teams): the login for an administrator, for the taker itself and for a
/// manager in the actor's scope; otherwise only what kind of account took it.
async fn taker_for(actor: &Actor, tx: &mut Tx, row: &LeaseRow) -> Result<String, Problem> {
    let login = taker(row);
    if actor.manager().is_none() || row.principal == principal_of(actor) {
        return Ok(login.to_string());
    }
    if row.principal.starts_with("administrator:") {
        return Ok("an administrator".into());
    }
    Ok(if login_in_scope(actor, tx, login).await? {
        login.to_string()
    } else {
        "a manager of other teams".into()
    })
}

/// The lease as shown (`taken_by` as [`taker_for`] gives it): with its `id` only to the
/// client that holds it.
fn view(row: &LeaseRow, with_id: bool, taken_by: &str) -> Value {
    let mut v = json!({
        "holder": row.holder,
        "purpose": row.purpose,
        "taken_by": taken_by,
        "acquired_at": rfc3339_ms(row.acquired_at),
        "expires_at": rfc3339_ms(row.expires_at),
    });
    if with_id {
        v["id"] = json!(row.id);
    }
    v
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// 409 `lease-held`: who holds it and until when (also as the `lease` member).
async fn held(actor: &Actor, tx: &mut Tx, row: &LeaseRow) -> Problem {
    match taker_for(actor, tx, row).await {
        Ok(taken_by) => held_as(row, &taken_by),
        Err(p) => p,
    }
}

/// [`held`] with `taken_by` as the asker may see it.
fn held_as(row: &LeaseRow, taken_by: &str) -> Problem {
    let purpose = if row.purpose.is_empty() {
        String::new()
    } else {
        format!(" for {}", row.purpose)
    };
    let mut p = Problem::new(
        StatusCode::CONFLICT,
        "lease-held",
        format!(
            "the apply lease is held by {}{purpose} until {}; wait until it is released or expires",
            row.holder,
            rfc3339_ms(row.expires_at)
        ),
    );
    p.lease = Some(view(row, false, taken_by));
    p
}

/// Only a principal that may write something may take the lease: an administrator, or a
/// manager holding at least one team right.
fn may_take(actor: &Actor) -> Result<(), Problem> {
    match actor.manager() {
        Some(m) if m.team_rights.is_empty() => Err(Problem::forbidden(format!(
            "manager `{}` holds no team right and can write nothing, so it may not take the apply lease",
            m.login
        ))),
        _ => Ok(()),
    }
}

fn text_field(value: &str, pointer: &str, required: bool) -> Result<(), Problem> {
    let field = pointer.trim_start_matches('/');
    let bad = |m: &str| Problem::invalid_field(RuleCode::Schema, pointer, format!("`{field}` {m}"));
    if required && value.trim().is_empty() {
        return Err(bad(
            "is empty; say who takes the lease (user@host, pid or CI run)",
        ));
    }
    if value.chars().count() > MAX_TEXT {
        return Err(bad(&format!("is longer than {MAX_TEXT} characters")));
    }
    if value.chars().any(char::is_control) {
        return Err(bad("holds a control character"));
    }
    Ok(())
}

fn ttl(secs: u64) -> Result<i64, Problem> {
    if !(MIN_TTL..=MAX_TTL).contains(&secs) {
        return Err(Problem::invalid_field(
            RuleCode::Schema,
            "/ttl_seconds",
            format!("`ttl_seconds` must be from {MIN_TTL} to {MAX_TTL}, not {secs}"),
        ));
    }
    Ok(secs as i64 * 1000)
}

fn parse<T: for<'de> Deserialize<'de>>(body: Result<Bytes, BytesRejection>) -> Result<T, Problem> {
    let bytes = body.map_err(|e| Problem::bad_request(format!("cannot read the body: {e}")))?;
    if bytes.is_empty() {
        return Err(Problem::invalid_json(
            "the body is empty; send a json object",
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(&bytes);
    serde_path_to_error::deserialize(de).map_err(from_serde)
}

fn lease_id(p: Result<Path<String>, PathRejection>) -> Result<String, Problem> {
    p.map(|Path(x)| x)
        .map_err(|e| Problem::bad_request(format!("bad path: {}", e.body_text())))
}

async fn actor(st: &AppState, h: &HeaderMap) -> Result<Actor, Problem> {
    authenticate(
        &st.db,
        h.get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok()),
    )
    .await
}

async fn audit(
    tx: &mut Tx,
    actor: &Actor,
    action: &str,
    row: &LeaseRow,
    before: Option<&LeaseRow>,
    after: Option<&LeaseRow>,
) -> Result<(), Problem> {
    let text = |r: Option<&LeaseRow>| r.map(|r| view(r, false, taker(r)).to_string());
    tx.audit(
        &now_rfc3339(),
        actor.login(),
        actor.token_id(),
        action,
        "lease",
        &row.holder,
        text(before).as_deref(),
        text(after).as_deref(),
    )
    .await?;
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TakeRequest {
    holder: String,
    #[serde(default)]
    purpose: String,
    ttl_seconds: u64,
    /// The handle the client chose (16–64 of `0-9A-Za-z_-`), so that a take whose answer
    /// was lost can be retried: the same id from the same principal, while that lease
    /// holds, answers 201 with it again instead of `lease-held`.
    #[serde(default)]
    id: Option<String>,
}

/// A client-chosen lease id: long enough to be unguessable, short and plain enough to
/// sit in a path and a header.
fn client_id(id: &str) -> Result<(), Problem> {
    let ok = (16..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Problem::invalid_field(
            RuleCode::Schema,
            "/id",
            "`id` must be 16 to 64 characters of 0-9, A-Z, a-z, `-` and `_`",
        ))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RenewRequest {
    ttl_seconds: u64,
}

/// `GET /v1/lease`: the current holder (without the id), or 404 when the lease is free.
pub(crate) async fn get(State(st): State<AppState>, headers: HeaderMap) -> Res {
    let actor = actor(&st, &headers).await?;
    match st.db.lease().await? {
        Some(row) if row.expires_at > now_ms() => {
            let taken_by = if actor.manager().is_some() {
                let mut tx = st.db.begin().await?;
                let t = taker_for(&actor, &mut tx, &row).await?;
                tx.rollback().await?;
                t
            } else {
                taker(&row).to_string()
            };
            Ok(json_response(StatusCode::OK, &view(&row, false, &taken_by)))
        }
        _ => Err(Problem::not_found("nobody holds the apply lease")),
    }
}

/// `POST /v1/lease`: 201 with the new lease (and its id), or 409 `lease-held`.
pub(crate) async fn take(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Res {
    let actor = actor(&st, &headers).await?;
    actor.require_write("take the apply lease")?;
    may_take(&actor)?;
    let req: TakeRequest = parse(body)?;
    text_field(&req.holder, "/holder", true)?;
    text_field(&req.purpose, "/purpose", false)?;
    let ttl = ttl(req.ttl_seconds)?;
    if let Some(id) = &req.id {
        client_id(id)?;
    }
    let now = now_ms();
    let row = LeaseRow {
        id: req
            .id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string()),
        holder: req.holder.trim().to_string(),
        purpose: req.purpose.trim().to_string(),
        principal: principal_of(&actor),
        acquired_at: now,
        expires_at: now + ttl,
    };
    let mut tx = st.db.begin().await?;
    let before = tx.lease().await?;
    if let Some(cur) = before.as_ref().filter(|cur| {
        req.id.as_deref() == Some(cur.id.as_str())
            && cur.principal == row.principal
            && cur.expires_at > now
    }) {
        // A retried take whose first answer was lost: the lease is already this
        // client's. Nothing changes, nothing is audited twice.
        return Ok(json_response(
            StatusCode::CREATED,
            &view(cur, true, taker(cur)),
        ));
    }
    if !tx.take_lease(&row).await? {
        return Err(match before {
            Some(current) => held(&actor, &mut tx, &current).await,
            None => Problem::internal("the lease was neither free nor held"),
        });
    }
    audit(&mut tx, &actor, "create", &row, before.as_ref(), Some(&row)).await?;
    tx.commit().await?;
    Ok(json_response(
        StatusCode::CREATED,
        &view(&row, true, taker(&row)),
    ))
}

/// `PUT /v1/lease/{id}`: extends the holder's unexpired lease by `ttl_seconds` from now.
pub(crate) async fn renew(
    State(st): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Res {
    let id = lease_id(id)?;
    let actor = actor(&st, &headers).await?;
    actor.require_write("renew the apply lease")?;
    let req: RenewRequest = parse(body)?;
    let ttl = ttl(req.ttl_seconds)?;
    let now = now_ms();
    let mut tx = st.db.begin().await?;
    let row = match tx.lease().await? {
        Some(r) if r.id == id => r,
        Some(r) if r.expires_at > now => return Err(held(&actor, &mut tx, &r).await),
        _ => {
            return Err(Problem::not_found(
                "no such apply lease: it was released, or it expired and was taken again",
            ));
        }
    };
    if row.principal != principal_of(&actor) {
        return Err(Problem::forbidden(
            "this apply lease was taken with another token; only its holder may renew it",
        ));
    }
    if !tx.renew_lease(&id, now, now + ttl).await? {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "lease-expired",
            format!(
                "the apply lease expired at {}; take a new one",
                rfc3339_ms(row.expires_at)
            ),
        ));
    }
    tx.commit().await?;
    let renewed = LeaseRow {
        expires_at: now + ttl,
        ..row
    };
    Ok(json_response(
        StatusCode::OK,
        &view(&renewed, true, taker(&renewed)),
    ))
}

/// `DELETE /v1/lease/{id}`: the holder releases its lease (an administrator may release
/// anyone's); 204, or 404 when it is gone already.
pub(crate) async fn release(
    State(st): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> Res {
    let id = lease_id(id)?;
    let actor = actor(&st, &headers).await?;
    actor.require_write("release the apply lease")?;
    drop_lease(&st, &actor, Some(&id)).await
}

/// `DELETE /v1/lease`: an administrator breaks the current lease, whoever holds it.
pub(crate) async fn break_lease(State(st): State<AppState>, headers: HeaderMap) -> Res {
    let actor = actor(&st, &headers).await?;
    actor.require_write("break the apply lease")?;
    actor.require_admin("break the apply lease of another client")?;
    drop_lease(&st, &actor, None).await
}

async fn drop_lease(st: &AppState, actor: &Actor, id: Option<&str>) -> Res {
    let mut tx = st.db.begin().await?;
    let row = match (tx.lease().await?, id) {
        (Some(r), Some(id)) if r.id == id => r,
        (Some(r), None) if r.expires_at > now_ms() => r,
        _ => {
            return Err(Problem::not_found(match id {
                Some(_) => {
                    "no such apply lease: it was released, or it expired and was taken again"
                }
                None => "nobody holds the apply lease",
            }));
        }
    };
    let admin = matches!(actor, Actor::Administrator { .. });
    if row.principal != principal_of(actor) && !admin {
        return Err(Problem::forbidden(
            "this apply lease was taken with another token; only its holder or an administrator may release it",
        ));
    }
    tx.release_lease(&row.id).await?;
    audit(&mut tx, actor, "delete", &row, Some(&row), None).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The `Roster-Lease` header of a write, if any.
pub(crate) fn from_headers(h: &HeaderMap) -> Result<Option<String>, Problem> {
    let Some(v) = h.get(HEADER) else {
        return Ok(None);
    };
    let id = v
        .to_str()
        .map(str::trim)
        .map_err(|_| Problem::bad_request("`Roster-Lease` must be visible ascii"))?;
    if id.is_empty() {
        return Err(Problem::bad_request(
            "`Roster-Lease` is empty; send the id `POST /v1/lease` answered, or no header",
        ));
    }
    Ok(Some(id.to_string()))
}

/// Inside a write's transaction: the write names lease `id`, which must be the current,
/// unexpired one; otherwise 409 `lease-not-held` and the write is not made.
pub(crate) async fn check(tx: &mut Tx, id: &str) -> Result<(), Problem> {
    let current = tx.lease().await?;
    let now = now_ms();
    match current {
        Some(r) if r.id == id && r.expires_at > now => Ok(()),
        other => {
            let who = match other.filter(|r| r.expires_at > now) {
                Some(r) => format!(
                    "; {} holds it now, until {}",
                    r.holder,
                    rfc3339_ms(r.expires_at)
                ),
                None => String::new(),
            };
            Err(Problem::new(
                StatusCode::CONFLICT,
                "lease-not-held",
                format!(
                    "this write was made under an apply lease that is no longer held (it expired, or was released or broken){who}; nothing was written"
                ),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_render_as_rfc3339_utc() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_ms(1_500), "1970-01-01T00:00:01.5Z");
    }

    #[test]
    fn the_view_shows_the_id_to_its_holder_only() {
        let row = LeaseRow {
            id: "abc".into(),
            holder: "ci@runner pid 7".into(),
            purpose: "apply org/".into(),
            principal: "administrator:admin@localhost".into(),
            acquired_at: 0,
            expires_at: 60_000,
        };
        assert_eq!(view(&row, true, taker(&row))["id"], "abc");
        assert!(view(&row, false, taker(&row)).get("id").is_none());
        assert_eq!(taker(&row), "admin@localhost");
        let p = held_as(&row, "an administrator");
        assert_eq!(p.lease.as_ref().unwrap()["taken_by"], "an administrator");
        assert_eq!((p.status.as_u16(), p.code), (409, "lease-held"));
        assert!(
            p.detail
                .contains("ci@runner pid 7 for apply org/ until 1970-01-01T00:01:00Z")
        );
        assert!(
            !p.to_json().to_string().contains("abc"),
            "no id in the problem"
        );
    }

    #[test]
    fn ttl_is_bounded() {
        assert!(ttl(0).is_err());
        assert!(ttl(MAX_TTL + 1).is_err());
        assert_eq!(ttl(30).unwrap(), 30_000);
    }
}
