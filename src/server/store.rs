//! The live store: SQLite or PostgreSQL through sqlx, one schema, portable SQL.
//!
//! Owns the connection pools, the migrations (`migrations/{sqlite,postgres}`, run on
//! start) and every SQL statement of the server. Objects are rows of `objects` (kind,
//! key, version, public JSON body, plus the indexed columns `team` and `active` that
//! scope filtering and seat counting need); `refs` holds every reference between
//! objects so that "who refers to X" is an index lookup. The engine (`engine.rs`) calls
//! the typed methods here; handlers never write SQL.
//!
//! Every value is a bound parameter (`$1`, understood by both drivers). Writes run in
//! one transaction per request (or per batch) that is serialized against all other
//! writers — SQLite: one write connection and `BEGIN IMMEDIATE`; PostgreSQL: a
//! transaction-scoped advisory lock, so several replicas sharing one database still
//! check cross-object rules (seats, references) against a stable state. Versions are
//! compared in the `UPDATE`/`DELETE`'s `WHERE` clause as well, so no update is ever lost.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::{PgPoolOptions, PgRow};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{PgPool, Postgres, Sqlite, SqlitePool, Transaction};

use crate::model::{Kind, PasswordPolicy};

/// A bound SQL parameter.
#[derive(Debug, Clone)]
pub enum Arg<'a> {
    Text(&'a str),
    OptText(Option<&'a str>),
    Int(i64),
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(v: &'a str) -> Self {
        Arg::Text(v)
    }
}

impl<'a> From<&'a String> for Arg<'a> {
    fn from(v: &'a String) -> Self {
        Arg::Text(v)
    }
}

impl<'a> From<Option<&'a str>> for Arg<'a> {
    fn from(v: Option<&'a str>) -> Self {
        Arg::OptText(v)
    }
}

impl From<i64> for Arg<'_> {
    fn from(v: i64) -> Self {
        Arg::Int(v)
    }
}

/// A statement's parameters, `$1, $2, …` in order, each by its type.
macro_rules! args {
    ($($a:expr),* $(,)?) => {
        [$(Arg::from($a)),*]
    };
}

/// The indexed columns stored beside an object's body (see the migrations).
#[derive(Debug, Default)]
pub struct Columns<'a> {
    /// A representative's team, a team's own path.
    pub team: Option<&'a str>,
    /// 0 inactive, 1 an operator (a licensed seat), 2 an active user without one
    /// (`Obj::active_col`).
    pub active: i64,
    /// The password hash.
    pub secret: Option<&'a str>,
    /// A representative's user name, lower case.
    pub username: Option<String>,
}

/// Row types readable from both drivers.
pub trait Row:
    for<'r> sqlx::FromRow<'r, SqliteRow> + for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin
{
}
impl<T> Row for T where
    T: for<'r> sqlx::FromRow<'r, SqliteRow> + for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin
{
}

macro_rules! bind_args {
    ($q:expr, $args:expr) => {{
        let mut q = $q;
        for a in $args {
            q = match a {
                Arg::Text(s) => q.bind(*s),
                Arg::OptText(s) => q.bind(*s),
                Arg::Int(i) => q.bind(*i),
            };
        }
        q
    }};
}

/// Runs `query_as::<_, $row>($sql)` with `$args` bound on whichever driver `$on` is,
/// through the sqlx method `$fetch` (`fetch_all`, `fetch_optional`): each arm gives its
/// pattern and the executor it binds (a pool, or a transaction).
macro_rules! fetch_as {
    ($on:expr, $sqlite:pat => $s:expr, $pg:pat => $p:expr;
     $row:ty, $sql:expr, $args:expr, $fetch:ident) => {
        match $on {
            $sqlite => {
                bind_args!(sqlx::query_as::<Sqlite, $row>($sql), $args)
                    .$fetch($s)
                    .await
            }
            $pg => {
                bind_args!(sqlx::query_as::<Postgres, $row>($sql), $args)
                    .$fetch($p)
                    .await
            }
        }
    };
}

/// `fetch_all`, `fetch_optional`, … of sqlx as methods of [`Db`] (`[]`: `&self`) or
/// [`Tx`] (`[mut]`: `&mut self`), each over the driver it holds.
macro_rules! fetch_methods {
    ([] $sqlite:pat => $s:expr, $pg:pat => $p:expr; $($fetch:ident -> $out:ty),+) => {
        $(
            pub async fn $fetch<T: Row>(&self, sql: &str, args: &[Arg<'_>]) -> Result<$out, sqlx::Error> {
                fetch_as!(self, $sqlite => $s, $pg => $p; T, sql, args, $fetch)
            }
        )+
    };
    ([mut] $sqlite:pat => $s:expr, $pg:pat => $p:expr; $($fetch:ident -> $out:ty),+) => {
        $(
            pub async fn $fetch<T: Row>(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<$out, sqlx::Error> {
                self.flush().await?;
                fetch_as!(&mut self.conn, $sqlite => $s, $pg => $p; T, sql, args, $fetch)
            }
        )+
    };
}

/// The database: which driver, and its pools.
#[derive(Clone, Debug)]
pub enum Db {
    /// Readers share `read`; writers queue on the single connection of `write`.
    Sqlite {
        read: SqlitePool,
        write: SqlitePool,
    },
    Postgres(PgPool),
}

/// The stored form of one object.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredObject {
    pub key: String,
    pub version: i64,
    pub body: String,
    pub secret: Option<String>,
}

/// A page of objects as one row (see [`Db::list_text`]).
#[derive(Debug)]
pub struct PageText {
    /// The stored bodies, in key order, joined by `\n` (empty for an empty page).
    pub bodies: String,
    /// Their versions, joined by `,`.
    pub versions: String,
    /// How many objects the page holds.
    pub count: usize,
    /// The key of the page's last item (the next page's cursor).
    pub last: Option<String>,
    /// Whether objects follow the page.
    pub more: bool,
}

/// One audit record as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditRow {
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub kind: String,
    pub key: String,
    pub before: Option<String>,
    pub after: Option<String>,
    /// The public id of the token that made the write (migration 0004; none before it
    /// and for what the server itself or `roster token` did).
    pub token_id: Option<String>,
}

/// One API token as stored (migration `0004_tokens.sql`), without its hash: the value
/// itself is never stored, and the hash never leaves this module.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TokenRow {
    /// Public id: the first 16 hex digits of the hash.
    pub id: String,
    pub name: String,
    /// `administrator` or `manager`.
    pub role: String,
    pub login: String,
    /// `read` or `write`.
    pub permission: String,
    pub created_at: String,
    /// RFC 3339; none: never expires.
    pub expires_at: Option<String>,
    /// RFC 3339, updated at most once a minute.
    pub last_used_at: Option<String>,
}

const TOKEN_COLUMNS: &str =
    "id, name, role, login, permission, created_at, expires_at, last_used_at";

/// The apply lease as stored (migrations `0003_lease.sql`); times in unix milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LeaseRow {
    pub id: String,
    pub holder: String,
    pub purpose: String,
    /// `administrator:LOGIN` or `manager:LOGIN`.
    pub principal: String,
    pub acquired_at: i64,
    pub expires_at: i64,
}

const LEASE_COLUMNS: &str = "id, holder, purpose, principal, acquired_at, expires_at";

/// A reference from (kind, key) to another object, through field `rel`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, sqlx::FromRow)]
pub struct RefRow {
    pub kind: String,
    pub key: String,
    pub rel: String,
}

