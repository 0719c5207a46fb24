//! Safety checks over draft changes, before any write: protection, licensed seats
//! (rule 5), a manager token's scope (rule 6) and the removal threshold.
//!
//! Inputs are the drafts `diff` built and the `Observed` state; outputs are
//! [`PlanError`](super::PlanError)s pushed on the diff context. A plan with any error is
//! refused as a whole: nothing is silently skipped.

use std::collections::{BTreeSet, HashMap};

use super::diff::{Cx, relationships};
use super::{Action, Change, PlanError};
use crate::model::rules::RuleCode;
use crate::model::{
    Campaign, ContactGroup, Feature, Kind, Manager, ObjectId, Observed, Principal, Representative,
    Status, Team, TeamRight,
};

/// How many removals a threshold error lists before "and N more".
const LISTED_REMOVALS: usize = 20;

/// What a manager token may touch: its teams and their sub-teams, its rights.
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

/// One rule-6 problem on a declared object (turned into an `escalation` error).
#[derive(Debug, Clone)]
pub(super) struct ScopeIssue {
    pub pointer: String,
    pub message: String,
    pub help: String,
}

impl Scope {
    /// `None` for an administrator (or unknown) principal.
    pub fn from_observed(o: &Observed) -> Result<Option<Scope>, PlanError> {
        let Some(Principal::Manager { login }) = &o.principal else {
            return Ok(None);
        };
        let login = login.to_lowercase();
        match o.org.managers.get(&login) {
            Some(m) => {
                let mut s = Scope {
                    login: login.clone(),
                    teams: m.teams.clone(),
                    rights: m.team_rights.clone(),
                    grantable: m.grantable.clone(),
                    reps: BTreeSet::new(),
                    managers: [login].into(),
                };
                s.add_people(&o.org);
                Ok(Some(s))
            }
            None => Err(PlanError {
                rule: RuleCode::Escalation,
                id: ObjectId::new(Kind::Manager, login.as_str()),
                pointer: String::new(),
                message: format!(
                    "the token acts as manager {login}, who is not among the live managers, \
                     so the scope of this plan cannot be worked out"
                ),
                help: "use a token of an existing manager, or an administrator token".into(),
            }),
        }
    }

    /// Adds the representatives and managers of `org` that sit in scope (the live ones,
    /// then the declared ones: a representative created in scope is in scope).
    pub fn add_people(&mut self, org: &crate::model::Org) {
        let reps: Vec<String> = org
            .representatives
            .values()
            .filter(|r| r.team.as_deref().is_some_and(|t| self.team(t)))
            .map(|r| r.login.clone())
            .collect();
        self.reps.extend(reps);
        let managers: Vec<String> = org
            .managers
            .values()
            .filter(|m| !m.teams.is_empty() && m.teams.iter().all(|t| self.team(t)))
            .map(|m| m.login.clone())
            .collect();
        self.managers.extend(managers);
    }

    /// Strictly below one of the manager's teams: what it may create, move or delete.
    pub fn strictly_below(&self, path: &str) -> bool {
        path.rfind('/').is_some_and(|i| self.team(&path[..i]))
    }

    fn lacks(&self, right: TeamRight, what: &str, pointer: &str) -> Option<ScopeIssue> {
        (!self.rights.contains(&right)).then(|| ScopeIssue {
            pointer: pointer.into(),
            message: format!(
                "manager {} lacks the team right `{}` needed to {what} (rule 6)",
                self.login,
                right.id()
            ),
            help: format!(
                "apply this change with an administrator token, or ask an administrator to \
                 grant `{}`",
                right.id()
            ),
        })
    }

    /// Whether a team path is one of the manager's teams or below one of them.
    pub fn team(&self, path: &str) -> bool {
        let mut end = path.len();
        loop {
            if self.teams.contains(&path[..end]) {
                return true;
            }
            match path[..end].rfind('/') {
                Some(i) => end = i,
                None => return false,
            }
        }
    }

    fn teams_list(&self) -> String {
        if self.teams.is_empty() {
            "none".into()
        } else {
            self.teams.iter().cloned().collect::<Vec<_>>().join(", ")
        }
    }

    fn outside(&self, what: &str, pointer: &str) -> ScopeIssue {
        ScopeIssue {
            pointer: pointer.into(),
            message: format!(
                "{what}, outside the teams of manager {} ({}) (rule 6)",
                self.login,
                self.teams_list()
            ),
            help: "apply this change with an administrator token, or leave it out of what \
                   this manager applies"
                .into(),
        }
    }
}

