use std::collections::{BTreeMap, BTreeSet};

use super::expect::{Expectation, Rule};
use super::*;
use crate::model::testing::rep;
use crate::model::{Campaign, ContactGroup, Manager, Portal, Team};

fn set<T: Ord + Clone>(xs: &[T]) -> BTreeSet<T> {
    xs.iter().cloned().collect()
}

fn manager(login: &str, teams: &[&str], rights: &[TeamRight], grantable: &[Feature]) -> Manager {
    Manager {
        login: login.into(),
        email: login.into(),
        name: "M".into(),
        password: None,
        teams: teams.iter().map(|t| t.to_string()).collect(),
        team_rights: set(rights),
        grantable: set(grantable),
        protect: false,
        previously: None,
    }
}

/// Two portals, a small tree, a Tier2 representative with everything, a Paris one whose
/// portal does not enable its session features, an inactive one, two managers.
fn org() -> Org {
    let mut o = Org::default();
    o.portals.insert(
        "web".into(),
        Portal {
            name: "web".into(),
            features: set(&[Feature::FileTransferSend, Feature::Multisession]),
            protect: false,
            previously: None,
        },
    );
    o.portals.insert(
        "mobile".into(),
        Portal {
            name: "mobile".into(),
            features: set(&[Feature::ShareMyScreen]),
            protect: false,
            previously: None,
        },
    );
    for t in [
        "Europe",
        "Europe/Paris",
        "Europe/Paris/Night",
        "Europeans",
        "Tier2",
    ] {
        o.teams.insert(t.into(), Team::new(t));
    }
    let mut a = rep("ann@x.example", Some("Tier2"));
    a.features = set(&[
        Feature::AdminCenterAccess,
        Feature::SessionReplay,
        Feature::FileTransferSend,
    ]);
    a.multisession = 4;
    a.portals = set(&["web".to_string()]).into();
    let mut b = rep("bob@x.example", Some("Europe/Paris/Night"));
    // session_replay without admin_center_access (live data may hold it): no effect.
    b.features = set(&[
        Feature::SessionReplay,
        Feature::FileTransferSend,
        Feature::ShareMyScreen,
    ]);
    b.multisession = 3;
    b.portals = set(&["mobile".to_string()]).into();
    let mut c = rep("cid@x.example", Some("Europe"));
    c.features = set(&[Feature::AdminCenterAccess, Feature::SessionReplay]);
    c.status = Status::Inactive;
    for r in [a, b, c] {
        o.representatives.insert(r.login.clone(), r);
    }
    for m in [
        manager(
            "max@x.example",
            &["Europe"],
            &[TeamRight::SessionReplay, TeamRight::ManageRepresentatives],
            &[Feature::AdminCenterAccess, Feature::Reports],
        ),
        manager(
            "mia@x.example",
            &["Tier2"],
            &[TeamRight::ExportSessionReplay],
            &[Feature::Reports, Feature::Multisession],
        ),
    ] {
        o.managers.insert(m.login.clone(), m);
    }
    o.campaigns.insert(
        "winter".into(),
        Campaign {
            name: "winter".into(),
            active: true,
            representatives: set(&["ann@x.example".to_string()]),
            teams: set(&["Europe".to_string(), "Tier2".to_string()]),
            hidden_members: None,
            protect: false,
            previously: None,
        },
    );
    o.campaigns.insert(
        "old".into(),
        Campaign {
            name: "old".into(),
            active: false,
            representatives: set(&["bob@x.example".to_string()]),
            teams: BTreeSet::new(),
            hidden_members: None,
            protect: false,
            previously: None,
        },
    );
    o.contact_groups.insert(
        "vip".into(),
        ContactGroup {
            name: "vip".into(),
            shared_with: BTreeMap::from([
                ("ann@x.example".to_string(), Permission::Manage),
                ("max@x.example".to_string(), Permission::View),
                ("cid@x.example".to_string(), Permission::Connect),
            ]),
            hidden_members: None,
            protect: false,
            previously: None,
        },
    );
    o
}

#[test]
fn session_features_take_effect_only_where_a_portal_enables_them() {
    let a = Access::of(&org());
    let ann = &a.representatives["ann@x.example"];
    assert_eq!(
        ann.features,
        set(&[
            Feature::AdminCenterAccess,
            Feature::SessionReplay,
            Feature::FileTransferSend,
            Feature::Multisession
        ])
    );
    assert_eq!(ann.multisession, 4);
    assert!(ann.without_effect.is_empty());
    let bob = &a.representatives["bob@x.example"];
    assert_eq!(bob.features, set(&[Feature::ShareMyScreen]));
    assert_eq!(
        bob.multisession, 1,
        "no portal of bob's enables multisession"
    );
    assert_eq!(
        bob.without_effect,
        BTreeMap::from([
            (Feature::SessionReplay, NoEffect::Requirement),
            (Feature::FileTransferSend, NoEffect::NoPortal),
            (Feature::Multisession, NoEffect::NoPortal),
        ])
    );
}