/// `$from, $from+1, …`: `n` numbered parameters for an `IN (…)` list.
fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The SQLite file path of a `sqlite:` URL, if it is one.
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let rest = rest.split('?').next().unwrap_or(rest);
    Some(PathBuf::from(rest))
}

/// Each backend's migrations, embedded once: run by [`Db::connect`], counted by
/// [`Db::ready`].
static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl Db {
    /// Readiness: the database answers, and every migration this build carries is
    /// applied (a replica of an older build behind a newer schema is not ready either
    /// way round). `Err` says which, for the probe's body.
    pub async fn ready(&self) -> Result<(), String> {
        const APPLIED: &str = "SELECT COUNT(*) FROM _sqlx_migrations WHERE success";
        let (applied, known) = match self {
            Db::Sqlite { read, .. } => (
                sqlx::query_scalar::<_, i64>(APPLIED).fetch_one(read).await,
                SQLITE_MIGRATIONS.migrations.len(),
            ),
            Db::Postgres(pool) => (
                sqlx::query_scalar::<_, i64>(APPLIED).fetch_one(pool).await,
                POSTGRES_MIGRATIONS.migrations.len(),
            ),
        };
        match applied {
            Ok(n) if n as usize == known => Ok(()),
            Ok(n) => Err(format!("{n} of {known} migrations applied")),
            Err(e) => Err(format!("the database does not answer: {e}")),
        }
    }

    /// Connects (creating the SQLite file and its directory when missing) and runs the
    /// migrations.
    pub async fn connect(url: &str) -> anyhow::Result<Db> {
        let db = if let Some(path) = sqlite_path(url) {
            if path.as_os_str().is_empty() {
                anyhow::bail!("database url `{url}` names no file; use sqlite://PATH");
            }
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).with_context(|| {
                    format!("cannot create the database directory {}", dir.display())
                })?;
            }
            let opts = SqliteConnectOptions::from_str("sqlite:")?
                .filename(&path)
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(false);
            // The writer checkpoints the WAL into the database file when it commits past
            // `wal_autocheckpoint` pages (SQLite's default 1,000: about every batch of a
            // large apply, copying the same index pages again each time). 8,192 pages
            // (32 MB) copy each page once per several batches. Its page cache (32 MB, not
            // the default 2 MB) holds a batch's index pages until commit, instead of
            // spilling them into the WAL mid-transaction and reading them back.
            let write = SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(
                    opts.clone()
                        .pragma("wal_autocheckpoint", "8192")
                        .pragma("cache_size", "-32768"),
                )
                .await
                .with_context(|| format!("cannot open the sqlite database {}", path.display()))?;
            // A list page is up to 1,001 rows: let the connection's worker thread hand
            // them all over without waiting for the handler to take each one (sqlx's
            // default channel of 50 rows costs a thread hand-off every few rows).
            let read = SqlitePoolOptions::new()
                .max_connections(4)
                .connect_with(opts.row_buffer_size(2048))
                .await
                .with_context(|| format!("cannot open the sqlite database {}", path.display()))?;
            SQLITE_MIGRATIONS
                .run(&write)
                .await
                .context("cannot run the sqlite migrations")?;
            Db::Sqlite { read, write }
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await
                .context("cannot connect to the postgresql database (check the url, the server and the credentials)")?;
            // Replicas starting together must not run the migrations twice.
            let mut conn = pool.acquire().await?;
            sqlx::query("SELECT pg_advisory_lock(7140001)")
                .execute(&mut *conn)
                .await?;
            let migrated = POSTGRES_MIGRATIONS
                .run(&mut *conn)
                .await
                .context("cannot run the postgresql migrations");
            sqlx::query("SELECT pg_advisory_unlock(7140001)")
                .execute(&mut *conn)
                .await?;
            migrated?;
            drop(conn);
            Db::Postgres(pool)
        } else {
            anyhow::bail!(
                "unsupported database url `{}`; use sqlite://PATH or postgres://USER@HOST/DB",
                redact_url(url)
            );
        };
        Ok(db)
    }

    pub async fn close(&self) {
        match self {
            Db::Sqlite { read, write } => {
                read.close().await;
                write.close().await;
            }
            Db::Postgres(p) => p.close().await,
        }
    }

    /// Deletes the idempotency records made before `before` (RFC 3339, UTC); returns how
    /// many.
    pub async fn purge_idempotency(&self, before: &str) -> Result<u64, sqlx::Error> {
        let mut tx = self.begin().await?;
        let n = tx
            .execute(
                "DELETE FROM idempotency WHERE created_at < $1",
                &args![before],
            )
            .await?;
        tx.commit().await?;
        Ok(n)
    }

    /// Starts a write transaction, serialized against every other writer.
    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        match self {
            Db::Sqlite { write, .. } => Ok(Tx::new(Conn::Sqlite(
                write.begin_with("BEGIN IMMEDIATE").await?,
            ))),
            Db::Postgres(p) => {
                let mut tx = p.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock(7140002)")
                    .execute(&mut *tx)
                    .await?;
                Ok(Tx::new(Conn::Pg(tx)))
            }
        }
    }

    /// SQLite only: writes a consistent copy of the database into the new file `out`.
    pub async fn vacuum_into(&self, out: &Path) -> Result<(), sqlx::Error> {
        match self {
            Db::Sqlite { read, .. } => {
                sqlx::query("VACUUM INTO $1")
                    .bind(out.to_string_lossy().into_owned())
                    .execute(read)
                    .await?;
                Ok(())
            }
            Db::Postgres(_) => Err(sqlx::Error::Configuration(
                "VACUUM INTO is SQLite's; use pg_dump for PostgreSQL".into(),
            )),
        }
    }

    fetch_methods!([] Db::Sqlite { read, .. } => read, Db::Postgres(p) => p;
        fetch_all -> Vec<T>, fetch_optional -> Option<T>, fetch_one -> T);

    /// One object by kind and key.
    pub async fn get(&self, kind: Kind, key: &str) -> Result<Option<StoredObject>, sqlx::Error> {
        self.fetch_optional(
            "SELECT key, version, body, secret FROM objects WHERE kind = $1 AND key = $2",
            &args![kind.name(), key],
        )
        .await
    }

    /// A page of objects ordered by key, after `after` (exclusive), without their
    /// `secret` (always `None` here). `teams` restricts to
    /// rows whose `team` column is one of them (an empty list matches nothing).
    pub async fn list(
        &self,
        kind: Kind,
        after: &str,
        limit: i64,
        teams: Option<&[String]>,
    ) -> Result<Vec<StoredObject>, sqlx::Error> {
        let mut args = vec![Arg::Text(kind.name()), Arg::Text(after)];
        // Lists never return the secret (a password hash): leave it in the database.
        let mut sql = String::from(
            "SELECT key, version, body, CAST(NULL AS TEXT) AS secret FROM objects \
             WHERE kind = $1 AND key > $2",
        );
        if let Some(teams) = teams {
            if teams.is_empty() {
                return Ok(vec![]);
            }
            sql.push_str(" AND team IN (");
            for (i, t) in teams.iter().enumerate() {
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!("${}", args.len() + 1));
                args.push(Arg::Text(t));
            }
            sql.push(')');
        }
        sql.push_str(&format!(" ORDER BY key LIMIT ${}", args.len() + 1));
        args.push(Arg::Int(limit));
        self.fetch_all(&sql, &args).await
    }

    /// A page of up to `limit` objects after `after`, in key order, fetched as one row:
    /// the stored bodies joined by newlines (compact JSON never holds a raw newline) and
    /// their versions joined by commas, so a page crosses from the database in one piece
    /// instead of a thousand rows. The caller splits them; when they do not split back
    /// into `count` pieces (a body with a raw newline) it reads the page row by row with
    /// [`Db::list`].
    pub async fn list_text(
        &self,
        kind: Kind,
        after: &str,
        limit: i64,
    ) -> Result<PageText, sqlx::Error> {
        let sql = match self {
            Db::Sqlite { .. } => {
                "SELECT group_concat(body, char(10) ORDER BY key) AS bodies, \
                 group_concat(version, ',' ORDER BY key) AS versions, count(*) AS n, \
                 max(key) AS last FROM (SELECT key, version, body FROM objects \
                 WHERE kind = $1 AND key > $2 ORDER BY key LIMIT $3)"
            }
            Db::Postgres(_) => {
                "SELECT string_agg(body, chr(10) ORDER BY key) AS bodies, \
                 string_agg(version::TEXT, ',' ORDER BY key) AS versions, count(*) AS n, \
                 max(key) AS last FROM (SELECT key, version, body FROM objects \
                 WHERE kind = $1 AND key > $2 ORDER BY key LIMIT $3) AS page"
            }
        };
        let (bodies, versions, count, last): (Option<String>, Option<String>, i64, Option<String>) =
            self.fetch_one(sql, &args![kind.name(), after, limit])
                .await?;
        let more = match &last {
            Some(last) if count >= limit => {
                let (more,): (bool,) = self
                    .fetch_one(
                        "SELECT EXISTS (SELECT 1 FROM objects WHERE kind = $1 AND key > $2)",
                        &args![kind.name(), last],
                    )
                    .await?;
                more
            }
            _ => false,
        };
        Ok(PageText {
            bodies: bodies.unwrap_or_default(),
            versions: versions.unwrap_or_default(),
            count: count as usize,
            last,
            more,
        })
    }

    /// Every team path (teams are few; scope computation needs them all).
    pub async fn team_keys(&self) -> Result<Vec<String>, sqlx::Error> {
        let rows: Vec<(String,)> = self
            .fetch_all(
                "SELECT key FROM objects WHERE kind = $1 ORDER BY key",
                &args![Kind::Team.name()],
            )
            .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    pub async fn account(&self) -> Result<Option<(String, i64, i64)>, sqlx::Error> {
        self.fetch_optional("SELECT name, seats, version FROM account WHERE id = 1", &[])
            .await
    }

    /// The account's password policy (unrestricted when none was ever set).
    pub async fn password_policy(&self) -> Result<PasswordPolicy, sqlx::Error> {
        let row: Option<(Option<String>,)> = self
            .fetch_optional("SELECT password_policy FROM account WHERE id = 1", &[])
            .await?;
        Ok(policy_of(row.and_then(|r| r.0)))
    }

    /// Account-wide (operators, users): active representatives with a seat, and every
    /// active representative (seed 003's counter), from the indexed `active` column.
    pub async fn seat_counts(&self) -> Result<(i64, i64), sqlx::Error> {
        let (operators, users): (i64, i64) = self
            .fetch_optional(
                "SELECT COALESCE(SUM(CASE WHEN active = 1 THEN 1 ELSE 0 END), 0), \
                 COALESCE(SUM(CASE WHEN active >= 1 THEN 1 ELSE 0 END), 0) \
                 FROM objects WHERE kind = $1",
                &args![Kind::Representative.name()],
            )
            .await?
            .unwrap_or((0, 0));
        Ok((operators, users))
    }

    /// The token's role and login, by the token's SHA-256 hash.
    pub async fn token(&self, hash: &str) -> Result<Option<(String, String)>, sqlx::Error> {
        self.fetch_optional(
            "SELECT role, login FROM tokens WHERE hash = $1",
            &args![hash],
        )
        .await
    }

    /// A token by its hash (None: unknown or revoked).
    pub async fn token_row(&self, hash: &str) -> Result<Option<TokenRow>, sqlx::Error> {
        self.fetch_optional(
            &format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE hash = $1"),
            &args![hash],
        )
        .await
    }

    /// Every token, or those of one principal (`role`, `login`), oldest first.
    pub async fn tokens(&self, of: Option<(&str, &str)>) -> Result<Vec<TokenRow>, sqlx::Error> {
        match of {
            None => {
                self.fetch_all(
                    &format!("SELECT {TOKEN_COLUMNS} FROM tokens ORDER BY created_at, id"),
                    &[],
                )
                .await
            }
            Some((role, login)) => {
                self.fetch_all(
                    &format!(
                        "SELECT {TOKEN_COLUMNS} FROM tokens WHERE role = $1 AND login = $2 ORDER BY created_at, id"
                    ),
                    &args![role, login],
                )
                .await
            }
        }
    }

    /// Records a token's use (`at`, RFC 3339): one statement outside the serialized
    /// write transactions (on PostgreSQL it does not wait for the writers' advisory lock;
    /// on SQLite it queues on the write connection like any write).
    pub async fn touch_token(&self, id: &str, at: &str) -> Result<(), sqlx::Error> {
        const SQL: &str = "UPDATE tokens SET last_used_at = $1 WHERE id = $2";
        match self {
            Db::Sqlite { write, .. } => {
                sqlx::query::<Sqlite>(SQL)
                    .bind(at)
                    .bind(id)
                    .execute(write)
                    .await?;
            }
            Db::Postgres(p) => {
                sqlx::query::<Postgres>(SQL)
                    .bind(at)
                    .bind(id)
                    .execute(p)
                    .await?;
            }
        }
        Ok(())
    }

    pub async fn audit_page(&self, after: i64, limit: i64) -> Result<Vec<AuditRow>, sqlx::Error> {
        self.fetch_all(
            "SELECT id, at, actor, action, kind, key, before, after, token_id FROM audit WHERE id > $1 ORDER BY id LIMIT $2",
            &args![after, limit],
        )
        .await
    }
}

