//! The domain model: every kind roster manages, as plain data.
//!
//! These types are the YAML (via `config`), the HTTP API (via `server` and `provider`)
//! and the code: one set of snake_case names everywhere (DESIGN §2). Sets are `BTreeSet`
//! and collections `BTreeMap`, so diffs and every rendering are deterministic.
//!
//! Data flow: `config` builds a [`Desired`] from YAML, the provider builds an
//! [`Observed`] from the live API; `plan` diffs the two [`Org`]s.
//!
//! Submodules: [`catalog`] (rights and features), [`rules`] (object-level rules),
//! [`shape`] (the shape of every constrained text field: one pattern and length each,
//! in the JSON Schema and in the checks), [`usernames`] (default user names, shared by
//! the loader, `plan` and `server`),
//! [`text`] (plural endings for every layer's messages) and, for unit tests, `testing`
//! (builders of model objects).
//!
//! Logins are compared ignoring case: `config` and the server lower-case them, so map keys
//! and stored values are lower case.

pub mod access;
pub mod catalog;
pub mod password;
pub mod rights;
pub mod rules;
pub mod set;
pub use set::SortedSet;
pub mod shape;
#[cfg(test)]
pub(crate) mod testing;
pub mod text;
pub mod usernames;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

pub use catalog::{Feature, SignInSetting, TeamRight};
pub use password::{PasswordPolicy, PolicyBreak};

/// A team's path from the root, segments joined by `/` (`Europe/Paris`).
pub type TeamPath = String;
/// A login (lower case).
pub type Login = String;

fn is_false(b: &bool) -> bool {
    !*b
}
fn is_true(b: &bool) -> bool {
    *b
}
fn yes() -> bool {
    true
}
fn one() -> u8 {
    1
}
fn is_one(n: &u8) -> bool {
    *n == 1
}

fn feature_set_schema(features: &[Feature], description: &str) -> Schema {
    let ids: Vec<&str> = features.iter().map(|f| f.id()).collect();
    json_schema!({
        "type": "array",
        "uniqueItems": true,
        "description": description,
        "items": { "type": "string", "enum": ids }
    })
}

fn rep_features_schema(_: &mut SchemaGenerator) -> Schema {
    let all: Vec<Feature> = catalog::representative_features().collect();
    feature_set_schema(
        &all,
        "Features turned on for this representative. `reports` and `session_replay` need \
         `admin_center_access`; `export_session_replay` needs `session_replay`. The number of \
         simultaneous sessions is the separate `multisession` field.",
    )
}

fn portal_features_schema(_: &mut SchemaGenerator) -> Schema {
    feature_set_schema(
        catalog::PORTAL_FEATURES,
        "Session features enabled on this portal. A representative's session feature takes \
         effect only on a portal that enables it.",
    )
}

fn grantable_schema(_: &mut SchemaGenerator) -> Schema {
    feature_set_schema(
        catalog::GRANTABLE_FEATURES,
        "Features this manager may turn on or off for the representatives of their teams.",
    )
}

/// The kinds roster manages, in apply order (DESIGN §3).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Portal,
    Team,
    Administrator,
    Manager,
    Representative,
    Campaign,
    ContactGroup,
    /// The account itself (its name and password policy): one object, key `account`,
    /// planned before every other change. Not in [`Kind::ALL`]: it is no collection.
    Account,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::Portal,
        Kind::Team,
        Kind::Administrator,
        Kind::Manager,
        Kind::Representative,
        Kind::Campaign,
        Kind::ContactGroup,
    ];

    /// Singular snake_case name (`contact_group`).
    pub const fn name(self) -> &'static str {
        match self {
            Kind::Portal => "portal",
            Kind::Team => "team",
            Kind::Administrator => "administrator",
            Kind::Manager => "manager",
            Kind::Representative => "representative",
            Kind::Campaign => "campaign",
            Kind::ContactGroup => "contact_group",
            Kind::Account => "account",
        }
    }

    /// The YAML section and policy key (`contact_groups`).
    pub const fn section(self) -> &'static str {
        match self {
            Kind::Portal => "portals",
            Kind::Team => "teams",
            Kind::Administrator => "administrators",
            Kind::Manager => "managers",
            Kind::Representative => "representatives",
            Kind::Campaign => "campaigns",
            Kind::ContactGroup => "contact_groups",
            Kind::Account => "account",
        }
    }

    /// The API collection under `/v1` (`contact-groups`).
    pub const fn collection(self) -> &'static str {
        match self {
            Kind::ContactGroup => "contact-groups",
            k => k.section(),
        }
    }

    /// The field that identifies an object of this kind.
    pub const fn key_field(self) -> &'static str {
        match self {
            Kind::Portal | Kind::Campaign | Kind::ContactGroup => "name",
            Kind::Team => "path",
            Kind::Administrator | Kind::Manager | Kind::Representative => "login",
            Kind::Account => "name",
        }
    }

    /// Whether removal deactivates (the kind has a status) rather than deletes.
    pub const fn has_status(self) -> bool {
        matches!(self, Kind::Team | Kind::Representative | Kind::Campaign)
    }

    pub fn from_name(s: &str) -> Option<Kind> {
        Kind::ALL
            .into_iter()
            .find(|k| k.name() == s || k.section() == s || k.collection() == s)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Identifies one object: `representative/jdoe@acme.example`, `team/Europe/Paris`.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub struct ObjectId {
    pub kind: Kind,
    pub key: String,
}

impl ObjectId {
    pub fn new(kind: Kind, key: impl Into<String>) -> Self {
        ObjectId {
            kind,
            key: key.into(),
        }
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind, self.key)
    }
}

