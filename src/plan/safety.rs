//! Refusals and the removals they soften: every check of the draft changes, before
//! any write, that can stop a plan or turn a removal into a milder one.
//!
//! Owns: team deletions that would leave members behind (deactivated instead, and made
//! to wait for the changes that empty the team), deletions the live system would refuse
//! for a reference that stays, protection, licensed seats (rule 5), user names held by
//! undeclared representatives or handed round in a cycle, the removal threshold, and
//! rename conflicts (the diff asks while it collects renames).
//! Reads the drafts the diff built, the `Desired` and the `Observed` state on the run
//! ([`Cx`]); pushes [`Refusal`]s and warnings on it. A plan with any refusal is refused as
//! a whole (still made and shown, carrying them in `Plan::refusals`): nothing is silently
//! skipped. (Rule 6, a manager token's scope, is `scope.rs`'s.)

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::json;

use super::draft::{Cx, NameCycle, field_change, parent_of};
use super::effect::Effect;
use super::kinds::{Object, status_patch};
use super::{Action, Refusal, SeatUsage};
use crate::model::rules::RuleCode;
use crate::model::{Kind, ObjectId, Org};

/// How many removals a threshold error lists before "and N more".
const LISTED_REMOVALS: usize = 20;

/// Whether `key`'s `previously: old` is refused as a `rename-conflict` (the error is
/// pushed): `old` is declared too, both keys are live, or another declaration already
/// renames `old`. The diff records the renames that pass.
pub(super) fn rename_conflict<T: Object>(cx: &mut Cx, key: &str, old: &str) -> bool {
    let live = T::of(&cx.observed.org);
    let k = T::KIND;
    let (message, help) = if T::of(&cx.desired.org).contains_key(old) {
        (
            format!("`{key}` says `previously: {old}`, but `{old}` is declared too"),
            format!("remove the declaration of `{old}`, or drop `previously` from `{key}`"),
        )
    } else if !live.contains_key(old) {
        return false;
    } else if live.contains_key(key) {
        (
            format!("cannot rename {k} `{old}` to `{key}`: both exist in the live system"),
            format!("remove or rename the live {k} `{key}` first, or drop `previously: {old}`"),
        )
    } else if let Some(other) = cx.renames.by_old[k as usize].get(old) {
        (
            format!("`{key}` and `{other}` both say `previously: {old}`"),
            "keep `previously` on one of them only".into(),
        )
    } else {
        return false;
    };
    cx.error(
        RuleCode::RenameConflict,
        ObjectId::new(k, key),
        "/previously",
        message,
        help,
    );
    true
}

/// A declared team whose path the live team of that path leaves, carried along by its
/// renamed parent: refused, since the declaration would silently describe another team.
pub(super) fn carried_away(cx: &mut Cx, id: ObjectId, key: &str) {
    let new = cx.renames.team_path(key).into_owned();
    cx.error(
        RuleCode::RenameConflict,
        id,
        "",
        format!(
            "team `{key}` is declared, but the live team of that path moves to `{new}` with \
             its renamed parent"
        ),
        format!("declare it as `{new}`, or give it `previously: {key}` to keep it apart"),
    );
}