#[test]
fn an_inactive_representative_holds_nothing_in_effect() {
    let a = Access::of(&org());
    let cid = &a.representatives["cid@x.example"];
    assert!(!cid.is_active());
    assert!(cid.features.is_empty() && cid.campaigns.is_empty() && cid.contact_groups.is_empty());
    assert_eq!(cid.multisession, 0);
    assert_eq!(
        cid.without_effect[&Feature::SessionReplay],
        NoEffect::Inactive
    );
    assert!(!a.features[&Feature::AdminCenterAccess].contains("cid@x.example"));
}

#[test]
fn campaigns_reach_a_representative_directly_or_through_an_ancestor_team() {
    let a = Access::of(&org());
    let ann = &a.representatives["ann@x.example"];
    assert_eq!(
        ann.campaigns["winter"],
        CampaignVia {
            direct: true,
            teams: set(&["Tier2".to_string()])
        }
    );
    let bob = &a.representatives["bob@x.example"];
    assert_eq!(bob.within, ["Europe/Paris/Night", "Europe/Paris", "Europe"]);
    assert_eq!(
        bob.campaigns.keys().collect::<Vec<_>>(),
        ["winter"],
        "the inactive campaign gives nothing"
    );
    assert_eq!(bob.campaigns["winter"].teams, set(&["Europe".to_string()]));
    assert_eq!(ann.contact_groups["vip"], Permission::Manage);
}

#[test]
fn a_campaign_reaches_nobody_through_an_inactive_team() {
    let mut o = org();
    o.teams.get_mut("Europe").unwrap().active = false;
    let a = Access::of(&o);
    let bob = &a.representatives["bob@x.example"];
    assert!(
        bob.campaigns.is_empty(),
        "winter selected bob through Europe only: {:?}",
        bob.campaigns
    );
    let ann = &a.representatives["ann@x.example"];
    assert!(ann.campaigns["winter"].direct, "a direct member stays one");
}

#[test]
fn a_manager_holds_its_rights_on_its_teams_and_every_sub_team() {
    let a = Access::of(&org());
    let max = &a.managers["max@x.example"];
    assert_eq!(
        max.covers,
        set(&[
            "Europe".to_string(),
            "Europe/Paris".to_string(),
            "Europe/Paris/Night".to_string()
        ]),
        "Europeans is no sub-team of Europe"
    );
    assert_eq!(
        max.may_grant,
        set(&[Feature::AdminCenterAccess, Feature::Reports])
    );
    assert_eq!(max.contact_groups["vip"], Permission::View);
    let mia = &a.managers["mia@x.example"];
    assert!(
        mia.team_rights.is_empty(),
        "export without the replay right has no effect"
    );
    assert_eq!(
        mia.may_grant,
        set(&[Feature::Multisession]),
        "reports needs admin_center_access"
    );
    assert_eq!(
        a.team_rights[&TeamRight::SessionReplay],
        set(&["max@x.example".to_string()])
    );
}

#[test]
fn holders_of_a_shared_name_are_representatives_and_managers() {
    let a = Access::of(&org());
    let both = Subject::parse("session_replay").unwrap();
    assert!(both.feature.is_some() && both.right.is_some());
    let holders: Vec<&str> = a.holders(both).into_keys().collect();
    assert_eq!(holders, ["ann@x.example", "max@x.example"]);
    let only = Subject::parse("feature:session_replay").unwrap();
    assert_eq!(a.holders(only).len(), 1);
    assert!(
        Subject::parse("right:reports")
            .unwrap_err()
            .contains("no team right")
    );
    assert!(Subject::parse("teleport").unwrap_err().contains("known: "));
    assert!(Subject::parse("x:reports").is_err());
}

fn judge(a: &Access, s: &str) -> super::expect::Outcome {
    let e = Expectation::parse(s).unwrap();
    e.judge(a, &|t| org().teams.contains_key(t))
}

