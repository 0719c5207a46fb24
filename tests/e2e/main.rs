//! The integration tests, one binary (one link): the CLI end to end (`reconcile`,
//! `safety`, `validate`) and the live server over HTTP (`server`), with their helpers in
//! `support`.

#[macro_use]
mod support;

mod architecture;
mod reconcile;
mod safety;
mod server;
mod validate;
