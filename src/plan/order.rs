//! Ordering and dependencies of a plan's changes (DESIGN §3).
//!
//! Phases: portals → teams (parents first) → administrators → managers →
//! representatives → deferred team leaders → campaigns → contact groups; then the
//! removals in reverse (contact groups first, teams children first, portals last); last,
//! user names that a change before frees (`usernames::defer`).
//! Within a phase, by key. The sort is stable and total, so a plan is deterministic.
//!
//! `depends_on` holds indices of earlier changes that must succeed first; apply runs
//! changes whose dependencies are done concurrently. A reference (a rep's team, a
//! campaign's members…) makes a dependency only on a change that brings the referenced
//! object into being under that key (create, rename, move, reactivate), or on an
//! ancestor team that carries it along; an update of a referenced object does not hold
//! anything back.
//!
//! Renames cascade in the live system: every object that refers to a renamed key is
//! rewritten (one more `version` each), and a renamed team's sub-teams move with it
//! (`server::engine`). [`cascade`] mirrors that so apply's `If-Match` is right: a change
//! of such an object after the rename depends on it and expects the bumped version; a
//! change before it makes the rename wait; a sub-team's own later move names the path it
//! will have by then.

use std::collections::HashMap;

use super::diff::Draft;
use super::{Action, Change, ObjectId};
use crate::model::{Kind, Org};

fn rank(kind: Kind) -> u16 {
    match kind {
        Kind::Portal => 0,
        Kind::Team => 2,
        Kind::Administrator => 4,
        Kind::Manager => 6,
        Kind::Representative => 8,
        Kind::Campaign => 10,
        Kind::ContactGroup => 12,
    }
}

/// The phase of a draft: forward writes by kind, then removals in reverse.
fn phase(d: &Draft) -> u16 {
    if d.last > 0 {
        return 200u16.saturating_add(d.last);
    }
    if d.deferred {
        return rank(Kind::Representative) + 1;
    }
    let r = rank(d.change.id.kind);
    if d.change.action.is_removal() {
        100 + (12 - r)
    } else {
        r
    }
}

/// Teams: parents before children going forward, children first when removing.
fn depth_key(d: &Draft) -> isize {
    if d.change.id.kind != Kind::Team {
        return 0;
    }
    let depth = d.change.id.key.matches('/').count() as isize;
    if d.change.action.is_removal() {
        -depth
    } else {
        depth
    }
}

pub(super) fn order(mut drafts: Vec<Draft>, live: &Org) -> Vec<Change> {
    drafts.sort_by(|a, b| {
        (phase(a), depth_key(a), &a.change.id.key).cmp(&(phase(b), depth_key(b), &b.change.id.key))
    });
    // The first (main) change of every object.
    let mut first: HashMap<&ObjectId, usize> = HashMap::with_capacity(drafts.len());
    for (i, d) in drafts.iter().enumerate() {
        first.entry(&d.change.id).or_insert(i);
    }
    let creates = |j: usize| {
        matches!(
            drafts[j].change.action,
            Action::Create | Action::Rename | Action::Move | Action::Reactivate
        )
    };
    // The later changes (deferred leaders, user names written last) of the objects that
    // have some, in order: a hard dependency waits for the latest change of that object
    // before this one, not only its first (a name freed by a deferred change is free
    // only after it).
    let mut all: HashMap<&ObjectId, Vec<usize>> = HashMap::new();
    for (i, d) in drafts.iter().enumerate() {
        if d.last > 0 || d.deferred {
            all.entry(&d.change.id).or_default().push(i);
        }
    }
    let hard = |dep: &ObjectId, me: usize| -> Option<usize> {
        let latest = all
            .get(dep)
            .and_then(|v| v.iter().rev().copied().find(|&j| j < me));
        let first = first.get(dep).copied().filter(|&j| j < me);
        latest.max(first)
    };
    let resolve = |dep: &ObjectId, me: usize| -> Option<usize> {
        if let Some(&j) = first.get(dep)
            && j < me
            && creates(j)
        {
            return Some(j);
        }
        // A team that is not itself created, renamed or moved: wait for the nearest
        // ancestor that is (its sub-teams come with it).
        if dep.kind == Kind::Team {
            let mut path = dep.key.as_str();
            while let Some((parent, _)) = path.rsplit_once('/') {
                path = parent;
                let id = ObjectId::new(Kind::Team, parent);
                if let Some(&j) = first.get(&id)
                    && j < me
                    && matches!(
                        drafts[j].change.action,
                        Action::Create | Action::Rename | Action::Move
                    )
                {
                    return Some(j);
                }
            }
        }
        None
    };
    let mut deps: Vec<Vec<usize>> = drafts
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let mut v: Vec<usize> = d
                .deps
                .iter()
                .filter_map(|dep| resolve(dep, i))
                .chain(d.hard_deps.iter().filter_map(|dep| hard(dep, i)))
                .filter(|&j| j != i)
                .collect();
            v.sort_unstable();
            v.dedup();
            v
        })
        .collect();
    drop(first);
    drop(all);
    cascade(&mut drafts, &mut deps, live);
    drafts
        .into_iter()
        .zip(deps)
        .map(|(d, deps)| {
            let mut c = d.change;
            c.depends_on = deps;
            c
        })
        .collect()
}

