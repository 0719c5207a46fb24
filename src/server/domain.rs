//! Objects as the server sees them: one enum over the model types, with what the store
//! and the engine need from each kind — key, indexed columns, references, normalization,
//! the object-level rules, and how a rename of something it refers to rewrites it.
//!
//! Bodies arrive as JSON (create: the model type; update: a merge patch applied to the
//! stored body) and are parsed into the model types, whose `deny_unknown_fields` reject
//! unknown keys. Passwords are split off here: the body keeps `{"rotation": …}` only,
//! the value goes to the engine to be hashed.

use std::collections::BTreeSet;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::problem::{Problem, escape_pointer, from_serde};
use super::store::Columns;
use crate::model::rules::{self, RuleCode, Violation};
use crate::model::{
    Administrator, Campaign, ContactGroup, Kind, Manager, Portal, Representative, SecretRef,
    SecretValue, Status, Team,
};

/// One object of any kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Obj {
    Portal(Portal),
    Team(Team),
    Administrator(Administrator),
    Manager(Manager),
    Representative(Representative),
    Campaign(Campaign),
    ContactGroup(ContactGroup),
}

/// A reference the object makes, before it is resolved against the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefNeed {
    /// The field (`team`, `portals`, `leader`, …), also stored as the ref's `rel`.
    pub rel: &'static str,
    /// Kinds the key may name, in order of preference (contact groups: rep or manager).
    pub kinds: &'static [Kind],
    pub key: String,
    /// JSON pointer of the reference in the body.
    pub pointer: String,
}

fn parse_as<T: DeserializeOwned>(body: &Value) -> Result<T, Problem> {
    // Through a string so that serde_path_to_error sees every position.
    let text = body.to_string();
    let de = &mut serde_json::Deserializer::from_str(&text);
    serde_path_to_error::deserialize(de).map_err(from_serde)
}

fn lower(s: &mut String) {
    if s.chars().any(|c| c.is_uppercase()) {
        *s = s.to_lowercase();
    }
}

fn lower_set(set: &mut BTreeSet<String>) {
    if set.iter().any(|s| s.chars().any(|c| c.is_uppercase())) {
        *set = set.iter().map(|s| s.to_lowercase()).collect();
    }
}

fn replace_in_set(set: &mut BTreeSet<String>, old: &str, new: &str) -> bool {
    if set.remove(old) {
        set.insert(new.to_string());
        true
    } else {
        false
    }
}

/// The password part of a body: the value to hash (if any) and the public form.
fn split_password(p: &mut Option<Box<SecretRef>>) -> Result<Option<SecretValue>, Problem> {
    let Some(secret) = p else { return Ok(None) };
    if secret.env.is_some() || secret.file.is_some() {
        return Err(Problem::invalid_field(
            RuleCode::Secret,
            "/password",
            "the api takes the password itself as `password.value`; `env` and `file` are resolved by the client",
        ));
    }
    let value = secret.value.take();
    if let Some(v) = &value {
        if v.0.is_empty() {
            return Err(Problem::invalid_field(
                RuleCode::Secret,
                "/password/value",
                "the password is empty",
            ));
        }
    }
    Ok(value)
}

impl Obj {
    /// Parses a request body (the model type's JSON; a `version` member is ignored) into
    /// an object and the password value to hash, if any.
    pub fn parse(kind: Kind, mut body: Value) -> Result<(Obj, Option<SecretValue>), Problem> {
        let Some(map) = body.as_object_mut() else {
            return Err(Problem::invalid_field(
                RuleCode::Schema,
                "",
                "the body must be a json object",
            ));
        };
        map.remove("version");
        // What a manager token could not see of a campaign or group is counted by the
        // server, never stored: a body that sends the count back is read without it.
        if matches!(kind, Kind::Campaign | Kind::ContactGroup) {
            map.remove("hidden_members");
        }
        let (mut obj, secret) = match kind {
            Kind::Portal => (Obj::Portal(parse_as(&body)?), None),
            Kind::Team => (Obj::Team(parse_as(&body)?), None),
            Kind::Administrator => {
                let mut a: Administrator = parse_as(&body)?;
                let s = split_password(&mut a.password)?;
                (Obj::Administrator(a), s)
            }
            Kind::Manager => {
                let mut m: Manager = parse_as(&body)?;
                let s = split_password(&mut m.password)?;
                (Obj::Manager(m), s)
            }
            Kind::Representative => {
                let mut r: Representative = parse_as(&body)?;
                let s = split_password(&mut r.password)?;
                (Obj::Representative(r), s)
            }
            Kind::Campaign => (Obj::Campaign(parse_as(&body)?), None),
            Kind::ContactGroup => (Obj::ContactGroup(parse_as(&body)?), None),
            Kind::Account => {
                return Err(Problem::new(
                    axum::http::StatusCode::BAD_REQUEST,
                    "unknown-kind",
                    "the account is changed with `PATCH /v1/account`, not in a batch",
                ));
            }
        };
        obj.normalize();
        Ok((obj, secret))
    }

