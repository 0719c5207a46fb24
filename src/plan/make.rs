//! The stage runner: one plan, from the declaration and the live state to a [`Plan`] or
//! every reason there is none.
//!
//! Owns the order of the stages, which the stages themselves rely on: user names are
//! settled on the declaration (`usernames.rs`); the run ([`Cx`], `draft.rs`) works out
//! the manager token's scope (`scope.rs`); the diff collects renames and drafts every
//! kind's changes (`diff.rs`); safety turns team deletions that would keep members into
//! deactivations and finds deletions the live system would refuse (`safety.rs`); the
//! deferrals of leaders and freed user names follow (`order.rs`), then the ordering,
//! the selection of `--target`/`--exclude` (`target.rs`), and last the remaining
//! refusals, on what is selected. The saved plan's fingerprint is built on another core
//! meanwhile. Called by the `plan` and `apply` commands (`ops`).

use std::collections::{BTreeMap, BTreeSet};

use super::draft::{Cx, Draft};
use super::target::{self, Partial};
use super::usernames::settle_usernames;
use super::{
    Action, Change, PLAN_FORMAT_VERSION, Plan, PlanOptions, Summary, diff, effect, order, safety,
    scope, shares,
};
use crate::model::{Desired, ObjectId, Observed, Principal};
use serde_json::json;

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
        || stages(Cx::new(desired, observed, opts.clone())),
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
    order::release_leaders(&mut cx);
    let cycles = order::defer_usernames(&mut cx);
    safety::username_cycles(&mut cx, &cycles);

    // Ordered before the last checks: targeting follows `depends_on`, and the checks
    // that count (seats, the removal threshold) judge what a partial plan keeps.
    let drafts = std::mem::take(&mut cx.drafts);
    cx.drafts = order::order(drafts, &cx.observed.org);
    let partial = select(&mut cx);

    safety::protection(&mut cx);
    let seats = safety::seats(&mut cx);
    safety::usernames(&mut cx);
    safety::live_login_collisions(&mut cx);
    // Who gains or loses what: whole plans only (a partial plan converges to no
    // declared state); the removal threshold counts the indirect losses.
    // The contact-group shares that are one decision: whole plans only too.
    let (group_shares, effects) = if partial.is_none() {
        let refs: Vec<&Change> = cx.drafts.iter().map(|d| &d.change).collect();
        let shares = shares::group_shares(cx.desired, cx.observed, &refs);
        let effects = effect::effects(cx.desired, cx.observed, &refs, &shares);
        (shares, effects)
    } else {
        (vec![], vec![])
    };
    safety::threshold(&mut cx, &effects);

    let mut refusals = cx.errors;
    if let Some((_, left_out)) = &partial {
        // A refusal about left-out objects only does not concern this plan.
        refusals.retain(|r| !r.all_objects().all(|o| left_out.contains(o)));
    }
    refusals.sort_by(|a, b| (a.rule, &a.id, &a.pointer).cmp(&(b.rule, &b.id, &b.pointer)));
    refusals.dedup();

    let mut summary = summarize(&cx.drafts);
    let mut changes: Vec<Change> = cx.drafts.into_iter().map(|d| d.change).collect();
    if partial.is_none()
        && let Some(change) = account_change(cx.desired, cx.observed)
    {
        if let Some(Principal::Manager { login }) = &cx.observed.principal {
            refusals.push(crate::plan::Refusal {
                rule: crate::model::rules::RuleCode::Escalation,
                id: change.id.clone(),
                objects: Vec::new(),
                pointer: String::new(),
                message: format!(
                    "the manager token of `{login}` may not change the account (its name \
                     or password policy): only an administrator may"
                ),
                help: "apply the `account` section with an administrator's token, or remove \
                       it from the files planned with this token"
                    .into(),
            });
            refusals.sort_by(|a, b| (a.rule, &a.id, &a.pointer).cmp(&(b.rule, &b.id, &b.pointer)));
        }
        put_first(&mut changes, change);
        summary.update += 1;
    }
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
        partial: partial.map(|(p, _)| p),
        refusals,
        seats: Some(seats),
        group_shares,
        effects,
        fingerprint: BTreeMap::new(),
        server_checked: false,
    }
}

/// The account's change (`account/account`), when the `account` section declares a name
/// or password policy other than the live one: a PATCH of `/v1/account` with the
/// changed fields against the live version.
fn account_change(desired: &Desired, observed: &Observed) -> Option<Change> {
    let decl = desired.account.as_ref()?;
    let live = &observed.account;
    let mut patch = serde_json::Map::new();
    let mut fields = Vec::new();
    let mut field = |name: &str, before: serde_json::Value, after: serde_json::Value| {
        if before != after {
            patch.insert(name.to_string(), after.clone());
            fields.push(crate::plan::FieldChange {
                field: name.to_string(),
                before: Some(before),
                after: Some(after),
                removed: Vec::new(),
                added: Vec::new(),
            });
        }
    };
    if let Some(name) = &decl.name {
        field("name", json!(live.name), json!(name));
    }
    if let Some(policy) = &decl.password_policy {
        field("password_policy", json!(live.policy()), json!(policy));
    }
    if patch.is_empty() {
        return None;
    }
    Some(Change {
        id: crate::model::account_id(),
        action: Action::Update,
        previously: None,
        version: Some(live.version),
        after: None,
        patch: Some(patch),
        fields,
        set_password: None,
        depends_on: Vec::new(),
        reason: "the account is changed first: every password this plan sends is checked \
                 against the policy it declares"
            .into(),
    })
}

/// Puts the account's change first: every other change's `depends_on` moves up by one,
/// and each change that sends a password depends on it (the new policy in force first).
fn put_first(changes: &mut Vec<Change>, first: Change) {
    for c in changes.iter_mut() {
        for d in &mut c.depends_on {
            *d += 1;
        }
        if c.set_password.is_some() {
            c.depends_on.insert(0, 0);
        }
    }
    changes.insert(0, first);
}

/// `--target`/`--exclude` (`target.rs`): keeps the selected drafts (renumbering their
/// `depends_on`), adds the refusals and warnings of the selection, and gives what the
/// plan says about being partial with the objects left out entirely (no change of them
/// kept). `None` without a filter.
fn select(cx: &mut Cx) -> Option<(Partial, BTreeSet<ObjectId>)> {
    if cx.opts.filter.is_empty() {
        return None;
    }
    let filter = cx.opts.filter.clone();
    let refs: Vec<&Change> = cx.drafts.iter().map(|d| &d.change).collect();
    let sel = target::choose(&refs, &filter);
    let partial = target::partial(&filter, &sel, &refs, refs.len());
    drop(refs);
    for p in &sel.unmatched {
        cx.warnings.push(format!(
            "`{p}` names no change of this plan; it has no effect"
        ));
    }
    cx.errors.extend(sel.refusals);
    let index = target::renumber(&sel.keep);
    let drafts = std::mem::take(&mut cx.drafts);
    let mut left_out = BTreeSet::new();
    for (mut d, new) in drafts.into_iter().zip(&index) {
        if new.is_none() {
            left_out.insert(d.change.id);
            continue;
        }
        d.change.depends_on = d
            .change
            .depends_on
            .iter()
            .filter_map(|&j| index.get(j).copied().flatten())
            .collect();
        cx.drafts.push(d);
    }
    for d in &cx.drafts {
        left_out.remove(&d.change.id);
    }
    Some((partial, left_out))
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