/// Deletions and the live objects that refer to the deleted one (a contact group shared
/// with a representative or manager, a campaign member, a team leader, a representative's
/// portal). A referrer this plan changes (drops the reference, or is removed itself) is
/// written first; one that no file declares and that stays would make the live system
/// refuse the deletion, so the plan is refused, naming it, rather than failing half-way
/// through apply.
pub(super) fn deleted_still_referenced(cx: &mut Cx) {
    let deleted: BTreeSet<ObjectId> = cx
        .drafts
        .iter()
        .filter(|d| d.change.action == Action::Delete)
        .map(|d| ObjectId::new(d.change.id.kind, d.live_key.as_deref().unwrap_or("")))
        .collect();
    if deleted.is_empty() {
        return;
    }
    let unmatched =
        |kind: Kind, key: &str| cx.unmatched[kind as usize].iter().any(|u| u.old_key == key);
    let org = &cx.observed.org;
    let mut errs = vec![];
    let mut hard: Vec<(usize, Vec<ObjectId>)> = vec![];
    for (i, d) in cx.drafts.iter().enumerate() {
        if d.change.action != Action::Delete {
            continue;
        }
        let Some(key) = d.live_key.as_deref() else {
            continue;
        };
        // (referrer, what refers)
        let mut refs: Vec<(ObjectId, &str)> = vec![];
        match d.change.id.kind {
            Kind::Representative | Kind::Manager => {
                for (g, group) in &org.contact_groups {
                    if group.shared_with.contains_key(key) {
                        refs.push((ObjectId::new(Kind::ContactGroup, g.as_str()), "shared_with"));
                    }
                }
                if d.change.id.kind == Kind::Representative {
                    for (c, campaign) in &org.campaigns {
                        if campaign.representatives.contains(key) {
                            refs.push((
                                ObjectId::new(Kind::Campaign, c.as_str()),
                                "representatives",
                            ));
                        }
                    }
                    for (p, team) in &org.teams {
                        if team.leader.as_deref() == Some(key) {
                            refs.push((ObjectId::new(Kind::Team, p.as_str()), "leader"));
                        }
                    }
                }
            }
            Kind::Portal => {
                for (r, rep) in &org.representatives {
                    if rep.portals.contains(key) {
                        refs.push((ObjectId::new(Kind::Representative, r.as_str()), "portals"));
                    }
                }
            }
            _ => {}
        }
        if refs.is_empty() {
            continue;
        }
        let staying: Vec<String> = refs
            .iter()
            .filter(|(id, _)| unmatched(id.kind, &id.key) && !deleted.contains(id))
            .map(|(id, what)| format!("{id} ({what})"))
            .collect();
        hard.push((i, refs.into_iter().map(|(id, _)| id).collect()));
        if staying.is_empty() {
            continue;
        }
        errs.push(Refusal {
            rule: RuleCode::UnresolvedReference,
            id: d.change.id.clone(),
            objects: vec![],
            pointer: String::new(),
            message: format!(
                "{} would be deleted, but live objects that no file declares still refer to \
                 it and would stay: {}; the live system refuses such a deletion",
                d.change.id,
                staying.join(", ")
            ),
            help: "declare those objects without the reference, or let the policy remove \
                   them too (`unmanaged: remove`), or keep this object"
                .into(),
        });
    }
    for (i, ids) in hard {
        cx.drafts[i].hard_deps.extend(ids);
    }
    cx.errors.extend(errs);
}

/// A team is deleted only when the plan leaves it without members and sub-teams;
/// otherwise it is deactivated, with a warning. A delete depends on the changes that
/// empty the team.
pub(super) fn team_deletes(cx: &mut Cx) {
    let deleting: BTreeSet<String> = cx
        .drafts
        .iter()
        .filter(|d| d.is(Kind::Team, Action::Delete))
        .map(|d| d.change.id.key.clone())
        .collect();
    if deleting.is_empty() {
        return;
    }
    let rep_removed: BTreeMap<&str, Action> = cx
        .drafts
        .iter()
        .filter(|d| d.change.id.kind == Kind::Representative)
        .map(|d| (d.change.id.key.as_str(), d.change.action))
        .collect();
    let mut occupied: BTreeSet<String> = BTreeSet::new();
    let mut leaving: BTreeMap<String, Vec<ObjectId>> = BTreeMap::new();
    // `who`'s change takes it out of `team` (the delete waits for it).
    let mut leave =
        |team: &str, who: ObjectId| leaving.entry(team.to_string()).or_default().push(who);
    // Members after the plan: declared reps' teams, and undeclared reps that stay.
    for r in cx.desired.org.representatives.values() {
        if let Some(t) = &r.team
            && deleting.contains(t)
        {
            occupied.insert(t.clone());
        }
    }
    for u in &cx.unmatched[Kind::Representative as usize] {
        let live = &cx.observed.org.representatives[&u.old_key];
        let Some(t) = &live.team else { continue };
        let t = cx.renames.team_path(t);
        if !deleting.contains(t.as_ref()) {
            continue;
        }
        if rep_removed.get(u.key.as_str()) == Some(&Action::Delete) {
            leave(&t, ObjectId::new(Kind::Representative, u.key.as_str()));
        } else {
            occupied.insert(t.into_owned());
        }
    }
    // Declared reps whose change takes them out of a team being deleted.
    for d in cx
        .drafts
        .iter()
        .filter(|d| d.change.id.kind == Kind::Representative)
    {
        let live_key = d.change.previously.as_deref().unwrap_or(&d.change.id.key);
        if let Some(live) = cx.observed.org.representatives.get(live_key)
            && let Some(t) = &live.team
        {
            let t = cx.renames.team_path(t);
            if deleting.contains(t.as_ref()) {
                leave(&t, d.change.id.clone());
            }
        }
    }
    // Sub-teams that stay.
    for t in cx.desired.org.teams.keys() {
        if let Some(p) = parent_of(t)
            && deleting.contains(p)
        {
            occupied.insert(p.to_string());
        }
    }
    for u in &cx.unmatched[Kind::Team as usize] {
        if let Some(p) = parent_of(&u.key)
            && deleting.contains(p)
        {
            if deleting.contains(&u.key) {
                leave(p, ObjectId::new(Kind::Team, u.key.as_str()));
            } else {
                occupied.insert(p.to_string());
            }
        }
    }
    let mut extra_warnings = vec![];
    cx.drafts.retain_mut(|d| {
        if !d.is(Kind::Team, Action::Delete) {
            return true;
        }
        let key = d.change.id.key.clone();
        if occupied.contains(&key) {
            let live_active = cx.observed.org.teams.get(&key).is_none_or(|t| t.active);
            extra_warnings.push(format!(
                "team/{key} keeps members or sub-teams after this plan, so it is \
                 deactivated instead of deleted; move them out to delete it"
            ));
            if !live_active {
                return false;
            }
            let patch = status_patch(Kind::Team, false);
            d.change.action = Action::Deactivate;
            d.change.fields = vec![field_change("active", &json!(true), &json!(false))];
            d.change.patch = Some(patch);
            d.change.reason =
                "not declared and `unmanaged: remove` (not empty, so not deleted)".into();
            d.removals = vec![format!("team/{key} is deactivated")];
        } else if let Some(deps) = leaving.get(&key) {
            d.hard_deps.extend(deps.iter().cloned());
        }
        true
    });
    cx.warnings.extend(extra_warnings);
}

