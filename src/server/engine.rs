//! The write engine: runs creates, updates and deletes of one kind — one operation from
//! a single request, or up to 1000 from a batch — so that the store never holds an
//! invalid state.
//!
//! Each operation is first parsed and checked on its own (body shape, rule 1, field
//! shapes; passwords are hashed off the async runtime). Then all operations that passed
//! run in order in ONE serialized write transaction: each is checked against the state
//! left by the ones before (versions, rule 2 collisions, rule 3 references, rule 5
//! seats, rule 6 scope) and, only when every check passed, written together with its
//! references, its audit record and its idempotency record. A rejected operation writes
//! nothing and does not stop the others. A database error aborts the whole transaction.

use std::collections::HashMap;

use argon2::password_hash::{PasswordHasher, SaltString, rand_core::OsRng};
use axum::http::StatusCode;
use futures::StreamExt;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::auth::{Actor, Sight, Src, authorize_write, is_within, keep_hidden, login_in_scope};
use super::domain::{Obj, merge_patch};
use super::problem::Problem;
use super::store::{self, Db, StoredObject, Tx};
use crate::model::rules::{RuleCode, Violation};
use crate::model::{Kind, PasswordPolicy};

/// One requested write.
#[derive(Debug, Clone)]
pub enum Op {
    Create {
        body: Value,
        idempotency_key: Option<String>,
    },
    Update {
        key: String,
        if_match: Option<i64>,
        patch: Value,
    },
    Delete {
        key: String,
        if_match: Option<i64>,
        purge_statistics: bool,
    },
}

/// A successful operation: status, and the object (with `version`) unless deleted.
#[derive(Debug, Clone, PartialEq)]
pub struct Done {
    pub status: StatusCode,
    pub body: Option<Value>,
}

impl Done {
    pub fn version(&self) -> Option<i64> {
        self.body.as_ref()?.get("version")?.as_i64()
    }
}

enum Prepared {
    Create {
        obj: Box<Obj>,
        secret: Option<String>,
        idem: Option<(String, String)>,
        propose_username: bool,
    },
    Update {
        key: String,
        if_match: i64,
        patch: Value,
        secret: Option<String>,
    },
    Delete {
        key: String,
        if_match: i64,
        purge: bool,
    },
}

/// What can go wrong inside the transaction: a rejected operation (nothing written) or
/// a database failure (the whole transaction is abandoned).
enum Fail {
    Rejected(Problem),
    Db(sqlx::Error),
}

impl From<sqlx::Error> for Fail {
    fn from(e: sqlx::Error) -> Fail {
        Fail::Db(e)
    }
}
impl From<Problem> for Fail {
    fn from(p: Problem) -> Fail {
        Fail::Rejected(p)
    }
}

/// Hashes a password with Argon2id (the crate's default parameters) off the runtime.
pub async fn hash_password(value: String) -> Result<String, Problem> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        argon2::Argon2::default()
            .hash_password(value.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| Problem::internal(format!("cannot hash the password: {e}")))
    })
    .await
    .map_err(|e| Problem::internal(format!("password hashing failed: {e}")))?
}

