//! The product's rules over a whole merged declaration (DESIGN §2, rules 1–8).
//!
//! Input: the merged, flattened [`Org`] that the loader built (logins already lower case).
//! Output: [`Finding`]s that name an object and a place relative to it; the loader turns
//! them into positioned diagnostics through each object's `Origin`. Object-level checks
//! come from [`crate::model::rules`] (shared with the server); this module adds the checks
//! that need several objects (collisions, references, leaders, portals), the policy
//! warning and the seats check. The default user names are [`crate::model::usernames`],
//! re-exported here for the loader.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::model::catalog::{self, Feature};
use crate::model::rules::{self as mrules, RuleCode, Violation};
use crate::model::{Kind, Login, ObjectId, OnRemove, Org, Policy};

use super::diagnostic::Severity;
use super::schema::{Anchor, did_you_mean};
use super::yaml::escape_segment;

/// A place relative to an object (or to a file, for the policy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rel {
    /// A JSON pointer below the object (`/team`, empty for the object itself).
    Pointer(String, Anchor),
    /// The element of the list at this pointer whose text equals the value (set-valued
    /// fields lose their written order once typed).
    Item(String, String),
}

impl Rel {
    fn value(p: impl Into<String>) -> Rel {
        Rel::Pointer(p.into(), Anchor::Value)
    }
}

/// Where a finding sits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum At {
    Object(ObjectId, Rel),
    /// An absolute pointer in a file (the `policy` section has no object).
    File(PathBuf, Rel),
}

/// A broken rule, not yet positioned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    pub rule: RuleCode,
    pub at: At,
    /// May contain `{other}`, replaced by the related place's `file:line:col`.
    pub message: String,
    pub help: String,
    /// The other place of a two-place problem. The loader reports the problem at the
    /// later of the two places and names the earlier one.
    pub related: Option<At>,
}

fn error(rule: RuleCode, id: &ObjectId, rel: Rel, message: String, help: String) -> Finding {
    Finding {
        severity: Severity::Error,
        rule,
        at: At::Object(id.clone(), rel),
        message,
        help,
        related: None,
    }
}

/// Every rule over the merged declaration. `complete` is false when some file could not
/// be read into objects: references are then not checked, as they may point into it.
pub fn check(
    org: &Org,
    policy: &Policy,
    policy_file: Option<&PathBuf>,
    complete: bool,
) -> Vec<Finding> {
    // Two independent halves, one per core.
    let (mut out, cross) = rayon::join(
        || {
            let mut out = object_rules(org);
            out.extend(login_rules(org));
            out.extend(declared_username_rules(org));
            out
        },
        || {
            if !complete {
                return Vec::new();
            }
            // The two walks over every representative, one per core.
            let (mut out, rest) = rayon::join(
                || reference_rules(org),
                || {
                    let mut out = leader_rules(org);
                    out.extend(portal_feature_warnings(org));
                    out.extend(inactive_team_warnings(org));
                    out
                },
            );
            out.extend(rest);
            out
        },
    );
    out.extend(cross);
    if let Some(file) = policy_file {
        out.extend(policy_warnings(policy, file));
    }
    out
}

/// Maps a model violation to a finding; a violation about a set's element points at
/// that element, found again in the file by value.
fn from_violation(id: &ObjectId, v: Violation) -> Finding {
    let rel = match (&v.item, v.pointer.rsplit_once('/')) {
        (Some(item), Some((field, _))) => Rel::Item(field.to_owned(), item.clone()),
        _ => Rel::value(v.pointer.clone()),
    };
    error(v.rule, id, rel, v.message, v.help)
}

/// The object-level rules of `model::rules` (rule 1, the feature-set restrictions, the
/// field shapes), object by object: the same calls the server makes on every write.
pub fn object_rules(org: &Org) -> Vec<Finding> {
    let mut out = Vec::new();
    // The id is built only for an object with violations: most have none.
    let mut push = |kind: Kind, key: &str, violations: Vec<Violation>| {
        if violations.is_empty() {
            return;
        }
        let id = ObjectId::new(kind, key);
        out.extend(violations.into_iter().map(|mut v| {
            // A declared team writes its last segment as `name`, not its `path`.
            if kind == Kind::Team && v.pointer == "/path" {
                v.pointer = "/name".into();
            }
            from_violation(&id, v)
        }));
    };
    for (kind, key, violations) in mrules::org_violations(org) {
        push(kind, key, violations);
    }
    out
}