/// A secret's value, held only in memory between reading it and sending it.
/// Never printed: `Debug` and `Display` show `***`; it serializes (for the API body only).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretValue(pub String);

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}
impl fmt::Display for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Where a password comes from. Never the password itself (rule 8).
///
/// In YAML exactly one of `env` and `file` is given. The live API returns only
/// `rotation` (and never the value). `value` exists only in the body that the provider
/// sends on create or rotation; it is not part of the YAML schema.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    /// Name of an environment variable holding the password, read at plan/apply time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    /// Path of a file holding the password (relative to the working directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// A marker (any text, e.g. `2026-11`). The password is set when the object is
    /// created, and set again only when this marker changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<String>,
    /// The resolved value, only in API request bodies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(skip)]
    pub value: Option<SecretValue>,
}

/// A portal (seed 001): representatives are enabled on portals, and a session feature
/// takes effect only where the portal enables it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Portal {
    /// Unique portal name.
    #[schemars(regex(pattern = shape::KEY_PATTERN), length(min = 1, max = shape::KEY_MAX_CHARS))]
    pub name: String,
    /// Session features enabled on this portal.
    #[serde(default)]
    #[schemars(schema_with = "portal_features_schema")]
    pub features: BTreeSet<Feature>,
    /// Never removed by roster while true; recorded on the live object.
    #[serde(default, skip_serializing_if = "is_false")]
    pub protect: bool,
    /// The portal's previous name, to rename it in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previously: Option<String>,
}

/// A team as declared in YAML: nested sub-teams under `teams`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamDecl {
    /// The team's name: one path segment, no `/`.
    #[schemars(regex(pattern = shape::TEAM_NAME_PATTERN), length(min = 1, max = shape::KEY_MAX_CHARS))]
    pub name: String,
    /// Free text shown in the console.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The most representatives of this team logged in at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_active_logins: Option<u32>,
    /// Login of the team leader: a representative of this team or of one of its sub-teams.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<Login>,
    /// Whether the team is active (default true).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub active: bool,
    /// Never deactivated by roster while true; recorded on the live object.
    #[serde(default, skip_serializing_if = "is_false")]
    pub protect: bool,
    /// The team's previous full path (`Europe/Lyon`), to rename or move it in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previously: Option<TeamPath>,
    /// Sub-teams.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub teams: Vec<TeamDecl>,
}

/// A team, flat, identified by its path (how `Org` and the API hold it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Team {
    /// Full path (`Europe/Paris`); the parent is the path without its last segment.
    #[schemars(regex(pattern = shape::TEAM_PATH_PATTERN), length(min = 1, max = shape::KEY_MAX_CHARS))]
    pub path: TeamPath,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_active_logins: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<Login>,
    #[serde(default = "yes")]
    pub active: bool,
    /// Never removed by roster while true; recorded on the live object.
    #[serde(default, skip_serializing_if = "is_false")]
    pub protect: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previously: Option<TeamPath>,
}

impl Team {
    /// A new active team at `path`, with no description, limit, leader or protection.
    pub fn new(path: impl Into<TeamPath>) -> Self {
        Team {
            path: path.into(),
            description: None,
            max_active_logins: None,
            leader: None,
            active: true,
            protect: false,
            previously: None,
        }
    }

    /// The parent's path, `None` for a top-level team.
    pub fn parent(&self) -> Option<&str> {
        self.path.rsplit_once('/').map(|(p, _)| p)
    }
}

