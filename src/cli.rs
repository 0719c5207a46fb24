//! Command-line types (clap), and their mapping onto the plain options of `ops` and the
//! core (`From` impls at the end of this file): the only module that knows both, so that
//! no layer below `ops` and no `ops` command sees a clap type. `ops::run` dispatches a
//! [`Command`] by converting its arguments with `.into()`.

use std::path::PathBuf;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

use crate::generate::GenerateOptions;
use crate::ops;
use crate::plan::PlanOptions;
use crate::server::ServerConfig;

#[derive(Debug, Parser)]
#[command(
    name = "roster",
    version,
    about = "People and permissions of a remote-support console, as code: validate, plan, apply, export.",
    long_about = None,
)]
pub struct Cli {
    /// More log output (-v info, -vv debug, -vvv trace). Logs go to stderr and never contain secrets.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// When to use colours (also honours NO_COLOR).
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, global = true)]
    pub color: ColorChoice,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check declaration files against the schema and the product's rules; no live system needed.
    Validate(ValidateArgs),
    /// Effective permissions: what each person holds in effect and who holds each feature
    /// and team right, from the declaration or the live system; `--expect` assertions for CI.
    Access(AccessArgs),
    /// Compare the declaration with the live system and show what apply would change.
    Plan(PlanArgs),
    /// Make the live system match the declaration (or run a saved plan).
    Apply(ApplyArgs),
    /// Write the live system's state as declaration files.
    Export(ExportArgs),
    /// Render a plan saved with `plan --out` (text, JSON or Markdown); no live system needed.
    Show(ShowArgs),
    /// Print the JSON Schema of declaration files (or of saved plans).
    Schema(SchemaArgs),
    /// Run the reference live system (the console's admin API).
    Serve(ServeArgs),
    /// Manage API tokens of the reference live system.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Write a large, deterministic organization (for benchmarks and tests).
    Generate(GenerateArgs),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish) on stdout.
    Completions(CompletionsArgs),
    /// Write a man page for roster and one for each of its commands into a directory.
    Man(ManArgs),
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// The directory to write `roster.1` and `roster-<command>.1` into (created if missing).
    #[arg(long, default_value = "man")]
    pub out: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiagnosticFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ValidateFormat {
    Text,
    Json,
    /// GitHub workflow commands (`::error file=…,line=…::…`), one per diagnostic.
    Github,
    /// A SARIF 2.1.0 log, for code-scanning uploads.
    Sarif,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Annotations {
    /// Only under GitHub Actions (GITHUB_ACTIONS=true).
    Auto,
    Always,
    Never,
}

/// The diagnostics for CI systems, besides the normal output.
#[derive(Debug, Clone, Args)]
pub struct CiArgs {
    /// Also write each diagnostic as a GitHub annotation (a workflow command) on stderr.
    #[arg(long, value_enum, default_value_t = Annotations::Auto, env = "ROSTER_ANNOTATIONS")]
    pub annotations: Annotations,
    /// Also write the diagnostics as a SARIF 2.1.0 log to this file.
    #[arg(long, value_name = "FILE")]
    pub sarif: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    Text,
    Json,
    Markdown,
}

/// The parse cache (`<state-dir>/cache/parse`).
#[derive(Debug, Clone, Args)]
pub struct CacheArgs {
    /// Parse every file and read the live system in full, without reading or writing the parse cache or the live snapshot under the state directory.
    #[arg(long, env = "ROSTER_NO_CACHE", action = clap::ArgAction::SetTrue,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub no_cache: bool,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Files or directories (every *.yaml / *.yml below, in sorted order).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Output format of the diagnostics.
    #[arg(long, value_enum, default_value_t = ValidateFormat::Text)]
    pub format: ValidateFormat,
    /// Licensed seats, to check rule 5 without a live system.
    #[arg(long)]
    pub seats: Option<u32>,
    #[command(flatten)]
    pub ci: CiArgs,
    /// Directory of roster's local state (here: the parse cache).
    #[arg(long, default_value = ".roster", env = "ROSTER_STATE_DIR")]
    pub state_dir: PathBuf,
    #[command(flatten)]
    pub cache: CacheArgs,
}

/// Where the live system is. With neither endpoint nor ROSTER_ENDPOINT, roster starts the
/// reference server in-process on loopback over `<state-dir>/live.db`.
#[derive(Debug, Clone, Args)]
pub struct EndpointArgs {
    /// Base URL of the live API (e.g. https://console.example/api).
    #[arg(long, env = "ROSTER_ENDPOINT")]
    pub endpoint: Option<String>,
    /// File holding the API token (otherwise the token itself in ROSTER_TOKEN).
    #[arg(long, env = "ROSTER_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// Directory of roster's local state: the embedded live system's database and token, the parse cache and the live snapshot.
    #[arg(long, default_value = ".roster", env = "ROSTER_STATE_DIR")]
    pub state_dir: PathBuf,
    /// PEM bundle of certificate authorities to trust for an https endpoint (self-signed deployments).
    #[arg(long, env = "ROSTER_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
    /// Send the token over plain http to a host that is not loopback (refused otherwise).
    #[arg(long, env = "ROSTER_ALLOW_INSECURE_HTTP", action = clap::ArgAction::SetTrue,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub allow_insecure_http: bool,
}

#[derive(Debug, Clone, Args)]
pub struct SafetyArgs {
    /// Proceed although removals exceed the removal threshold.
    #[arg(long)]
    pub force: bool,
    /// Allow deleting representatives whose policy says `on_remove: delete` (loses their statistics).
    #[arg(long)]
    pub allow_delete: bool,
    /// Skip the live system's dry run of the plan's writes (`POST /v1/plan:check`), which
    /// otherwise reports at plan time what the apply would be refused.
    #[arg(long, env = "ROSTER_NO_SERVER_CHECK")]
    pub no_server_check: bool,
}

/// `--target`/`--exclude`: only part of the plan.
#[derive(Debug, Clone, Args)]
pub struct TargetArgs {
    /// Plan only the changes of objects matching KIND/KEY (repeatable; `*` globs, e.g.
    /// `representative/*@acme.example`, `team/Europe/*`), and what they depend on.
    #[arg(long, value_name = "KIND/KEY", value_parser = parse_pattern)]
    pub target: Vec<crate::plan::target::Pattern>,
    /// Leave out the changes of objects matching KIND/KEY (repeatable; `*` globs); a
    /// kept change that depends on one refuses the plan.
    #[arg(long, value_name = "KIND/KEY", value_parser = parse_pattern)]
    pub exclude: Vec<crate::plan::target::Pattern>,
}

fn parse_pattern(s: &str) -> Result<crate::plan::target::Pattern, String> {
    s.parse()
}

#[derive(Debug, Args)]
pub struct AccessArgs {
    /// Files or directories of the declaration (not with --live).
    #[arg(conflicts_with = "live", required_unless_present = "live")]
    pub paths: Vec<PathBuf>,
    /// Read the live system (the endpoint, or the embedded one) instead of the declaration.
    #[arg(long)]
    pub live: bool,
    #[command(flatten)]
    pub endpoint: EndpointArgs,
    /// Only people whose login matches (repeatable; `*` globs, ignoring case).
    #[arg(long, value_name = "LOGIN", value_parser = parse_login_glob)]
    pub login: Vec<globset::GlobMatcher>,
    /// Only representatives of this team or a sub-team, and managers whose rights reach
    /// it (repeatable).
    #[arg(long, value_name = "PATH")]
    pub team: Vec<String>,
    /// Only this feature (repeatable; an id or a `*` glob over ids): people holding none
    /// of the features named are left out.
    #[arg(long, value_name = "FEATURE", value_parser = parse_features)]
    pub feature: Vec<Ids<crate::model::Feature>>,
    /// Only this team right (repeatable; an id or a `*` glob over ids): people holding
    /// none of the rights named are left out.
    #[arg(long, value_name = "RIGHT", value_parser = parse_rights)]
    pub right: Vec<Ids<crate::model::TeamRight>>,
    /// An assertion over the whole organization (repeatable), e.g. `session_replay
    /// only-within Support-Tier2`, `session_replay at-most 5`, `jdoe@acme.example lacks
    /// reports`, `feature:reports at-least 2`; exit 8 when one fails.
    #[arg(long, value_name = "EXPECTATION", value_parser = parse_expectation)]
    pub expect: Vec<crate::model::access::expect::Expectation>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
}

/// The ids one `--feature` or `--right` names (one, or all a glob matches).
#[derive(Debug, Clone)]
pub struct Ids<T>(pub Vec<T>);

fn parse_login_glob(s: &str) -> Result<globset::GlobMatcher, String> {
    crate::model::access::Filter::login_glob(s)
}

fn parse_ids<T: Copy>(
    s: &str,
    all: &[T],
    id: fn(T) -> &'static str,
    what: &str,
) -> Result<Ids<T>, String> {
    let glob = globset::Glob::new(s)
        .map_err(|e| format!("`{s}` is not a valid glob: {}", e.kind()))?
        .compile_matcher();
    let found: Vec<T> = all
        .iter()
        .copied()
        .filter(|x| glob.is_match(id(*x)))
        .collect();
    if found.is_empty() {
        let known: Vec<&str> = all.iter().map(|x| id(*x)).collect();
        return Err(format!(
            "`{s}` names no {what}; known: {}",
            known.join(", ")
        ));
    }
    Ok(Ids(found))
}

fn parse_features(s: &str) -> Result<Ids<crate::model::Feature>, String> {
    use crate::model::Feature;
    parse_ids(s, Feature::ALL, Feature::id, "feature")
}

fn parse_rights(s: &str) -> Result<Ids<crate::model::TeamRight>, String> {
    use crate::model::TeamRight;
    parse_ids(s, TeamRight::ALL, TeamRight::id, "team right")
}

fn parse_expectation(s: &str) -> Result<crate::model::access::expect::Expectation, String> {
    crate::model::access::expect::Expectation::parse(s)
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Files or directories of the declaration.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub endpoint: EndpointArgs,
    #[command(flatten)]
    pub safety: SafetyArgs,
    #[command(flatten)]
    pub targeting: TargetArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
    /// Save the plan (JSON, with the version of every live object read) for `apply --plan`.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Exit 0 when there are no changes, 2 when there are (other codes: README "Exit codes").
    #[arg(long, env = "ROSTER_DETAILED_EXITCODE")]
    pub detailed_exitcode: bool,
    /// The most characters of the Markdown plan (also appended to GITHUB_STEP_SUMMARY when
    /// set); a longer plan keeps its summary, refusals, removals and blocked changes.
    #[arg(long, default_value_t = crate::plan::render::MARKDOWN_LIMIT, env = "ROSTER_MARKDOWN_LIMIT")]
    pub markdown_limit: usize,
    /// Count live objects no file declares under `unmanaged: warn` as changes (drift) for
    /// --detailed-exitcode; the JSON plan lists them under `unmanaged`.
    #[arg(long, env = "ROSTER_UNMANAGED_AS_CHANGES")]
    pub unmanaged_as_changes: bool,
    #[command(flatten)]
    pub ci: CiArgs,
    #[command(flatten)]
    pub cache: CacheArgs,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Files or directories of the declaration (omit with --plan).
    #[arg(conflicts_with = "plan", required_unless_present = "plan")]
    pub paths: Vec<PathBuf>,
    /// A plan saved with `plan --out`; refused when the live objects it read have changed.
    #[arg(long)]
    pub plan: Option<PathBuf>,
    #[command(flatten)]
    pub endpoint: EndpointArgs,
    #[command(flatten)]
    pub safety: SafetyArgs,
    /// Apply only the changes of objects matching KIND/KEY (repeatable; `*` globs), and
    /// what they depend on (a saved plan applies only its own changes).
    #[arg(long, value_name = "KIND/KEY", value_parser = parse_pattern, conflicts_with = "plan")]
    pub target: Vec<crate::plan::target::Pattern>,
    /// Leave out the changes of objects matching KIND/KEY (repeatable; `*` globs).
    #[arg(long, value_name = "KIND/KEY", value_parser = parse_pattern, conflicts_with = "plan")]
    pub exclude: Vec<crate::plan::target::Pattern>,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub auto_approve: bool,
    /// How many independent changes to send at once.
    #[arg(long, default_value_t = 8, env = "ROSTER_PARALLELISM", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallelism: u16,
    /// Output format of the report.
    #[arg(long, value_enum, default_value_t = DiagnosticFormat::Text)]
    pub format: DiagnosticFormat,
    /// How long to wait for the live system's apply lease when another apply holds it
    /// (`30s`, `5m`); 0 fails at once (exit 7), naming the holder.
    #[arg(long, env = "ROSTER_LOCK_TIMEOUT", value_name = "DURATION", default_value = "0s", value_parser = humantime::parse_duration)]
    pub lock_timeout: std::time::Duration,
    #[command(flatten)]
    pub ci: CiArgs,
    /// Exit 0 when there was nothing to change, 2 when changes were applied, 6 when some failed.
    #[arg(long, env = "ROSTER_DETAILED_EXITCODE")]
    pub detailed_exitcode: bool,
    #[command(flatten)]
    pub cache: CacheArgs,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// A plan saved with `roster plan --out`.
    pub plan: PathBuf,
    /// How to render it.
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub endpoint: EndpointArgs,
    /// Directory to write into (created if missing).
    #[arg(long, default_value = "exported")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// Which schema to print.
    #[arg(long, value_enum, default_value_t = SchemaKind::Declaration)]
    pub kind: SchemaKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemaKind {
    /// Declaration files (schemas/roster.schema.json).
    Declaration,
    /// Saved and JSON plans (schemas/plan.schema.json).
    Plan,
    /// The live API (schemas/openapi.json).
    Openapi,
    /// `roster access --format json` reports (schemas/access.schema.json).
    Access,
}

#[derive(Debug, Clone, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ServeArgs {
    #[command(subcommand)]
    pub action: Option<ServeAction>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// sqlite://PATH or postgres://… (default: sqlite under .roster/).
    #[arg(long, env = "ROSTER_DATABASE")]
    pub database: Option<String>,
    /// Where to write the first administrator token of an empty database (mode 0600).
    #[arg(long)]
    pub admin_token_file: Option<PathBuf>,
    /// Licensed seats of a new account.
    #[arg(long, default_value_t = 1000)]
    pub seats: u32,
    /// Requests per second per token before answering 429 (0: no limit).
    #[arg(long, default_value_t = 0)]
    pub rate_limit: u32,
    /// Testing aid: answer this fraction of requests (0.0–1.0) with 429/503, some after the
    /// write has been done, as a flaky network would.
    #[arg(long, default_value_t = 0.0, hide = true)]
    pub inject_faults: f64,
    /// Seed of the fault injection.
    #[arg(long, default_value_t = 1, hide = true)]
    pub fault_seed: u64,
    /// How to write log lines (one access line per request): text or one JSON object per line.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, env = "ROSTER_LOG_FORMAT")]
    pub log_format: LogFormat,
    /// Serve HTTPS with this PEM certificate chain (needs --tls-key).
    #[arg(long, requires = "tls_key", env = "ROSTER_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert", env = "ROSTER_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl From<LogFormat> for ops::LogFormat {
    fn from(f: LogFormat) -> Self {
        match f {
            LogFormat::Text => ops::LogFormat::Text,
            LogFormat::Json => ops::LogFormat::Json,
        }
    }
}

impl Cli {
    /// The log format of `roster serve`; none for the other commands.
    pub fn serve_log_format(&self) -> Option<ops::LogFormat> {
        match &self.command {
            Command::Serve(a) => Some(a.log_format.into()),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Subcommand)]
pub enum ServeAction {
    /// Write an online, consistent copy of a SQLite database (PostgreSQL: pg_dump).
    Backup(BackupArgs),
}

#[derive(Debug, Clone, Args)]
pub struct BackupArgs {
    /// The new backup file (never overwritten).
    #[arg(long)]
    pub out: PathBuf,
    /// sqlite://PATH of the database (default: sqlite under .roster/).
    #[arg(long, env = "ROSTER_DATABASE")]
    pub database: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token acting as a manager or an administrator (printed once, stored
    /// hashed).
    Create(TokenCreateArgs),
    /// List the tokens (id, name, principal, permission, times; never a value).
    List(TokenListArgs),
    /// Revoke a token by its id: refused from the next request on, on every replica.
    Revoke(TokenRevokeArgs),
}

#[derive(Debug, Args)]
pub struct TokenListArgs {
    /// The database (same as `serve --database`).
    #[arg(long, env = "ROSTER_DATABASE")]
    pub database: Option<String>,
    /// Output format.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub format: String,
}

#[derive(Debug, Args)]
pub struct TokenRevokeArgs {
    /// The token's id (from `roster token list`).
    pub id: String,
    /// The database (same as `serve --database`).
    #[arg(long, env = "ROSTER_DATABASE")]
    pub database: Option<String>,
}

#[derive(Debug, Args)]
pub struct TokenCreateArgs {
    /// The manager's login.
    #[arg(
        long,
        conflicts_with = "administrator",
        required_unless_present = "administrator"
    )]
    pub manager: Option<String>,
    /// An administrator's login.
    #[arg(long)]
    pub administrator: Option<String>,
    /// The database (same as `serve --database`).
    #[arg(long, env = "ROSTER_DATABASE")]
    pub database: Option<String>,
    /// A name saying what the token is for (e.g. `pr-pipeline`).
    #[arg(long, default_value = "")]
    pub name: String,
    /// `read`: reads and plans only, every write is refused (a pull-request pipeline);
    /// `write`: everything the principal may (a deploy pipeline).
    #[arg(long, default_value = "write", value_parser = ["read", "write"])]
    pub permission: String,
    /// When the token expires, from now (e.g. `30d`, `12h`; default 90 days).
    #[arg(long, value_name = "DURATION", conflicts_with = "no_expiry")]
    pub expires_in: Option<String>,
    /// The token never expires.
    #[arg(long)]
    pub no_expiry: bool,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Directory to write into.
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, default_value_t = 1000)]
    pub representatives: usize,
    #[arg(long, default_value_t = 50)]
    pub teams: usize,
    #[arg(long, default_value_t = 10)]
    pub managers: usize,
    #[arg(long, default_value_t = 5)]
    pub portals: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Representatives per file.
    #[arg(long, default_value_t = 5000)]
    pub per_file: usize,
}