/// A login held by a `kind` (manager or administrator) and by an `other` (a
/// representative with Admin Center access, or a manager).
fn collision(kind: Kind, login: &str, other: Kind) -> Finding {
    let (whose, article) = match kind {
        Kind::Administrator => ("administrator", "an"),
        _ => ("manager", "a"),
    };
    let (message, help) = if other == Kind::Representative {
        (
            format!(
                "login `{login}` is both {article} {whose}'s and a representative's with \
                 `admin_center_access` (the other is at {{other}})"
            ),
            format!(
                "give the {whose} a different login, or remove `admin_center_access` from \
                 the representative"
            ),
        )
    } else {
        (
            format!(
                "login `{login}` is both {article} {whose}'s and a manager's (the other is at \
                 {{other}})"
            ),
            "an administrator already has every right: remove the manager, or give one of \
             them another login"
                .into(),
        )
    };
    Finding {
        severity: Severity::Error,
        rule: RuleCode::LoginCollision,
        at: At::Object(ObjectId::new(kind, login), Rel::value("/login")),
        message,
        help,
        related: Some(At::Object(
            ObjectId::new(other, login),
            Rel::value("/login"),
        )),
    }
}

/// Rule 2: a manager's or administrator's login must differ from every representative
/// login (unless that representative has no Admin Center access), and administrators
/// from managers. Duplicates within a kind are found while merging.
pub fn login_rules(org: &Org) -> Vec<Finding> {
    let admin_rep = |login: &str| {
        org.representatives
            .get(login)
            .is_some_and(crate::model::Representative::login_is_exclusive)
    };
    let managers = org
        .managers
        .values()
        .map(|m| (Kind::Manager, m.login.as_str()));
    let administrators =
        (org.administrators.values()).map(|a| (Kind::Administrator, a.login.as_str()));
    let mut out = Vec::new();
    for (kind, login) in managers.chain(administrators) {
        if admin_rep(login) {
            out.push(collision(kind, login, Kind::Representative));
        }
        if kind == Kind::Administrator && org.managers.contains_key(login) {
            out.push(collision(kind, login, Kind::Manager));
        }
    }
    out
}

/// Rule 2 for user names: two representatives may not declare the same `username`.
pub fn declared_username_rules(org: &Org) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut seen: HashMap<String, &Login> = HashMap::new();
    for rep in org.representatives.values() {
        let Some(u) = &rep.username else { continue };
        let key = u.to_lowercase();
        match seen.get(&key) {
            Some(first) => out.push(Finding {
                severity: Severity::Error,
                rule: RuleCode::Duplicate,
                at: At::Object(
                    ObjectId::new(Kind::Representative, &rep.login),
                    Rel::value("/username"),
                ),
                message: format!("username `{u}` is declared twice (the other is at {{other}})"),
                help: "user names are unique ignoring case: change one of them".into(),
                related: Some(At::Object(
                    ObjectId::new(Kind::Representative, first.as_str()),
                    Rel::value("/username"),
                )),
            }),
            None => {
                seen.insert(key, &rep.login);
            }
        }
    }
    out
}

fn suggestion<'a>(word: &str, candidates: impl IntoIterator<Item = &'a String>) -> String {
    match did_you_mean(word, candidates.into_iter().map(String::as_str)) {
        Some(s) => format!("did you mean `{s}`?"),
        None => String::new(),
    }
}

fn unresolved(
    id: &ObjectId,
    rel: Rel,
    what: &str,
    name: &str,
    hint: String,
    declare: &str,
) -> Finding {
    let help = if hint.is_empty() {
        format!("declare {what} `{name}` under `{declare}:`, or fix the reference")
    } else {
        format!("{hint} (or declare {what} `{name}` under `{declare}:`)")
    };
    error(
        RuleCode::UnresolvedReference,
        id,
        rel,
        format!("{what} `{name}` is not declared"),
        help,
    )
}

