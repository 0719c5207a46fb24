//! The terminal rendering, Terraform-like: one block per change, only the changed
//! fields, set fields as `+ added` / `- removed` element lines, long strings as a line
//! diff, then who gains or loses what in effect, unmanaged objects, warnings, out-of-scope objects and the summary line.
//!
//! Colour (ANSI, through `anstyle`) only when the caller asks for it: `ops` decides from
//! `--color` and the terminal.

use std::fmt::Write as _;

use anstyle::{AnsiColor, Style};
use serde_json::Value;

use super::{
    partial_line, password_words, pulled_in_lines, refusal_headline, refusal_objects, refused_line,
    seats_line, server_check_line, show, summary_line,
};
use crate::plan::{Action, Change, FieldChange, Plan};

/// Strings longer than this, or with a newline, are shown as a line diff.
const LONG: usize = 60;
/// Undeclared objects listed per kind before "… and N more".
const UNMANAGED_CAP: usize = 25;

struct Paint {
    on: bool,
}

impl Paint {
    fn paint(&self, style: Style, s: &str) -> String {
        if self.on {
            format!("{}{s}{}", style.render(), style.render_reset())
        } else {
            s.to_string()
        }
    }
    fn green(&self, s: &str) -> String {
        self.paint(Style::new().fg_color(Some(AnsiColor::Green.into())), s)
    }
    fn red(&self, s: &str) -> String {
        self.paint(Style::new().fg_color(Some(AnsiColor::Red.into())), s)
    }
    fn yellow(&self, s: &str) -> String {
        self.paint(Style::new().fg_color(Some(AnsiColor::Yellow.into())), s)
    }
    fn cyan(&self, s: &str) -> String {
        self.paint(Style::new().fg_color(Some(AnsiColor::Cyan.into())), s)
    }
    fn dim(&self, s: &str) -> String {
        self.paint(Style::new().dimmed(), s)
    }
    fn bold(&self, s: &str) -> String {
        self.paint(Style::new().bold(), s)
    }
}

fn symbol(a: Action) -> &'static str {
    match a {
        Action::Create | Action::Reactivate => "+",
        Action::Update => "~",
        Action::Rename => "»",
        Action::Move => "⇢",
        Action::Deactivate | Action::Delete => "-",
    }
}

/// The plan for a terminal. `color`: ANSI colours on or off.
pub fn text(plan: &Plan, color: bool) -> String {
    let p = Paint { on: color };
    let mut out = String::new();
    banner(&mut out, &p, plan);
    if let Some(part) = &plan.partial {
        let _ = writeln!(out, "{}", p.yellow(&partial_line(part)));
        let pulled = pulled_in_lines(part);
        if !pulled.is_empty() {
            let _ = writeln!(out, "  pulled in as dependencies:");
            for l in pulled {
                let _ = writeln!(out, "    {l}");
            }
        }
        out.push('\n');
    }
    if !plan.changes.is_empty() {
        let who = match &plan.principal {
            Some(crate::model::Principal::Administrator { login }) => {
                format!(" (as administrator {login})")
            }
            Some(crate::model::Principal::Manager { login }) => format!(" (as manager {login})"),
            None => String::new(),
        };
        let _ = writeln!(out, "roster will make these changes{who}:\n");
        // Representatives whose user name a later change of the plan writes.
        let named_later: std::collections::HashSet<&crate::model::ObjectId> = plan
            .changes
            .iter()
            .filter(|c| c.action == Action::Update)
            .filter(|c| c.patch.as_ref().is_some_and(|p| p.contains_key("username")))
            .map(|c| &c.id)
            .collect();
        for c in &plan.changes {
            if !crate::plan::folded_into_shares(c, &plan.group_shares) {
                change(&mut out, &p, c, named_later.contains(&c.id));
            }
        }
        for s in &plan.group_shares {
            let (sym, line) = match s.change {
                crate::plan::EffectChange::Loses => ("-", p.red(&s.line())),
                _ => ("+", p.green(&s.line())),
            };
            let _ = writeln!(out, "  {sym} {line}");
            let _ = writeln!(
                out,
                "      {}",
                p.dim(&format!("# {}", super::share_groups(s)))
            );
        }
        out.push('\n');
    }
    if !plan.effects.is_empty() {
        let _ = writeln!(out, "Who gains or loses what (in effect):");
        for e in &plan.effects {
            let line = super::effect_line(e, str::to_string);
            let line = match e.change {
                crate::plan::EffectChange::Loses => p.red(&line),
                crate::plan::EffectChange::Gains => p.green(&line),
                crate::plan::EffectChange::Changes => p.yellow(&line),
            };
            let _ = writeln!(out, "  - {line}");
        }
        out.push('\n');
    }
    if !plan.unmanaged.is_empty() {
        let _ = writeln!(
            out,
            "Not declared (left as they are unless the policy removes them):"
        );
        // Listed per kind up to a cap: an undeclared section can mean thousands.
        let mut shown: std::collections::BTreeMap<crate::model::Kind, usize> = Default::default();
        for u in &plan.unmanaged {
            let n = shown.entry(u.id.kind).or_default();
            *n += 1;
            if *n > UNMANAGED_CAP {
                continue;
            }
            let policy = match u.policy {
                crate::model::Unmanaged::Ignore => "ignore",
                crate::model::Unmanaged::Warn => "warn",
                crate::model::Unmanaged::Remove => "remove",
            };
            let _ = writeln!(
                out,
                "  {} {}",
                u.id,
                p.dim(&format!("(unmanaged: {policy})"))
            );
        }
        for (kind, n) in shown {
            if n > UNMANAGED_CAP {
                let _ = writeln!(
                    out,
                    "  … and {} more {} (the JSON plan lists them all)",
                    n - UNMANAGED_CAP,
                    kind.section()
                );
            }
        }
        out.push('\n');
    }
    if !plan.out_of_scope.is_empty() {
        let _ = writeln!(out, "Outside the token's scope (never touched):");
        for id in &plan.out_of_scope {
            let _ = writeln!(out, "  {id}");
        }
        out.push('\n');
    }
    if !plan.warnings.is_empty() {
        let _ = writeln!(out, "{}", p.yellow("Warnings:"));
        for w in &plan.warnings {
            let _ = writeln!(out, "  {} {w}", p.yellow("!"));
        }
        out.push('\n');
    }
    let _ = writeln!(out, "{}", p.bold(&summary_line(&plan.summary)));
    if let Some(seats) = &plan.seats {
        let _ = writeln!(out, "{}", seats_line(seats));
    }
    if let Some(line) = server_check_line(plan) {
        let _ = writeln!(out, "{line}");
    }
    if plan.is_refused() {
        let _ = writeln!(
            out,
            "{}",
            p.red(&format!(
                "Refused ({}): nothing will be applied.",
                plan.refusal_codes()
            ))
        );
    }
    out
}

