//! `roster access`: effective permissions — what each person holds in effect, and who
//! holds each feature and team right — from the declaration (default) or from the live
//! system (`--live`, the connection of `ops::connect`, as `export`).
//!
//! The computation, the filters and the `--expect` grammar are `model::access`'s; here
//! the organization is obtained, the report rendered (text, Markdown, or JSON following
//! `schemas/access.schema.json`) on stdout, and the exit decided: 0, or
//! [`Exit::ExpectFailed`] when an `--expect` fails (each failure also one line on
//! stderr, naming who breaks it). An invalid declaration exits 3 and a live system that
//! cannot be read 5, as for `plan`.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;

use crate::model::access::expect::{Expectation, Outcome};
use crate::model::access::{Access, Filter, RepAccess, Report, Source};
use crate::model::{Feature, Org, TeamRight};
use crate::provider::Provider;

use super::Exit;
use super::term::s;

/// Output formats of the report: the plan's three.
pub use super::plan::Format;

/// `roster access`'s options.
#[derive(Debug, Clone)]
pub struct Options {
    /// Files or directories of the declaration (empty with `live`).
    pub paths: Vec<PathBuf>,
    /// Read the live system instead of the declaration.
    pub live: bool,
    pub endpoint: super::connect::Endpoint,
    pub filter: Filter,
    pub expect: Vec<Expectation>,
    pub format: Format,
}

/// How many logins a text or Markdown "who holds" line names before it counts the rest.
pub const NAMES_SHOWN: usize = 10;

pub fn run(args: Options) -> anyhow::Result<Exit> {
    let (org, source) = if args.live {
        match read_live(&args.endpoint)? {
            Ok(org) => (org, Source::Live),
            Err(e) => {
                super::report_error(&e);
                return Ok(Exit::Unreachable);
            }
        }
    } else {
        match crate::config::load(&args.paths) {
            Ok(loaded) => (loaded.desired.org, Source::Declaration),
            Err(e) => {
                super::term::show_diagnostics(&e.0);
                return Ok(Exit::Invalid);
            }
        }
    };
    let access = Access::of(&org);
    let expectations: Vec<Outcome> = args
        .expect
        .iter()
        .map(|e| e.judge(&access, &|t| org.teams.contains_key(t)))
        .collect();
    let filtered = !args.filter.is_empty();
    let report = Report {
        source,
        filtered,
        // Unfiltered, the report is the whole computation, moved rather than copied.
        access: if filtered {
            args.filter.apply(&access)
        } else {
            access
        },
        expectations,
    };
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let written = match args.format {
        // Streamed: a 100,000-person report is never held as one string.
        Format::Json => serde_json::to_writer_pretty(&mut out, &report)
            .map_err(std::io::Error::from)
            .and_then(|()| out.write_all(b"\n")),
        format => out.write_all(render(&report, format).as_bytes()),
    };
    written
        .and_then(|()| out.flush())
        .context("cannot write to stdout")?;
    drop(out);
    let mut failed = 0;
    for o in report.expectations.iter().filter(|o| !o.ok) {
        anstream::eprintln!("error: expectation failed: {}", one_line(o));
        failed += 1;
    }
    // The process ends right after: freeing every object one by one would only delay it.
    std::mem::forget(org);
    std::mem::forget(report);
    Ok(if failed == 0 {
        Exit::Success
    } else {
        Exit::ExpectFailed
    })
}

/// The live organization, or the read's error (exit 5); a connection that cannot be
/// set up at all (plain http, a token file) is the outer error.
fn read_live(endpoint: &super::connect::Endpoint) -> anyhow::Result<anyhow::Result<Org>> {
    let rt = super::term::runtime()?;
    rt.block_on(async {
        let conn = super::connect::connect(endpoint).await?;
        let read = conn.provider.read().await;
        conn.close().await;
        Ok(read
            .map(|o| o.org)
            .map_err(|e| anyhow::Error::new(e).context("cannot read the live system")))
    })
}

/// The report in `format`.
pub fn render(report: &Report, format: Format) -> String {
    match format {
        Format::Json => {
            let mut s = serde_json::to_string_pretty(report).expect("a report serializes");
            s.push('\n');
            s
        }
        Format::Text => text(report),
        Format::Markdown => markdown(report),
    }
}

