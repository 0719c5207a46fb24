//! "Who gains or loses what": the effective permissions a plan changes, person by
//! person, including those caused by a change to another object (a portal's features, a
//! team's status, a campaign's teams, a contact group's shares), grouped so that one
//! portal change reaching 400 representatives is one [`Effect`].
//!
//! Built on the model's effective-permission core (`model::access`): the access of the
//! live organization (as the token sees it) and of the organization the plan converges
//! to (the live one with every changed object as the declaration has it) are computed
//! for the people whose inputs the plan changes only — the representatives it changes
//! and those on a portal, within a team, in a campaign or shared a contact group it
//! changes, and the managers — then compared. Linear in the organization's size, pure.
//!
//! Only whole plans get this section: a partial plan (`--target`) leaves it out.

use std::collections::{BTreeMap, BTreeSet};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Action, Change, GroupShare};
use crate::model::access::{Access, ManagerAccess, RepAccess, is_within, team_and_ancestors};
use crate::model::{Desired, Kind, Login, ObjectId, Observed, Org, Permission, Status, catalog};

/// Whether the people gain, lose or keep with another level.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum EffectChange {
    Loses,
    Gains,
    /// A contact-group permission or a number of sessions that changes.
    Changes,
}

impl EffectChange {
    pub fn verb(self, plural: bool) -> &'static str {
        match (self, plural) {
            (EffectChange::Loses, true) => "lose",
            (EffectChange::Loses, false) => "loses",
            (EffectChange::Gains, true) => "gain",
            (EffectChange::Gains, false) => "gains",
            (EffectChange::Changes, true) => "change",
            (EffectChange::Changes, false) => "changes",
        }
    }
}

/// One effective permission that changes the same way for a group of people, for the
/// same reasons.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Effect {
    pub change: EffectChange,
    /// `feature file_transfer_send`, `portal web-support`, `campaign Spring`,
    /// `contact group VIP (view → manage)`, `team right edit_team on Europe`,
    /// `grantable chat`, `sessions 2 → 4`.
    pub what: String,
    /// `representative` or `manager`.
    pub kind: Kind,
    /// Every person concerned, in login order.
    pub people: Vec<Login>,
    /// The changed objects other than the people themselves that cause it (a portal, a
    /// team, a campaign, a contact group).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub because: Vec<ObjectId>,
    /// Whether the people's own objects change too (then their own change may be the
    /// cause, and the removal threshold counts it already).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub own: bool,
}

impl Effect {
    /// A loss caused only by other objects: the removal threshold counts each person.
    pub fn is_indirect_loss(&self) -> bool {
        self.change == EffectChange::Loses && !self.own
    }
}

/// The objects the plan changes, by kind, under their keys before and after.
#[derive(Default)]
struct Touched {
    keys: BTreeMap<Kind, BTreeSet<String>>,
}

impl Touched {
    fn has(&self, kind: Kind, key: &str) -> bool {
        self.keys.get(&kind).is_some_and(|s| s.contains(key))
    }
    fn of(&self, kind: Kind) -> impl Iterator<Item = &String> {
        self.keys.get(&kind).into_iter().flatten()
    }
}

