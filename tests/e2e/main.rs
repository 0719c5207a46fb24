//! The integration tests, one binary (one link): the CLI end to end (`reconcile`,
//! `safety`, `validate`, `ci`, `ci_examples`, `binding`, `docs`, `exit`) and the live
//! server over HTTP (`server`), with their helpers in `support`; `architecture` reads the source.

#[macro_use]
mod support;

mod architecture;
mod binding;
mod ci;
mod docs;
mod exit;
mod reconcile;
mod safety;
mod server;
mod validate;
