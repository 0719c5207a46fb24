//! The plan: pure data computed from `Desired` × `Observed`, rendered, saved, applied.
//!
//! Owns: diff (`diff`), dependency order, safety checks (thresholds, protection, deletion
//! policy), the fingerprint of a saved plan, and the renderings (`render`). Pure: no I/O.
//! Data comes from `config` (Desired) and `provider` (Observed); `apply` executes it.
//!
//! A [`Change`] carries everything apply needs: the object key, the HTTP-level intent
//! (`action`), the full `after` object for creates, the `patch` (changed fields only) for
//! updates, the live `version` planned against, and the indices of the changes it depends
//! on. `reason` explains; it never drives apply (DESIGN §6).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::model::{Kind, ObjectId, Principal, SecretRef};

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
    /// `kind/key` → version of every live object read: a saved plan is refused when any
    /// of them changed (or disappeared, or a new object of a planned key appeared).
    pub fingerprint: BTreeMap<String, i64>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    pub fn changes_of(&self, kind: Kind) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(move |c| c.id.kind == kind)
    }
}
