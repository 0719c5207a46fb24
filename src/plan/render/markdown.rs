//! The Markdown rendering: a pull-request comment.
//!
//! Title, the summary line, a table of counts per action, a warning block for deletions
//! and removals, then one collapsible `<details>` section per kind that says in words who
//! gains or loses what; then warnings, unmanaged and out-of-scope objects. User data is
//! escaped (Markdown and HTML). The first line is a hidden marker naming the
//! declaration's root ([`marker`]). The comment never exceeds its limit
//! ([`MarkdownOptions`], [`MARKDOWN_LIMIT`] by default): past it, the header, the refusal
//! banner, the summary, every removal and every blocked change stay, other changes are
//! left out and a note counts them and names the JSON plan for the rest.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

use super::{
    counts, partial_line, password_words, pulled_in_lines, refusal_headline, refusal_objects,
    refused_line, seats_line, server_check_line, show, summary_line,
};
use crate::model::Kind;
use crate::plan::{Action, Change, FieldChange, Plan};

/// The most characters a rendering may have by default (GitHub refuses comments over
/// 65,536), `plan --markdown-limit`.
pub const MARKDOWN_LIMIT: usize = 65_536;

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
    if let Some(part) = &plan.partial {
        let _ = writeln!(out, "> [!NOTE]\n> **{}**", esc(&partial_line(part)));
        for l in pulled_in_lines(part).iter().take(LIST_CAP) {
            let _ = writeln!(out, "> - pulled in as a dependency: {}", esc(l));
        }
        if part.pulled_in.len() > LIST_CAP {
            let _ = writeln!(out, "> - … and {} more", part.pulled_in.len() - LIST_CAP);
        }
        out.push('\n');
    }
    let _ = writeln!(out, "**{}**\n", summary_line(&plan.summary));
    if let Some(seats) = &plan.seats {
        let _ = writeln!(out, "{}\n", esc(&seats_line(seats)));
    }
    if let Some(line) = server_check_line(plan) {
        let _ = writeln!(out, "{}\n", esc(&line));
    }
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
        "Who gains or loses what (in effect)",
        plan.effects
            .iter()
            .map(|e| esc(&super::effect_line(e, str::to_string)))
            .collect(),
    );
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

/// How the Markdown plan is framed: the root its hidden marker names, and its size limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkdownOptions {
    /// The declaration's root (the paths given, relative to the repository root), named
    /// by the marker `<!-- roster-plan root="…" -->` so that a workflow finds and updates
    /// its own comment, and two roots of one repository keep one comment each.
    pub root: String,
    /// The most characters the rendering may have (bytes are counted, so it is never
    /// more): GitHub's comment limit by default.
    pub limit: usize,
}

impl Default for MarkdownOptions {
    fn default() -> Self {
        MarkdownOptions {
            root: ".".into(),
            limit: MARKDOWN_LIMIT,
        }
    }
}

/// The hidden first line naming the declaration's root (HTML-escaped: no `"` nor `-->`
/// of a path can end the comment early).
pub fn marker(root: &str) -> String {
    let mut r = String::with_capacity(root.len());
    for ch in root.chars() {
        match ch {
            '&' => r.push_str("&amp;"),
            '"' => r.push_str("&quot;"),
            '<' => r.push_str("&lt;"),
            '>' => r.push_str("&gt;"),
            c if c.is_control() => {}
            c => r.push(c),
        }
    }
    format!("<!-- roster-plan root=\"{r}\" -->\n")
}

/// Whether a change is listed whatever the size: it removes an object or takes
/// something away, or a refusal names its object.
fn must_show(plan: &Plan, c: &Change) -> bool {
    c.action.is_removal()
        || c.fields.iter().any(|f| !f.removed.is_empty())
        || plan
            .refusals
            .iter()
            .any(|r| r.all_objects().any(|o| *o == c.id))
}

/// The plan as a pull-request comment with the default options ([`markdown_with`]).
pub fn markdown(plan: &Plan) -> String {
    markdown_with(plan, &MarkdownOptions::default())
}

