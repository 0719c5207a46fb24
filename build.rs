//! Build script: one thing only. The server tests' PostgreSQL variants run when
//! `ROSTER_TEST_POSTGRES` names a database at build time (`cfg(roster_test_postgres)`),
//! and are listed as ignored, with the reason, otherwise — so the one test command,
//! `cargo test --all-targets`, runs them in `.ci/run` (which starts a PostgreSQL) and
//! shows them as not run on a machine without one, never as passed.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(roster_test_postgres)");
    println!("cargo::rerun-if-env-changed=ROSTER_TEST_POSTGRES");
    println!("cargo::rerun-if-changed=build.rs");
    if std::env::var_os("ROSTER_TEST_POSTGRES").is_some_and(|v| !v.is_empty()) {
        println!("cargo::rustc-cfg=roster_test_postgres");
    }
}
