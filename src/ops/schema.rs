//! `roster schema` (to be written).

use crate::cli::SchemaArgs;

use super::Exit;

pub fn run(_args: SchemaArgs) -> anyhow::Result<Exit> {
    anyhow::bail!("`roster schema` is not implemented yet")
}
