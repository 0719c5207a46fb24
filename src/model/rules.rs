//! The product's dependency rules (DESIGN §2), as pure checks over model objects.
//!
//! Shared by `config::rules` (which adds file:line:column) and by `server` (which turns a
//! [`Violation`] into an RFC 9457 problem with a JSON pointer). Object-level checks live
//! here; checks across objects that need the whole declaration live in `config::rules`,
//! and the server enforces their live equivalents against its store.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::catalog::{self, FEATURE_REQUIRES, RIGHT_REQUIRES};
use super::{
    Administrator, Campaign, ContactGroup, Feature, Kind, Manager, ObjectId, Org, Portal,
    Representative, SecretRef, Status, Team, TeamRight,
};

/// Stable rule codes: they appear in diagnostics, JSON output and API problems.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum RuleCode {
    /// YAML that does not parse.
    YamlSyntax,
    /// A mapping key given twice.
    DuplicateKey,
    /// Anchors/aliases expanding past the limit, a file over the size limit, non-UTF-8.
    InputLimit,
    /// An empty or comment-only file.
    EmptyFile,
    /// A path that does not exist or cannot be read.
    Unreadable,
    /// A value of the wrong type, a missing field, an out-of-range value.
    Schema,
    /// A key the schema does not know.
    UnknownKey,
    /// A value outside its enumeration (a right or feature name).
    UnknownValue,
    /// `version` other than 1.
    Version,
    /// Rule 1: a feature or right without the one it requires.
    FeatureRequires,
    /// Rule 2: the same login or name declared twice.
    Duplicate,
    /// Rule 2: a manager login that is not an e-mail address.
    ManagerLogin,
    /// Rule 2: a manager or administrator login equal to a representative's login while
    /// that representative has Admin Center access, or an administrator equal to a manager.
    LoginCollision,
    /// Rule 3: a reference to something not declared.
    UnresolvedReference,
    /// Rule 3: a team leader who is not a member of the team or of a sub-team.
    LeaderNotMember,
    /// Rule 4 (warning): a session feature no portal of the representative enables.
    FeatureWithoutPortal,
    /// (Warning) an inactive team (seed 004's group `active` flag) with active members or
    /// targeted by an active campaign, or an active team led by an inactive representative.
    InactiveTeam,
    /// Rule 5: more operators (active, with support management) than licensed seats.
    Seats,
    /// Rule 6: an action outside the manager token's scope or rights.
    Escalation,
    /// Rule 7: deletion without the declared policy and `--allow-delete`.
    DeleteNotAllowed,
    /// Rule 8: a password given as text, or a secret reference that is not exactly one
    /// of `env`/`file`, or one that cannot be read.
    Secret,
    /// A feature set holding a feature it may not hold (portal/grantable/multisession).
    FeatureNotAllowed,
    /// A rename whose old and new names both exist.
    RenameConflict,
    /// A protected object that a plan would remove.
    Protected,
    /// A plan whose removals (objects and relationships) exceed the policy's threshold,
    /// refused unless `--force`.
    RemovalThreshold,
    /// A change a partial plan keeps (`--target`) depends on one that `--exclude` leaves
    /// out.
    TargetDependency,
    /// A change the live system's dry run of the plan (`POST /v1/plan:check`) says it
    /// would refuse.
    ServerCheck,
    /// A password the plan would send that breaks the account's password policy (the
    /// declared one, else the live one).
    PasswordPolicy,
}

impl RuleCode {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleCode::YamlSyntax => "yaml-syntax",
            RuleCode::DuplicateKey => "duplicate-key",
            RuleCode::InputLimit => "input-limit",
            RuleCode::EmptyFile => "empty-file",
            RuleCode::Unreadable => "unreadable",
            RuleCode::Schema => "schema",
            RuleCode::UnknownKey => "unknown-key",
            RuleCode::UnknownValue => "unknown-value",
            RuleCode::Version => "version",
            RuleCode::FeatureRequires => "feature-requires",
            RuleCode::Duplicate => "duplicate",
            RuleCode::ManagerLogin => "manager-login",
            RuleCode::LoginCollision => "login-collision",
            RuleCode::UnresolvedReference => "unresolved-reference",
            RuleCode::LeaderNotMember => "leader-not-member",
            RuleCode::FeatureWithoutPortal => "feature-without-portal",
            RuleCode::InactiveTeam => "inactive-team",
            RuleCode::Seats => "seats",
            RuleCode::Escalation => "escalation",
            RuleCode::DeleteNotAllowed => "delete-not-allowed",
            RuleCode::Secret => "secret",
            RuleCode::FeatureNotAllowed => "feature-not-allowed",
            RuleCode::RenameConflict => "rename-conflict",
            RuleCode::Protected => "protected",
            RuleCode::RemovalThreshold => "removal-threshold",
            RuleCode::TargetDependency => "target-dependency",
            RuleCode::ServerCheck => "server-check",
            RuleCode::PasswordPolicy => "password-policy",
        }
    }
}