#[test]
fn expectations_pass_and_fail_naming_who_breaks_them() {
    let a = Access::of(&org());
    let ok = judge(&a, "feature:session_replay only-within Tier2");
    assert!(ok.ok, "{ok:?}");
    let bad = judge(&a, "session_replay   only-within Tier2");
    assert!(!bad.ok);
    assert_eq!(bad.expect, "session_replay only-within Tier2");
    assert_eq!(bad.breakers.len(), 1);
    assert_eq!(bad.breakers[0].login, "max@x.example");
    assert_eq!(bad.breakers[0].place, "manager of Europe");
    assert!(judge(&a, "session_replay only-within Tier2,Europe").ok);
    assert!(
        !judge(&a, "session_replay only-within Tier").ok,
        "segment-wise"
    );
    let missing = judge(&a, "feature:reports only-within Nowhere");
    assert!(!missing.ok && missing.problem.unwrap().contains("no team Nowhere"));
    assert!(judge(&a, "session_replay at-most 2").ok);
    let over = judge(&a, "session_replay at-most 1");
    assert_eq!(over.problem.as_deref(), Some("2 people hold it"));
    assert_eq!(over.breakers.len(), 2);
    assert!(judge(&a, "share_my_screen at-least 1").ok);
    assert!(!judge(&a, "reports at-least 1").ok);
    assert!(judge(&a, "BOB@x.example lacks session_replay").ok);
    assert!(judge(&a, "cid@x.example lacks admin_center_access").ok);
    assert!(judge(&a, "ann@x.example holds multisession").ok);
    assert!(!judge(&a, "ann@x.example lacks multisession").ok);
    let ghost = judge(&a, "ghost@x.example lacks reports");
    assert!(!ghost.ok, "a typo never passes");
}

#[test]
fn malformed_expectations_say_what_to_write() {
    for (s, says) in [
        ("session_replay only-within", "three words"),
        ("session_replay within Tier2", "unknown verb `within`"),
        ("session_replay at-most five", "not a count"),
        ("teleport at-most 1", "is no feature or team right"),
        ("a@x lacks feature:teleport", "is no feature"),
        ("reports only-within A,,B", "empty team path"),
    ] {
        let e = Expectation::parse(s).unwrap_err();
        assert!(e.contains(says), "{s}: {e}");
        assert!(e.starts_with("expectation `"), "{e}");
    }
    assert!(matches!(
        Expectation::parse("reports only-within Europe/,Tier2").unwrap().rule,
        Rule::OnlyWithin(_, ref t) if t == &["Europe", "Tier2"]
    ));
}

#[test]
fn filters_cut_people_and_what_they_hold() {
    let a = Access::of(&org());
    let f = Filter {
        teams: vec!["Europe".into()],
        ..Filter::default()
    };
    let cut = f.apply(&a);
    assert_eq!(
        cut.representatives.keys().collect::<Vec<_>>(),
        ["bob@x.example", "cid@x.example"]
    );
    assert_eq!(cut.managers.keys().collect::<Vec<_>>(), ["max@x.example"]);
    assert!(cut.administrators.is_empty());
    let f = Filter {
        features: set(&[Feature::Multisession]),
        ..Filter::default()
    };
    let cut = f.apply(&a);
    assert_eq!(
        cut.representatives.keys().collect::<Vec<_>>(),
        ["ann@x.example"]
    );
    assert_eq!(
        cut.representatives["ann@x.example"].features,
        set(&[Feature::Multisession])
    );
    assert!(cut.managers.is_empty());
    assert_eq!(cut.features.len(), 1);
    let f = Filter {
        logins: vec![Filter::login_glob("M*@X.example").unwrap()],
        ..Filter::default()
    };
    let cut = f.apply(&a);
    assert!(cut.representatives.is_empty());
    assert_eq!(cut.managers.len(), 2);
    assert_eq!(Filter::default().apply(&a), a);
}

#[test]
fn within_respects_segment_boundaries() {
    assert!(is_within("Europe/Paris", "Europe"));
    assert!(is_within("Europe", "Europe"));
    assert!(!is_within("Europeans", "Europe"));
    assert!(!is_within("Europe", "Europe/Paris"));
    assert_eq!(
        team_and_ancestors("A/B/C").collect::<Vec<_>>(),
        ["A/B/C", "A/B", "A"]
    );
}

/// The checked-in schema is current. To refresh it after changing the report types:
/// `ROSTER_UPDATE_SCHEMAS=1 cargo test --lib model::access`.
#[test]
fn checked_in_access_schema_is_current() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/access.schema.json");
    let fresh = report_schema();
    if std::env::var_os("ROSTER_UPDATE_SCHEMAS").is_some() {
        std::fs::write(path, &fresh).unwrap();
    }
    let on_disk = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        on_disk == fresh,
        "schemas/access.schema.json is out of date; run \
         `ROSTER_UPDATE_SCHEMAS=1 cargo test --lib model::access`"
    );
    let v: serde_json::Value = serde_json::from_str(&fresh).unwrap();
    assert_eq!(v["$schema"], "https://json-schema.org/draft/2020-12/schema");
    assert!(v["properties"]["representatives"].is_object(), "{v}");
}

#[test]
fn a_report_validates_against_its_schema() {
    let report = Report {
        source: Source::Declaration,
        filtered: false,
        access: Access::of(&org()),
        expectations: vec![judge(&Access::of(&org()), "session_replay at-most 1")],
    };
    let schema: serde_json::Value = serde_json::from_str(&report_schema()).unwrap();
    let v = serde_json::to_value(&report).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(&v).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(v["representatives"]["bob@x.example"]["multisession"], 1);
}