/// An account-level administrator (seeds 002, 004): sees and changes everything. Seed
/// 004's administrator-type user has the form of any user: first and last name, e-mail,
/// password, language, active or not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
// `rules::check_administrator`'s name rule, as the schema says it: a non-blank `name`, or
// non-blank `first_name` and `last_name`.
#[schemars(extend("anyOf" = [
    {"required": ["name"], "properties": {"name": {"type": "string", "pattern": shape::NOT_BLANK_PATTERN}}},
    {"required": ["first_name", "last_name"], "properties": {
        "first_name": {"type": "string"}, "last_name": {"type": "string"}}}
]))]
pub struct Administrator {
    /// Login, unique, compared ignoring case.
    #[schemars(regex(pattern = shape::KEY_PATTERN), length(min = 1, max = shape::KEY_MAX_CHARS))]
    pub login: Login,
    /// Contact e-mail.
    #[schemars(regex(pattern = shape::EMAIL_PATTERN), length(min = 1, max = shape::EMAIL_MAX_CHARS))]
    pub email: String,
    /// Display name. Required unless `first_name` and `last_name` are given.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// First name (seed 004).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = shape::NOT_BLANK_PATTERN))]
    pub first_name: Option<String>,
    /// Last name (seed 004).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = shape::NOT_BLANK_PATTERN))]
    pub last_name: Option<String>,
    /// Interface language, an ISO 639-1 code (`en`, `fr`, `pl`). Default `en`.
    #[serde(
        default = "default_language",
        skip_serializing_if = "is_default_language"
    )]
    #[schemars(regex(pattern = shape::LANGUAGE_PATTERN))]
    pub language: String,
    /// `active` (default) or `inactive`: an inactive administrator's tokens are refused
    /// and it may not sign in.
    #[serde(default, skip_serializing_if = "Status::is_active")]
    pub status: Status,
    /// Initial password: `{env: VAR}` or `{file: PATH}`, with an optional `rotation`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Box<SecretRef>>,
    /// Never removed by roster while true; recorded on the live object.
    #[serde(default, skip_serializing_if = "is_false")]
    pub protect: bool,
    /// The previous login, to rename in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previously: Option<Login>,
}

/// A team manager (seed 000): logs in to the Admin Center and manages the teams assigned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Manager {
    /// Admin Center login: a valid e-mail address, different from every representative
    /// login unless that representative has no `admin_center_access`.
    #[schemars(regex(pattern = shape::EMAIL_PATTERN), length(min = 1, max = shape::EMAIL_MAX_CHARS))]
    pub login: Login,
    /// Contact e-mail.
    #[schemars(regex(pattern = shape::EMAIL_PATTERN), length(min = 1, max = shape::EMAIL_MAX_CHARS))]
    pub email: String,
    /// First and last name.
    pub name: String,
    /// Initial password: `{env: VAR}` or `{file: PATH}`, with an optional `rotation`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Box<SecretRef>>,
    /// Paths of the teams this manager manages (several allowed).
    #[serde(default)]
    pub teams: BTreeSet<TeamPath>,
    /// Rights the manager holds over their teams.
    #[serde(default)]
    pub team_rights: BTreeSet<TeamRight>,
    /// Features the manager may grant to representatives.
    #[serde(default)]
    #[schemars(schema_with = "grantable_schema")]
    pub grantable: BTreeSet<Feature>,
    /// Never removed by roster while true; recorded on the live object.
    #[serde(default, skip_serializing_if = "is_false")]
    pub protect: bool,
    /// The previous login, to rename in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previously: Option<Login>,
}

/// A representative's status. Deactivation keeps statistics; deletion loses them (seed 004).
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    #[default]
    Active,
    Inactive,
}

impl Status {
    pub fn is_active(&self) -> bool {
        *self == Status::Active
    }
}

/// Login settings of a representative (seed 001). Unset means off.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    /// Force a password change at the next login.
    #[serde(default, skip_serializing_if = "is_false")]
    pub force_password_change: bool,
    /// Let the representative reset a forgotten password.
    #[serde(default, skip_serializing_if = "is_false")]
    pub self_service_password_reset: bool,
    /// Prompt the representative to validate their e-mail address.
    #[serde(default, skip_serializing_if = "is_false")]
    pub force_email_validation: bool,
}

impl SignIn {
    /// Seed 001: "force a password change at the next login" is a one-time action, not
    /// a state. Declared, it is sent with a password (a create, a new `rotation`); once
    /// the person has changed the password the console clears it, and that is no drift
    /// to correct: a live `false` against a declared `true` is settled unless this change
    /// sets a password. (A live `true` against a declared `false` is a pending force the
    /// declaration withdraws, and is changed.)
    pub fn force_change_settled(declared: bool, live: bool, password_set: bool) -> bool {
        declared && !live && !password_set
    }
}

impl SignIn {
    pub fn is_default(&self) -> bool {
        *self == SignIn::default()
    }
}

