//! The comparison: declared objects × live objects → draft changes, kind by kind.
//!
//! Owns the renames a plan makes (`previously:`, and the live sub-teams a renamed team
//! carries along) and, per kind, the creates, the field-by-field updates (renames,
//! moves, (re)activations) and the removals of undeclared objects that the policy asks
//! for. Reads `Desired` and `Observed` from the run ([`Cx`]) and the kinds' accessors
//! (`kinds.rs`); asks `scope.rs` what a manager token may see and touch, and `safety.rs`
//! whether a rename conflicts; leaves [`Draft`]s on the run for safety and order.
//!
//! How it stays fast (100,000 representatives well under a second): one pass over each
//! kind's declared `BTreeMap`, a keyed lookup of the live object (renames resolved
//! through small maps), a field-by-field equality check that allocates nothing, and the
//! JSON field maps built only for objects that differ. No loop is quadratic.
//!
//! Normalization (nothing is drift that is not): `previously` is never compared; live
//! references (a rep's team, a campaign's members…) are translated through the renames
//! this plan makes; optional fields compare with their defaults filled in; passwords
//! compare by presence and `rotation` only (the live system never returns a value).

use serde_json::{Map, Value, json};

use super::draft::{Cx, Draft, Unmatched, field_change, parent_of, scalar_change};
use super::join::{Walk, par_join};
use super::kinds::{Object, api_json, status_field, status_patch};
use super::safety;
use super::scope::{self, Scoped};
use super::{Action, Change, FieldChange, Unmanaged};
use crate::model::{
    Administrator, Campaign, ContactGroup, Kind, Manager, ObjectId, OnRemove, Portal,
    Representative, SecretRef, Team, Unmanaged as Policy,
};

/// Calls `$f::<Kind>` for every kind, in phase order (the order drafts and errors are
/// pushed in).
macro_rules! each_kind {
    ($f:ident, $cx:expr) => {
        $f::<Portal>($cx);
        $f::<Team>($cx);
        $f::<Administrator>($cx);
        $f::<Manager>($cx);
        $f::<Representative>($cx);
        $f::<Campaign>($cx);
        $f::<ContactGroup>($cx);
    };
}

/// Every `previously:` of the declaration, and the sub-teams renamed teams carry along.
pub(super) fn renames(cx: &mut Cx) {
    each_kind!(collect_renames, cx);
    implicit_team_renames(cx);
}

/// Drafts the changes of every kind (after [`renames`]).
pub(super) fn kinds(cx: &mut Cx) {
    each_kind!(diff_kind, cx);
}

/// `previously:` → renames (`safety` refuses the conflicting ones).
fn collect_renames<T: Object>(cx: &mut Cx) {
    let desired = T::of(&cx.desired.org);
    let live = T::of(&cx.observed.org);
    let k = T::KIND;
    for (key, d) in desired {
        let Some(old) = d.previously() else { continue };
        if old == key {
            continue;
        }
        if safety::rename_conflict::<T>(cx, key, old) || !live.contains_key(old) {
            continue; // refused; or a create, or already renamed
        }
        cx.renames.by_old[k as usize].insert(old.to_string(), key.clone());
        cx.renames.by_new[k as usize].insert(key.clone(), old.to_string());
    }
}

/// Live sub-teams of a renamed or moved team follow it: `Europe/Paris` becomes
/// `EU/Paris` when `EU` says `previously: Europe`.
fn implicit_team_renames(cx: &mut Cx) {
    if cx.renames.by_old[Kind::Team as usize].is_empty() {
        return;
    }
    let live = &cx.observed.org.teams;
    for path in live.keys() {
        if cx.renames.by_old[Kind::Team as usize].contains_key(path) {
            continue;
        }
        let new = cx.renames.team_path(path);
        if new != path.as_str() && !live.contains_key(new.as_ref()) {
            let new = new.into_owned();
            cx.renames.team_implicit_old.insert(path.clone());
            cx.renames.team_implicit_by_new.insert(new, path.clone());
        }
    }
}

fn strip_secret(s: &SecretRef) -> SecretRef {
    SecretRef {
        env: s.env.clone(),
        file: s.file.clone(),
        rotation: s.rotation.clone(),
        value: None,
    }
}

