//! The Markdown rendering: a pull-request comment.
//!
//! Title, the summary line, a table of counts per action, a warning block for deletions
//! and removals, then one collapsible `<details>` section per kind that says in words who
//! gains or loses what; then warnings, unmanaged and out-of-scope objects. User data is
//! escaped (Markdown and HTML). The comment never exceeds [`MARKDOWN_LIMIT`] characters:
//! past the budget, details are cut and a note counts what was left out.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

use super::{
    counts, password_words, refusal_headline, refusal_objects, refused_line, show, summary_line,
};
use crate::model::Kind;
use crate::plan::{Action, Change, FieldChange, Plan};

/// The most characters a rendering may have (GitHub refuses comments over 65,536).
pub const MARKDOWN_LIMIT: usize = 65_000;

/// Lines listed in each of the warning, unmanaged and out-of-scope lists at most.
const LIST_CAP: usize = 30;
/// Longest single line (user data can be long).
const LINE_CAP: usize = 400;
/// Room kept for the truncation note and closing tags.
const NOTE_RESERVE: usize = 1_000;

/// Escapes Markdown and HTML in user data.
pub(crate) fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\n' => o.push_str("<br>"),
            '\r' => {}
            '\\' | '`' | '*' | '_' | '[' | ']' | '(' | ')' | '#' | '|' | '~' | '!' | '{' | '}' => {
                o.push('\\');
                o.push(ch);
            }
            c => o.push(c),
        }
    }
    o
}

/// A value as inline code when it is plain, else escaped text.
fn code(s: &str) -> String {
    if !s.is_empty()
        && s.len() <= 120
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.@/ :,+=".contains(c))
    {
        format!("`{s}`")
    } else {
        esc(s)
    }
}

