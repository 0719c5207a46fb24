//! The `roster` binary: parse arguments, run, map the result to an exit code.

use std::process::ExitCode;

use clap::Parser;

// Loading a large organisation allocates millions of small strings (every YAML scalar,
// every JSON field of a live page); mimalloc does that markedly faster than the system
// allocator (BENCHMARKS.md). Built with `no_thp`: mimalloc would otherwise ask for
// transparent huge pages, whose zeroing made a large plan's system time swing from
// 0.1 s to 1.2 s between identical runs.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // clap's own exit code for a usage error is 2, which is "changes" here.
    let cli = match roster::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                roster::ops::Exit::Usage.into()
            } else {
                roster::ops::Exit::Success.into()
            };
        }
    };
    roster::ops::init_logging(cli.verbose, cli.color.into(), cli.serve_log_format());
    match roster::ops::run(cli.command.into()) {
        Ok(code) => code.into(),
        Err(err) => {
            roster::ops::report_error(&err);
            roster::ops::Exit::Error.into()
        }
    }
}
