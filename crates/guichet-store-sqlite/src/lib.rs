//! Guichet's storage contract on SQLite, the embedded default.
//!
//! SQLite allows one writer at a time. Rather than let several pooled connections race for the
//! write lock (a deferred transaction that upgrades to writing fails at once with SQLITE_BUSY,
//! whatever the busy timeout), the store keeps a single writer through which every write goes,
//! queued fairly behind a lock, with group commit for the busiest writes (`writer`), which run
//! on the caller's thread (`exec`), and a reader pool for queries, which WAL lets run alongside
//! the writer. The point reads that nearly every page makes go through neither pool: they run
//! on the caller's thread too (`point`).

#![forbid(unsafe_code)]

mod accounts;
mod backoffice;
mod channels;
mod dashboards;
mod exec;
mod jobs;
mod outbox;
mod point;
mod requests;
mod services;
mod tenants;
mod territory;
mod writer;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use guichet_store::{Store, StoreError, StoreResult};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use time::OffsetDateTime;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Tuning knobs.
#[derive(Clone, Debug)]
pub struct SqliteOptions {
    /// Readers in the pool (the writer is always one connection).
    pub readers: u32,
    /// `synchronous=FULL` makes every commit durable across power loss, which a legal
    /// acknowledgement requires; `NORMAL` is durable across crashes only.
    pub synchronous_full: bool,
    /// How long a statement waits for a lock before failing.
    pub busy_timeout: Duration,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self { readers: 4, synchronous_full: true, busy_timeout: Duration::from_secs(5) }
    }
}

/// The SQLite store.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    read: SqlitePool,
    write: Arc<writer::Writer>,
    point: Arc<point::PointReader>,
    /// Writes that can change a live session or its account (see `AccountsVersion`).
    accounts: Arc<guichet_store::AccountsVersion>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` (`sqlite://path` or `sqlite:path`).
    pub async fn connect(url: &str, options: &SqliteOptions) -> StoreResult<Self> {
        let base = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Unavailable(format!("invalid SQLite URL: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(if options.synchronous_full {
                SqliteSynchronous::Full
            } else {
                SqliteSynchronous::Normal
            })
            .foreign_keys(true)
            .busy_timeout(options.busy_timeout)
            // 64 MiB of page cache per connection instead of SQLite's 2 MiB: indexes of a
            // large territory stay in memory.
            .pragma("cache_size", "-65536");
        let file = base.get_filename().to_path_buf();
        // Each connection to `:memory:` is a database of its own: the writer, the readers and
        // the point reader would not see the same data. Guichet's data must be durable anyway.
        if file.as_os_str().is_empty()
            || file.as_os_str() == ":memory:"
            || url.contains("mode=memory")
        {
            return Err(StoreError::Unavailable(
                "an in-memory SQLite database cannot be shared by the store's connections: \
                 give a file path (sqlite://PATH)"
                    .to_owned(),
            ));
        }
        // The writer connects first so that the file and WAL mode exist before readers open it.
        let direct = writer::DirectOptions {
            path: file.clone(),
            synchronous_full: options.synchronous_full,
            busy_timeout: options.busy_timeout,
        };
        let write =
            writer::Writer::open(base.clone(), direct, Some(requests::index_pending_requests))
                .await?;
        let read = SqlitePoolOptions::new()
            .max_connections(options.readers.max(1))
            .acquire_timeout(Duration::from_secs(30))
            // sqlx pings a pooled connection before each use by default: a round trip to the
            // connection's thread per query. A file does not hang up.
            .test_before_acquire(false)
            .connect_with(base.read_only(true))
            .await
            .map_err(unavailable)?;
        let point = Arc::new(point::PointReader::open(file)?);
        Ok(Self { read, write, point, accounts: Arc::default() })
    }

    /// Applies pending migrations.
    pub async fn migrate(&self) -> StoreResult<()> {
        MIGRATOR
            .run(&mut *self.write.lock().await?)
            .await
            .map_err(|e| StoreError::Other(format!("migration: {e}")))
    }

    /// The embedded migrations as "version_description".
    pub fn migration_names() -> Vec<String> {
        MIGRATOR.iter().map(|m| format!("{}_{}", m.version, m.description)).collect()
    }

    /// Copies the live database into `path` (a consistent snapshot, safe while serving).
    pub async fn backup_to(&self, path: &str) -> StoreResult<()> {
        sqlx::query("vacuum into $1")
            .bind(path)
            .execute(&mut *self.write.lock().await?)
            .await
            .map_err(map_err)?;
        Ok(())
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("select 1").execute(&self.read).await.map_err(map_err)?;
        Ok(())
    }

    async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }
}

fn unavailable(e: sqlx::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// Maps driver errors to `StoreError`.
pub(crate) fn map_err(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::RowNotFound => StoreError::NotFound,
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict {
            constraint: guichet_store::records::sqlite_unique_constraint(db.message()),
        },
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => {
            StoreError::Unavailable(e.to_string())
        }
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
            StoreError::Corrupt(e.to_string())
        }
        other => StoreError::Other(other.to_string()),
    }
}

/// Instants are stored as integer microseconds since the epoch (see the first migration).
pub(crate) fn to_us(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX)
}

/// Reads an instant back.
pub(crate) fn from_us(us: i64) -> StoreResult<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1_000)
        .map_err(|e| StoreError::Corrupt(format!("timestamp {us}: {e}")))
}

/// Reads an instant column.
pub(crate) fn ts(row: &sqlx::sqlite::SqliteRow, column: &str) -> StoreResult<OffsetDateTime> {
    use sqlx::Row;
    from_us(row.try_get(column).map_err(map_err)?)
}

/// Reads a nullable instant column.
pub(crate) fn ts_opt(
    row: &sqlx::sqlite::SqliteRow,
    column: &str,
) -> StoreResult<Option<OffsetDateTime>> {
    use sqlx::Row;
    row.try_get::<Option<i64>, _>(column).map_err(map_err)?.map(from_us).transpose()
}

/// Reads any column.
pub(crate) fn col<'r, T>(row: &'r sqlx::sqlite::SqliteRow, column: &str) -> StoreResult<T>
where
    T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
{
    use sqlx::Row;
    row.try_get(column).map_err(map_err)
}
