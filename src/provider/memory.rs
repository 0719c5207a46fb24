//! An in-memory [`Provider`] for unit tests of the executor: objects keyed by kind and
//! key with a version, every write recorded in order, and failures scripted per key.
//! Nothing here speaks HTTP, so a test states what the live system holds and reads what
//! the executor sent, without a scripted server. The apply lease is one slot: a take
//! succeeds when it is free, renew and release need its id, and every write records the
//! lease it carried.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use serde_json::{Value, json};

use std::time::Duration;

use super::{
    BatchOp, CheckOp, CheckResult, Lease, LeaseHolder, Problem, Provider, ProviderError, Take,
};
use crate::model::{Kind, Observed};

/// One write the executor sent: `create`/`update`/`delete`, the object, the `If-Match`
/// version (none for a create), and whether it came inside a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    pub op: &'static str,
    pub kind: Kind,
    pub key: String,
    pub if_match: Option<i64>,
    pub batched: bool,
    /// The lease id the write carried (`hold_lease`).
    pub lease: Option<String>,
}

#[derive(Debug, Default)]
pub struct MemoryProvider {
    /// (kind, key) → version.
    objects: Mutex<BTreeMap<(Kind, String), i64>>,
    /// Keys whose writes are answered with a 422.
    failing: BTreeSet<String>,
    writes: Mutex<Vec<Write>>,
    /// The apply lease, when someone holds it: (id, holder).
    lease: Mutex<Option<(String, String)>>,
    /// The lease id writes carry.
    held: Mutex<Option<String>>,
    /// Lease calls in order: `take`, `renew`, `release`.
    lease_calls: Mutex<Vec<&'static str>>,
}

impl MemoryProvider {
    pub fn new() -> MemoryProvider {
        MemoryProvider::default()
    }

    /// An object the live system holds at `version`.
    pub fn holding(self, kind: Kind, key: &str, version: i64) -> MemoryProvider {
        self.objects
            .lock()
            .unwrap()
            .insert((kind, key.to_string()), version);
        self
    }

    /// Every write of `key` fails with a 422 `validation` problem.
    pub fn failing(mut self, key: &str) -> MemoryProvider {
        self.failing.insert(key.to_string());
        self
    }

    /// The apply lease is held by `holder` (another client).
    pub fn leased_to(self, holder: &str) -> MemoryProvider {
        *self.lease.lock().unwrap() = Some(("other".into(), holder.into()));
        self
    }

    /// The lease calls so far, in order.
    pub fn lease_calls(&self) -> Vec<&'static str> {
        self.lease_calls.lock().unwrap().clone()
    }

    /// The lease id writes carry now (`hold_lease`).
    pub fn held_lease(&self) -> Option<String> {
        self.held.lock().unwrap().clone()
    }

    /// Whether someone holds the lease now.
    pub fn lease_held(&self) -> bool {
        self.lease.lock().unwrap().is_some()
    }

    fn lease_view(id: &str, holder: &str) -> Lease {
        Lease {
            id: id.into(),
            holder: LeaseHolder {
                holder: holder.into(),
                purpose: String::new(),
                taken_by: "memory".into(),
                acquired_at: String::new(),
                expires_at: "never".into(),
            },
        }
    }

    /// The writes received so far, in the order they arrived.
    pub fn writes(&self) -> Vec<Write> {
        self.writes.lock().unwrap().clone()
    }

    fn problem(status: u16, code: &str, detail: String) -> ProviderError {
        ProviderError::Problem(Box::new(Problem {
            status,
            code: code.into(),
            title: code.into(),
            detail: Some(detail),
            pointer: None,
            errors: vec![],
            retry_after: None,
            lease: None,
            request_id: None,
        }))
    }

    /// Applies one write as the live API would: a create of a new key, an update or
    /// delete only at the current version (else 412), a scripted failure first.
    fn apply(&self, kind: Kind, op: &BatchOp, batched: bool) -> Result<Value, ProviderError> {
        let (name, key, if_match) = match op {
            BatchOp::Create { body, .. } => (
                "create",
                body.get(kind.key_field())
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                None,
            ),
            BatchOp::Update { key, if_match, .. } => ("update", key.clone(), Some(*if_match)),
            BatchOp::Delete { key, if_match, .. } => ("delete", key.clone(), Some(*if_match)),
        };
        self.writes.lock().unwrap().push(Write {
            op: name,
            kind,
            key: key.clone(),
            if_match,
            batched,
            lease: self.held.lock().unwrap().clone(),
        });
        if self.failing.contains(&key) {
            return Err(Self::problem(
                422,
                "validation",
                format!("{key} is refused"),
            ));
        }
        let mut objects = self.objects.lock().unwrap();
        let slot = (kind, key.clone());
        match (op, objects.get(&slot).copied()) {
            (BatchOp::Create { .. }, None) => {
                objects.insert(slot, 1);
                Ok(json!({ kind.key_field(): key, "version": 1 }))
            }
            (BatchOp::Create { .. }, Some(_)) => {
                Err(Self::problem(409, "conflict", format!("{key} exists")))
            }
            (_, None) => Err(Self::problem(404, "not-found", format!("no {key}"))),
            (_, Some(v)) if Some(v) != if_match => Err(Self::problem(
                412,
                "precondition-failed",
                format!("{key} is at version {v}"),
            )),
            (BatchOp::Delete { .. }, Some(_)) => {
                objects.remove(&slot);
                Ok(Value::Null)
            }
            (_, Some(v)) => {
                objects.insert(slot, v + 1);
                Ok(json!({ kind.key_field(): key, "version": v + 1 }))
            }
        }
    }
}

