//! The stage runner: one plan, from the declaration and the live state to a [`Plan`] or
//! every reason there is none.
//!
//! Owns the order of the stages, which the stages themselves rely on: user names are
//! settled on the declaration (`usernames.rs`); the run ([`Cx`], `draft.rs`) works out
//! the manager token's scope (`scope.rs`); the diff collects renames and drafts every
//! kind's changes (`diff.rs`); safety turns team deletions that would keep members into
//! deactivations and finds deletions the live system would refuse (`safety.rs`); the
//! deferrals of leaders and freed user names follow (`order.rs`), then the remaining
//! refusals; last, the ordering. The saved plan's fingerprint is built on another core
//! meanwhile. Called by the `plan` and `apply` commands (`ops`).

use std::collections::BTreeMap;

use super::draft::{Cx, Draft};
use super::usernames::settle_usernames;
use super::{Action, PLAN_FORMAT_VERSION, Plan, PlanOptions, Summary, diff, order, safety, scope};
use crate::model::{Desired, Observed};

/// Computes the plan that brings the live system to the declaration, with every reason
/// a safety rule refuses it (rename conflicts, protected objects, seats, scope, removal
/// threshold) in `refusals`: a refused plan is still whole, for reviewers to read.
///
/// Settles the declaration's default user names against the live ones first, in place:
/// afterwards `desired` holds the names the plan writes (see the module docs of
/// `plan`).
pub fn make(desired: &mut Desired, observed: &Observed, opts: &PlanOptions) -> Plan {
    settle_usernames(desired, observed);
    make_settled(desired, observed, opts)
}

/// [`make`] for a declaration whose user names are settled already (or, in tests, are
/// meant to be compared as written).
pub(super) fn make_settled(desired: &Desired, observed: &Observed, opts: &PlanOptions) -> Plan {
    // The saved plan's fingerprint reads only the live versions: built on another core
    // while the objects are compared.
    let (fingerprint, plan) = rayon::join(
        || {
            observed
                .versions
                .iter()
                .map(|(id, v)| (id.to_string(), *v))
                .collect()
        },
        || stages(Cx::new(desired, observed, *opts)),
    );
    Plan {
        fingerprint,
        ..plan
    }
}

/// [`make_settled`] without the fingerprint.
fn stages(mut cx: Cx) -> Plan {
    scope::work_out(&mut cx);
    diff::renames(&mut cx);
    diff::kinds(&mut cx);

    // Reshaping removals comes first: the deferrals and the threshold count what is left.
    safety::team_deletes(&mut cx);
    safety::deleted_still_referenced(&mut cx);
    order::defer_leaders(&mut cx);
    let cycles = order::defer_usernames(&mut cx);
    safety::username_cycles(&mut cx, &cycles);

    safety::protection(&mut cx);
    safety::seats(&mut cx);
    safety::usernames(&mut cx);
    safety::threshold(&mut cx);

    let mut refusals = cx.errors;
    refusals.sort_by(|a, b| (a.rule, &a.id, &a.pointer).cmp(&(b.rule, &b.id, &b.pointer)));
    refusals.dedup();

    let summary = summarize(&cx.drafts);
    let changes = order::order(cx.drafts, &cx.observed.org);
    let mut out_of_scope = cx.out_of_scope;
    out_of_scope.sort();
    out_of_scope.dedup();
    Plan {
        format_version: PLAN_FORMAT_VERSION,
        principal: cx.observed.principal.clone(),
        target: None,
        changes,
        summary,
        unmanaged: cx.unmanaged,
        out_of_scope,
        warnings: cx.warnings,
        refusals,
        fingerprint: BTreeMap::new(),
    }
}

fn summarize(drafts: &[Draft]) -> Summary {
    let mut s = Summary::default();
    for d in drafts {
        match d.change.action {
            Action::Create => s.create += 1,
            Action::Update => s.update += 1,
            Action::Rename => s.rename += 1,
            Action::Move => s.move_ += 1,
            Action::Deactivate => s.deactivate += 1,
            Action::Reactivate => s.reactivate += 1,
            Action::Delete => s.delete += 1,
        }
        s.removals += d.removals.len();
    }
    s
}
