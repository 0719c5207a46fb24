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

use super::{Representative, TeamRight};

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
}