impl From<Command> for ops::Command {
    fn from(c: Command) -> ops::Command {
        match c {
            Command::Validate(a) => ops::Command::Validate(a.into()),
            Command::Access(a) => ops::Command::Access(a.into()),
            Command::Schema(a) => ops::Command::Schema(a.kind.into()),
            Command::Generate(a) => ops::Command::Generate(a.into()),
            Command::Plan(a) => ops::Command::Plan(a.into()),
            Command::Apply(a) => ops::Command::Apply(a.into()),
            Command::Export(a) => ops::Command::Export(a.into()),
            Command::Show(a) => ops::Command::Show(ops::show::Options {
                plan: a.plan,
                format: a.format.into(),
            }),
            Command::Serve(ServeArgs {
                action: Some(ServeAction::Backup(b)),
                ..
            }) => ops::Command::Backup(ops::serve::Backup {
                database: b
                    .database
                    .unwrap_or_else(|| ops::serve::DEFAULT_DATABASE.into()),
                out: b.out,
            }),
            Command::Serve(a) => ops::Command::Serve(a.into()),
            Command::Token(t) => ops::Command::Token(t.into()),
            Command::Completions(a) => ops::Command::Completions(ops::docs::Completions {
                shell: a.shell,
                command: Cli::command(),
            }),
            Command::Man(a) => ops::Command::Man(ops::docs::Man {
                out: a.out,
                command: Cli::command(),
            }),
        }
    }
}