/// A representative (agent, operator, consultant): seeds 001, 003, 004.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Representative {
    /// Support-console login, unique, compared ignoring case.
    #[schemars(regex(pattern = shape::KEY_PATTERN), length(min = 1, max = shape::KEY_MAX_CHARS))]
    pub login: Login,
    /// Contact e-mail.
    #[schemars(regex(pattern = shape::EMAIL_PATTERN), length(min = 1, max = shape::EMAIL_MAX_CHARS))]
    pub email: String,
    /// First name (the default username starts with its first letter).
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Console user name, unique ignoring case. Default: first letter of the first name
    /// and the whole last name, ASCII-folded, lower case, made unique with a number
    /// (`jdoe`, `jdoe2`), chosen when roster creates the representative and kept
    /// afterwards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = shape::USERNAME_PATTERN), length(min = 1, max = shape::USERNAME_MAX_CHARS))]
    pub username: Option<String>,
    /// Interface language, an ISO 639-1 code (`en`, `fr`, `pl`).
    #[serde(default = "default_language")]
    #[schemars(regex(pattern = shape::LANGUAGE_PATTERN))]
    pub language: String,
    /// Path of the representative's team.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<TeamPath>,
    /// `active` or `inactive`.
    #[serde(default)]
    pub status: Status,
    /// Login settings.
    #[serde(default, skip_serializing_if = "SignIn::is_default")]
    pub sign_in: SignIn,
    /// Features turned on.
    #[serde(default)]
    #[schemars(schema_with = "rep_features_schema")]
    pub features: BTreeSet<Feature>,
    /// How many sessions at once, 1–10 (above 1 needs a portal enabling `multisession`).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    #[schemars(range(min = 1, max = 10))]
    pub multisession: u8,
    /// Names of the portals this representative is enabled on.
    #[serde(default)]
    pub portals: SortedSet<String>,
    /// Support management (seed 003): takes attended support sessions. An active
    /// representative with it is an *operator* and holds one of the account's licensed
    /// seats (rule 5); without it, a *user*, of whom there may be any number. Default
    /// true.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub support_management: bool,
    /// Remote management (seed 003): reaches unattended computers. Shared per user,
    /// independently of support management; it takes no seat. Default false.
    #[serde(default, skip_serializing_if = "is_false")]
    pub remote_management: bool,
    /// Initial password: `{env: VAR}` or `{file: PATH}`, with an optional `rotation`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Box<SecretRef>>,
    /// Never removed by roster while true; recorded on the live object.
    #[serde(default, skip_serializing_if = "is_false")]
    pub protect: bool,
    /// The previous login, to rename in place (never delete and create).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previously: Option<Login>,
}

impl Representative {
    /// Rule 2 (seed 000): with Admin Center access, this representative's login may be
    /// no manager's or administrator's login. The loader, the plan (against live
    /// accounts no file declares) and the server all ask this.
    pub fn login_is_exclusive(&self) -> bool {
        self.features.contains(&Feature::AdminCenterAccess)
    }

    /// An operator (seed 003): active, with support management. Operators, and only
    /// they, hold the licensed seats (rule 5).
    pub fn takes_seat(&self) -> bool {
        self.status == Status::Active && self.support_management
    }
}

fn default_language() -> String {
    "en".into()
}

fn is_default_language(s: &String) -> bool {
    s == "en"
}

impl Administrator {
    /// A new active administrator with only the fields every one has.
    pub fn new(login: &str, email: &str, name: &str) -> Administrator {
        Administrator {
            login: login.into(),
            email: email.into(),
            name: name.into(),
            first_name: None,
            last_name: None,
            language: default_language(),
            status: Status::Active,
            password: None,
            protect: false,
            previously: None,
        }
    }
}

/// A campaign (seed 004): representatives and teams assigned to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Campaign {
    /// Unique campaign name.
    #[schemars(regex(pattern = shape::KEY_PATTERN), length(min = 1, max = shape::KEY_MAX_CHARS))]
    pub name: String,
    /// Whether the campaign is active (default true).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub active: bool,
    /// Logins of the representatives selected for the campaign.
    #[serde(default)]
    pub representatives: BTreeSet<Login>,
    /// Paths of the teams selected for the campaign.
    #[serde(default)]
    pub teams: BTreeSet<TeamPath>,
    /// How many of its members this token may not see (`model::rights::visible_campaign`):
    /// set by the live system for a manager token only; never declared (the JSON Schema
    /// leaves it out) nor stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(skip)]
    pub hidden_members: Option<u32>,
    /// Never removed by roster while true; recorded on the live object.
    #[serde(default, skip_serializing_if = "is_false")]
    pub protect: bool,
    /// The campaign's previous name, to rename it in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previously: Option<String>,
}

/// What a user may do with a shared contact group (seed 003).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    View,
    Connect,
    Manage,
}

impl Permission {
    /// `view`, `connect` or `manage`, as declared.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::View => "view",
            Permission::Connect => "connect",
            Permission::Manage => "manage",
        }
    }
}

