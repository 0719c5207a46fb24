//! Which team right a write to a representative needs (rule 6, seed 000), written once:
//! the plan predicts with it (`plan::scope`) and the server enforces with it
//! (`server::auth`), each in its own words.
//!
//! - adding or removing a representative, and changing its status (deactivate,
//!   reactivate), its team (a move), its e-mail, language, sign-in settings or portals:
//!   `manage_representatives`;
//! - its login, first or last name, or user name: `edit_rep_name_login`;
//! - its password: `edit_rep_password`.
//!
//! Features and `multisession` are governed by the manager's `grantable` set instead.
//!
//! Campaigns and contact groups ([`group_writes`], [`visible_campaign`],
//! [`visible_group`], [`keep_hidden_campaign`], [`keep_hidden_group`]): a manager token
//! sees only the members in its scope (a representative of its teams, one of its teams,
//! a manager in scope or itself) and a count of the others (`hidden_members`); it is
//! shown a campaign or group only when it sees at least one member or the object has
//! none ([`shown`]). Its writes keep every member it cannot see; adding, removing or
//! changing a member needs `manage_representatives`; renaming or deleting needs every
//! member in sight.

use std::collections::BTreeSet;

use super::{Campaign, ContactGroup, Feature, Representative, TeamRight};

/// What a write to a representative does, as far as team rights go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepWrite {
    Add,
    Remove,
    /// A change of status, team, e-mail, language, sign-in settings or portals: the
    /// pointer of the first such field that changes.
    Manage(&'static str),
    /// A change of login, first or last name or user name: the pointer of the first.
    NameOrLogin(&'static str),
    /// A password set or changed.
    Password,
}

impl RepWrite {
    /// The team right this write needs.
    pub fn right(self) -> TeamRight {
        match self {
            RepWrite::Add | RepWrite::Remove | RepWrite::Manage(_) => {
                TeamRight::ManageRepresentatives
            }
            RepWrite::NameOrLogin(_) => TeamRight::EditRepNameLogin,
            RepWrite::Password => TeamRight::EditRepPassword,
        }
    }
}

/// The writes (one per right) that turning `before` into `after` makes: `None` before
/// is a create, `None` after a delete. `password_set` when the write sends a password.
pub fn rep_writes(
    before: Option<&Representative>,
    after: Option<&Representative>,
    password_set: bool,
) -> Vec<RepWrite> {
    let mut out = Vec::new();
    match (before, after) {
        (None, Some(_)) => out.push(RepWrite::Add),
        (Some(_), None) => out.push(RepWrite::Remove),
        (Some(b), Some(a)) => {
            let managed = [
                ("/status", b.status != a.status),
                ("/team", b.team != a.team),
                ("/email", b.email != a.email),
                ("/language", b.language != a.language),
                ("/sign_in", b.sign_in != a.sign_in),
                ("/portals", b.portals != a.portals),
            ];
            if let Some((p, _)) = managed.into_iter().find(|(_, changed)| *changed) {
                out.push(RepWrite::Manage(p));
            }
            let named = [
                ("/login", b.login != a.login),
                ("/first_name", b.first_name != a.first_name),
                ("/last_name", b.last_name != a.last_name),
                ("/username", b.username != a.username),
            ];
            if let Some((p, _)) = named.into_iter().find(|(_, changed)| *changed) {
                out.push(RepWrite::NameOrLogin(p));
            }
        }
        (None, None) => {}
    }
    if password_set && after.is_some() {
        out.push(RepWrite::Password);
    }
    out
}

/// The features a write to a representative turns on or off that `grantable` does not
/// hold (seed 000: a manager grants only the rights it may grant), `multisession` last
/// when the count changes without [`Feature::Multisession`] grantable. `None` before is a
/// create, compared with no feature and one session at a time.
pub fn ungranted(
    before: Option<&Representative>,
    after: &Representative,
    grantable: &BTreeSet<Feature>,
) -> Vec<Feature> {
    let none = BTreeSet::new();
    let was = before.map_or(&none, |b| &b.features);
    let mut out: Vec<Feature> = was
        .symmetric_difference(&after.features)
        .filter(|f| !grantable.contains(f))
        .copied()
        .collect();
    let sessions = before.map_or(1, |b| b.multisession);
    if after.multisession != sessions && !grantable.contains(&Feature::Multisession) {
        out.push(Feature::Multisession);
    }
    out
}

/// The team right that writes to teams need (rule 6): creating, renaming, moving,
/// deactivating or deleting a sub-team, or changing its description, limit or leader.
pub const TEAM_WRITE_RIGHT: TeamRight = TeamRight::ManageSubteams;

/// The team right that every write to a manager needs (seed 002: a sub-account manager
/// adds managers only inside its own teams, never with more rights than its own).
pub const MANAGER_WRITE_RIGHT: TeamRight = TeamRight::ManageManagers;

/// Every write a manager token may make, in words, with the team right it needs: the
/// table of `docs/api.md` ("Team rights and the writes they allow") is generated from
/// this, and the server (`server::auth`) and the plan (`plan::scope`) ask the same
/// functions ([`RepWrite::right`], [`GroupWrite::right`], [`TEAM_WRITE_RIGHT`],
/// [`MANAGER_WRITE_RIGHT`]), so the table cannot drift from what is enforced.
pub fn operations() -> Vec<(Option<TeamRight>, &'static str)> {
    let mut out = vec![
        (
            Some(RepWrite::Add.right()),
            "create a representative in its teams",
        ),
        (Some(RepWrite::Remove.right()), "delete a representative"),
        (
            Some(RepWrite::Manage("/status").right()),
            "deactivate, reactivate or move a representative between its teams; change its \
             e-mail, language, sign-in settings or portals",
        ),
        (
            Some(RepWrite::NameOrLogin("/login").right()),
            "change a representative's first or last name, login or user name",
        ),
        (
            Some(RepWrite::Password.right()),
            "set a representative's password",
        ),
        (
            Some(TEAM_WRITE_RIGHT),
            "create, rename, move, deactivate or delete a sub-team strictly below its own \
             teams, or change a team's description, limit or leader (never its own \
             assigned team's existence, name or status)",
        ),
        (
            Some(MANAGER_WRITE_RIGHT),
            "create, change or remove a manager inside its teams, with at most its own \
             team rights and `grantable` features",
        ),
    ];
    for w in [GroupWrite::Members, GroupWrite::Rename, GroupWrite::Delete] {
        let what = match w {
            GroupWrite::Members => {
                "add or remove a campaign's representatives or teams, or a contact group's \
                 shares, among the people it sees (the others are kept)"
            }
            GroupWrite::Rename => "rename a campaign or contact group whose every member it sees",
            GroupWrite::Delete => "delete a campaign or contact group whose every member it sees",
        };
        out.push((w.right(), what));
    }
    out
}

/// The Markdown table of `docs/api.md`: each team right with the writes it allows a
/// manager token, in catalogue order; rights no write needs say so.
pub fn operations_table() -> String {
    let ops = operations();
    let mut out = String::from("| team right | writes it allows a manager token |\n|---|---|\n");
    let cell = |right: Option<TeamRight>| {
        ops.iter()
            .filter(|(r, _)| *r == right)
            .map(|(_, w)| *w)
            .collect::<Vec<_>>()
            .join("; ")
    };
    for right in TeamRight::ALL {
        let what = cell(Some(*right));
        let what = if what.is_empty() {
            "none through the API: a console permission, held and granted as declared".into()
        } else {
            what
        };
        out.push_str(&format!("| `{}` | {what} |\n", right.id()));
    }
    out.push_str(&format!(
        "| (no right) | {}; turn on or off a representative's feature or `multisession` \
         only when it is in the manager's `grantable` |\n",
        cell(None)
    ));
    out
}

/// What a write to a campaign or a contact group does, as far as rule 6 goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupWrite {
    /// Adding, removing or changing a member (a representative, a team, a shared login
    /// or its permission): `manage_representatives`.
    Members,
    /// Renaming it: only a token that sees every member.
    Rename,
    /// Deleting it: only a token that sees every member.
    Delete,
}

