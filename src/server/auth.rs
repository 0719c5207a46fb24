//! Who is asking, and what they may see and change (rule 6).
//!
//! Bearer tokens look like `roster_` + 32 random base62 characters + a 6-character
//! base62 CRC32 of those 32 ([`TOKEN_PATTERN`], so that secret scanners can match a
//! leaked one and check its checksum); the store keeps only their SHA-256 (hex) and a
//! public id (the first 16 hex digits of that hash), by which they are listed, revoked
//! and named in the audit log. Each token has a permission ([`Permission`]: `read`
//! tokens get 403 on every request but GET/HEAD, refused before any handler by the
//! router), and optionally an expiry; [`authenticate`] reads the token row from the
//! database on every request (no cache), so a revoked or expired token is refused at
//! once by every replica. Tokens made before migration 0004 (`rst_…`) keep working as
//! `write` tokens without expiry. A token
//! belongs to an administrator (may do everything) or to a manager, whose requests are
//! confined to the manager's teams and sub-teams (its *scope*): it sees and changes only
//! what is in scope, turns on or off only its `grantable` features, and creates
//! managers only with `manage_managers` and never with more than it holds itself.
//! Handlers call [`authenticate`]; the engine calls [`authorize_write`] inside the
//! write transaction, so the check sees the same state the write changes.

use std::collections::{BTreeSet, HashMap};

use rand::Rng;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::domain::Obj;
use super::problem::Problem;
use super::store::{Db, StoredObject, TokenRow, Tx, rfc3339};
use crate::model::rights::{self, Group, RepWrite};
use crate::model::{
    Campaign, ContactGroup, Feature, Kind, Manager, Principal, Representative, TeamRight,
};

/// The authenticated caller, with the token it used.
#[derive(Debug, Clone)]
pub enum Actor {
    Administrator {
        login: String,
        token: UsedToken,
    },
    Manager {
        login: String,
        manager: Box<Manager>,
        token: UsedToken,
    },
}

/// Which token a request came with: its public id (recorded in the audit log) and what
/// it may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsedToken {
    pub id: String,
    pub permission: Permission,
}

/// What a token may do: `read` (GET and HEAD: reads and plans) or `write` (everything
/// its principal may).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    Read,
    Write,
}

impl Permission {
    pub fn parse(s: &str) -> Option<Permission> {
        match s {
            "read" => Some(Permission::Read),
            "write" => Some(Permission::Write),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Read => "read",
            Permission::Write => "write",
        }
    }
}

/// The fixed start of every token roster issues.
pub const TOKEN_PREFIX: &str = "roster_";

/// The pattern of a token (documented in README and docs/api.md): the prefix, 32 random
/// base62 characters, then [`token_checksum`] of those 32.
pub const TOKEN_PATTERN: &str = "roster_[0-9A-Za-z]{32}[0-9A-Za-z]{6}";

/// A new token's expiry when none is asked for (`--no-expiry` lifts it).
pub const DEFAULT_EXPIRY: std::time::Duration = std::time::Duration::from_secs(90 * 24 * 3600);

