//! `roster validate` (to be written).

use crate::cli::ValidateArgs;

use super::Exit;

pub fn run(_args: ValidateArgs) -> anyhow::Result<Exit> {
    anyhow::bail!("`roster validate` is not implemented yet")
}