impl Db {
    /// The stored lease, expired or not (none when never taken or released).
    pub async fn lease(&self) -> Result<Option<LeaseRow>, sqlx::Error> {
        self.fetch_optional(
            &format!("SELECT {LEASE_COLUMNS} FROM lease WHERE account = 1"),
            &[],
        )
        .await
    }
}

/// One key the change feed reports: the last `seq` that touched it and the object as it
/// is now (`version` and `body` none: deleted, or renamed away).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FeedRow {
    pub seq: i64,
    pub kind: String,
    pub key: String,
    pub version: Option<i64>,
    pub body: Option<String>,
}

/// What one read of the change feed found, all in one consistent snapshot.
#[derive(Debug, Clone)]
pub struct FeedRead {
    /// This database's feed.
    pub epoch: String,
    /// The highest `seq` retention dropped: a cursor below it is too old.
    pub pruned_through: i64,
    /// The highest `seq` committed.
    pub head: i64,
    /// The keys touched after `since`, in the order of their last change (empty when
    /// none was asked for, or the cursor is out of range).
    pub rows: Vec<FeedRow>,
    /// More keys follow the last row.
    pub more: bool,
    /// Per kind: how many objects and the sum of their versions (on the last page only).
    pub digest: Vec<(String, i64, i64)>,
}

