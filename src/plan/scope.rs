//! Rule 6: what a manager token may touch, and every change it may not make.
//!
//! Owns the behaviour of [`Scope`] (its data sits in `draft.rs`, carried by the run):
//! working it out from the live manager the token acts as and the declaration
//! ([`work_out`]), and the [`Scoped`] trait, each kind's test of whether the scope
//! covers an object and its `escalation` issues for one change. The diff asks here which
//! objects the token cannot see or must leave alone (they go to `out_of_scope`), and
//! [`check`]s each change it drafts; the issues become [`Refusal`]s on the run. With an
//! administrator token there is no scope and nothing here applies.

use std::collections::BTreeSet;

use super::draft::{Cx, Scope};
use super::kinds::Object;
use super::{Action, Change, Refusal};
use crate::model::rights::{self, Group, GroupWrite, RepWrite};
use crate::model::rules::RuleCode;
use crate::model::{
    Administrator, Campaign, ContactGroup, Feature, Kind, Manager, ObjectId, Observed, Org, Portal,
    Principal, Representative, Status, Team, TeamRight,
};

/// One rule-6 problem on a declared object (turned into an `escalation` error).
#[derive(Debug, Clone)]
pub(super) struct ScopeIssue {
    pub pointer: String,
    pub message: String,
    pub help: String,
}

/// Sets the run's scope when the token acts as a manager, or refuses the plan when that
/// manager is not live (the scope cannot be known).
pub(super) fn work_out(cx: &mut Cx) {
    match Scope::from_observed(cx.observed) {
        Ok(s) => {
            cx.scope = s.map(|mut s| {
                s.add_people(&cx.desired.org);
                s
            })
        }
        Err(e) => cx.errors.push(*e),
    }
}

/// A manager token can neither read (403) nor change administrators: the diff reports
/// every declared or live one out of scope instead of comparing them.
pub(super) fn unreadable(cx: &Cx, kind: Kind) -> bool {
    kind == Kind::Administrator && cx.scope.is_some()
}

/// A declared object with no live namesake that the token could not have seen: it may
/// well exist, so it is reported, never created. (Portals are all visible: a missing one
/// is a create, which [`check`] judges. A campaign or contact group is hidden from a
/// manager token when it sees none of its members: one declared with a member out of
/// scope may exist.)
pub(super) fn unseen<T: Scoped>(cx: &Cx, declared: &T) -> bool {
    T::KIND != Kind::Portal && outside(cx, declared)
}

/// A live object outside the token's reach.
pub(super) fn outside<T: Scoped>(cx: &Cx, live: &T) -> bool {
    cx.scope.as_ref().is_some_and(|s| !live.in_scope(s))
}

/// An undeclared live object never touched: outside the token's reach, or the token's
/// own manager.
pub(super) fn untouchable<T: Scoped>(cx: &Cx, key: &str, live: &T) -> bool {
    cx.scope
        .as_ref()
        .is_some_and(|s| !live.in_scope(s) || (T::KIND == Kind::Manager && key == s.login))
}

/// Every rule-6 issue of one change becomes an `escalation` error (none without a scope).
pub(super) fn check<T: Scoped>(cx: &mut Cx, obj: &T, live: Option<&T>, change: &Change) {
    let Some(scope) = &cx.scope else { return };
    for i in obj.scope_issues(live, change, scope) {
        cx.errors.push(Refusal {
            rule: RuleCode::Escalation,
            id: change.id.clone(),
            objects: vec![],
            pointer: i.pointer,
            message: i.message,
            help: i.help,
        });
    }
}

/// What a kind tells rule 6. Portals and administrators are account-level: never in
/// scope, and any change of one is refused.
pub(super) trait Scoped: Object {
    /// Whether a manager token's scope covers the object.
    fn in_scope(&self, _scope: &Scope) -> bool {
        false
    }
    /// The declared object as the token can compare it with `live` (as it reads it), when
    /// that differs from the declaration: campaigns and contact groups drop the declared
    /// members out of scope when they are as many as the live ones hidden from the token
    /// (the live system keeps those; the token cannot tell them apart). Otherwise the
    /// declaration is compared as it is, and a member out of scope is refused.
    fn project(&self, _live: &Self, _scope: &Scope) -> Option<Self> {
        None
    }
    /// What the token may not do in `change` of this object (`live`: as it is now,
    /// references renamed as this plan renames them).
    fn scope_issues(
        &self,
        _live: Option<&Self>,
        change: &Change,
        scope: &Scope,
    ) -> Vec<ScopeIssue> {
        account_level(change, scope)
    }
}

impl Scoped for Portal {}

impl Scoped for Administrator {}