impl RuleCode {
    /// Every rule code, in the order of the README's rules table: the catalogue that
    /// SARIF's `tool.driver.rules` lists (a test checks it against the README).
    pub const ALL: &'static [RuleCode] = &[
        RuleCode::FeatureRequires,
        RuleCode::Duplicate,
        RuleCode::ManagerLogin,
        RuleCode::LoginCollision,
        RuleCode::UnresolvedReference,
        RuleCode::LeaderNotMember,
        RuleCode::FeatureWithoutPortal,
        RuleCode::Seats,
        RuleCode::Escalation,
        RuleCode::DeleteNotAllowed,
        RuleCode::Secret,
        RuleCode::FeatureNotAllowed,
        RuleCode::InactiveTeam,
        RuleCode::Schema,
        RuleCode::Protected,
        RuleCode::RemovalThreshold,
        RuleCode::TargetDependency,
        RuleCode::RenameConflict,
        RuleCode::ServerCheck,
        RuleCode::PasswordPolicy,
        RuleCode::YamlSyntax,
        RuleCode::DuplicateKey,
        RuleCode::InputLimit,
        RuleCode::EmptyFile,
        RuleCode::Unreadable,
        RuleCode::UnknownKey,
        RuleCode::UnknownValue,
        RuleCode::Version,
    ];

    /// The product rule's number (DESIGN §2, the README's rules table), for the rules
    /// that have one.
    pub fn number(self) -> Option<u8> {
        Some(match self {
            RuleCode::FeatureRequires => 1,
            RuleCode::Duplicate | RuleCode::ManagerLogin | RuleCode::LoginCollision => 2,
            RuleCode::UnresolvedReference | RuleCode::LeaderNotMember => 3,
            RuleCode::FeatureWithoutPortal => 4,
            RuleCode::Seats => 5,
            RuleCode::Escalation => 6,
            RuleCode::DeleteNotAllowed => 7,
            RuleCode::Secret => 8,
            _ => return None,
        })
    }

    /// Whether the rule is a warning by default (rule 4; a diagnostic carries its own
    /// severity whatever this says).
    pub fn default_severity_is_warning(self) -> bool {
        matches!(
            self,
            RuleCode::FeatureWithoutPortal | RuleCode::InactiveTeam
        )
    }

    /// One line naming what the rule checks (SARIF's `shortDescription`).
    pub fn summary(self) -> &'static str {
        match self {
            RuleCode::YamlSyntax => "The file is not valid YAML",
            RuleCode::DuplicateKey => "A mapping key is given twice",
            RuleCode::InputLimit => "The input is over a limit or not UTF-8",
            RuleCode::EmptyFile => "The file is empty or holds only comments",
            RuleCode::Unreadable => "The path cannot be read",
            RuleCode::Schema => "A value has the wrong type or shape",
            RuleCode::UnknownKey => "A key the schema does not know",
            RuleCode::UnknownValue => "A right or feature name the schema does not know",
            RuleCode::Version => "The declaration's version is not 1",
            RuleCode::FeatureRequires => "A feature or right lacks the one it requires",
            RuleCode::Duplicate => "The same login, name, path or user name is declared twice",
            RuleCode::ManagerLogin => "A manager login is not an e-mail address",
            RuleCode::LoginCollision => {
                "A manager or administrator login collides with another account's"
            }
            RuleCode::UnresolvedReference => "A reference names something not declared",
            RuleCode::LeaderNotMember => "A team leader is not a member of the team",
            RuleCode::FeatureWithoutPortal => "A session feature no portal enables",
            RuleCode::InactiveTeam => {
                "An inactive team still in use, or a team led by an inactive representative"
            }
            RuleCode::Seats => "More operators than licensed seats",
            RuleCode::Escalation => "A change outside the manager token's scope or rights",
            RuleCode::DeleteNotAllowed => "A representative deleted without permission",
            RuleCode::Secret => "A password as text, or a secret reference that is wrong",
            RuleCode::FeatureNotAllowed => "A feature set holds a feature it may not hold",
            RuleCode::RenameConflict => "A rename whose old and new keys both exist",
            RuleCode::Protected => "A plan would remove a protected object",
            RuleCode::RemovalThreshold => "A plan's removals exceed the removal threshold",
            RuleCode::TargetDependency => {
                "A targeted change depends on a change that --exclude leaves out"
            }
            RuleCode::ServerCheck => "The live system's dry run of the plan would refuse a change",
            RuleCode::PasswordPolicy => "A password breaks the account's password policy",
        }
    }

    /// What the rule means and how to satisfy it (SARIF's `fullDescription` and `help`),
    /// as the README's rules table says it.
    pub fn description(self) -> &'static str {
        match self {
            RuleCode::YamlSyntax => {
                "The file does not parse as YAML 1.2. Fix the syntax at the place shown."
            }
            RuleCode::DuplicateKey => {
                "A key appears twice in the same mapping. Remove one of the two, or merge their values."
            }
            RuleCode::InputLimit => {
                "Anchors and aliases expand past the node limit, the file is over the size \
                 limit, or it is not UTF-8. Write the values out, split the file, or re-encode it."
            }
            RuleCode::EmptyFile => {
                "A declaration file is empty or holds only comments. Declare something in it, or remove it."
            }
            RuleCode::Unreadable => {
                "A path given on the command line does not exist or cannot be read."
            }
            RuleCode::Schema => {
                "A value of the wrong type or shape, a missing field or a value out of range \
                 (among them a `username` that is empty, longer than 100 characters or holds a \
                 space or control character). The schema is `schemas/roster.schema.json`."
            }
            RuleCode::UnknownKey => {
                "A key the schema does not know (unknown keys are errors, not ignored). Check its spelling."
            }
            RuleCode::UnknownValue => {
                "A right or feature name outside its list. Use one of the names the catalogue lists."
            }
            RuleCode::Version => "`version` must be 1 (or be left out).",
            RuleCode::FeatureRequires => {
                "Rule 1: `reports` and `session_replay` need `admin_center_access`; \
                 `export_session_replay` needs `session_replay`: in a representative's \
                 `features`, in a manager's `grantable`, and (replay export) in `team_rights`. \
                 Add the required feature or right, or remove the one that needs it."
            }
            RuleCode::Duplicate => {
                "Rule 2: the same login (case-insensitive), name, team path or declared user \
                 name twice; at plan time, a user name held by a live representative that no \
                 file declares, or user names exchanged in a cycle."
            }
            RuleCode::ManagerLogin => "Rule 2: a manager's login must be an e-mail address.",
            RuleCode::LoginCollision => {
                "Rule 2: a manager or administrator login equal to a representative's login \
                 while that representative has `admin_center_access`, or an administrator \
                 equal to a manager."
            }
            RuleCode::UnresolvedReference => {
                "Rule 3: a team, portal, representative or manager is named but not declared. \
                 Declare it, or fix the name."
            }
            RuleCode::LeaderNotMember => {
                "Rule 3: a team's leader must be a representative of the team or of one of its sub-teams."
            }
            RuleCode::FeatureWithoutPortal => {
                "Rule 4 (warning): a session feature (or `multisession` above 1) that none of \
                 the representative's portals enables has no effect. Enable it on a portal of \
                 the representative, or remove it."
            }
            RuleCode::InactiveTeam => {
                "(Warning) a team with `active: false` that still has active representatives \
                 or is targeted by an active campaign, or an active team whose leader is \
                 inactive. The console keeps such teams (seed 004), so this does not block; \
                 deactivate or move the members, drop the team from the campaign, choose an \
                 active leader, or set `active: true` on the team."
            }
            RuleCode::Seats => {
                "Rule 5: more operators (active representatives with `support_management`, \
                 seed 003) than the account's licensed seats (`validate --seats N`, or read \
                 from the live account by `plan`); users without support management are \
                 unlimited."
            }
            RuleCode::Escalation => {
                "Rule 6: acting with a manager's token, a change outside the manager's teams, a \
                 feature outside its `grantable`, a manager created without `manage_managers` \
                 or with more rights than its own, or a write without the team right that covers it."
            }
            RuleCode::DeleteNotAllowed => {
                "Rule 7: deleting a representative loses its statistics; it needs both \
                 `on_remove: delete` in the policy and `--allow-delete`. Otherwise removal deactivates."
            }
            RuleCode::Secret => {
                "Rule 8: a password written as text, or a reference that is not exactly one of \
                 `env` / `file`, or that cannot be read. Write `password: { env: VARIABLE }` or \
                 `password: { file: path }`."
            }
            RuleCode::FeatureNotAllowed => {
                "A feature a set may not hold: a non-session feature on a portal, a \
                 non-grantable one in `grantable`, `multisession` in `features`."
            }
            RuleCode::RenameConflict => {
                "A `previously:` whose old and new keys both exist. Remove one of the two objects, or the `previously:`."
            }
            RuleCode::Protected => {
                "A plan would remove a `protect: true` object. Declare it again, or lift the \
                 protection with an explicit `protect: false` applied first."
            }
            RuleCode::RemovalThreshold => {
                "A plan whose removals (objects and relationships) exceed \
                 `policy.removal_threshold` is refused unless `--force`."
            }
            RuleCode::TargetDependency => {
                "A partial plan (`--target`/`--exclude`) keeps a change whose dependency \
                 (the create of its team, its portal, a rename it follows) an `--exclude` \
                 leaves out. Drop that `--exclude`, or leave out the dependent change too."
            }
            RuleCode::ServerCheck => {
                "The live system ran the plan's writes as a dry run (`POST /v1/plan:check`,                  rolled back) and would refuse this one: a user name held outside a manager's                  view, a right the token lacks, seats taken since the plan read the account.                  The diagnostic carries the server's problem code and detail; fix the                  declaration or the live state, or skip the check with `--no-server-check`."
            }
            RuleCode::PasswordPolicy => {
                "A password the plan would send (on create, or a new `rotation`) breaks the \
                 account's password policy: the declared `account.password_policy`, else the \
                 live one. The diagnostic names the rules broken, never the value; choose a \
                 password that meets them."
            }
        }
    }
}

