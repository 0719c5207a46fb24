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
//!
//! Reads the live representatives (`Observed`) and writes the declaration's names in
//! place: `make` calls it before the diff, which then compares names as settled here.
//! When a name still changes hands, `order::defer_usernames` orders its writes.

use std::collections::BTreeSet;

use super::join::Walk;
use crate::model::usernames::{UsernamePool, default_username};
use crate::model::{Desired, Login, Observed, Principal};

/// Keeps the live user name of every representative without a declared one and makes
/// the names of the others unique against them. `make` calls it before the diff.
pub(super) fn settle_usernames(desired: &mut Desired, observed: &Observed) {
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
