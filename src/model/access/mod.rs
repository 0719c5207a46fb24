//! Effective permissions ("who can do what"): from an [`Org`] — the declaration's or the
//! live system's, the same types — what each person holds *in effect*, and who holds
//! each feature and team right.
//!
//! The product's rules of effect, written here once:
//! - a portal-governed session feature (`catalog::PORTAL_FEATURES`) takes effect only
//!   where one of the representative's portals enables it (seed 001); `multisession`
//!   above 1 likewise, otherwise the representative has one session at a time;
//! - a feature whose requirement (`catalog::FEATURE_REQUIRES`) is not in effect has no
//!   effect either (seed 000's "must be on before"), and so for team rights
//!   (`catalog::RIGHT_REQUIRES`) and a manager's `grantable` set;
//! - an inactive representative holds nothing in effect (seed 004: deactivated, kept
//!   only for its statistics);
//! - a representative is in an active campaign directly, or through a team the campaign
//!   selects: its own team or an ancestor of it (a campaign selecting `Europe` reaches
//!   `Europe/Paris`), while that team is active (seed 004: an inactive group is out of
//!   service, so a campaign reaches nobody through it; its members keep their direct
//!   campaigns and everything else);
//! - a manager holds its team rights on each team it is assigned and on every sub-team
//!   of those (seed 000: it manages the teams and their sub-teams);
//! - administrators hold every right account-wide (seeds 002, 004): they are listed
//!   apart and are not counted as holders of a feature or team right.
//!
//! Used by `ops::access` (`roster access`); [`expect`] holds the `--expect` grammar and
//! its evaluation, [`Filter`] the report's filters. Pure, deterministic (`BTreeMap`s).

pub mod expect;

use std::collections::{BTreeMap, BTreeSet};

use rayon::prelude::*;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::catalog::{self, FEATURE_REQUIRES, RIGHT_REQUIRES};
pub use super::is_within;
use super::{Feature, Login, Org, Permission, Representative, Status, TeamPath, TeamRight};

/// A team's path and every ancestor's, nearest first (`Europe/Paris`, `Europe`).
pub fn team_and_ancestors(path: &str) -> impl Iterator<Item = &str> {
    std::iter::successors(Some(path), |p| p.rsplit_once('/').map(|(parent, _)| parent))
}

/// The features of `wanted` that take effect given `requires`: a feature whose
/// requirement is not itself in effect is dropped, transitively.
fn closed<T: Ord + Copy>(mut set: BTreeSet<T>, requires: &[(T, T)]) -> BTreeSet<T> {
    loop {
        let before = set.len();
        for (f, needs) in requires {
            if set.contains(f) && !set.contains(needs) {
                set.remove(f);
            }
        }
        if set.len() == before {
            return set;
        }
    }
}

/// How a representative is in a campaign.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CampaignVia {
    /// Selected by login.
    #[serde(default)]
    pub direct: bool,
    /// The selected teams that reach it: its own team or ancestors of it.
    #[serde(default)]
    pub teams: BTreeSet<TeamPath>,
}

/// What one representative holds in effect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RepAccess {
    pub status: Status,
    /// Its team, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<TeamPath>,
    /// Its team and every ancestor, nearest first.
    #[serde(default)]
    pub within: Vec<TeamPath>,
    /// The portals it is enabled on.
    #[serde(default)]
    pub portals: crate::model::SortedSet<String>,
    /// The features in effect (`multisession` when more than one session is in effect).
    /// Empty when inactive.
    #[serde(default)]
    pub features: BTreeSet<Feature>,
    /// Sessions at once in effect: 1 unless a portal of its enables `multisession`; 0
    /// when inactive.
    pub multisession: u8,
    /// Features it is given that have no effect, with why.
    #[serde(default)]
    pub without_effect: BTreeMap<Feature, NoEffect>,
    /// Active campaigns it works on, and how.
    #[serde(default)]
    pub campaigns: BTreeMap<String, CampaignVia>,
    /// Contact groups shared with it, and the permission.
    #[serde(default)]
    pub contact_groups: BTreeMap<String, Permission>,
}