impl fmt::Display for RuleCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A broken rule on one object. `pointer` is relative to the object (`/features/2`),
/// empty for the object itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    pub rule: RuleCode,
    pub pointer: String,
    pub message: String,
    pub help: String,
    /// The set element that `pointer`'s index names (`/features/2` → `file_transfer`),
    /// so that the loader can find it in the file by value (a set's order in the file is
    /// not its order here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
}

impl Violation {
    pub fn new(
        rule: RuleCode,
        pointer: impl Into<String>,
        message: impl Into<String>,
        help: impl Into<String>,
    ) -> Violation {
        Violation {
            rule,
            pointer: pointer.into(),
            message: message.into(),
            help: help.into(),
            item: None,
        }
    }

    /// A violation about one element of the set `field`: the pointer names its index,
    /// `item` its text.
    fn on_item<T: Ord + fmt::Display>(mut self, field: &str, set: &BTreeSet<T>, item: &T) -> Self {
        self.pointer = format!("/{field}/{}", index_of(set, item));
        self.item = Some(item.to_string());
        self
    }
}

fn index_of<T: Ord>(set: &BTreeSet<T>, item: &T) -> usize {
    set.iter().position(|x| x == item).unwrap_or(0)
}

/// Rule 1 over a feature set (a representative's features or a manager's `grantable`).
/// `field` is the set's field name, for the pointer.
pub fn feature_requirements(set: &BTreeSet<Feature>, field: &str) -> Vec<Violation> {
    requirements(set, FEATURE_REQUIRES, field, "")
}

