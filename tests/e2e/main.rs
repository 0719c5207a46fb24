//! The integration tests, one binary (one link): the CLI end to end (`reconcile`,
//! `safety`, `validate`, `ci`, `docs`) and the live server over HTTP (`server`), with their
//! helpers in `support`; `architecture` reads the source.

#[macro_use]
mod support;

mod architecture;
mod ci;
mod docs;
mod reconcile;
mod safety;
mod server;
mod validate;
