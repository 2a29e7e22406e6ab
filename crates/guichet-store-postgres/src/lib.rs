//! Guichet's storage contract on PostgreSQL, for territories that outgrow one machine.
//!
//! Same stories as the SQLite backend (the conformance suite checks it); what differs is what
//! PostgreSQL does better: native uuid/timestamptz/jsonb columns, `for update skip locked` so
//! that several `guichet worker` processes share the job queue, and a connection pool without
//! a single-writer funnel (`pool`: one round trip per query, not three).

#![forbid(unsafe_code)]

mod accounts;
mod backoffice;
mod batch;
mod channels;
mod dashboards;
mod jobs;
mod outbox;
mod pool;
mod requests;
mod services;
mod tenants;
mod territory;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use guichet_store::{Store, StoreError, StoreResult};
use sqlx::postgres::PgConnectOptions;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Tuning knobs.
#[derive(Clone, Debug)]
pub struct PgOptions {
    /// Connections in the pool.
    pub max_connections: u32,
    /// How long to wait for a connection before giving up (also bounds start-up against an
    /// unreachable server).
    pub acquire_timeout: Duration,
    /// Schema to work in (tests isolate each run in its own schema); `None` uses the default.
    pub schema: Option<String>,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self { max_connections: 16, acquire_timeout: Duration::from_secs(10), schema: None }
    }
}

/// The PostgreSQL store.
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: Arc<pool::Pool>,
    /// Writes that can change a live session or its account (see `AccountsVersion`).
    accounts: Arc<guichet_store::AccountsVersion>,
}

impl PgStore {
    /// Connects to `url` (`postgres://…` or `postgresql://…`).
    pub async fn connect(url: &str, options: &PgOptions) -> StoreResult<Self> {
        let mut connect = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Unavailable(format!("invalid PostgreSQL URL: {e}")))?
            .application_name("guichet");
        if let Some(schema) = &options.schema {
            connect = connect.options([("search_path", schema.as_str())]);
        }
        let pool =
            pool::Pool::open(connect, options.max_connections, options.acquire_timeout).await?;
        Ok(Self { pool: Arc::new(pool), accounts: Arc::default() })
    }

    /// Applies pending migrations.
    pub async fn migrate(&self) -> StoreResult<()> {
        MIGRATOR
            .run(&mut *self.pool.get().await?)
            .await
            .map_err(|e| StoreError::Other(format!("migration: {e}")))
    }

    /// The embedded migrations as "version_description".
    pub fn migration_names() -> Vec<String> {
        MIGRATOR.iter().map(|m| format!("{}_{}", m.version, m.description)).collect()
    }
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("select 1").execute(&mut *self.pool.get().await?).await.map_err(map_err)?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

/// Maps driver errors to `StoreError`.
pub(crate) fn map_err(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::RowNotFound => StoreError::NotFound,
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict { constraint: db.constraint().unwrap_or("unknown").to_owned() }
        }
        // Class 08 (connection exception) and 57 (operator intervention: the server is shutting
        // down, this backend was terminated, a statement was cancelled) may end the connection.
        sqlx::Error::Database(db)
            if db.code().is_some_and(|c| c.starts_with("08") || c.starts_with("57")) =>
        {
            pool::connection_failed();
            StoreError::Unavailable(db.to_string())
        }
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) => {
            // The connection it happened on may be broken: see `pool`.
            pool::connection_failed();
            StoreError::Unavailable(e.to_string())
        }
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => {
            StoreError::Unavailable(e.to_string())
        }
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
            StoreError::Corrupt(e.to_string())
        }
        other => StoreError::Other(other.to_string()),
    }
}

/// Administration of throwaway databases, for test harnesses and the benchmark generator.
pub mod scratch {
    use sqlx::Connection;
    use sqlx::postgres::PgConnection;

    use super::map_err;
    use guichet_store::{StoreError, StoreResult};

    fn checked(name: &str) -> StoreResult<&str> {
        let ok = !name.is_empty()
            && name.len() <= 63
            && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if ok {
            Ok(name)
        } else {
            Err(StoreError::Other(format!("invalid database name {name:?}")))
        }
    }

    /// Creates database `name` through the server at `admin_url` (identifiers cannot be bound
    /// as parameters, so the name is restricted to `[a-z0-9_]`).
    pub async fn create_database(admin_url: &str, name: &str) -> StoreResult<()> {
        let mut conn = PgConnection::connect(admin_url).await.map_err(map_err)?;
        let sql = format!("create database {}", checked(name)?);
        sqlx::raw_sql(&sql).execute(&mut conn).await.map_err(map_err)?;
        Ok(())
    }

    /// Drops database `name`, disconnecting its sessions.
    pub async fn drop_database(admin_url: &str, name: &str) -> StoreResult<()> {
        let mut conn = PgConnection::connect(admin_url).await.map_err(map_err)?;
        let sql = format!("drop database if exists {} with (force)", checked(name)?);
        sqlx::raw_sql(&sql).execute(&mut conn).await.map_err(map_err)?;
        Ok(())
    }
}

/// Reads an instant column.
pub(crate) fn ts(row: &sqlx::postgres::PgRow, column: &str) -> StoreResult<time::OffsetDateTime> {
    use sqlx::Row;
    row.try_get(column).map_err(map_err)
}

/// Reads a nullable instant column.
pub(crate) fn ts_opt(
    row: &sqlx::postgres::PgRow,
    column: &str,
) -> StoreResult<Option<time::OffsetDateTime>> {
    use sqlx::Row;
    row.try_get(column).map_err(map_err)
}

/// Reads any column.
pub(crate) fn col<'r, T>(row: &'r sqlx::postgres::PgRow, column: &str) -> StoreResult<T>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    use sqlx::Row;
    row.try_get(column).map_err(map_err)
}

/// Appends to a tenant's event chain lock its head row, so concurrent transactions chain one
/// after the other instead of forking the chain.
pub(crate) const FOR_UPDATE: &str = " for update";