impl GroupWrite {
    /// The team right this write needs, if any.
    pub fn right(self) -> Option<TeamRight> {
        match self {
            GroupWrite::Members => Some(TeamRight::ManageRepresentatives),
            GroupWrite::Rename | GroupWrite::Delete => None,
        }
    }
    /// Whether only a token that sees every member may make it.
    pub fn needs_every_member(self) -> bool {
        matches!(self, GroupWrite::Rename | GroupWrite::Delete)
    }
    /// The verb, for messages.
    pub fn verb(self) -> &'static str {
        match self {
            GroupWrite::Members => "add or remove members of",
            GroupWrite::Rename => "rename",
            GroupWrite::Delete => "delete",
        }
    }
}

/// A campaign or a contact group, as rights see it.
pub trait Group {
    fn group_name(&self) -> &str;
    /// Members this token does not see (0 for an administrator's read).
    fn hidden(&self) -> u32;
    fn has_members(&self) -> bool;
    fn same_members(&self, other: &Self) -> bool;
}

impl Group for Campaign {
    fn group_name(&self) -> &str {
        &self.name
    }
    fn hidden(&self) -> u32 {
        self.hidden_members.unwrap_or(0)
    }
    fn has_members(&self) -> bool {
        !self.representatives.is_empty() || !self.teams.is_empty()
    }
    fn same_members(&self, o: &Self) -> bool {
        self.representatives == o.representatives && self.teams == o.teams
    }
}

