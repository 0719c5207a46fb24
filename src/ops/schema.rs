//! `roster schema`: prints a JSON Schema on stdout.
//!
//! `--kind declaration` (default) is the schema of declaration files, generated from
//! `model::Declaration` and identical to `schemas/roster.schema.json`; `--kind plan` is the
//! schema of saved and JSON plans (`plan::Plan`); `--kind openapi` is the live API's
//! OpenAPI document of the reference server, identical to `schemas/openapi.json`;
//! `--kind access` the schema of `roster access --format json`
//! (`schemas/access.schema.json`). `cli` maps `--kind` onto [`Schema`].

use std::io::Write;

use anyhow::Context;

use crate::config::schema::declaration_schema_text;

use super::Exit;

/// Which schema to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    Declaration,
    Plan,
    Openapi,
    Access,
}

pub fn run(schema: Schema) -> anyhow::Result<Exit> {
    let text = match schema {
        Schema::Declaration => declaration_schema_text(),
        Schema::Plan => crate::plan::render::schema(),
        Schema::Openapi => crate::server::openapi_json(),
        Schema::Access => crate::model::access::report_schema(),
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("cannot write the schema to stdout")?;
    Ok(Exit::Success)
}