/// An address-book group shared with users (seed 003).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactGroup {
    /// Unique group name.
    #[schemars(regex(pattern = shape::KEY_PATTERN), length(min = 1, max = shape::KEY_MAX_CHARS))]
    pub name: String,
    /// Login (representative or manager) → permission.
    #[serde(default)]
    pub shared_with: BTreeMap<Login, Permission>,
    /// How many of its members this token may not see (`model::rights::visible_group`):
    /// set by the live system for a manager token only; never declared (the JSON Schema
    /// leaves it out) nor stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(skip)]
    pub hidden_members: Option<u32>,
    /// Never removed by roster while true; recorded on the live object.
    #[serde(default, skip_serializing_if = "is_false")]
    pub protect: bool,
    /// The group's previous name, to rename it in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previously: Option<String>,
}

/// What roster does with live objects of a kind that no file declares.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Unmanaged {
    /// List them in the plan as information (default).
    #[default]
    Ignore,
    /// List them as warnings.
    Warn,
    /// Remove them: deactivate where the kind has a status, delete otherwise.
    Remove,
}

/// How a representative is removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnRemove {
    /// Set `status: inactive`; statistics are kept (default).
    #[default]
    Deactivate,
    /// Delete, losing the representative's statistics irreversibly. Needs `--allow-delete`.
    Delete,
}

/// Policy for one kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KindPolicy {
    #[serde(default)]
    pub unmanaged: Unmanaged,
    /// Only meaningful for kinds with a status (representatives, teams, campaigns).
    #[serde(default)]
    pub on_remove: OnRemove,
}

impl KindPolicy {
    /// The default policy, as a constant (the account's: never removed).
    pub const NONE: KindPolicy = KindPolicy {
        unmanaged: Unmanaged::Ignore,
        on_remove: OnRemove::Deactivate,
    };
}

/// When a plan's removals stop it: more than `count` AND more than `percent` of what exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RemovalThreshold {
    /// Removals a plan may hold without `--force` (default 10).
    #[serde(default = "default_threshold_count")]
    pub count: u32,
    /// Share of the existing objects, in percent, a plan may remove without `--force`
    /// (default 25).
    #[serde(default = "default_threshold_percent")]
    #[schemars(range(min = 0, max = 100))]
    pub percent: u32,
}

fn default_threshold_count() -> u32 {
    10
}
fn default_threshold_percent() -> u32 {
    25
}

impl Default for RemovalThreshold {
    fn default() -> Self {
        RemovalThreshold {
            count: default_threshold_count(),
            percent: default_threshold_percent(),
        }
    }
}

/// The `policy` section.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    #[serde(default)]
    pub portals: KindPolicy,
    #[serde(default)]
    pub teams: KindPolicy,
    #[serde(default)]
    pub administrators: KindPolicy,
    #[serde(default)]
    pub managers: KindPolicy,
    #[serde(default)]
    pub representatives: KindPolicy,
    #[serde(default)]
    pub campaigns: KindPolicy,
    #[serde(default)]
    pub contact_groups: KindPolicy,
    /// Removals above which a plan stops unless `--force`.
    #[serde(default)]
    pub removal_threshold: RemovalThreshold,
}

impl Policy {
    pub fn for_kind(&self, kind: Kind) -> &KindPolicy {
        match kind {
            Kind::Portal => &self.portals,
            Kind::Team => &self.teams,
            Kind::Administrator => &self.administrators,
            Kind::Manager => &self.managers,
            Kind::Representative => &self.representatives,
            Kind::Campaign => &self.campaigns,
            Kind::ContactGroup => &self.contact_groups,
            Kind::Account => &KindPolicy::NONE,
        }
    }
}

/// One YAML file's shape. Every section is optional; a directory's files are merged.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "roster declaration",
    description = "People and permissions of a remote-support console, declared for roster."
)]
pub struct Declaration {
    /// Format version; only `1` exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1))]
    pub version: Option<u32>,
    /// Ownership, removal and safety policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<Policy>,
    /// The account: its name and password policy (its licensed seats are read-only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<AccountDecl>,
    /// Portals, each with the session features it enables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub portals: Vec<Portal>,
    /// Top-level teams, with sub-teams nested under `teams`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub teams: Vec<TeamDecl>,
    /// Account-level administrators.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub administrators: Vec<Administrator>,
    /// Team managers (Admin Center users).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub managers: Vec<Manager>,
    /// Representatives (support agents).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub representatives: Vec<Representative>,
    /// Campaigns and the representatives and teams selected for them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub campaigns: Vec<Campaign>,
    /// Shared contact groups (address books).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contact_groups: Vec<ContactGroup>,
    /// Shares of every declared contact group at once (seed 003: "all groups at once"):
    /// each `{login, permission}` is added to every group's `shared_with`; a group's own
    /// entry for the same login wins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contact_group_shares: Vec<ContactGroupShare>,
}

