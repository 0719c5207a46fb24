//! Helpers shared by the test modules. `server` starts a server in-process and talks
//! HTTP to it; `cli` runs the real binary against a `roster serve` child. `reconcile`
//! and `safety` each wrap `cli::Server` in a `Server` of their own for the helpers
//! they add (some of the same names).

#[macro_use]
pub mod cli;
#[macro_use]
pub mod server;
