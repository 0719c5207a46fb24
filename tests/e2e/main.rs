//! The integration tests, one binary (one link): the CLI end to end (`reconcile`,
//! `safety`, `validate`, `ci`, `binding`, `docs`, `exit`), the live server over HTTP
//! (`server`) and the apply lease (`lease`), metrics, logs and TLS (`ops`), with their helpers in `support`;
//! `architecture` reads the source.

#[macro_use]
mod support;

mod architecture;
mod binding;
mod ci;
mod ci_examples;
mod docs;
mod exit;
mod lease;
mod ops;
mod reconcile;
mod safety;
mod server;
mod validate;