fn cap(mut s: String) -> String {
    if s.len() > LINE_CAP {
        let mut end = LINE_CAP;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

fn list(items: &[String]) -> String {
    items.iter().map(|i| code(i)).collect::<Vec<_>>().join(", ")
}

/// One change in words.
fn words(c: &Change) -> String {
    let who = format!("**{}**", esc(&c.id.key));
    let mut parts: Vec<String> = vec![];
    let lead = match c.action {
        Action::Create => format!("{who} is created"),
        Action::Update => who.clone(),
        Action::Rename => format!(
            "**{}** is renamed to {who}",
            esc(c.previously.as_deref().unwrap_or("?"))
        ),
        Action::Move => match &c.previously {
            Some(old) => format!("**{}** moves to {who}", esc(old)),
            None => format!("{who} moves"),
        },
        Action::Deactivate => format!("{who} is deactivated"),
        Action::Reactivate => format!("{who} is reactivated"),
        Action::Delete => format!("{who} is **deleted**"),
    };
    if c.action == Action::Create {
        if let Some(Value::Object(a)) = &c.after {
            for k in ["team", "teams", "features", "team_rights", "portals"] {
                match a.get(k) {
                    Some(Value::String(s)) => parts.push(format!("in {k} {}", code(s))),
                    Some(Value::Array(v)) if !v.is_empty() => {
                        let items: Vec<String> = v.iter().map(|x| show(Some(x))).collect();
                        parts.push(format!("with {k} {}", list(&items)));
                    }
                    _ => {}
                }
            }
        }
        if c.set_password.is_some() {
            parts.push(format!("password {}", password_words(c, None)));
        }
    } else {
        for f in &c.fields {
            if c.previously.is_some() && f.field == c.id.kind.key_field() {
                continue;
            }
            if let Some(w) = field_words(c, f) {
                parts.push(w);
            }
        }
    }
    let mut s = lead;
    if !parts.is_empty() {
        s.push_str(if c.action == Action::Update {
            " "
        } else {
            ": "
        });
        s.push_str(&parts.join("; "));
    }
    if c.action.is_removal() {
        let _ = write!(s, " — {}", esc(&c.reason));
    }
    cap(s)
}

fn field_words(c: &Change, f: &FieldChange) -> Option<String> {
    if f.field == "password" {
        return Some(format!("password {}", password_words(c, Some(f))));
    }
    if (c.action == Action::Deactivate || c.action == Action::Reactivate)
        && (f.field == "status" || f.field == "active")
    {
        return None;
    }
    if !f.added.is_empty() || !f.removed.is_empty() {
        let what = if f.field == "features" {
            String::new()
        } else {
            format!("{} ", esc(&f.field))
        };
        let mut w = vec![];
        if !f.added.is_empty() {
            w.push(format!("gains {what}{}", list(&f.added)));
        }
        if !f.removed.is_empty() {
            w.push(format!("loses {what}{}", list(&f.removed)));
        }
        return Some(w.join(", "));
    }
    let long = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .is_some_and(|s| s.len() > 60 || s.contains('\n'))
    };
    if long(f.before.as_ref()) || long(f.after.as_ref()) {
        return Some(format!("{} changes (see the text plan)", esc(&f.field)));
    }
    Some(format!(
        "{} {} → {}",
        esc(&f.field),
        code(&show(f.before.as_ref())),
        code(&show(f.after.as_ref()))
    ))
}

/// The refusals, each with its rule code, the objects and how to proceed.
fn banner(out: &mut String, plan: &Plan) {
    if !plan.is_refused() {
        return;
    }
    let _ = writeln!(
        out,
        "> [!CAUTION]\n> **{}**",
        esc(&refused_line(&plan.refusals))
    );
    for r in &plan.refusals {
        let _ = writeln!(
            out,
            "> - `{}` — {}: {}<br>**To proceed:** {}",
            r.rule.as_str(),
            refusal_objects(r, |o| code(&o)),
            cap(esc(refusal_headline(r))),
            cap(esc(&r.help))
        );
    }
    out.push('\n');
}

fn header(plan: &Plan) -> String {
    let mut out = String::from("## roster plan\n\n");
    banner(&mut out, plan);
    let _ = writeln!(out, "**{}**\n", summary_line(&plan.summary));
    if plan.changes.is_empty() {
        return out;
    }
    out.push_str("| action | count |\n|---|---:|\n");
    for (a, n) in counts(&plan.summary) {
        if n > 0 {
            let _ = writeln!(out, "| {} | {n} |", a.verb());
        }
    }
    let _ = writeln!(
        out,
        "| objects and relationships removed | {} |\n",
        plan.summary.removals
    );
    let deletes: Vec<&Change> = plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Delete)
        .collect();
    let deactivations = plan.summary.deactivate;
    let relationship_removals = plan
        .summary
        .removals
        .saturating_sub(plan.summary.deactivate + plan.summary.delete);
    if !deletes.is_empty() || deactivations > 0 || relationship_removals > 0 {
        out.push_str("> [!WARNING]\n");
        if !deletes.is_empty() {
            let reps = deletes
                .iter()
                .filter(|c| c.id.kind == Kind::Representative)
                .count();
            let _ = writeln!(
                out,
                "> **{} object(s) will be deleted.** Deletion cannot be undone{}.",
                deletes.len(),
                if reps > 0 {
                    format!(
                        "; deleting a representative loses its statistics irreversibly \
                         ({reps} representative(s))"
                    )
                } else {
                    String::new()
                }
            );
            for c in deletes.iter().take(LIST_CAP) {
                let _ = writeln!(out, "> - {}", code(&c.id.to_string()));
            }
            if deletes.len() > LIST_CAP {
                let _ = writeln!(out, "> - … and {} more", deletes.len() - LIST_CAP);
            }
            out.push_str(">\n");
        }
        if deactivations > 0 || relationship_removals > 0 {
            let _ = writeln!(
                out,
                "> **Removals:** {deactivations} object(s) deactivated, \
                 {relationship_removals} relationship(s) taken away (team memberships, \
                 rights, features, portals, campaign members, shares)."
            );
        }
        out.push('\n');
    }
    out
}

