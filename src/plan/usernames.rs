//! Default user names meet the live system.
//!
//! The loader gives every representative without a declared `username:` the default name
//! (`jdoe`, then `jdoe2`, … in login order) it would get on an empty system. A default
//! name is chosen once, when the representative is created; afterwards it is the
//! representative's name, and roster keeps it. Recomputing it on every plan would rename
//! people who did not change: a newcomer whose login sorts first would take `jdoe` from
//! the John Doe who had it, and every later Doe would shift by one. (Under a manager token
//! each of those renames would also need `edit_rep_name_login`.)
//!
//! [`settle_usernames`] therefore gives each representative that exists live (under its
//! login, or the one it renames with `previously`) its live user name, unless the YAML
//! declares one. A name some declaration writes wins: a kept default name equal to it is
//! chosen again, as for a new representative. New representatives keep the loader's
//! name when it is free and otherwise get the next free number, free meaning held by no
//! one before or after the plan: no declared name, no kept name, no live representative's
//! name (a name never changes hands within one plan). Acting as a manager, roster sees
//! only part of the names in use, so it sends a new representative without its default
//! name and the console proposes it (`server::engine`, the same default, numbered past
//! every name held).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Map, Value};

use super::diff::{Cx, Draft, field_change};
use super::join::Walk;
use super::{Action, PlanError};
use crate::model::rules::RuleCode;
use crate::model::usernames::{UsernamePool, default_username};
use crate::model::{Desired, Kind, Login, ObjectId, Observed, Principal};

/// Keeps the live user name of every representative without a declared one and makes
/// the names of the others unique against them. Call before [`super::diff()`].
pub fn settle_usernames(desired: &mut Desired, observed: &Observed) {
    let live = &observed.org.representatives;
    let reps = &mut desired.org.representatives;
    let declared = &desired.declared_usernames;
    // Names the YAML writes (few): a kept default name may not take one of them.
    let mut written = UsernamePool::default();
    for login in declared {
        if let Some(name) = reps.get(login).and_then(|r| r.username.as_deref()) {
            written.take(name);
        }
    }
    // Representatives whose name is still to be chosen: new ones, and existing ones whose
    // live name a declaration now writes or that have none. The three maps are sorted by
    // login: one walk, no lookup per representative (a no-op plan of 100,000 settles in
    // a few milliseconds).
    // A manager's token sees only its teams' representatives, so it cannot know every
    // name in use: a new representative's default name is left to the console, which
    // proposes the same default, numbered past every name it holds.
    let console_names_new = matches!(observed.principal, Some(Principal::Manager { .. }));
    let mut unsettled: Vec<Login> = Vec::new();
    let mut live_walk = Walk::new(live);
    let mut declared_walk = declared.iter().peekable();
    for (login, r) in reps.iter_mut() {
        while declared_walk.next_if(|d| *d < login).is_some() {}
        if declared_walk.next_if(|d| *d == login).is_some() {
            continue;
        }
        let continued = live_walk
            .get(login)
            .or_else(|| r.previously.as_deref().and_then(|p| live.get(p)));
        if continued.is_none() && console_names_new {
            r.username = None;
            continue;
        }
        let Some(live_name) = continued.and_then(|l| l.username.as_deref()) else {
            unsettled.push(login.clone());
            continue;
        };
        if r.username.as_deref() == Some(live_name) {
            // The loader's default is the live name: it already avoids written names.
            continue;
        }
        if written.holds(live_name) {
            unsettled.push(login.clone());
        } else {
            r.username = Some(live_name.to_owned());
        }
    }
    if unsettled.is_empty() {
        return;
    }
    // Free means held by no one, before or after this plan: not declared, not kept, and
    // no live representative's (a name never changes hands within one plan).
    let unsettled_set: BTreeSet<&str> = unsettled.iter().map(String::as_str).collect();
    let mut pool = UsernamePool::with_capacity(reps.len() + live.len());
    let settled = reps
        .iter()
        .filter(|(login, _)| !unsettled_set.contains(login.as_str()));
    for (_, r) in settled.chain(live.iter()) {
        if let Some(name) = r.username.as_deref() {
            pool.take(name);
        }
    }
    for login in &unsettled {
        let Some(r) = reps.get_mut(login) else {
            continue;
        };
        let name = match r.username.take() {
            Some(name) if !pool.holds(&name) => {
                pool.take(&name);
                name
            }
            _ => pool.claim(default_username(&r.first_name, &r.last_name, &r.login)),
        };
        r.username = Some(name);
    }
}

