//! The executor: runs a [`Plan`]'s changes through the provider and reports each one.
//!
//! Owns: dependency order (a change starts only after every change in its `depends_on`
//! succeeded), concurrency (up to `parallelism` requests in flight), grouping of many
//! ready changes of one kind and action into `:batch` requests, the resolution of
//! passwords just before sending (never printed, never in the plan), deterministic
//! `Idempotency-Key`s, and the [`ApplyReport`].
//!
//! Data comes from `plan` (the changes) and `config::secrets` (through
//! [`ApplyOptions::resolve_secret`]); requests go to any [`Provider`]: the HTTP client in
//! the binary, an in-memory one in the unit tests (`memory_tests`).
//!
//! Failures do not stop the run: a failed change makes every change that depends on it,
//! directly or not, skipped (with the reason), and everything else still runs. A re-run
//! (a fresh plan) converges: what was done no longer shows as a change.

mod report;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

pub use report::{ApplyReport, ChangeResult, Outcome, ReportSummary, while_bar_hidden};

use crate::model::{Kind, SecretRef, SecretValue};
use crate::plan::{Action, Change, Plan};
use crate::provider::{BatchOp, CheckOp, Provider, ProviderError};

/// Most operations in one batch when the batch sets passwords.
pub const BATCH_MAX_WITH_PASSWORDS: usize = 50;

/// Resolves a password reference to its value (`config::secrets::resolve` in the binary).
/// The error text must name the reference (variable or file), never a value.
pub type SecretResolver = Arc<dyn Fn(&SecretRef) -> Result<SecretValue, String> + Send + Sync>;

/// How to run a plan.
#[derive(Clone)]
pub struct ApplyOptions {
    /// Requests in flight at once (a batch counts as one). At least 1.
    pub parallelism: usize,
    /// Ready changes of one kind and action from which they go as one `:batch` request.
    pub batch_min: usize,
    /// Operations per batch request (the API's limit is 1000).
    pub batch_max: usize,
    pub resolve_secret: SecretResolver,
}

impl ApplyOptions {
    /// Defaults: 8 in flight, batches from 16 ready changes, up to 1000 per batch.
    pub fn new(resolve_secret: SecretResolver) -> ApplyOptions {
        ApplyOptions {
            parallelism: 8,
            batch_min: 16,
            batch_max: 1000,
            resolve_secret,
        }
    }
}

impl std::fmt::Debug for ApplyOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApplyOptions")
            .field("parallelism", &self.parallelism)
            .field("batch_min", &self.batch_min)
            .field("batch_max", &self.batch_max)
            .finish_non_exhaustive()
    }
}

/// How progress is shown while applying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// A progress bar on stderr (a terminal).
    Bar,
    /// One line per finished change on stderr (logs, CI).
    Lines,
    /// Nothing.
    Quiet,
}

impl Progress {
    /// A bar when stderr is a terminal, lines otherwise.
    pub fn auto() -> Progress {
        if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            Progress::Bar
        } else {
            Progress::Lines
        }
    }
}

/// Why one change failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub message: String,
    /// HTTP status, when the server answered.
    pub status: Option<u16>,
    /// Problem code, when the server sent one.
    pub code: Option<String>,
}

impl Failure {
    fn local(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            status: None,
            code: None,
        }
    }
}

impl From<ProviderError> for Failure {
    fn from(e: ProviderError) -> Failure {
        Failure {
            message: e.to_string(),
            status: e.status(),
            code: e.code().map(str::to_string),
        }
    }
}

/// Requests that may share a batch: same kind, same operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum OpClass {
    Create,
    Update,
    Delete,
}

fn op_class(a: Action) -> OpClass {
    match a {
        Action::Create => OpClass::Create,
        Action::Delete => OpClass::Delete,
        Action::Update
        | Action::Rename
        | Action::Move
        | Action::Deactivate
        | Action::Reactivate => OpClass::Update,
    }
}

/// A short name of a change, for messages: `update representative/jdoe@acme.example`.
pub fn describe(c: &Change) -> String {
    let verb = c.action.verb();
    match (&c.previously, c.action) {
        (Some(old), Action::Rename | Action::Move) => {
            format!("{verb} {}/{old} to {}", c.id.kind, c.id.key)
        }
        _ => format!("{verb} {}", c.id),
    }
}

/// The idempotency namespace of a plan: the hash of its fingerprint (the live versions it
/// was made against). The same plan run again sends the same keys, so a create whose
/// answer was lost is replayed by the server rather than done twice.
pub fn plan_key(plan: &Plan) -> String {
    let mut h = Sha256::new();
    h.update(serde_json::to_vec(&plan.fingerprint).unwrap_or_default());
    hex::encode(h.finalize())
}