impl Db {
    /// Reads the change feed after `since` (none: the head only), at most `limit` keys,
    /// in one read-only snapshot: what it reports and the head it names are the same
    /// committed state (SQLite: one read transaction of the WAL; PostgreSQL: REPEATABLE
    /// READ).
    pub async fn feed(&self, since: Option<i64>, limit: i64) -> Result<FeedRead, sqlx::Error> {
        let mut tx = match self {
            Db::Sqlite { read, .. } => Tx::new(Conn::Sqlite(read.begin().await?)),
            Db::Postgres(p) => {
                let mut t = p.begin().await?;
                sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    .execute(&mut *t)
                    .await?;
                Tx::new(Conn::Pg(t))
            }
        };
        let (epoch, pruned_through): (String, i64) = tx
            .fetch_optional("SELECT epoch, pruned_through FROM feed WHERE id = 1", &[])
            .await?
            .unwrap_or_default();
        let (max,): (i64,) = tx
            .fetch_optional("SELECT COALESCE(MAX(seq), 0) FROM changes", &[])
            .await?
            .unwrap_or_default();
        let head = max.max(pruned_through);
        let mut read = FeedRead {
            epoch,
            pruned_through,
            head,
            rows: Vec::new(),
            more: false,
            digest: Vec::new(),
        };
        let Some(since) = since.filter(|s| (pruned_through..=head).contains(s)) else {
            tx.rollback().await?;
            return Ok(read);
        };
        read.rows = tx
            .fetch_all(
                "SELECT c.seq, c.kind, c.key, o.version, o.body FROM \
                 (SELECT kind, key, MAX(seq) AS seq FROM changes WHERE seq > $1 \
                  GROUP BY kind, key ORDER BY seq LIMIT $2) AS c \
                 LEFT JOIN objects o ON o.kind = c.kind AND o.key = c.key ORDER BY c.seq",
                &args![since, limit + 1],
            )
            .await?;
        read.more = read.rows.len() as i64 > limit;
        read.rows.truncate(limit as usize);
        if !read.more {
            read.digest = tx
                .fetch_all(
                    "SELECT kind, COUNT(*), CAST(COALESCE(SUM(version), 0) AS BIGINT) \
                     FROM objects GROUP BY kind ORDER BY kind",
                    &[],
                )
                .await?;
        }
        tx.rollback().await?;
        Ok(read)
    }

    /// Gives this database's change feed a new epoch: every cursor handed out before is
    /// then answered `410 cursor-expired` (a backup restored must not pass for the
    /// database its cursors came from).
    pub async fn new_feed_epoch(&self) -> Result<(), sqlx::Error> {
        let epoch = hex::encode(rand::random::<[u8; 16]>());
        let mut tx = self.begin().await?;
        tx.execute(
            "UPDATE feed SET epoch = $1 WHERE id = 1",
            &args![epoch.as_str()],
        )
        .await?;
        tx.commit().await
    }

