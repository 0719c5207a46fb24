//! `roster plan` (being written on the reconcile branch).

use crate::cli::PlanArgs;

use super::Exit;

/// The tokio runtime of the commands that talk to a live system.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

pub fn run(_args: PlanArgs) -> anyhow::Result<Exit> {
    anyhow::bail!("`roster plan` is not implemented yet")
}