/// Rule 1 over team rights.
pub fn right_requirements(set: &BTreeSet<TeamRight>) -> Vec<Violation> {
    requirements(set, RIGHT_REQUIRES, "team_rights", "team right ")
}

/// Rule 1 over a set and its (item, item it requires) pairs; `what` names the items in
/// the message (`team right `), empty for features.
fn requirements<T: Ord + fmt::Display>(
    set: &BTreeSet<T>,
    requires: &[(T, T)],
    field: &str,
    what: &str,
) -> Vec<Violation> {
    requires
        .iter()
        .filter(|(f, req)| set.contains(f) && !set.contains(req))
        .map(|(f, req)| {
            Violation::new(
                RuleCode::FeatureRequires,
                "",
                format!("{what}`{f}` requires `{req}`, which is not in `{field}`"),
                format!("add `{req}` to `{field}`, or remove `{f}`"),
            )
            .on_item(field, set, f)
        })
        .collect()
}

/// Rule 8 over a secret reference: exactly one of `env` and `file`.
pub fn secret_shape(secret: &SecretRef, field: &str) -> Vec<Violation> {
    let n = secret.env.is_some() as u8 + secret.file.is_some() as u8;
    if n == 1 {
        return vec![];
    }
    vec![Violation::new(
        RuleCode::Secret,
        format!("/{field}"),
        format!("`{field}` must name exactly one source, `env` or `file` (found {n})"),
        format!("write `{field}: {{ env: VARIABLE }}` or `{field}: {{ file: path/to/file }}`"),
    )]
}