/// The password to set on an existing object: when the live one is missing, or the
/// declared `rotation` marker differs from the live one (rule 8).
fn password_to_set(desired: Option<&SecretRef>, live: Option<&SecretRef>) -> Option<SecretRef> {
    let d = desired?;
    match live {
        None => Some(strip_secret(d)),
        Some(l) if d.rotation.is_some() && d.rotation != l.rotation => Some(strip_secret(d)),
        Some(_) => None,
    }
}

fn secret_json(s: &SecretRef) -> Value {
    serde_json::to_value(strip_secret(s)).unwrap_or(Value::Null)
}

/// The relationships a field change takes away, in words (removal threshold).
fn relationship_removals(kind: Kind, id: &ObjectId, fc: &FieldChange) -> Vec<String> {
    match (kind, fc.field.as_str()) {
        (Kind::Representative, "team") => fc
            .before
            .as_ref()
            .and_then(Value::as_str)
            .map(|t| vec![format!("{id} leaves team {t}")])
            .unwrap_or_default(),
        (Kind::ContactGroup, "shared_with") => {
            let after = fc.after.as_ref().and_then(Value::as_object);
            fc.before
                .as_ref()
                .and_then(Value::as_object)
                .map(|b| {
                    b.keys()
                        .filter(|l| !after.is_some_and(|a| a.contains_key(*l)))
                        .map(|l| format!("{id} is no longer shared with {l}"))
                        .collect()
                })
                .unwrap_or_default()
        }
        (Kind::Representative, "features" | "portals")
        | (Kind::Manager, "teams" | "team_rights" | "grantable")
        | (Kind::Campaign, "representatives" | "teams")
        | (Kind::Portal, "features") => fc
            .removed
            .iter()
            .map(|e| format!("{id} loses {} {e}", fc.field))
            .collect(),
        _ => vec![],
    }
}

/// Below this many declared objects of a kind, comparing on every core is not worth it.
pub(super) const PARALLEL_COMPARE_FROM: usize = 4096;

