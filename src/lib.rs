//! roster: people and permissions of a remote-support console, as code.
//!
//! Architecture map (DESIGN §1, §5; one page with checklists in docs/architecture.md):
//! module → what it owns → where its data goes next. Layers from the bottom up; each
//! imports only those below it (checked by `tests/e2e/architecture.rs`).
//!
//! - [`model`]: domain types, the rights catalog, the product's rules and user-name rules,
//!   shared wording; used by every layer, the server included.
//! - [`config`]: YAML files (with line:column) → JSON Schema → rules → [`model::Desired`],
//!   or diagnostics.
//! - [`plan`]: pure: `Desired` × `Observed` → ordered [`plan::Plan`] (with the refusals of
//!   safety rules, if any) through one entry point, [`plan::make`] (user names, scope,
//!   diff, safety, order, the `--target`/`--exclude` selection); renderings (text, JSON, Markdown) and the stale check of a
//!   saved plan.
//! - [`provider`]: the [`provider::Provider`] trait and its HTTP client → [`model::Observed`];
//!   the writes [`apply`] asks for. Knows an endpoint URL and a token, nothing else.
//! - [`server`]: the reference live system (`roster serve`): axum over sqlx.
//! - [`apply`]: executes a `Plan` through any `Provider` → `ApplyReport`.
//! - [`ops`]: one module per command, plain options in, an exit code out; starts the
//!   embedded server when no endpoint is configured; the terminal helpers.
//! - [`cli`]: clap types only, mapped onto [`ops::Command`].
//! - [`generate`]: deterministic large organizations for benchmarks and tests.

pub mod apply;
pub mod cli;
pub mod config;
pub mod generate;
pub mod model;
pub mod ops;
pub mod plan;
pub mod provider;
pub mod server;
