//! What each of the seven kinds offers the stages: its key, the map it sits in, its
//! comparison, its API JSON with defaults, the live object seen through this plan's
//! renames, and the objects it refers to.
//!
//! Owns the [`Object`] trait and its seven implementations, written once by the
//! [`object!`] macro from the fields each kind compares and the defaults its API JSON may
//! omit; only what differs between kinds (passwords, status, references) is spelled out.
//! Reads the model's types and [`Renames`] (`draft.rs`); the diff, scope, safety and
//! order stages use it generically.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::draft::{Renames, parent_of};
use crate::model::{
    Administrator, Campaign, ContactGroup, Kind, Manager, ObjectId, Org, Portal, Representative,
    SecretRef, Status, Team,
};

/// What every kind offers the generic stages.
pub(super) trait Object: Serialize + Clone + Sync {
    const KIND: Kind;
    fn key(&self) -> &str;
    fn previously(&self) -> Option<&str>;
    fn protect(&self) -> bool;
    fn password(&self) -> Option<&SecretRef> {
        None
    }
    /// Whether the object is active, for kinds with a status.
    fn active(&self) -> Option<bool> {
        None
    }
    /// Equal in every compared field (all but `previously` and `password`); allocates
    /// nothing, so unchanged objects cost a comparison and no more.
    fn same(&self, live: &Self) -> bool;
    /// Defaults of the fields the API JSON may omit, so both sides have every field.
    fn defaults() -> Vec<(&'static str, Value)>;
    /// Fields [`Object::canon`] writes in full rather than as serialized.
    fn complete(&self, _canon: &mut Map<String, Value>) {}
    /// The live object with its references renamed as this plan renames them (as is for
    /// kinds that refer to nothing).
    fn translate<'a>(&'a self, _renames: &Renames) -> Cow<'a, Self> {
        Cow::Borrowed(self)
    }
    /// The objects this one refers to (its changes must come first).
    fn refs(&self) -> Vec<ObjectId> {
        vec![]
    }
    fn of(org: &Org) -> &BTreeMap<String, Self>;

    /// Every field as API JSON with defaults filled in, without `previously`/`password`,
    /// keys sorted (so patches and renderings list fields in one order).
    fn canon(&self) -> Map<String, Value> {
        let mut m = api_json(self);
        for (k, v) in Self::defaults() {
            m.entry(k).or_insert(v);
        }
        self.complete(&mut m);
        m.sort_keys();
        m
    }
}

/// The API JSON of an object without `previously` and `password` (never sent in a body:
/// the password travels as `set_password`) nor `hidden_members` (what a manager token
/// cannot see of a live campaign or contact group: the live system keeps those members
/// whatever a manager sends, so they are never compared nor written).
pub(super) fn api_json<T: Serialize>(obj: &T) -> Map<String, Value> {
    match serde_json::to_value(obj) {
        Ok(Value::Object(mut m)) => {
            m.remove("previously");
            m.remove("password");
            m.remove("hidden_members");
            m
        }
        _ => Map::new(),
    }
}

/// The PATCH body that sets an object's status (`status` for representatives, `active`
/// for the others).
pub(super) fn status_patch(kind: Kind, active: bool) -> Map<String, Value> {
    let mut m = Map::new();
    if kind == Kind::Representative {
        m.insert(
            "status".into(),
            json!(if active { "active" } else { "inactive" }),
        );
    } else {
        m.insert("active".into(), json!(active));
    }
    m
}

pub(super) fn status_field(kind: Kind) -> &'static str {
    if kind == Kind::Representative {
        "status"
    } else {
        "active"
    }
}

/// The live object as is when the plan renames nothing, else `f()` (a renamed copy).
fn translated<'a, T: Clone>(this: &'a T, r: &Renames, f: impl FnOnce() -> T) -> Cow<'a, T> {
    if r.is_empty() {
        Cow::Borrowed(this)
    } else {
        Cow::Owned(f())
    }
}

/// A set of references as this plan renames them.
fn renamed<'k, S: FromIterator<String>>(
    keys: impl IntoIterator<Item = &'k String>,
    f: impl Fn(&'k str) -> Cow<'k, str>,
) -> S {
    keys.into_iter().map(|k| f(k).into_owned()).collect()
}

fn ids<'a>(
    kind: Kind,
    keys: impl IntoIterator<Item = &'a String>,
) -> impl Iterator<Item = ObjectId> {
    keys.into_iter()
        .map(move |k| ObjectId::new(kind, k.as_str()))
}

/// One `impl Object`: the struct and its kind, its key field and `Org` map, the fields
/// `same` compares (the destructuring names every field, so a new one fails to compile
/// until it is listed here or skipped), the defaults, and any further methods.
macro_rules! object {
    (
        $t:ident: $kind:ident, key $key:ident in $map:ident,
        compare [$first:ident $(, $f:ident)*], skip [$($skip:ident),*],
        defaults [$($d:ident: $v:expr),*],
        $($rest:tt)*
    ) => {
        impl Object for $t {
            const KIND: Kind = Kind::$kind;
            fn key(&self) -> &str {
                &self.$key
            }
            fn previously(&self) -> Option<&str> {
                self.previously.as_deref()
            }
            fn protect(&self) -> bool {
                self.protect
            }
            fn same(&self, l: &Self) -> bool {
                let $t { $first, $($f,)* $($skip: _,)* } = self;
                *$first == l.$first $(&& *$f == l.$f)*
            }
            fn defaults() -> Vec<(&'static str, Value)> {
                vec![$((stringify!($d), $v)),*]
            }
            fn of(org: &Org) -> &BTreeMap<String, Self> {
                &org.$map
            }
            $($rest)*
        }
    };
}