fn list<T: std::fmt::Display>(xs: impl IntoIterator<Item = T>) -> String {
    let v: Vec<String> = xs.into_iter().map(|x| x.to_string()).collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

/// `n` logins: the first [`NAMES_SHOWN`], then how many more.
fn some_names(logins: &BTreeSet<String>) -> String {
    let mut s = list(logins.iter().take(NAMES_SHOWN));
    if logins.len() > NAMES_SHOWN {
        let _ = write!(s, " and {} more", logins.len() - NAMES_SHOWN);
    }
    s
}

fn source_line(report: &Report) -> String {
    let a = &report.access;
    let active = a.representatives.values().filter(|r| r.is_active()).count();
    let n = a.representatives.len();
    format!(
        "Access in effect, from {}{}: {n} representative{} ({active} active), {} manager{}, {} administrator{}",
        match report.source {
            Source::Declaration => "the declaration",
            Source::Live => "the live system",
        },
        if report.filtered { " (filtered)" } else { "" },
        s(n),
        a.managers.len(),
        s(a.managers.len()),
        a.administrators.len(),
        s(a.administrators.len()),
    )
}

/// One representative's lines (text) or cells (Markdown), by label; empty ones left out.
fn rep_details(r: &RepAccess) -> Vec<(&'static str, String)> {
    let mut d = vec![];
    if !r.is_active() {
        d.push(("inactive", "holds nothing in effect".to_string()));
    } else {
        d.push((
            "features",
            list(r.features.iter().map(|f| match f {
                Feature::Multisession => format!("multisession ({})", r.multisession),
                f => f.id().to_string(),
            })),
        ));
    }
    if !r.portals.is_empty() {
        d.push(("portals", list(&r.portals)));
    }
    if !r.campaigns.is_empty() {
        d.push((
            "campaigns",
            list(r.campaigns.iter().map(|(c, via)| {
                let mut how: Vec<String> = via.teams.iter().map(|t| format!("via {t}")).collect();
                if via.direct {
                    how.insert(0, "direct".into());
                }
                format!("{c} ({})", how.join(", "))
            })),
        ));
    }
    if !r.contact_groups.is_empty() {
        d.push((
            "contact groups",
            list(
                r.contact_groups
                    .iter()
                    .map(|(g, p)| format!("{g} ({})", permission(*p))),
            ),
        ));
    }
    let no_effect: Vec<String> = r
        .without_effect
        .iter()
        .filter(|_| r.is_active())
        .map(|(f, why)| format!("{f} ({})", why.describe()))
        .collect();
    if !no_effect.is_empty() {
        d.push(("no effect", no_effect.join(", ")));
    }
    d
}

fn permission(p: crate::model::Permission) -> &'static str {
    match p {
        crate::model::Permission::View => "view",
        crate::model::Permission::Connect => "connect",
        crate::model::Permission::Manage => "manage",
    }
}

fn one_line(o: &Outcome) -> String {
    let mut s = format!("`{}`", o.expect);
    if let Some(p) = &o.problem {
        let _ = write!(s, ": {p}");
    }
    if !o.breakers.is_empty() {
        let who: Vec<String> = o
            .breakers
            .iter()
            .map(|b| format!("{} ({})", b.login, b.place))
            .collect();
        let _ = write!(s, ": {}", who.join(", "));
    }
    s
}

fn text(report: &Report) -> String {
    let a = &report.access;
    let mut out = String::new();
    let _ = writeln!(out, "{}", source_line(report));
    if !a.administrators.is_empty() {
        let _ = writeln!(out, "\nAdministrators (every right, account-wide):");
        for l in &a.administrators {
            let _ = writeln!(out, "  {l}");
        }
    }
    if !a.representatives.is_empty() {
        let _ = writeln!(out, "\nRepresentatives:");
        for (login, r) in &a.representatives {
            let _ = writeln!(
                out,
                "  {login}  {}",
                r.team.as_deref().unwrap_or("(no team)")
            );
            for (k, v) in rep_details(r) {
                let _ = writeln!(out, "      {k}: {v}");
            }
        }
    }
    if !a.managers.is_empty() {
        let _ = writeln!(out, "\nManagers:");
        for (login, m) in &a.managers {
            let subs = m.covers.len().saturating_sub(m.teams.len());
            let _ = writeln!(
                out,
                "  {login}  manages {}{}",
                list(&m.teams),
                if subs > 0 {
                    format!(" and {subs} sub-team{}", s(subs))
                } else {
                    String::new()
                }
            );
            let _ = writeln!(out, "      team rights: {}", list(&m.team_rights));
            let _ = writeln!(out, "      may grant: {}", list(&m.may_grant));
            if !m.contact_groups.is_empty() {
                let _ = writeln!(
                    out,
                    "      contact groups: {}",
                    list(
                        m.contact_groups
                            .iter()
                            .map(|(g, p)| format!("{g} ({})", permission(*p)))
                    )
                );
            }
        }
    }
    holders_text(
        &mut out,
        "Who holds each feature (representatives):",
        &a.features,
        Feature::id,
    );
    holders_text(
        &mut out,
        "Who holds each team right (managers):",
        &a.team_rights,
        TeamRight::id,
    );
    if !report.expectations.is_empty() {
        let _ = writeln!(out, "\nExpectations:");
        for o in &report.expectations {
            let _ = writeln!(
                out,
                "  {} {}",
                if o.ok { "ok    " } else { "FAILED" },
                one_line(o)
            );
        }
    }
    out
}

