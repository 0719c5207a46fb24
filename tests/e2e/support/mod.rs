//! Helpers shared by the test modules. `server` starts a server in-process and talks
//! HTTP to it. `cli.rs` (the real binary against a `roster serve` child) is not a
//! submodule here: `reconcile` and `safety` each include it as their own
//! `e2e_support` (`#[path]`), because each adds its own `impl Server` methods, some of
//! the same names.

#[macro_use]
pub mod server;
