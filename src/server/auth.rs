//! Who is asking, and what they may see and change (rule 6).
//!
//! Bearer tokens are random strings; the store keeps only their SHA-256 (hex). A token
//! belongs to an administrator (may do everything) or to a manager, whose requests are
//! confined to the manager's teams and sub-teams (its *scope*): it sees and changes only
//! what is in scope, turns on or off only its `grantable` features, and creates
//! managers only with `manage_managers` and never with more than it holds itself.
//! Handlers call [`authenticate`]; the engine calls [`authorize_write`] inside the
//! write transaction, so the check sees the same state the write changes.

use std::collections::BTreeSet;

use rand::RngCore;
use sha2::{Digest, Sha256};

use super::domain::Obj;
use super::problem::Problem;
use super::store::{Db, Tx};
use crate::model::rights::{self, RepWrite};
use crate::model::{Feature, Kind, Manager, Principal, Representative, TeamRight};

/// The authenticated caller.
#[derive(Debug, Clone)]
pub enum Actor {
    Administrator {
        login: String,
    },
    Manager {
        login: String,
        manager: Box<Manager>,
    },
}

/// SHA-256 of a token, hex: what the store keeps.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new random token (256 bits), printable.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("rst_{}", hex::encode(bytes))
}

/// Issues a new token acting as `role` `login` inside `tx` and records the creation in
/// the audit log as done by `actor`; returns the token (shown once, stored hashed).
pub async fn issue_token(
    tx: &mut Tx,
    actor: &str,
    role: &str,
    login: &str,
) -> Result<String, sqlx::Error> {
    let token = new_token();
    let now = super::store::now_rfc3339();
    tx.insert_token(&hash_token(&token), role, login, &now)
        .await?;
    let after = serde_json::json!({"role": role, "login": login}).to_string();
    tx.audit(&now, actor, "create", "token", login, None, Some(&after))
        .await?;
    Ok(token)
}

/// Whether `path` is `team` or one of its sub-teams.
pub fn is_within(path: &str, team: &str) -> bool {
    path == team
        || (path.len() > team.len()
            && path.starts_with(team)
            && path.as_bytes()[team.len()] == b'/')
}

/// Resolves the `Authorization` header to an actor: 401 when missing or unknown.
pub async fn authenticate(db: &Db, header: Option<&str>) -> Result<Actor, Problem> {
    let Some(h) = header else {
        return Err(Problem::unauthorized(
            "no token; send `Authorization: Bearer <token>`",
        ));
    };
    let token = h
        .strip_prefix("Bearer ")
        .or_else(|| h.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Problem::unauthorized("the authorization header is not `Bearer <token>`"))?;
    let Some((role, login)) = db.token(&hash_token(token)).await? else {
        return Err(Problem::unauthorized(
            "unknown token; create one with `roster token create` or POST /v1/tokens",
        ));
    };
    match role.as_str() {
        "administrator" => {
            if db.get(Kind::Administrator, &login).await?.is_none() {
                return Err(Problem::unauthorized(format!(
                    "the token's administrator `{login}` no longer exists"
                )));
            }
            Ok(Actor::Administrator { login })
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
            })
        }
    }
}

impl Actor {
    pub fn login(&self) -> &str {
        match self {
            Actor::Administrator { login } | Actor::Manager { login, .. } => login,
        }
    }

    pub fn principal(&self) -> Principal {
        match self {
            Actor::Administrator { login } => Principal::Administrator {
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

    /// Read visibility of one object.
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

fn feature_changes(before: &BTreeSet<Feature>, after: &BTreeSet<Feature>) -> Vec<Feature> {
    before.symmetric_difference(after).copied().collect()
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
    let empty = BTreeSet::new();
    let changed = feature_changes(
        before.map(|b| &b.features).unwrap_or(&empty),
        &after.features,
    );
    let denied: Vec<String> = changed
        .iter()
        .filter(|f| !m.grantable.contains(f))
        .map(|f| f.id().to_string())
        .collect();
    if !denied.is_empty() {
        return Err(Problem::escalation(format!(
            "manager `{}` may not turn on or off {} (not in its `grantable`)",
            m.login,
            denied.join(", ")
        ))
        .with_pointer("/features"));
    }
    let before_ms = before.map(|b| b.multisession).unwrap_or(1);
    if after.multisession != before_ms && !m.grantable.contains(&Feature::Multisession) {
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
            need_right(me, TeamRight::ManageSubteams, "change teams")
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
                TeamRight::ManageManagers,
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
        Kind::Campaign => {
            for obj in before.iter().chain(after.iter()) {
                let Obj::Campaign(c) = obj else { continue };
                for t in &c.teams {
                    if !actor.team_in_scope(t) {
                        return Err(out_of_scope(
                            me,
                            &format!("campaign `{}`'s team `{t}`", c.name),
                        ));
                    }
                }
                for l in &c.representatives {
                    let in_scope = rep_team(tx, l)
                        .await?
                        .is_some_and(|t| actor.team_in_scope(&t));
                    if !in_scope {
                        return Err(out_of_scope(
                            me,
                            &format!("campaign `{}`'s representative `{l}`", c.name),
                        ));
                    }
                }
            }
            Ok(())
        }
        Kind::ContactGroup => {
            for obj in before.iter().chain(after.iter()) {
                let Obj::ContactGroup(g) = obj else { continue };
                for l in g.shared_with.keys() {
                    if !login_in_scope(actor, tx, l).await? {
                        return Err(out_of_scope(
                            me,
                            &format!("contact group `{}`'s user `{l}`", g.name),
                        ));
                    }
                }
            }
            Ok(())
        }
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
    fn within_respects_segment_boundaries() {
        assert!(is_within("Europe/Paris", "Europe"));
        assert!(is_within("Europe", "Europe"));
        assert!(!is_within("Europeans", "Europe"));
        assert!(!is_within("Europe", "Europe/Paris"));
    }

    #[test]
    fn tokens_are_hashed_not_stored() {
        let t = new_token();
        assert!(t.starts_with("rst_") && t.len() == 68);
        let h = hash_token(&t);
        assert_eq!(h.len(), 64);
        assert!(!h.contains(&t[4..]));
        assert_ne!(new_token(), t);
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
