//! `roster generate` (to be written).

use crate::cli::GenerateArgs;

use super::Exit;

pub fn run(_args: GenerateArgs) -> anyhow::Result<Exit> {
    anyhow::bail!("`roster generate` is not implemented yet")
}