/// The plan as a pull-request comment of at most `opts.limit` characters: the marker,
/// the title, the refusal banner, the summary and counts always; then the changes, per
/// kind. Past the limit, every removal and every blocked change is still listed, other
/// changes are left out and a note counts them and says how to get the whole plan.
pub fn markdown_with(plan: &Plan, opts: &MarkdownOptions) -> String {
    let limit = opts.limit;
    let mut head = marker(&opts.root);
    head.push_str(&header(plan));
    let tail = tail(plan);

    let mut by_kind: BTreeMap<Kind, Vec<(String, bool)>> = BTreeMap::new();
    // Changes per kind: a share of many contact groups is one line for its changes.
    let mut changes: BTreeMap<Kind, usize> = BTreeMap::new();
    for c in &plan.changes {
        *changes.entry(c.id.kind).or_default() += 1;
        if crate::plan::folded_into_shares(c, &plan.group_shares) {
            continue;
        }
        by_kind
            .entry(c.id.kind)
            .or_default()
            .push((format!("- {}\n", words(c)), must_show(plan, c)));
    }
    // Always listed: one line per decision, however many groups.
    for s in &plan.group_shares {
        let line = format!(
            "- **{}** ({})\n",
            esc(&s.line()),
            esc(&super::share_groups(s))
        );
        by_kind
            .entry(Kind::ContactGroup)
            .or_default()
            .push((line, true));
    }
    let count = |kind: &Kind| changes.get(kind).copied().unwrap_or_default();
    let section_cost = |kind: &Kind, _: usize| {
        let n = count(kind);
        format!(
            "<details><summary><b>{}</b> — {n} change(s)</summary>\n\n",
            kind.section()
        )
        .len()
            + "\n</details>\n\n".len()
    };
    let everything: usize = by_kind
        .iter()
        .map(|(k, lines)| {
            section_cost(k, lines.len()) + lines.iter().map(|l| l.0.len()).sum::<usize>()
        })
        .sum();
    let fits = head.len() + everything + tail.len() <= limit;

    // What is listed: everything when it fits; else what must be, then others in plan
    // order while the budget lasts.
    let mut shown: BTreeMap<Kind, Vec<bool>> = by_kind
        .iter()
        .map(|(k, lines)| (*k, lines.iter().map(|l| fits || l.1).collect()))
        .collect();
    if !fits {
        let budget = limit.saturating_sub(head.len() + tail.len() + NOTE_RESERVE);
        let mut used: usize = by_kind
            .iter()
            .map(|(k, lines)| {
                section_cost(k, lines.len())
                    + lines
                        .iter()
                        .filter(|l| l.1)
                        .map(|l| l.0.len())
                        .sum::<usize>()
            })
            .sum();
        'fill: for (k, lines) in &by_kind {
            for (i, (line, must)) in lines.iter().enumerate() {
                if *must {
                    continue;
                }
                if used + line.len() > budget {
                    break 'fill;
                }
                used += line.len();
                shown.get_mut(k).expect("every kind")[i] = true;
            }
        }
    }

    let mut out = head;
    let mut omitted: BTreeMap<Kind, usize> = BTreeMap::new();
    for (kind, lines) in &by_kind {
        let flags = &shown[kind];
        let listed = flags.iter().filter(|f| **f).count();
        let left = lines.len() - listed;
        if left > 0 {
            omitted.insert(*kind, left);
        }
        if listed == 0 {
            continue;
        }
        let _ = write!(
            out,
            "<details><summary><b>{}</b> — {} change(s){}</summary>\n\n",
            kind.section(),
            count(kind),
            if left > 0 {
                format!(", {left} not listed")
            } else {
                String::new()
            }
        );
        for ((line, _), show) in lines.iter().zip(flags) {
            if *show {
                out.push_str(line);
            }
        }
        out.push_str("\n</details>\n\n");
    }
    if !omitted.is_empty() {
        let total: usize = omitted.values().sum();
        let per: Vec<String> = omitted
            .iter()
            .map(|(k, n)| format!("{n} {}", k.section()))
            .collect();
        let _ = writeln!(
            out,
            "> [!NOTE]\n> **{total} change(s) left out** ({}) to stay under {limit} characters. \
             Every removal and every blocked change is listed, and the counts above are \
             complete. For the whole plan, run `roster plan --format json --out plan.json` \
             (in CI: keep `plan.json` as an artifact).\n",
            per.join(", ")
        );
    }
    out.push_str(&tail);
    if out.len() > limit {
        // The removals alone outgrow the limit: cut cleanly and say so.
        let cut = "\n\n… (cut to stay under the comment size limit; run `roster plan --format \
                   json --out plan.json` for the whole plan)\n";
        let mut end = limit.saturating_sub(cut.len());
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
        out.push_str(cut);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ObjectId;
    use crate::model::rules::RuleCode;
    use crate::plan::{Refusal, Summary};

    fn change(key: &str, action: Action, removed: &[&str]) -> Change {
        Change {
            id: ObjectId::new(Kind::Representative, key),
            action,
            previously: None,
            version: Some(1),
            after: None,
            patch: None,
            fields: vec![FieldChange {
                field: "language".into(),
                before: Some("en".into()),
                after: Some("fr".into()),
                removed: removed.iter().map(|s| s.to_string()).collect(),
                added: vec![],
            }],
            set_password: None,
            depends_on: vec![],
            reason: "differs".into(),
        }
    }

    /// 500 updates, with a deactivation, an update that takes a feature away and a
    /// blocked update among the last of them.
    fn long_plan() -> Plan {
        let mut changes: Vec<Change> = (0..500)
            .map(|i| change(&format!("rep{i:03}@acme.example"), Action::Update, &[]))
            .collect();
        changes[480] = change("rep480@acme.example", Action::Deactivate, &[]);
        changes[490] = change("rep490@acme.example", Action::Update, &["reports"]);
        Plan {
            format_version: 1,
            principal: None,
            target: None,
            summary: Summary {
                update: 499,
                deactivate: 1,
                removals: 2,
                ..Default::default()
            },
            changes,
            unmanaged: vec![],
            out_of_scope: vec![],
            warnings: vec![],
            partial: None,
            refusals: vec![Refusal {
                rule: RuleCode::Escalation,
                id: ObjectId::new(Kind::Representative, "rep495@acme.example"),
                objects: vec![],
                pointer: "/language".into(),
                message: "outside the scope".into(),
                help: "use an administrator token".into(),
            }],
            seats: None,
            group_shares: vec![],
            effects: vec![],
            fingerprint: Default::default(),
            server_checked: false,
        }
    }

    #[test]
    fn a_long_plan_keeps_header_banner_removals_and_blocked_changes_and_counts_the_rest() {
        let p = long_plan();
        let opts = MarkdownOptions {
            root: "teams/europe".into(),
            limit: 4_000,
        };
        let md = markdown_with(&p, &opts);
        assert!(md.len() <= 4_000, "{} chars", md.len());
        assert!(md.starts_with("<!-- roster-plan root=\"teams/europe\" -->\n## roster plan"));
        assert!(
            md.contains("> [!CAUTION]") && md.contains("`escalation`"),
            "{md}"
        );
        assert!(
            md.contains("**Plan: 499 to update, 1 to deactivate.**"),
            "{md}"
        );
        assert!(
            md.contains("**rep480@acme.example** is deactivated"),
            "{md}"
        );
        assert!(md.contains("**rep490@acme.example** loses"), "{md}");
        assert!(md.contains("**rep495@acme.example**"), "{md}");
        assert!(
            md.contains("**rep000@acme.example**"),
            "the first ones fill the room"
        );
        let listed = md.matches("\n- **rep").count();
        let left = 500 - listed;
        assert!(left > 0 && listed > 3, "{listed} listed");
        assert!(
            md.contains(&format!(
                "**{left} change(s) left out** ({left} representatives)"
            )),
            "{md}"
        );
        assert!(
            md.contains("`roster plan --format json --out plan.json`"),
            "{md}"
        );
        assert!(
            md.contains(&format!("500 change(s), {left} not listed")),
            "{md}"
        );
    }

    #[test]
    fn a_plan_under_the_limit_lists_every_change_and_no_note() {
        let p = long_plan();
        let md = markdown_with(&p, &MarkdownOptions::default());
        assert_eq!(md.matches("\n- **rep").count(), 500);
        assert!(!md.contains("left out"));
        assert!(md.starts_with("<!-- roster-plan root=\".\" -->\n"));
    }

    #[test]
    fn removals_alone_over_the_limit_are_cut_cleanly() {
        let mut p = long_plan();
        for c in &mut p.changes {
            c.action = Action::Deactivate;
        }
        let md = markdown_with(
            &p,
            &MarkdownOptions {
                root: ".".into(),
                limit: 3_000,
            },
        );
        assert!(md.len() <= 3_000, "{}", md.len());
        assert!(md.ends_with("for the whole plan)\n"), "{md}");
    }

    #[test]
    fn the_marker_cannot_end_the_comment_early() {
        assert_eq!(
            marker("a\"b/-->c"),
            "<!-- roster-plan root=\"a&quot;b/--&gt;c\" -->\n"
        );
    }

    #[test]
    fn user_data_is_escaped() {
        assert_eq!(esc("<b>x</b> *y*"), "&lt;b&gt;x&lt;/b&gt; \\*y\\*");
        assert_eq!(code("jdoe@acme.example"), "`jdoe@acme.example`");
        assert_eq!(code("a`b"), "a\\`b");
    }
}