fn diff_kind<T: Scoped>(cx: &mut Cx) {
    let kind = T::KIND;
    let desired_map = T::of(&cx.desired.org);
    let live_map = T::of(&cx.observed.org);

    if scope::unreadable(cx, kind) {
        cx.out_of_scope.extend(
            desired_map
                .keys()
                .chain(live_map.keys())
                .map(|k| ObjectId::new(kind, k.as_str())),
        );
        return;
    }

    let unchanged = if cx.renames.is_empty() && desired_map.len() >= PARALLEL_COMPARE_FROM {
        // Whether each declared object equals its live namesake (no password to set
        // either): most of a large no-op plan's diff, on every core. Only when the plan
        // renames nothing, so that live objects compare as they are (`translated`).
        par_join(desired_map, live_map, |_, d, live| {
            live.is_some_and(|l| password_to_set(d.password(), l.password()).is_none() && d.same(l))
        })
    } else {
        vec![]
    };
    // Both maps are sorted and the plain lookups come in key order: walk each map once
    // instead of searching it for every object.
    let mut live_walk = Walk::new(live_map);
    for (i, (key, d)) in desired_map.iter().enumerate() {
        // Built only when the object has something to report (most have not).
        let id = || ObjectId::new(kind, key.as_str());
        // The live object this declaration matches, and its current key.
        let (live, old_key) = if let Some(old) = cx.renames.old_of(kind, key) {
            (live_map.get(old), Some(old.to_string()))
        } else if let Some(old) = (kind == Kind::Team)
            .then(|| cx.renames.team_implicit_by_new.get(key.as_str()))
            .flatten()
        {
            (live_map.get(old), None)
        } else if cx.renames.is_source(kind, key) {
            // Only a sub-team carried along by a renamed ancestor gets here (an explicit
            // `previously` whose old key is declared is refused while collecting).
            safety::carried_away(cx, id(), key);
            continue;
        } else {
            (live_walk.get(key), None)
        };

        let Some(live) = live else {
            if scope::unseen(cx, d) {
                cx.out_of_scope.push(id());
                continue;
            }
            create::<T>(cx, id(), d);
            continue;
        };
        // Under a manager token, a campaign or group declared with the members it cannot
        // see is compared on the members it can (`Scoped::project`).
        let projected = cx.scope.as_ref().and_then(|s| d.project(live, s));
        let d = projected.as_ref().unwrap_or(d);
        let known_same = unchanged.get(i).copied().unwrap_or(false) && projected.is_none();
        let live_t = live.translate(&cx.renames);
        let set_password = password_to_set(d.password(), live.password());
        if known_same || (old_key.is_none() && set_password.is_none() && d.same(&live_t)) {
            if scope::outside(cx, live) {
                cx.out_of_scope.push(id());
            }
            continue;
        }
        let live_key = old_key.clone().unwrap_or_else(|| {
            cx.renames
                .team_implicit_by_new
                .get(key.as_str())
                .filter(|_| kind == Kind::Team)
                .cloned()
                .unwrap_or_else(|| key.clone())
        });
        update::<T>(cx, id(), d, live, &live_t, &live_key, old_key, set_password);
    }

    // Live objects nothing declares.
    let mut unmatched = vec![];
    let mut desired_walk = Walk::new(desired_map);
    for (old_key, live) in live_map {
        if cx.renames.is_source(kind, old_key) {
            let new = if kind == Kind::Team {
                cx.renames.team_path(old_key).into_owned()
            } else {
                cx.renames.key(kind, old_key).into_owned()
            };
            if desired_map.contains_key(&new) {
                continue;
            }
            unmatched.push((new, old_key, live));
        } else if desired_walk.get(old_key).is_none() {
            unmatched.push((old_key.clone(), old_key, live));
        }
    }
    let policy = *cx.desired.policy.for_kind(kind);
    let managed = cx.desired.sections.contains(&kind);
    let mut ignored_remove = 0usize;
    for (key, old_key, live) in unmatched {
        let id = ObjectId::new(kind, key.as_str());
        if scope::untouchable(cx, &key, live) {
            cx.out_of_scope.push(id);
            continue;
        }
        cx.unmatched[kind as usize].push(Unmatched {
            key: key.clone(),
            old_key: old_key.clone(),
        });
        let effective = match policy.unmanaged {
            Policy::Remove if !managed => {
                ignored_remove += 1;
                Policy::Ignore
            }
            p => p,
        };
        cx.unmanaged.push(Unmanaged {
            id: id.clone(),
            policy: effective,
        });
        match effective {
            Policy::Ignore => {}
            Policy::Warn => cx.warnings.push(format!(
                "{id} exists in the live system but no file declares it (policy: warn)"
            )),
            Policy::Remove => remove::<T>(cx, id, live, old_key, policy.on_remove),
        }
    }
    if ignored_remove > 0 {
        cx.warnings.push(format!(
            "policy says `{}: {{ unmanaged: remove }}` but no file declares a `{}` section, \
             so {ignored_remove} undeclared {kind} object(s) are left alone; declare the \
             section (even empty) to manage it",
            kind.section(),
            kind.section()
        ));
    }
}

fn create<T: Scoped>(cx: &mut Cx, id: ObjectId, d: &T) {
    let after = api_json(d);
    let set_password = d.password().map(strip_secret);
    let mut fields = vec![];
    if let Some(p) = &set_password {
        fields.push(scalar_change("password", None, secret_json(p)));
    }
    let change = Change {
        id: id.clone(),
        action: Action::Create,
        previously: None,
        version: None,
        after: Some(Value::Object(after)),
        patch: None,
        fields,
        set_password,
        depends_on: vec![],
        reason: "declared, not in the live system".to_string(),
    };
    scope::check(cx, d, None, &change);
    let mut draft = Draft::new(change);
    draft.deps = d.refs();
    cx.drafts.push(draft);
}

