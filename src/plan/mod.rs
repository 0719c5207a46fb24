//! The plan: pure data computed from `Desired` × `Observed`, rendered, saved, applied.
//!
//! Owns the plan's data types (this file), the one entry point [`make()`], the
//! staleness check of a saved plan ([`stale()`]) and the renderings ([`render`]). Pure:
//! no I/O. Data comes from `config` (Desired) and `provider` (Observed); `ops` calls
//! `make`, `apply` executes the plan.
//!
//! A [`Change`] carries everything apply needs: the object key, the HTTP-level intent
//! (`action`), the full `after` object for creates, the `patch` (changed fields only) for
//! updates, the live `version` planned against, and the indices of the changes it depends
//! on. `reason` explains; it never drives apply (DESIGN §6).
//!
//! [`make()`] takes the declaration as `&mut Desired`: it settles default user names on
//! it in place (`usernames.rs`) before comparing, so the caller keeps the declaration
//! the plan was made from (for secrets and source positions) without a copy of it (at
//! 100,000 representatives a clone would cost more than the diff).
//!
//! Layout, each file building only on those before it (no import circle):
//! - this file: the data types;
//! - `draft.rs`: the state of a plan being built (the run `Cx`, `Draft`, the renames, the
//!   token's scope as data, `field_change`); `join.rs`: merge-joins of sorted maps;
//! - `kinds.rs`: what each kind offers the stages (the `Object` trait);
//! - `scope.rs`: rule 6, a manager token's reach; `safety.rs`: every other refusal (and
//!   the team deletions it turns into deactivations); `order.rs`: every deferral, then
//!   phases and `depends_on`; `usernames.rs`: default user names settled against the
//!   live ones;
//! - `diff.rs`: renames and the per-kind comparison into drafts (asking scope and
//!   safety);
//! - `target.rs`: `--target`/`--exclude` patterns and the selection of an ordered plan's
//!   changes with what they depend on (a partial plan, [`Plan::partial`]);
//! - `shares.rs`: the contact-group share changes that are one decision (a
//!   `contact_group_shares` entry added, or one login's share taken from several groups
//!   at once), [`GroupShare`];
//! - `effect.rs`: who gains or loses what in effect (the model's access core on the
//!   live organization and on the one the plan converges to);
//! - `make.rs`: the stage runner behind [`make()`].
//!
//! [`stale()`] (`stale.rs`) and [`render`] read finished plans only.
//!
//! Contract with apply (what a change means on the wire):
//! - `Create`: POST `after`; when `set_password` is present, apply resolves it and adds
//!   `"password": {"value": …, "rotation": …}` to the body.
//! - every other action: PATCH `patch` (the changed fields only, merge-patch: `null`
//!   clears an optional field) with `If-Match: version`, plus the resolved password when
//!   `set_password` is present. A change whose `version` is `None` while an earlier
//!   change of the same object exists (the deferred team-leader update, see `order.rs`)
//!   uses the version returned by that earlier write.
//! - `Delete`: DELETE with `If-Match` (`purge_statistics=true` for representatives).
//! - Renames assume the live system keeps identity and carries references along (a
//!   team's sub-teams, a representative's memberships); the diff translates live
//!   references through the renames it plans, so none of them shows as drift.

pub mod binding;
mod diff;
mod draft;
mod effect;
mod join;
mod kinds;
mod make;
mod order;
pub mod render;
mod safety;
mod scope;
mod shares;
mod stale;
pub mod target;
#[cfg(test)]
mod tests;
mod usernames;

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::model::rules::RuleCode;
use crate::model::{Kind, Login, ObjectId, Permission, Principal, SecretRef};

pub use effect::{Effect, EffectChange};
pub use make::make;
pub use stale::stale;

/// Version of the saved-plan format.
pub const PLAN_FORMAT_VERSION: u32 = 1;