/// Canonical JSON (object keys sorted) for idempotency fingerprints.
pub fn canonical(v: &Value) -> String {
    fn walk(v: &Value, out: &mut String) {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                out.push('{');
                for (i, k) in keys.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String((*k).clone()).to_string());
                    out.push(':');
                    walk(&m[*k], out);
                }
                out.push('}');
            }
            Value::Array(a) => {
                out.push('[');
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    walk(x, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut s = String::new();
    walk(v, &mut s);
    s
}

/// How long an `Idempotency-Key` is remembered: a retry within this time gets the first
/// answer; after it the key may be used again.
pub const IDEMPOTENCY_TTL: time::Duration = time::Duration::hours(24);

/// The oldest `created_at` of an idempotency record still in force at `now`.
pub fn idempotency_cutoff(now: time::OffsetDateTime) -> String {
    store::rfc3339(now - IDEMPOTENCY_TTL)
}

/// Adds `version` to a public body.
pub fn with_version(mut body: Value, version: i64) -> Value {
    if let Value::Object(m) = &mut body {
        m.insert("version".into(), Value::from(version));
    }
    body
}

fn audit_json(body: &Value, version: i64) -> String {
    with_version(body.clone(), version).to_string()
}

/// Per-transaction caches (the transaction is the only writer, so they stay true).
#[derive(Default)]
struct Ctx {
    exists: HashMap<(Kind, String), bool>,
    active: Option<i64>,
    seats: Option<i64>,
    /// User names (lower case) → the representative holding one, `None` when free.
    usernames: HashMap<String, Option<String>>,
    /// This actor's idempotency records read ahead for a batch's creates: key → (request
    /// hash, status, body), `None` when there is none.
    idempotency: HashMap<String, Option<(String, i64, String)>>,
    now: String,
}

impl Ctx {
    async fn exists(&mut self, tx: &mut Tx, kind: Kind, key: &str) -> Result<bool, sqlx::Error> {
        if let Some(b) = self.exists.get(&(kind, key.to_string())) {
            return Ok(*b);
        }
        let b = tx.exists(kind, key).await?;
        self.exists.insert((kind, key.to_string()), b);
        Ok(b)
    }
    fn set(&mut self, kind: Kind, key: &str, b: bool) {
        self.exists.insert((kind, key.to_string()), b);
    }
    /// Reads whether each of these keys exists, for those not known yet: a batch's
    /// creates in a few queries instead of one each (a round trip each on PostgreSQL).
    async fn load_exists(
        &mut self,
        tx: &mut Tx,
        kind: Kind,
        keys: &[&str],
    ) -> Result<(), sqlx::Error> {
        let wanted: Vec<&str> = keys
            .iter()
            .copied()
            .filter(|k| !self.exists.contains_key(&(kind, (*k).to_string())))
            .collect();
        for chunk in wanted.chunks(500) {
            for key in tx.existing_keys(kind, chunk).await? {
                self.exists.insert((kind, key), true);
            }
            for key in chunk {
                self.exists
                    .entry((kind, (*key).to_string()))
                    .or_insert(false);
            }
        }
        Ok(())
    }
    /// Reads this actor's live idempotency records for these keys, likewise.
    async fn load_idempotency(
        &mut self,
        tx: &mut Tx,
        actor: &str,
        keys: &[&str],
    ) -> Result<(), sqlx::Error> {
        let cutoff = idempotency_cutoff(time::OffsetDateTime::now_utc());
        for chunk in keys.chunks(500) {
            for (key, hash, status, body) in tx.idempotency_many(actor, chunk, &cutoff).await? {
                self.idempotency.insert(key, Some((hash, status, body)));
            }
            for key in chunk {
                self.idempotency.entry((*key).to_string()).or_insert(None);
            }
        }
        Ok(())
    }
    async fn idempotency_record(
        &mut self,
        tx: &mut Tx,
        actor: &str,
        key: &str,
    ) -> Result<Option<(String, i64, String)>, sqlx::Error> {
        if let Some(known) = self.idempotency.get(key) {
            return Ok(known.clone());
        }
        let cutoff = idempotency_cutoff(time::OffsetDateTime::now_utc());
        tx.idempotency(actor, key, &cutoff).await
    }
    /// Reads who holds each of these user names (lower case) not known yet: a batch's
    /// names in a few queries instead of one per representative.
    async fn load_usernames(&mut self, tx: &mut Tx, names: &[String]) -> Result<(), sqlx::Error> {
        let mut wanted: Vec<&str> = names
            .iter()
            .map(String::as_str)
            .filter(|n| !self.usernames.contains_key(*n))
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        // Well below SQLite's and PostgreSQL's limits on bound parameters.
        for chunk in wanted.chunks(500) {
            let held = tx.username_holders(chunk).await?;
            for name in chunk {
                self.usernames.insert((*name).to_string(), None);
            }
            for (name, key) in held {
                self.usernames.insert(name, Some(key));
            }
        }
        Ok(())
    }
    async fn username_holder(
        &mut self,
        tx: &mut Tx,
        name: &str,
    ) -> Result<Option<String>, sqlx::Error> {
        if !self.usernames.contains_key(name) {
            self.load_usernames(tx, &[name.to_string()]).await?;
        }
        Ok(self.usernames.get(name).cloned().flatten())
    }
    /// After a write: `before`'s name is read again when next asked (another holder may
    /// remain), `after`'s is held by `key`.
    fn moved_username(&mut self, before: Option<&Obj>, after: Option<(&Obj, &str)>) {
        if let Some(name) = before.and_then(Obj::username_col) {
            self.usernames.remove(&name);
        }
        if let Some((obj, key)) = after {
            if let Some(name) = obj.username_col() {
                self.usernames.insert(name, Some(key.to_string()));
            }
        }
    }
    async fn active(&mut self, tx: &mut Tx) -> Result<(i64, i64), sqlx::Error> {
        if self.active.is_none() {
            self.active = Some(tx.count_operators().await?);
            self.seats = Some(tx.account().await?.map(|a| a.1).unwrap_or(0));
        }
        Ok((self.active.unwrap_or(0), self.seats.unwrap_or(0)))
    }
}

/// The stand-in a dry run stores for a password it was told would be set: never a
/// value, never hashed, rolled back with everything else.
const DRY_RUN_SECRET: &str = "dry-run: no password value";

/// Hashes a password value, or in a dry run stands in for the hash (the check needs to
/// know that a password is set, for `edit_rep_password`, not its value).
async fn secret_of(value: String, dry: bool) -> Result<String, Problem> {
    if dry {
        Ok(DRY_RUN_SECRET.to_string())
    } else {
        hash_password(value).await
    }
}

async fn prepare(
    kind: Kind,
    actor: &Actor,
    op: Op,
    policy: &PasswordPolicy,
) -> Result<Prepared, Problem> {
    prepare_with(kind, actor, op, Some(policy)).await
}

/// The account's password policy on a password about to be stored for `login`: 422
/// `password-policy` naming every rule it breaks, never the value.
pub fn check_password(policy: &PasswordPolicy, value: &str, login: &str) -> Result<(), Problem> {
    let breaks = policy.check(value, login);
    if breaks.is_empty() {
        return Ok(());
    }
    Err(Problem::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "password-policy",
        format!(
            "the password breaks the account's password policy: {}",
            crate::model::password::describe(&breaks)
        ),
    )
    .with_pointer("/password/value"))
}

/// The login a password of this body belongs to (the body's, else the key's).
fn login_of<'a>(body: &'a Value, key: &'a str) -> &'a str {
    body.get("login").and_then(Value::as_str).unwrap_or(key)
}

/// `policy` is the account's password policy, checked on every password value; `None`
/// in a dry run, which is told only that a password would be set, never its value.
async fn prepare_with(
    kind: Kind,
    actor: &Actor,
    op: Op,
    policy: Option<&PasswordPolicy>,
) -> Result<Prepared, Problem> {
    let dry = policy.is_none();
    match op {
        Op::Create {
            body,
            idempotency_key,
        } => {
            let idem = idempotency_key.map(|k| {
                let fp = hex::encode(Sha256::digest(canonical(&body).as_bytes()));
                (format!("{}:{}:{k}", kind.collection(), actor.login()), fp)
            });
            // A representative sent without `username` gets the console's proposal; an
            // explicit `null` means none for now (roster writes it in a later update).
            let propose_username = kind == Kind::Representative
                && body
                    .as_object()
                    .is_some_and(|b| !b.contains_key("username"));
            let (obj, secret) = Obj::parse(kind, body)?;
            let v = obj.check();
            if !v.is_empty() {
                return Err(Problem::validation(v));
            }
            if obj.has_password() && secret.is_none() {
                return Err(Problem::invalid_field(
                    RuleCode::Secret,
                    "/password/value",
                    "a new password needs `value`",
                ));
            }
            let secret = match secret {
                Some(s) => {
                    if let Some(policy) = policy {
                        check_password(policy, &s.0, obj.key())?;
                    }
                    Some(secret_of(s.0, dry).await?)
                }
                None => None,
            };
            Ok(Prepared::Create {
                obj: Box::new(obj),
                secret,
                idem,
                propose_username,
            })
        }
        Op::Update {
            key,
            if_match,
            patch,
        } => {
            let if_match = required_version(if_match, "updating", kind, &key)?;
            if !patch.is_object() {
                return Err(Problem::invalid_field(
                    RuleCode::Schema,
                    "",
                    "a patch must be a json object (a merge patch)",
                ));
            }
            let value = patch
                .get("password")
                .and_then(|p| p.get("value"))
                .and_then(Value::as_str)
                .map(str::to_string);
            let secret = match value {
                Some(v) if !v.is_empty() => {
                    if let Some(policy) = policy {
                        check_password(policy, &v, &login_of(&patch, &key).to_lowercase())?;
                    }
                    Some(secret_of(v, dry).await?)
                }
                _ => None,
            };
            Ok(Prepared::Update {
                key,
                if_match,
                patch,
                secret,
            })
        }
        Op::Delete {
            key,
            if_match,
            purge_statistics,
        } => {
            let if_match = required_version(if_match, "deleting", kind, &key)?;
            Ok(Prepared::Delete {
                key,
                if_match,
                purge: purge_statistics,
            })
        }
    }
}