/// Rule 3: every reference resolves.
pub fn reference_rules(org: &Org) -> Vec<Finding> {
    let mut out = Vec::new();
    let team = |id: &ObjectId, rel: Rel, path: &str| {
        unresolved(
            id,
            rel,
            "team",
            path,
            suggestion(path, org.teams.keys()),
            "teams",
        )
    };
    for m in org.managers.values() {
        let id = ObjectId::new(Kind::Manager, &m.login);
        for t in m.teams.iter().filter(|t| !org.teams.contains_key(*t)) {
            out.push(team(&id, Rel::Item("/teams".into(), t.clone()), t));
        }
    }
    // One lookup per representative: hashing a team path is cheaper than comparing it
    // along a B-tree of paths that share long prefixes.
    let team_paths: HashSet<&str> = org.teams.keys().map(String::as_str).collect();
    for r in org.representatives.values() {
        let team_missing = r.team.as_deref().is_some_and(|t| !team_paths.contains(t));
        if !team_missing && r.portals.iter().all(|p| org.portals.contains_key(p)) {
            continue;
        }
        let id = ObjectId::new(Kind::Representative, &r.login);
        if let Some(t) = r.team.as_ref().filter(|_| team_missing) {
            out.push(team(&id, Rel::value("/team"), t));
        }
        for p in r.portals.iter().filter(|p| !org.portals.contains_key(*p)) {
            out.push(unresolved(
                &id,
                Rel::Item("/portals".into(), p.clone()),
                "portal",
                p,
                suggestion(p, org.portals.keys()),
                "portals",
            ));
        }
    }
    for c in org.campaigns.values() {
        let id = ObjectId::new(Kind::Campaign, &c.name);
        for l in c
            .representatives
            .iter()
            .filter(|l| !org.representatives.contains_key(*l))
        {
            out.push(unresolved(
                &id,
                Rel::Item("/representatives".into(), l.clone()),
                "representative",
                l,
                suggestion(l, org.representatives.keys()),
                "representatives",
            ));
        }
        for t in c.teams.iter().filter(|t| !org.teams.contains_key(*t)) {
            out.push(team(&id, Rel::Item("/teams".into(), t.clone()), t));
        }
    }
    for g in org.contact_groups.values() {
        let id = ObjectId::new(Kind::ContactGroup, &g.name);
        for l in g.shared_with.keys() {
            if !org.representatives.contains_key(l) && !org.managers.contains_key(l) {
                let hint = suggestion(l, org.representatives.keys().chain(org.managers.keys()));
                out.push(unresolved(
                    &id,
                    Rel::Pointer(format!("/shared_with/{}", escape_segment(l)), Anchor::Key),
                    "representative or manager",
                    l,
                    hint,
                    "representatives",
                ));
            }
        }
    }
    out
}

/// Rule 3 for `contact_group_shares` (seed 003): each entry's login is a declared
/// representative or manager, reported at the entry itself. Returns the entries to
/// expand (all of them when the declaration is incomplete: the references are not
/// checked then) and the findings.
pub fn share_all_rules(
    org: &Org,
    shares: Vec<(crate::model::ContactGroupShare, PathBuf, usize)>,
    complete: bool,
) -> (Vec<crate::model::ContactGroupShare>, Vec<Finding>) {
    let mut kept = Vec::with_capacity(shares.len());
    let mut out = Vec::new();
    for (s, file, i) in shares {
        let l = &s.login;
        if !complete || org.representatives.contains_key(l) || org.managers.contains_key(l) {
            kept.push(s);
            continue;
        }
        let hint = suggestion(l, org.representatives.keys().chain(org.managers.keys()));
        // Worded as every unresolved reference is, placed in the entry's file.
        let f = unresolved(
            &ObjectId::new(Kind::ContactGroup, ""),
            Rel::value(format!("/contact_group_shares/{i}/login")),
            "representative or manager",
            l,
            hint,
            "representatives",
        );
        out.push(Finding {
            at: At::File(file, Rel::value(format!("/contact_group_shares/{i}/login"))),
            ..f
        });
    }
    (kept, out)
}

/// Rule 3: a team leader is a representative of the team or of one of its sub-teams.
pub fn leader_rules(org: &Org) -> Vec<Finding> {
    let mut out = Vec::new();
    for t in org.teams.values() {
        let Some(leader) = &t.leader else { continue };
        let id = ObjectId::new(Kind::Team, &t.path);
        match org.representatives.get(leader) {
            None => out.push(unresolved(
                &id,
                Rel::value("/leader"),
                "representative",
                leader,
                suggestion(leader, org.representatives.keys()),
                "representatives",
            )),
            Some(r) => {
                let inside = r
                    .team
                    .as_deref()
                    .is_some_and(|rt| crate::model::is_within(rt, &t.path));
                if !inside {
                    out.push(error(
                        RuleCode::LeaderNotMember,
                        &id,
                        Rel::value("/leader"),
                        format!(
                            "team leader `{leader}` is not a member of team `{}` or of its \
                             sub-teams (their team is {})",
                            t.path,
                            r.team
                                .as_deref()
                                .map(|s| format!("`{s}`"))
                                .unwrap_or_else(|| "not set".into())
                        ),
                        format!(
                            "set `team: {}` on the representative, or choose a leader from \
                             this team",
                            t.path
                        ),
                    ));
                }
            }
        }
    }
    out
}

