//! `roster plan` (to be written).

use crate::cli::PlanArgs;

use super::Exit;

pub fn run(_args: PlanArgs) -> anyhow::Result<Exit> {
    anyhow::bail!("`roster plan` is not implemented yet")
}
