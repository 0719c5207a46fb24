//! `roster serve` and `roster token` (to be written).

use crate::cli::{ServeArgs, TokenCommand};

use super::Exit;

pub fn run(_args: ServeArgs) -> anyhow::Result<Exit> {
    anyhow::bail!("`roster serve` is not implemented yet")
}

pub fn token(_cmd: TokenCommand) -> anyhow::Result<Exit> {
    anyhow::bail!("`roster token` is not implemented yet")
}
