//! Renderings of a [`Plan`](super::Plan): text for terminals, JSON (the stable saved
//! document), Markdown for pull-request comments.
//!
//! Pure functions from a plan to a `String`; `ops::plan` prints or writes them. No
//! rendering ever shows a secret value: a plan holds only secret references, and
//! passwords are shown as their source (`set from env X`) or their rotation marker.

mod json;
mod markdown;
mod text;

pub use json::{json, schema};
pub use markdown::{MARKDOWN_LIMIT, MarkdownOptions, markdown, markdown_with, marker};
pub use text::text;

use serde_json::Value;

use super::target::Partial;
use super::{Action, Change, FieldChange, Refusal, SeatUsage, Summary};

/// People an effect line names before "and N more" (the JSON plan lists every one).
pub(crate) const EFFECT_NAMES: usize = 5;

/// One line of "Who gains or loses what", without the list marker: `412
/// representatives lose feature file_transfer_send (via portal/web-support): anna@…,
/// bob@…, … and 402 more`; `show` renders each login.
pub(crate) fn effect_line(e: &super::Effect, show: impl Fn(&str) -> String) -> String {
    let n = e.people.len();
    let who = match (e.kind, n == 1) {
        (crate::model::Kind::Manager, true) => "manager",
        (crate::model::Kind::Manager, false) => "managers",
        (_, true) => "representative",
        (_, false) => "representatives",
    };
    let mut why: Vec<String> = vec![];
    if e.own {
        why.push(
            if n == 1 {
                "its own change"
            } else {
                "their own change"
            }
            .into(),
        );
    }
    if !e.because.is_empty() {
        let ids: Vec<String> = e.because.iter().map(|o| o.to_string()).collect();
        why.push(format!("via {}", ids.join(", ")));
    }
    let why = if why.is_empty() {
        String::new()
    } else {
        format!(" ({})", why.join(", "))
    };
    let mut names: Vec<String> = e
        .people
        .iter()
        .take(EFFECT_NAMES)
        .map(|l| show(l))
        .collect();
    if n > EFFECT_NAMES {
        names.push(format!("… and {} more", n - EFFECT_NAMES));
    }
    format!(
        "{n} {who} {} {}{why}: {}",
        e.change.verb(n != 1),
        e.what,
        names.join(", ")
    )
}

/// The groups a [`GroupShare`](super::GroupShare) changes, the first
/// [`EFFECT_NAMES`] by name: `contact groups a, b, c, d, e … and 7 more`.
pub(crate) fn share_groups(s: &super::GroupShare) -> String {
    let n = s.groups.len();
    let mut names: Vec<String> = s.groups.iter().take(EFFECT_NAMES).cloned().collect();
    if n > EFFECT_NAMES {
        names.push(format!("… and {} more", n - EFFECT_NAMES));
    }
    format!(
        "contact group{} {}",
        crate::model::text::s(n),
        names.join(", ")
    )
}

/// Objects a refusal banner names before "and N more".
const BANNER_OBJECTS: usize = 10;

/// The first line of a banner: how many rules refuse the plan, and that nothing is
/// applied.
pub(crate) fn refused_line(refusals: &[Refusal]) -> String {
    let n = refusals.len();
    format!(
        "This plan is refused: {n} safety rule{} {} it; apply writes nothing until {} resolved.",
        crate::model::text::s(n),
        if n == 1 { "blocks" } else { "block" },
        if n == 1 { "it is" } else { "they are" }
    )
}

/// The objects a refusal concerns, the first [`BANNER_OBJECTS`] by name (each through
/// `show`), then how many more.
pub(crate) fn refusal_objects(r: &Refusal, show: impl Fn(String) -> String) -> String {
    let all: Vec<String> = r.all_objects().map(|o| o.to_string()).collect();
    let mut named: Vec<String> = all.iter().take(BANNER_OBJECTS).cloned().map(show).collect();
    if all.len() > BANNER_OBJECTS {
        named.push(format!("and {} more", all.len() - BANNER_OBJECTS));
    }
    named.join(", ")
}

/// The first line of a refusal's message (the threshold's lists the removals below it,
/// which the plan itself shows).
pub(crate) fn refusal_headline(r: &Refusal) -> &str {
    r.message.lines().next().unwrap_or("").trim_end_matches(':')
}

/// The line saying that the live system checked the plan's writes (`Plan::server_checked`),
/// and whether it would refuse any.
pub(crate) fn server_check_line(plan: &super::Plan) -> Option<String> {
    if !plan.server_checked {
        return None;
    }
    let refused = plan
        .refusals
        .iter()
        .filter(|r| r.rule == crate::model::rules::RuleCode::ServerCheck)
        .count();
    Some(if refused == 0 {
        "Server check: the live system ran these writes as a dry run and would refuse none."
            .to_string()
    } else {
        format!(
            "Server check: the live system ran these writes as a dry run and would refuse {refused} of them."
        )
    })
}