/// What a change does to its object.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// POST the `after` object.
    Create,
    /// PATCH the changed fields.
    Update,
    /// PATCH the key field (and possibly others): the object keeps its identity.
    Rename,
    /// PATCH that moves the object under another team (a team's parent, a rep's team).
    Move,
    /// PATCH `status: inactive` / `active: false`.
    Deactivate,
    /// PATCH `status: active` / `active: true`.
    Reactivate,
    /// DELETE (representatives: with `purge_statistics=true`).
    Delete,
}

impl Action {
    /// The verb of an action, as summaries and messages print it: `create`, `update`…
    pub fn verb(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Rename => "rename",
            Action::Move => "move",
            Action::Deactivate => "deactivate",
            Action::Reactivate => "reactivate",
            Action::Delete => "delete",
        }
    }

    pub fn is_removal(self) -> bool {
        matches!(self, Action::Deactivate | Action::Delete)
    }
}

/// One field of an update: the JSON values before and after (secrets never appear).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FieldChange {
    pub field: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<serde_json::Value>,
    /// Set elements taken away (rights, features, memberships, portals…), for reviewers
    /// and for the removal threshold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<String>,
    /// Set elements added.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub added: Vec<String>,
}

/// One write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Change {
    /// The object, by its key after this change.
    pub id: ObjectId,
    pub action: Action,
    /// The old key of a rename (or a team move).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previously: Option<String>,
    /// The live object's version this change was planned against (`If-Match`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    /// The whole object after a create (API JSON, secrets as references only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<serde_json::Value>,
    /// The changed fields of an update, as the PATCH body (API JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch: Option<serde_json::Map<String, serde_json::Value>>,
    /// Field by field, for rendering.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldChange>,
    /// A password to set with this change (create, or a changed `rotation`): the
    /// reference, resolved by apply; the value is never in a plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_password: Option<SecretRef>,
    /// Indices (in `Plan::changes`) of the changes that must succeed first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<usize>,
    /// Why, in words (e.g. "deleting a representative loses its statistics irreversibly").
    pub reason: String,
}

/// Seat usage (rule 5, seed 003): operators — active representatives with support
/// management — hold the licensed seats; users without it are unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SeatUsage {
    /// Operators now, account-wide.
    pub operators_before: u64,
    /// Operators once the plan is applied.
    pub operators_after: u64,
    /// The account's licensed seats.
    pub seats: u64,
}

/// A live object no declaration mentions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Unmanaged {
    pub id: ObjectId,
    /// `ignore` (information), `warn`, or `remove` (then a change removes it).
    pub policy: crate::model::Unmanaged,
}

/// Counts per action, for the summary line and the Markdown table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub rename: usize,
    #[serde(rename = "move")]
    pub move_: usize,
    pub deactivate: usize,
    pub reactivate: usize,
    pub delete: usize,
    /// Relationships taken away (memberships, rights, grantable features, portals,
    /// campaign members) plus objects removed.
    pub removals: usize,
}