/// Representatives handing a user name round in a cycle (`order::defer_usernames`):
/// each holds the name the next one wants, and the live system holds a name for one
/// representative at a time, so no order of writes works.
pub(super) fn username_cycles(cx: &mut Cx, cycles: &[NameCycle]) {
    for cycle in cycles {
        for (j, (member, name)) in cycle.iter().enumerate() {
            let order: Vec<&str> = cycle[j..]
                .iter()
                .chain(&cycle[..j])
                .map(|(id, _)| id.key.as_str())
                .collect();
            cx.errors.push(Refusal {
                rule: RuleCode::Duplicate,
                id: member.clone(),
                objects: vec![],
                pointer: "/username".into(),
                message: format!(
                    "user name `{name}` goes round in a cycle of representatives ({}): each \
                     holds the name the next one wants, and the live system holds a name \
                     for one representative at a time; nothing was written",
                    order.join(" → ")
                ),
                help: "give one of them a name nobody holds in this plan, apply, then the \
                       name you want in the next plan"
                    .into(),
            });
        }
    }
}

/// Protected objects are never deactivated or deleted; the plan is refused, naming them.
pub(super) fn protection(cx: &mut Cx) {
    let mut errs = vec![];
    for d in &cx.drafts {
        if !d.protected || !d.change.action.is_removal() {
            continue;
        }
        let verb = d.change.action.verb();
        let help = if d.lifting_protect {
            "the declaration lifts the protection (`protect: false`) in the same plan: apply \
             `protect: false` on its own first, then remove it in a later plan"
                .to_string()
        } else {
            format!(
                "keep it (declare it as it is), or declare it with `protect: false`, apply \
                 that, and {verb} it in a later plan"
            )
        };
        errs.push(Refusal {
            rule: RuleCode::Protected,
            id: d.change.id.clone(),
            objects: vec![],
            pointer: "/protect".into(),
            message: format!(
                "{} is protected (`protect: true`) and this plan would {verb} it",
                d.change.id
            ),
            help,
        });
    }
    cx.errors.extend(errs);
}