/// `roster-<hash of plan key, change index, body without the password value>`.
fn idempotency_key(plan_key: &str, index: usize, body: &Value) -> String {
    let mut shown = body.clone();
    if let Some(Value::Object(pw)) = shown.get_mut("password") {
        pw.remove("value");
    }
    let mut h = Sha256::new();
    h.update(plan_key.as_bytes());
    h.update(b"\0");
    h.update(index.to_string().as_bytes());
    h.update(b"\0");
    h.update(serde_json::to_vec(&shown).unwrap_or_default());
    format!("roster-{}", &hex::encode(h.finalize())[..40])
}

/// Drops password references (the API takes only a value) and, when the change sets a
/// password, resolves it now and adds `password: {value, rotation}`.
fn with_password(
    mut body: Map<String, Value>,
    change: &Change,
    resolve: &SecretResolver,
) -> Result<Map<String, Value>, Failure> {
    body.remove("password");
    body.remove("previously");
    if let Some(secret) = &change.set_password {
        let value = resolve(secret).map_err(|e| {
            Failure::local(format!(
                "cannot read the password of {}: {e}; nothing was sent for this object",
                change.id
            ))
        })?;
        let mut pw = Map::new();
        pw.insert("value".into(), Value::String(value.0));
        if let Some(r) = &secret.rotation {
            pw.insert("rotation".into(), Value::String(r.clone()));
        }
        body.insert("password".into(), Value::Object(pw));
    }
    Ok(body)
}

/// The version a write sends in `If-Match`: the one this run's own earlier write of the
/// object returned (an object created or changed earlier in the same plan), else the one
/// the plan read.
fn prepare(
    plan_key: &str,
    index: usize,
    change: &Change,
    written: Option<i64>,
    resolve: &SecretResolver,
) -> Result<BatchOp, Failure> {
    let remake = "make the plan again with `roster plan`";
    match change.action {
        Action::Create => {
            let Some(Value::Object(after)) = &change.after else {
                return Err(Failure::local(format!(
                    "the plan's create of {} has no object body; {remake}",
                    change.id
                )));
            };
            let body = Value::Object(with_password(after.clone(), change, resolve)?);
            let idempotency_key = idempotency_key(plan_key, index, &body);
            Ok(BatchOp::Create {
                body,
                idempotency_key,
            })
        }
        Action::Delete => {
            let if_match = written.or(change.version).ok_or_else(|| {
                Failure::local(format!(
                    "the plan's delete of {} has no live version to check; {remake}",
                    change.id
                ))
            })?;
            Ok(BatchOp::Delete {
                key: change.previously.clone().unwrap_or(change.id.key.clone()),
                if_match,
                purge_statistics: change.id.kind == Kind::Representative,
            })
        }
        _ => {
            let if_match = written.or(change.version).ok_or_else(|| {
                Failure::local(format!(
                    "the plan's {} has no live version to check; {remake}",
                    describe(change)
                ))
            })?;
            let patch = change.patch.clone().unwrap_or_default();
            let body = with_password(patch, change, resolve)?;
            if body.is_empty() {
                return Err(Failure::local(format!(
                    "the plan's {} changes no field; {remake}",
                    describe(change)
                )));
            }
            Ok(BatchOp::Update {
                key: change.previously.clone().unwrap_or(change.id.key.clone()),
                if_match,
                body: Value::Object(body),
            })
        }
    }
}

/// The plan's writes as a dry run takes them (`Provider::check`), in plan order: the
/// requests [`execute`] would send, one per change, without any password value (a
/// change that sets one says so in `set_password`). An update or delete sends the
/// version the plan read; the live system checks one of an object an earlier operation
/// wrote against the version that write left, as the executor does.
pub fn check_ops(plan: &Plan) -> Vec<CheckOp> {
    checked_changes(plan).map(check_op).collect()
}

/// The changes a dry run takes, in plan order: all but the account's (`PATCH
/// /v1/account` is no object write; its dry run would check nothing the plan does not).
pub fn checked_changes(plan: &Plan) -> impl Iterator<Item = &Change> {
    plan.changes.iter().filter(|c| c.id.kind != Kind::Account)
}