impl From<ColorChoice> for anstream::ColorChoice {
    fn from(c: ColorChoice) -> anstream::ColorChoice {
        match c {
            ColorChoice::Auto => anstream::ColorChoice::Auto,
            ColorChoice::Always => anstream::ColorChoice::Always,
            ColorChoice::Never => anstream::ColorChoice::Never,
        }
    }
}

impl From<DiagnosticFormat> for crate::config::DiagnosticFormat {
    fn from(f: DiagnosticFormat) -> Self {
        match f {
            DiagnosticFormat::Text => Self::Text,
            DiagnosticFormat::Json => Self::Json,
        }
    }
}

impl From<ValidateFormat> for crate::config::ValidateFormat {
    fn from(f: ValidateFormat) -> Self {
        match f {
            ValidateFormat::Text => Self::Text,
            ValidateFormat::Json => Self::Json,
            ValidateFormat::Github => Self::Github,
            ValidateFormat::Sarif => Self::Sarif,
        }
    }
}

impl From<CiArgs> for crate::config::CiOutput {
    fn from(a: CiArgs) -> Self {
        crate::config::CiOutput {
            annotations: match a.annotations {
                Annotations::Auto => crate::config::Annotations::Auto,
                Annotations::Always => crate::config::Annotations::Always,
                Annotations::Never => crate::config::Annotations::Never,
            },
            sarif: a.sarif,
        }
    }
}

