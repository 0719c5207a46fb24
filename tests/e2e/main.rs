//! The integration tests, one binary (one link): the CLI end to end (`reconcile`,
//! `safety`, `validate`, `cache`, `ci`, `ci_examples`, `binding`, `backup`, `target`, `docs`,
//! `exit`, `scaleout`), the live server over HTTP (`server`), the apply lease (`lease`),
//! tokens (`tokens`) and metrics, logs and TLS (`ops`), with their helpers in `support`;
//! `architecture` reads the source.

#[macro_use]
mod support;

mod architecture;
mod backup;
mod binding;
mod cache;
mod ci;
mod ci_examples;
mod docs;
mod exit;
mod lease;
mod ops;
mod reconcile;
mod safety;
mod scaleout;
mod server;
mod target;
mod tokens;
mod validate;