fn tail(plan: &Plan) -> String {
    let mut out = String::new();
    let mut section = |title: &str, lines: Vec<String>| {
        if lines.is_empty() {
            return;
        }
        let _ = writeln!(out, "### {title}\n");
        for l in lines.iter().take(LIST_CAP) {
            let _ = writeln!(out, "- {}", cap(l.clone()));
        }
        if lines.len() > LIST_CAP {
            let _ = writeln!(out, "- … and {} more", lines.len() - LIST_CAP);
        }
        out.push('\n');
    };
    section(
        "Warnings",
        plan.warnings
            .iter()
            .map(|w| format!("⚠️ {}", esc(w)))
            .collect(),
    );
    section(
        "Not declared (unmanaged)",
        plan.unmanaged
            .iter()
            .map(|u| {
                let p = match u.policy {
                    crate::model::Unmanaged::Ignore => "ignore",
                    crate::model::Unmanaged::Warn => "warn",
                    crate::model::Unmanaged::Remove => "remove",
                };
                format!("{} (unmanaged: {p})", code(&u.id.to_string()))
            })
            .collect(),
    );
    section(
        "Outside the token's scope (never touched)",
        plan.out_of_scope
            .iter()
            .map(|id| code(&id.to_string()))
            .collect(),
    );
    out
}

/// The plan as a pull-request comment, at most [`MARKDOWN_LIMIT`] characters.
pub fn markdown(plan: &Plan) -> String {
    let head = header(plan);
    let tail = tail(plan);
    let budget = MARKDOWN_LIMIT.saturating_sub(head.len() + tail.len() + NOTE_RESERVE);

    let mut by_kind: BTreeMap<Kind, Vec<&Change>> = BTreeMap::new();
    for c in &plan.changes {
        by_kind.entry(c.id.kind).or_default().push(c);
    }
    let mut body = String::new();
    let mut omitted: BTreeMap<Kind, usize> = BTreeMap::new();
    let mut full = false;
    for (kind, changes) in &by_kind {
        let open = format!(
            "<details><summary><b>{}</b> — {} change(s)</summary>\n\n",
            kind.section(),
            changes.len()
        );
        let close = "\n</details>\n\n";
        if full || body.len() + open.len() + close.len() > budget {
            full = true;
            *omitted.entry(*kind).or_default() += changes.len();
            continue;
        }
        body.push_str(&open);
        for (i, c) in changes.iter().enumerate() {
            let line = format!("- {}\n", words(c));
            if body.len() + line.len() + close.len() > budget {
                full = true;
                *omitted.entry(*kind).or_default() += changes.len() - i;
                break;
            }
            body.push_str(&line);
        }
        body.push_str(close);
    }
    let mut out = head;
    out.push_str(&body);
    if !omitted.is_empty() {
        let total: usize = omitted.values().sum();
        let per: Vec<String> = omitted
            .iter()
            .map(|(k, n)| format!("{n} {}", k.section()))
            .collect();
        let _ = writeln!(
            out,
            "> [!NOTE]\n> This comment is shortened to stay under {MARKDOWN_LIMIT} characters: \
             the details of {total} change(s) are omitted ({}). The counts above are complete; \
             run `roster plan` for every change.\n",
            per.join(", ")
        );
    }
    out.push_str(&tail);
    if out.len() > MARKDOWN_LIMIT {
        // Only reachable with pathological warnings; cut cleanly and say so.
        let mut end = MARKDOWN_LIMIT - 100;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
        out.push_str("\n\n… (truncated to stay under the comment size limit)\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_data_is_escaped() {
        assert_eq!(esc("<b>x</b> *y*"), "&lt;b&gt;x&lt;/b&gt; \\*y\\*");
        assert_eq!(code("jdoe@acme.example"), "`jdoe@acme.example`");
        assert_eq!(code("a`b"), "a\\`b");
    }
}
