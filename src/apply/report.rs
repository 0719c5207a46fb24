//! The apply report (one outcome per change, text or JSON) and live progress (a bar on a
//! terminal, one line per change otherwise). Neither ever holds a secret: outcomes carry
//! server problems and resolver errors, which name references, not values.
//!
//! At 100,000 changes the report is written as it is serialized ([`ApplyReport::write_json`]),
//! never first built as one string of the whole document; the text report lists only
//! failures and skips past 50 changes, the progress lines having shown each one.

use std::time::Duration;

use anstyle::{AnsiColor, Style};
use serde::Serialize;

use super::{Failure, Progress, describe};
use crate::model::ObjectId;
use crate::plan::{Action, Change, Plan};

/// What happened to one change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Failed(Failure),
    /// Not attempted, with the reason (a dependency failed).
    Skipped(String),
}

/// One change's line of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangeResult {
    /// Index of the change in the plan.
    pub index: usize,
    pub id: ObjectId,
    pub action: Action,
    /// `done`, `failed` or `skipped`.
    pub status: &'static str,
    /// Why it failed or was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The server's problem code, when it sent one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The HTTP status, when the server answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// `create representative/jdoe@acme.example`.
    pub description: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReportSummary {
    pub done: usize,
    pub failed: usize,
    pub skipped: usize,
}

/// The outcome of every change of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApplyReport {
    pub changes: Vec<ChangeResult>,
    pub summary: ReportSummary,
    pub elapsed_ms: u128,
}

impl ApplyReport {
    /// `outcomes`: (change index, outcome), in plan order.
    pub(super) fn new(
        plan: &Plan,
        outcomes: impl IntoIterator<Item = (usize, Outcome)>,
        elapsed: Duration,
    ) -> ApplyReport {
        let mut summary = ReportSummary::default();
        let changes = outcomes
            .into_iter()
            .map(|(i, o)| {
                let c = &plan.changes[i];
                let (status, error, code, http_status) = match o {
                    Outcome::Done => {
                        summary.done += 1;
                        ("done", None, None, None)
                    }
                    Outcome::Failed(f) => {
                        summary.failed += 1;
                        ("failed", Some(f.message), f.code, f.status)
                    }
                    Outcome::Skipped(r) => {
                        summary.skipped += 1;
                        ("skipped", Some(r), None, None)
                    }
                };
                ChangeResult {
                    index: i,
                    id: c.id.clone(),
                    action: c.action,
                    status,
                    error,
                    code,
                    http_status,
                    description: describe(c),
                }
            })
            .collect();
        ApplyReport {
            changes,
            summary,
            elapsed_ms: elapsed.as_millis(),
        }
    }

    /// Whether every change was done.
    pub fn is_success(&self) -> bool {
        self.summary.failed == 0 && self.summary.skipped == 0
    }

    pub fn json(&self) -> String {
        let mut out = Vec::new();
        self.write_json(&mut out).expect("a report serializes");
        String::from_utf8(out).expect("json is utf-8")
    }

    /// The JSON report ([`ApplyReport::json`]), written as it is serialized.
    pub fn write_json(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        serde_json::to_writer_pretty(&mut *out, self)?;
        out.write_all(b"\n")
    }

    /// Failures and skips one per line (done changes too when there are few), then a
    /// summary line.
    pub fn text(&self, color: bool) -> String {
        let paint = |style: Style, s: &str| {
            if color {
                format!("{}{s}{}", style.render(), style.render_reset())
            } else {
                s.to_string()
            }
        };
        let green = Style::new().fg_color(Some(AnsiColor::Green.into()));
        let red = Style::new().fg_color(Some(AnsiColor::Red.into())).bold();
        let yellow = Style::new().fg_color(Some(AnsiColor::Yellow.into()));
        let list_done = self.changes.len() <= 50;
        let mut out = String::new();
        for c in &self.changes {
            match c.status {
                "done" if list_done => {
                    out.push_str(&format!("{} {}\n", paint(green, "done   "), c.description))
                }
                "failed" => out.push_str(&format!(
                    "{} {}: {}\n",
                    paint(red, "failed "),
                    c.description,
                    c.error.as_deref().unwrap_or("")
                )),
                "skipped" => out.push_str(&format!(
                    "{} {}: {}\n",
                    paint(yellow, "skipped"),
                    c.description,
                    c.error.as_deref().unwrap_or("")
                )),
                _ => {}
            }
        }
        let s = &self.summary;
        // Under a second in milliseconds (`0.0s` reads as if nothing happened).
        let secs = if self.elapsed_ms < 1000 {
            format!("{} ms", self.elapsed_ms)
        } else {
            format!("{:.1}s", self.elapsed_ms as f64 / 1000.0)
        };
        if self.changes.is_empty() {
            out.push_str("apply: nothing to do.\n");
        } else if self.is_success() {
            out.push_str(&format!(
                "{} {} change{} done in {secs}.\n",
                paint(green, "apply complete:"),
                s.done,
                crate::model::text::s(s.done)
            ));
        } else {
            out.push_str(&format!(
                "{} {} done, {} failed, {} skipped (of {}) in {secs}; fix the failures and run `roster apply` again: what was done is not redone.\n",
                paint(red, "apply incomplete:"),
                s.done,
                s.failed,
                s.skipped,
                self.changes.len()
            ));
        }
        out
    }
}