impl Scope {
    /// `None` for an administrator (or unknown) principal.
    fn from_observed(o: &Observed) -> Result<Option<Scope>, Box<Refusal>> {
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
            None => Err(Box::new(Refusal {
                rule: RuleCode::Escalation,
                id: ObjectId::new(Kind::Manager, login.as_str()),
                objects: vec![],
                pointer: String::new(),
                message: format!(
                    "the token acts as manager {login}, who is not among the live managers, \
                     so the scope of this plan cannot be worked out"
                ),
                help: "use a token of an existing manager, or an administrator token".into(),
            })),
        }
    }

    /// Adds the representatives and managers of `org` that sit in scope (the live ones,
    /// then the declared ones: a representative created in scope is in scope).
    fn add_people(&mut self, org: &Org) {
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
    pub(super) fn strictly_below(&self, path: &str) -> bool {
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
    pub(super) fn team(&self, path: &str) -> bool {
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

    /// The issue when any of `names` is not `inside`: `what` words it, given them joined.
    fn outside_any<'n>(
        &self,
        names: impl IntoIterator<Item = &'n String>,
        inside: impl Fn(&str) -> bool,
        what: impl FnOnce(String) -> String,
        pointer: &str,
    ) -> Option<ScopeIssue> {
        let out: Vec<&str> = names
            .into_iter()
            .map(String::as_str)
            .filter(|n| !inside(n))
            .collect();
        (!out.is_empty()).then(|| self.outside(&what(out.join(", ")), pointer))
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
fn account_level(c: &Change, s: &Scope) -> Vec<ScopeIssue> {
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

impl Scoped for Team {
    fn in_scope(&self, s: &Scope) -> bool {
        s.team(&self.path)
    }
    fn scope_issues(&self, live: Option<&Self>, c: &Change, s: &Scope) -> Vec<ScopeIssue> {
        let d = self;
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
            rights::TEAM_WRITE_RIGHT,
            &format!("change team {}", d.path),
            "",
        ));
        v
    }
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

impl Scoped for Representative {
    fn in_scope(&self, s: &Scope) -> bool {
        self.team.as_deref().is_some_and(|t| s.team(t))
    }
    fn scope_issues(&self, live: Option<&Self>, c: &Change, s: &Scope) -> Vec<ScopeIssue> {
        let d = self;
        let mut v = vec![];
        for (r, verb) in declared_and_live(d, live, "would be in", "is live in") {
            let team = match &r.team {
                Some(t) if s.team(t) => continue,
                Some(t) => format!("team {t}"),
                None => "no team".to_string(),
            };
            v.push(s.outside(
                &format!("representative {} {verb} {team}", r.login),
                "/team",
            ));
        }
        // Features granted or revoked must be in the manager's `grantable`: the rule of
        // `model::rights`, as the server checks it.
        let denied = rights::ungranted(live, d, &s.grantable);
        // The rights the write needs: `model::rights`, as the server checks them. A
        // removal deactivates the live object itself (`d` is `live` there).
        let deactivated;
        let (before, after) = match c.action {
            Action::Create => (None, Some(d)),
            Action::Delete => (live, None),
            Action::Deactivate if d.status == Status::Active => {
                deactivated = Representative {
                    status: Status::Inactive,
                    ..d.clone()
                };
                (live, Some(&deactivated))
            }
            _ => (live, Some(d)),
        };
        for w in rights::rep_writes(before, after, c.set_password.is_some()) {
            let (what, pointer) = match w {
                RepWrite::Add => ("add representative", ""),
                RepWrite::Remove => ("delete representative", ""),
                RepWrite::Manage(p) => (
                    "change the status, team, e-mail, language, sign-in settings or portals \
                     of representative",
                    p,
                ),
                RepWrite::NameOrLogin(p) => ("change the name or login of representative", p),
                RepWrite::Password => ("set the password of representative", "/password"),
            };
            v.extend(s.lacks(w.right(), &format!("{what} {}", d.login), pointer));
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
}

impl Scoped for Manager {
    fn in_scope(&self, s: &Scope) -> bool {
        self.login == s.login || (!self.teams.is_empty() && self.teams.iter().all(|t| s.team(t)))
    }
    fn scope_issues(&self, live: Option<&Self>, c: &Change, s: &Scope) -> Vec<ScopeIssue> {
        let d = self;
        let mut v = vec![];
        // The live system asks for `manage_managers` on every manager write, the token's own
        // manager included.
        if !s.rights.contains(&rights::MANAGER_WRITE_RIGHT) {
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
        v.extend(s.outside_any(
            &d.teams,
            |t| s.team(t),
            |teams| format!("manager {} would manage {teams}", d.login),
            "/teams",
        ));
        if d.teams.is_empty() && d.login != s.login && c.action != Action::Delete {
            v.push(s.outside(&format!("manager {} would have no team", d.login), "/teams"));
        }
        if let Some(l) = live
            && l.login != s.login
            && (l.teams.is_empty() || !l.teams.iter().all(|t| s.team(t)))
        {
            v.push(s.outside(&format!("manager {} is live", l.login), ""));
        }
        // A manager passes on at most what it holds itself.
        let rights: Vec<&str> = d
            .team_rights
            .difference(&s.rights)
            .map(|r| r.id())
            .collect();
        let grantable: Vec<&str> = d
            .grantable
            .difference(&s.grantable)
            .map(|f| f.id())
            .collect();
        for (pointer, extra, message, help) in [
            (
                "/team_rights",
                &rights,
                format!(
                    "would hold {} that manager {} does not hold",
                    rights.join(", "),
                    s.login
                ),
                "a manager may give at most its own rights; remove them",
            ),
            (
                "/grantable",
                &grantable,
                format!(
                    "would be able to grant {}, which manager {} cannot",
                    grantable.join(", "),
                    s.login
                ),
                "a manager may pass on at most its own `grantable`; remove them",
            ),
        ] {
            if !extra.is_empty() {
                v.push(ScopeIssue {
                    pointer: pointer.into(),
                    message: format!("manager {} {message} (rule 6)", d.login),
                    help: help.into(),
                });
            }
        }
        v
    }
}

/// The declared object and, when there is one, the live one, each with the verb that
/// words what it does: both sides of a change must stay in scope.
fn declared_and_live<'a, T>(
    declared: &'a T,
    live: Option<&'a T>,
    declared_verb: &'static str,
    live_verb: &'static str,
) -> impl Iterator<Item = (&'a T, &'static str)> {
    std::iter::once((declared, declared_verb)).chain(live.map(|l| (l, live_verb)))
}

impl Scoped for Campaign {
    /// Every member in scope (a live campaign as a manager token reads it always is).
    fn in_scope(&self, s: &Scope) -> bool {
        self.teams.iter().all(|t| s.team(t))
            && self.representatives.iter().all(|r| s.reps.contains(r))
    }
    fn project(&self, live: &Self, s: &Scope) -> Option<Self> {
        let mut p = self.clone();
        p.teams.retain(|t| s.team(t));
        p.representatives.retain(|r| s.reps.contains(r));
        let dropped =
            self.teams.len() - p.teams.len() + self.representatives.len() - p.representatives.len();
        (dropped > 0 && dropped == live.hidden() as usize).then_some(p)
    }
    fn scope_issues(&self, live: Option<&Self>, c: &Change, s: &Scope) -> Vec<ScopeIssue> {
        let mut v = vec![];
        for (x, verb) in declared_and_live(self, live, "would select", "selects") {
            v.extend(s.outside_any(
                &x.teams,
                |t| s.team(t),
                |teams| format!("campaign {} {verb} team {teams}", x.name),
                "/teams",
            ));
            v.extend(s.outside_any(
                &x.representatives,
                |r| s.reps.contains(r),
                |reps| format!("campaign {} {verb} representative {reps}", x.name),
                "/representatives",
            ));
        }
        v.extend(group_rights(self, live, c, s, "/representatives"));
        v
    }
}

impl Scoped for ContactGroup {
    /// Every member in scope (a live group as a manager token reads it always is).
    fn in_scope(&self, s: &Scope) -> bool {
        self.shared_with
            .keys()
            .all(|l| s.reps.contains(l) || s.managers.contains(l))
    }
    fn project(&self, live: &Self, s: &Scope) -> Option<Self> {
        let mut p = self.clone();
        p.shared_with
            .retain(|l, _| s.reps.contains(l) || s.managers.contains(l));
        let dropped = self.shared_with.len() - p.shared_with.len();
        (dropped > 0 && dropped == live.hidden() as usize).then_some(p)
    }
    /// A contact group is shared only with people in scope; the live system keeps those
    /// it shares with outside the scope (the token never sees them).
    fn scope_issues(&self, live: Option<&Self>, c: &Change, s: &Scope) -> Vec<ScopeIssue> {
        let mut v: Vec<ScopeIssue> =
            declared_and_live(self, live, "would be shared with", "is shared with")
                .filter_map(|(g, verb)| {
                    s.outside_any(
                        g.shared_with.keys(),
                        |l| s.reps.contains(l) || s.managers.contains(l),
                        |who| format!("contact group {} {verb} {who}", g.name),
                        "/shared_with",
                    )
                })
                .collect();
        v.extend(group_rights(self, live, c, s, "/shared_with"));
        v
    }
}

/// The rights a change of a campaign or contact group needs (`model::rights`, as the
/// server checks them): `manage_representatives` to change its members, every member
/// in sight (no `hidden_members` live) to rename or delete it.
fn group_rights<G: Group + Clone>(
    d: &G,
    live: Option<&G>,
    c: &Change,
    s: &Scope,
    members: &str,
) -> Vec<ScopeIssue> {
    let (before, after) = match c.action {
        Action::Create => (None, Some(d)),
        Action::Delete => (live, None),
        // A removal that deactivates passes the live object itself: its members stay.
        _ => (live, Some(d)),
    };
    let mut v = vec![];
    let hidden = live.map_or(0, Group::hidden);
    for w in rights::group_writes(before, after) {
        let what = format!("{} {}", w.verb(), c.id);
        if w.needs_every_member() && hidden > 0 {
            v.push(ScopeIssue {
                pointer: String::new(),
                message: format!(
                    "manager {} cannot {what}: {hidden} of its members are outside its teams \
                     ({}) (rule 6)",
                    s.login,
                    s.teams_list()
                ),
                help: "apply this change with an administrator token".into(),
            });
        }
        if let Some(right) = w.right() {
            let pointer = if w == GroupWrite::Members {
                members
            } else {
                ""
            };
            v.extend(s.lacks(right, &what, pointer));
        }
    }
    v
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
