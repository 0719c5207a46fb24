//! `roster export` (to be written).

use crate::cli::ExportArgs;

use super::Exit;

pub fn run(_args: ExportArgs) -> anyhow::Result<Exit> {
    anyhow::bail!("`roster export` is not implemented yet")
}