use super::shape::Shape;
pub use super::shape::{USERNAME_MAX_CHARS, is_email};

/// What is wrong with a user name's shape, if anything ([`Shape::Username`]: typed at
/// the console's sign-in, so non-empty, at most [`USERNAME_MAX_CHARS`] characters, no
/// white space or control character). Default names (`model::usernames`) always pass.
pub fn username_problem(name: &str) -> Option<String> {
    Shape::Username.problem(name)
}

/// A field's value in a message: the text itself when it is short and printable, else
/// nothing (a control character or a page of text helps nobody).
fn shown(value: &str) -> String {
    if value.chars().count() <= 60 && !value.chars().any(char::is_control) {
        format!(" `{value}`")
    } else {
        String::new()
    }
}

/// The violation of `shape` by `field`'s `value`, if it breaks it (code `schema`, the
/// JSON Schema's verdict on the same pattern and length).
pub fn shape_violation(field: &str, shape: Shape, value: &str) -> Option<Violation> {
    let why = shape.problem(value)?;
    Some(Violation::new(
        RuleCode::Schema,
        format!("/{field}"),
        format!("`{field}`{} {why}", shown(value)),
        shape.help(),
    ))
}

fn shapes<'a>(fields: impl IntoIterator<Item = (&'a str, Shape, &'a str)>) -> Vec<Violation> {
    fields
        .into_iter()
        .filter_map(|(field, shape, value)| shape_violation(field, shape, value))
        .collect()
}

/// Warnings about inactive teams (seed 004: a group has an `active` flag; the console
/// keeps an inactive group whole, so none of these blocks): an active representative of
/// an inactive team (its own team, not an ancestor's), an active campaign that targets
/// one, and an active team whose leader is an inactive representative. Each comes with
/// the object it is reported on. The loader shows them as warnings.
pub fn inactive_team_warnings(org: &Org) -> Vec<(ObjectId, Violation)> {
    let inactive: BTreeSet<&str> = org
        .teams
        .values()
        .filter(|t| !t.active)
        .map(|t| t.path.as_str())
        .collect();
    let mut out = Vec::new();
    let revive = |team: &str| format!("or set `active: true` on team `{team}`");
    if !inactive.is_empty() {
        for r in org.representatives.values() {
            let Some(team) = r.team.as_deref().filter(|t| inactive.contains(t)) else {
                continue;
            };
            if r.status != Status::Active {
                continue;
            }
            out.push((
                ObjectId::new(Kind::Representative, &r.login),
                Violation::new(
                    RuleCode::InactiveTeam,
                    "/team",
                    format!("active representative in inactive team `{team}`"),
                    format!(
                        "move it to an active team, set `status: inactive`, {}",
                        revive(team)
                    ),
                ),
            ));
        }
        for c in org.campaigns.values().filter(|c| c.active) {
            for team in c.teams.iter().filter(|t| inactive.contains(t.as_str())) {
                out.push((
                    ObjectId::new(Kind::Campaign, &c.name),
                    Violation::new(
                        RuleCode::InactiveTeam,
                        "",
                        format!("active campaign targets inactive team `{team}`"),
                        format!("remove the team from `teams`, {}", revive(team)),
                    )
                    .on_item("teams", &c.teams, team),
                ));
            }
        }
    }
    for t in org.teams.values().filter(|t| t.active) {
        let Some(leader) = t.leader.as_ref() else {
            continue;
        };
        if org
            .representatives
            .get(leader)
            .is_some_and(|r| r.status == Status::Inactive)
        {
            out.push((
                ObjectId::new(Kind::Team, &t.path),
                Violation::new(
                    RuleCode::InactiveTeam,
                    "/leader",
                    format!(
                        "team `{}` is led by inactive representative `{leader}`",
                        t.path
                    ),
                    "choose an active leader, or set `status: active` on the representative",
                ),
            ));
        }
    }
    out
}