/// The progress bar on screen, if any: log lines are written around it
/// ([`while_bar_hidden`]), never over it.
static ACTIVE_BAR: std::sync::Mutex<Option<indicatif::ProgressBar>> = std::sync::Mutex::new(None);

/// Runs `f` (which writes to the terminal) with the progress bar, if one is shown,
/// cleared first and drawn again after, so that the output never mixes with the bar.
pub fn while_bar_hidden<R>(f: impl FnOnce() -> R) -> R {
    let bar = ACTIVE_BAR.lock().ok().and_then(|g| g.clone());
    match bar {
        Some(b) => b.suspend(f),
        None => f(),
    }
}

fn set_active_bar(bar: Option<indicatif::ProgressBar>) {
    if let Ok(mut g) = ACTIVE_BAR.lock() {
        *g = bar;
    }
}

impl Drop for Shown {
    fn drop(&mut self) {
        if self.bar.is_some() {
            set_active_bar(None);
        }
    }
}

/// Live progress while applying.
pub(super) struct Shown {
    mode: Progress,
    total: usize,
    bar: Option<indicatif::ProgressBar>,
    count: std::sync::atomic::AtomicUsize,
}

impl Shown {
    pub(super) fn new(mode: Progress, total: usize) -> Shown {
        let bar = (mode == Progress::Bar && total > 0).then(|| {
            let b = indicatif::ProgressBar::new(total as u64);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} applying [{bar:30}] {pos}/{len} {wide_msg}",
                )
                .expect("a valid template")
                .progress_chars("=> "),
            );
            set_active_bar(Some(b.clone()));
            b
        });
        Shown {
            mode,
            total,
            bar,
            count: Default::default(),
        }
    }

    pub(super) fn finished(&self, change: &Change, outcome: &Outcome) {
        let n = self
            .count
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        let line = match outcome {
            Outcome::Done => format!("done {}", describe(change)),
            Outcome::Failed(f) => format!("failed {}: {}", describe(change), f.message),
            Outcome::Skipped(r) => format!("skipped {}: {r}", describe(change)),
        };
        match (&self.bar, self.mode) {
            (Some(bar), _) => {
                if !matches!(outcome, Outcome::Done) {
                    bar.println(&line);
                }
                bar.set_message(describe(change));
                bar.inc(1);
            }
            (None, Progress::Lines) => eprintln!("[{n}/{}] {line}", self.total),
            _ => {}
        }
    }

    pub(super) fn finish(&self) {
        if let Some(b) = &self.bar {
            set_active_bar(None);
            b.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod bar_tests {
    use super::*;

    #[test]
    fn log_lines_are_written_around_the_bar_while_it_is_shown() {
        assert!(ACTIVE_BAR.lock().unwrap().is_none());
        let shown = Shown::new(Progress::Bar, 2);
        assert!(
            ACTIVE_BAR.lock().unwrap().is_some(),
            "the bar is registered for the log writer"
        );
        assert_eq!(while_bar_hidden(|| 7), 7, "the write runs, suspended");
        shown.finish();
        assert!(ACTIVE_BAR.lock().unwrap().is_none(), "and forgotten after");
        let again = Shown::new(Progress::Bar, 1);
        drop(again);
        assert!(
            ACTIVE_BAR.lock().unwrap().is_none(),
            "also when dropped early"
        );
    }
}