fn check_op(change: &Change) -> CheckOp {
    let body_of = |mut body: Map<String, Value>| {
        body.remove("password");
        body.remove("previously");
        if let Some(secret) = &change.set_password {
            let mut pw = Map::new();
            if let Some(r) = &secret.rotation {
                pw.insert("rotation".into(), Value::String(r.clone()));
            }
            body.insert("password".into(), Value::Object(pw));
        }
        Value::Object(body)
    };
    let key = change.previously.clone().unwrap_or(change.id.key.clone());
    // A change without a version follows an earlier write of its object (the deferred
    // leader update), whose version the live system uses; 0 matches no object.
    let if_match = change.version.unwrap_or(0);
    let op = match change.action {
        Action::Create => BatchOp::Create {
            body: body_of(match &change.after {
                Some(Value::Object(after)) => after.clone(),
                _ => Map::new(),
            }),
            idempotency_key: String::new(),
        },
        Action::Delete => BatchOp::Delete {
            key,
            if_match,
            purge_statistics: change.id.kind == Kind::Representative,
        },
        _ => BatchOp::Update {
            key,
            if_match,
            body: body_of(change.patch.clone().unwrap_or_default()),
        },
    };
    CheckOp {
        kind: change.id.kind,
        op,
        set_password: change.set_password.is_some(),
    }
}

/// The `version` of an object in a write's answer.
fn version_of(v: &Value) -> Option<i64> {
    v.get("version").and_then(Value::as_i64)
}

/// Sends one request; `Ok` holds the object's new version (none after a delete).
async fn send_one<P: Provider>(
    provider: &P,
    kind: Kind,
    req: BatchOp,
) -> Result<Option<i64>, Failure> {
    match req {
        BatchOp::Create {
            body,
            idempotency_key,
        } => provider
            .create(kind, &body, &idempotency_key)
            .await
            .map(|v| version_of(&v)),
        BatchOp::Update {
            key,
            if_match,
            body,
        } => provider
            .update(kind, &key, if_match, &body)
            .await
            .map(|v| version_of(&v)),
        BatchOp::Delete {
            key,
            if_match,
            purge_statistics,
        } => provider
            .delete(kind, &key, if_match, purge_statistics)
            .await
            .map(|()| None),
    }
    .map_err(Failure::from)
}

async fn send_batch<P: Provider>(
    provider: &P,
    kind: Kind,
    items: Vec<(usize, BatchOp)>,
) -> Results {
    let (indices, ops): (Vec<usize>, Vec<BatchOp>) = items.into_iter().unzip();
    match provider.batch(kind, &ops).await {
        Ok(results) => indices
            .into_iter()
            .zip(results)
            .map(|(i, r)| (i, r.map(|v| version_of(&v)).map_err(Failure::from)))
            .collect(),
        Err(e) => {
            let f = Failure::from(e);
            indices.into_iter().map(|i| (i, Err(f.clone()))).collect()
        }
    }
}

/// What one unit of work (a request or a batch) reports: change index → result.
type Results = Vec<(usize, Result<Option<i64>, Failure>)>;

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Waiting,
    Running,
    Done(Outcome),
}

