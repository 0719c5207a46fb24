//! `roster apply` (to be written).

use crate::cli::ApplyArgs;

use super::Exit;

pub fn run(_args: ApplyArgs) -> anyhow::Result<Exit> {
    anyhow::bail!("`roster apply` is not implemented yet")
}