/// How long `last_used_at` may lag behind the true last use (a write per request would
/// serialize every read behind the writers).
const LAST_USED_GRANULARITY: time::Duration = time::Duration::seconds(60);

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// CRC32 (IEEE, as zlib) of `random`, as 6 base62 digits, most significant first,
/// zero-padded (62^6 > 2^32).
pub fn token_checksum(random: &str) -> String {
    let mut n = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(random.as_bytes()) as u64;
    let mut out = [b'0'; 6];
    for d in out.iter_mut().rev() {
        *d = BASE62[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether `token` has roster's form and a correct checksum (a typo or a truncated
/// copy fails here, before any lookup).
pub fn is_well_formed(token: &str) -> bool {
    let Some(rest) = token.strip_prefix(TOKEN_PREFIX) else {
        return false;
    };
    rest.len() == 38
        && rest.bytes().all(|b| b.is_ascii_alphanumeric())
        && token_checksum(&rest[..32]) == rest[32..]
}

/// SHA-256 of a token, hex: what the store keeps.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A token's public id: the first 16 hex digits of its hash (what lists and the audit
/// log show; migration 0004 gives older tokens theirs the same way).
pub fn token_id(hash: &str) -> String {
    hash[..16].to_string()
}

/// A new random token (32 base62 characters, about 190 bits), printable.
pub fn new_token() -> String {
    let random: String = rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(32)
        .map(char::from)
        .collect();
    format!("{TOKEN_PREFIX}{random}{}", token_checksum(&random))
}

/// What a new token is: its name, permission and expiry (None: never).
#[derive(Debug, Clone)]
pub struct TokenSpec {
    pub name: String,
    pub permission: Permission,
    pub expires_at: Option<OffsetDateTime>,
}

impl TokenSpec {
    /// A `write` token without expiry (the first administrator's, the embedded system's).
    pub fn unlimited(name: &str) -> TokenSpec {
        TokenSpec {
            name: name.to_string(),
            permission: Permission::Write,
            expires_at: None,
        }
    }

    /// Expiry from `--expires-in`/`expires_in` (humantime, e.g. `30d`), the default
    /// ([`DEFAULT_EXPIRY`]) when not given, none with `no_expiry`.
    pub fn expiry(
        expires_in: Option<&str>,
        no_expiry: bool,
    ) -> Result<Option<OffsetDateTime>, String> {
        let d = match (expires_in, no_expiry) {
            (Some(_), true) => return Err("give an expiry or no expiry, not both".into()),
            (None, true) => return Ok(None),
            (None, false) => DEFAULT_EXPIRY,
            (Some(s), false) => humantime::parse_duration(s)
                .map_err(|e| format!("`{s}` is not a duration like `30d` or `12h`: {e}"))?,
        };
        if d.is_zero() {
            return Err("an expiry must be in the future".into());
        }
        let d = time::Duration::try_from(d).map_err(|_| "the expiry is too far away")?;
        OffsetDateTime::now_utc()
            .checked_add(d)
            .map(Some)
            .ok_or_else(|| "the expiry is too far away".into())
    }
}

/// Issues a new token acting as `role` `login` inside `tx` and records the creation in
/// the audit log as done by `actor` (with the token `by_token` when made over the API);
/// returns the token (shown once, stored hashed) and its row.
pub async fn issue_token(
    tx: &mut Tx,
    actor: &str,
    by_token: Option<&str>,
    role: &str,
    login: &str,
    spec: &TokenSpec,
) -> Result<(String, TokenRow), sqlx::Error> {
    let token = new_token();
    let hash = hash_token(&token);
    let row = TokenRow {
        id: token_id(&hash),
        name: spec.name.clone(),
        role: role.to_string(),
        login: login.to_string(),
        permission: spec.permission.as_str().to_string(),
        created_at: super::store::now_rfc3339(),
        expires_at: spec.expires_at.map(rfc3339),
        last_used_at: None,
    };
    tx.insert_token(&hash, &row).await?;
    let after = token_view(&row).to_string();
    tx.audit(
        &row.created_at,
        actor,
        by_token,
        "create",
        "token",
        login,
        None,
        Some(&after),
    )
    .await?;
    Ok((token, row))
}

/// Revokes the token `row` inside `tx`, audited as `actor` (with the acting token's id,
/// when over the API): the one way a token is revoked, from the CLI or the API.
pub async fn revoke(
    tx: &mut Tx,
    row: &TokenRow,
    actor: &str,
    token_id: Option<&str>,
) -> Result<(), sqlx::Error> {
    tx.delete_token(&row.id).await?;
    let before = token_view(row).to_string();
    tx.audit(
        &super::store::now_rfc3339(),
        actor,
        token_id,
        "delete",
        "token",
        &row.login,
        Some(&before),
        None,
    )
    .await
}

/// A token as lists and the audit log show it: never its value nor its hash.
pub fn token_view(t: &TokenRow) -> serde_json::Value {
    serde_json::json!({
        "id": t.id, "name": t.name, "role": t.role, "login": t.login,
        "permission": t.permission, "created_at": t.created_at,
        "expires_at": t.expires_at, "last_used_at": t.last_used_at,
    })
}

fn parse_time(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
}

/// Whether a stored token has expired at `now`.
pub fn expired(t: &TokenRow, now: OffsetDateTime) -> bool {
    t.expires_at
        .as_deref()
        .is_some_and(|e| parse_time(e).is_none_or(|e| e <= now))
}

pub use crate::model::is_within;

/// The bearer token of an `Authorization` header (401 when missing or malformed).
pub fn bearer(header: Option<&str>) -> Result<&str, Problem> {
    let Some(h) = header else {
        return Err(Problem::unauthorized(
            "no token; send `Authorization: Bearer <token>`",
        ));
    };
    h.strip_prefix("Bearer ")
        .or_else(|| h.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Problem::unauthorized("the authorization header is not `Bearer <token>`"))
}

/// Resolves the `Authorization` header to an actor: 401 when missing, unknown, revoked
/// or expired, or when its principal no longer exists. Read from the database on every
/// request.
pub async fn authenticate(db: &Db, header: Option<&str>) -> Result<Actor, Problem> {
    let token = bearer(header)?;
    if token.starts_with(TOKEN_PREFIX) && !is_well_formed(token) {
        return Err(Problem::unauthorized(
            "the token is not a whole roster token (its length or checksum is wrong); \
             was it copied in full?",
        ));
    }
    let Some(row) = db.token_row(&hash_token(token)).await? else {
        return Err(Problem::unauthorized(
            "unknown or revoked token; create one with `roster token create` or POST /v1/tokens",
        ));
    };
    let now = OffsetDateTime::now_utc();
    if expired(&row, now) {
        return Err(Problem::unauthorized(format!(
            "token `{}` expired at {}; create a new one",
            row.id,
            row.expires_at.as_deref().unwrap_or("?")
        )));
    }
    let stale = row
        .last_used_at
        .as_deref()
        .and_then(parse_time)
        .is_none_or(|t| t + LAST_USED_GRANULARITY <= now);
    if stale {
        db.touch_token(&row.id, &rfc3339(now)).await?;
    }
    let used = UsedToken {
        id: row.id,
        permission: Permission::parse(&row.permission).unwrap_or(Permission::Read),
    };
    let login = row.login;
    match row.role.as_str() {
        "administrator" => {
            let Some(row) = db.get(Kind::Administrator, &login).await? else {
                return Err(Problem::unauthorized(format!(
                    "the token's administrator `{login}` no longer exists"
                )));
            };
            if !Obj::from_stored(Kind::Administrator, &row.body)?.may_sign_in() {
                return Err(Problem::unauthorized(format!(
                    "the token's administrator `{login}` is inactive"
                )));
            }
            Ok(Actor::Administrator { login, token: used })
        }
        _ => {
            let Some(row) = db.get(Kind::Manager, &login).await? else {
                return Err(Problem::unauthorized(format!(
                    "the token's manager `{login}` no longer exists"
                )));
            };
            let Obj::Manager(m) = Obj::from_stored(Kind::Manager, &row.body)? else {
                return Err(Problem::internal("stored manager is not a manager"));
            };
            Ok(Actor::Manager {
                login,
                manager: Box::new(m),
                token: used,
            })
        }
    }
}

impl Actor {
    pub fn login(&self) -> &str {
        match self {
            Actor::Administrator { login, .. } | Actor::Manager { login, .. } => login,
        }
    }

    /// The token this request came with.
    pub fn token(&self) -> &UsedToken {
        match self {
            Actor::Administrator { token, .. } | Actor::Manager { token, .. } => token,
        }
    }

    /// The public id of that token (what the audit log records).
    pub fn token_id(&self) -> Option<&str> {
        Some(&self.token().id)
    }

    pub fn principal(&self) -> Principal {
        match self {
            Actor::Administrator { login, .. } => Principal::Administrator {
                login: login.clone(),
            },
            Actor::Manager { login, .. } => Principal::Manager {
                login: login.clone(),
            },
        }
    }

    pub fn manager(&self) -> Option<&Manager> {
        match self {
            Actor::Manager { manager, .. } => Some(manager),
            Actor::Administrator { .. } => None,
        }
    }

    /// Every write needs a `write` token: a `read` token gets 403 naming it.
    pub fn require_write(&self, what: &str) -> Result<(), Problem> {
        let t = self.token();
        match t.permission {
            Permission::Write => Ok(()),
            Permission::Read => Err(Problem::forbidden(format!(
                "token `{}` is a read token: it may read and plan, not {what}; \
                 use a write token (`roster token create --permission write`)",
                t.id
            ))),
        }
    }

    pub fn require_admin(&self, what: &str) -> Result<(), Problem> {
        match self {
            Actor::Administrator { .. } => Ok(()),
            Actor::Manager { login, .. } => Err(Problem::forbidden(format!(
                "only an administrator may {what}; manager `{login}`'s token may not"
            ))),
        }
    }

    /// Whether a team path is inside this actor's scope (always, for administrators).
    pub fn team_in_scope(&self, path: &str) -> bool {
        match self.manager() {
            None => true,
            Some(m) => m.teams.iter().any(|t| is_within(path, t)),
        }
    }

    /// Strictly below one of the manager's teams (what a manager may create or delete).
    pub fn team_strictly_in_scope(&self, path: &str) -> bool {
        match self.manager() {
            None => true,
            Some(m) => m.teams.iter().any(|t| path != t && is_within(path, t)),
        }
    }

    /// The team paths in scope among `all` (None: no restriction).
    pub fn scope_teams(&self, all: &[String]) -> Option<Vec<String>> {
        self.manager()?;
        Some(
            all.iter()
                .filter(|t| self.team_in_scope(t))
                .cloned()
                .collect(),
        )
    }

    /// Whether a manager is inside this actor's scope: itself, or one whose teams are all
    /// in scope (and who has at least one).
    pub fn manager_in_scope(&self, m: &Manager) -> bool {
        match self {
            Actor::Administrator { .. } => true,
            Actor::Manager { login, .. } => {
                *login == m.login
                    || (!m.teams.is_empty() && m.teams.iter().all(|t| self.team_in_scope(t)))
            }
        }
    }

    /// Read visibility of one object (campaigns and contact groups: whether the object
    /// is readable at all; what of it is shown is [`view`]'s).
    pub fn can_see(&self, obj: &Obj) -> bool {
        match self {
            Actor::Administrator { .. } => true,
            Actor::Manager { .. } => match obj {
                Obj::Team(t) => self.team_in_scope(&t.path),
                Obj::Representative(r) => r.team.as_deref().is_some_and(|t| self.team_in_scope(t)),
                Obj::Manager(m) => self.manager_in_scope(m),
                Obj::Administrator(_) => false,
                Obj::Portal(_) | Obj::Campaign(_) | Obj::ContactGroup(_) => true,
            },
        }
    }

    /// Whether a manager may read this kind at all (administrators: always).
    pub fn may_read_kind(&self, kind: Kind) -> Result<(), Problem> {
        if kind == Kind::Administrator {
            self.require_admin("read administrators")?;
        }
        Ok(())
    }
}

fn need_right(m: &Manager, right: TeamRight, what: &str) -> Result<(), Problem> {
    if m.team_rights.contains(&right) {
        Ok(())
    } else {
        Err(Problem::forbidden(format!(
            "manager `{}` lacks the team right `{right}` needed to {what}",
            m.login
        )))
    }
}

fn out_of_scope(m: &Manager, what: &str) -> Problem {
    Problem::forbidden(format!(
        "{what} is outside the teams of manager `{}` ({})",
        m.login,
        m.teams.iter().cloned().collect::<Vec<_>>().join(", ")
    ))
}

async fn rep_team(tx: &mut Tx, login: &str) -> Result<Option<String>, Problem> {
    let Some(row) = tx.get(Kind::Representative, login).await? else {
        return Ok(None);
    };
    match Obj::from_stored(Kind::Representative, &row.body)? {
        Obj::Representative(r) => Ok(r.team),
        _ => Ok(None),
    }
}

/// Whether this token may see the representative or manager holding `login` (an
/// administrator sees everyone).
pub async fn login_in_scope(actor: &Actor, tx: &mut Tx, login: &str) -> Result<bool, Problem> {
    if matches!(actor, Actor::Administrator { .. }) {
        return Ok(true);
    }
    if login == actor.login() {
        return Ok(true);
    }
    if let Some(t) = rep_team(tx, login).await? {
        if actor.team_in_scope(&t) {
            return Ok(true);
        }
    }
    if let Some(row) = tx.get(Kind::Manager, login).await? {
        if let Obj::Manager(m) = Obj::from_stored(Kind::Manager, &row.body)? {
            return Ok(actor.manager_in_scope(&m));
        }
    }
    Ok(false)
}

fn check_rep_features(
    m: &Manager,
    before: Option<&Representative>,
    after: &Representative,
) -> Result<(), Problem> {
    let denied = rights::ungranted(before, after, &m.grantable);
    let features: Vec<&str> = denied
        .iter()
        .filter(|f| **f != Feature::Multisession)
        .map(|f| f.id())
        .collect();
    if !features.is_empty() {
        return Err(Problem::escalation(format!(
            "manager `{}` may not turn on or off {} (not in its `grantable`)",
            m.login,
            features.join(", ")
        ))
        .with_pointer("/features"));
    }
    if denied.contains(&Feature::Multisession) {
        return Err(Problem::escalation(format!(
            "manager `{}` may not change `multisession` (not in its `grantable`)",
            m.login
        ))
        .with_pointer("/multisession"));
    }
    Ok(())
}

/// Rule 6 for one write (create: `before` None; delete: `after` None). Administrators
/// may do everything. `password_set` tells whether the write sets a password value.
pub async fn authorize_write(
    actor: &Actor,
    tx: &mut Tx,
    kind: Kind,
    before: Option<&Obj>,
    after: Option<&Obj>,
    password_set: bool,
) -> Result<(), Problem> {
    let Some(me) = actor.manager() else {
        return Ok(());
    };
    match kind {
        Kind::Portal => actor.require_admin("change portals"),
        Kind::Account => actor.require_admin("change the account"),
        Kind::Administrator => actor.require_admin("change administrators"),
        Kind::Team => {
            let (b, a) = (as_team(before), as_team(after));
            for t in b.iter().chain(a.iter()) {
                if !actor.team_in_scope(&t.path) {
                    return Err(out_of_scope(me, &format!("team `{}`", t.path)));
                }
            }
            let renamed = matches!((b, a), (Some(x), Some(y)) if x.path != y.path);
            let structural = b.is_none() || a.is_none() || renamed;
            if structural {
                for t in b.iter().chain(a.iter()) {
                    if !actor.team_strictly_in_scope(&t.path) {
                        return Err(out_of_scope(
                            me,
                            &format!(
                                "creating, moving or deleting team `{}` (one of its own teams)",
                                t.path
                            ),
                        ));
                    }
                }
            }
            need_right(me, rights::TEAM_WRITE_RIGHT, "change teams")
        }
        Kind::Representative => {
            let (b, a) = (as_rep(before), as_rep(after));
            for r in b.iter().chain(a.iter()) {
                let ok = r.team.as_deref().is_some_and(|t| actor.team_in_scope(t));
                if !ok {
                    return Err(out_of_scope(
                        me,
                        &format!(
                            "representative `{}` (team {})",
                            r.login,
                            r.team.as_deref().unwrap_or("none")
                        ),
                    ));
                }
            }
            for w in rights::rep_writes(b, a, password_set) {
                let what = match w {
                    RepWrite::Add => "add representatives",
                    RepWrite::Remove => "remove representatives",
                    RepWrite::Manage(_) => {
                        "change a representative's status, team, e-mail, language, sign-in \
                         settings or portals"
                    }
                    RepWrite::NameOrLogin(_) => "change a representative's name or login",
                    RepWrite::Password => "set a representative's password",
                };
                need_right(me, w.right(), what)?;
            }
            match a {
                Some(a) => check_rep_features(me, b, a),
                None => Ok(()),
            }
        }
        Kind::Manager => {
            need_right(
                me,
                rights::MANAGER_WRITE_RIGHT,
                "add, change or remove managers",
            )?;
            let (b, a) = (as_manager(before), as_manager(after));
            if let Some(b) = b {
                if !actor.manager_in_scope(b) {
                    return Err(out_of_scope(me, &format!("manager `{}`", b.login)));
                }
            }
            if let Some(a) = a {
                if let Some(t) = a.teams.iter().find(|t| !actor.team_in_scope(t)) {
                    return Err(Problem::escalation(format!(
                        "manager `{}` may not give team `{t}` (outside its teams)",
                        me.login
                    ))
                    .with_pointer("/teams"));
                }
                if a.teams.is_empty() && a.login != me.login {
                    return Err(Problem::escalation(format!(
                        "manager `{}` may create managers only inside its own teams; give `teams`",
                        me.login
                    ))
                    .with_pointer("/teams"));
                }
                let extra: Vec<String> = a
                    .team_rights
                    .difference(&me.team_rights)
                    .map(|r| r.id().to_string())
                    .collect();
                if !extra.is_empty() {
                    return Err(Problem::escalation(format!(
                        "manager `{}` may not grant team rights it does not hold: {}",
                        me.login,
                        extra.join(", ")
                    ))
                    .with_pointer("/team_rights"));
                }
                let extra: Vec<String> = a
                    .grantable
                    .difference(&me.grantable)
                    .map(|f| f.id().to_string())
                    .collect();
                if !extra.is_empty() {
                    return Err(Problem::escalation(format!(
                        "manager `{}` may not make grantable what it may not grant itself: {}",
                        me.login,
                        extra.join(", ")
                    ))
                    .with_pointer("/grantable"));
                }
            }
            Ok(())
        }
        Kind::Campaign | Kind::ContactGroup => {
            authorize_group(actor, me, &mut Src::Tx(tx), before, after).await
        }
    }
}

/// Where [`Sight`] looks people up: the pool (reads) or the write's transaction.
pub enum Src<'a> {
    Db(&'a Db),
    Tx(&'a mut Tx),
}

impl Src<'_> {
    async fn get(&mut self, kind: Kind, key: &str) -> Result<Option<StoredObject>, Problem> {
        Ok(match self {
            Src::Db(db) => db.get(kind, key).await?,
            Src::Tx(tx) => tx.get(kind, key).await?,
        })
    }
}

/// What a manager token sees of campaign and contact-group members, looked up once per
/// login for one request.
#[derive(Default)]
pub struct Sight {
    reps: HashMap<String, bool>,
    logins: HashMap<String, bool>,
}

impl Sight {
    /// Whether `login` is a representative of the actor's teams.
    async fn rep(
        &mut self,
        actor: &Actor,
        src: &mut Src<'_>,
        login: &str,
    ) -> Result<bool, Problem> {
        if let Some(b) = self.reps.get(login) {
            return Ok(*b);
        }
        let b = match src.get(Kind::Representative, login).await? {
            Some(row) => match Obj::from_stored(Kind::Representative, &row.body)? {
                Obj::Representative(r) => r.team.as_deref().is_some_and(|t| actor.team_in_scope(t)),
                _ => false,
            },
            None => false,
        };
        self.reps.insert(login.to_string(), b);
        Ok(b)
    }

    /// Whether `login` is the actor, a representative of its teams or a manager in scope
    /// (as [`login_in_scope`]).
    async fn login(
        &mut self,
        actor: &Actor,
        src: &mut Src<'_>,
        login: &str,
    ) -> Result<bool, Problem> {
        if login == actor.login() {
            return Ok(true);
        }
        if let Some(b) = self.logins.get(login) {
            return Ok(*b);
        }
        let mut b = self.rep(actor, src, login).await?;
        if !b {
            if let Some(row) = src.get(Kind::Manager, login).await? {
                if let Obj::Manager(m) = Obj::from_stored(Kind::Manager, &row.body)? {
                    b = actor.manager_in_scope(&m);
                }
            }
        }
        self.logins.insert(login.to_string(), b);
        Ok(b)
    }

    /// A campaign as `actor` sees it (itself for an administrator).
    pub async fn campaign(
        &mut self,
        actor: &Actor,
        src: &mut Src<'_>,
        c: &Campaign,
    ) -> Result<Campaign, Problem> {
        if actor.manager().is_none() {
            return Ok(c.clone());
        }
        let mut reps = BTreeSet::new();
        for r in &c.representatives {
            if self.rep(actor, src, r).await? {
                reps.insert(r.as_str());
            }
        }
        Ok(rights::visible_campaign(
            c,
            |r| reps.contains(r),
            |t| actor.team_in_scope(t),
        ))
    }

    /// A contact group as `actor` sees it.
    pub async fn group(
        &mut self,
        actor: &Actor,
        src: &mut Src<'_>,
        g: &ContactGroup,
    ) -> Result<ContactGroup, Problem> {
        if actor.manager().is_none() {
            return Ok(g.clone());
        }
        let mut seen = BTreeSet::new();
        for l in g.shared_with.keys() {
            if self.login(actor, src, l).await? {
                seen.insert(l.as_str());
            }
        }
        Ok(rights::visible_group(g, |l| seen.contains(l)))
    }

    /// An object as `actor` sees it, or `None` when it may not see it at all: campaigns
    /// and contact groups with their members out of scope left out and counted
    /// (`hidden_members`), shown only when [`rights::shown`].
    pub async fn view(
        &mut self,
        actor: &Actor,
        src: &mut Src<'_>,
        obj: Obj,
    ) -> Result<Option<Obj>, Problem> {
        if actor.manager().is_none() {
            return Ok(Some(obj));
        }
        Ok(match obj {
            Obj::Campaign(c) => {
                let v = self.campaign(actor, src, &c).await?;
                rights::shown(&v).then_some(Obj::Campaign(v))
            }
            Obj::ContactGroup(g) => {
                let v = self.group(actor, src, &g).await?;
                rights::shown(&v).then_some(Obj::ContactGroup(v))
            }
            other => actor.can_see(&other).then_some(other),
        })
    }
}

/// A manager's write to a campaign or contact group gets back every member of `before`
/// it cannot see (it sets the members it sees); administrators' writes are as sent.
pub async fn keep_hidden(
    actor: &Actor,
    tx: &mut Tx,
    before: &Obj,
    after: Obj,
) -> Result<Obj, Problem> {
    if actor.manager().is_none() {
        return Ok(after);
    }
    let mut sight = Sight::default();
    let src = &mut Src::Tx(tx);
    Ok(match (before, after) {
        (Obj::Campaign(b), Obj::Campaign(mut a)) => {
            let view = sight.campaign(actor, src, b).await?;
            rights::keep_hidden_campaign(&mut a, b, &view);
            Obj::Campaign(a)
        }
        (Obj::ContactGroup(b), Obj::ContactGroup(mut a)) => {
            let view = sight.group(actor, src, b).await?;
            rights::keep_hidden_group(&mut a, b, &view);
            Obj::ContactGroup(a)
        }
        (_, a) => a,
    })
}

/// Rule 6 for a campaign or contact group: a member the token cannot see may not be
/// added (the hidden ones it already has were kept by [`keep_hidden`]); the rights of
/// [`rights::group_writes`], as the plan predicts them.
async fn authorize_group(
    actor: &Actor,
    me: &Manager,
    src: &mut Src<'_>,
    before: Option<&Obj>,
    after: Option<&Obj>,
) -> Result<(), Problem> {
    let mut sight = Sight::default();
    let (what, writes) = match (before.or(after), before, after) {
        (Some(Obj::Campaign(any)), b, a) => {
            let (b, a) = (as_campaign(b), as_campaign(a));
            let vb = match b {
                Some(b) => Some(sight.campaign(actor, src, b).await?),
                None => None,
            };
            let va = match a {
                Some(a) => Some(sight.campaign(actor, src, a).await?),
                None => None,
            };
            if let Some(a) = a {
                let known = |m: &String, set: fn(&Campaign) -> &BTreeSet<String>| {
                    b.is_some_and(|b| set(b).contains(m))
                };
                let seen = va.as_ref().expect("viewed above");
                for t in a.teams.difference(&seen.teams) {
                    if !known(t, |c| &c.teams) {
                        return Err(out_of_scope(
                            me,
                            &format!("campaign `{}`'s team `{t}`", a.name),
                        ));
                    }
                }
                for r in a.representatives.difference(&seen.representatives) {
                    if !known(r, |c| &c.representatives) {
                        return Err(out_of_scope(
                            me,
                            &format!("campaign `{}`'s representative `{r}`", a.name),
                        ));
                    }
                }
            }
            let hidden = vb.as_ref().map_or(0, |v| v.hidden());
            (
                (format!("campaign `{}`", any.name), hidden),
                rights::group_writes(vb.as_ref(), va.as_ref()),
            )
        }
        (Some(Obj::ContactGroup(any)), b, a) => {
            let (b, a) = (as_group(b), as_group(a));
            let vb = match b {
                Some(b) => Some(sight.group(actor, src, b).await?),
                None => None,
            };
            let va = match a {
                Some(a) => Some(sight.group(actor, src, a).await?),
                None => None,
            };
            if let (Some(a), Some(seen)) = (a, va.as_ref()) {
                for l in a.shared_with.keys() {
                    let hidden_before = b.is_some_and(|b| b.shared_with.contains_key(l));
                    if !seen.shared_with.contains_key(l) && !hidden_before {
                        return Err(out_of_scope(
                            me,
                            &format!("contact group `{}`'s user `{l}`", a.name),
                        ));
                    }
                }
            }
            let hidden = vb.as_ref().map_or(0, |v| v.hidden());
            (
                (format!("contact group `{}`", any.name), hidden),
                rights::group_writes(vb.as_ref(), va.as_ref()),
            )
        }
        _ => return Ok(()),
    };
    let (name, hidden) = what;
    for w in writes {
        if w.needs_every_member() && hidden > 0 {
            return Err(Problem::forbidden(format!(
                "manager `{}` may not {} {name}: {hidden} of its members are outside its \
                 teams; an administrator may",
                me.login,
                w.verb()
            )));
        }
        if let Some(right) = w.right() {
            need_right(me, right, &format!("{} {name}", w.verb()))?;
        }
    }
    Ok(())
}

fn as_campaign(o: Option<&Obj>) -> Option<&Campaign> {
    match o {
        Some(Obj::Campaign(c)) => Some(c),
        _ => None,
    }
}
fn as_group(o: Option<&Obj>) -> Option<&ContactGroup> {
    match o {
        Some(Obj::ContactGroup(g)) => Some(g),
        _ => None,
    }
}

fn as_team(o: Option<&Obj>) -> Option<&crate::model::Team> {
    match o {
        Some(Obj::Team(t)) => Some(t),
        _ => None,
    }
}
fn as_rep(o: Option<&Obj>) -> Option<&Representative> {
    match o {
        Some(Obj::Representative(r)) => Some(r),
        _ => None,
    }
}
fn as_manager(o: Option<&Obj>) -> Option<&Manager> {
    match o {
        Some(Obj::Manager(m)) => Some(m),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_hashed_not_stored() {
        let t = new_token();
        assert!(t.starts_with(TOKEN_PREFIX) && t.len() == 45, "{t}");
        assert!(is_well_formed(&t));
        let h = hash_token(&t);
        assert_eq!(h.len(), 64);
        assert!(!h.contains(&t[7..]));
        assert_eq!(token_id(&h), h[..16]);
        assert_ne!(new_token(), t);
    }

    #[test]
    fn the_checksum_catches_a_changed_character() {
        let t = new_token();
        let mut b = t.clone().into_bytes();
        b[10] = if b[10] == b'a' { b'b' } else { b'a' };
        assert!(!is_well_formed(&String::from_utf8(b).unwrap()));
        assert!(!is_well_formed(&t[..44]));
        // CRC32 (IEEE) of the standard check input is 0xCBF43926 = 3421780262.
        assert_eq!(token_checksum("123456789"), "3jZRME");
    }

    #[test]
    fn expiry_defaults_and_parses() {
        let now = OffsetDateTime::now_utc();
        let d = TokenSpec::expiry(None, false).unwrap().unwrap();
        assert!((d - now - time::Duration::days(90)).abs() < time::Duration::minutes(1));
        let d = TokenSpec::expiry(Some("30d"), false).unwrap().unwrap();
        assert!((d - now - time::Duration::days(30)).abs() < time::Duration::minutes(1));
        assert_eq!(TokenSpec::expiry(None, true).unwrap(), None);
        assert!(TokenSpec::expiry(Some("30d"), true).is_err());
        assert!(TokenSpec::expiry(Some("soon"), false).is_err());
    }

    #[test]
    fn manager_scope_covers_sub_teams_only() {
        let m = Manager {
            login: "m@x.example".into(),
            email: "m@x.example".into(),
            name: "M".into(),
            password: None,
            teams: ["Europe".to_string()].into(),
            team_rights: Default::default(),
            grantable: Default::default(),
            protect: false,
            previously: None,
        };
        let a = Actor::Manager {
            login: m.login.clone(),
            manager: Box::new(m),
            token: UsedToken {
                id: "0".into(),
                permission: Permission::Write,
            },
        };
        assert!(a.team_in_scope("Europe/Paris"));
        assert!(!a.team_strictly_in_scope("Europe"));
        assert!(a.team_strictly_in_scope("Europe/Paris"));
        assert!(!a.team_in_scope("Asia"));
        let all = vec![
            "Asia".to_string(),
            "Europe".to_string(),
            "Europe/Paris".to_string(),
        ];
        assert_eq!(
            a.scope_teams(&all).unwrap(),
            vec!["Europe".to_string(), "Europe/Paris".to_string()]
        );
    }
}