/// Every effect of `changes` (the whole plan's, ordered) on `observed`, grouped. A
/// person's contact-group gains or losses that one of `shares` covers are one effect per
/// share (`view on all 12 contact groups (contact_group_shares)`), not one per group.
pub(super) fn effects(
    desired: &Desired,
    observed: &Observed,
    changes: &[&Change],
    shares: &[GroupShare],
) -> Vec<Effect> {
    if changes.is_empty() {
        return vec![];
    }
    let mut touched = Touched::default();
    for c in changes {
        let set = touched.keys.entry(c.id.kind).or_default();
        set.insert(c.id.key.clone());
        if let Some(p) = &c.previously {
            set.insert(p.clone());
        }
    }
    let after_full = converged(desired, observed, changes, &touched);
    let before_full = &observed.org;

    // The representatives whose inputs change, in either organization.
    let team_touched = |team: &Option<String>| {
        team.as_deref()
            .is_some_and(|t| team_and_ancestors(t).any(|a| touched.has(Kind::Team, a)))
    };
    let mut affected: BTreeSet<&str> = BTreeSet::new();
    // The teams the changed campaigns select, before or after: an untouched
    // representative in a team a campaign starts or stops selecting is affected.
    let mut selected: BTreeSet<&str> = BTreeSet::new();
    for org in [before_full, &after_full] {
        for c in touched.of(Kind::Campaign) {
            if let Some(c) = org.campaigns.get(c) {
                affected.extend(c.representatives.iter().map(String::as_str));
                selected.extend(c.teams.iter().map(String::as_str));
            }
        }
        for g in touched.of(Kind::ContactGroup) {
            if let Some(g) = org.contact_groups.get(g) {
                affected.extend(g.shared_with.keys().map(String::as_str));
            }
        }
    }
    // One pass over the representatives, each checking its team and ancestors (never
    // representatives × campaigns).
    for org in [before_full, &after_full] {
        for (login, r) in &org.representatives {
            if touched.has(Kind::Representative, login)
                || r.portals.iter().any(|p| touched.has(Kind::Portal, p))
                || team_touched(&r.team)
                || r.team.as_deref().is_some_and(|t| {
                    !selected.is_empty() && team_and_ancestors(t).any(|a| selected.contains(a))
                })
            {
                affected.insert(login);
            }
        }
    }
    // Only the affected representatives are copied: the after side holds the changed
    // ones, the untouched ones are the live ones.
    let cut = |org: &Org, after: bool| Org {
        representatives: affected
            .iter()
            .filter_map(|l| {
                let r = org.representatives.get(*l);
                let r = if after && !touched.has(Kind::Representative, l) {
                    r.or_else(|| before_full.representatives.get(*l))
                } else {
                    r
                };
                r.map(|r| (l.to_string(), r.clone()))
            })
            .collect(),
        ..org_without_reps(org)
    };
    let (before, after) = rayon::join(
        || Access::of(&cut(before_full, false)),
        || Access::of(&cut(&after_full, true)),
    );

    let mut groups: BTreeMap<GroupKey, Vec<Login>> = BTreeMap::new();
    let mut add = |login: &str, kind: Kind, items: Vec<Item>| {
        let own = touched.has(kind, login);
        let mut folded: BTreeSet<usize> = BTreeSet::new();
        for it in items {
            if let Some((g, p)) = &it.group
                && let Some(i) = shares.iter().position(|s| {
                    s.login == login
                        && s.permission == *p
                        && s.change == it.change
                        && s.groups.contains(g)
                })
            {
                folded.insert(i);
                continue;
            }
            let because: Vec<ObjectId> = it.because.into_iter().collect();
            groups
                .entry((it.change, it.what, kind, because, own))
                .or_default()
                .push(login.to_string());
        }
        for i in folded {
            let s = &shares[i];
            let why = if s.declared {
                "contact_group_shares"
            } else {
                "not in contact_group_shares"
            };
            groups
                .entry((
                    s.change,
                    format!("{} ({why})", s.scope()),
                    kind,
                    vec![],
                    own,
                ))
                .or_default()
                .push(login.to_string());
        }
    };
    let logins: BTreeSet<&String> = before
        .representatives
        .keys()
        .chain(after.representatives.keys())
        .collect();
    for login in logins {
        let b = before.representatives.get(login);
        let a = after.representatives.get(login);
        add(login, Kind::Representative, rep_items(b, a, &touched));
    }
    let logins: BTreeSet<&String> = before
        .managers
        .keys()
        .chain(after.managers.keys())
        .collect();
    for login in logins {
        let items = manager_items(
            before.managers.get(login),
            after.managers.get(login),
            &touched,
        );
        add(login, Kind::Manager, items);
    }
    let mut out: Vec<Effect> = groups
        .into_iter()
        .map(|((change, what, kind, because, own), people)| Effect {
            change,
            what,
            kind,
            people,
            because,
            own,
        })
        .collect();
    // The widest first, then losses before gains.
    out.sort_by(|x, y| {
        (y.people.len(), x.change, &x.what).cmp(&(x.people.len(), y.change, &y.what))
    });
    out
}