    pub fn kind(&self) -> Kind {
        match self {
            Obj::Portal(_) => Kind::Portal,
            Obj::Team(_) => Kind::Team,
            Obj::Administrator(_) => Kind::Administrator,
            Obj::Manager(_) => Kind::Manager,
            Obj::Representative(_) => Kind::Representative,
            Obj::Campaign(_) => Kind::Campaign,
            Obj::ContactGroup(_) => Kind::ContactGroup,
        }
    }

    pub fn key(&self) -> &str {
        match self {
            Obj::Portal(x) => &x.name,
            Obj::Team(x) => &x.path,
            Obj::Administrator(x) => &x.login,
            Obj::Manager(x) => &x.login,
            Obj::Representative(x) => &x.login,
            Obj::Campaign(x) => &x.name,
            Obj::ContactGroup(x) => &x.name,
        }
    }

    pub fn set_key(&mut self, key: &str) {
        let k = key.to_string();
        match self {
            Obj::Portal(x) => x.name = k,
            Obj::Team(x) => x.path = k,
            Obj::Administrator(x) => x.login = k,
            Obj::Manager(x) => x.login = k,
            Obj::Representative(x) => x.login = k,
            Obj::Campaign(x) => x.name = k,
            Obj::ContactGroup(x) => x.name = k,
        }
    }

    /// Lower-cases logins (keys and references), drops `previously` (never stored).
    pub fn normalize(&mut self) {
        match self {
            Obj::Portal(x) => x.previously = None,
            Obj::Team(x) => {
                x.previously = None;
                if let Some(l) = &mut x.leader {
                    lower(l);
                }
            }
            Obj::Administrator(x) => {
                x.previously = None;
                lower(&mut x.login);
            }
            Obj::Manager(x) => {
                x.previously = None;
                lower(&mut x.login);
            }
            Obj::Representative(x) => {
                x.previously = None;
                lower(&mut x.login);
            }
            Obj::Campaign(x) => {
                x.previously = None;
                lower_set(&mut x.representatives);
            }
            Obj::ContactGroup(x) => {
                x.previously = None;
                if x.shared_with
                    .keys()
                    .any(|k| k.chars().any(|c| c.is_uppercase()))
                {
                    x.shared_with = std::mem::take(&mut x.shared_with)
                        .into_iter()
                        .map(|(k, v)| (k.to_lowercase(), v))
                        .collect();
                }
            }
        }
    }

    /// The object-level rules (`model::rules`: rule 1, rule 2's e-mail login, the field
    /// shapes of `model::shape`), as the loader runs them.
    pub fn check(&self) -> Vec<Violation> {
        match self {
            Obj::Portal(p) => rules::check_portal(p),
            Obj::Team(t) => rules::check_team(t),
            Obj::Administrator(a) => {
                let mut a = a.clone();
                a.password = None;
                rules::check_administrator(&a)
            }
            Obj::Manager(m) => {
                let mut m = m.clone();
                m.password = None;
                rules::check_manager(&m)
            }
            Obj::Representative(r) => {
                let mut r = r.clone();
                r.password = None;
                rules::check_representative(&r)
            }
            Obj::Campaign(c) => rules::check_campaign(c),
            Obj::ContactGroup(g) => rules::check_contact_group(g),
        }
    }

