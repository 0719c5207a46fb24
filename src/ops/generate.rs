//! `roster generate`: writes a deterministic organization (see [`crate::generate`]) and
//! says what it wrote. [`Options`] (the organization's shape and the directory) come
//! from `cli`.

use std::time::Instant;

use anyhow::Context;

use crate::generate::{GenerateOptions, generate};

use super::Exit;

/// What to generate, and where.
#[derive(Debug, Clone)]
pub struct Options {
    pub out: std::path::PathBuf,
    pub org: GenerateOptions,
}

pub fn run(args: Options) -> anyhow::Result<Exit> {
    let opts = args.org;
    let started = Instant::now();
    let stats = generate(&opts, &args.out).with_context(|| {
        format!(
            "cannot generate the organization into {}",
            args.out.display()
        )
    })?;
    anstream::println!(
        "wrote {} files ({:.1} MB) to {} in {:.2}s",
        stats.files.len(),
        stats.bytes as f64 / 1e6,
        args.out.display(),
        started.elapsed().as_secs_f64()
    );
    anstream::println!(
        "  {} portals, {} teams, {} administrators, {} managers, {} representatives ({} active), {} campaigns, {} contact groups (seed {})",
        stats.portals,
        stats.teams,
        stats.administrators,
        stats.managers,
        stats.representatives,
        stats.active_representatives,
        stats.campaigns,
        stats.contact_groups,
        opts.seed
    );
    Ok(Exit::Success)
}