fn org_without_reps(org: &Org) -> Org {
    Org {
        portals: org.portals.clone(),
        teams: org.teams.clone(),
        administrators: org.administrators.clone(),
        managers: org.managers.clone(),
        representatives: BTreeMap::new(),
        campaigns: org.campaigns.clone(),
        contact_groups: org.contact_groups.clone(),
    }
}

/// The organization once the plan is applied: the live one, with each changed object
/// as declared (renamed objects under their new key), deleted ones gone and deactivated
/// undeclared ones inactive; the references of untouched objects to a renamed or moved
/// team follow it (the live system carries them along). Of the representatives, only
/// the changed ones and those whose team moves are here: every other is as live.
fn converged(
    desired: &Desired,
    observed: &Observed,
    changes: &[&Change],
    touched: &Touched,
) -> Org {
    let live = &observed.org;
    let d = &desired.org;
    let mut org = org_without_reps(live);
    let mut reps = BTreeMap::new();
    let mut team_moves: Vec<(String, String)> = vec![];
    for c in changes {
        let key = &c.id.key;
        if let Some(p) = &c.previously
            && p != key
        {
            match c.id.kind {
                Kind::Portal => {
                    org.portals.remove(p);
                }
                Kind::Team => {
                    team_moves.push((p.clone(), key.clone()));
                    org.teams.remove(p);
                }
                Kind::Manager => {
                    org.managers.remove(p);
                }
                Kind::Campaign => {
                    org.campaigns.remove(p);
                }
                Kind::ContactGroup => {
                    org.contact_groups.remove(p);
                }
                Kind::Representative | Kind::Administrator | Kind::Account => {}
            }
        }
        let delete = c.action == Action::Delete;
        macro_rules! put {
            ($field:ident, $set:expr) => {{
                if delete {
                    org.$field.remove(key);
                } else if let Some(x) = d.$field.get(key) {
                    org.$field.insert(key.clone(), x.clone());
                } else if c.action == Action::Deactivate
                    && let Some(x) = live.$field.get(c.previously.as_ref().unwrap_or(key))
                {
                    let mut x = x.clone();
                    #[allow(clippy::redundant_closure_call)]
                    ($set)(&mut x);
                    org.$field.insert(key.clone(), x);
                }
            }};
        }
        match c.id.kind {
            Kind::Portal => put!(portals, |_: &mut _| {}),
            Kind::Team => put!(teams, |t: &mut crate::model::Team| t.active = false),
            Kind::Administrator => put!(administrators, |_: &mut _| {}),
            Kind::Manager => put!(managers, |_: &mut _| {}),
            Kind::Campaign => put!(campaigns, |x: &mut crate::model::Campaign| x.active = false),
            Kind::ContactGroup => put!(contact_groups, |_: &mut _| {}),
            Kind::Account => {}
            Kind::Representative => {
                if delete {
                    reps.insert(key.clone(), None);
                } else if let Some(r) = d.representatives.get(key) {
                    reps.insert(key.clone(), Some(r.clone()));
                } else if let Some(r) = live
                    .representatives
                    .get(c.previously.as_ref().unwrap_or(key))
                {
                    let mut r = r.clone();
                    if c.action == Action::Deactivate {
                        r.status = Status::Inactive;
                    }
                    reps.insert(key.clone(), Some(r));
                }
                if let Some(p) = &c.previously
                    && p != key
                {
                    reps.insert(p.clone(), None);
                }
            }
        }
    }
    let moved = |t: &str| -> Option<String> {
        team_moves
            .iter()
            .find_map(|(from, to)| is_within(t, from).then(|| format!("{to}{}", &t[from.len()..])))
    };
    // Untouched representatives are the live ones (the caller falls back to them), but
    // for those whose team is renamed or moved.
    let mut all = BTreeMap::new();
    if !team_moves.is_empty() {
        for (login, r) in &live.representatives {
            if touched.has(Kind::Representative, login) {
                continue;
            }
            if let Some(t) = r.team.as_deref().and_then(moved) {
                let mut r = r.clone();
                r.team = Some(t);
                all.insert(login.clone(), r);
            }
        }
    }
    for (login, r) in reps {
        if let Some(r) = r {
            all.insert(login, r);
        }
    }
    if !team_moves.is_empty() {
        for (login, m) in org.managers.iter_mut() {
            if !touched.has(Kind::Manager, login) {
                m.teams = m
                    .teams
                    .iter()
                    .map(|t| moved(t).unwrap_or(t.clone()))
                    .collect();
            }
        }
        for (name, c) in org.campaigns.iter_mut() {
            if !touched.has(Kind::Campaign, name) {
                c.teams = c
                    .teams
                    .iter()
                    .map(|t| moved(t).unwrap_or(t.clone()))
                    .collect();
            }
        }
    }
    org.representatives = all;
    org
}

