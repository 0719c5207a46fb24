//! roster: people and permissions of a remote-support console, as code.
//!
//! Architecture map (DESIGN §1, §5): module → what it owns → where its data goes next.
//!
//! - [`cli`]: clap types only → [`ops`].
//! - [`ops`]: one function and options per command; glue between the layers below.
//! - [`model`]: domain types, the rights catalog and object-level rules; shared by every
//!   layer, the server included.
//! - [`config`]: YAML files (with line:column) → JSON Schema → rules → [`model::Desired`].
//! - [`provider`]: the live API's HTTP client → [`model::Observed`]; writes for [`apply`].
//! - [`plan`]: pure: `Desired` × `Observed` → ordered [`plan::Plan`]; safety checks,
//!   fingerprint, renderings (text, JSON, Markdown).
//! - [`apply`]: executes a `Plan` through the provider → `ApplyReport`.
//! - [`server`]: the reference live system (`roster serve`): axum over sqlx.
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
