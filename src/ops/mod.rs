//! Commands as glue: each submodule has one `run` function taking its plain `Options`
//! (no clap type: `cli` maps its arguments onto a [`Command`] with `From`, and [`run`]
//! only dispatches; `ops` never imports `cli`).
//!
//! Shared by the commands: [`term`] (runtime, colours, plurals, the confirmation
//! prompt) and [`connect`] (the endpoint, or the embedded server). Errors are `anyhow`
//! with context, mapped to exit code 1 by `main`.

use std::process::ExitCode;

/// Exit codes a pipeline can branch on: the one table (README "Exit codes" shows it,
/// and `tests/e2e` checks every row). 0 and 2 are Terraform's (`--detailed-exitcode`);
/// each way of stopping has its own code, so that CI can tell "fix the YAML" from
/// "a reviewer must decide" from "the live system is down".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Success; with `--detailed-exitcode`, nothing to change.
    Success = 0,
    /// An error none of the codes below names (a file that cannot be written, an
    /// internal failure, a cancelled confirmation).
    Error = 1,
    /// `--detailed-exitcode`: the plan has changes (apply: it made some).
    Changes = 2,
    /// The declaration is invalid (schema, YAML, rules): fix the files.
    Invalid = 3,
    /// The plan is refused: a safety rule blocks it (removal threshold, protection,
    /// seats, escalation, a server check), or a saved plan is stale or was made for
    /// another target. Nothing was written.
    Refused = 4,
    /// The live system is unreachable, or refuses the token (401/403 on read).
    Unreachable = 5,
    /// Apply ran and some changes failed or were skipped.
    ApplyFailed = 6,
    /// Another apply holds the live system's apply lease (`--lock-timeout`).
    Locked = 7,
    /// An `access --expect` assertion failed (the report names who breaks it).
    ExpectFailed = 8,
    /// The command line is wrong (an unknown option, a missing argument), or it would
    /// send a token over plain HTTP to a host that is not loopback (nothing was sent).
    Usage = 64,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

/// Logs go to stderr; `-v` info, `-vv` debug, `-vvv` trace; `RUST_LOG` overrides.
///
/// `serve` is `Some(format)` for `roster serve`: its access lines (target
/// `roster::access`, one per request) are on at info whatever the verbosity, as text or
/// as one JSON object per line (`--log-format json`, fields at the top level).
pub fn init_logging(verbose: u8, color: anstream::ColorChoice, serve: Option<LogFormat>) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    // The embedded server of `plan`/`apply` logs its requests at -vv only, as before.
    let access = match (serve.is_some(), verbose >= 2) {
        (true, false) => ",roster::access=info,roster::ops::serve=info",
        (false, false) => ",roster::access=off",
        (_, true) => "",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("roster={level}{access},warn"))
    });
    if color != anstream::ColorChoice::Auto {
        color.write_global();
    }
    let ansi = term::stderr_color();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| BarSafeStderr);
    if let Some(format) = serve {
        let _ = SERVE_LOG_FORMAT.set(format);
    }
    let _ = match serve {
        Some(LogFormat::Json) => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
        _ => builder.with_ansi(ansi).with_target(false).try_init(),
    };
}

static SERVE_LOG_FORMAT: std::sync::OnceLock<LogFormat> = std::sync::OnceLock::new();

/// The log format `init_logging` set up for `roster serve` (text otherwise).
pub fn serve_log_format() -> LogFormat {
    SERVE_LOG_FORMAT.get().copied().unwrap_or_default()
}

/// How `roster serve` writes its log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// stderr for log lines: written around apply's progress bar, never over it.
struct BarSafeStderr;

impl std::io::Write for BarSafeStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        crate::apply::while_bar_hidden(|| std::io::stderr().write(buf))
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        crate::apply::while_bar_hidden(|| std::io::stderr().write_all(buf))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// Prints a top-level error with its chain of causes, lower case, on stderr.
pub fn report_error(err: &anyhow::Error) {
    let mut msg = format!("error: {err}");
    for cause in err.chain().skip(1) {
        msg.push_str(&format!("\n  caused by: {cause}"));
    }
    anstream::eprintln!("{msg}");
}

/// A command and its plain options, as `cli` maps them from the command line.
#[derive(Debug)]
pub enum Command {
    Validate(validate::Options),
    Access(access::Options),
    Schema(schema::Schema),
    Generate(generate::Options),
    Plan(plan::Options),
    Apply(apply::Options),
    Export(export::Options),
    Show(show::Options),
    Serve(crate::server::ServerConfig),
    Backup(serve::Backup),
    Token(serve::TokenAction),
    Completions(docs::Completions),
    Man(docs::Man),
}

pub fn run(command: Command) -> anyhow::Result<Exit> {
    match run_command(command) {
        Err(e) if e.downcast_ref::<connect::InsecureHttp>().is_some() => {
            report_error(&e);
            Ok(Exit::Usage)
        }
        done => done,
    }
}

fn run_command(command: Command) -> anyhow::Result<Exit> {
    match command {
        Command::Validate(o) => validate::run(o),
        Command::Access(o) => access::run(o),
        Command::Schema(o) => schema::run(o),
        Command::Generate(o) => generate::run(o),
        Command::Plan(o) => ci::with(&o.ci.clone(), &o.paths.clone(), || plan::run(o)),
        Command::Apply(o) => ci::with(&o.ci.clone(), &o.paths.clone(), || apply::run(o)),
        Command::Export(o) => export::run(o),
        Command::Show(o) => show::run(o),
        Command::Serve(o) => serve::run(o),
        Command::Backup(o) => serve::backup(o),
        Command::Token(o) => serve::token(o),
        Command::Completions(o) => docs::completions(o),
        Command::Man(o) => docs::man(o),
    }
}

pub mod access;
pub mod apply;
pub mod ci;
pub mod connect;
pub mod docs;
pub mod export;
pub mod generate;
pub mod lease;
pub mod plan;
pub mod schema;
pub mod serve;
pub mod show;
pub mod term;
pub mod validate;
