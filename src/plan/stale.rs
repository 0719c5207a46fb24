//! Staleness of a saved plan: its fingerprint against a fresh read of the live system.
//!
//! `apply plan.json` re-reads the live objects (provider → `Observed`) and refuses the
//! plan when [`stale`] names anything.

use std::collections::BTreeMap;

use super::{Action, Plan};
use crate::model::Observed;

/// What changed since the plan was made, one line per object (`kind/key: why`):
/// objects whose version differs from the fingerprint, objects that vanished, and
/// objects that now exist under a key the plan creates (or renames to). Empty when the
/// plan is current.
pub fn stale(plan: &Plan, observed: &Observed) -> Vec<String> {
    let now: BTreeMap<String, i64> = observed
        .versions
        .iter()
        .map(|(id, v)| (id.to_string(), *v))
        .collect();
    let mut out = vec![];
    for (name, v) in &plan.fingerprint {
        match now.get(name) {
            None => out.push(format!("{name}: no longer exists")),
            Some(n) if n != v => out.push(format!("{name}: changed (version {v} → {n})")),
            Some(_) => {}
        }
    }
    for c in &plan.changes {
        if !matches!(c.action, Action::Create | Action::Rename | Action::Move) {
            continue;
        }
        let name = c.id.to_string();
        if c.action != Action::Create && c.previously.is_none() {
            continue; // a representative's move keeps its key
        }
        if !plan.fingerprint.contains_key(&name)
            && let Some(n) = now.get(&name)
        {
            out.push(format!(
                "{name}: now exists (version {n}) where the plan {} it",
                if c.action == Action::Create {
                    "creates"
                } else {
                    "renames to"
                }
            ));
        }
    }
    out.sort();
    out.dedup();
    out
}
