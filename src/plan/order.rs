//! Deferrals, ordering and dependencies of a plan's changes (DESIGN §3).
//!
//! Owns every change that must wait for another one: a team's leader written after the
//! representative it names ([`defer_leaders`]), a representative moving out of a team it
//! leads after that team's leader changes ([`release_leaders`]), a user name written after the change
//! that frees it ([`defer_usernames`]), then the sort into phases and `depends_on`
//! ([`order`]). Reads the drafts on the run ([`Cx`]) after the diff and the safety
//! checks that reshape removals; hands `make` the ordered drafts (their changes with
//! `depends_on`), which targeting (`target.rs`) may cut down before the last checks.
//!
//! Phases: portals → teams (parents first) → administrators → managers →
//! representatives → deferred team leaders → campaigns → contact groups; then the
//! removals in reverse (contact groups first, teams children first, portals last); last,
//! user names that a change before frees ([`defer_usernames`]).
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

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Map, Value, json};

use super::draft::{Cx, Draft, NameCycle, field_change};
use super::{Action, ObjectId};
use crate::model::{Kind, Org};

/// A team whose new leader is a representative this plan creates, renames or moves in:
/// the team is written without the leader, and the leader set after the representative.
pub(super) fn defer_leaders(cx: &mut Cx) {
    let moving: BTreeSet<String> = cx
        .drafts
        .iter()
        .filter(|d| {
            d.change.id.kind == Kind::Representative
                && matches!(
                    d.change.action,
                    Action::Create | Action::Rename | Action::Move | Action::Reactivate
                )
        })
        .map(|d| d.change.id.key.clone())
        .collect();
    if moving.is_empty() {
        return;
    }
    let mut extra = vec![];
    for d in &mut cx.drafts {
        if d.change.id.kind != Kind::Team || d.change.action.is_removal() || d.deferred {
            continue;
        }
        let Some(team) = cx.desired.org.teams.get(&d.change.id.key) else {
            continue;
        };
        let Some(leader) = &team.leader else { continue };
        if !moving.contains(leader) {
            continue;
        }
        let rep = ObjectId::new(Kind::Representative, leader.as_str());
        let leader_fc;
        if d.change.action == Action::Create {
            if let Some(Value::Object(after)) = &mut d.change.after {
                after.remove("leader");
            }
            leader_fc = field_change("leader", &Value::Null, &json!(leader));
        } else {
            let Some(i) = d.change.fields.iter().position(|f| f.field == "leader") else {
                continue;
            };
            let path = d.change.id.key.as_str();
            // The live leader leaves the team in this plan: the team lets go of it
            // first (leader null, which `release_leaders` puts before the move) and
            // takes the new one once that one is written.
            let leaving = d
                .live_key
                .as_ref()
                .and_then(|k| cx.observed.org.teams.get(k))
                .and_then(|t| t.leader.as_deref())
                .filter(|l| {
                    cx.desired.org.representatives.get(*l).is_none_or(|r| {
                        let to = r.team.as_deref().unwrap_or_default();
                        to != path && !to.starts_with(&format!("{path}/"))
                    })
                })
                .map(str::to_string);
            if let Some(live_leader) = leaving {
                leader_fc = field_change("leader", &Value::Null, &json!(leader));
                d.change.fields[i] = field_change("leader", &json!(live_leader), &Value::Null);
                if let Some(p) = &mut d.change.patch {
                    p.insert("leader".into(), Value::Null);
                }
            } else {
                leader_fc = d.change.fields.remove(i);
                if let Some(p) = &mut d.change.patch {
                    p.remove("leader");
                }
            }
            let empty = d.change.patch.as_ref().is_none_or(Map::is_empty)
                && d.change.set_password.is_none()
                && d.change.action == Action::Update;
            if empty {
                // The leader was the only change: move it after the representative.
                let mut p = Map::new();
                p.insert("leader".into(), json!(leader));
                d.change.patch = Some(p);
                d.change.fields = vec![leader_fc];
                d.change.reason = format!("leader {leader} is written after the representative");
                d.deferred = true;
                d.hard_deps.push(rep);
                continue;
            }
        }
        let mut later = d.follow_up(
            leader_fc,
            json!(leader),
            format!("leader {leader} is set once the representative is written"),
            rep,
        );
        later.deferred = true;
        extra.push(later);
    }
    cx.drafts.extend(extra);
}

/// A representative that moves out of a team it leads live waits for the change of
/// that team's leader: the live system refuses to move a team's leader out of the team
/// (`409`, "change the team's leader first"), and apply runs changes without a
/// dependency at the same time, so the teams phase alone does not put the leader change
/// first.
pub(super) fn release_leaders(cx: &mut Cx) {
    let live = &cx.observed.org;
    let mut led: HashMap<&str, Vec<&str>> = HashMap::new();
    for (path, t) in &live.teams {
        if let Some(l) = &t.leader {
            led.entry(l.as_str()).or_default().push(path.as_str());
        }
    }
    if led.is_empty() {
        return;
    }
    let releasing: BTreeSet<String> = cx
        .drafts
        .iter()
        .filter(|d| {
            d.change.id.kind == Kind::Team
                && !d.change.action.is_removal()
                && d.change.fields.iter().any(|f| f.field == "leader")
        })
        .map(|d| d.change.id.key.clone())
        .collect();
    for d in &mut cx.drafts {
        if d.change.id.kind != Kind::Representative || d.change.action.is_removal() {
            continue;
        }
        let live_key = d.live_key.as_deref().unwrap_or(&d.change.id.key);
        let Some(teams) = led.get(live_key) else {
            continue;
        };
        let Some(rep) = cx.desired.org.representatives.get(&d.change.id.key) else {
            continue;
        };
        let to = rep.team.as_deref().unwrap_or_default();
        for &team in teams {
            let stays = to == team || to.starts_with(&format!("{team}/"));
            if !stays && releasing.contains(team) {
                d.hard_deps.push(ObjectId::new(Kind::Team, team));
            }
        }
    }
}

/// The live system holds a user name for one representative at a time (rule 2, `409
/// username-taken`). A name that this plan frees — its holder gets another one, or is
/// deleted — is written to its new holder last, after the change that frees it: a
/// create sends `username: null` and a later update sets it; an update leaves it to a
/// later one. Two representatives exchanging names (or a longer cycle) cannot be written in
/// any order are returned, for `safety::username_cycles` to refuse before anything is written.
pub(super) fn defer_usernames(cx: &mut Cx) -> Vec<NameCycle> {
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
        return vec![];
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
    let cycles: Vec<NameCycle> = cycles
        .iter()
        .map(|c| {
            c.iter()
                .map(|id| ((*id).clone(), takes[*id].0.clone()))
                .collect()
        })
        .collect();
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
    cycles
}

fn rank(kind: Kind) -> u16 {
    match kind {
        Kind::Portal => 0,
        Kind::Team => 2,
        Kind::Administrator => 4,
        Kind::Manager => 6,
        Kind::Representative => 8,
        Kind::Campaign => 10,
        Kind::ContactGroup => 12,
        Kind::Account => 0,
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

/// The drafts sorted into phases, each with its `change.depends_on` filled in (indices
/// into the returned order, always earlier ones).
pub(super) fn order(mut drafts: Vec<Draft>, live: &Org) -> Vec<Draft> {
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
        .map(|(mut d, deps)| {
            d.change.depends_on = deps;
            d
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
            Kind::Administrator | Kind::Campaign | Kind::ContactGroup | Kind::Account => {}
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