impl From<PlanFormat> for ops::plan::Format {
    fn from(f: PlanFormat) -> Self {
        match f {
            PlanFormat::Text => Self::Text,
            PlanFormat::Json => Self::Json,
            PlanFormat::Markdown => Self::Markdown,
        }
    }
}

impl From<SchemaKind> for ops::schema::Schema {
    fn from(k: SchemaKind) -> Self {
        match k {
            SchemaKind::Declaration => Self::Declaration,
            SchemaKind::Plan => Self::Plan,
            SchemaKind::Openapi => Self::Openapi,
            SchemaKind::Access => Self::Access,
        }
    }
}

impl From<EndpointArgs> for ops::connect::Endpoint {
    fn from(a: EndpointArgs) -> Self {
        ops::connect::Endpoint {
            url: a.endpoint,
            token_file: a.token_file,
            state_dir: a.state_dir,
            ca_cert: a.ca_cert,
            allow_insecure_http: a.allow_insecure_http,
            snapshots: false,
        }
    }
}

impl SafetyArgs {
    fn with(self, targets: TargetArgs) -> PlanOptions {
        PlanOptions {
            allow_delete: self.allow_delete,
            force: self.force,
            server_check: !self.no_server_check,
            filter: crate::plan::target::Filter {
                targets: targets.target,
                excludes: targets.exclude,
            },
        }
    }
}