/// The version an update or a delete must name (`If-Match`); 428 without it.
fn required_version(
    if_match: Option<i64>,
    doing: &str,
    kind: Kind,
    key: &str,
) -> Result<i64, Problem> {
    if_match.ok_or_else(|| {
        Problem::precondition_required(format!(
            "{doing} {kind} `{key}` needs `If-Match: \"<version>\"`; read the object first"
        ))
    })
}

/// Runs operations of one kind; one result per operation, in order. `lease` is the
/// request's `Roster-Lease`: when given, the whole request is refused (409
/// `lease-not-held`) unless it is the current apply lease (`server::lease`).
pub async fn run(
    db: &Db,
    actor: &Actor,
    kind: Kind,
    ops: Vec<Op>,
    lease: Option<&str>,
) -> Result<Vec<Result<Done, Problem>>, Problem> {
    let mut prepared = Vec::with_capacity(ops.len());
    // Password hashing is CPU- and memory-heavy (Argon2id): a few at a time, in order.
    let width = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(8);
    // Read once for the request; the account's `PATCH` that changes it is its own write.
    let policy = db.password_policy().await?;
    let mut stream =
        futures::stream::iter(ops.into_iter().map(|op| prepare(kind, actor, op, &policy)))
            .buffered(width);
    while let Some(p) = stream.next().await {
        prepared.push(p);
    }
    drop(stream);
    let mut tx = db.begin().await?;
    // A write made under an apply lease (`Roster-Lease`) needs that lease to be the
    // current one, checked in this transaction: it is serialized against the take.
    if let Some(id) = lease {
        super::lease::check(&mut tx, id).await?;
    }
    let mut ctx = Ctx {
        now: store::now_rfc3339(),
        ..Default::default()
    };
    let creates: Vec<&Obj> = prepared
        .iter()
        .filter_map(|p| match p {
            Ok(Prepared::Create { obj, .. }) => Some(&**obj),
            _ => None,
        })
        .collect();
    if creates.len() > 1 {
        let keys: Vec<&str> = creates.iter().map(|o| o.key()).collect();
        ctx.load_exists(&mut tx, kind, &keys).await?;
        // Rule 2's login collisions ask, per create, whether another kind holds the
        // login: read ahead too, or each create would be a query of its own (and send
        // the rows written before it, see `store::Tx`).
        for other in login_rivals(kind) {
            ctx.load_exists(&mut tx, *other, &keys).await?;
        }
        let idem: Vec<&str> = prepared
            .iter()
            .filter_map(|p| match p {
                Ok(Prepared::Create {
                    idem: Some((k, _)), ..
                }) => Some(k.as_str()),
                _ => None,
            })
            .collect();
        ctx.load_idempotency(&mut tx, actor.login(), &idem).await?;
    }
    if kind == Kind::Representative {
        let names: Vec<String> = prepared
            .iter()
            .filter_map(|p| match p {
                Ok(Prepared::Create { obj, .. }) => obj.username_col(),
                Ok(Prepared::Update { patch, .. }) => {
                    patch.get("username")?.as_str().map(str::to_lowercase)
                }
                _ => None,
            })
            .collect();
        ctx.load_usernames(&mut tx, &names).await?;
    }
    let mut results = Vec::with_capacity(prepared.len());
    for p in prepared {
        let r = match p {
            Err(problem) => Err(problem),
            Ok(p) => match exec(&mut tx, &mut ctx, actor, kind, p).await {
                Ok(d) => Ok(d),
                Err(Fail::Rejected(problem)) => Err(problem),
                Err(Fail::Db(e)) => return Err(e.into()),
            },
        };
        results.push(r);
    }
    if actor.manager().is_some() && matches!(kind, Kind::Campaign | Kind::ContactGroup) {
        // A manager is answered with what it may see of what it wrote.
        let mut sight = Sight::default();
        for d in results.iter_mut().flatten() {
            let Some(body) = d.body.take() else { continue };
            let version = body.get("version").and_then(Value::as_i64).unwrap_or(0);
            let (obj, _) = Obj::parse(kind, body)?;
            let mut src = Src::Tx(&mut tx);
            let shown = match obj {
                Obj::Campaign(c) => Obj::Campaign(sight.campaign(actor, &mut src, &c).await?),
                Obj::ContactGroup(g) => Obj::ContactGroup(sight.group(actor, &mut src, &g).await?),
                other => other,
            };
            d.body = Some(with_version(shown.to_body(), version));
        }
    }
    tx.commit().await?;
    Ok(results)
}

/// One operation of a dry run ([`check`]): its kind, the write, and whether it would set
/// a password (the body carries no value: one is stood in for, so that the right to set
/// passwords is checked).
#[derive(Debug, Clone)]
pub struct CheckOp {
    pub kind: Kind,
    pub op: Op,
    pub set_password: bool,
}

/// The kinds whose logins a create of `kind` is checked against (rule 2, see
/// [`cross_checks_renaming`]).
fn login_rivals(kind: Kind) -> &'static [Kind] {
    match kind {
        Kind::Representative => &[Kind::Manager, Kind::Administrator],
        Kind::Manager => &[Kind::Administrator],
        Kind::Administrator => &[Kind::Manager],
        _ => &[],
    }
}

/// The key an object has after `op` (a create's key field, a patch's new key, else the
/// key it names): where a later operation of the same check finds the version it left.
fn key_after(kind: Kind, op: &Op) -> Option<String> {
    let from_body = |b: &Value| {
        b.get(kind.key_field())
            .and_then(Value::as_str)
            .map(|k| super::domain::normalize_key(kind, k))
    };
    match op {
        Op::Create { body, .. } => from_body(body),
        Op::Update { key, patch, .. } => from_body(patch).or_else(|| Some(key.clone())),
        Op::Delete { key, .. } => Some(key.clone()),
    }
}