/// Portals and administrators are account-level: a manager token changes none.
pub(super) fn scope_account_level(c: &Change, s: &Scope) -> Vec<ScopeIssue> {
    vec![ScopeIssue {
        pointer: String::new(),
        message: format!(
            "manager {} cannot {} {}: {}s are account-level (rule 6)",
            s.login,
            c.action.verb(),
            c.id,
            c.id.kind
        ),
        help: format!(
            "apply `{}` with an administrator token, or declare it exactly as it is live",
            c.id.kind.section()
        ),
    }]
}

pub(super) fn scope_team(d: &Team, live: Option<&Team>, c: &Change, s: &Scope) -> Vec<ScopeIssue> {
    let mut v = vec![];
    if !s.team(&d.path) {
        v.push(s.outside(
            &format!("team {} would {}", d.path, action_target(c.action)),
            "",
        ));
    }
    if let Some(old) = c.previously.as_deref().or(live.map(|l| l.path.as_str()))
        && !s.team(old)
    {
        v.push(s.outside(&format!("team {old} is"), "/previously"));
    }
    // Creating, renaming, moving or deleting one of its own teams is refused: only
    // teams strictly below them.
    if matches!(
        c.action,
        Action::Create | Action::Rename | Action::Move | Action::Delete
    ) {
        for p in [Some(d.path.as_str()), c.previously.as_deref()]
            .into_iter()
            .flatten()
        {
            if s.team(p) && !s.strictly_below(p) {
                v.push(s.outside(
                    &format!(
                        "team {p} is one of the manager's own teams and would {}; a manager \
                         creates, moves or deletes only teams below its own",
                        action_target(c.action)
                    ),
                    "",
                ));
            }
        }
    }
    v.extend(s.lacks(
        TeamRight::ManageSubteams,
        &format!("change team {}", d.path),
        "",
    ));
    v
}

fn action_target(a: Action) -> &'static str {
    match a {
        Action::Create => "be created",
        Action::Update => "change",
        Action::Rename => "be renamed",
        Action::Move => "move",
        Action::Deactivate => "be deactivated",
        Action::Reactivate => "be reactivated",
        Action::Delete => "be deleted",
    }
}