impl From<ValidateArgs> for ops::validate::Options {
    fn from(a: ValidateArgs) -> Self {
        ops::validate::Options {
            paths: a.paths,
            format: a.format.into(),
            seats: a.seats,
            ci: a.ci.into(),
            load: crate::config::LoadOptions::state_dir(&a.state_dir, !a.cache.no_cache),
        }
    }
}

impl From<AccessArgs> for ops::access::Options {
    fn from(a: AccessArgs) -> Self {
        ops::access::Options {
            paths: a.paths,
            live: a.live,
            endpoint: a.endpoint.into(),
            filter: crate::model::access::Filter {
                logins: a.login,
                teams: a
                    .team
                    .into_iter()
                    .map(|t| t.trim_end_matches('/').to_string())
                    .collect(),
                features: a.feature.into_iter().flat_map(|i| i.0).collect(),
                rights: a.right.into_iter().flat_map(|i| i.0).collect(),
            },
            expect: a.expect,
            format: match a.format {
                PlanFormat::Text => ops::access::Format::Text,
                PlanFormat::Json => ops::access::Format::Json,
                PlanFormat::Markdown => ops::access::Format::Markdown,
            },
        }
    }
}

impl From<PlanArgs> for ops::plan::Options {
    fn from(a: PlanArgs) -> Self {
        ops::plan::Options {
            load: crate::config::LoadOptions::state_dir(&a.endpoint.state_dir, !a.cache.no_cache),
            paths: a.paths,
            endpoint: ops::connect::Endpoint {
                snapshots: !a.cache.no_cache,
                ..a.endpoint.into()
            },
            safety: a.safety.with(a.targeting),
            format: a.format.into(),
            out: a.out,
            detailed_exitcode: a.detailed_exitcode,
            markdown_limit: a.markdown_limit,
            unmanaged_as_changes: a.unmanaged_as_changes,
            ci: a.ci.into(),
        }
    }
}