    /// The public JSON body (what GET returns, without `version`).
    pub fn to_body(&self) -> Value {
        let v = match self {
            Obj::Portal(x) => serde_json::to_value(x),
            Obj::Team(x) => serde_json::to_value(x),
            Obj::Administrator(x) => serde_json::to_value(x),
            Obj::Manager(x) => serde_json::to_value(x),
            Obj::Representative(x) => serde_json::to_value(x),
            Obj::Campaign(x) => serde_json::to_value(x),
            Obj::ContactGroup(x) => serde_json::to_value(x),
        };
        v.unwrap_or(Value::Null)
    }

    /// Reads a stored body back (stored bodies were written by [`Obj::to_body`]).
    pub fn from_stored(kind: Kind, body: &str) -> Result<Obj, Problem> {
        let v: Value = serde_json::from_str(body)
            .map_err(|e| Problem::internal(format!("stored {kind} is not json: {e}")))?;
        Obj::parse(kind, v).map(|(o, _)| o)
    }

    /// The indexed `team` column: a representative's team, a team's own path.
    pub fn team_col(&self) -> Option<&str> {
        match self {
            Obj::Representative(r) => r.team.as_deref(),
            Obj::Team(t) => Some(&t.path),
            _ => None,
        }
    }

    /// Whether this is an operator, who holds a licensed seat
    /// (`Representative::takes_seat`: active, with support management).
    pub fn takes_seat(&self) -> bool {
        matches!(self, Obj::Representative(r) if r.takes_seat())
    }

    /// The indexed `active` column: 0 for an inactive representative (and every other
    /// kind), 1 for an operator (a seat, [`Obj::takes_seat`]), 2 for an active user
    /// without support management (no seat). Rows written before support management
    /// existed were all operators, as the field's default says, so the column needs no
    /// migration: `active = 1` still counts seats, `active >= 1` counts users.
    pub fn active_col(&self) -> i64 {
        match self {
            Obj::Representative(r) if r.status == Status::Active => {
                if r.support_management {
                    1
                } else {
                    2
                }
            }
            _ => 0,
        }
    }

    /// The indexed `username` column: a representative's user name, lower case (user
    /// names are unique ignoring case, as logins).
    pub fn username_col(&self) -> Option<String> {
        match self {
            Obj::Representative(r) => r.username.as_deref().map(str::to_lowercase),
            _ => None,
        }
    }

    /// Every indexed column, with the stored password hash.
    pub fn columns<'a>(&'a self, secret: Option<&'a str>) -> Columns<'a> {
        Columns {
            team: self.team_col(),
            active: self.active_col(),
            secret,
            username: self.username_col(),
        }
    }

    /// Whether the account may sign in (and so change its own password): a
    /// representative or an administrator only while active; a manager always.
    pub fn may_sign_in(&self) -> bool {
        match self {
            Obj::Representative(r) => r.status == Status::Active,
            Obj::Administrator(a) => a.status == Status::Active,
            Obj::Manager(_) => true,
            _ => false,
        }
    }

    /// The person changed the password: a pending forced change is done (seed 001).
    pub fn clear_forced_password_change(&mut self) {
        if let Obj::Representative(r) = self {
            r.sign_in.force_password_change = false;
        }
    }

    /// Whether the object holds a password (set or not yet hashed).
    pub fn has_password(&self) -> bool {
        match self {
            Obj::Administrator(a) => a.password.is_some(),
            Obj::Manager(m) => m.password.is_some(),
            Obj::Representative(r) => r.password.is_some(),
            _ => false,
        }
    }