/// The plan: ordered changes and what a reviewer must know.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Plan {
    pub format_version: u32,
    /// Who the token acts as (scope of the plan).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<Principal>,
    /// What the plan was made against: `apply --plan` refuses another endpoint, account
    /// or principal (`binding`). Set by `roster plan`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<binding::Target>,
    /// Why safety rules refuse this plan, first (the JSON plan's banner): it is shown,
    /// never applied, while any is here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refusals: Vec<Refusal>,
    pub changes: Vec<Change>,
    pub summary: Summary,
    /// Live objects not declared.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmanaged: Vec<Unmanaged>,
    /// Objects outside a manager token's scope, never touched.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub out_of_scope: Vec<ObjectId>,
    /// Warnings for the reviewer (rule 4, unmanaged with `warn`, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Set when `--target`/`--exclude` cut the plan down: the patterns, how many changes
    /// of the full plan are left out, and the dependencies pulled in (`target.rs`).
    /// `changes` and `summary` hold the selected changes only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial: Option<target::Partial>,
    /// Contact-group shares changed as one decision (`shares.rs`): a
    /// `contact_group_shares` entry gained by every group it reaches, or one login's
    /// share taken from several groups at once. The per-group changes stay in
    /// `changes`; each entry names its groups. Whole plans only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group_shares: Vec<GroupShare>,
    /// Who gains or loses what in effect (`effect.rs`): the effective permissions that
    /// change for each person, grouped, including those caused by a change to another
    /// object. Whole plans only: empty for a partial plan.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub effects: Vec<Effect>,
    /// Operators holding licensed seats before and after this plan (rule 5, seed 003).
    /// Absent from plans saved before roster counted them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seats: Option<SeatUsage>,
    /// Whether the live system ran the plan's writes as a dry run (`POST /v1/plan:check`)
    /// and would refuse none of them but those in `refusals` (rule `server-check`).
    /// Absent: not checked (`--no-server-check`, a live system without the check, no
    /// changes, or already refused before the check).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub server_checked: bool,
    /// `kind/key` → version of every live object read: a saved plan is refused when any
    /// of them changed (or disappeared, or a new object of a planned key appeared).
    pub fingerprint: BTreeMap<String, i64>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Whether a safety rule refuses the plan (apply writes nothing of it).
    pub fn is_refused(&self) -> bool {
        !self.refusals.is_empty()
    }

    /// The rule codes of the refusals, each once, sorted: `protected, seats`.
    pub fn refusal_codes(&self) -> String {
        let codes: std::collections::BTreeSet<&str> =
            self.refusals.iter().map(|r| r.rule.as_str()).collect();
        codes.into_iter().collect::<Vec<_>>().join(", ")
    }

    /// The plan when no rule refuses it, else every refusal.
    pub fn into_result(self) -> Result<Plan, PlanErrors> {
        if self.refusals.is_empty() {
            Ok(self)
        } else {
            Err(PlanErrors(self.refusals))
        }
    }

    /// Live objects not declared under `unmanaged: warn`: drift, for
    /// `--unmanaged-as-changes`.
    pub fn drift(&self) -> impl Iterator<Item = &Unmanaged> {
        self.unmanaged
            .iter()
            .filter(|u| u.policy == crate::model::Unmanaged::Warn)
    }

    pub fn changes_of(&self, kind: Kind) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(move |c| c.id.kind == kind)
    }
}

/// A login's share of many contact groups changed as one decision: a
/// `contact_group_shares` entry (seed 003: "all groups at once") that the groups gain,
/// or the same share taken from several groups (an entry removed). The renderings show
/// it as one line instead of one change per group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct GroupShare {
    pub login: Login,
    pub permission: Permission,
    /// `gains` or `loses`.
    pub change: EffectChange,
    /// The contact groups whose change in this plan carries it, by name (each a change
    /// of `changes`).
    pub groups: Vec<String>,
    /// How many contact groups are declared: `groups` is all of them when equal.
    pub of: usize,
    /// Set when a `contact_group_shares` entry causes it (a gain); a loss is the same
    /// share gone from several groups at once.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub declared: bool,
}

impl GroupShare {
    /// `view on all 12 contact groups`, `view on 2 of 3 contact groups`.
    pub fn scope(&self) -> String {
        let (p, n) = (self.permission.as_str(), self.groups.len());
        match (n == self.of, n) {
            (true, 1) => format!("{p} on the one contact group"),
            (true, _) => format!("{p} on all {n} contact groups"),
            (false, _) => format!("{p} on {n} of {} contact groups", self.of),
        }
    }

    /// `lea@acme.example gains view on all 12 contact groups (contact_group_shares)`.
    pub fn line(&self) -> String {
        let why = if self.declared {
            "contact_group_shares"
        } else {
            "not in contact_group_shares"
        };
        format!(
            "{} {} {} ({why})",
            self.login,
            self.change.verb(false),
            self.scope()
        )
    }