/// The dry run behind `POST /v1/plan:check`: runs operations of any kinds, in order,
/// through the same write path as [`run`] (every check, rule 6 included, against the
/// state the earlier operations left) in ONE transaction that is always rolled back:
/// nothing is stored, audited or remembered for idempotency. An update or delete of an
/// object an earlier operation of the check wrote is checked against the version that
/// write left (as a client that sends each write's answered version does), so
/// `if_match` may then be left out. One result per operation, in order.
pub async fn check(
    db: &Db,
    actor: &Actor,
    ops: Vec<CheckOp>,
) -> Result<Vec<Result<Done, Problem>>, Problem> {
    let mut tx = db.begin().await?;
    let mut ctx = Ctx {
        now: store::now_rfc3339(),
        ..Default::default()
    };
    // Read ahead, per kind, what the creates and the user names need (a few queries
    // instead of one per operation).
    for kind in Kind::ALL {
        let keys: Vec<String> = ops
            .iter()
            .filter(|o| o.kind == kind && matches!(o.op, Op::Create { .. }))
            .filter_map(|o| key_after(kind, &o.op))
            .collect();
        if keys.len() > 1 {
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            ctx.load_exists(&mut tx, kind, &keys).await?;
        }
    }
    let names: Vec<String> = ops
        .iter()
        .filter(|o| o.kind == Kind::Representative)
        .filter_map(|o| match &o.op {
            Op::Create { body, .. } | Op::Update { patch: body, .. } => {
                body.get("username")?.as_str().map(str::to_lowercase)
            }
            Op::Delete { .. } => None,
        })
        .collect();
    ctx.load_usernames(&mut tx, &names).await?;
    let mut written: HashMap<(Kind, String), i64> = HashMap::new();
    let mut results = Vec::with_capacity(ops.len());
    for CheckOp {
        kind,
        mut op,
        set_password,
    } in ops
    {
        if let Op::Update { key, if_match, .. } | Op::Delete { key, if_match, .. } = &mut op
            && let Some(v) = written.get(&(kind, key.clone()))
        {
            *if_match = Some(*v);
        }
        if set_password {
            stand_in_password(&mut op);
        }
        let after = key_after(kind, &op);
        let deleting = matches!(op, Op::Delete { .. });
        let r = match prepare_with(kind, actor, op, None).await {
            Err(problem) => Err(problem),
            Ok(p) => match exec(&mut tx, &mut ctx, actor, kind, p).await {
                Ok(d) => Ok(d),
                Err(Fail::Rejected(problem)) => Err(problem),
                Err(Fail::Db(e)) => return Err(e.into()),
            },
        };
        if let (Ok(d), Some(after)) = (&r, after) {
            match d.version() {
                Some(v) if !deleting => written.insert((kind, after), v),
                _ => written.remove(&(kind, after)),
            };
        }
        results.push(r);
    }
    tx.rollback().await?;
    Ok(results)
}

/// Puts a stand-in `password.value` into a create body or a patch (a dry run is told
/// only that a password would be set).
fn stand_in_password(op: &mut Op) {
    let body = match op {
        Op::Create { body, .. } | Op::Update { patch: body, .. } => body,
        Op::Delete { .. } => return,
    };
    let Some(obj) = body.as_object_mut() else {
        return;
    };
    let pw = obj
        .entry("password")
        .or_insert_with(|| Value::Object(Default::default()));
    if !pw.is_object() {
        *pw = Value::Object(Default::default());
    }
    if let Some(pw) = pw.as_object_mut() {
        pw.insert("value".into(), Value::String(DRY_RUN_SECRET.into()));
    }
}

async fn exec(
    tx: &mut Tx,
    ctx: &mut Ctx,
    actor: &Actor,
    kind: Kind,
    p: Prepared,
) -> Result<Done, Fail> {
    match p {
        Prepared::Create {
            obj,
            secret,
            idem,
            propose_username,
        } => create(tx, ctx, actor, *obj, secret, idem, propose_username).await,
        Prepared::Update {
            key,
            if_match,
            patch,
            secret,
        } => {
            update(
                tx,
                ctx,
                actor,
                Target::new(kind, &key, if_match),
                patch,
                secret,
            )
            .await
        }
        Prepared::Delete {
            key,
            if_match,
            purge,
        } => delete(tx, ctx, actor, Target::new(kind, &key, if_match), purge).await,
    }
}

async fn create(
    tx: &mut Tx,
    ctx: &mut Ctx,
    actor: &Actor,
    mut obj: Obj,
    secret: Option<String>,
    idem: Option<(String, String)>,
    propose_username: bool,
) -> Result<Done, Fail> {
    let kind = obj.kind();
    if let Some((k, fp)) = &idem {
        if let Some((hash, status, body)) = ctx.idempotency_record(tx, actor.login(), k).await? {
            if &hash == fp {
                return Ok(Done {
                    status: StatusCode::from_u16(status as u16).unwrap_or(StatusCode::CREATED),
                    body: serde_json::from_str(&body).ok(),
                });
            }
            return Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "this idempotency key was used with another body; use a new key for a new request",
            )
            .into());
        }
    }
    let key = obj.key().to_string();
    if ctx.exists(tx, kind, &key).await? {
        return Err(Problem::already_exists(format!(
            "{kind} `{key}` already exists; PATCH it instead, or choose another {}",
            kind.key_field()
        ))
        .with_pointer(format!("/{}", kind.key_field()))
        .into());
    }
    authorize_write(actor, tx, kind, None, Some(&obj), secret.is_some()).await?;
    if let Obj::Representative(r) = &mut obj
        && propose_username
    {
        r.username = Some(default_free_username(tx, r).await?);
    }
    let refs = cross_checks(tx, ctx, actor, &obj, None).await?;
    let body = obj.to_body();
    let text = body.to_string();
    tx.insert(kind, &key, &text, &obj.columns(secret.as_deref()))
        .await?;
    tx.set_refs(kind, &key, &refs, false).await?;
    ctx.set(kind, &key, true);
    ctx.moved_username(None, Some((&obj, &key)));
    if obj.takes_seat() {
        ctx.active = ctx.active.map(|n| n + 1);
    }
    let full = with_version(body, 1);
    let full_text = full.to_string();
    tx.audit(
        &ctx.now,
        actor.login(),
        actor.token_id(),
        "create",
        kind.name(),
        &key,
        None,
        Some(&full_text),
    )
    .await?;
    if let Some((k, fp)) = &idem {
        tx.put_idempotency(actor.login(), k, fp, 201, &full_text, &ctx.now)
            .await?;
        ctx.idempotency
            .insert(k.clone(), Some((fp.clone(), 201, full_text.clone())));
    }
    Ok(Done {
        status: StatusCode::CREATED,
        body: Some(full),
    })
}

fn stale(kind: Kind, key: &str, have: i64, want: i64) -> Problem {
    Problem::precondition_failed(format!(
        "{kind} `{key}` is at version {have}, not {want}; read it again and retry"
    ))
}

/// What an update or a delete is aimed at: an object and the version it was read at.
#[derive(Debug, Clone, Copy)]
struct Target<'k> {
    kind: Kind,
    key: &'k str,
    if_match: i64,
}

impl<'k> Target<'k> {
    fn new(kind: Kind, key: &'k str, if_match: i64) -> Self {
        Target {
            kind,
            key,
            if_match,
        }
    }
}

