//! The integration tests, one binary (one link): the CLI end to end (`access`, `reconcile`,
//! `safety`, `validate`, `cache`, `ci`, `ci_examples`, `binding`, `backup`, `target`, `docs`,
//! `differential` (schema, both loader paths and the server reach one verdict),
//! `exit`, `scaleout`, the change feed and the live snapshot in `feed`), the live server over HTTP (`server`, the authorization matrix in `authz`, and a manager's read scope in `read_scope`), the apply lease (`lease`),
//! tokens (`tokens`), sign-in (`signin`), metrics, logs and TLS (`ops`), a random walk of valid edits (`walk`:
//! the plan predicts the apply), with their helpers in `support`;
//! `architecture` reads the source.

#[macro_use]
mod support;

mod access;
mod account;
mod architecture;
mod authz;
mod backup;
mod binding;
mod cache;
mod ci;
mod ci_examples;
mod differential;
mod docs;
mod effects;
mod exit;
mod feed;
mod lease;
mod ops;
mod read_scope;
mod reconcile;
mod safety;
mod scaleout;
mod server;
mod server_check;
mod signin;
mod target;
mod tokens;
mod validate;
mod walk;
