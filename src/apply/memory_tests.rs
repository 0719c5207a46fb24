//! Executor tests against the in-memory provider: what was sent, in which order, with
//! which `If-Match`, and what a failure does to the rest, without any HTTP in between.

use std::sync::Arc;

use super::tests::plan;
use super::*;
use crate::provider::memory::{MemoryProvider, Write};

/// A change of the HTTP tests (`super::tests::change`), planned against `version`.
fn change(kind: Kind, key: &str, action: Action, version: Option<i64>, deps: &[usize]) -> Change {
    Change {
        version,
        ..super::tests::change(kind, key, action, deps)
    }
}

async fn run(p: &Plan, live: &MemoryProvider, parallelism: usize) -> ApplyReport {
    let opts = ApplyOptions {
        parallelism,
        ..ApplyOptions::new(Arc::new(|s: &SecretRef| {
            Err(format!("no secret for {:?}", s.env))
        }))
    };
    execute(p, live, &opts, Progress::Quiet).await
}

fn statuses(report: &ApplyReport) -> Vec<&'static str> {
    report.changes.iter().map(|c| c.status).collect()
}

fn keys(writes: &[Write]) -> Vec<&str> {
    writes.iter().map(|w| w.key.as_str()).collect()
}

#[tokio::test]
async fn a_change_is_sent_only_after_the_changes_it_depends_on() {
    // Listed dependents first, so that plan order alone would send them too early.
    let p = plan(vec![
        change(
            Kind::Representative,
            "r@x.example",
            Action::Create,
            None,
            &[2],
        ),
        change(Kind::Team, "A/B", Action::Create, None, &[2]),
        change(Kind::Team, "A", Action::Create, None, &[]),
    ]);
    let live = MemoryProvider::new();
    let report = run(&p, &live, 8).await;
    assert_eq!(statuses(&report), ["done", "done", "done"]);
    let writes = live.writes();
    assert_eq!(keys(&writes)[0], "A", "{writes:?}");
    assert_eq!(writes.len(), 3);
}

#[tokio::test]
async fn if_match_carries_the_planned_version_then_the_one_this_run_wrote() {
    let p = plan(vec![
        change(Kind::Team, "A", Action::Update, Some(3), &[]),
        change(Kind::Team, "A", Action::Update, Some(3), &[0]),
        change(Kind::Portal, "p", Action::Delete, Some(7), &[]),
    ]);
    let live = MemoryProvider::new()
        .holding(Kind::Team, "A", 3)
        .holding(Kind::Portal, "p", 7);
    let report = run(&p, &live, 1).await;
    assert_eq!(statuses(&report), ["done", "done", "done"]);
    let sent: Vec<(&str, &str, Option<i64>)> = live
        .writes()
        .iter()
        .map(|w| (w.op, if w.key == "A" { "A" } else { "p" }, w.if_match))
        .collect();
    assert_eq!(
        sent,
        [
            ("update", "A", Some(3)),
            ("delete", "p", Some(7)),
            ("update", "A", Some(4)),
        ]
    );
}

#[tokio::test]
async fn a_failed_change_skips_its_dependents_and_not_the_independent_ones() {
    let p = plan(vec![
        change(Kind::Team, "Bad", Action::Create, None, &[]),
        change(
            Kind::Representative,
            "r@x.example",
            Action::Create,
            None,
            &[0],
        ),
        change(Kind::Campaign, "c", Action::Create, None, &[1]),
        change(Kind::Portal, "p", Action::Create, None, &[]),
    ]);
    let live = MemoryProvider::new().failing("Bad");
    let report = run(&p, &live, 8).await;
    assert_eq!(statuses(&report), ["failed", "skipped", "skipped", "done"]);
    assert_eq!(report.changes[0].http_status, Some(422));
    let mut streamed = Vec::new();
    report.write_json(&mut streamed).unwrap();
    assert_eq!(String::from_utf8(streamed).unwrap(), report.json());
    let doc: serde_json::Value = serde_json::from_str(&report.json()).unwrap();
    assert_eq!(doc["summary"]["failed"], 1);
    assert_eq!(doc["changes"][1]["status"], "skipped");
    let mut sent = keys(&live.writes())
        .into_iter()
        .map(str::to_string)
        .collect::<Vec<_>>();
    sent.sort();
    assert_eq!(sent, ["Bad", "p"], "dependents of a failure are never sent");
    assert!(!report.is_success());
}

#[tokio::test]
async fn many_ready_changes_of_one_kind_go_as_batches_and_each_gets_its_result() {
    let mut changes: Vec<Change> = (0..40)
        .map(|i| change(Kind::Team, &format!("T{i:02}"), Action::Create, None, &[]))
        .collect();
    changes.push(change(Kind::Team, "T05", Action::Create, None, &[]));
    let p = plan(changes);
    let live = MemoryProvider::new().holding(Kind::Team, "T05", 1);
    let report = run(&p, &live, 2).await;
    let writes = live.writes();
    assert!(
        writes.iter().filter(|w| w.batched).count() >= 32,
        "{writes:?}"
    );
    assert_eq!(report.summary.done, 39);
    assert_eq!(
        report.summary.failed, 2,
        "both creates of the existing T05 fail"
    );
    assert_eq!(writes.len(), 41);
}