/// Rule 4 (warning): a session feature, or `multisession` above 1, that none of the
/// representative's portals enables has no effect.
pub fn portal_feature_warnings(org: &Org) -> Vec<Finding> {
    let mut out = Vec::new();
    // A bit per feature: no allocation per representative.
    let bit = |f: Feature| 1u32 << (f as u32);
    let portal_bits: HashMap<&str, u32> = org
        .portals
        .iter()
        .map(|(name, p)| {
            (
                name.as_str(),
                p.features.iter().fold(0, |acc, f| acc | bit(*f)),
            )
        })
        .collect();
    for r in org.representatives.values() {
        let enabled: u32 = r
            .portals
            .iter()
            .filter_map(|p| portal_bits.get(p.as_str()))
            .fold(0, |acc, b| acc | b);
        let is_enabled = |f: Feature| enabled & bit(f) != 0;
        // `multisession` in `features` is an error of its own (a count, not a flag).
        let governed =
            |f: &&Feature| catalog::is_portal_feature(**f) && **f != Feature::Multisession;
        let multisession_idle = (2..=catalog::MULTISESSION_MAX).contains(&r.multisession)
            && !is_enabled(Feature::Multisession);
        if !multisession_idle && r.features.iter().filter(governed).all(|f| is_enabled(*f)) {
            continue;
        }
        let id = ObjectId::new(Kind::Representative, &r.login);
        let help = |f: &str| {
            if r.portals.is_empty() {
                format!("add a portal that enables `{f}` to `portals`, or remove the feature")
            } else {
                format!(
                    "enable `{f}` on one of the portals ({}), or remove it from this representative",
                    r.portals
                        .iter()
                        .map(String::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        };
        for f in r
            .features
            .iter()
            .filter(governed)
            .filter(|f| !is_enabled(**f))
        {
            out.push(Finding {
                severity: Severity::Warning,
                rule: RuleCode::FeatureWithoutPortal,
                at: At::Object(id.clone(), Rel::Item("/features".into(), f.id().into())),
                message: format!(
                    "`{f}` has no effect: none of this representative's portals enables it"
                ),
                help: help(f.id()),
                related: None,
            });
        }
        if multisession_idle {
            out.push(Finding {
                severity: Severity::Warning,
                rule: RuleCode::FeatureWithoutPortal,
                at: At::Object(id.clone(), Rel::value("/multisession")),
                message: format!(
                    "`multisession: {}` has no effect: none of this representative's portals \
                     enables `multisession`",
                    r.multisession
                ),
                help: help("multisession"),
                related: None,
            });
        }
    }
    out
}

/// Inactive teams still in use (`model::rules::inactive_team_warnings`), as warnings.
pub fn inactive_team_warnings(org: &Org) -> Vec<Finding> {
    mrules::inactive_team_warnings(org)
        .into_iter()
        .map(|(id, v)| Finding {
            severity: Severity::Warning,
            ..from_violation(&id, v)
        })
        .collect()
}

/// Rule 7: `on_remove: delete` only means something for kinds with a status.
pub fn policy_warnings(policy: &Policy, file: &Path) -> Vec<Finding> {
    Kind::ALL
        .into_iter()
        .filter(|k| !k.has_status() && policy.for_kind(*k).on_remove == OnRemove::Delete)
        .map(|k| Finding {
            severity: Severity::Warning,
            rule: RuleCode::DeleteNotAllowed,
            at: At::File(
                file.to_owned(),
                Rel::value(format!("/policy/{}/on_remove", k.section())),
            ),
            message: format!(
                "`on_remove: delete` has no effect on {}: they have no status, so removing \
                 one always deletes it",
                k.section()
            ),
            help: "remove `on_remove` here; it matters for representatives, teams and campaigns"
                .into(),
            related: None,
        })
        .collect()
}

/// Rule 5: operators (active representatives with support management, seed 003) must
/// not exceed the licensed seats; users (without it) are unlimited. Reported at the first
/// operator (in login order) beyond the limit.
pub fn check_seats(org: &Org, seats: u32) -> Option<Finding> {
    let operators = org.operators();
    if operators <= seats as usize {
        return None;
    }
    let first_over = org
        .representatives
        .values()
        .filter(|r| r.takes_seat())
        .nth(seats as usize)?;
    Some(error(
        RuleCode::Seats,
        &ObjectId::new(Kind::Representative, &first_over.login),
        Rel::Pointer(String::new(), Anchor::Value),
        format!(
            "{operators} operators (active representatives with support management) exceed \
             the {seats} licensed seats"
        ),
        format!(
            "set `status: inactive` or `support_management: false` on {} representatives, or \
             license more seats",
            operators - seats as usize
        ),
    ))
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::model::Representative;
    use crate::model::{Campaign, ContactGroup, Manager, Portal, Team, TeamRight};
    use std::collections::BTreeSet;

    fn rep(login: &str) -> Representative {
        crate::model::testing::rep(login, None)
    }

    fn manager(login: &str) -> Manager {
        Manager {
            login: login.into(),
            email: "m@x.example".into(),
            name: "M".into(),
            password: None,
            teams: BTreeSet::new(),
            team_rights: BTreeSet::new(),
            grantable: BTreeSet::new(),
            protect: false,
            previously: None,
        }
    }

    fn org_with(reps: Vec<Representative>) -> Org {
        let mut o = Org::default();
        for r in reps {
            o.representatives.insert(r.login.clone(), r);
        }
        o
    }

    fn rules(f: &[Finding]) -> Vec<RuleCode> {
        f.iter().map(|f| f.rule).collect()
    }

    #[test]
    fn rule1_rep_features_point_at_the_written_item() {
        let mut r = rep("a@x.example");
        r.features = [Feature::SessionReplay, Feature::ExportSessionReplay].into();
        let f = object_rules(&org_with(vec![r.clone()]));
        assert_eq!(rules(&f), vec![RuleCode::FeatureRequires]);
        assert_eq!(
            f[0].at,
            At::Object(
                ObjectId::new(Kind::Representative, "a@x.example"),
                Rel::Item("/features".into(), "session_replay".into())
            )
        );
        r.features.insert(Feature::AdminCenterAccess);
        assert!(object_rules(&org_with(vec![r])).is_empty());
    }

    #[test]
    fn rule1_manager_grantable_and_team_rights() {
        let mut o = Org::default();
        let mut m = manager("m@x.example");
        m.grantable = [Feature::Reports].into();
        m.team_rights = [TeamRight::ExportSessionReplay].into();
        o.managers.insert(m.login.clone(), m.clone());
        assert_eq!(object_rules(&o).len(), 2);
        m.grantable.insert(Feature::AdminCenterAccess);
        m.team_rights.insert(TeamRight::SessionReplay);
        o.managers.insert(m.login.clone(), m);
        assert!(object_rules(&o).is_empty());
    }

    #[test]
    fn grantable_and_portal_sets_are_restricted() {
        let mut o = Org::default();
        let mut m = manager("m@x.example");
        m.grantable = [Feature::SaveAlertConfig].into();
        o.managers.insert(m.login.clone(), m);
        o.portals.insert(
            "p".into(),
            Portal {
                name: "p".into(),
                features: [Feature::Reports].into(),
                protect: false,
                previously: None,
            },
        );
        assert_eq!(
            rules(&object_rules(&o)),
            vec![RuleCode::FeatureNotAllowed, RuleCode::FeatureNotAllowed]
        );
        o.managers.clear();
        o.portals.get_mut("p").unwrap().features = [Feature::ShareMyScreen].into();
        assert!(object_rules(&o).is_empty());
    }

    #[test]
    fn rep_features_may_not_hold_multisession() {
        let mut r = rep("a@x.example");
        r.features = [Feature::Multisession].into();
        assert_eq!(
            rules(&object_rules(&org_with(vec![r.clone()]))),
            vec![RuleCode::FeatureNotAllowed]
        );
        r.features.clear();
        assert!(object_rules(&org_with(vec![r])).is_empty());
    }

    #[test]
    fn rule2_manager_login_must_be_email() {
        let mut o = Org::default();
        o.managers.insert("marie".into(), manager("marie"));
        assert_eq!(rules(&object_rules(&o)), vec![RuleCode::ManagerLogin]);
        o.managers.clear();
        o.managers
            .insert("m@x.example".into(), manager("m@x.example"));
        assert!(object_rules(&o).is_empty());
    }

    #[test]
    fn rule2_collisions_depend_on_admin_center_access() {
        let mut r = rep("same@x.example");
        let mut o = org_with(vec![r.clone()]);
        o.managers
            .insert("same@x.example".into(), manager("same@x.example"));
        assert!(
            login_rules(&o).is_empty(),
            "no admin center access: allowed"
        );
        r.features.insert(Feature::AdminCenterAccess);
        o.representatives.insert(r.login.clone(), r);
        let f = login_rules(&o);
        assert_eq!(rules(&f), vec![RuleCode::LoginCollision]);
        assert!(f[0].related.is_some());
        assert!(f[0].message.contains("{other}"));
    }

    #[test]
    fn rule2_administrator_differs_from_manager() {
        let mut o = Org::default();
        o.managers
            .insert("a@x.example".into(), manager("a@x.example"));
        o.administrators.insert(
            "a@x.example".into(),
            crate::model::Administrator::new("a@x.example", "a@x.example", "A"),
        );
        assert_eq!(rules(&login_rules(&o)), vec![RuleCode::LoginCollision]);
        o.managers.clear();
        assert!(login_rules(&o).is_empty());
    }

    #[test]
    fn rule2_declared_usernames_unique() {
        let mut a = rep("a@x.example");
        a.username = Some("jd".into());
        let mut b = rep("b@x.example");
        b.username = Some("JD".into());
        assert_eq!(
            rules(&declared_username_rules(&org_with(vec![
                a.clone(),
                b.clone()
            ]))),
            vec![RuleCode::Duplicate]
        );
        b.username = Some("jd2".into());
        assert!(declared_username_rules(&org_with(vec![a, b])).is_empty());
    }

    #[test]
    fn rule3_references() {
        let mut r = rep("a@x.example");
        r.team = Some("Europe/Pariss".into());
        r.portals = ["web".into()].into();
        let mut o = org_with(vec![r.clone()]);
        o.teams
            .insert("Europe/Paris".into(), Team::new("Europe/Paris"));
        let mut m = manager("m@x.example");
        m.teams = ["Asia".into()].into();
        o.managers.insert(m.login.clone(), m);
        o.campaigns.insert(
            "c".into(),
            Campaign {
                name: "c".into(),
                active: true,
                representatives: ["nobody@x.example".into()].into(),
                teams: ["Europe/Paris".into()].into(),
                hidden_members: None,
                protect: false,
                previously: None,
            },
        );
        o.contact_groups.insert(
            "g".into(),
            ContactGroup {
                name: "g".into(),
                shared_with: [
                    ("m@x.example".into(), crate::model::Permission::View),
                    ("ghost@x.example".into(), crate::model::Permission::View),
                ]
                .into(),
                hidden_members: None,
                protect: false,
                previously: None,
            },
        );
        let f = reference_rules(&o);
        assert_eq!(f.len(), 5, "{f:#?}");
        assert!(f.iter().all(|f| f.rule == RuleCode::UnresolvedReference));
        let team_ref = f
            .iter()
            .find(|f| f.message.contains("Europe/Pariss"))
            .unwrap();
        assert_eq!(
            team_ref.help,
            "did you mean `Europe/Paris`? (or declare team `Europe/Pariss` under `teams:`)"
        );
        // Fixed, everything resolves.
        let mut o2 = Org::default();
        r.team = Some("Europe/Paris".into());
        r.portals.clear();
        o2.representatives.insert(r.login.clone(), r);
        o2.teams
            .insert("Europe/Paris".into(), Team::new("Europe/Paris"));
        assert!(reference_rules(&o2).is_empty());
    }

    #[test]
    fn rule3_leader_is_member_of_team_or_subteam() {
        let mut r = rep("l@x.example");
        r.team = Some("Europe/Paris".into());
        let mut o = org_with(vec![r.clone()]);
        let mut eu = Team::new("Europe");
        eu.leader = Some("l@x.example".into());
        o.teams.insert("Europe".into(), eu);
        o.teams
            .insert("Europe/Paris".into(), Team::new("Europe/Paris"));
        let mut asia = Team::new("Asia");
        asia.leader = Some("l@x.example".into());
        o.teams.insert("Asia".into(), asia);
        let mut eur = Team::new("Eur");
        eur.leader = Some("l@x.example".into());
        o.teams.insert("Eur".into(), eur);
        let f = leader_rules(&o);
        // Europe: fine (sub-team); Asia and Eur (a prefix, not a parent): not members.
        assert_eq!(
            rules(&f),
            vec![RuleCode::LeaderNotMember, RuleCode::LeaderNotMember]
        );
        let mut ghost = Team::new("Ghost");
        ghost.leader = Some("nobody@x.example".into());
        let mut o2 = org_with(vec![r]);
        o2.teams.insert("Ghost".into(), ghost);
        assert_eq!(
            rules(&leader_rules(&o2)),
            vec![RuleCode::UnresolvedReference]
        );
    }

    #[test]
    fn rule4_warns_for_session_features_without_portal() {
        let mut r = rep("a@x.example");
        r.features = [
            Feature::ShareMyScreen,
            Feature::Reports,
            Feature::AdminCenterAccess,
        ]
        .into();
        r.multisession = 3;
        r.portals = ["web".into()].into();
        let mut o = org_with(vec![r]);
        o.portals.insert(
            "web".into(),
            Portal {
                name: "web".into(),
                features: BTreeSet::new(),
                protect: false,
                previously: None,
            },
        );
        let f = portal_feature_warnings(&o);
        assert_eq!(f.len(), 2);
        assert!(f.iter().all(|f| f.severity == Severity::Warning));
        o.portals.get_mut("web").unwrap().features =
            [Feature::ShareMyScreen, Feature::Multisession].into();
        assert!(portal_feature_warnings(&o).is_empty());
    }

    #[test]
    fn rule5_seats() {
        let o = org_with(vec![
            rep("a@x.example"),
            rep("b@x.example"),
            rep("c@x.example"),
        ]);
        let f = check_seats(&o, 2).unwrap();
        assert_eq!(f.rule, RuleCode::Seats);
        assert_eq!(
            f.at,
            At::Object(
                ObjectId::new(Kind::Representative, "c@x.example"),
                Rel::Pointer(String::new(), Anchor::Value)
            )
        );
        assert!(check_seats(&o, 3).is_none());
        // Users (no support management) take no seat, however many; operators do.
        let mut user = rep("d@x.example");
        user.support_management = false;
        let mut o = org_with(vec![rep("a@x.example"), user.clone(), {
            let mut u = user.clone();
            u.login = "e@x.example".into();
            u
        }]);
        assert!(check_seats(&o, 1).is_none());
        o.representatives
            .get_mut("d@x.example")
            .unwrap()
            .support_management = true;
        let f = check_seats(&o, 1).unwrap();
        assert_eq!(
            f.at,
            At::Object(
                ObjectId::new(Kind::Representative, "d@x.example"),
                Rel::Pointer(String::new(), Anchor::Value)
            )
        );
        assert!(f.message.starts_with("2 operators"), "{}", f.message);
    }

    #[test]
    fn rule7_delete_policy_on_kind_without_status_warns() {
        let mut p = Policy::default();
        p.representatives.on_remove = OnRemove::Delete;
        assert!(policy_warnings(&p, &PathBuf::from("p.yaml")).is_empty());
        p.portals.on_remove = OnRemove::Delete;
        let f = policy_warnings(&p, &PathBuf::from("p.yaml"));
        assert_eq!(rules(&f), vec![RuleCode::DeleteNotAllowed]);
        assert_eq!(f[0].severity, Severity::Warning);
    }

    #[test]
    fn rule8_secret_shape() {
        let mut m = manager("m@x.example");
        m.password = Some(Box::new(crate::model::SecretRef {
            env: Some("A".into()),
            file: Some("b".into()),
            ..Default::default()
        }));
        let mut o = Org::default();
        o.managers.insert(m.login.clone(), m.clone());
        assert_eq!(rules(&object_rules(&o)), vec![RuleCode::Secret]);
        m.password = Some(Box::new(crate::model::SecretRef {
            env: Some("A".into()),
            ..Default::default()
        }));
        o.managers.insert(m.login.clone(), m);
        assert!(object_rules(&o).is_empty());
    }
}