object! {
    Portal: Portal, key name in portals,
    compare [name, features, protect], skip [previously],
    defaults [features: json!([]), protect: json!(false)],
}

object! {
    Team: Team, key path in teams,
    compare [path, description, max_active_logins, leader, active, protect],
    skip [previously],
    defaults [
        description: Value::Null,
        max_active_logins: Value::Null,
        leader: Value::Null,
        active: json!(true),
        protect: json!(false)
    ],
    fn active(&self) -> Option<bool> {
        Some(self.active)
    }
    fn translate<'a>(&'a self, r: &Renames) -> Cow<'a, Self> {
        translated(self, r, || {
            let mut t = self.clone();
            t.path = r.team_path(&self.path).into_owned();
            t.leader = self.leader.as_deref().map(|l| r.login(l).into_owned());
            t
        })
    }
    fn refs(&self) -> Vec<ObjectId> {
        parent_of(&self.path)
            .map(|p| ObjectId::new(Kind::Team, p))
            .into_iter()
            .collect()
    }
}

object! {
    Administrator: Administrator, key login in administrators,
    compare [login, email, name, first_name, last_name, language, status, protect],
    skip [password, previously],
    defaults [
        name: json!(""),
        first_name: Value::Null,
        last_name: Value::Null,
        language: json!("en"),
        status: json!("active"),
        protect: json!(false)
    ],
    fn password(&self) -> Option<&SecretRef> {
        self.password.as_deref()
    }
}

object! {
    Manager: Manager, key login in managers,
    compare [login, email, name, teams, team_rights, grantable, protect],
    skip [password, previously],
    defaults [
        teams: json!([]),
        team_rights: json!([]),
        grantable: json!([]),
        protect: json!(false)
    ],
    fn password(&self) -> Option<&SecretRef> {
        self.password.as_deref()
    }
    fn translate<'a>(&'a self, r: &Renames) -> Cow<'a, Self> {
        translated(self, r, || {
            let mut m = self.clone();
            m.teams = renamed(&self.teams, |t| r.team_path(t));
            m
        })
    }
    fn refs(&self) -> Vec<ObjectId> {
        ids(Kind::Team, &self.teams).collect()
    }
}

object! {
    Representative: Representative, key login in representatives,
    compare [
        login, email, first_name, last_name, username, language, team, status, sign_in,
        features, multisession, portals, support_management, remote_management, protect
    ],
    skip [password, previously],
    defaults [
        username: Value::Null,
        team: Value::Null,
        status: json!("active"),
        features: json!([]),
        multisession: json!(1),
        portals: json!([]),
        support_management: json!(true),
        remote_management: json!(false),
        protect: json!(false)
    ],
    fn password(&self) -> Option<&SecretRef> {
        self.password.as_deref()
    }
    fn active(&self) -> Option<bool> {
        Some(self.status == Status::Active)
    }
    fn complete(&self, m: &mut Map<String, Value>) {
        // The whole object, so a PATCH of `sign_in` also turns settings off.
        let s = &self.sign_in;
        m.insert(
            "sign_in".into(),
            json!({
                "force_password_change": s.force_password_change,
                "self_service_password_reset": s.self_service_password_reset,
                "force_email_validation": s.force_email_validation,
            }),
        );
    }
    fn translate<'a>(&'a self, r: &Renames) -> Cow<'a, Self> {
        translated(self, r, || {
            let mut x = self.clone();
            x.team = self.team.as_deref().map(|t| r.team_path(t).into_owned());
            x.portals = renamed(&self.portals, |p| r.key(Kind::Portal, p));
            x
        })
    }
    fn refs(&self) -> Vec<ObjectId> {
        ids(Kind::Team, &self.team)
            .chain(ids(Kind::Portal, &self.portals))
            .collect()
    }
}

object! {
    Campaign: Campaign, key name in campaigns,
    compare [name, active, representatives, teams, protect], skip [previously, hidden_members],
    defaults [
        active: json!(true),
        representatives: json!([]),
        teams: json!([]),
        protect: json!(false)
    ],
    fn active(&self) -> Option<bool> {
        Some(self.active)
    }
    fn refs(&self) -> Vec<ObjectId> {
        ids(Kind::Representative, &self.representatives)
            .chain(ids(Kind::Team, &self.teams))
            .collect()
    }
    fn translate<'a>(&'a self, r: &Renames) -> Cow<'a, Self> {
        translated(self, r, || {
            let mut c = self.clone();
            c.representatives = renamed(&self.representatives, |l| r.key(Kind::Representative, l));
            c.teams = renamed(&self.teams, |t| r.team_path(t));
            c
        })
    }
}

object! {
    ContactGroup: ContactGroup, key name in contact_groups,
    compare [name, shared_with, protect], skip [previously, hidden_members],
    defaults [shared_with: json!({}), protect: json!(false)],
    fn translate<'a>(&'a self, r: &Renames) -> Cow<'a, Self> {
        translated(self, r, || {
            let mut g = self.clone();
            g.shared_with = self
                .shared_with
                .iter()
                .map(|(l, p)| (r.login(l).into_owned(), *p))
                .collect();
            g
        })
    }
    fn refs(&self) -> Vec<ObjectId> {
        self.shared_with
            .keys()
            .flat_map(|l| {
                [
                    ObjectId::new(Kind::Representative, l.as_str()),
                    ObjectId::new(Kind::Manager, l.as_str()),
                ]
            })
            .collect()
    }
}