impl Group for ContactGroup {
    fn group_name(&self) -> &str {
        &self.name
    }
    fn hidden(&self) -> u32 {
        self.hidden_members.unwrap_or(0)
    }
    fn has_members(&self) -> bool {
        !self.shared_with.is_empty()
    }
    fn same_members(&self, o: &Self) -> bool {
        self.shared_with == o.shared_with
    }
}

/// The writes that turning `before` into `after` makes (`None` before: a create; `None`
/// after: a delete), both as the token sees them.
pub fn group_writes<G: Group>(before: Option<&G>, after: Option<&G>) -> Vec<GroupWrite> {
    let mut out = Vec::new();
    let members = match (before, after) {
        (None, Some(a)) => a.has_members(),
        (Some(b), None) => b.has_members(),
        (Some(b), Some(a)) => !b.same_members(a),
        (None, None) => false,
    };
    if members {
        out.push(GroupWrite::Members);
    }
    match (before, after) {
        (Some(b), Some(a)) if b.group_name() != a.group_name() => out.push(GroupWrite::Rename),
        (Some(_), None) => out.push(GroupWrite::Delete),
        _ => {}
    }
    out
}

/// Whether a token is shown a campaign or group it sees as `view` at all: when it sees
/// one of its members, or the object has none (so that a manager finds again what it
/// created empty). One whose members are all out of sight is invisible (seed 002).
pub fn shown<G: Group>(view: &G) -> bool {
    view.hidden() == 0 || view.has_members()
}

/// `hidden_members`: none when nothing is hidden.
fn count(already: Option<u32>, more: usize) -> Option<u32> {
    let n = already
        .unwrap_or(0)
        .saturating_add(u32::try_from(more).unwrap_or(u32::MAX));
    (n > 0).then_some(n)
}

/// A campaign as a token sees it: the representatives and teams `sees_rep` and
/// `sees_team` admit, and how many others there are (`hidden_members`).
pub fn visible_campaign(
    c: &Campaign,
    sees_rep: impl Fn(&str) -> bool,
    sees_team: impl Fn(&str) -> bool,
) -> Campaign {
    let mut v = c.clone();
    v.representatives.retain(|r| sees_rep(r));
    v.teams.retain(|t| sees_team(t));
    let hidden = c.representatives.len() - v.representatives.len() + c.teams.len() - v.teams.len();
    v.hidden_members = count(c.hidden_members, hidden);
    v
}