/// What groups people into one effect: change, what, kind, because, own.
type GroupKey = (EffectChange, String, Kind, Vec<ObjectId>, bool);

struct Item {
    change: EffectChange,
    what: String,
    because: BTreeSet<ObjectId>,
    /// A contact group's share gained or lost: the group and the permission (a
    /// [`GroupShare`] may cover it).
    group: Option<(String, Permission)>,
}

fn perm(p: Permission) -> &'static str {
    match p {
        Permission::View => "view",
        Permission::Connect => "connect",
        Permission::Manage => "manage",
    }
}

/// Gained and lost elements of two sets, each as an item.
fn set_items<T: Ord + Clone>(
    before: &BTreeSet<T>,
    after: &BTreeSet<T>,
    what: impl Fn(&T) -> String,
    because: impl Fn(&T) -> BTreeSet<ObjectId>,
    out: &mut Vec<Item>,
) {
    for x in before.difference(after) {
        out.push(Item {
            change: EffectChange::Loses,
            what: what(x),
            because: because(x),
            group: None,
        });
    }
    for x in after.difference(before) {
        out.push(Item {
            change: EffectChange::Gains,
            what: what(x),
            because: because(x),
            group: None,
        });
    }
}

fn groups_items(
    before: Option<&BTreeMap<String, Permission>>,
    after: Option<&BTreeMap<String, Permission>>,
    touched: &Touched,
    out: &mut Vec<Item>,
) {
    let none = BTreeMap::new();
    let (b, a) = (before.unwrap_or(&none), after.unwrap_or(&none));
    let because = |g: &str| {
        let mut s = BTreeSet::new();
        if touched.has(Kind::ContactGroup, g) {
            s.insert(ObjectId::new(Kind::ContactGroup, g));
        }
        s
    };
    for (g, p) in b {
        match a.get(g) {
            None => out.push(Item {
                change: EffectChange::Loses,
                what: format!("contact group {g} ({})", perm(*p)),
                because: because(g),
                group: Some((g.clone(), *p)),
            }),
            Some(q) if q != p => out.push(Item {
                change: EffectChange::Changes,
                what: format!("contact group {g} ({} → {})", perm(*p), perm(*q)),
                because: because(g),
                group: None,
            }),
            Some(_) => {}
        }
    }
    for (g, q) in a {
        if !b.contains_key(g) {
            out.push(Item {
                change: EffectChange::Gains,
                what: format!("contact group {g} ({})", perm(*q)),
                because: because(g),
                group: Some((g.clone(), *q)),
            });
        }
    }
}

