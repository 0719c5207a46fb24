//! `roster show FILE`: renders a plan saved by `roster plan --out` as text, JSON or
//! Markdown, without a live system (for a pipeline that plans in one job and comments or
//! applies in another). Also says what the plan was made against.

use std::path::PathBuf;

use super::Exit;
use super::apply::load_plan;
use super::plan::{Format, render};
use super::term::stdout_color;

/// `roster show`'s options.
#[derive(Debug, Clone)]
pub struct Options {
    pub plan: PathBuf,
    pub format: Format,
}

pub fn run(opts: Options) -> anyhow::Result<Exit> {
    let plan = load_plan(&opts.plan)?;
    if let (Some(t), Format::Text) = (&plan.target, opts.format) {
        anstream::eprintln!(
            "plan made by roster {} against {} (account `{}`), declaration {}",
            t.roster_version,
            t.endpoint,
            t.account,
            t.declaration.as_deref().unwrap_or("not recorded")
        );
    }
    anstream::print!("{}", render(&plan, opts.format, stdout_color()));
    Ok(Exit::Success)
}