impl From<ApplyArgs> for ops::apply::Options {
    fn from(a: ApplyArgs) -> Self {
        ops::apply::Options {
            load: crate::config::LoadOptions::state_dir(&a.endpoint.state_dir, !a.cache.no_cache),
            paths: a.paths,
            plan: a.plan,
            endpoint: ops::connect::Endpoint {
                snapshots: !a.cache.no_cache,
                ..a.endpoint.into()
            },
            safety: a.safety.with(TargetArgs {
                target: a.target,
                exclude: a.exclude,
            }),
            auto_approve: a.auto_approve,
            parallelism: usize::from(a.parallelism),
            format: a.format.into(),
            detailed_exitcode: a.detailed_exitcode,
            ci: a.ci.into(),
            lock: ops::lease::LockOptions {
                timeout: a.lock_timeout,
                ..Default::default()
            },
        }
    }
}

impl From<ExportArgs> for ops::export::Options {
    fn from(a: ExportArgs) -> Self {
        ops::export::Options {
            endpoint: a.endpoint.into(),
            out: a.out,
        }
    }
}

impl From<ServeArgs> for ServerConfig {
    fn from(a: ServeArgs) -> Self {
        ServerConfig {
            listen: a.listen,
            database: a
                .database
                .unwrap_or_else(|| ops::serve::DEFAULT_DATABASE.into()),
            admin_token_file: a.admin_token_file,
            seats: a.seats,
            rate_limit: a.rate_limit,
            inject_faults: a.inject_faults,
            fault_seed: a.fault_seed,
            tls: match (a.tls_cert, a.tls_key) {
                (Some(cert), Some(key)) => Some(crate::server::TlsFiles { cert, key }),
                _ => None,
            },
        }
    }
}