fn rep_items(b: Option<&RepAccess>, a: Option<&RepAccess>, touched: &Touched) -> Vec<Item> {
    let mut out = vec![];
    if b == a {
        return out;
    }
    let empty = crate::model::SortedSet::new();
    let portals: BTreeSet<&String> = b
        .map(|r| &r.portals)
        .unwrap_or(&empty)
        .iter()
        .chain(a.map(|r| &r.portals).unwrap_or(&empty))
        .filter(|p| touched.has(Kind::Portal, p))
        .collect();
    let teams: BTreeSet<&String> = b
        .map(|r| &r.within)
        .into_iter()
        .chain(a.map(|r| &r.within))
        .flatten()
        .filter(|t| touched.has(Kind::Team, t))
        .collect();
    let via_portals = |f: &crate::model::Feature| {
        if catalog::is_portal_feature(*f) || *f == crate::model::Feature::Multisession {
            portals
                .iter()
                .map(|p| ObjectId::new(Kind::Portal, p.as_str()))
                .collect()
        } else {
            BTreeSet::new()
        }
    };
    let ef = BTreeSet::new();
    set_items(
        b.map(|r| &r.features).unwrap_or(&ef),
        a.map(|r| &r.features).unwrap_or(&ef),
        |f| format!("feature {f}"),
        via_portals,
        &mut out,
    );
    if let (Some(b), Some(a)) = (b, a)
        && b.multisession > 1
        && a.multisession > 1
        && b.multisession != a.multisession
    {
        out.push(Item {
            change: EffectChange::Changes,
            what: format!("sessions {} → {}", b.multisession, a.multisession),
            because: via_portals(&crate::model::Feature::Multisession),
            group: None,
        });
    }
    let active = |r: Option<&RepAccess>| -> BTreeSet<String> {
        r.filter(|r| r.is_active())
            .map(|r| r.portals.iter().cloned().collect())
            .unwrap_or_default()
    };
    set_items(
        &active(b),
        &active(a),
        |p| format!("portal {p}"),
        |p| {
            let mut s = BTreeSet::new();
            if touched.has(Kind::Portal, p) {
                s.insert(ObjectId::new(Kind::Portal, p.as_str()));
            }
            s
        },
        &mut out,
    );
    let camps = |r: Option<&RepAccess>| -> BTreeSet<String> {
        r.map(|r| r.campaigns.keys().cloned().collect())
            .unwrap_or_default()
    };
    set_items(
        &camps(b),
        &camps(a),
        |c| format!("campaign {c}"),
        |c| {
            let mut s: BTreeSet<ObjectId> = teams
                .iter()
                .map(|t| ObjectId::new(Kind::Team, t.as_str()))
                .collect();
            if touched.has(Kind::Campaign, c) {
                s.insert(ObjectId::new(Kind::Campaign, c.as_str()));
            }
            s
        },
        &mut out,
    );
    groups_items(
        b.map(|r| &r.contact_groups),
        a.map(|r| &r.contact_groups),
        touched,
        &mut out,
    );
    out
}

fn manager_items(
    b: Option<&ManagerAccess>,
    a: Option<&ManagerAccess>,
    touched: &Touched,
) -> Vec<Item> {
    let mut out = vec![];
    if b == a {
        return out;
    }
    let pairs = |m: Option<&ManagerAccess>| -> BTreeSet<(String, String)> {
        m.map(|m| {
            m.covers
                .iter()
                .flat_map(|t| {
                    m.team_rights
                        .iter()
                        .map(move |r| (r.to_string(), t.clone()))
                })
                .collect()
        })
        .unwrap_or_default()
    };
    set_items(
        &pairs(b),
        &pairs(a),
        |(r, t)| format!("team right {r} on {t}"),
        |(_, t)| {
            team_and_ancestors(t)
                .filter(|x| touched.has(Kind::Team, x))
                .map(|x| ObjectId::new(Kind::Team, x))
                .collect()
        },
        &mut out,
    );
    let empty = BTreeSet::new();
    set_items(
        b.map(|m| &m.may_grant).unwrap_or(&empty),
        a.map(|m| &m.may_grant).unwrap_or(&empty),
        |f| format!("grantable {f}"),
        |_| BTreeSet::new(),
        &mut out,
    );
    groups_items(
        b.map(|m| &m.contact_groups),
        a.map(|m| &m.contact_groups),
        touched,
        &mut out,
    );
    out
}