/// Every object-level rule on a representative.
pub fn check_representative(rep: &Representative) -> Vec<Violation> {
    let mut v = shapes([
        ("login", Shape::Key, rep.login.as_str()),
        ("email", Shape::Email, &rep.email),
        ("language", Shape::Language, &rep.language),
    ]);
    v.extend(
        (rep.username.as_deref()).and_then(|u| shape_violation("username", Shape::Username, u)),
    );
    v.extend(feature_requirements(&rep.features, "features"));
    if rep.features.contains(&Feature::Multisession) {
        v.push(
            Violation::new(
                RuleCode::FeatureNotAllowed,
                "",
                "`multisession` is a count, not a feature flag",
                "remove it from `features` and set `multisession: N` (1–10)",
            )
            .on_item("features", &rep.features, &Feature::Multisession),
        );
    }
    if !(catalog::MULTISESSION_MIN..=catalog::MULTISESSION_MAX).contains(&rep.multisession) {
        v.push(Violation::new(
            RuleCode::Schema,
            "/multisession",
            format!("`multisession` is {}, outside 1–10", rep.multisession),
            "use a number from 1 to 10",
        ));
    }
    if let Some(p) = &rep.password {
        v.extend(secret_shape(p, "password"));
    }
    v
}

/// Every object-level rule on an administrator: the shapes of its login, e-mail and
/// language, a name (`name`, or `first_name` and `last_name`, none of them blank), and
/// a password reference of the right shape.
pub fn check_administrator(a: &Administrator) -> Vec<Violation> {
    let mut v = shapes([
        ("login", Shape::Key, a.login.as_str()),
        ("email", Shape::Email, &a.email),
        ("language", Shape::Language, &a.language),
    ]);
    let blank = |s: &Option<String>| s.as_deref().is_some_and(|s| s.trim().is_empty());
    for (field, value) in [("first_name", &a.first_name), ("last_name", &a.last_name)] {
        if blank(value) {
            v.push(Violation::new(
                RuleCode::Schema,
                format!("/{field}"),
                format!("`{field}` is blank"),
                format!("write the administrator's {field}, or leave it out"),
            ));
        }
    }
    if a.name.trim().is_empty() && (a.first_name.is_none() || a.last_name.is_none()) {
        v.push(Violation::new(
            RuleCode::Schema,
            "/name",
            "an administrator has no name",
            "give `name`, or `first_name` and `last_name`",
        ));
    }
    if let Some(p) = &a.password {
        v.extend(secret_shape(p, "password"));
    }
    v
}

/// Every object of `org` that breaks an object-level rule, with its kind, key and
/// violations: each kind's `check_*` below, object by object (what the server runs on
/// every write of one object).
pub fn org_violations(org: &Org) -> Vec<(Kind, &str, Vec<Violation>)> {
    fn each<T>(
        kind: Kind,
        objects: &std::collections::BTreeMap<String, T>,
        check: fn(&T) -> Vec<Violation>,
    ) -> impl Iterator<Item = (Kind, &str, Vec<Violation>)> {
        objects
            .iter()
            .map(move |(key, o)| (kind, key.as_str(), check(o)))
            .filter(|(.., v)| !v.is_empty())
    }
    each(Kind::Portal, &org.portals, check_portal)
        .chain(each(Kind::Team, &org.teams, check_team))
        .chain(each(
            Kind::Administrator,
            &org.administrators,
            check_administrator,
        ))
        .chain(each(Kind::Manager, &org.managers, check_manager))
        .chain(each(
            Kind::Representative,
            &org.representatives,
            check_representative,
        ))
        .chain(each(Kind::Campaign, &org.campaigns, check_campaign))
        .chain(each(
            Kind::ContactGroup,
            &org.contact_groups,
            check_contact_group,
        ))
        .collect()
}

/// `feature-not-allowed` on item `f` of the list `field`, listing what is allowed.
fn not_allowed(
    (field, items, f): (&str, &std::collections::BTreeSet<Feature>, &Feature),
    detail: String,
    allowed_intro: &str,
    allowed: &[Feature],
) -> Violation {
    let ids: Vec<&str> = allowed.iter().map(|f| f.id()).collect();
    Violation::new(
        RuleCode::FeatureNotAllowed,
        "",
        detail,
        format!("{allowed_intro}: {}", ids.join(", ")),
    )
    .on_item(field, items, f)
}