/// A contact group as a token sees it: the shared logins `sees` admits, and how many
/// others there are.
pub fn visible_group(g: &ContactGroup, sees: impl Fn(&str) -> bool) -> ContactGroup {
    let mut v = g.clone();
    v.shared_with.retain(|l, _| sees(l));
    let hidden = g.shared_with.len() - v.shared_with.len();
    v.hidden_members = count(g.hidden_members, hidden);
    v
}

/// A write by a token that sees `before` as `view`: `after` gets back every member of
/// `before` out of the token's sight (a manager sets the members it sees; it never drops
/// the others).
pub fn keep_hidden_campaign(after: &mut Campaign, before: &Campaign, view: &Campaign) {
    for r in before.representatives.difference(&view.representatives) {
        after.representatives.insert(r.clone());
    }
    for t in before.teams.difference(&view.teams) {
        after.teams.insert(t.clone());
    }
}

/// [`keep_hidden_campaign`] for a contact group: the hidden entries keep their
/// permission, whatever the write said of them.
pub fn keep_hidden_group(after: &mut ContactGroup, before: &ContactGroup, view: &ContactGroup) {
    for (l, p) in &before.shared_with {
        if !view.shared_with.contains_key(l) {
            after.shared_with.insert(l.clone(), *p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Status;
    use crate::model::testing::rep;

    #[test]
    fn each_field_group_needs_its_right() {
        let b = rep("felix@x.example", Some("T"));
        assert_eq!(rep_writes(None, Some(&b), false), [RepWrite::Add]);
        assert_eq!(
            rep_writes(None, Some(&b), true),
            [RepWrite::Add, RepWrite::Password]
        );
        assert_eq!(rep_writes(Some(&b), None, false), [RepWrite::Remove]);
        assert_eq!(rep_writes(Some(&b), Some(&b), false), []);
        let mut a = b.clone();
        a.status = Status::Inactive;
        a.email = "attacker@evil.example".into();
        a.portals.clear();
        a.portals.insert("p".into());
        assert_eq!(
            rep_writes(Some(&b), Some(&a), false),
            [RepWrite::Manage("/status")]
        );
        let mut a = b.clone();
        a.team = Some("U".into());
        assert_eq!(
            rep_writes(Some(&b), Some(&a), false),
            [RepWrite::Manage("/team")]
        );
        let mut a = b.clone().with_username("fw");
        a.language = "de".into();
        a.sign_in.force_password_change = !a.sign_in.force_password_change;
        assert_eq!(
            rep_writes(Some(&b), Some(&a), true),
            [
                RepWrite::Manage("/language"),
                RepWrite::NameOrLogin("/username"),
                RepWrite::Password
            ]
        );
        let rights: Vec<TeamRight> = rep_writes(Some(&b), Some(&a), true)
            .into_iter()
            .map(RepWrite::right)
            .collect();
        assert_eq!(
            rights,
            [
                TeamRight::ManageRepresentatives,
                TeamRight::EditRepNameLogin,
                TeamRight::EditRepPassword
            ]
        );
    }

    #[test]
    fn only_grantable_features_may_change() {
        let b = rep("felix@x.example", Some("T"));
        let grantable: BTreeSet<Feature> = [Feature::Reports].into();
        let mut a = b.clone();
        a.features.insert(Feature::Reports);
        assert_eq!(ungranted(Some(&b), &a, &grantable), []);
        a.features.insert(Feature::ShareMyScreen);
        a.multisession = b.multisession + 1;
        assert_eq!(
            ungranted(Some(&b), &a, &grantable),
            [Feature::ShareMyScreen, Feature::Multisession]
        );
        // Turning one off is a change too; a create compares with nothing and one session.
        assert_eq!(
            ungranted(Some(&a), &b, &grantable),
            [Feature::ShareMyScreen, Feature::Multisession]
        );
        let mut new = b.clone();
        new.features = [Feature::Reports].into();
        new.multisession = 1;
        assert_eq!(ungranted(None, &new, &grantable), []);
        new.multisession = 2;
        assert_eq!(ungranted(None, &new, &grantable), [Feature::Multisession]);
    }

    fn camp(reps: &[&str], teams: &[&str]) -> Campaign {
        Campaign {
            name: "c".into(),
            active: true,
            representatives: reps.iter().map(|s| s.to_string()).collect(),
            teams: teams.iter().map(|s| s.to_string()).collect(),
            hidden_members: None,
            protect: false,
            previously: None,
        }
    }

    #[test]
    fn a_campaign_shows_only_what_is_in_sight_and_writes_keep_the_rest() {
        let live = camp(&["a@x", "zz@other"], &["T", "Other"]);
        let view = visible_campaign(&live, |r| r == "a@x", |t| t == "T");
        assert_eq!(view.representatives, camp(&["a@x"], &[]).representatives);
        assert_eq!(view.hidden_members, Some(2));
        assert!(shown(&view));
        let nothing = visible_campaign(&live, |_| false, |_| false);
        assert_eq!(nothing.hidden_members, Some(4));
        assert!(!shown(&nothing), "all members hidden: invisible");
        assert!(shown(&visible_campaign(
            &camp(&[], &[]),
            |_| false,
            |_| false
        )));
        // The manager sets what it sees: a@x out, b@x in; the hidden ones stay.
        let mut after = camp(&["b@x"], &["T"]);
        keep_hidden_campaign(&mut after, &live, &view);
        assert_eq!(after, camp(&["b@x", "zz@other"], &["Other", "T"]));
    }

    #[test]
    fn group_writes_need_their_right_and_whole_writes_every_member() {
        let b = camp(&["a@x"], &[]);
        assert_eq!(group_writes(Some(&b), Some(&b)), []);
        assert_eq!(group_writes(None, Some(&camp(&[], &[]))), []);
        assert_eq!(group_writes(None, Some(&b)), [GroupWrite::Members]);
        assert_eq!(
            group_writes(Some(&b), None::<&Campaign>),
            [GroupWrite::Members, GroupWrite::Delete]
        );
        let mut renamed = b.clone();
        renamed.name = "d".into();
        assert_eq!(group_writes(Some(&b), Some(&renamed)), [GroupWrite::Rename]);
        let mut inactive = b.clone();
        inactive.active = false;
        assert_eq!(group_writes(Some(&b), Some(&inactive)), []);
        assert_eq!(
            GroupWrite::Members.right(),
            Some(TeamRight::ManageRepresentatives)
        );
        assert!(
            GroupWrite::Delete.needs_every_member() && !GroupWrite::Members.needs_every_member()
        );
        let g = ContactGroup {
            name: "g".into(),
            shared_with: [
                ("a@x".to_string(), crate::model::Permission::View),
                ("zz@other".to_string(), crate::model::Permission::Manage),
            ]
            .into(),
            hidden_members: None,
            protect: false,
            previously: None,
        };
        let view = visible_group(&g, |l| l == "a@x");
        assert_eq!(view.hidden_members, Some(1));
        let mut after = view.clone();
        after.shared_with.clear();
        after
            .shared_with
            .insert("zz@other".into(), crate::model::Permission::View);
        keep_hidden_group(&mut after, &g, &view);
        assert_eq!(
            after.shared_with,
            [("zz@other".to_string(), crate::model::Permission::Manage)].into(),
            "a hidden entry keeps its permission"
        );
        let mut changed = view.clone();
        changed
            .shared_with
            .insert("a@x".into(), crate::model::Permission::Connect);
        assert_eq!(
            group_writes(Some(&view), Some(&changed)),
            [GroupWrite::Members]
        );
    }
}