/// The opening of an update or a delete: the stored row of the target and the object it
/// holds; 404 when there is none, 412 when it is not at version `if_match`.
async fn current(tx: &mut Tx, target: Target<'_>) -> Result<(StoredObject, Obj), Fail> {
    let Target {
        kind,
        key,
        if_match,
    } = target;
    let Some(row) = tx.get(kind, key).await? else {
        return Err(Problem::not_found(format!("no {kind} `{key}`")).into());
    };
    if row.version != if_match {
        return Err(stale(kind, key, row.version, if_match).into());
    }
    let before = Obj::from_stored(kind, &row.body)?;
    Ok((row, before))
}

async fn update(
    tx: &mut Tx,
    ctx: &mut Ctx,
    actor: &Actor,
    target: Target<'_>,
    patch: Value,
    secret: Option<String>,
) -> Result<Done, Fail> {
    let (row, before) = current(tx, target).await?;
    let (kind, key, if_match) = (target.kind, target.key, target.if_match);
    let mut merged: Value =
        serde_json::from_str(&row.body).map_err(|e| Problem::internal(e.to_string()))?;
    merge_patch(&mut merged, &patch);
    let (after, _) = Obj::parse(kind, merged)?;
    let after = keep_hidden(actor, tx, &before, after).await?;
    let v = after.check();
    if !v.is_empty() {
        return Err(Problem::validation(v).into());
    }
    let new_secret = if !after.has_password() {
        None
    } else if secret.is_some() {
        secret.clone()
    } else if row.secret.is_some() {
        row.secret.clone()
    } else {
        return Err(Problem::invalid_field(
            RuleCode::Secret,
            "/password/value",
            "a new password needs `value`",
        )
        .into());
    };
    authorize_write(
        actor,
        tx,
        kind,
        Some(&before),
        Some(&after),
        secret.is_some(),
    )
    .await?;
    // A patch that changes nothing writes nothing: the version stays, nothing is audited,
    // so a client re-sending what is already there cannot make others' plans stale.
    let body = after.to_body();
    let before_body = before.to_body();
    if secret.is_none() && body == before_body {
        return Ok(Done {
            status: StatusCode::OK,
            body: Some(with_version(body, row.version)),
        });
    }
    let new_key = after.key().to_string();
    let renamed = new_key != key;
    if renamed && ctx.exists(tx, kind, &new_key).await? {
        return Err(Problem::already_exists(format!(
            "cannot rename {kind} `{key}` to `{new_key}`: `{new_key}` exists"
        ))
        .with_pointer(format!("/{}", kind.key_field()))
        .into());
    }
    if kind == Kind::Team && renamed && is_within(&new_key, key) {
        return Err(Problem::invalid_field(
            RuleCode::UnresolvedReference,
            "/path",
            format!("cannot move team `{key}` under itself (`{new_key}`)"),
        )
        .into());
    }
    if renamed && matches!(kind, Kind::Representative | Kind::Manager) {
        // Checked before anything is written: a rejected operation writes nothing.
        for r in tx.referrers(kind, key).await? {
            let Some(rkind) = Kind::from_name(&r.kind) else {
                continue;
            };
            let Some(rrow) = tx.get(rkind, &r.key).await? else {
                continue;
            };
            if let Some(why) =
                Obj::from_stored(rkind, &rrow.body)?.rename_blocker(kind, key, &new_key)
            {
                return Err(Problem::conflict(format!(
                    "cannot rename {kind} `{key}` to `{new_key}`: {why}; give both entries the same permission or remove one first"
                ))
                .with_pointer(format!("/{}", kind.key_field()))
                .into());
            }
        }
    }
    let rename = if renamed && kind == Kind::Team {
        Some((key, new_key.as_str()))
    } else {
        None
    };
    let refs = cross_checks_renaming(tx, ctx, actor, &after, Some(&before), rename).await?;
    // A representative leading a team must stay in it (or a sub-team).
    if let (Obj::Representative(b), Obj::Representative(a)) = (&before, &after) {
        if b.team != a.team {
            for r in tx.referrers(Kind::Representative, key).await? {
                if r.rel == "leader" && !a.team.as_deref().is_some_and(|t| is_within(t, &r.key)) {
                    return Err(Problem::conflict(format!(
                        "representative `{key}` leads team `{}` and cannot leave it; change the team's leader first",
                        r.key
                    ))
                    .with_pointer("/team")
                    .into());
                }
            }
        }
    }
    let text = body.to_string();
    if !tx
        .update_cas(
            kind,
            key,
            if_match,
            &new_key,
            &text,
            &after.columns(new_secret.as_deref()),
        )
        .await?
    {
        return Err(stale(kind, key, row.version + 1, if_match).into());
    }
    tx.set_refs(kind, &new_key, &refs, true).await?;
    ctx.moved_username(Some(&before), Some((&after, &new_key)));
    match (before.takes_seat(), after.takes_seat()) {
        (false, true) => ctx.active = ctx.active.map(|n| n + 1),
        (true, false) => ctx.active = ctx.active.map(|n| n - 1),
        _ => {}
    }
    let version = row.version + 1;
    tx.audit(
        &ctx.now,
        actor.login(),
        actor.token_id(),
        "update",
        kind.name(),
        &new_key,
        Some(&audit_json(&before_body, row.version)),
        Some(&audit_json(&body, version)),
    )
    .await?;
    if renamed {
        ctx.set(kind, key, false);
        ctx.set(kind, &new_key, true);
        cascade_rename(tx, ctx, actor, kind, key, &new_key).await?;
    }
    Ok(Done {
        status: StatusCode::OK,
        body: Some(with_version(body, version)),
    })
}