/// `partial plan: N changes left out by --target/--exclude (--target …, --exclude …)`.
pub(crate) fn partial_line(p: &Partial) -> String {
    let patterns: Vec<String> = p
        .targets
        .iter()
        .map(|t| format!("--target {t}"))
        .chain(p.excludes.iter().map(|x| format!("--exclude {x}")))
        .collect();
    format!(
        "partial plan: {} change{} left out by --target/--exclude ({})",
        p.left_out,
        crate::model::text::s(p.left_out),
        patterns.join(", ")
    )
}

/// `team/Europe (create), needed by representative/a@x`: one line per change pulled in.
pub(crate) fn pulled_in_lines(p: &Partial) -> Vec<String> {
    p.pulled_in
        .iter()
        .map(|d| format!("{} ({}), needed by {}", d.id, d.action.verb(), d.needed_by))
        .collect()
}

/// (action, count) in summary order, zero counts included.
pub(crate) fn counts(s: &Summary) -> [(Action, usize); 7] {
    [
        (Action::Create, s.create),
        (Action::Update, s.update),
        (Action::Rename, s.rename),
        (Action::Move, s.move_),
        (Action::Reactivate, s.reactivate),
        (Action::Deactivate, s.deactivate),
        (Action::Delete, s.delete),
    ]
}

/// `Plan: 3 to create, 2 to update, 1 to deactivate.` (non-zero parts only).
pub fn summary_line(s: &Summary) -> String {
    let parts: Vec<String> = counts(s)
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(a, n)| format!("{n} to {}", a.verb()))
        .collect();
    if parts.is_empty() {
        "No changes. The live system matches the declaration.".into()
    } else {
        format!("Plan: {}.", parts.join(", "))
    }
}

/// `Seats: 4,764 → 4,801 operators of 5,000 licensed seats.` (rule 5, seed 003), or
/// `Seats: 12 operators of 50 licensed seats (unchanged).`
pub fn seats_line(s: &SeatUsage) -> String {
    let of = format!("operators of {} licensed seats", thousands(s.seats));
    if s.operators_before == s.operators_after {
        format!("Seats: {} {of} (unchanged).", thousands(s.operators_after))
    } else {
        format!(
            "Seats: {} → {} {of}.",
            thousands(s.operators_before),
            thousands(s.operators_after)
        )
    }
}

/// `4764` → `4,764`.
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A JSON value in one line, strings without quotes when plain.
pub(crate) fn show(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "(none)".into(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(a)) => format!(
            "[{}]",
            a.iter()
                .map(|x| show(Some(x)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Some(Value::Object(m)) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, x)| format!("{k}: {}", show(Some(x))))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Some(other) => other.to_string(),
    }
}

/// How a password change reads, from the reference only (never a value).
pub(crate) fn password_words(c: &Change, fc: Option<&FieldChange>) -> String {
    let Some(p) = &c.set_password else {
        return "(unchanged)".into();
    };
    let before = fc
        .and_then(|f| f.before.as_ref())
        .and_then(|b| b.get("rotation"))
        .and_then(Value::as_str);
    let source = match (&p.env, &p.file) {
        (Some(e), _) => format!("env {e}"),
        (None, Some(f)) => format!("file {f}"),
        (None, None) => "its reference".into(),
    };
    match (c.action, before, p.rotation.as_deref()) {
        (Action::Create, _, _) => format!("(set from {source})"),
        (_, Some(b), Some(a)) => format!("(rotated: {b} → {a})"),
        (_, None, Some(a)) => format!("(rotated: none → {a})"),
        _ => format!("(set from {source})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seat_usage_reads_with_grouped_digits() {
        let s = SeatUsage {
            operators_before: 4764,
            operators_after: 4801,
            seats: 5000,
        };
        assert_eq!(
            seats_line(&s),
            "Seats: 4,764 → 4,801 operators of 5,000 licensed seats."
        );
        let s = SeatUsage {
            operators_before: 12,
            operators_after: 12,
            seats: 1_000_000,
        };
        assert_eq!(
            seats_line(&s),
            "Seats: 12 operators of 1,000,000 licensed seats (unchanged)."
        );
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(100_000), "100,000");
    }

    #[test]
    fn summary_line_is_terraform_like() {
        let s = Summary {
            create: 3,
            update: 2,
            deactivate: 1,
            ..Default::default()
        };
        assert_eq!(
            summary_line(&s),
            "Plan: 3 to create, 2 to update, 1 to deactivate."
        );
        assert_eq!(
            summary_line(&Summary::default()),
            "No changes. The live system matches the declaration."
        );
    }
}