/// The live system holds a user name for one representative at a time (rule 2, `409
/// username-taken`). A name that this plan frees — its holder gets another one, or is
/// deleted — is written to its new holder last, after the change that frees it: a
/// create sends `username: null` and a later update sets it; an update leaves it to a
/// later one. Two representatives exchanging names (or a longer cycle) cannot be written in
/// any order and are refused here, before anything is written.
pub(super) fn defer(cx: &mut Cx) {
    let live = &cx.observed.org.representatives;
    let is_rep = |d: &Draft| d.change.id.kind == Kind::Representative;
    // Name (lower case) → the representative whose change frees it.
    let mut freed: HashMap<String, ObjectId> = HashMap::new();
    for d in cx.drafts.iter().filter(|d| is_rep(d)) {
        let Some(old) = d
            .live_key
            .as_ref()
            .and_then(|k| live.get(k))
            .and_then(|l| l.username.as_deref())
        else {
            continue;
        };
        let frees = d.change.action == Action::Delete
            || d.change
                .patch
                .as_ref()
                .is_some_and(|p| p.contains_key("username"));
        if frees {
            freed.insert(old.to_lowercase(), d.change.id.clone());
        }
    }
    if freed.is_empty() {
        return;
    }
    let taken = |d: &Draft| -> Option<String> {
        let fields = match d.change.action {
            Action::Create => d.change.after.as_ref()?.as_object()?,
            _ => d.change.patch.as_ref()?,
        };
        Some(fields.get("username")?.as_str()?.to_lowercase())
    };
    // Taker → (name, the representative freeing it).
    let mut takes: BTreeMap<ObjectId, (String, ObjectId)> = BTreeMap::new();
    for d in cx.drafts.iter() {
        if !is_rep(d) || d.change.action.is_removal() {
            continue;
        }
        if let Some(name) = taken(d) {
            if let Some(from) = freed.get(&name).filter(|from| **from != d.change.id) {
                takes.insert(d.change.id.clone(), (name, from.clone()));
            }
        }
    }
    // Levels: a taker whose name is freed by another taker's deferred change comes after
    // it, one level up. Each chain is walked once; a chain that closes on itself is a
    // cycle.
    let mut levels: HashMap<&ObjectId, u16> = HashMap::with_capacity(takes.len());
    let mut cycles: Vec<Vec<&ObjectId>> = vec![];
    for taker in takes.keys() {
        let mut path: Vec<&ObjectId> = vec![];
        let mut on_path: HashMap<&ObjectId, usize> = HashMap::new();
        let mut at = taker;
        let base = loop {
            if let Some(&l) = levels.get(at) {
                break l;
            }
            if let Some(&i) = on_path.get(at) {
                cycles.push(path[i..].to_vec());
                break 0;
            }
            on_path.insert(at, path.len());
            path.push(at);
            match takes.get(at) {
                Some((_, from)) if takes.contains_key(from) => at = from,
                _ => break 0,
            }
        };
        for (i, id) in path.iter().rev().enumerate() {
            levels.insert(id, base.saturating_add(i as u16 + 1));
        }
    }
    for cycle in &cycles {
        for (j, member) in cycle.iter().enumerate() {
            let order: Vec<&str> = cycle[j..]
                .iter()
                .chain(&cycle[..j])
                .map(|id| id.key.as_str())
                .collect();
            cx.errors.push(PlanError {
                rule: RuleCode::Duplicate,
                id: (*member).clone(),
                pointer: "/username".into(),
                message: format!(
                    "user name `{}` goes round in a cycle of representatives ({}): each \
                     holds the name the next one wants, and the live system holds a name \
                     for one representative at a time; nothing was written",
                    takes[*member].0,
                    order.join(" → ")
                ),
                help: "give one of them a name nobody holds in this plan, apply, then the \
                       name you want in the next plan"
                    .into(),
            });
        }
    }
    let level = |id: &ObjectId| levels.get(id).copied().unwrap_or(1);
    let mut extra = vec![];
    for d in cx.drafts.iter_mut() {
        let Some((name, from)) = takes.get(&d.change.id) else {
            continue;
        };
        let written = match d.change.action {
            // `null`, not absent: the console would otherwise propose a name of its own
            // for the time between.
            Action::Create => d
                .change
                .after
                .as_mut()
                .and_then(Value::as_object_mut)
                .and_then(|a| a.insert("username".into(), Value::Null)),
            _ => d.change.patch.as_mut().and_then(|p| p.remove("username")),
        };
        let Some(value) = written else { continue };
        let before = match d.change.fields.iter().position(|f| f.field == "username") {
            Some(i) => d.change.fields.remove(i).before.unwrap_or(Value::Null),
            None => Value::Null,
        };
        let fc = field_change("username", &before, &value);
        let reason = format!(
            "user name `{name}` is written once representative `{}` has given it up",
            from.key
        );
        let nothing_else = d.change.action == Action::Update
            && d.change.patch.as_ref().is_none_or(Map::is_empty)
            && d.change.set_password.is_none();
        if nothing_else {
            // The name was the only change: the whole update moves to the end.
            let mut patch = Map::new();
            patch.insert("username".into(), value);
            d.change.patch = Some(patch);
            d.change.fields = vec![fc];
            d.change.reason = reason;
            d.last = level(&d.change.id);
            d.hard_deps.push(from.clone());
            continue;
        }
        let mut later = d.follow_up(fc, value, reason, from.clone());
        later.last = level(&d.change.id);
        extra.push(later);
    }
    cx.drafts.extend(extra);
}