    /// Every reference this object makes (rule 3).
    pub fn refs(&self) -> Vec<RefNeed> {
        const TEAM: &[Kind] = &[Kind::Team];
        const REP: &[Kind] = &[Kind::Representative];
        const PORTAL: &[Kind] = &[Kind::Portal];
        const USER: &[Kind] = &[Kind::Representative, Kind::Manager];
        let mut out = vec![];
        let mut set =
            |rel: &'static str, kinds: &'static [Kind], keys: &mut dyn Iterator<Item = &String>| {
                for (i, k) in keys.enumerate() {
                    out.push(RefNeed {
                        rel,
                        kinds,
                        key: k.clone(),
                        pointer: format!("/{rel}/{i}"),
                    });
                }
            };
        match self {
            Obj::Portal(_) | Obj::Administrator(_) => {}
            Obj::Manager(m) => set("teams", TEAM, &mut m.teams.iter()),
            Obj::Representative(r) => {
                set("portals", PORTAL, &mut r.portals.iter());
                if let Some(t) = &r.team {
                    out.push(RefNeed {
                        rel: "team",
                        kinds: TEAM,
                        key: t.clone(),
                        pointer: "/team".into(),
                    });
                }
            }
            Obj::Campaign(c) => {
                set("representatives", REP, &mut c.representatives.iter());
                set("teams", TEAM, &mut c.teams.iter());
            }
            Obj::Team(t) => {
                if let Some(p) = t.parent() {
                    out.push(RefNeed {
                        rel: "parent",
                        kinds: TEAM,
                        key: p.to_string(),
                        pointer: "/path".into(),
                    });
                }
                if let Some(l) = &t.leader {
                    out.push(RefNeed {
                        rel: "leader",
                        kinds: REP,
                        key: l.clone(),
                        pointer: "/leader".into(),
                    });
                }
            }
            Obj::ContactGroup(g) => {
                for k in g.shared_with.keys() {
                    out.push(RefNeed {
                        rel: "shared_with",
                        kinds: USER,
                        key: k.clone(),
                        pointer: format!("/shared_with/{}", escape_pointer(k)),
                    });
                }
            }
        }
        out
    }