/// One share of every contact group with a login (seed 003).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactGroupShare {
    /// Login (representative or manager) every group is shared with.
    pub login: Login,
    /// `view`, `connect` or `manage`.
    pub permission: Permission,
}

/// One `contact_group_shares` entry as expanded: the share and the contact groups it
/// was added to (every declared group but those naming the login themselves). The plan
/// shows the changes it causes as one decision (`plan::GroupShare`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedWithAll {
    pub share: ContactGroupShare,
    /// The groups whose `shared_with` gained the entry, by name.
    pub groups: BTreeSet<String>,
}

impl SharedWithAll {
    /// Whether this entry set `login`'s share of group `group` at `permission`.
    pub fn covers(&self, group: &str, login: &str, permission: Permission) -> bool {
        self.share.login == login
            && self.share.permission == permission
            && self.groups.contains(group)
    }
}

/// Seed 003's "share all groups at once", expanded: every share is added to every
/// group's `shared_with`, except where the group names that login itself (the group's
/// own entry wins, whatever its permission). Returns, per share, the groups it was
/// added to.
pub fn share_with_every_group(
    groups: &mut BTreeMap<String, ContactGroup>,
    shares: &[ContactGroupShare],
) -> Vec<SharedWithAll> {
    let mut out: Vec<SharedWithAll> = shares
        .iter()
        .map(|s| SharedWithAll {
            share: s.clone(),
            groups: BTreeSet::new(),
        })
        .collect();
    for g in groups.values_mut() {
        for (s, o) in shares.iter().zip(&mut out) {
            if !g.shared_with.contains_key(&s.login) {
                g.shared_with.insert(s.login.clone(), s.permission);
                o.groups.insert(g.name.clone());
            }
        }
    }
    out
}

/// The `account` section: what of the account is declared. A field left out is left as
/// it is live. The licensed seats are read-only (the licence sets them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountDecl {
    /// The account's name (the work team's name, seed 003): not blank.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = shape::NOT_BLANK_PATTERN))]
    pub name: Option<String>,
    /// The policy every password stored must meet; fields left out take their defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_policy: Option<PasswordPolicy>,
}

/// Whether an account name is blank (`trim` leaves nothing): refused by the loader and by
/// `PATCH /v1/account` alike; the schema's `shape::NOT_BLANK_PATTERN` says the same.
pub fn is_blank_account_name(name: &str) -> bool {
    name.trim().is_empty()
}

/// The object id of the account (`account/account`).
pub fn account_id() -> ObjectId {
    ObjectId::new(Kind::Account, "account")
}

/// Whether team `path` is `team` or one of its sub-teams (by whole path segments:
/// `Europe/Paris` is within `Europe`, `Europewide` is not). A manager's scope, a
/// leader's membership and a campaign's reach all ask this.
pub fn is_within(path: &str, team: &str) -> bool {
    path == team
        || (path.len() > team.len()
            && path.starts_with(team)
            && path.as_bytes()[team.len()] == b'/')
}

/// A whole organization, flat and keyed: what `Desired` and `Observed` both hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Org {
    #[serde(deserialize_with = "full_map")]
    pub portals: BTreeMap<String, Portal>,
    #[serde(deserialize_with = "full_map")]
    pub teams: BTreeMap<TeamPath, Team>,
    #[serde(deserialize_with = "full_map")]
    pub administrators: BTreeMap<Login, Administrator>,
    #[serde(deserialize_with = "full_map")]
    pub managers: BTreeMap<Login, Manager>,
    #[serde(deserialize_with = "full_map")]
    pub representatives: BTreeMap<Login, Representative>,
    #[serde(deserialize_with = "full_map")]
    pub campaigns: BTreeMap<String, Campaign>,
    #[serde(deserialize_with = "full_map")]
    pub contact_groups: BTreeMap<String, ContactGroup>,
}

/// Deserializes a map into a `BTreeMap` with full nodes (`deserialize_with`). A
/// `BTreeMap` filled by inserts in key order (what serde's own impl does with a map
/// written in order, as the live snapshot is) splits every node it fills and leaves
/// each half empty; built from a sorted sequence (`collect`) its nodes are full. For a
/// large organisation, whose maps hold whole objects in their nodes, that is about 40%
/// less memory. Of duplicate keys the last wins, as with serde's own impl.
pub fn full_map<'de, D, K, V>(d: D) -> Result<BTreeMap<K, V>, D::Error>
where
    D: serde::Deserializer<'de>,
    K: Ord + Deserialize<'de>,
    V: Deserialize<'de>,
{
    struct Entries<K, V>(std::marker::PhantomData<(K, V)>);
    impl<'de, K: Ord + Deserialize<'de>, V: Deserialize<'de>> serde::de::Visitor<'de>
        for Entries<K, V>
    {
        type Value = BTreeMap<K, V>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a map")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut m: A,
        ) -> Result<Self::Value, A::Error> {
            let mut v = Vec::with_capacity(m.size_hint().unwrap_or(0).min(1 << 20));
            while let Some(entry) = m.next_entry()? {
                v.push(entry);
            }
            Ok(v.into_iter().collect())
        }
    }
    d.deserialize_map(Entries(std::marker::PhantomData))
}