    /// Drops all but the newest `keep` rows of the change feed (retention); a cursor
    /// older than what is dropped is then answered `cursor-expired`. Returns the rows
    /// dropped.
    pub async fn prune_changes(&self, keep: i64) -> Result<u64, sqlx::Error> {
        let mut tx = self.begin().await?;
        let (max,): (i64,) = tx
            .fetch_optional("SELECT COALESCE(MAX(seq), 0) FROM changes", &[])
            .await?
            .unwrap_or_default();
        let through = max - keep;
        if through <= 0 {
            tx.rollback().await?;
            return Ok(0);
        }
        let n = tx
            .execute("DELETE FROM changes WHERE seq <= $1", &args![through])
            .await?;
        if n > 0 {
            tx.execute(
                "UPDATE feed SET pruned_through = $1 WHERE id = 1 AND pruned_through < $1",
                &args![through],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(n)
    }
}

/// A write transaction (see the module doc for how writers are serialized).
///
/// Rows that only add to the store (a created object, its references, change-feed,
/// audit and idempotency rows) are kept in [`Pending`] and sent as multi-row `INSERT`s
/// just before the next statement of any other sort runs, and at commit: a batch of
/// 1,000 creates costs a handful of statements instead of five per object (each one a
/// thread hand-off on SQLite, a round trip on PostgreSQL). Every read and every other
/// write sends them first, so the transaction always sees its own writes and each
/// table receives its rows in the order they were written (the feed's `seq`, the
/// audit's `id`).
pub struct Tx {
    conn: Conn,
    pending: Pending,
}

enum Conn {
    Sqlite(Transaction<'static, Sqlite>),
    Pg(Transaction<'static, Postgres>),
}

/// Rows most of a statement's parameters: 8 columns × 500 stay far below SQLite's
/// (32,766) and PostgreSQL's (65,535) limits on bound parameters.
const PENDING_ROWS: usize = 500;

/// Rows written by this transaction and not sent yet (see [`Tx`]).
#[derive(Default)]
struct Pending {
    objects: Vec<NewObject>,
    refs: Vec<NewRef>,
    changes: Vec<(&'static str, String)>,
    audit: Vec<NewAudit>,
    idempotency: Vec<NewIdempotency>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.objects.is_empty()
            && self.refs.is_empty()
            && self.changes.is_empty()
            && self.audit.is_empty()
            && self.idempotency.is_empty()
    }
}

struct NewObject {
    kind: &'static str,
    key: String,
    body: String,
    team: Option<String>,
    active: i64,
    secret: Option<String>,
    username: Option<String>,
}

struct NewRef {
    kind: &'static str,
    key: String,
    rel: &'static str,
    ref_kind: &'static str,
    ref_key: String,
}

struct NewAudit {
    at: String,
    actor: String,
    token_id: Option<String>,
    action: String,
    kind: String,
    key: String,
    before: Option<String>,
    after: Option<String>,
}

struct NewIdempotency {
    actor: String,
    key: String,
    hash: String,
    status: i64,
    body: String,
    at: String,
}

/// `INSERT INTO {head} VALUES ($1, …, $width), …` for `rows` rows, then `tail`; with
/// `?` for every parameter instead when not `numbered` (SQLite: it finds a numbered
/// parameter's name by a scan of all of them, which sqlx does for each one it binds, a
/// cost that grows with the square of a statement's parameters).
fn insert_sql(head: &str, width: usize, rows: usize, tail: &str, numbered: bool) -> String {
    let mut sql = String::with_capacity(head.len() + tail.len() + rows * width * 6);
    sql.push_str("INSERT INTO ");
    sql.push_str(head);
    sql.push_str(" VALUES ");
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..width {
            if c > 0 {
                sql.push_str(", ");
            }
            if numbered {
                sql.push('$');
                sql.push_str(&(r * width + c + 1).to_string());
            } else {
                sql.push('?');
            }
        }
        sql.push(')');
    }
    sql.push_str(tail);
    sql
}

impl Tx {
    fn new(conn: Conn) -> Tx {
        Tx {
            conn,
            pending: Pending::default(),
        }
    }

    pub async fn commit(mut self) -> Result<(), sqlx::Error> {
        self.flush().await?;
        match self.conn {
            Conn::Sqlite(t) => t.commit().await,
            Conn::Pg(t) => t.commit().await,
        }
    }

    /// Abandons the transaction: nothing it wrote is kept (a dry run).
    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        match self.conn {
            Conn::Sqlite(t) => t.rollback().await,
            Conn::Pg(t) => t.rollback().await,
        }
    }

    /// Runs a statement: whether it changed a row (a compare-and-swap that held).
    pub async fn changed(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<bool, sqlx::Error> {
        Ok(self.execute(sql, args).await? > 0)
    }

    /// Runs a statement after the pending rows; the rows it changed.
    pub async fn execute(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<u64, sqlx::Error> {
        self.flush().await?;
        self.send(sql, args).await
    }

    /// Runs a statement now (the pending rows stay pending).
    async fn send(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<u64, sqlx::Error> {
        match &mut self.conn {
            Conn::Sqlite(t) => Ok(bind_args!(sqlx::query::<Sqlite>(sql), args)
                .execute(&mut **t)
                .await?
                .rows_affected()),
            Conn::Pg(t) => Ok(bind_args!(sqlx::query::<Postgres>(sql), args)
                .execute(&mut **t)
                .await?
                .rows_affected()),
        }
    }

    /// Sends the pending rows, table by table, each in the order written.
    async fn flush(&mut self) -> Result<(), sqlx::Error> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let p = std::mem::take(&mut self.pending);
        self.insert_rows(
            "objects (kind, key, version, body, team, active, secret, username)",
            "",
            &p.objects,
            |o| {
                [
                    Arg::Text(o.kind),
                    Arg::Text(&o.key),
                    Arg::Int(1),
                    Arg::Text(&o.body),
                    Arg::OptText(o.team.as_deref()),
                    Arg::Int(o.active),
                    Arg::OptText(o.secret.as_deref()),
                    Arg::OptText(o.username.as_deref()),
                ]
            },
        )
        .await?;
        self.insert_rows(
            "refs (kind, key, rel, ref_kind, ref_key)",
            "",
            &p.refs,
            |r| {
                [
                    Arg::Text(r.kind),
                    Arg::Text(&r.key),
                    Arg::Text(r.rel),
                    Arg::Text(r.ref_kind),
                    Arg::Text(&r.ref_key),
                ]
            },
        )
        .await?;
        self.insert_rows("changes (kind, key)", "", &p.changes, |(kind, key)| {
            [Arg::Text(kind), Arg::Text(key)]
        })
        .await?;
        self.insert_rows(
            "audit (at, actor, token_id, action, kind, key, before, after)",
            "",
            &p.audit,
            |a| {
                [
                    Arg::Text(&a.at),
                    Arg::Text(&a.actor),
                    Arg::OptText(a.token_id.as_deref()),
                    Arg::Text(&a.action),
                    Arg::Text(&a.kind),
                    Arg::Text(&a.key),
                    Arg::OptText(a.before.as_deref()),
                    Arg::OptText(a.after.as_deref()),
                ]
            },
        )
        .await?;
        // One statement may not upsert a row twice (PostgreSQL refuses it): of several
        // records of one key, the last one written is the one sequential upserts keep.
        let mut last = std::collections::HashMap::new();
        for (i, r) in p.idempotency.iter().enumerate() {
            last.insert((r.actor.as_str(), r.key.as_str()), i);
        }
        let kept: Vec<&NewIdempotency> = p
            .idempotency
            .iter()
            .enumerate()
            .filter(|(i, r)| last.get(&(r.actor.as_str(), r.key.as_str())) == Some(i))
            .map(|(_, r)| r)
            .collect();
        // An expired record of the same key not purged yet is replaced.
        self.insert_rows(
            "idempotency (actor, idem_key, request_hash, status, body, created_at)",
            " ON CONFLICT (actor, idem_key) DO UPDATE SET \
             request_hash = excluded.request_hash, status = excluded.status, \
             body = excluded.body, created_at = excluded.created_at",
            &kept,
            |r| {
                [
                    Arg::Text(&r.actor),
                    Arg::Text(&r.key),
                    Arg::Text(&r.hash),
                    Arg::Int(r.status),
                    Arg::Text(&r.body),
                    Arg::Text(&r.at),
                ]
            },
        )
        .await
    }

    /// `INSERT INTO {head} VALUES (…), (…) {tail}` of `rows`, [`PENDING_ROWS`] a
    /// statement, each row's `W` values given by `row`.
    async fn insert_rows<T, const W: usize>(
        &mut self,
        head: &str,
        tail: &str,
        rows: &[T],
        row: impl for<'r> Fn(&'r T) -> [Arg<'r>; W],
    ) -> Result<(), sqlx::Error> {
        let numbered = matches!(self.conn, Conn::Pg(_));
        for chunk in rows.chunks(PENDING_ROWS) {
            let args: Vec<Arg<'_>> = chunk.iter().flat_map(&row).collect();
            let sql = insert_sql(head, W, chunk.len(), tail, numbered);
            self.send(&sql, &args).await?;
        }
        Ok(())
    }

    fetch_methods!([mut] Conn::Sqlite(t) => &mut **t, Conn::Pg(t) => &mut **t;
        fetch_all -> Vec<T>, fetch_optional -> Option<T>);

    pub async fn get(
        &mut self,
        kind: Kind,
        key: &str,
    ) -> Result<Option<StoredObject>, sqlx::Error> {
        self.fetch_optional(
            "SELECT key, version, body, secret FROM objects WHERE kind = $1 AND key = $2",
            &args![kind.name(), key],
        )
        .await
    }

    pub async fn exists(&mut self, kind: Kind, key: &str) -> Result<bool, sqlx::Error> {
        let r: Option<(i64,)> = self
            .fetch_optional(
                "SELECT version FROM objects WHERE kind = $1 AND key = $2",
                &args![kind.name(), key],
            )
            .await?;
        Ok(r.is_some())
    }

    /// Which of these keys exist.
    pub async fn existing_keys(
        &mut self,
        kind: Kind,
        keys: &[&str],
    ) -> Result<Vec<String>, sqlx::Error> {
        if keys.is_empty() {
            return Ok(vec![]);
        }
        let list = placeholders(2, keys.len());
        let sql = format!(
            "SELECT key FROM objects WHERE kind = $1 AND key IN ({})",
            list
        );
        let mut args = vec![Arg::Text(kind.name())];
        args.extend(keys.iter().map(|k| Arg::Text(k)));
        let rows: Vec<(String,)> = self.fetch_all(&sql, &args).await?;
        Ok(rows.into_iter().map(|(k,)| k).collect())
    }

    /// Every representative user name (lower case) that starts with `prefix`.
    pub async fn usernames_starting_with(
        &mut self,
        prefix: &str,
    ) -> Result<Vec<String>, sqlx::Error> {
        // A range on the indexed column: every string that starts with the prefix sorts
        // (bytewise) between the prefix and the prefix followed by the last character.
        let upper = format!("{prefix}\u{10FFFF}");
        let rows: Vec<(String,)> = self
            .fetch_all(
                "SELECT username FROM objects WHERE kind = $1 AND username >= $2 AND username < $3",
                &args![Kind::Representative.name(), prefix, &upper],
            )
            .await?;
        Ok(rows.into_iter().map(|(n,)| n).collect())
    }

    /// The representatives holding these user names (lower case), as (name, key).
    pub async fn username_holders(
        &mut self,
        names: &[&str],
    ) -> Result<Vec<(String, String)>, sqlx::Error> {
        if names.is_empty() {
            return Ok(vec![]);
        }
        let list = placeholders(2, names.len());
        let sql = format!(
            "SELECT username, key FROM objects WHERE kind = $1 AND username IN ({})",
            list
        );
        let mut args = vec![Arg::Text(Kind::Representative.name())];
        args.extend(names.iter().map(|n| Arg::Text(n)));
        self.fetch_all(&sql, &args).await
    }

    /// Records in the change feed that this transaction wrote (kind, key): called by
    /// every statement that writes `objects`, so that no committed write is missed.
    /// Kept pending (see [`Tx`]), like the other rows that only add to the store.
    fn note_change(&mut self, kind: Kind, key: &str) {
        self.pending.changes.push((kind.name(), key.to_string()));
    }

    pub async fn insert(
        &mut self,
        kind: Kind,
        key: &str,
        body: &str,
        cols: &Columns<'_>,
    ) -> Result<(), sqlx::Error> {
        self.pending.objects.push(NewObject {
            kind: kind.name(),
            key: key.to_string(),
            body: body.to_string(),
            team: cols.team.map(str::to_string),
            active: cols.active,
            secret: cols.secret.map(str::to_string),
            username: cols.username.clone(),
        });
        self.note_change(kind, key);
        Ok(())
    }

    /// Compare-and-swap update (also renames: `new_key` may differ from `key`).
    /// Returns false when the version did not match (nothing written).
    pub async fn update_cas(
        &mut self,
        kind: Kind,
        key: &str,
        expected: i64,
        new_key: &str,
        body: &str,
        cols: &Columns<'_>,
    ) -> Result<bool, sqlx::Error> {
        let n = self
            .execute(
                "UPDATE objects SET key = $1, version = version + 1, body = $2, team = $3, \
                 active = $4, secret = $5, username = $6 WHERE kind = $7 AND key = $8 AND version = $9",
                &args![new_key, body, cols.team, cols.active, cols.secret, cols.username.as_deref(), kind.name(), key, expected],
            )
            .await?;
        if n > 0 && key != new_key {
            self.execute(
                "UPDATE refs SET key = $1 WHERE kind = $2 AND key = $3",
                &args![new_key, kind.name(), key],
            )
            .await?;
            self.note_change(kind, key);
        }
        if n > 0 {
            self.note_change(kind, new_key);
        }
        Ok(n > 0)
    }

    /// Compare-and-swap delete; also drops the object's outgoing references.
    pub async fn delete_cas(
        &mut self,
        kind: Kind,
        key: &str,
        expected: i64,
    ) -> Result<bool, sqlx::Error> {
        let n = self
            .execute(
                "DELETE FROM objects WHERE kind = $1 AND key = $2 AND version = $3",
                &args![kind.name(), key, expected],
            )
            .await?;
        if n > 0 {
            self.execute(
                "DELETE FROM refs WHERE kind = $1 AND key = $2",
                &args![kind.name(), key],
            )
            .await?;
            self.note_change(kind, key);
        }
        Ok(n > 0)
    }

    /// Replaces the outgoing references of (kind, key).
    pub async fn set_refs(
        &mut self,
        kind: Kind,
        key: &str,
        refs: &[(&'static str, Kind, String)],
        had_refs: bool,
    ) -> Result<(), sqlx::Error> {
        if had_refs {
            self.execute(
                "DELETE FROM refs WHERE kind = $1 AND key = $2",
                &args![kind.name(), key],
            )
            .await?;
        }
        self.pending
            .refs
            .extend(refs.iter().map(|(rel, rk, rkey)| NewRef {
                kind: kind.name(),
                key: key.to_string(),
                rel,
                ref_kind: rk.name(),
                ref_key: rkey.clone(),
            }));
        Ok(())
    }

    /// Who refers to (kind, key): (kind, key, field) of each referrer.
    pub async fn referrers(&mut self, kind: Kind, key: &str) -> Result<Vec<RefRow>, sqlx::Error> {
        let mut rows: Vec<RefRow> = self
            .fetch_all(
                "SELECT kind, key, rel FROM refs WHERE ref_kind = $1 AND ref_key = $2",
                &args![kind.name(), key],
            )
            .await?;
        rows.sort();
        rows.dedup();
        Ok(rows)
    }

    /// Re-points references to a renamed object.
    pub async fn rename_refs_to(
        &mut self,
        kind: Kind,
        old: &str,
        new: &str,
    ) -> Result<(), sqlx::Error> {
        self.execute(
            "UPDATE refs SET ref_key = $1 WHERE ref_kind = $2 AND ref_key = $3",
            &args![new, kind.name(), old],
        )
        .await?;
        Ok(())
    }

    /// Operators: the representatives holding a licensed seat (`active = 1`).
    pub async fn count_operators(&mut self) -> Result<i64, sqlx::Error> {
        let (n,): (i64,) = self
            .fetch_optional(
                "SELECT COUNT(*) FROM objects WHERE kind = $1 AND active = 1",
                &args![Kind::Representative.name()],
            )
            .await?
            .unwrap_or((0,));
        Ok(n)
    }

    pub async fn team_keys(&mut self) -> Result<Vec<String>, sqlx::Error> {
        let rows: Vec<(String,)> = self
            .fetch_all(
                "SELECT key FROM objects WHERE kind = $1 ORDER BY key",
                &args![Kind::Team.name()],
            )
            .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    pub async fn account(&mut self) -> Result<Option<(String, i64, i64)>, sqlx::Error> {
        self.fetch_optional("SELECT name, seats, version FROM account WHERE id = 1", &[])
            .await
    }

    /// The account's password policy (unrestricted when none was ever set).
    pub async fn password_policy(&mut self) -> Result<PasswordPolicy, sqlx::Error> {
        let row: Option<(Option<String>,)> = self
            .fetch_optional("SELECT password_policy FROM account WHERE id = 1", &[])
            .await?;
        Ok(policy_of(row.and_then(|r| r.0)))
    }

    /// Sets the account's password policy (within the caller's compare-and-set).
    pub async fn set_password_policy(
        &mut self,
        policy: &PasswordPolicy,
    ) -> Result<(), sqlx::Error> {
        let text = serde_json::to_string(policy).unwrap_or_default();
        self.execute(
            "UPDATE account SET password_policy = $1 WHERE id = 1",
            &args![text.as_str()],
        )
        .await
        .map(|_| ())
    }

    /// Creates the account row unless one exists; true when this call created it.
    pub async fn init_account(&mut self, name: &str, seats: i64) -> Result<bool, sqlx::Error> {
        self.changed(
            "INSERT INTO account (id, name, seats, version) VALUES (1, $1, $2, 1) ON CONFLICT (id) DO NOTHING",
            &args![name, seats],
        )
        .await
    }

    pub async fn update_account_cas(
        &mut self,
        name: &str,
        seats: i64,
        expected: i64,
    ) -> Result<bool, sqlx::Error> {
        self.changed(
            "UPDATE account SET name = $1, seats = $2, version = version + 1 WHERE id = 1 AND version = $3",
            &args![name, seats, expected],
        )
        .await
    }

    pub async fn insert_token(&mut self, hash: &str, t: &TokenRow) -> Result<(), sqlx::Error> {
        self.execute(
            "INSERT INTO tokens (hash, id, name, role, login, permission, created_at, expires_at, last_used_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &args![
                hash,
                &t.id,
                &t.name,
                &t.role,
                &t.login,
                &t.permission,
                &t.created_at,
                t.expires_at.as_deref(),
                t.last_used_at.as_deref()
            ],
        )
        .await?;
        Ok(())
    }

    /// A token by its public id.
    pub async fn token_by_id(&mut self, id: &str) -> Result<Option<TokenRow>, sqlx::Error> {
        self.fetch_optional(
            &format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE id = $1"),
            &args![id],
        )
        .await
    }

    /// Revokes a token: its row is deleted, so the next request with it is refused.
    pub async fn delete_token(&mut self, id: &str) -> Result<bool, sqlx::Error> {
        Ok(self
            .execute("DELETE FROM tokens WHERE id = $1", &args![id])
            .await?
            > 0)
    }

    /// Tokens of a renamed principal follow the new login; a deleted one's are dropped.
    pub async fn retarget_tokens(
        &mut self,
        role: &str,
        old: &str,
        new: Option<&str>,
    ) -> Result<(), sqlx::Error> {
        match new {
            Some(new) => {
                self.execute(
                    "UPDATE tokens SET login = $1 WHERE role = $2 AND login = $3",
                    &args![new, role, old],
                )
                .await?
            }
            None => {
                self.execute(
                    "DELETE FROM tokens WHERE role = $1 AND login = $2",
                    &args![role, old],
                )
                .await?
            }
        };
        Ok(())
    }

    /// The recorded answer to an earlier request with this key, if recorded at or after
    /// `not_before` (RFC 3339, UTC): older records have expired.
    pub async fn idempotency(
        &mut self,
        actor: &str,
        key: &str,
        not_before: &str,
    ) -> Result<Option<(String, i64, String)>, sqlx::Error> {
        self.fetch_optional(
            "SELECT request_hash, status, body FROM idempotency \
             WHERE actor = $1 AND idem_key = $2 AND created_at >= $3",
            &args![actor, key, not_before],
        )
        .await
    }

    /// This actor's records among these keys made at or after `not_before`, as (key,
    /// request hash, status, body).
    pub async fn idempotency_many(
        &mut self,
        actor: &str,
        keys: &[&str],
        not_before: &str,
    ) -> Result<Vec<(String, String, i64, String)>, sqlx::Error> {
        if keys.is_empty() {
            return Ok(vec![]);
        }
        let list = placeholders(3, keys.len());
        let sql = format!(
            "SELECT idem_key, request_hash, status, body FROM idempotency \
             WHERE actor = $1 AND created_at >= $2 AND idem_key IN ({})",
            list
        );
        let mut args = vec![Arg::Text(actor), Arg::Text(not_before)];
        args.extend(keys.iter().map(|k| Arg::Text(k)));
        self.fetch_all(&sql, &args).await
    }

    pub async fn put_idempotency(
        &mut self,
        actor: &str,
        key: &str,
        hash: &str,
        status: i64,
        body: &str,
        at: &str,
    ) -> Result<(), sqlx::Error> {
        self.pending.idempotency.push(NewIdempotency {
            actor: actor.to_string(),
            key: key.to_string(),
            hash: hash.to_string(),
            status,
            body: body.to_string(),
            at: at.to_string(),
        });
        Ok(())
    }

    /// The stored lease, expired or not.
    pub async fn lease(&mut self) -> Result<Option<LeaseRow>, sqlx::Error> {
        self.fetch_optional(
            &format!("SELECT {LEASE_COLUMNS} FROM lease WHERE account = 1"),
            &[],
        )
        .await
    }

    /// Takes the lease when it is free: no row, or one that expired at or before
    /// `row.acquired_at` — one statement, insert or replace-if-expired, so that two
    /// takers (two replicas on one PostgreSQL) cannot both win. True when taken.
    pub async fn take_lease(&mut self, row: &LeaseRow) -> Result<bool, sqlx::Error> {
        self.changed(
            "INSERT INTO lease (account, id, holder, purpose, principal, acquired_at, expires_at) \
                 VALUES (1, $1, $2, $3, $4, $5, $6) ON CONFLICT (account) DO UPDATE SET \
                 id = excluded.id, holder = excluded.holder, purpose = excluded.purpose, \
                 principal = excluded.principal, acquired_at = excluded.acquired_at, \
                 expires_at = excluded.expires_at WHERE lease.expires_at <= excluded.acquired_at",
            &args![
                &row.id,
                &row.holder,
                &row.purpose,
                &row.principal,
                row.acquired_at,
                row.expires_at
            ],
        )
        .await
    }

    /// Moves the expiry of lease `id` to `expires_at` if it has not expired at `now`.
    pub async fn renew_lease(
        &mut self,
        id: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<bool, sqlx::Error> {
        self.changed(
            "UPDATE lease SET expires_at = $1 WHERE account = 1 AND id = $2 AND expires_at > $3",
            &args![expires_at, id, now],
        )
        .await
    }

    /// Drops lease `id`; true when it was there.
    pub async fn release_lease(&mut self, id: &str) -> Result<bool, sqlx::Error> {
        self.changed(
            "DELETE FROM lease WHERE account = 1 AND id = $1",
            &args![id],
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    /// One audit record; `token_id` is the public id of the token that made the write.
    pub async fn audit(
        &mut self,
        at: &str,
        actor: &str,
        token_id: Option<&str>,
        action: &str,
        kind: &str,
        key: &str,
        before: Option<&str>,
        after: Option<&str>,
    ) -> Result<(), sqlx::Error> {
        self.pending.audit.push(NewAudit {
            at: at.to_string(),
            actor: actor.to_string(),
            token_id: token_id.map(str::to_string),
            action: action.to_string(),
            kind: kind.to_string(),
            key: key.to_string(),
            before: before.map(str::to_string),
            after: after.map(str::to_string),
        });
        Ok(())
    }
}

/// A database URL with any password replaced, for messages.
pub fn redact_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        if let Some((userinfo, host)) = rest.split_once('@') {
            let user = userinfo.split(':').next().unwrap_or("");
            return format!("{scheme}://{user}:***@{host}");
        }
    }
    url.to_string()
}

/// The directory holding a SQLite database (where the admin token goes by default).
pub fn sqlite_dir(url: &str) -> Option<PathBuf> {
    sqlite_path(url).map(|p| {
        p.parent()
            .filter(|d| !d.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."))
    })
}

/// A time as stored (`created_at`, `at`): RFC 3339.
pub fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Now, as stored.
pub fn now_rfc3339() -> String {
    rfc3339(time::OffsetDateTime::now_utc())
}

/// The stored policy column: JSON, or NULL (or unreadable) for none.
fn policy_of(text: Option<String>) -> PasswordPolicy {
    text.and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(PasswordPolicy::unrestricted())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_parse_to_paths() {
        assert_eq!(
            sqlite_path("sqlite://.roster/live.db"),
            Some(PathBuf::from(".roster/live.db"))
        );
        assert_eq!(
            sqlite_path("sqlite:/tmp/x.db?mode=rwc"),
            Some(PathBuf::from("/tmp/x.db"))
        );
        assert_eq!(sqlite_path("postgres://a@b/c"), None);
        assert_eq!(sqlite_dir("sqlite://live.db"), Some(PathBuf::from(".")));
    }

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact_url("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert!(!redact_url("postgres://u:secret@h/db").contains("secret"));
    }

    #[tokio::test]
    async fn the_username_migration_fills_the_column_of_stored_representatives() {
        use sqlx::sqlite::SqlitePoolOptions;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.db");
        let url = format!("sqlite://{}", file.display());
        // A database as the first release left it: migration 1 only, two representatives.
        {
            let opts = SqliteConnectOptions::from_str("sqlite:")
                .unwrap()
                .filename(&file)
                .create_if_missing(true);
            let pool = SqlitePoolOptions::new().connect_with(opts).await.unwrap();
            let mut first = sqlx::migrate!("./migrations/sqlite");
            first.migrations = std::borrow::Cow::Owned(first.migrations[..1].to_vec());
            first.run(&pool).await.unwrap();
            for (key, body) in [
                (
                    "ann@x.example",
                    r#"{"login":"ann@x.example","username":"ALee"}"#,
                ),
                ("bob@x.example", r#"{"login":"bob@x.example"}"#),
            ] {
                sqlx::query(
                    "INSERT INTO objects (kind, key, version, body) VALUES ('representative', ?, 1, ?)",
                )
                .bind(key)
                .bind(body)
                .execute(&pool)
                .await
                .unwrap();
            }
            pool.close().await;
        }
        let db = Db::connect(&url).await.unwrap();
        let mut tx = db.begin().await.unwrap();
        let held = tx.username_holders(&["alee", "bob", "ALee"]).await.unwrap();
        assert_eq!(held, [("alee".to_string(), "ann@x.example".to_string())]);
        tx.commit().await.unwrap();
        db.close().await;
    }

    #[tokio::test]
    async fn tokens_made_before_migration_4_keep_working_as_write_tokens_without_expiry() {
        use sqlx::sqlite::SqlitePoolOptions;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.db");
        let url = format!("sqlite://{}", file.display());
        let old = format!("rst_{}", "ab".repeat(32));
        let hash = crate::server::auth::hash_token(&old);
        // A database as release 3 left it, with a token of that time.
        {
            let opts = SqliteConnectOptions::from_str("sqlite:")
                .unwrap()
                .filename(&file)
                .create_if_missing(true);
            let pool = SqlitePoolOptions::new().connect_with(opts).await.unwrap();
            let mut first = sqlx::migrate!("./migrations/sqlite");
            first.migrations = std::borrow::Cow::Owned(first.migrations[..3].to_vec());
            first.run(&pool).await.unwrap();
            sqlx::query(
                "INSERT INTO tokens (hash, role, login, created_at) VALUES (?, 'manager', 'm@x.example', '2026-01-01T00:00:00Z')",
            )
            .bind(&hash)
            .execute(&pool)
            .await
            .unwrap();
            pool.close().await;
        }
        let db = Db::connect(&url).await.unwrap();
        let row = db.token_row(&hash).await.unwrap().expect("still there");
        assert_eq!(row.id, crate::server::auth::token_id(&hash));
        assert_eq!(row.permission, "write");
        assert_eq!((row.expires_at.as_deref(), row.name.as_str()), (None, ""));
        assert!(!crate::server::auth::expired(
            &row,
            time::OffsetDateTime::now_utc()
        ));
        assert_eq!(db.tokens(None).await.unwrap(), [row]);
        db.close().await;
    }

    /// A migrated SQLite database in a directory that lives as long as the guard.
    async fn fresh_sqlite() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let db = Db::connect(&url).await.unwrap();
        (dir, db)
    }

    #[tokio::test]
    async fn rows_kept_pending_are_seen_by_the_next_statement_and_kept_in_order() {
        let (_dir, db) = fresh_sqlite().await;
        let mut tx = db.begin().await.unwrap();
        // More rows than one statement sends, so that the chunks are checked too.
        let n = PENDING_ROWS + 3;
        for i in 0..n {
            let key = format!("p{i:04}");
            tx.insert(Kind::Portal, &key, "{}", &Columns::default())
                .await
                .unwrap();
            tx.set_refs(
                Kind::Portal,
                &key,
                &[("leader", Kind::Representative, format!("r{i}"))],
                false,
            )
            .await
            .unwrap();
            tx.audit(
                "t",
                "admin",
                None,
                "create",
                "portal",
                &key,
                None,
                Some("{}"),
            )
            .await
            .unwrap();
            tx.put_idempotency("admin", "same-key", &format!("h{i}"), 201, "{}", "t")
                .await
                .unwrap();
        }
        assert!(!tx.pending.is_empty(), "nothing sent yet");
        // A read inside the transaction sees what was written before it.
        assert!(tx.exists(Kind::Portal, "p0000").await.unwrap());
        assert!(tx.pending.is_empty());
        assert_eq!(
            tx.referrers(Kind::Representative, "r7")
                .await
                .unwrap()
                .len(),
            1
        );
        let feed: Vec<(String,)> = tx
            .fetch_all("SELECT key FROM changes ORDER BY seq", &[])
            .await
            .unwrap();
        let want: Vec<String> = (0..n).map(|i| format!("p{i:04}")).collect();
        assert_eq!(feed.into_iter().map(|(k,)| k).collect::<Vec<_>>(), want);
        let audited: Vec<(String,)> = tx
            .fetch_all("SELECT key FROM audit ORDER BY id", &[])
            .await
            .unwrap();
        assert_eq!(audited.into_iter().map(|(k,)| k).collect::<Vec<_>>(), want);
        // Upserts of one key keep the last record, as one statement after another would.
        let last = tx
            .idempotency("admin", "same-key", "")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(last.0, format!("h{}", n - 1));
        // Rows written after the last read are sent at commit.
        tx.insert(Kind::Portal, "late", "{}", &Columns::default())
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert!(db.get(Kind::Portal, "late").await.unwrap().is_some());
        db.close().await;
    }

    #[tokio::test]
    async fn cas_update_refuses_a_stale_version() {
        let (_dir, db) = fresh_sqlite().await;
        let mut tx = db.begin().await.unwrap();
        tx.insert(Kind::Portal, "p", "{}", &Columns::default())
            .await
            .unwrap();
        assert!(
            tx.update_cas(Kind::Portal, "p", 1, "p", "{}", &Columns::default())
                .await
                .unwrap()
        );
        assert!(
            !tx.update_cas(Kind::Portal, "p", 1, "p", "{}", &Columns::default())
                .await
                .unwrap()
        );
        tx.commit().await.unwrap();
        assert_eq!(db.get(Kind::Portal, "p").await.unwrap().unwrap().version, 2);
        db.close().await;
    }

    #[tokio::test]
    async fn idempotency_records_expire_and_are_purged() {
        use crate::server::engine::idempotency_cutoff;
        let (_dir, db) = fresh_sqlite().await;
        let now = time::OffsetDateTime::now_utc();
        let rfc = super::rfc3339;
        let cutoff = idempotency_cutoff(now);
        let mut tx = db.begin().await.unwrap();
        let old = rfc(now - time::Duration::hours(25));
        let fresh = rfc(now - time::Duration::hours(23));
        tx.put_idempotency("a", "old", "h1", 201, "{}", &old)
            .await
            .unwrap();
        tx.put_idempotency("a", "fresh", "h2", 201, "{}", &fresh)
            .await
            .unwrap();
        assert_eq!(tx.idempotency("a", "old", &cutoff).await.unwrap(), None);
        assert!(
            tx.idempotency("a", "fresh", &cutoff)
                .await
                .unwrap()
                .is_some()
        );
        // An expired key may be used again before the purge came by.
        tx.put_idempotency("a", "old", "h3", 201, "{\"x\":1}", &rfc(now))
            .await
            .unwrap();
        let again = tx.idempotency("a", "old", &cutoff).await.unwrap().unwrap();
        assert_eq!((again.0.as_str(), again.2.as_str()), ("h3", "{\"x\":1}"));
        tx.put_idempotency("b", "stale", "h4", 201, "{}", &old)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(db.purge_idempotency(&cutoff).await.unwrap(), 1);
        assert_eq!(db.purge_idempotency(&cutoff).await.unwrap(), 0);
        db.close().await;
    }
}