impl Provider for MemoryProvider {
    fn base_url(&self) -> &str {
        "memory:"
    }

    async fn read(&self) -> Result<Observed, ProviderError> {
        Ok(Observed::default())
    }

    async fn create(
        &self,
        kind: Kind,
        body: &Value,
        idempotency_key: &str,
    ) -> Result<Value, ProviderError> {
        let op = BatchOp::Create {
            body: body.clone(),
            idempotency_key: idempotency_key.to_string(),
        };
        self.apply(kind, &op, false)
    }

    async fn update(
        &self,
        kind: Kind,
        key: &str,
        if_match: i64,
        patch: &Value,
    ) -> Result<Value, ProviderError> {
        let op = BatchOp::Update {
            key: key.to_string(),
            if_match,
            body: patch.clone(),
        };
        self.apply(kind, &op, false)
    }

    async fn delete(
        &self,
        kind: Kind,
        key: &str,
        if_match: i64,
        purge_statistics: bool,
    ) -> Result<(), ProviderError> {
        let op = BatchOp::Delete {
            key: key.to_string(),
            if_match,
            purge_statistics,
        };
        self.apply(kind, &op, false).map(|_| ())
    }

    async fn batch(
        &self,
        kind: Kind,
        ops: &[BatchOp],
    ) -> Result<Vec<Result<Value, ProviderError>>, ProviderError> {
        Ok(ops.iter().map(|op| self.apply(kind, op, true)).collect())
    }

    /// The in-memory system has no dry run (its `read` lists no capability, so a plan
    /// never asks).
    async fn check(&self, _ops: &[CheckOp]) -> Result<Vec<CheckResult>, ProviderError> {
        Err(ProviderError::Setup(
            "the in-memory provider has no dry run (plan-check)".into(),
        ))
    }

    async fn take_lease(
        &self,
        holder: &str,
        _purpose: &str,
        _ttl: Duration,
    ) -> Result<Take, ProviderError> {
        self.lease_calls.lock().unwrap().push("take");
        let mut lease = self.lease.lock().unwrap();
        match lease.as_ref() {
            Some((_, other)) => Ok(Take::Held(Self::lease_view("", other).holder)),
            None => {
                *lease = Some(("mine".into(), holder.into()));
                Ok(Take::Taken(Self::lease_view("mine", holder)))
            }
        }
    }

    async fn renew_lease(&self, id: &str, _ttl: Duration) -> Result<Lease, ProviderError> {
        self.lease_calls.lock().unwrap().push("renew");
        match self.lease.lock().unwrap().as_ref() {
            Some((held, holder)) if held == id => Ok(Self::lease_view(id, holder)),
            _ => Err(Self::problem(404, "not-found", "no such lease".into())),
        }
    }

    async fn release_lease(&self, id: &str) -> Result<(), ProviderError> {
        self.lease_calls.lock().unwrap().push("release");
        let mut lease = self.lease.lock().unwrap();
        if lease.as_ref().is_some_and(|(held, _)| held == id) {
            *lease = None;
        }
        Ok(())
    }

    fn hold_lease(&self, id: Option<String>) {
        *self.held.lock().unwrap() = id;
    }
}