impl Org {
    /// Number of objects of every kind.
    pub fn len(&self) -> usize {
        self.portals.len()
            + self.teams.len()
            + self.administrators.len()
            + self.managers.len()
            + self.representatives.len()
            + self.campaigns.len()
            + self.contact_groups.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn count(&self, kind: Kind) -> usize {
        match kind {
            Kind::Portal => self.portals.len(),
            Kind::Team => self.teams.len(),
            Kind::Administrator => self.administrators.len(),
            Kind::Manager => self.managers.len(),
            Kind::Representative => self.representatives.len(),
            Kind::Campaign => self.campaigns.len(),
            Kind::ContactGroup => self.contact_groups.len(),
            Kind::Account => 0,
        }
    }

    /// Active representatives (what licensed seats count).
    pub fn active_representatives(&self) -> usize {
        self.representatives
            .values()
            .filter(|r| r.status == Status::Active)
            .count()
    }

    /// Operators: the representatives that hold a licensed seat (rule 5, seed 003).
    pub fn operators(&self) -> usize {
        self.representatives
            .values()
            .filter(|r| r.takes_seat())
            .count()
    }
}

/// Where a declared object came from: the file and the JSON pointer of the object in it
/// (`/representatives/12`). `config::Diagnostic` turns this into line:column on demand.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Origin {
    pub file: std::path::PathBuf,
    pub pointer: String,
}

/// The validated declaration. Only `config` builds one.
#[derive(Debug, Clone, Default)]
pub struct Desired {
    pub org: Org,
    pub policy: Policy,
    /// Which kinds any file declared a section for (a kind never mentioned is not managed
    /// for removal, whatever its policy).
    pub sections: BTreeSet<Kind>,
    pub origins: BTreeMap<ObjectId, Origin>,
    /// Objects whose declaration writes `protect: false` explicitly. Only these lift a
    /// live `protect: true`: a declaration that leaves `protect` out keeps the live value
    /// (protection is recorded on the live object and survives removal from the YAML).
    pub unprotect: BTreeSet<ObjectId>,
    /// Representatives whose declaration writes `username:`. The others carry the
    /// default name they would get on creation; a plan keeps the live name of one that
    /// exists instead (a default name is chosen once, like `protect`, the live value stays
    /// unless declared).
    pub declared_usernames: BTreeSet<Login>,
    /// The `account` section, when a file declares one (its origin is under
    /// [`account_id`] in `origins`).
    pub account: Option<AccountDecl>,
    /// The `contact_group_shares` entries, each with the groups it was added to (seed
    /// 003): the plan shows what they change as one line each.
    pub shared_with_all: Vec<SharedWithAll>,
}

/// The licensed account, as read from the live system.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Account {
    pub name: String,
    /// Licensed seats: the most operators at once (rule 5).
    pub seats: u32,
    /// Operators now (active representatives with support management), account-wide,
    /// as the live system counts them; `None` from a live system that does not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operators: Option<u32>,
    /// Users now (every active representative, operators included: seed 003's
    /// counter), account-wide.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<u32>,
    /// The password policy the live system enforces; `None` from a live system that does
    /// not say (then [`PasswordPolicy::unrestricted`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_policy: Option<PasswordPolicy>,
    #[serde(default)]
    pub version: i64,
}

impl Account {
    /// The policy in force: the live one, or none for a live system that reports none.
    pub fn policy(&self) -> PasswordPolicy {
        self.password_policy
            .unwrap_or(PasswordPolicy::unrestricted())
    }
}

impl Desired {
    /// The policy passwords must meet once the plan is applied: the declared one, else
    /// the live one.
    pub fn effective_policy(&self, live: &Account) -> PasswordPolicy {
        self.account
            .as_ref()
            .and_then(|a| a.password_policy)
            .unwrap_or_else(|| live.policy())
    }
}

/// Who the token acts as, as reported by the live system (`GET /v1/whoami`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Principal {
    Administrator { login: Login },
    Manager { login: Login },
}