/// Who refers to what in the live organization, built only when the plan renames.
#[derive(Default)]
struct Referrers<'a> {
    reps_by_team: HashMap<&'a str, Vec<&'a str>>,
    reps_by_portal: HashMap<&'a str, Vec<&'a str>>,
    managers_by_team: HashMap<&'a str, Vec<&'a str>>,
    campaigns_by_team: HashMap<&'a str, Vec<&'a str>>,
    campaigns_by_rep: HashMap<&'a str, Vec<&'a str>>,
    groups_by_login: HashMap<&'a str, Vec<&'a str>>,
    teams_by_leader: HashMap<&'a str, Vec<&'a str>>,
}

impl<'a> Referrers<'a> {
    fn of(org: &'a Org) -> Self {
        let mut r = Referrers::default();
        for (k, rep) in &org.representatives {
            if let Some(t) = &rep.team {
                r.reps_by_team.entry(t).or_default().push(k);
            }
            for p in &rep.portals {
                r.reps_by_portal.entry(p).or_default().push(k);
            }
        }
        for (k, m) in &org.managers {
            for t in &m.teams {
                r.managers_by_team.entry(t).or_default().push(k);
            }
        }
        for (k, c) in &org.campaigns {
            for t in &c.teams {
                r.campaigns_by_team.entry(t).or_default().push(k);
            }
            for l in &c.representatives {
                r.campaigns_by_rep.entry(l).or_default().push(k);
            }
        }
        for (k, g) in &org.contact_groups {
            for l in g.shared_with.keys() {
                r.groups_by_login.entry(l).or_default().push(k);
            }
        }
        for (k, t) in &org.teams {
            if let Some(l) = &t.leader {
                r.teams_by_leader.entry(l).or_default().push(k);
            }
        }
        r
    }

    /// The live objects a rename of `(kind, old)` rewrites, one entry per rewrite.
    fn rewritten(&self, org: &'a Org, kind: Kind, old: &'a str) -> Vec<(Kind, &'a str)> {
        let get = |m: &HashMap<&'a str, Vec<&'a str>>, k: &str| -> Vec<&'a str> {
            m.get(k).cloned().unwrap_or_default()
        };
        let mut out = vec![];
        let mut push = |k: Kind, keys: Vec<&'a str>| out.extend(keys.into_iter().map(|x| (k, x)));
        match kind {
            Kind::Representative => {
                push(Kind::Team, get(&self.teams_by_leader, old));
                push(Kind::Campaign, get(&self.campaigns_by_rep, old));
                push(Kind::ContactGroup, get(&self.groups_by_login, old));
            }
            Kind::Manager => push(Kind::ContactGroup, get(&self.groups_by_login, old)),
            Kind::Portal => push(Kind::Representative, get(&self.reps_by_portal, old)),
            Kind::Team => {
                let prefix = format!("{old}/");
                // Every descendant path starts with `old/`: one contiguous key range.
                let subs: Vec<&'a str> = org
                    .teams
                    .range::<str, _>((
                        std::ops::Bound::Included(prefix.as_str()),
                        std::ops::Bound::Unbounded,
                    ))
                    .map(|(k, _)| k.as_str())
                    .take_while(|k| k.starts_with(&prefix))
                    .collect();
                push(Kind::Team, subs.clone());
                for t in std::iter::once(old).chain(subs) {
                    push(Kind::Representative, get(&self.reps_by_team, t));
                    push(Kind::Manager, get(&self.managers_by_team, t));
                    push(Kind::Campaign, get(&self.campaigns_by_team, t));
                }
            }
            Kind::Administrator | Kind::Campaign | Kind::ContactGroup => {}
        }
        out
    }
}

/// Adjusts versions, dependencies and rename sources for the live system's rename
/// cascade (see the module docs).
fn cascade(drafts: &mut [Draft], deps: &mut [Vec<usize>], live: &Org) {
    let renames: Vec<usize> = (0..drafts.len())
        .filter(|&i| {
            let c = &drafts[i].change;
            matches!(c.action, Action::Rename | Action::Move)
                && c.previously.is_some()
                && drafts[i].live_key.is_some()
        })
        .collect();
    if renames.is_empty() {
        return;
    }
    let refs = Referrers::of(live);
    let mut by_live: HashMap<(Kind, String), Vec<usize>> = HashMap::new();
    for (i, d) in drafts.iter().enumerate() {
        if let Some(k) = &d.live_key {
            by_live
                .entry((d.change.id.kind, k.clone()))
                .or_default()
                .push(i);
        }
    }
    for r in renames {
        let kind = drafts[r].change.id.kind;
        let old = drafts[r].live_key.clone().unwrap_or_default();
        // The key the renamed object has when its own write runs (an ancestor's
        // rename may have moved it already), and the key it gets.
        let from = drafts[r].change.previously.clone().unwrap_or_default();
        let to = drafts[r].change.id.key.clone();
        for (k, key) in refs.rewritten(live, kind, &old) {
            let Some(changes) = by_live.get(&(k, key.to_string())) else {
                continue;
            };
            for &c in changes {
                if c == r {
                    continue;
                }
                if c < r {
                    deps[r].push(c);
                    continue;
                }
                deps[c].push(r);
                if let Some(v) = &mut drafts[c].change.version {
                    *v += 1;
                }
                // A sub-team with its own rename: by then it sits under the new path.
                if k == Kind::Team
                    && let Some(prev) = &mut drafts[c].change.previously
                    && let Some(rest) = prev.strip_prefix(&format!("{from}/"))
                {
                    *prev = format!("{to}/{rest}");
                }
            }
        }
    }
    for d in deps.iter_mut() {
        d.sort_unstable();
        d.dedup();
    }
}