/// Follows a rename: referrers are rewritten (one more version each, audited); a
/// team's sub-teams move along with it; tokens follow a renamed manager/administrator.
async fn cascade_rename(
    tx: &mut Tx,
    ctx: &mut Ctx,
    actor: &Actor,
    kind: Kind,
    old: &str,
    new: &str,
) -> Result<(), Fail> {
    rewrite_referrers(tx, ctx, actor, kind, old, new).await?;
    match kind {
        Kind::Manager => tx.retarget_tokens("manager", old, Some(new)).await?,
        Kind::Administrator => tx.retarget_tokens("administrator", old, Some(new)).await?,
        Kind::Team => {
            let prefix = format!("{old}/");
            let subs: Vec<String> = tx
                .team_keys()
                .await?
                .into_iter()
                .filter(|k| k.starts_with(&prefix))
                .collect();
            for sub in subs {
                let moved = format!("{new}/{}", &sub[prefix.len()..]);
                let Some(row) = tx.get(Kind::Team, &sub).await? else {
                    continue;
                };
                let mut obj = Obj::from_stored(Kind::Team, &row.body)?;
                let before_text = audit_json(&obj.to_body(), row.version);
                obj.set_key(&moved);
                let body = obj.to_body();
                tx.update_cas(
                    Kind::Team,
                    &sub,
                    row.version,
                    &moved,
                    &body.to_string(),
                    &obj.columns(None),
                )
                .await?;
                // The sub-team's own `parent` reference follows its new path.
                if let Some(parent) = moved.rsplit_once('/').map(|(p, _)| p.to_string()) {
                    tx.execute(
                        "UPDATE refs SET ref_key = $1 WHERE kind = $2 AND key = $3 AND rel = $4",
                        &[
                            super::store::Arg::Text(&parent),
                            super::store::Arg::Text(Kind::Team.name()),
                            super::store::Arg::Text(&moved),
                            super::store::Arg::Text("parent"),
                        ],
                    )
                    .await?;
                }
                tx.audit(
                    &ctx.now,
                    actor.login(),
                    actor.token_id(),
                    "update",
                    "team",
                    &moved,
                    Some(&before_text),
                    Some(&audit_json(&body, row.version + 1)),
                )
                .await?;
                ctx.set(Kind::Team, &sub, false);
                ctx.set(Kind::Team, &moved, true);
                rewrite_referrers(tx, ctx, actor, Kind::Team, &sub, &moved).await?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Rewrites every object referring to (kind, old) to refer to `new`: one more version
/// and an audit record each, and its recorded references recomputed from its new body.
///
/// A contact group's `shared_with` entry names a login, shared by every representative
/// and manager holding it; renaming one of them moves the entry to the new login (the
/// entry follows the renamed account), so an account of the other kind still holding the
/// old login is no longer shared with. When both are renamed, the entry follows the
/// first rename (the second finds no entry for its old login). The result depends only
/// on the requests and their order, never on the order referrers are visited; `update`
/// refuses a rename that would merge two entries of different permissions before
/// anything is written.
async fn rewrite_referrers(
    tx: &mut Tx,
    ctx: &mut Ctx,
    actor: &Actor,
    kind: Kind,
    old: &str,
    new: &str,
) -> Result<(), Fail> {
    for r in tx.referrers(kind, old).await? {
        let Some(rkind) = Kind::from_name(&r.kind) else {
            continue;
        };
        if rkind == Kind::Team && r.rel == "parent" {
            continue; // sub-teams move with their parent (cascade_rename)
        }
        let Some(row) = tx.get(rkind, &r.key).await? else {
            continue;
        };
        let mut obj = Obj::from_stored(rkind, &row.body)?;
        let before_text = audit_json(&obj.to_body(), row.version);
        if !obj.rewrite_ref(kind, old, new) {
            continue;
        }
        let body = obj.to_body();
        tx.update_cas(
            rkind,
            &r.key,
            row.version,
            &r.key,
            &body.to_string(),
            &obj.columns(row.secret.as_deref()),
        )
        .await?;
        // Re-resolve all of the referrer's references from its rewritten body instead
        // of re-pointing only the renamed one: a contact group's `shared_with` key
        // names a login, and that login may have named a representative AND a manager.
        // The key now names the new login, so the group refers to whatever holds the
        // new login, and no longer to the other holder of the old one.
        let (refs, _) = resolve_refs(tx, ctx, &obj).await?;
        tx.set_refs(rkind, &r.key, &refs, true).await?;
        tx.audit(
            &ctx.now,
            actor.login(),
            actor.token_id(),
            "update",
            rkind.name(),
            &r.key,
            Some(&before_text),
            Some(&audit_json(&body, row.version + 1)),
        )
        .await?;
    }
    tx.rename_refs_to(kind, old, new).await?;
    Ok(())
}

async fn delete(
    tx: &mut Tx,
    ctx: &mut Ctx,
    actor: &Actor,
    target: Target<'_>,
    purge: bool,
) -> Result<Done, Fail> {
    let (row, before) = current(tx, target).await?;
    let (kind, key, if_match) = (target.kind, target.key, target.if_match);
    authorize_write(actor, tx, kind, Some(&before), None, false).await?;
    if kind == Kind::Representative && !purge {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "statistics-would-be-lost",
            format!(
                "deleting representative `{key}` loses its statistics irreversibly; deactivate it (PATCH status: inactive) or delete with ?purge_statistics=true"
            ),
        )
        .into());
    }
    let referrers = tx.referrers(kind, key).await?;
    if kind == Kind::Team {
        let inside: Vec<String> = referrers
            .iter()
            .filter(|r| {
                (r.kind == "team" && r.rel == "parent")
                    || (r.kind == "representative" && r.rel == "team")
            })
            .map(|r| format!("{} `{}`", r.kind, r.key))
            .collect();
        if !inside.is_empty() {
            return Err(Problem::new(
                StatusCode::CONFLICT,
                "team-not-empty",
                format!(
                    "team `{key}` still holds {}; move or remove them first",
                    summarize(&inside)
                ),
            )
            .into());
        }
    }
    if kind == Kind::Administrator {
        let (n,): (i64,) = tx
            .fetch_optional(
                "SELECT COUNT(*) FROM objects WHERE kind = $1",
                &[super::store::Arg::Text(Kind::Administrator.name())],
            )
            .await?
            .unwrap_or((0,));
        if n <= 1 {
            return Err(Problem::conflict(format!(
                "`{key}` is the last administrator; create another one first"
            ))
            .into());
        }
    }
    if !referrers.is_empty() {
        // A manager is told of the referrers it may see; the others are counted.
        let mut names: Vec<String> = Vec::new();
        let mut unseen = 0usize;
        let mut sight = Sight::default();
        for r in &referrers {
            if referrer_seen(tx, &mut sight, actor, r).await? {
                names.push(format!("{} `{}` ({})", r.kind, r.key, r.rel));
            } else {
                unseen += 1;
            }
        }
        if unseen > 0 {
            names.push(format!(
                "{unseen} object{} outside this token's teams",
                if unseen == 1 { "" } else { "s" }
            ));
        }
        return Err(Problem::conflict(format!(
            "{kind} `{key}` is referred to by {}; remove those references first",
            summarize(&names)
        ))
        .into());
    }
    if !tx.delete_cas(kind, key, if_match).await? {
        return Err(stale(kind, key, row.version + 1, if_match).into());
    }
    ctx.set(kind, key, false);
    ctx.moved_username(Some(&before), None);
    if before.takes_seat() {
        ctx.active = ctx.active.map(|n| n - 1);
    }
    match kind {
        Kind::Manager => tx.retarget_tokens("manager", key, None).await?,
        Kind::Administrator => tx.retarget_tokens("administrator", key, None).await?,
        _ => {}
    }
    tx.audit(
        &ctx.now,
        actor.login(),
        actor.token_id(),
        "delete",
        kind.name(),
        key,
        Some(&audit_json(&before.to_body(), row.version)),
        None,
    )
    .await?;
    Ok(Done {
        status: StatusCode::NO_CONTENT,
        body: None,
    })
}

/// Whether `actor` may see the object behind a referrer (named in a `conflict`).
async fn referrer_seen(
    tx: &mut Tx,
    sight: &mut Sight,
    actor: &Actor,
    r: &store::RefRow,
) -> Result<bool, Fail> {
    if actor.manager().is_none() {
        return Ok(true);
    }
    let Some(kind) = Kind::from_name(&r.kind) else {
        return Ok(false);
    };
    let Some(row) = tx.get(kind, &r.key).await? else {
        return Ok(false);
    };
    let obj = Obj::from_stored(kind, &row.body)?;
    Ok(sight.view(actor, &mut Src::Tx(tx), obj).await?.is_some())
}

fn summarize(items: &[String]) -> String {
    const SHOW: usize = 10;
    if items.len() <= SHOW {
        items.join(", ")
    } else {
        format!(
            "{} and {} more",
            items[..SHOW].join(", "),
            items.len() - SHOW
        )
    }
}

async fn cross_checks(
    tx: &mut Tx,
    ctx: &mut Ctx,
    actor: &Actor,
    after: &Obj,
    before: Option<&Obj>,
) -> Result<Vec<(&'static str, Kind, String)>, Fail> {
    cross_checks_renaming(tx, ctx, actor, after, before, None).await
}

/// Rule 3: resolves every reference of `obj` against the store; returns the references
/// to record and a violation for each one that names nothing.
async fn resolve_refs(
    tx: &mut Tx,
    ctx: &mut Ctx,
    obj: &Obj,
) -> Result<(Vec<(&'static str, Kind, String)>, Vec<Violation>), sqlx::Error> {
    let mut violations: Vec<Violation> = vec![];
    let mut refs = vec![];
    for need in obj.refs() {
        let mut found = false;
        for k in need.kinds {
            if ctx.exists(tx, *k, &need.key).await? {
                refs.push((need.rel, *k, need.key.clone()));
                found = true;
            }
        }
        if !found {
            let what = need
                .kinds
                .iter()
                .map(|k| k.name())
                .collect::<Vec<_>>()
                .join(" or ");
            violations.push(Violation::new(
                RuleCode::UnresolvedReference,
                need.pointer.clone(),
                format!("{what} `{}` does not exist", need.key),
                format!("create the {what} first, or fix the name"),
            ));
        }
    }
    Ok((refs, violations))
}

/// Rules 2, 3 and 5 against the store; returns the resolved references to record.
/// `rename` is (old, new) when a team moves: its own subtree moves with it.
async fn cross_checks_renaming(
    tx: &mut Tx,
    ctx: &mut Ctx,
    actor: &Actor,
    after: &Obj,
    before: Option<&Obj>,
    rename: Option<(&str, &str)>,
) -> Result<Vec<(&'static str, Kind, String)>, Fail> {
    let (refs, mut violations) = resolve_refs(tx, ctx, after).await?;
    let key = after.key().to_string();
    check_username(tx, ctx, actor, after, before).await?;
    match after {
        Obj::Team(t) => {
            if let Some(leader) = &t.leader {
                if let Some(row) = tx.get(Kind::Representative, leader).await? {
                    if let Obj::Representative(r) =
                        Obj::from_stored(Kind::Representative, &row.body)?
                    {
                        let team = r.team.map(|rt| match rename {
                            Some((old, new)) if is_within(&rt, old) => {
                                format!("{new}{}", &rt[old.len()..])
                            }
                            _ => rt,
                        });
                        if !team.as_deref().is_some_and(|rt| is_within(rt, &t.path)) {
                            violations.push(Violation::new(RuleCode::LeaderNotMember, "/leader", format!(
                                    "leader `{leader}` is not a representative of team `{}` or of a sub-team (team: {})",
                                    t.path,
                                    team.as_deref().unwrap_or("none")
                                ), "move the representative into the team first, or choose another leader"));
                        }
                    }
                }
            }
        }
        Obj::Manager(_) | Obj::Administrator(_) => {
            if let Some(row) = tx.get(Kind::Representative, &key).await? {
                if let Obj::Representative(r) = Obj::from_stored(Kind::Representative, &row.body)? {
                    if r.login_is_exclusive() {
                        violations.push(Violation::new(RuleCode::LoginCollision, "/login", format!("`{key}` is also the login of a representative with `admin_center_access`"), "use another login, or remove `admin_center_access` from that representative"));
                    }
                }
            }
            let other = if after.kind() == Kind::Manager {
                Kind::Administrator
            } else {
                Kind::Manager
            };
            if ctx.exists(tx, other, &key).await? {
                violations.push(Violation::new(
                    RuleCode::LoginCollision,
                    "/login",
                    format!(
                        "`{key}` is already the login of {} {other}",
                        if other == Kind::Administrator {
                            "an"
                        } else {
                            "a"
                        }
                    ),
                    "administrators and managers need different logins",
                ));
            }
        }
        Obj::Representative(r) if r.login_is_exclusive() => {
            for other in [Kind::Manager, Kind::Administrator] {
                if ctx.exists(tx, other, &key).await? {
                    violations.push(Violation::new(RuleCode::LoginCollision, "/login", format!("`{key}` is also the login of {} {other}, so this representative cannot have `admin_center_access`", if other == Kind::Administrator { "an" } else { "a" }), "use another login, or leave out `admin_center_access`"));
                }
            }
        }
        _ => {}
    }
    if !violations.is_empty() {
        return Err(Problem::validation(violations).into());
    }
    let was_active = before.is_some_and(Obj::takes_seat);
    if after.takes_seat() && !was_active {
        let (active, seats) = ctx.active(tx).await?;
        if active + 1 > seats {
            return Err(Problem::new(
                StatusCode::CONFLICT,
                "seats-exceeded",
                format!(
                    "the account has {seats} licensed seats and {active} operators (active representatives with support management); deactivate one, turn off its `support_management`, or raise the seats"
                ),
            )
            .with_pointer("/status")
            .into());
        }
    }
    Ok(refs)
}

/// A representative created without a user name gets the console's proposal (seed 004):
/// the default name (`crate::model::usernames::default_username`, the one roster's loader
/// uses), or the first of `name2`, `name3`, … that no representative holds — as the
/// store stands inside this transaction, so earlier creates of a batch count.
async fn default_free_username(
    tx: &mut Tx,
    r: &crate::model::Representative,
) -> Result<String, sqlx::Error> {
    let base = crate::model::usernames::default_username(&r.first_name, &r.last_name, &r.login);
    let mut pool = crate::model::usernames::UsernamePool::default();
    for name in tx.usernames_starting_with(&base).await? {
        pool.take(&name);
    }
    Ok(pool.claim(base))
}

/// Rule 2: a representative's user name, when new or changed, is held by no other
/// representative (ignoring case). The holder is named only to a token that may see it.
async fn check_username(
    tx: &mut Tx,
    ctx: &mut Ctx,
    actor: &Actor,
    after: &Obj,
    before: Option<&Obj>,
) -> Result<(), Fail> {
    let Some(name) = after.username_col() else {
        return Ok(());
    };
    if before.and_then(Obj::username_col).as_deref() == Some(name.as_str()) {
        return Ok(());
    }
    let me = before.unwrap_or(after).key();
    let Some(holder) = ctx.username_holder(tx, &name).await? else {
        return Ok(());
    };
    if holder == me {
        return Ok(());
    }
    let who = if login_in_scope(actor, tx, &holder).await? {
        format!("representative `{holder}`")
    } else {
        "a representative outside this token's teams".to_string()
    };
    Err(Problem::new(
        StatusCode::CONFLICT,
        "username-taken",
        format!(
            "user name `{name}` is already held by {who} (user names are unique, ignoring \
             case); choose another `username`, or change that representative's first"
        ),
    )
    .with_pointer("/username")
    .into())
}

/// The person's own password change (`POST /v1/sign-in:change-password`): what a
/// console's sign-in does when someone changes their password, forced or not.
///
/// The account is the representative, manager or administrator holding `login` whose
/// stored Argon2id hash verifies `current`; an inactive account, an unknown login, one
/// without a password and a wrong password are all refused alike (401, one body, and
/// always after one verification, so that the answer's time says nothing either). The
/// new password goes through [`new_password_problem`], is stored hashed, and a
/// representative's `sign_in.force_password_change` is cleared (seed 001: a one-time
/// action the console clears once the person changed the password; roster's plan then
/// sees no drift). The write is audited with the person as actor and no token; its
/// before/after are the public bodies (never a password).
pub async fn change_own_password(
    db: &Db,
    login: &str,
    current: String,
    new: String,
) -> Result<(), Problem> {
    const KINDS: [Kind; 3] = [Kind::Representative, Kind::Manager, Kind::Administrator];
    let refused = || {
        Problem::unauthorized(
            "the login or the current password is wrong, or the account may not sign in",
        )
    };
    let login = login.to_lowercase();
    let mut candidates = vec![];
    for kind in KINDS {
        if let Some(row) = db.get(kind, &login).await? {
            let obj = Obj::from_stored(kind, &row.body)?;
            if let (Some(hash), true) = (row.secret.clone(), obj.may_sign_in()) {
                candidates.push((kind, row, hash));
            }
        }
    }
    let mut found = None;
    if candidates.is_empty() {
        // The same work as a real check, against a hash no password matches.
        verify_password(current.clone(), dummy_hash().await?).await?;
    }
    for (kind, row, hash) in candidates {
        if verify_password(current.clone(), hash).await? {
            found = Some((kind, row));
            break;
        }
    }
    let Some((kind, row)) = found else {
        return Err(refused());
    };
    if let Some(p) = new_password_problem(&new, &current) {
        return Err(p);
    }
    check_password(&db.password_policy().await?, &new, &row.key)
        .map_err(|p| p.with_pointer("/new_password"))?;
    let hash = hash_password(new).await?;
    let before = Obj::from_stored(kind, &row.body)?;
    let mut after = before.clone();
    after.clear_forced_password_change();
    let body = after.to_body();
    let mut tx = db.begin().await?;
    if !tx
        .update_cas(
            kind,
            &row.key,
            row.version,
            &row.key,
            &body.to_string(),
            &after.columns(Some(&hash)),
        )
        .await?
    {
        return Err(Problem::conflict(
            "the account changed while its password was being changed; try again",
        ));
    }
    tx.audit(
        &store::now_rfc3339(),
        &row.key,
        None,
        "update",
        kind.name(),
        &row.key,
        Some(&audit_json(&before.to_body(), row.version)),
        Some(&audit_json(&body, row.version + 1)),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// What a new password of a person's own change must be besides the account's password
/// policy (checked next with [`check_password`], as for every password stored, so that
/// the person's own change and an administrator's set meet the same rule).
fn new_password_problem(new: &str, current: &str) -> Option<Problem> {
    let why = if new.is_empty() {
        "the new password is empty"
    } else if new == current {
        "the new password is the current one; choose another"
    } else {
        return None;
    };
    Some(Problem::invalid_field(
        RuleCode::Secret,
        "/new_password",
        why,
    ))
}

/// Whether `value` matches a stored PHC hash, off the runtime. A hash that does not
/// parse matches nothing.
async fn verify_password(value: String, hash: String) -> Result<bool, Problem> {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash).is_ok_and(|h| {
            argon2::Argon2::default()
                .verify_password(value.as_bytes(), &h)
                .is_ok()
        })
    })
    .await
    .map_err(|e| Problem::internal(format!("password check failed: {e}")))
}

/// A hash of a random value, made once: what an unknown login is checked against.
async fn dummy_hash() -> Result<String, Problem> {
    static HASH: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    HASH.get_or_try_init(|| hash_password(super::auth::new_token()))
        .await
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_ignores_key_order() {
        let a = json!({"b":1,"a":{"y":[1,2],"x":null}});
        let b: Value = serde_json::from_str(r#"{"a":{"x":null,"y":[1,2]},"b":1}"#).unwrap();
        assert_eq!(canonical(&a), canonical(&b));
        assert_ne!(
            canonical(&a),
            canonical(&json!({"b":2,"a":{"y":[1,2],"x":null}}))
        );
    }

    #[tokio::test]
    async fn argon2_hash_is_phc_argon2id() {
        let h = hash_password("hunter2".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(!h.contains("hunter2"));
    }

    #[tokio::test]
    async fn a_password_verifies_against_its_hash_only() {
        let h = hash_password("hunter2".into()).await.unwrap();
        assert!(verify_password("hunter2".into(), h.clone()).await.unwrap());
        assert!(!verify_password("hunter3".into(), h).await.unwrap());
        assert!(
            !verify_password("x".into(), "not a hash".into())
                .await
                .unwrap()
        );
        let d = dummy_hash().await.unwrap();
        assert!(!verify_password(String::new(), d).await.unwrap());
    }

    #[test]
    fn a_new_password_is_neither_empty_nor_the_current_one() {
        assert!(new_password_problem("", "a").is_some());
        assert!(new_password_problem("a", "a").is_some());
        assert!(new_password_problem("b", "a").is_none());
    }
}