pub(super) fn scope_representative(
    d: &Representative,
    live: Option<&Representative>,
    c: &Change,
    s: &Scope,
) -> Vec<ScopeIssue> {
    let mut v = vec![];
    match &d.team {
        Some(t) if s.team(t) => {}
        Some(t) => v.push(s.outside(
            &format!("representative {} would be in team {t}", d.login),
            "/team",
        )),
        None => v.push(s.outside(
            &format!("representative {} would be in no team", d.login),
            "/team",
        )),
    }
    if let Some(l) = live {
        match &l.team {
            Some(t) if s.team(t) => {}
            Some(t) => v.push(s.outside(
                &format!("representative {} is live in team {t}", l.login),
                "/team",
            )),
            None => v.push(s.outside(
                &format!("representative {} is live in no team", l.login),
                "/team",
            )),
        }
    }
    // Features granted or revoked must be in the manager's `grantable`.
    let touched: BTreeSet<Feature> = match live {
        None => d.features.clone(),
        Some(l) => d
            .features
            .symmetric_difference(&l.features)
            .copied()
            .collect(),
    };
    let mut denied: Vec<Feature> = touched
        .into_iter()
        .filter(|f| !s.grantable.contains(f))
        .collect();
    let ms_touched = match live {
        None => d.multisession > 1,
        Some(l) => d.multisession != l.multisession,
    };
    if ms_touched && !s.grantable.contains(&Feature::Multisession) {
        denied.push(Feature::Multisession);
    }
    match (c.action, live) {
        (Action::Create, _) => {
            v.extend(s.lacks(
                TeamRight::ManageRepresentatives,
                &format!("add representative {}", d.login),
                "",
            ));
        }
        (Action::Delete, _) => {
            v.extend(s.lacks(
                TeamRight::ManageRepresentatives,
                &format!("delete representative {}", d.login),
                "",
            ));
        }
        (_, Some(l)) => {
            let renamed = c.previously.is_some();
            for (field, changed) in [
                ("/login", renamed),
                ("/first_name", d.first_name != l.first_name),
                ("/last_name", d.last_name != l.last_name),
                ("/username", d.username != l.username),
            ] {
                if changed {
                    v.extend(s.lacks(
                        TeamRight::EditRepNameLogin,
                        &format!("change the name or login of representative {}", d.login),
                        field,
                    ));
                    break;
                }
            }
        }
        _ => {}
    }
    if c.set_password.is_some() {
        v.extend(s.lacks(
            TeamRight::EditRepPassword,
            &format!("set the password of representative {}", d.login),
            "/password",
        ));
    }
    if !denied.is_empty() {
        let names: Vec<&str> = denied.iter().map(|f| f.id()).collect();
        v.push(ScopeIssue {
            pointer: if denied == [Feature::Multisession] {
                "/multisession".into()
            } else {
                "/features".into()
            },
            message: format!(
                "manager {} may not grant or revoke {} on {} (not in its `grantable`) (rule 6)",
                s.login,
                names.join(", "),
                c.id
            ),
            help: format!(
                "leave these features as they are live, or apply with an administrator \
                 token; grantable: {}",
                s.grantable
                    .iter()
                    .map(|f| f.id())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
    v
}

pub(super) fn scope_manager(
    d: &Manager,
    live: Option<&Manager>,
    c: &Change,
    s: &Scope,
) -> Vec<ScopeIssue> {
    let mut v = vec![];
    // The live system asks for `manage_managers` on every manager write, the token's own
    // manager included.
    if !s.rights.contains(&TeamRight::ManageManagers) {
        v.push(ScopeIssue {
            pointer: String::new(),
            message: format!(
                "manager {} cannot {} manager {} without the `manage_managers` right (rule 6)",
                s.login,
                c.action.verb(),
                d.login
            ),
            help: "ask an administrator to grant `manage_managers`, or apply managers with \
                   an administrator token"
                .into(),
        });
    }
    let outside: Vec<&str> = d
        .teams
        .iter()
        .filter(|t| !s.team(t))
        .map(String::as_str)
        .collect();
    if !outside.is_empty() {
        v.push(s.outside(
            &format!("manager {} would manage {}", d.login, outside.join(", ")),
            "/teams",
        ));
    }
    if d.teams.is_empty() && d.login != s.login && c.action != Action::Delete {
        v.push(s.outside(&format!("manager {} would have no team", d.login), "/teams"));
    }
    if let Some(l) = live
        && l.login != s.login
        && (l.teams.is_empty() || !l.teams.iter().all(|t| s.team(t)))
    {
        v.push(s.outside(&format!("manager {} is live", l.login), ""));
    }
    let extra_rights: Vec<&str> = d
        .team_rights
        .iter()
        .filter(|r| !s.rights.contains(r))
        .map(|r| r.id())
        .collect();
    if !extra_rights.is_empty() {
        v.push(ScopeIssue {
            pointer: "/team_rights".into(),
            message: format!(
                "manager {} would hold {} that manager {} does not hold (rule 6)",
                d.login,
                extra_rights.join(", "),
                s.login
            ),
            help: "a manager may give at most its own rights; remove them".into(),
        });
    }
    let extra_grantable: Vec<&str> = d
        .grantable
        .iter()
        .filter(|f| !s.grantable.contains(f))
        .map(|f| f.id())
        .collect();
    if !extra_grantable.is_empty() {
        v.push(ScopeIssue {
            pointer: "/grantable".into(),
            message: format!(
                "manager {} would be able to grant {}, which manager {} cannot (rule 6)",
                d.login,
                extra_grantable.join(", "),
                s.login
            ),
            help: "a manager may pass on at most its own `grantable`; remove them".into(),
        });
    }
    v
}

pub(super) fn scope_campaign(
    d: &Campaign,
    live: Option<&Campaign>,
    _: &Change,
    s: &Scope,
) -> Vec<ScopeIssue> {
    let mut v = vec![];
    for (c, verb) in [(Some(d), "would select"), (live, "selects")] {
        let Some(c) = c else { continue };
        let teams: Vec<&str> = c
            .teams
            .iter()
            .filter(|t| !s.team(t))
            .map(String::as_str)
            .collect();
        if !teams.is_empty() {
            v.push(s.outside(
                &format!("campaign {} {verb} team {}", c.name, teams.join(", ")),
                "/teams",
            ));
        }
        let reps: Vec<&str> = c
            .representatives
            .iter()
            .filter(|r| !s.reps.contains(r.as_str()))
            .map(String::as_str)
            .collect();
        if !reps.is_empty() {
            v.push(s.outside(
                &format!(
                    "campaign {} {verb} representative {}",
                    c.name,
                    reps.join(", ")
                ),
                "/representatives",
            ));
        }
    }
    v
}

/// A contact group is written only when everyone it is shared with (before and after)
/// is in scope.
pub(super) fn scope_contact_group(
    d: &ContactGroup,
    live: Option<&ContactGroup>,
    _: &Change,
    s: &Scope,
) -> Vec<ScopeIssue> {
    let mut v = vec![];
    for (g, verb) in [(Some(d), "would be shared with"), (live, "is shared with")] {
        let Some(g) = g else { continue };
        let outside: Vec<&str> = g
            .shared_with
            .keys()
            .filter(|l| !s.reps.contains(l.as_str()) && !s.managers.contains(l.as_str()))
            .map(String::as_str)
            .collect();
        if !outside.is_empty() {
            v.push(s.outside(
                &format!("contact group {} {verb} {}", g.name, outside.join(", ")),
                "/shared_with",
            ));
        }
    }
    v
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
        errs.push(PlanError {
            rule: RuleCode::Protected,
            id: d.change.id.clone(),
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

/// Rule 5: active representatives after the plan never exceed the licensed seats.
pub(super) fn seats(cx: &mut Cx) {
    let seats = cx.observed.account.seats as usize;
    let declared = cx.desired.org.active_representatives();
    if declared <= seats && cx.unmatched[Kind::Representative as usize].is_empty() {
        return;
    }
    let removed: BTreeSet<&str> = cx
        .drafts
        .iter()
        .filter(|d| d.change.id.kind == Kind::Representative && d.change.action.is_removal())
        .map(|d| d.change.id.key.as_str())
        .collect();
    let staying = cx.unmatched[Kind::Representative as usize]
        .iter()
        .filter(|u| {
            cx.observed.org.representatives[&u.old_key].status == Status::Active
                && !removed.contains(u.key.as_str())
        })
        .count();
    let active = declared + staying;
    if active <= seats {
        return;
    }
    // Name the first representative this plan activates; else the first declared active.
    let culprit = cx
        .drafts
        .iter()
        .filter(|d| {
            d.change.id.kind == Kind::Representative
                && matches!(d.change.action, Action::Create | Action::Reactivate)
        })
        .map(|d| d.change.id.clone())
        .min()
        .or_else(|| {
            cx.desired
                .org
                .representatives
                .values()
                .find(|r| r.status == Status::Active)
                .map(|r| ObjectId::new(Kind::Representative, r.login.as_str()))
        })
        .unwrap_or_else(|| ObjectId::new(Kind::Representative, ""));
    let over = active - seats;
    cx.errors.push(PlanError {
        rule: RuleCode::Seats,
        id: culprit,
        pointer: "/status".into(),
        message: format!(
            "after this plan {active} representatives would be active ({declared} declared, \
             {staying} undeclared that stay), but the account has {seats} licensed seats \
             (rule 5); nothing was written"
        ),
        help: format!(
            "set `status: inactive` on {over} representative(s), or raise the account's \
             licensed seats"
        ),
    });
}

/// A user name this plan gives a representative (on create, or by changing it) must not be
/// held by a live representative that no file declares and that stays: the console would
/// end up with two representatives of one user name. (Declared names are unique when
/// the declaration is loaded; default names avoid every live one, `settle_usernames`.)
pub(super) fn usernames(cx: &mut Cx) {
    let deleted: BTreeSet<&str> = cx
        .drafts
        .iter()
        .filter(|d| d.change.id.kind == Kind::Representative && d.change.action == Action::Delete)
        .map(|d| d.change.id.key.as_str())
        .collect();
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
        errors.push(PlanError {
            rule: RuleCode::Duplicate,
            id: ObjectId::new(Kind::Representative, login.as_str()),
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

/// Removals over objects and relationships: above `count` AND `percent`% of what exists,
/// the plan stops unless `--force`.
pub(super) fn threshold(cx: &mut Cx) {
    let removals: Vec<(&ObjectId, &str)> = cx
        .drafts
        .iter()
        .flat_map(|d| d.removals.iter().map(move |r| (&d.change.id, r.as_str())))
        .collect();
    let n = removals.len();
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
    cx.errors.push(PlanError {
        rule: RuleCode::RemovalThreshold,
        id,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_covers_sub_teams_by_path_prefix_only() {
        let s = Scope {
            login: "m@x.example".into(),
            teams: ["Europe/Paris".to_string()].into(),
            rights: BTreeSet::new(),
            grantable: BTreeSet::new(),
            reps: BTreeSet::new(),
            managers: BTreeSet::new(),
        };
        assert!(s.strictly_below("Europe/Paris/North"));
        assert!(!s.strictly_below("Europe/Paris"));
        assert!(s.team("Europe/Paris"));
        assert!(s.team("Europe/Paris/North"));
        assert!(!s.team("Europe"));
        assert!(!s.team("Europe/Parisians"));
        assert!(!s.team("Asia"));
    }
}