/// Every object-level rule on a manager.
pub fn check_manager(m: &Manager) -> Vec<Violation> {
    let mut v = feature_requirements(&m.grantable, "grantable");
    v.extend(right_requirements(&m.team_rights));
    for f in &m.grantable {
        if !catalog::is_grantable(*f) {
            v.push(not_allowed(
                ("grantable", &m.grantable, f),
                format!("`{f}` cannot be granted by a manager"),
                "grantable features are",
                catalog::GRANTABLE_FEATURES,
            ));
        }
    }
    // An e-mail address is a key too (no blank, no outer white space, shorter).
    if let Some(why) = Shape::Email.problem(&m.login) {
        v.push(Violation::new(
            RuleCode::ManagerLogin,
            "/login",
            format!("manager login{} {why}", shown(&m.login)),
            format!(
                "a manager logs in to the Admin Center with an e-mail address: {}",
                Shape::Email.help()
            ),
        ));
    }
    v.extend(shapes([("email", Shape::Email, m.email.as_str())]));
    if let Some(p) = &m.password {
        v.extend(secret_shape(p, "password"));
    }
    v
}

/// Every object-level rule on a portal: its name, and only session features.
pub fn check_portal(p: &Portal) -> Vec<Violation> {
    let mut v = shapes([("name", Shape::Key, p.name.as_str())]);
    for f in p
        .features
        .iter()
        .filter(|f| !catalog::is_portal_feature(**f))
    {
        v.push(not_allowed(
            ("features", &p.features, f),
            format!("a portal cannot enable `{f}`: it is not a session feature"),
            "a portal's `features` holds only",
            catalog::PORTAL_FEATURES,
        ));
    }
    v
}

/// Every object-level rule on a team (flat, by path; the loader checks each declared
/// name with [`Shape::TeamName`] as it builds the path).
pub fn check_team(t: &Team) -> Vec<Violation> {
    let mut v = shapes([("path", Shape::TeamPath, t.path.as_str())]);
    if t.max_active_logins == Some(0) {
        v.push(Violation::new(
            RuleCode::Schema,
            "/max_active_logins",
            "`max_active_logins` is 0",
            "use at least 1, or leave it out for no limit",
        ));
    }
    v
}

/// Every object-level rule on a campaign.
pub fn check_campaign(c: &Campaign) -> Vec<Violation> {
    shapes([("name", Shape::Key, c.name.as_str())])
}

