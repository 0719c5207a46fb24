//! The ground floor of a plan being built: the state every stage reads and writes.
//!
//! Owns [`Cx`] (the run: declaration, live state, options, renames, the manager token's
//! [`Scope`], and what the stages collect: drafts, errors, warnings, unmanaged and
//! out-of-scope objects), [`Draft`] (a change with what safety and ordering need beside
//! it), [`Renames`] (the renames this plan makes, and live keys seen through them), and
//! [`field_change`]. It imports only the data types of `plan/mod.rs`, so every stage may
//! build on it without importing another. `make` creates the `Cx`; the diff fills its
//! drafts; scope, safety and order adjust them; `make` turns them into a `Plan`.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::{Action, Change, FieldChange, PlanOptions, Refusal, Unmanaged};
use crate::model::rules::RuleCode;
use crate::model::{Desired, Feature, Kind, ObjectId, Observed, TeamRight};

/// A change being built, with what safety and ordering need beside it.
#[derive(Debug, Clone)]
pub(super) struct Draft {
    pub change: Change,
    /// `protect: true` on the live object or on the declaration.
    pub protected: bool,
    /// The declaration says `protect: false` while the live object is protected.
    pub lifting_protect: bool,
    /// Objects removed and relationships taken away, in words (removal threshold).
    pub removals: Vec<String>,
    /// Objects this one refers to: their creates, renames, moves and reactivations come
    /// first (resolved to indices by `order`).
    pub deps: Vec<ObjectId>,
    /// Objects whose change, whatever it is, must come first (a team's members leaving
    /// before it is deleted, a representative before it becomes leader).
    pub hard_deps: Vec<ObjectId>,
    /// A team-leader update deferred until after the representatives phase.
    pub deferred: bool,
    /// A user name written after every other change, because another change of this
    /// plan frees it first (`order::defer_usernames`): 1, or one more than the freeing
    /// change's own level when that one waits too. 0 for every other change.
    pub last: u16,
    /// The key of the live object this change writes, as the live system knows it now
    /// (`None` for a create).
    pub live_key: Option<String>,
}

impl Draft {
    /// A later update of the same object that writes one field (`fc.field`, to `value`)
    /// once this change and the change of `after` are done (version: the one this change
    /// returns).
    pub(super) fn follow_up(
        &self,
        fc: FieldChange,
        value: Value,
        reason: String,
        after: ObjectId,
    ) -> Draft {
        let mut patch = Map::new();
        patch.insert(fc.field.clone(), value);
        let mut later = Draft::new(Change {
            id: self.change.id.clone(),
            action: Action::Update,
            previously: None,
            version: None,
            after: None,
            patch: Some(patch),
            fields: vec![fc],
            set_password: None,
            depends_on: vec![],
            reason,
        });
        later.live_key = self.live_key.clone();
        later.hard_deps = vec![self.change.id.clone(), after];
        later
    }

    pub(super) fn new(change: Change) -> Draft {
        Draft {
            change,
            protected: false,
            lifting_protect: false,
            removals: vec![],
            deps: vec![],
            hard_deps: vec![],
            deferred: false,
            last: 0,
            live_key: None,
        }
    }

    pub(super) fn is(&self, kind: Kind, action: Action) -> bool {
        self.change.id.kind == kind && self.change.action == action
    }
}

/// Renames this plan makes, per kind: old key ↔ new key.
#[derive(Debug, Default)]
pub(super) struct Renames {
    pub by_old: [BTreeMap<String, String>; 7],
    pub by_new: [BTreeMap<String, String>; 7],
    /// Live sub-teams carried along by a renamed ancestor: new path → old path.
    pub team_implicit_by_new: BTreeMap<String, String>,
    pub team_implicit_old: BTreeSet<String>,
}

impl Renames {
    pub(super) fn is_empty(&self) -> bool {
        self.by_old.iter().all(BTreeMap::is_empty)
    }

    pub(super) fn old_of(&self, kind: Kind, new: &str) -> Option<&str> {
        self.by_new[kind as usize].get(new).map(String::as_str)
    }

    pub(super) fn is_source(&self, kind: Kind, old: &str) -> bool {
        self.by_old[kind as usize].contains_key(old)
            || (kind == Kind::Team && self.team_implicit_old.contains(old))
    }

    /// A live team path after the renames of this plan (longest renamed prefix wins).
    pub(super) fn team_path<'a>(&self, path: &'a str) -> Cow<'a, str> {
        let map = &self.by_old[Kind::Team as usize];
        if map.is_empty() {
            return Cow::Borrowed(path);
        }
        let mut end = path.len();
        loop {
            if let Some(new) = map.get(&path[..end]) {
                return Cow::Owned(format!("{new}{}", &path[end..]));
            }
            match path[..end].rfind('/') {
                Some(i) => end = i,
                None => return Cow::Borrowed(path),
            }
        }
    }

    pub(super) fn key<'a>(&self, kind: Kind, key: &'a str) -> Cow<'a, str> {
        match self.by_old[kind as usize].get(key) {
            Some(new) => Cow::Owned(new.clone()),
            None => Cow::Borrowed(key),
        }
    }

    pub(super) fn login<'a>(&self, login: &'a str) -> Cow<'a, str> {
        match self.by_old[Kind::Representative as usize].get(login) {
            Some(new) => Cow::Owned(new.clone()),
            None => self.key(Kind::Manager, login),
        }
    }
}