impl RepAccess {
    pub fn is_active(&self) -> bool {
        self.status == Status::Active
    }
}

/// Why a feature given to a representative has no effect.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum NoEffect {
    /// The representative is inactive.
    Inactive,
    /// None of its portals enables this session feature.
    NoPortal,
    /// The feature it requires is not in effect.
    Requirement,
}

impl NoEffect {
    pub fn describe(self) -> &'static str {
        match self {
            NoEffect::Inactive => "inactive",
            NoEffect::NoPortal => "no portal of theirs enables it",
            NoEffect::Requirement => "the feature it needs is not in effect",
        }
    }
}

/// What one manager holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ManagerAccess {
    /// The teams assigned.
    #[serde(default)]
    pub teams: BTreeSet<TeamPath>,
    /// Every team its rights reach: the assigned teams and all their sub-teams.
    #[serde(default)]
    pub covers: BTreeSet<TeamPath>,
    /// The team rights it holds on each of `covers`.
    #[serde(default)]
    pub team_rights: BTreeSet<TeamRight>,
    /// The features it may turn on or off for the representatives of those teams.
    #[serde(default)]
    pub may_grant: BTreeSet<Feature>,
    /// Contact groups shared with it, and the permission.
    #[serde(default)]
    pub contact_groups: BTreeMap<String, Permission>,
}

/// Everyone's effective permissions in one organization.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Access {
    /// Administrators: every right account-wide, not counted below.
    #[serde(default)]
    pub administrators: BTreeSet<Login>,
    #[serde(default)]
    pub representatives: BTreeMap<Login, RepAccess>,
    #[serde(default)]
    pub managers: BTreeMap<Login, ManagerAccess>,
    /// Each feature → the representatives holding it in effect.
    #[serde(default)]
    pub features: BTreeMap<Feature, BTreeSet<Login>>,
    /// Each team right → the managers holding it.
    #[serde(default)]
    pub team_rights: BTreeMap<TeamRight, BTreeSet<Login>>,
}

/// One representative's effect, given the portals' enabled features and the campaign
/// and contact-group indexes.
fn rep_access(
    org: &Org,
    r: &Representative,
    campaigns_by_team: &BTreeMap<&str, Vec<&str>>,
    campaigns_by_rep: &BTreeMap<&str, Vec<&str>>,
    groups: &BTreeMap<&str, Vec<(&str, Permission)>>,
) -> RepAccess {
    let within: Vec<TeamPath> = r
        .team
        .as_deref()
        .map(|t| team_and_ancestors(t).map(str::to_string).collect())
        .unwrap_or_default();
    let mut given = r.features.clone();
    if r.multisession > 1 {
        given.insert(Feature::Multisession);
    }
    let mut without_effect = BTreeMap::new();
    if r.status == Status::Inactive {
        for f in &given {
            without_effect.insert(*f, NoEffect::Inactive);
        }
        return RepAccess {
            status: r.status,
            team: r.team.clone(),
            within,
            portals: r.portals.clone(),
            features: BTreeSet::new(),
            multisession: 0,
            without_effect,
            campaigns: BTreeMap::new(),
            contact_groups: BTreeMap::new(),
        };
    }
    let enabled = |f: Feature| {
        r.portals.iter().any(|p| {
            org.portals
                .get(p)
                .is_some_and(|portal| portal.features.contains(&f))
        })
    };
    let portal_ok: BTreeSet<Feature> = given
        .iter()
        .copied()
        .filter(|f| {
            let ok = !catalog::is_portal_feature(*f) || enabled(*f);
            if !ok {
                without_effect.insert(*f, NoEffect::NoPortal);
            }
            ok
        })
        .collect();
    let features = closed(portal_ok.clone(), FEATURE_REQUIRES);
    for f in portal_ok.difference(&features) {
        without_effect.insert(*f, NoEffect::Requirement);
    }
    let multisession = if features.contains(&Feature::Multisession) {
        r.multisession
    } else {
        1
    };
    let mut campaigns: BTreeMap<String, CampaignVia> = BTreeMap::new();
    if let Some(names) = campaigns_by_rep.get(r.login.as_str()) {
        for c in names {
            campaigns.entry((*c).to_string()).or_default().direct = true;
        }
    }
    for t in &within {
        if let Some(names) = campaigns_by_team.get(t.as_str()) {
            for c in names {
                campaigns
                    .entry((*c).to_string())
                    .or_default()
                    .teams
                    .insert(t.clone());
            }
        }
    }
    RepAccess {
        status: r.status,
        team: r.team.clone(),
        within,
        portals: r.portals.clone(),
        features,
        multisession,
        without_effect,
        campaigns,
        contact_groups: shared(groups, &r.login),
    }
}