/// The live state as read through the API. Only the provider builds one (and keeps it
/// between runs as a snapshot it brings up to date from the live change feed).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Observed {
    pub account: Account,
    pub org: Org,
    /// The `version` of every live object read (the saved plan's fingerprint).
    #[serde(deserialize_with = "full_map")]
    pub versions: BTreeMap<ObjectId, i64>,
    /// Who the token acts as; `None` when unknown.
    pub principal: Option<Principal>,
    /// The optional parts of the api the live system has (`GET /v1/whoami`'s
    /// `capabilities`: `plan-check`).
    pub capabilities: Vec<String>,
    /// The change feed's cursor (`GET /v1/changes`) at which this state is known whole:
    /// set when the read went through the live snapshot or took the feed's head before
    /// listing. A saved plan records it, so that "nothing changed since" is one request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// Per kind, how many objects there are and the sum of their versions: what the change
/// feed's last page answers (`digest`), so that a copy brought up to date, or a saved
/// plan's record of the live state, can be checked against the live system.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct KindDigest {
    pub count: i64,
    pub versions: i64,
}

/// The first kind whose digests differ, with ours and theirs; none when they match. A
/// kind absent from one side counts as none of it (zero objects, zero versions).
pub fn digest_mismatch(
    ours: &BTreeMap<Kind, KindDigest>,
    theirs: &BTreeMap<Kind, KindDigest>,
) -> Option<(Kind, KindDigest, KindDigest)> {
    Kind::ALL.into_iter().find_map(|kind| {
        let a = ours.get(&kind).copied().unwrap_or_default();
        let b = theirs.get(&kind).copied().unwrap_or_default();
        (a != b).then_some((kind, a, b))
    })
}

impl Observed {
    /// The digest of the objects read ([`KindDigest`]), kinds with none left out.
    pub fn digest(&self) -> BTreeMap<Kind, KindDigest> {
        let mut d: BTreeMap<Kind, KindDigest> = BTreeMap::new();
        for (id, v) in &self.versions {
            let e = d.entry(id.kind).or_default();
            e.count += 1;
            e.versions += v;
        }
        d
    }
}

#[cfg(test)]
mod share_all_tests {
    use super::*;

    #[test]
    fn shares_reach_every_group_and_a_group_s_own_entry_wins() {
        let group = |name: &str, own: &[(&str, Permission)]| ContactGroup {
            name: name.into(),
            shared_with: own.iter().map(|(l, p)| (l.to_string(), *p)).collect(),
            hidden_members: None,
            protect: false,
            previously: None,
        };
        let mut groups: BTreeMap<String, ContactGroup> = [
            ("a".to_string(), group("a", &[])),
            (
                "b".to_string(),
                group("b", &[("sam@x.example", Permission::Manage)]),
            ),
        ]
        .into();
        let shares = [
            ContactGroupShare {
                login: "sam@x.example".into(),
                permission: Permission::View,
            },
            ContactGroupShare {
                login: "kim@x.example".into(),
                permission: Permission::Connect,
            },
        ];
        let added = share_with_every_group(&mut groups, &shares);
        let names = |i: usize| added[i].groups.iter().cloned().collect::<Vec<_>>();
        assert_eq!(names(0), ["a"], "b names sam itself");
        assert_eq!(names(1), ["a", "b"]);
        assert!(added[0].covers("a", "sam@x.example", Permission::View));
        assert!(!added[0].covers("b", "sam@x.example", Permission::Manage));
        assert_eq!(groups["a"].shared_with["sam@x.example"], Permission::View);
        assert_eq!(groups["b"].shared_with["sam@x.example"], Permission::Manage);
        assert_eq!(
            groups["b"].shared_with["kim@x.example"],
            Permission::Connect
        );
        let again = share_with_every_group(&mut groups, &shares);
        assert!(again.iter().all(|a| a.groups.is_empty()));
    }
}

#[cfg(test)]
mod full_map_tests {
    use super::*;

    #[derive(Deserialize)]
    struct Holder {
        #[serde(deserialize_with = "full_map")]
        m: BTreeMap<String, i64>,
    }

    #[test]
    fn a_map_reads_as_serde_s_own_impl_reads_it() {
        let text = r#"{"m": {"b": 2, "a": 1, "c": 3, "a": 4}}"#;
        let ours: Holder = serde_json::from_str(text).unwrap();
        let theirs: BTreeMap<String, BTreeMap<String, i64>> = serde_json::from_str(text).unwrap();
        assert_eq!(
            ours.m, theirs["m"],
            "sorted, the last of a duplicate key wins"
        );
        let big: BTreeMap<String, i64> = (0..5000).map(|i| (format!("k{i:05}"), i)).collect();
        let bytes = rmp_serde::to_vec_named(&serde_json::json!({ "m": big })).unwrap();
        let back: Holder = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(back.m, big);
        assert!(serde_json::from_str::<Holder>(r#"{"m": [1]}"#).is_err());
    }
}