    /// The element of `shared_with` it adds or removes, as a [`FieldChange`] lists it:
    /// `lea@acme.example (view)`.
    pub fn element(&self) -> String {
        format!("{} ({})", self.login, self.permission.as_str())
    }

    /// Whether the change of group `group` lists `element` because of this share.
    pub fn covers(&self, group: &str, element: &str, removed: bool) -> bool {
        removed == (self.change == EffectChange::Loses)
            && element == self.element()
            && self.groups.iter().any(|g| g == group)
    }
}

/// Whether a contact group's change is nothing but shares the plan's [`GroupShare`]s
/// show (an update of `shared_with` alone, each element covered): the renderings fold
/// it into their lines.
pub fn folded_into_shares(c: &Change, shares: &[GroupShare]) -> bool {
    c.id.kind == Kind::ContactGroup
        && c.action == Action::Update
        && !c.fields.is_empty()
        && c.fields.iter().all(|f| {
            f.field == "shared_with"
                && f.added
                    .iter()
                    .all(|e| shares.iter().any(|s| s.covers(&c.id.key, e, false)))
                && f.removed
                    .iter()
                    .all(|e| shares.iter().any(|s| s.covers(&c.id.key, e, true)))
        })
}

/// Switches that the command line, not the declaration, controls.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanOptions {
    /// `--allow-delete`: with `on_remove: delete`, representatives (and teams, campaigns)
    /// are deleted rather than deactivated.
    pub allow_delete: bool,
    /// `--force`: proceed although removals exceed the removal threshold.
    pub force: bool,
    /// `--target`/`--exclude`: only part of the plan's changes (empty: all).
    pub filter: target::Filter,
    /// Whether `ops` asks the live system for a dry run of the finished plan (on unless
    /// `--no-server-check`; `plan::make` itself never does I/O).
    pub server_check: bool,
}

/// Why a safety rule refuses the plan (removal threshold, protected object, seats,
/// escalation, deletion without permission, rename conflict, a user name held or
/// handed round). The plan is still made and shown, carrying its refusals; apply
/// writes nothing of a plan that has any. `pointer` is relative to the object
/// (`/status`, empty for the object itself); `ops` turns `id` + `pointer` into
/// file:line:column through `Desired::origins` when the object is declared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, thiserror::Error)]
#[error("{rule}: {id}: {message}")]
pub struct Refusal {
    /// The rule's code (`removal-threshold`, `protected`, `seats`, `escalation`, …).
    pub rule: RuleCode,
    /// The object the refusal is about (where the diagnostic points).
    pub id: ObjectId,
    /// The other objects concerned (the removal threshold: every object with a removal).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<ObjectId>,
    /// JSON pointer of the field, relative to the object (empty: the object itself).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pointer: String,
    pub message: String,
    /// How to proceed (`--force`, `protect: false`, `--allow-delete`, …).
    pub help: String,
}

impl Refusal {
    /// The object the refusal is about, then every other one concerned.
    pub fn all_objects(&self) -> impl Iterator<Item = &ObjectId> {
        std::iter::once(&self.id).chain(self.objects.iter().filter(move |o| **o != self.id))
    }
}

/// Every reason a plan was refused, in a deterministic order (by rule, then object).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanErrors(pub Vec<Refusal>);

impl fmt::Display for PlanErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(
            f,
            "the plan was refused ({n} error{})",
            crate::model::text::s(n)
        )?;
        for e in &self.0 {
            write!(f, "\n  {e}\n    help: {}", e.help)?;
        }
        Ok(())
    }
}

impl std::error::Error for PlanErrors {}

impl PlanErrors {
    pub fn rules(&self) -> impl Iterator<Item = RuleCode> + '_ {
        self.0.iter().map(|e| e.rule)
    }
}