#[allow(clippy::too_many_arguments)]
fn update<T: Scoped>(
    cx: &mut Cx,
    id: ObjectId,
    d: &T,
    live: &T,
    live_t: &T,
    live_key: &str,
    renamed_from: Option<String>,
    set_password: Option<SecretRef>,
) {
    let kind = T::KIND;
    let key_field = kind.key_field();
    let mut dc = d.canon();
    let mut lc = live_t.canon();
    dc.remove(key_field);
    lc.remove(key_field);
    if kind == Kind::Representative {
        settle_force_password_change(&mut dc, &lc, set_password.is_some());
    }
    // A live protection is lifted only by an explicit `protect: false`.
    let unprotect = cx.desired.unprotect.contains(&id);
    if live.protect() && !d.protect() && !unprotect {
        dc.insert("protect".into(), json!(true));
    }

    let mut patch = Map::new();
    let mut fields = vec![];
    if let Some(old) = &renamed_from {
        patch.insert(key_field.into(), json!(d.key()));
        fields.push(scalar_change(key_field, Some(json!(old)), json!(d.key())));
    }
    for (k, dv) in &dc {
        let lv = lc.get(k).unwrap_or(&Value::Null);
        if dv != lv {
            patch.insert(k.clone(), merge_patch_value(lv, dv));
            fields.push(field_change(k, lv, dv));
        }
    }
    for (k, lv) in &lc {
        if !dc.contains_key(k) && !lv.is_null() {
            patch.insert(k.clone(), Value::Null);
            fields.push(field_change(k, lv, &Value::Null));
        }
    }
    if let Some(p) = &set_password {
        let before = live.password().map(|l| json!({ "rotation": l.rotation }));
        fields.push(scalar_change("password", before, secret_json(p)));
    }
    if patch.is_empty() && set_password.is_none() {
        return;
    }

    let changed = |f: &str| fields.iter().any(|c| c.field == f);
    let (action, reason) = if let Some(old) = &renamed_from {
        if kind == Kind::Team && parent_of(old) != parent_of(d.key()) {
            (
                Action::Move,
                format!("declared with `previously: {old}` under another parent"),
            )
        } else {
            (Action::Rename, format!("declared with `previously: {old}`"))
        }
    } else if d.active() == Some(false) && live.active() == Some(true) {
        (Action::Deactivate, "declared inactive".to_string())
    } else if d.active() == Some(true) && live.active() == Some(false) {
        (
            Action::Reactivate,
            "declared active, inactive in the live system".to_string(),
        )
    } else if kind == Kind::Representative && changed("team") {
        (Action::Move, "declared in another team".to_string())
    } else {
        let names: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
        (Action::Update, format!("differs in {}", names.join(", ")))
    };

    let mut removals: Vec<String> = fields
        .iter()
        .flat_map(|fc| relationship_removals(kind, &id, fc))
        .collect();
    if action == Action::Deactivate {
        removals.insert(0, format!("{id} is deactivated"));
    }

    let change = Change {
        id: id.clone(),
        action,
        previously: renamed_from.clone(),
        version: cx.version(kind, live_key),
        after: None,
        patch: Some(patch),
        fields,
        set_password,
        depends_on: vec![],
        reason,
    };
    scope::check(cx, d, Some(live_t), &change);
    let mut draft = Draft::new(change);
    draft.live_key = Some(live_key.to_string());
    draft.protected = d.protect() || live.protect();
    draft.lifting_protect = !d.protect() && live.protect() && unprotect;
    draft.removals = removals;
    draft.deps = d.refs();
    if kind == Kind::Team {
        // Sub-teams carried along by a renamed ancestor are written after it.
        if let Some(p) = parent_of(d.key()) {
            draft.deps.push(ObjectId::new(Kind::Team, p));
        }
    }
    cx.drafts.push(draft);
}

/// A representative's declared `sign_in.force_password_change` the person has already
/// acted on is not sent again (`SignIn::force_change_settled`).
fn settle_force_password_change(
    dc: &mut Map<String, Value>,
    lc: &Map<String, Value>,
    password_set: bool,
) {
    const F: &str = "force_password_change";
    let live = lc
        .get("sign_in")
        .and_then(|s| s.get(F))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if let Some(Value::Object(d)) = dc.get_mut("sign_in") {
        let declared = d.get(F).and_then(Value::as_bool).unwrap_or(false);
        if crate::model::SignIn::force_change_settled(declared, live, password_set) {
            d.insert(F.into(), Value::Bool(false));
        }
    }
}