fn shared(
    groups: &BTreeMap<&str, Vec<(&str, Permission)>>,
    login: &str,
) -> BTreeMap<String, Permission> {
    groups
        .get(login)
        .map(|gs| gs.iter().map(|(g, p)| ((*g).to_string(), *p)).collect())
        .unwrap_or_default()
}

/// Every team `teams` reaches in `org`: each of them and all their sub-teams.
fn covered(org: &Org, teams: &BTreeSet<TeamPath>) -> BTreeSet<TeamPath> {
    let mut out = BTreeSet::new();
    for t in teams {
        out.insert(t.clone());
        let prefix = format!("{t}/");
        out.extend(
            org.teams
                .range(prefix.clone()..)
                .map(|(p, _)| p)
                .take_while(|p| p.starts_with(&prefix))
                .cloned(),
        );
    }
    out
}

impl Access {
    /// Everyone's effective permissions in `org`.
    pub fn of(org: &Org) -> Access {
        let mut campaigns_by_team: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        let mut campaigns_by_rep: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        let team_active = |t: &str| org.teams.get(t).is_none_or(|t| t.active);
        for c in org.campaigns.values().filter(|c| c.active) {
            for t in c.teams.iter().filter(|t| team_active(t)) {
                campaigns_by_team.entry(t).or_default().push(&c.name);
            }
            for l in &c.representatives {
                campaigns_by_rep.entry(l).or_default().push(&c.name);
            }
        }
        let mut groups: BTreeMap<&str, Vec<(&str, Permission)>> = BTreeMap::new();
        for g in org.contact_groups.values() {
            for (login, p) in &g.shared_with {
                groups.entry(login).or_default().push((&g.name, *p));
            }
        }
        let mut access = Access {
            administrators: org.administrators.keys().cloned().collect(),
            ..Access::default()
        };
        // On every core: each representative's effect depends on nothing but the indexes.
        let reps: Vec<(Login, RepAccess)> = org
            .representatives
            .par_iter()
            .map(|(login, r)| {
                let a = rep_access(org, r, &campaigns_by_team, &campaigns_by_rep, &groups);
                (login.clone(), a)
            })
            .collect();
        for (login, a) in &reps {
            for f in &a.features {
                access.features.entry(*f).or_default().insert(login.clone());
            }
        }
        access.representatives = reps.into_iter().collect();
        for (login, m) in &org.managers {
            let team_rights = closed(m.team_rights.clone(), RIGHT_REQUIRES);
            let may_grant = closed(
                m.grantable
                    .iter()
                    .copied()
                    .filter(|f| catalog::is_grantable(*f))
                    .collect(),
                FEATURE_REQUIRES,
            );
            for r in &team_rights {
                access
                    .team_rights
                    .entry(*r)
                    .or_default()
                    .insert(login.clone());
            }
            access.managers.insert(
                login.clone(),
                ManagerAccess {
                    teams: m.teams.clone(),
                    covers: covered(org, &m.teams),
                    team_rights,
                    may_grant,
                    contact_groups: shared(&groups, login),
                },
            );
        }
        access
    }