/// Rule 5: operators (active representatives with support management, seed 003) after
/// the plan never exceed the licensed seats; users without it are unlimited. Returns the
/// seat usage before and after, which every plan shows. The count before is the live
/// account's own (account-wide, so a manager token's partial view counts right), or the
/// operators read when the live system does not say; the count after adds what each
/// change of this plan does to a seat (a create, a reactivation, support management
/// turned on or off, a deactivation, a deletion). The check judges the plan as a whole,
/// as apply orders deactivations before activations; a plan that takes no new seat is
/// never refused, even on an account already over its seats.
pub(super) fn seats(cx: &mut Cx) -> SeatUsage {
    let seats = u64::from(cx.observed.account.seats);
    let before = cx
        .observed
        .account
        .operators
        .map(u64::from)
        .unwrap_or_else(|| cx.observed.org.operators() as u64);
    let (mut taken, mut freed) = (0u64, 0u64);
    let mut first_taker: Option<&ObjectId> = None;
    for d in cx
        .drafts
        .iter()
        .filter(|d| d.change.id.kind == Kind::Representative)
    {
        let live = d
            .live_key
            .as_deref()
            .and_then(|k| cx.observed.org.representatives.get(k));
        let had = live.is_some_and(|r| r.takes_seat());
        let has = match d.change.action {
            Action::Deactivate | Action::Delete => false,
            _ => cx
                .desired
                .org
                .representatives
                .get(d.change.id.key.as_str())
                .map_or(had, |r| r.takes_seat()),
        };
        match (had, has) {
            (false, true) => {
                taken += 1;
                if first_taker.is_none_or(|f| d.change.id < *f) {
                    first_taker = Some(&d.change.id);
                }
            }
            (true, false) => freed += 1,
            _ => {}
        }
    }
    let after = (before + taken).saturating_sub(freed);
    let usage = SeatUsage {
        operators_before: before,
        operators_after: after,
        seats,
    };
    if taken == 0 || after <= seats {
        return usage;
    }
    let culprit = first_taker
        .cloned()
        .unwrap_or_else(|| ObjectId::new(Kind::Representative, ""));
    let over = after - seats;
    cx.errors.push(Refusal {
        rule: RuleCode::Seats,
        id: culprit,
        objects: vec![],
        pointer: "/status".into(),
        message: format!(
            "after this plan {after} operators (active representatives with support \
             management) would hold seats ({before} now, {taken} taken, {freed} freed), but \
             the account has {seats} licensed seats (rule 5); nothing was written"
        ),
        help: format!(
            "set `status: inactive` or `support_management: false` on {over} \
             representative(s), or raise the account's licensed seats"
        ),
    });
    usage
}

/// A user name this plan gives a representative (on create, or by changing it) must not be
/// held by a live representative that no file declares and that stays: the console would
/// end up with two representatives of one user name. (Declared names are unique when
/// the declaration is loaded; default names avoid every live one, `settle_usernames`.)
pub(super) fn usernames(cx: &mut Cx) {
    let deleted = cx.keys_of(Kind::Representative, Action::Delete);
    let held: HashMap<String, &str> = cx.unmatched[Kind::Representative as usize]
        .iter()
        .filter(|u| !deleted.contains(u.key.as_str()))
        .filter_map(|u| {
            let live = cx.observed.org.representatives.get(&u.old_key)?;
            Some((live.username.as_deref()?.to_lowercase(), u.old_key.as_str()))
        })
        .collect();
    if held.is_empty() {
        return;
    }
    let mut errors = Vec::new();
    for (login, r) in &cx.desired.org.representatives {
        let Some(name) = r.username.as_deref().map(str::to_lowercase) else {
            continue;
        };
        let Some(holder) = held.get(&name) else {
            continue;
        };
        let live_key = cx
            .renames
            .old_of(Kind::Representative, login)
            .unwrap_or(login);
        let unchanged = cx
            .observed
            .org
            .representatives
            .get(live_key)
            .and_then(|l| l.username.as_deref())
            .is_some_and(|u| u.to_lowercase() == name);
        if unchanged {
            continue;
        }
        errors.push(Refusal {
            rule: RuleCode::Duplicate,
            id: ObjectId::new(Kind::Representative, login.as_str()),
            objects: vec![],
            pointer: "/username".into(),
            message: format!(
                "user name `{name}` is held by representative `{holder}` in the live system, \
                 which no file declares (user names are unique); nothing was written"
            ),
            help: format!(
                "give this representative another `username:`, or declare `{holder}` (or \
                 remove it) so that the plan accounts for it"
            ),
        });
    }
    cx.errors.extend(errors);
}

/// Rule 2 against the live system: a representative with `admin_center_access` whose
/// login is that of a live administrator or manager which no file declares and this plan
/// does not delete (`unmanaged: ignore` keeps it, with its login). The loader checks the
/// declared ones; the live system refuses the write (`422 login-collision`), so the plan
/// refuses it first.
pub(super) fn live_login_collisions(cx: &mut Cx) {
    let live = &cx.observed.org;
    let desired = &cx.desired.org;
    let mut errors = Vec::new();
    for (login, r) in &desired.representatives {
        if !r.login_is_exclusive() {
            continue;
        }
        let held = [
            (
                Kind::Administrator,
                live.administrators.contains_key(login)
                    && !desired.administrators.contains_key(login),
            ),
            (
                Kind::Manager,
                live.managers.contains_key(login) && !desired.managers.contains_key(login),
            ),
        ];
        for (kind, held) in held {
            if !held || cx.keys_of(kind, Action::Delete).contains(login.as_str()) {
                continue;
            }
            let whose = if kind == Kind::Administrator {
                "an administrator"
            } else {
                "a manager"
            };
            errors.push(Refusal {
                rule: RuleCode::LoginCollision,
                id: ObjectId::new(Kind::Representative, login.as_str()),
                objects: vec![ObjectId::new(kind, login.as_str())],
                pointer: "/features".into(),
                message: format!(
                    "`{login}` is also the login of {whose} in the live system, which no file \
                     declares, so this representative cannot have `admin_center_access`; \
                     nothing was written"
                ),
                help: format!(
                    "leave out `admin_center_access`, use another login, or remove the {} \
                     `{login}` from the live system",
                    kind.name()
                ),
            });
        }
    }
    cx.errors.extend(errors);
}