/// An undeclared live object under `unmanaged: remove`.
fn remove<T: Scoped>(cx: &mut Cx, id: ObjectId, live: &T, old_key: &str, on_remove: OnRemove) {
    let kind = T::KIND;
    let version = cx.version(kind, old_key);
    let delete = !kind.has_status() || (on_remove == OnRemove::Delete && cx.opts.allow_delete);
    if kind.has_status() && on_remove == OnRemove::Delete && !cx.opts.allow_delete {
        cx.warnings.push(format!(
            "{id} is deactivated, not deleted: policy says `on_remove: delete`, and \
             `--allow-delete` would delete it{}",
            if kind == Kind::Representative {
                " (losing its statistics irreversibly)"
            } else {
                ""
            }
        ));
    }
    let mut draft = if delete {
        let reason = match kind {
            Kind::Representative => "not declared, `on_remove: delete` and `--allow-delete`: \
                 deleting a representative loses its statistics irreversibly"
                .to_string(),
            k if k.has_status() => {
                "not declared, `on_remove: delete` and `--allow-delete`".to_string()
            }
            _ => "not declared and `unmanaged: remove`".to_string(),
        };
        let mut d = Draft::new(Change {
            id: id.clone(),
            action: Action::Delete,
            previously: None,
            version,
            after: None,
            patch: None,
            fields: vec![],
            set_password: None,
            depends_on: vec![],
            reason,
        });
        d.removals = vec![format!("{id} is deleted")];
        d
    } else {
        if live.active() == Some(false) {
            return; // already inactive: nothing to do
        }
        let field = status_field(kind);
        let patch = status_patch(kind, false);
        let fc = field_change(field, &status_patch(kind, true)[field], &patch[field]);
        let mut d = Draft::new(Change {
            id: id.clone(),
            action: Action::Deactivate,
            previously: None,
            version,
            after: None,
            patch: Some(patch),
            fields: vec![fc],
            set_password: None,
            depends_on: vec![],
            reason: "not declared and `unmanaged: remove`".into(),
        });
        d.removals = vec![format!("{id} is deactivated")];
        d
    };
    scope::check(cx, live, Some(live), &draft.change);
    draft.protected = live.protect();
    draft.live_key = Some(old_key.to_string());
    if kind == Kind::Team {
        if let Some(p) = parent_of(&id.key) {
            draft.deps.push(ObjectId::new(Kind::Team, p));
        }
    }
    cx.drafts.push(draft);
}

/// The PATCH value that turns `live` into `declared` under RFC 7396 (the live API's
/// PATCH): a map (`shared_with`) names each key it drops with `null`, since a merge
/// patch keeps every key it does not mention. Anything else is sent whole.
fn merge_patch_value(live: &Value, declared: &Value) -> Value {
    match (live, declared) {
        (Value::Object(l), Value::Object(d)) => {
            let mut out = d.clone();
            for k in l.keys().filter(|k| !d.contains_key(*k)) {
                out.insert(k.clone(), Value::Null);
            }
            Value::Object(out)
        }
        _ => declared.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_is_set_when_missing_or_rotated_only() {
        let d = SecretRef {
            env: Some("PW".into()),
            rotation: Some("2026-12".into()),
            ..Default::default()
        };
        let live_same = SecretRef {
            rotation: Some("2026-12".into()),
            ..Default::default()
        };
        let live_old = SecretRef {
            rotation: Some("2026-11".into()),
            ..Default::default()
        };
        assert!(password_to_set(Some(&d), Some(&live_same)).is_none());
        assert!(password_to_set(Some(&d), Some(&live_old)).is_some());
        assert!(password_to_set(Some(&d), Some(&SecretRef::default())).is_some());
        assert!(password_to_set(Some(&d), None).is_some());
        assert!(password_to_set(None, Some(&live_old)).is_none());
        let no_rotation = SecretRef {
            env: Some("PW".into()),
            ..Default::default()
        };
        assert!(password_to_set(Some(&no_rotation), Some(&live_old)).is_none());
    }

    #[test]
    fn set_changes_list_added_and_removed_elements() {
        let fc = field_change("features", &json!(["a", "b"]), &json!(["a", "c"]));
        assert_eq!(fc.removed, vec!["b"]);
        assert_eq!(fc.added, vec!["c"]);
        let fc = field_change(
            "shared_with",
            &json!({"x": "view", "y": "connect"}),
            &json!({"y": "manage"}),
        );
        assert_eq!(fc.removed, vec!["x (view)", "y (connect)"]);
        let id = ObjectId::new(Kind::ContactGroup, "g");
        // A permission change is not a removal; only `x` loses access.
        assert_eq!(
            relationship_removals(Kind::ContactGroup, &id, &fc),
            vec!["contact_group/g is no longer shared with x"]
        );
    }
}