    /// The holders of `what`, each with the teams where they hold it (a
    /// representative: its team; a manager: the teams assigned), in login order.
    pub fn holders(&self, what: Subject) -> BTreeMap<&str, Holder<'_>> {
        let mut out = BTreeMap::new();
        if let Some(f) = what.feature {
            for login in self.features.get(&f).into_iter().flatten() {
                let r = &self.representatives[login];
                out.insert(login.as_str(), Holder::Representative(r));
            }
        }
        if let Some(t) = what.right {
            for login in self.team_rights.get(&t).into_iter().flatten() {
                let m = &self.managers[login];
                out.entry(login.as_str()).or_insert(Holder::Manager(m));
            }
        }
        out
    }

    /// Whether `login` holds `what` in effect.
    pub fn holds(&self, login: &str, what: Subject) -> bool {
        what.feature
            .is_some_and(|f| self.features.get(&f).is_some_and(|s| s.contains(login)))
            || what
                .right
                .is_some_and(|t| self.team_rights.get(&t).is_some_and(|s| s.contains(login)))
    }

    /// Whether `login` is a representative, a manager or an administrator here.
    pub fn knows(&self, login: &str) -> bool {
        self.representatives.contains_key(login)
            || self.managers.contains_key(login)
            || self.administrators.contains(login)
    }
}

/// What an expectation or a filter is about: a feature, a team right, or both when one
/// name is both (`session_replay`, `export_session_replay`, `schedule_reports`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subject {
    pub feature: Option<Feature>,
    pub right: Option<TeamRight>,
}

impl Subject {
    /// `NAME` (the feature and the team right of that name, whichever exist),
    /// `feature:NAME` or `right:NAME`.
    pub fn parse(s: &str) -> Result<Subject, String> {
        let (kind, name) = match s.split_once(':') {
            Some((k @ ("feature" | "right"), n)) => (Some(k), n),
            Some(_) => {
                return Err(format!(
                    "`{s}`: only `feature:` and `right:` may prefix a name"
                ));
            }
            None => (None, s),
        };
        let feature = (kind != Some("right"))
            .then(|| Feature::from_id(name))
            .flatten();
        let right = (kind != Some("feature"))
            .then(|| TeamRight::from_id(name))
            .flatten();
        if feature.is_none() && right.is_none() {
            let known: Vec<&str> = match kind {
                Some("feature") => Feature::ALL.iter().map(|f| f.id()).collect(),
                Some("right") => TeamRight::ALL.iter().map(|r| r.id()).collect(),
                _ => {
                    let mut all: BTreeSet<&str> = Feature::ALL.iter().map(|f| f.id()).collect();
                    all.extend(TeamRight::ALL.iter().map(|r| r.id()));
                    all.into_iter().collect()
                }
            };
            let what = match kind {
                Some("feature") => "feature",
                Some("right") => "team right",
                _ => "feature or team right",
            };
            return Err(format!(
                "`{name}` is no {what}; known: {}",
                known.join(", ")
            ));
        }
        Ok(Subject { feature, right })
    }
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.feature, self.right) {
            (Some(x), None) => write!(f, "feature {x}"),
            (None, Some(x)) => write!(f, "team right {x}"),
            (Some(x), Some(_)) => write!(f, "{x} (feature or team right)"),
            (None, None) => f.write_str("nothing"),
        }
    }
}

/// Someone who holds a feature (a representative) or a team right (a manager).
#[derive(Debug, Clone, Copy)]
pub enum Holder<'a> {
    Representative(&'a RepAccess),
    Manager(&'a ManagerAccess),
}

impl Holder<'_> {
    /// Whether every place it holds it from sits within one of `teams`: a
    /// representative's team, a manager's assigned teams (a representative with no team,
    /// a manager with none, sits nowhere).
    pub fn only_within(&self, teams: &[String]) -> bool {
        let inside = |p: &str| teams.iter().any(|t| is_within(p, t));
        match self {
            Holder::Representative(r) => r.team.as_deref().is_some_and(inside),
            Holder::Manager(m) => !m.teams.is_empty() && m.teams.iter().all(|t| inside(t)),
        }
    }

    /// Where it holds it, for messages: `Europe/Paris`, `manager of Europe, Support-Tier2`.
    pub fn place(&self) -> String {
        match self {
            Holder::Representative(r) => r.team.clone().unwrap_or_else(|| "no team".into()),
            Holder::Manager(m) => format!(
                "manager of {}",
                if m.teams.is_empty() {
                    "no team".to_string()
                } else {
                    m.teams.iter().cloned().collect::<Vec<_>>().join(", ")
                }
            ),
        }
    }
}