fn holders_text<K: Copy + Ord>(
    out: &mut String,
    title: &str,
    holders: &std::collections::BTreeMap<K, BTreeSet<String>>,
    id: fn(K) -> &'static str,
) {
    if holders.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n{title}");
    let width = holders.keys().map(|k| id(*k).len()).max().unwrap_or(0);
    for (k, logins) in holders {
        let _ = writeln!(
            out,
            "  {:width$}  {:>4}  {}",
            id(*k),
            logins.len(),
            some_names(logins)
        );
    }
}

/// A Markdown table cell: pipes escaped, line breaks removed.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn markdown(report: &Report) -> String {
    let a = &report.access;
    let mut out = String::new();
    let _ = writeln!(out, "### {}\n", source_line(report));
    if !a.administrators.is_empty() {
        let _ = writeln!(
            out,
            "**Administrators** (every right, account-wide): {}\n",
            list(a.administrators.iter().map(|l| format!("`{l}`")))
        );
    }
    if !a.representatives.is_empty() {
        let _ = writeln!(
            out,
            "| representative | team | features in effect | portals | campaigns | contact groups | no effect |\n|---|---|---|---|---|---|---|"
        );
        for (login, r) in &a.representatives {
            let d: std::collections::BTreeMap<&str, String> = rep_details(r).into_iter().collect();
            let get = |k: &str| d.get(k).cloned().unwrap_or_default();
            let features = if r.is_active() {
                get("features")
            } else {
                "*inactive: holds nothing in effect*".into()
            };
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} | {} | {} | {} |",
                cell(login),
                cell(r.team.as_deref().unwrap_or("")),
                cell(&features),
                cell(&get("portals")),
                cell(&get("campaigns")),
                cell(&get("contact groups")),
                cell(&get("no effect")),
            );
        }
        out.push('\n');
    }
    if !a.managers.is_empty() {
        let _ = writeln!(
            out,
            "| manager | teams | covers | team rights | may grant |\n|---|---|---|---|---|"
        );
        for (login, m) in &a.managers {
            let _ = writeln!(
                out,
                "| `{}` | {} | {} team{} | {} | {} |",
                cell(login),
                cell(&list(&m.teams)),
                m.covers.len(),
                s(m.covers.len()),
                cell(&list(&m.team_rights)),
                cell(&list(&m.may_grant)),
            );
        }
        out.push('\n');
    }
    for (title, rows) in [
        (
            "feature",
            a.features
                .iter()
                .map(|(k, v)| (k.id(), v))
                .collect::<Vec<_>>(),
        ),
        (
            "team right",
            a.team_rights.iter().map(|(k, v)| (k.id(), v)).collect(),
        ),
    ] {
        if rows.is_empty() {
            continue;
        }
        let _ = writeln!(out, "| {title} | holders | who |\n|---|---|---|");
        for (id, logins) in rows {
            let _ = writeln!(
                out,
                "| `{id}` | {} | {} |",
                logins.len(),
                cell(&some_names(logins))
            );
        }
        out.push('\n');
    }
    if !report.expectations.is_empty() {
        let _ = writeln!(out, "**Expectations**\n");
        for o in &report.expectations {
            let _ = writeln!(
                out,
                "- {} {}",
                if o.ok { "✅" } else { "❌" },
                cell(&one_line(o))
            );
        }
    }
    out
}