    /// Why renaming (kind, old) to `new` cannot be followed in this object, if it cannot:
    /// a contact group that shares with both `old` and `new` at different permissions
    /// would have to merge the two entries into one and change someone's access.
    pub fn rename_blocker(&self, kind: Kind, old: &str, new: &str) -> Option<String> {
        match (self, kind) {
            (Obj::ContactGroup(g), Kind::Representative | Kind::Manager) => {
                match (g.shared_with.get(old), g.shared_with.get(new)) {
                    (Some(a), Some(b)) if a != b => Some(format!(
                        "contact_group `{}` shares with `{old}` ({}) and `{new}` ({}); after the rename one entry would have to stand for both",
                        g.name,
                        permission_name(*a),
                        permission_name(*b)
                    )),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// Rewrites this object's reference to a renamed (kind, old) as `new`. True when
    /// something changed.
    pub fn rewrite_ref(&mut self, kind: Kind, old: &str, new: &str) -> bool {
        match (self, kind) {
            (Obj::Team(t), Kind::Representative) => {
                if t.leader.as_deref() == Some(old) {
                    t.leader = Some(new.to_string());
                    return true;
                }
                false
            }
            (Obj::Manager(m), Kind::Team) => replace_in_set(&mut m.teams, old, new),
            (Obj::Representative(r), Kind::Team) => {
                if r.team.as_deref() == Some(old) {
                    r.team = Some(new.to_string());
                    return true;
                }
                false
            }
            (Obj::Representative(r), Kind::Portal) => r.portals.replace(old, new.to_string()),
            (Obj::Campaign(c), Kind::Representative) => {
                replace_in_set(&mut c.representatives, old, new)
            }
            (Obj::Campaign(c), Kind::Team) => replace_in_set(&mut c.teams, old, new),
            // The entry follows the renamed account. An entry `new` already there has the
            // same permission (`rename_blocker` refused any other case), so they merge.
            (Obj::ContactGroup(g), Kind::Representative | Kind::Manager) => {
                if let Some(p) = g.shared_with.remove(old) {
                    g.shared_with.insert(new.to_string(), p);
                    return true;
                }
                false
            }
            _ => false,
        }
    }
}

fn permission_name(p: crate::model::Permission) -> String {
    serde_json::to_value(p)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{p:?}").to_lowercase())
}

/// RFC 7396 JSON merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    if let Value::Object(p) = patch {
        if !target.is_object() {
            *target = Value::Object(serde_json::Map::new());
        }
        let t = target.as_object_mut().expect("made an object above");
        for (k, v) in p {
            if v.is_null() {
                t.remove(k);
            } else {
                merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    } else {
        *target = patch.clone();
    }
}

/// A key as the store holds it: logins lower case (URLs may use any case), other keys
/// as given.
pub fn normalize_key(kind: Kind, key: &str) -> String {
    match kind {
        Kind::Administrator | Kind::Manager | Kind::Representative => key.to_lowercase(),
        _ => key.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parse_splits_the_password_and_lowercases_logins() {
        let (o, s) = Obj::parse(
            Kind::Representative,
            json!({"login":"JDoe@Acme.Example","email":"j@a.example","first_name":"J","last_name":"D",
                   "password":{"value":"hunter2","rotation":"1"},"version":4}),
        )
        .unwrap();
        assert_eq!(o.key(), "jdoe@acme.example");
        assert_eq!(s.unwrap().0, "hunter2");
        let body = o.to_body();
        assert_eq!(body["password"], json!({"rotation":"1"}));
        assert!(!body.to_string().contains("hunter2"));
    }

    #[test]
    fn env_password_is_refused() {
        let e = Obj::parse(
            Kind::Manager,
            json!({"login":"m@a.example","email":"m@a.example","name":"M","password":{"env":"X"}}),
        )
        .unwrap_err();
        assert_eq!(e.errors[0].code, "secret");
    }

    #[test]
    fn portal_features_are_limited() {
        let (o, _) = Obj::parse(Kind::Portal, json!({"name":"p","features":["reports"]})).unwrap();
        let v = o.check();
        assert_eq!(v[0].rule, RuleCode::FeatureNotAllowed);
    }

    #[test]
    fn team_refs_name_parent_and_leader() {
        let (o, _) = Obj::parse(
            Kind::Team,
            json!({"path":"Europe/Paris","leader":"J@x.example"}),
        )
        .unwrap();
        let r = o.refs();
        assert_eq!(r[0].key, "Europe");
        assert_eq!(r[1].key, "j@x.example");
        assert!(
            Obj::parse(Kind::Team, json!({"path":"Europe//Paris"}))
                .unwrap()
                .0
                .check()
                .len()
                == 1
        );
    }

    #[test]
    fn merge_patch_replaces_and_clears() {
        let mut t = json!({"a":1,"b":{"c":2,"d":3}});
        merge_patch(&mut t, &json!({"a":null,"b":{"c":5}}));
        assert_eq!(t, json!({"b":{"c":5,"d":3}}));
    }

    #[test]
    fn rewrite_follows_a_renamed_rep() {
        let (mut o, _) = Obj::parse(
            Kind::ContactGroup,
            json!({"name":"g","shared_with":{"a@x.example":"view"}}),
        )
        .unwrap();
        assert!(o.rewrite_ref(Kind::Representative, "a@x.example", "b@x.example"));
        assert_eq!(o.to_body()["shared_with"], json!({"b@x.example":"view"}));
    }

    #[test]
    fn a_rename_merging_entries_of_different_permissions_is_blocked() {
        let (g, _) = Obj::parse(
            Kind::ContactGroup,
            json!({"name":"g","shared_with":{"a@x.example":"view","b@x.example":"manage","c@x.example":"view"}}),
        )
        .unwrap();
        let why = g
            .rename_blocker(Kind::Manager, "a@x.example", "b@x.example")
            .unwrap();
        assert!(
            why.contains("`a@x.example` (view)") && why.contains("`b@x.example` (manage)"),
            "{why}"
        );
        assert_eq!(
            g.rename_blocker(Kind::Representative, "a@x.example", "c@x.example"),
            None
        );
        assert_eq!(
            g.rename_blocker(Kind::Representative, "a@x.example", "d@x.example"),
            None
        );
        assert_eq!(
            g.rename_blocker(Kind::Team, "a@x.example", "b@x.example"),
            None
        );
        let mut merged = g.clone();
        assert!(merged.rewrite_ref(Kind::Representative, "a@x.example", "c@x.example"));
        assert_eq!(
            merged.to_body()["shared_with"],
            json!({"b@x.example":"manage","c@x.example":"view"})
        );
    }
}
