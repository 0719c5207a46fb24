//! Ordering and dependencies of a plan's changes (DESIGN §3).
//!
//! Phases: portals → teams (parents first) → administrators → managers →
//! representatives → deferred team leaders → campaigns → contact groups; then the
//! removals in reverse (contact groups first, teams children first, portals last).
//! Within a phase, by key. The sort is stable and total, so a plan is deterministic.
//!
//! `depends_on` holds indices of earlier changes that must succeed first; apply runs
//! changes whose dependencies are done concurrently. A reference (a rep's team, a
//! campaign's members…) makes a dependency only on a change that brings the referenced
//! object into being under that key (create, rename, move, reactivate), or on an
//! ancestor team that carries it along; an update of a referenced object does not hold
//! anything back.

use std::collections::HashMap;

use super::diff::Draft;
use super::{Action, Change, ObjectId};
use crate::model::Kind;

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

pub(super) fn order(mut drafts: Vec<Draft>) -> Vec<Change> {
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
    let hard = |dep: &ObjectId, me: usize| -> Option<usize> {
        first.get(dep).copied().filter(|&j| j < me)
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
    let deps: Vec<Vec<usize>> = drafts
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