/// Every object-level rule on a contact group.
pub fn check_contact_group(g: &ContactGroup) -> Vec<Violation> {
    shapes([("name", Shape::Key, g.name.as_str())])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inactive_teams_in_use_and_inactive_leaders_warn() {
        use crate::model::testing::rep;
        use crate::model::{Campaign, Team};
        let mut org = Org::default();
        let mut paris = Team::new("Paris");
        paris.active = false;
        let mut lyon = Team::new("Lyon");
        lyon.leader = Some("gone@x.example".into());
        let mut gone = rep("gone@x.example", Some("Lyon"));
        gone.status = Status::Inactive;
        let mut idle = rep("idle@x.example", Some("Paris"));
        idle.status = Status::Inactive;
        for r in [rep("on@x.example", Some("Paris")), idle, gone] {
            org.representatives.insert(r.login.clone(), r);
        }
        for t in [paris, lyon] {
            org.teams.insert(t.path.clone(), t);
        }
        let campaign = |name: &str, active: bool| Campaign {
            name: name.into(),
            active,
            representatives: Default::default(),
            teams: ["Lyon".to_string(), "Paris".to_string()].into(),
            protect: false,
            previously: None,
            hidden_members: None,
        };
        for c in [campaign("live", true), campaign("paused", false)] {
            org.campaigns.insert(c.name.clone(), c);
        }
        let found: Vec<(String, String, Option<String>)> = inactive_team_warnings(&org)
            .into_iter()
            .inspect(|(_, v)| assert_eq!(v.rule, RuleCode::InactiveTeam))
            .map(|(id, v)| (id.to_string(), v.pointer, v.item))
            .collect();
        // The active member (not the inactive one), the active campaign's `Paris` item
        // (not the paused campaign), and Lyon's inactive leader.
        assert_eq!(
            found,
            [
                (
                    "representative/on@x.example".to_string(),
                    "/team".to_string(),
                    None
                ),
                (
                    "campaign/live".into(),
                    "/teams/1".into(),
                    Some("Paris".into())
                ),
                ("team/Lyon".into(), "/leader".into(), None),
            ]
        );
        // An inactive team with nobody active in it and nothing targeting it is quiet.
        org.representatives.remove("on@x.example");
        org.campaigns.remove("live");
        org.teams.get_mut("Lyon").unwrap().leader = None;
        assert!(inactive_team_warnings(&org).is_empty());
    }

    #[test]
    fn the_catalogue_lists_every_code_of_the_readme_rules_table_once() {
        let readme = include_str!("../../README.md");
        let table = readme
            .split("\n## Rules\n")
            .nth(1)
            .and_then(|t| t.split("\n## ").next())
            .expect("README has a Rules section");
        let mut documented: Vec<&str> = table
            .lines()
            .filter(|l| l.starts_with("| ") && !l.starts_with("| rule"))
            .filter_map(|l| l.split('|').nth(2))
            .flat_map(|col| col.split('`').skip(1).step_by(2))
            .collect();
        documented.sort_unstable();
        documented.dedup();
        let mut listed: Vec<&str> = RuleCode::ALL.iter().map(|c| c.as_str()).collect();
        let n = listed.len();
        listed.sort_unstable();
        listed.dedup();
        assert_eq!(listed.len(), n, "a code is listed twice");
        assert_eq!(listed, documented);
        for c in RuleCode::ALL {
            assert!(!c.summary().is_empty() && c.description().len() > c.summary().len() / 2);
            let json = serde_json::to_value(c).unwrap();
            assert_eq!(json, c.as_str());
        }
    }

    fn set(fs: &[Feature]) -> BTreeSet<Feature> {
        fs.iter().copied().collect()
    }

    #[test]
    fn reports_without_admin_center_fails_and_with_it_passes() {
        let bad = feature_requirements(&set(&[Feature::Reports]), "features");
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].rule, RuleCode::FeatureRequires);
        assert_eq!(bad[0].pointer, "/features/0");
        assert!(
            feature_requirements(
                &set(&[Feature::Reports, Feature::AdminCenterAccess]),
                "features"
            )
            .is_empty()
        );
    }

    #[test]
    fn export_replay_needs_replay_for_rights_too() {
        let rights: BTreeSet<_> = [TeamRight::ExportSessionReplay].into();
        assert_eq!(right_requirements(&rights).len(), 1);
        let rights: BTreeSet<_> = [TeamRight::ExportSessionReplay, TeamRight::SessionReplay].into();
        assert!(right_requirements(&rights).is_empty());
    }

    #[test]
    fn secret_needs_exactly_one_source() {
        let none = SecretRef::default();
        assert_eq!(secret_shape(&none, "password").len(), 1);
        let both = SecretRef {
            env: Some("A".into()),
            file: Some("b".into()),
            ..Default::default()
        };
        assert_eq!(secret_shape(&both, "password").len(), 1);
        let env = SecretRef {
            env: Some("A".into()),
            ..Default::default()
        };
        assert!(secret_shape(&env, "password").is_empty());
    }

    #[test]
    fn user_names_are_non_empty_short_and_without_spaces() {
        assert_eq!(username_problem("jdoe"), None);
        assert_eq!(username_problem("j.doe-2_x"), None);
        assert!(username_problem("").unwrap().contains("empty"));
        assert!(username_problem("j doe").unwrap().contains("space"));
        assert!(username_problem("jdoe\t").is_some());
        assert!(username_problem("j\u{7}doe").is_some());
        assert_eq!(username_problem(&"é".repeat(USERNAME_MAX_CHARS)), None);
        assert!(username_problem(&"a".repeat(USERNAME_MAX_CHARS + 1)).is_some());
        let mut r = crate::model::testing::rep("a@x.example", None);
        r.username = Some(" ".into());
        let v = check_representative(&r);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(
            (v[0].rule, v[0].pointer.as_str()),
            (RuleCode::Schema, "/username")
        );
        // every default name passes
        for (first, last, login) in [
            ("John", "Doe", "j@x"),
            ("\u{E000}", "", "zoë.k@x"),
            ("", "", "a@x"),
        ] {
            let d = crate::model::usernames::default_username(first, last, login);
            assert_eq!(username_problem(&d), None, "{d:?}");
        }
    }

    #[test]
    fn an_administrator_has_a_name_one_way_or_the_other() {
        let mut a = Administrator::new("a@x.example", "a@x.example", "Ada");
        assert!(check_administrator(&a).is_empty());
        a.name.clear();
        let v = check_administrator(&a);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].pointer, "/name");
        a.first_name = Some("Ada".into());
        a.last_name = Some("Lovelace".into());
        assert!(check_administrator(&a).is_empty());
        a.last_name = Some("  ".into());
        let v = check_administrator(&a);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].pointer, "/last_name");
        a.password = Some(Box::default());
        assert_eq!(check_administrator(&a).len(), 2);
    }
}
