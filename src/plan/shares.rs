//! Contact-group shares that are one decision (seed 003: "all groups at once"): the
//! groups a `contact_group_shares` entry reaches gaining it, or one login's share taken
//! from several groups at once (the entry removed). Found in the plan's contact-group
//! changes; each becomes a [`GroupShare`] that the renderings show as one line, the
//! per-group changes staying in the plan.
//!
//! A gain comes from the declaration (`Desired::shared_with_all` records the groups
//! each entry was added to); a group that already had the login live does not count. A
//! loss cannot be traced to a removed entry (the live system keeps no such record): the
//! same login and permission dropped from two groups or more, the login in no entry,
//! reads as one.

use std::collections::BTreeMap;

use super::{Action, Change, EffectChange, GroupShare};
use crate::model::{Desired, Kind, Login, Observed, Permission};

/// How many groups the same share must leave at once to be shown as one loss.
const LOSS_AT_ONCE: usize = 2;

/// The share decisions of `changes` (the whole plan's), gains first, then by login.
pub(super) fn group_shares(
    desired: &Desired,
    observed: &Observed,
    changes: &[&Change],
) -> Vec<GroupShare> {
    let of = desired.org.contact_groups.len();
    let live_of = |c: &Change| {
        let key = c.previously.as_ref().unwrap_or(&c.id.key);
        observed.org.contact_groups.get(key)
    };
    let groups: Vec<&Change> = changes
        .iter()
        .copied()
        .filter(|c| c.id.kind == Kind::ContactGroup)
        .filter(|c| matches!(c.action, Action::Create | Action::Update | Action::Rename))
        .collect();
    let mut out = vec![];
    for a in &desired.shared_with_all {
        let login = &a.share.login;
        let gained: Vec<String> = groups
            .iter()
            .filter(|c| a.groups.contains(&c.id.key))
            .filter(|c| live_of(c).is_none_or(|g| !g.shared_with.contains_key(login)))
            .map(|c| c.id.key.clone())
            .collect();
        if !gained.is_empty() {
            out.push(GroupShare {
                login: login.clone(),
                permission: a.share.permission,
                change: EffectChange::Gains,
                groups: gained,
                of,
                declared: true,
            });
        }
    }
    let mut lost: BTreeMap<(Login, Permission), Vec<String>> = BTreeMap::new();
    for c in groups.iter().filter(|c| c.action != Action::Create) {
        let (Some(live), Some(decl)) = (live_of(c), desired.org.contact_groups.get(&c.id.key))
        else {
            continue;
        };
        for (login, p) in &live.shared_with {
            let entry = desired
                .shared_with_all
                .iter()
                .any(|a| &a.share.login == login);
            if !entry && !decl.shared_with.contains_key(login) {
                lost.entry((login.clone(), *p))
                    .or_default()
                    .push(c.id.key.clone());
            }
        }
    }
    for ((login, permission), mut groups) in lost {
        if groups.len() >= LOSS_AT_ONCE {
            groups.sort();
            out.push(GroupShare {
                login,
                permission,
                change: EffectChange::Loses,
                groups,
                of,
                declared: false,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ContactGroup, ContactGroupShare, ObjectId, Org, SharedWithAll};

    fn group(name: &str, shared: &[(&str, Permission)]) -> ContactGroup {
        ContactGroup {
            name: name.into(),
            shared_with: shared.iter().map(|(l, p)| (l.to_string(), *p)).collect(),
            protect: false,
            previously: None,
            hidden_members: None,
        }
    }

    fn update(name: &str) -> Change {
        Change {
            id: ObjectId::new(Kind::ContactGroup, name),
            action: Action::Update,
            previously: None,
            version: Some(1),
            after: None,
            patch: None,
            fields: vec![],
            set_password: None,
            depends_on: vec![],
            reason: String::new(),
        }
    }

    fn org(groups: Vec<ContactGroup>) -> Org {
        Org {
            contact_groups: groups.into_iter().map(|g| (g.name.clone(), g)).collect(),
            ..Default::default()
        }
    }

    const LEA: &str = "lea@x.example";

    #[test]
    fn an_entry_gained_by_every_group_is_one_share_and_a_group_with_it_live_is_left_out() {
        let mut desired = Desired {
            org: org(vec![
                group("a", &[(LEA, Permission::View)]),
                group("b", &[(LEA, Permission::View)]),
                group("c", &[(LEA, Permission::View)]),
            ]),
            ..Default::default()
        };
        desired.shared_with_all = vec![SharedWithAll {
            share: ContactGroupShare {
                login: LEA.into(),
                permission: Permission::View,
            },
            groups: ["a", "b", "c"].map(String::from).into(),
        }];
        let observed = Observed {
            org: org(vec![group("a", &[]), group("b", &[])]),
            ..Default::default()
        };
        let mut create = update("c");
        create.action = Action::Create;
        let (a, b) = (update("a"), update("b"));
        let shares = group_shares(&desired, &observed, &[&a, &b, &create]);
        assert_eq!(shares.len(), 1, "{shares:?}");
        let s = &shares[0];
        assert_eq!(s.groups, ["a", "b", "c"]);
        assert!(s.declared);
        assert_eq!(
            s.line(),
            "lea@x.example gains view on all 3 contact groups (contact_group_shares)"
        );
        // Group a already shared live with lea (another permission): not a gain there.
        let observed = Observed {
            org: org(vec![
                group("a", &[(LEA, Permission::Manage)]),
                group("b", &[]),
            ]),
            ..Default::default()
        };
        let shares = group_shares(&desired, &observed, &[&a, &b, &create]);
        assert_eq!(shares[0].groups, ["b", "c"]);
        assert_eq!(shares[0].scope(), "view on 2 of 3 contact groups");
    }

    #[test]
    fn the_same_share_gone_from_several_groups_is_one_loss_and_from_one_is_not() {
        let desired = Desired {
            org: org(vec![group("a", &[]), group("b", &[]), group("c", &[])]),
            ..Default::default()
        };
        let live = |g: &[&str]| Observed {
            org: org(g
                .iter()
                .map(|n| group(n, &[(LEA, Permission::View)]))
                .collect()),
            ..Default::default()
        };
        let (a, b, c) = (update("a"), update("b"), update("c"));
        let shares = group_shares(&desired, &live(&["a", "b", "c"]), &[&a, &b, &c]);
        assert_eq!(shares.len(), 1);
        assert_eq!(shares[0].change, EffectChange::Loses);
        assert_eq!(
            shares[0].line(),
            "lea@x.example loses view on all 3 contact groups (not in contact_group_shares)"
        );
        assert!(group_shares(&desired, &live(&["a"]), &[&a]).is_empty());
    }

    #[test]
    fn a_change_of_nothing_but_covered_shares_is_folded() {
        let s = GroupShare {
            login: LEA.into(),
            permission: Permission::View,
            change: EffectChange::Gains,
            groups: vec!["a".into()],
            of: 1,
            declared: true,
        };
        let mut c = update("a");
        c.fields = vec![super::super::FieldChange {
            field: "shared_with".into(),
            before: None,
            after: None,
            removed: vec![],
            added: vec![s.element()],
        }];
        assert!(super::super::folded_into_shares(
            &c,
            std::slice::from_ref(&s)
        ));
        c.fields[0].added.push("bob@x.example (view)".into());
        assert!(!super::super::folded_into_shares(
            &c,
            std::slice::from_ref(&s)
        ));
        let mut other = update("b");
        other.fields = vec![];
        assert!(!super::super::folded_into_shares(&other, &[s]));
    }
}