/// Runs the plan. Never fails as a whole: every change gets an outcome in the report.
pub async fn execute<P: Provider>(
    plan: &Plan,
    provider: &P,
    opts: &ApplyOptions,
    progress: Progress,
) -> ApplyReport {
    let started = Instant::now();
    let n = plan.changes.len();
    let key = plan_key(plan);
    let parallelism = opts.parallelism.max(1);
    let batch_max = opts.batch_max.clamp(1, 1000);
    let batch_min = opts.batch_min.max(2);
    let shown = report::Shown::new(progress, n);

    let mut state = vec![State::Waiting; n];
    let mut unmet = vec![0usize; n];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut invalid = Vec::new();
    for (i, c) in plan.changes.iter().enumerate() {
        let mut deps = c.depends_on.clone();
        deps.sort_unstable();
        deps.dedup();
        for d in deps {
            if d >= n || d == i {
                invalid.push((i, d));
            } else {
                unmet[i] += 1;
                dependents[d].push(i);
            }
        }
    }

    let mut finished: Vec<(usize, Outcome)> = Vec::new();
    // The version each object has after this run's own writes of it.
    let mut versions: std::collections::HashMap<crate::model::ObjectId, i64> =
        std::collections::HashMap::new();
    for (i, d) in invalid {
        if state[i] == State::Waiting {
            let o = Outcome::Failed(Failure::local(format!(
                "the plan's {} depends on change #{d}, which is not in the plan; make the plan again",
                describe(&plan.changes[i])
            )));
            state[i] = State::Running;
            finished.push((i, o));
        }
    }

    let mut ready: VecDeque<usize> = (0..n)
        .filter(|&i| unmet[i] == 0 && state[i] == State::Waiting)
        .collect();
    let mut inflight: FuturesUnordered<BoxFuture<'_, Results>> = FuturesUnordered::new();

    loop {
        // Record what finished; release or skip what depends on it.
        for (i, outcome) in finished.drain(..) {
            let ok = outcome == Outcome::Done;
            shown.finished(&plan.changes[i], &outcome);
            state[i] = State::Done(outcome);
            if ok {
                for &d in &dependents[i] {
                    unmet[d] -= 1;
                    if unmet[d] == 0 && state[d] == State::Waiting {
                        ready.push_back(d);
                    }
                }
            } else {
                skip_dependents(plan, i, &dependents, &mut state, &shown);
            }
        }

        // Start work while there is room.
        while inflight.len() < parallelism {
            let Some(first) = ready.pop_front() else {
                break;
            };
            if state[first] != State::Waiting {
                continue;
            }
            let c = &plan.changes[first];
            let group = (c.id.kind, op_class(c.action));
            let same: Vec<usize> = std::iter::once(first)
                .chain(ready.iter().copied().filter(|&j| {
                    let d = &plan.changes[j];
                    state[j] == State::Waiting && (d.id.kind, op_class(d.action)) == group
                }))
                .collect();
            let members = if same.len() >= batch_min {
                // Spread a large group over the free request slots, so that batches run
                // side by side rather than one long batch after another.
                let free = parallelism - inflight.len();
                let mut size = same.len().div_ceil(free).clamp(batch_min, batch_max);
                if same.len() - size.min(same.len()) < batch_min {
                    // Too few would be left for a batch of their own: take them too.
                    size = same.len().min(batch_max);
                }
                // The server hashes every password it is sent (Argon2id, deliberately slow):
                // a batch carrying passwords stays small enough to answer within the
                // request timeout.
                if same
                    .iter()
                    .take(size)
                    .any(|&j| plan.changes[j].set_password.is_some())
                {
                    size = size.min(BATCH_MAX_WITH_PASSWORDS);
                }
                let chunk: Vec<usize> = same.into_iter().take(size).collect();
                let taken: std::collections::HashSet<usize> = chunk.iter().copied().collect();
                ready.retain(|j| !taken.contains(j));
                chunk
            } else {
                vec![first]
            };
            let mut requests = Vec::with_capacity(members.len());
            for i in members {
                state[i] = State::Running;
                let written = versions.get(&plan.changes[i].id).copied();
                match prepare(&key, i, &plan.changes[i], written, &opts.resolve_secret) {
                    Ok(r) => requests.push((i, r)),
                    Err(f) => inflight.push(Box::pin(async move { vec![(i, Err(f))] })),
                }
            }
            let kind = group.0;
            match requests.len() {
                0 => {}
                1 => {
                    let (i, r) = requests.pop().expect("one request");
                    inflight.push(Box::pin(async move {
                        vec![(i, send_one(provider, kind, r).await)]
                    }));
                }
                _ => inflight.push(Box::pin(send_batch(provider, kind, requests))),
            }
        }

        match inflight.next().await {
            Some(results) => {
                for (i, r) in results {
                    let outcome = match r {
                        Ok(version) => {
                            let id = &plan.changes[i].id;
                            match version {
                                Some(v) => versions.insert(id.clone(), v),
                                None => versions.remove(id),
                            };
                            Outcome::Done
                        }
                        Err(f) => Outcome::Failed(f),
                    };
                    finished.push((i, outcome));
                }
            }
            None if finished.is_empty() => break,
            None => {}
        }
    }

    // Anything never started is waiting on a dependency cycle.
    for (i, s) in state.iter_mut().enumerate() {
        if *s == State::Waiting {
            let o = Outcome::Skipped(format!(
                "{} waits on a dependency cycle in the plan; make the plan again",
                describe(&plan.changes[i])
            ));
            shown.finished(&plan.changes[i], &o);
            *s = State::Done(o);
        }
    }
    shown.finish();

    let outcomes = state.into_iter().enumerate().map(|(i, s)| match s {
        State::Done(o) => (i, o),
        _ => (i, Outcome::Skipped("not run".into())),
    });
    ApplyReport::new(plan, outcomes, started.elapsed())
}

/// Marks every change depending (transitively) on `failed` as skipped.
fn skip_dependents(
    plan: &Plan,
    failed: usize,
    dependents: &[Vec<usize>],
    state: &mut [State],
    shown: &report::Shown,
) {
    let mut stack: Vec<(usize, usize)> = dependents[failed].iter().map(|&d| (d, failed)).collect();
    while let Some((d, parent)) = stack.pop() {
        if state[d] != State::Waiting {
            continue;
        }
        let o = Outcome::Skipped(format!(
            "depends on {}, which did not succeed",
            describe(&plan.changes[parent])
        ));
        shown.finished(&plan.changes[d], &o);
        state[d] = State::Done(o);
        stack.extend(dependents[d].iter().map(|&x| (x, d)));
    }
}

#[cfg(test)]
mod memory_tests;
#[cfg(test)]
pub(crate) mod tests;
