//! Point reads on the calling thread.
//!
//! sqlx runs each SQLite connection on a worker thread of its own, so every query is a message
//! to that thread and a message back: two thread wake-ups per query. Under load, on two cores,
//! those hand-offs cost far more than the query (profiles of the form page showed 60 % of the
//! time in kernel task switches). The reads that nearly every page makes (the session, the
//! account, the draft) are primary-key lookups answered from the page cache in microseconds,
//! so they run here instead, with rusqlite, on the caller's thread, on read-only connections
//! to the same file. In WAL mode they see every write committed before they start, exactly as
//! the sqlx readers do.
//!
//! Only such short indexed lookups belong here: a query that can take milliseconds would hold
//! one of the async runtime's threads for that long, and goes through the sqlx readers.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use guichet_store::{StoreError, StoreResult};
use rusqlite::{Connection, OpenFlags};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

/// Connections kept open between reads: one per thread that reads at once is enough, and the
/// async runtime has one thread per core.
const KEEP_IDLE: usize = 8;

/// How long a point read waits for a lock. WAL readers only wait in rare cases (recovery after
/// a crash, a checkpoint restarting the log); a short wait keeps the calling thread free.
const BUSY_TIMEOUT: Duration = Duration::from_millis(250);

/// Read-only rusqlite connections to the store's file, opened on demand and reused.
#[derive(Debug)]
pub(crate) struct PointReader {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl PointReader {
    /// Opens one connection at once, so a file that cannot be read fails at start-up.
    pub(crate) fn open(path: PathBuf) -> StoreResult<Self> {
        let reader = Self { path, idle: Mutex::new(Vec::new()) };
        let first = reader.connect()?;
        reader.lock().push(first);
        Ok(reader)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Connection>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn connect(&self) -> StoreResult<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| StoreError::Unavailable(format!("SQLite point reader: {e}")))?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(map_err)?;
        // Point reads touch few pages: 8 MiB of cache each rather than the readers' 64.
        conn.pragma_update(None, "cache_size", -8192).map_err(map_err)?;
        Ok(conn)
    }

    /// Runs `read` on an idle connection (or a new one), then keeps the connection.
    pub(crate) fn with<T>(
        &self,
        read: impl FnOnce(&Connection) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let idle = self.lock().pop();
        let conn = match idle {
            Some(c) => c,
            None => self.connect()?,
        };
        let out = read(&conn);
        let mut idle = self.lock();
        if idle.len() < KEEP_IDLE {
            idle.push(conn);
        }
        out
    }

    /// The first row of a prepared (and cached) statement, decoded, or `None`.
    pub(crate) fn optional<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        decode: impl FnOnce(&rusqlite::Row<'_>) -> StoreResult<T>,
    ) -> StoreResult<Option<T>> {
        self.with(|conn| {
            let mut stmt = conn.prepare_cached(sql).map_err(map_err)?;
            let mut rows = stmt.query(params).map_err(map_err)?;
            match rows.next().map_err(map_err)? {
                Some(row) => decode(row).map(Some),
                None => Ok(None),
            }
        })
    }
}

/// Maps rusqlite's errors as `crate::map_err` maps sqlx's.
pub(crate) fn map_err(e: rusqlite::Error) -> StoreError {
    use rusqlite::Error as E;
    match e {
        E::QueryReturnedNoRows => StoreError::NotFound,
        // As sqlx's `is_unique_violation`: SQLITE_CONSTRAINT_UNIQUE or _PRIMARYKEY.
        E::SqliteFailure(f, ref message)
            if f.code == rusqlite::ErrorCode::ConstraintViolation
                && matches!(f.extended_code, 2067 | 1555) =>
        {
            StoreError::Conflict {
                constraint: guichet_store::records::sqlite_unique_constraint(
                    message.as_deref().unwrap_or_default(),
                ),
            }
        }
        E::SqliteFailure(f, _)
            if matches!(
                f.code,
                rusqlite::ErrorCode::DatabaseBusy
                    | rusqlite::ErrorCode::DatabaseLocked
                    | rusqlite::ErrorCode::CannotOpen
            ) =>
        {
            StoreError::Unavailable(e.to_string())
        }
        E::FromSqlConversionFailure(..)
        | E::InvalidColumnType(..)
        | E::IntegralValueOutOfRange(..) => StoreError::Corrupt(e.to_string()),
        other => StoreError::Other(other.to_string()),
    }
}

/// Column access by name, the same for a sqlx row and a rusqlite row, so that each table has a
/// single decoder whichever driver read it.
pub(crate) trait Columns {
    /// A column's value.
    fn get<T: Column>(&self, name: &str) -> StoreResult<T>;

    /// An instant column (integer microseconds).
    fn instant(&self, name: &str) -> StoreResult<OffsetDateTime> {
        crate::from_us(self.get(name)?)
    }

    /// A nullable instant column.
    fn instant_opt(&self, name: &str) -> StoreResult<Option<OffsetDateTime>> {
        self.get::<Option<i64>>(name)?.map(crate::from_us).transpose()
    }
}

/// A value both drivers can decode.
pub(crate) trait Column:
    for<'r> sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite> + rusqlite::types::FromSql
{
}

impl Column for String {}
impl Column for Option<String> {}
impl Column for i64 {}
impl Column for Option<i64> {}
impl Column for i32 {}
impl Column for bool {}
impl Column for Uuid {}
impl Column for Option<Uuid> {}
impl Column for Option<Date> {}

impl Columns for sqlx::sqlite::SqliteRow {
    fn get<T: Column>(&self, name: &str) -> StoreResult<T> {
        crate::col(self, name)
    }
}

thread_local! {
    /// The column after the one last looked up by name on this thread.
    static NEXT_COLUMN: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

impl Columns for rusqlite::Row<'_> {
    fn get<T: Column>(&self, name: &str) -> StoreResult<T> {
        // rusqlite finds a column by name by comparing it with every column's name from the
        // first (each fetched from SQLite and checked as UTF-8): a session read with its
        // account, decoded field by field, made hundreds of comparisons, a twentieth of a form
        // page's time. Decoders read columns mostly in their `select` order, so the search
        // starts after the last column found, and wraps around; rusqlite's own search (which
        // ignores case) answers what this one does not find.
        let stmt = self.as_ref();
        let count = stmt.column_count();
        let next = NEXT_COLUMN.get().min(count);
        let found =
            (next..count).chain(0..next).find(|&i| stmt.column_name(i).is_ok_and(|n| n == name));
        let index = match found {
            Some(i) => i,
            None => stmt.column_index(name).map_err(map_err)?,
        };
        NEXT_COLUMN.set(index + 1);
        rusqlite::Row::get(self, index).map_err(map_err)
    }
}