/// What a manager token may touch: its teams and their sub-teams, its rights. The
/// checks against it are `scope.rs`'s; it sits here because the run carries it.
#[derive(Debug, Clone)]
pub(super) struct Scope {
    pub login: String,
    pub teams: BTreeSet<String>,
    pub rights: BTreeSet<TeamRight>,
    pub grantable: BTreeSet<Feature>,
    /// Representatives in scope, live (what the token could read) or declared in one of
    /// the manager's teams, by login (campaign members must be among them).
    pub reps: BTreeSet<String>,
    /// Managers in scope (itself, and those whose every team is in scope), by login
    /// (with `reps`: who a contact group may be shared with).
    pub managers: BTreeSet<String>,
}

/// Representatives each wanting the user name the next one frees (the last the first's),
/// with the name each wants: found while deferring names (`order`), refused by `safety`.
pub(super) type NameCycle = Vec<(ObjectId, String)>;

/// A live object no declaration matches: its key after this plan's renames, and the
/// key it is known by now.
#[derive(Debug, Clone)]
pub(super) struct Unmatched {
    pub key: String,
    pub old_key: String,
}

/// The state of one plan run.
pub(super) struct Cx<'a> {
    pub desired: &'a Desired,
    pub observed: &'a Observed,
    pub opts: PlanOptions,
    pub renames: Renames,
    pub scope: Option<Scope>,
    pub drafts: Vec<Draft>,
    pub errors: Vec<Refusal>,
    pub warnings: Vec<String>,
    pub unmanaged: Vec<Unmanaged>,
    pub out_of_scope: Vec<ObjectId>,
    pub unmatched: [Vec<Unmatched>; 7],
}

impl<'a> Cx<'a> {
    pub(super) fn new(desired: &'a Desired, observed: &'a Observed, opts: PlanOptions) -> Self {
        Cx {
            desired,
            observed,
            opts,
            renames: Renames::default(),
            scope: None,
            drafts: vec![],
            errors: vec![],
            warnings: vec![],
            unmanaged: vec![],
            out_of_scope: vec![],
            unmatched: Default::default(),
        }
    }

    pub(super) fn version(&self, kind: Kind, key: &str) -> Option<i64> {
        self.observed
            .versions
            .get(&ObjectId::new(kind, key))
            .copied()
    }

    pub(super) fn error(
        &mut self,
        rule: RuleCode,
        id: ObjectId,
        pointer: &str,
        message: String,
        help: String,
    ) {
        self.errors.push(Refusal {
            rule,
            id,
            objects: vec![],
            pointer: pointer.into(),
            message,
            help,
        });
    }

    /// The keys of the drafts of `kind` whose action is `action`.
    pub(super) fn keys_of(&self, kind: Kind, action: Action) -> BTreeSet<&str> {
        self.drafts
            .iter()
            .filter(|d| d.is(kind, action))
            .map(|d| d.change.id.key.as_str())
            .collect()
    }
}

pub(super) fn parent_of(path: &str) -> Option<&str> {
    path.rsplit_once('/').map(|(p, _)| p)
}

fn non_null(v: Value) -> Option<Value> {
    (!v.is_null()).then_some(v)
}

/// Set elements of an array or a `login → permission` map, as strings.
fn elements(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a
            .iter()
            .map(|x| match x {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect(),
        Value::Object(m) => m
            .iter()
            .map(|(k, p)| format!("{k} ({})", p.as_str().unwrap_or_default()))
            .collect(),
        _ => vec![],
    }
}

pub(super) fn field_change(field: &str, before: &Value, after: &Value) -> FieldChange {
    let mut fc = FieldChange {
        field: field.into(),
        before: non_null(before.clone()),
        after: non_null(after.clone()),
        removed: vec![],
        added: vec![],
    };
    let is_set = |v: &Value| v.is_array() || v.is_object();
    if is_set(before) || is_set(after) {
        let b: BTreeSet<String> = elements(before).into_iter().collect();
        let a: BTreeSet<String> = elements(after).into_iter().collect();
        fc.removed = b.difference(&a).cloned().collect();
        fc.added = a.difference(&b).cloned().collect();
    }
    fc
}

/// A field change of a whole scalar value (a key, a password): no set elements.
pub(super) fn scalar_change(field: &str, before: Option<Value>, after: Value) -> FieldChange {
    FieldChange {
        field: field.into(),
        before,
        after: Some(after),
        removed: vec![],
        added: vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn team_path_translation_takes_the_longest_renamed_prefix() {
        let mut r = Renames::default();
        r.by_old[Kind::Team as usize].insert("Europe".into(), "EU".into());
        r.by_old[Kind::Team as usize].insert("Europe/Paris".into(), "France/Paris".into());
        assert_eq!(r.team_path("Europe/Lyon"), "EU/Lyon");
        assert_eq!(r.team_path("Europe/Paris/North"), "France/Paris/North");
        assert_eq!(r.team_path("Europe"), "EU");
        assert_eq!(r.team_path("Asia"), "Asia");
        assert_eq!(r.team_path("Europeans"), "Europeans");
    }
}