impl From<TokenCommand> for ops::serve::TokenAction {
    fn from(t: TokenCommand) -> Self {
        let db = |d: Option<String>| d.unwrap_or_else(|| ops::serve::DEFAULT_DATABASE.into());
        match t {
            TokenCommand::Create(a) => {
                let database = db(a.database);
                let who = match (a.manager, a.administrator) {
                    (Some(login), _) => ops::serve::TokenFor::Manager { login, database },
                    (None, Some(login)) => ops::serve::TokenFor::Administrator { login, database },
                    (None, None) => ops::serve::TokenFor::Nobody,
                };
                ops::serve::TokenAction::Create(ops::serve::TokenCreate {
                    who,
                    name: a.name,
                    read_only: a.permission == "read",
                    expires_in: a.expires_in,
                    no_expiry: a.no_expiry,
                })
            }
            TokenCommand::List(a) => ops::serve::TokenAction::List {
                database: db(a.database),
                json: a.format == "json",
            },
            TokenCommand::Revoke(a) => ops::serve::TokenAction::Revoke {
                id: a.id,
                database: db(a.database),
            },
        }
    }
}

impl From<GenerateArgs> for ops::generate::Options {
    fn from(a: GenerateArgs) -> Self {
        ops::generate::Options {
            out: a.out,
            org: GenerateOptions {
                representatives: a.representatives,
                teams: a.teams,
                managers: a.managers,
                portals: a.portals,
                seed: a.seed,
                per_file: a.per_file,
            },
        }
    }
}
