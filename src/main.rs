//! The `roster` binary: parse arguments, run, map the result to an exit code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = roster::cli::Cli::parse();
    roster::ops::init_logging(cli.verbose, cli.color);
    match roster::ops::run(cli) {
        Ok(code) => code.into(),
        Err(err) => {
            roster::ops::report_error(&err);
            roster::ops::Exit::Error.into()
        }
    }
}