/// The report's filters; an empty one keeps everything.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Logins (globs, `*` any characters) to keep.
    pub logins: Vec<globset::GlobMatcher>,
    /// Teams to keep, sub-teams included: representatives within, managers whose rights
    /// reach one.
    pub teams: Vec<TeamPath>,
    /// Features to keep (people holding none of them are left out).
    pub features: BTreeSet<Feature>,
    /// Team rights to keep (people holding none of them are left out).
    pub rights: BTreeSet<TeamRight>,
}

impl Filter {
    pub fn is_empty(&self) -> bool {
        self.logins.is_empty()
            && self.teams.is_empty()
            && self.features.is_empty()
            && self.rights.is_empty()
    }

    /// A glob over logins, matched ignoring case.
    pub fn login_glob(s: &str) -> Result<globset::GlobMatcher, String> {
        globset::GlobBuilder::new(&s.to_lowercase())
            .literal_separator(false)
            .build()
            .map(|g| g.compile_matcher())
            .map_err(|e| format!("`{s}` is not a valid glob: {}", e.kind()))
    }

    fn login_ok(&self, login: &str) -> bool {
        self.logins.is_empty() || self.logins.iter().any(|g| g.is_match(login))
    }

    fn team_ok(&self, path: &str) -> bool {
        self.teams.is_empty() || self.teams.iter().any(|t| is_within(path, t))
    }

    /// `access` cut down to what the filter keeps; the per-holder sections follow.
    pub fn apply(&self, access: &Access) -> Access {
        if self.is_empty() {
            return access.clone();
        }
        let by_what = !self.features.is_empty() || !self.rights.is_empty();
        let mut out = Access {
            administrators: if self.teams.is_empty() && !by_what {
                access
                    .administrators
                    .iter()
                    .filter(|l| self.login_ok(l))
                    .cloned()
                    .collect()
            } else {
                BTreeSet::new()
            },
            ..Access::default()
        };
        for (login, r) in &access.representatives {
            let in_team =
                self.teams.is_empty() || r.team.as_deref().is_some_and(|t| self.team_ok(t));
            if !self.login_ok(login) || !in_team {
                continue;
            }
            let mut r = r.clone();
            if by_what {
                r.features.retain(|f| self.features.contains(f));
                if r.features.is_empty() {
                    continue;
                }
            }
            for f in &r.features {
                out.features.entry(*f).or_default().insert(login.clone());
            }
            out.representatives.insert(login.clone(), r);
        }
        for (login, m) in &access.managers {
            let in_team = self.teams.is_empty() || m.covers.iter().any(|t| self.team_ok(t));
            if !self.login_ok(login) || !in_team {
                continue;
            }
            let mut m = m.clone();
            if !self.teams.is_empty() {
                m.covers.retain(|t| self.team_ok(t));
            }
            if by_what {
                m.team_rights.retain(|r| self.rights.contains(r));
                if m.team_rights.is_empty() {
                    continue;
                }
            }
            for r in &m.team_rights {
                out.team_rights.entry(*r).or_default().insert(login.clone());
            }
            out.managers.insert(login.clone(), m);
        }
        out
    }
}

/// Where the organization of a report came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The declaration files.
    Declaration,
    /// The live system, as the token reads it.
    Live,
}

/// The document `roster access --format json` prints (`schemas/access.schema.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(
    title = "roster access report",
    description = "Effective permissions: what each person holds in effect, and who holds each feature and team right."
)]
pub struct Report {
    pub source: Source,
    /// Whether `--login`, `--team`, `--feature` or `--right` cut the report down.
    pub filtered: bool,
    #[serde(flatten)]
    pub access: Access,
    /// Each `--expect`, judged against the whole organization (filters do not apply).
    #[serde(default)]
    pub expectations: Vec<expect::Outcome>,
}

/// The JSON Schema of [`Report`] (what `schemas/access.schema.json` holds).
pub fn report_schema() -> String {
    let schema = schemars::schema_for!(Report);
    let mut s = serde_json::to_string_pretty(&schema).expect("a schema always serializes");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests;