/// Removals over objects and relationships: above `count` AND `percent`% of what exists,
/// the plan stops unless `--force`. Each person losing a permission in effect through
/// another object's change (`effects`: a portal's feature, a campaign's teams…) counts
/// one removal too, named after the object that causes it.
pub(super) fn threshold(cx: &mut Cx, effects: &[Effect]) {
    let indirect: Vec<(ObjectId, String)> = effects
        .iter()
        .filter(|e| e.is_indirect_loss())
        .flat_map(|e| {
            let id = e
                .because
                .first()
                .cloned()
                .unwrap_or_else(|| ObjectId::new(e.kind, e.people[0].as_str()));
            // Only as many as the message may list: each effect's people are in order,
            // so its first ones are the ones sorting first (`n` counts them all).
            e.people
                .iter()
                .take(LISTED_REMOVALS)
                .map(move |p| (id.clone(), format!("{} of {p} (in effect)", e.what)))
        })
        .collect();
    let unlisted: usize = effects
        .iter()
        .filter(|e| e.is_indirect_loss())
        .map(|e| e.people.len().saturating_sub(LISTED_REMOVALS))
        .sum();
    let removals: Vec<(&ObjectId, &str)> = cx
        .drafts
        .iter()
        .flat_map(|d| d.removals.iter().map(move |r| (&d.change.id, r.as_str())))
        .chain(indirect.iter().map(|(o, r)| (o, r.as_str())))
        .collect();
    let n = removals.len() + unlisted;
    let t = cx.desired.policy.removal_threshold;
    if cx.opts.force || n as u64 <= t.count as u64 {
        return;
    }
    let existing = cx.observed.org.len() + relationships(&cx.observed.org);
    if (n as u64) * 100 <= (t.percent as u64) * (existing as u64) {
        return;
    }
    let mut sorted = removals.clone();
    sorted.sort();
    let listed: Vec<String> = sorted
        .iter()
        .take(LISTED_REMOVALS)
        .map(|(_, r)| format!("  - {r}"))
        .collect();
    let more = n.saturating_sub(LISTED_REMOVALS);
    let pct = if existing == 0 {
        100.0
    } else {
        n as f64 * 100.0 / existing as f64
    };
    let id = sorted[0].0.clone();
    let mut objects: Vec<ObjectId> = sorted.iter().map(|(o, _)| (*o).clone()).collect();
    objects.dedup();
    cx.errors.push(Refusal {
        rule: RuleCode::RemovalThreshold,
        id,
        objects,
        pointer: String::new(),
        message: format!(
            "this plan removes {n} objects and relationships ({pct:.0}% of the {existing} \
             that exist), more than the threshold (more than {} and more than {}%):\n{}{}",
            t.count,
            t.percent,
            listed.join("\n"),
            if more > 0 {
                format!("\n  … and {more} more")
            } else {
                String::new()
            }
        ),
        help: "check the declaration (a missing file, an emptied list?); if these removals \
               are intended, re-run with `--force`, or raise `policy.removal_threshold`"
            .into(),
    });
}

/// How the number of relationships of a live object counts toward "what exists".
fn relationships(org: &Org) -> usize {
    let reps: usize = org
        .representatives
        .values()
        .map(|r| r.team.is_some() as usize + r.features.len() + r.portals.len())
        .sum();
    let managers: usize = org
        .managers
        .values()
        .map(|m| m.teams.len() + m.team_rights.len() + m.grantable.len())
        .sum();
    let campaigns: usize = org
        .campaigns
        .values()
        .map(|c| c.representatives.len() + c.teams.len())
        .sum();
    let groups: usize = org
        .contact_groups
        .values()
        .map(|g| g.shared_with.len())
        .sum();
    let portals: usize = org.portals.values().map(|p| p.features.len()).sum();
    reps + managers + campaigns + groups + portals
}