/// The refusals, at the top: each rule code, the objects, the reason and how to proceed.
fn banner(out: &mut String, p: &Paint, plan: &Plan) {
    if !plan.is_refused() {
        return;
    }
    let _ = writeln!(out, "{}", p.bold(&p.red(&refused_line(&plan.refusals))));
    for r in &plan.refusals {
        let _ = writeln!(
            out,
            "  {} {}",
            p.red(&format!("✗ {}:", r.rule.as_str())),
            refusal_objects(r, |o| o)
        );
        let _ = writeln!(out, "      {}", refusal_headline(r));
        let _ = writeln!(out, "      to proceed: {}", r.help);
    }
    out.push('\n');
}

fn change(out: &mut String, p: &Paint, c: &Change, named_later: bool) {
    let sym = symbol(c.action);
    let head = match (c.action, &c.previously) {
        (Action::Rename | Action::Move, Some(old)) => {
            format!(
                "{sym} {} {}/{old} → {}",
                c.action.verb(),
                c.id.kind,
                c.id.key
            )
        }
        _ => format!("{sym} {} {}", c.action.verb(), c.id),
    };
    let head = match c.action {
        Action::Create | Action::Reactivate => p.green(&head),
        Action::Update => p.yellow(&head),
        Action::Rename | Action::Move => p.cyan(&head),
        Action::Deactivate => p.red(&head),
        Action::Delete => p.bold(&p.red(&head)),
    };
    let _ = writeln!(out, "  {head}");
    let _ = writeln!(out, "      {}", p.dim(&format!("# {}", c.reason)));
    if c.action == Action::Create {
        if let Some(Value::Object(after)) = &c.after {
            for (k, v) in after {
                if v.is_null() {
                    continue;
                }
                let _ = writeln!(out, "      {k}: {}", show(Some(v)));
            }
            // Sent without one (and none written later), a representative gets the
            // console's proposal.
            if c.id.kind == crate::model::Kind::Representative
                && !named_later
                && after.get("username").is_none_or(Value::is_null)
            {
                let _ = writeln!(out, "      username: (proposed by the console)");
            }
        }
        if c.set_password.is_some() {
            let _ = writeln!(out, "      password: {}", password_words(c, None));
        }
        return;
    }
    for f in &c.fields {
        // The key field of a rename is in the header already.
        if c.previously.is_some() && f.field == c.id.kind.key_field() {
            continue;
        }
        field(out, p, c, f);
    }
}

fn field(out: &mut String, p: &Paint, c: &Change, f: &FieldChange) {
    if f.field == "password" {
        let _ = writeln!(
            out,
            "      {} password: {}",
            p.yellow("~"),
            password_words(c, Some(f))
        );
        return;
    }
    let before = f.before.as_ref();
    let after = f.after.as_ref();
    let long = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .is_some_and(|s| s.len() > LONG || s.contains('\n'))
    };
    if long(before) || long(after) {
        let b = before.and_then(Value::as_str).unwrap_or("");
        let a = after.and_then(Value::as_str).unwrap_or("");
        let _ = writeln!(out, "      {} {}:", p.yellow("~"), f.field);
        let diff = similar::TextDiff::from_lines(b, a);
        for ch in diff.iter_all_changes() {
            let line = ch.value().trim_end_matches('\n');
            let _ = match ch.tag() {
                similar::ChangeTag::Delete => {
                    writeln!(out, "          {}", p.red(&format!("- {line}")))
                }
                similar::ChangeTag::Insert => {
                    writeln!(out, "          {}", p.green(&format!("+ {line}")))
                }
                similar::ChangeTag::Equal => writeln!(out, "            {line}"),
            };
        }
        return;
    }
    let _ = writeln!(
        out,
        "      {} {}: {} → {}",
        p.yellow("~"),
        f.field,
        show(before),
        show(after)
    );
    for a in &f.added {
        let _ = writeln!(out, "          {}", p.green(&format!("+ {a}")));
    }
    for r in &f.removed {
        let _ = writeln!(out, "          {}", p.red(&format!("- {r}")));
    }
}
