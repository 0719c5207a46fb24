//! The integration tests, one binary (one link): the CLI end to end (`reconcile`,
//! `safety`, `validate`, `docs`) and the live server over HTTP (`server`), the apply lease (`lease`), with their
//! helpers in `support`; `architecture` reads the source.

#[macro_use]
mod support;

mod architecture;
mod docs;
mod lease;
mod reconcile;
mod safety;
mod server;
mod validate;
