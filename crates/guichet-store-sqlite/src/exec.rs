//! Statements inside a write transaction, the same for both SQLite drivers.
//!
//! Most writes go through sqlx, whose SQLite connections live on worker threads of their own:
//! every statement is a message to that thread and a message back. The busiest writes (a
//! submission, an agent's action, a draft save, the job runner's bookkeeping) run in write
//! groups (`crate::writer`) on a rusqlite connection instead, statement after statement on the
//! calling thread, with no hand-off at all while the writer's lock is held. The helpers that
//! both kinds of writes share (events and their hash chain, e-mails, jobs, documents, dashboard
//! timings) are written once against [`WriteTx`], which both drivers implement.
//!
//! Statements keep sqlx's `$N` placeholders: rusqlite binds them by number as sqlx does (SQLite
//! itself numbers named parameters in order of appearance, which `$2 … $1` would get wrong).

use std::borrow::Cow;
use std::future::Future;

use guichet_store::{StoreError, StoreResult};
use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use sqlx::sqlite::SqliteRow;
use sqlx::{Sqlite, Transaction};
use time::Date;
use uuid::Uuid;

use crate::point::Columns;

/// A value bound to a statement.
#[derive(Debug, Clone)]
pub(crate) enum Arg<'a> {
    Null,
    Int(i64),
    Text(Cow<'a, str>),
    /// Stored as a 16-byte blob, as sqlx stores a `Uuid`.
    Id(Uuid),
    /// Stored as `YYYY-MM-DD` text by both drivers.
    Date(Date),
}

impl From<i64> for Arg<'_> {
    fn from(v: i64) -> Self {
        Arg::Int(v)
    }
}

impl From<i32> for Arg<'_> {
    fn from(v: i32) -> Self {
        Arg::Int(i64::from(v))
    }
}

impl From<bool> for Arg<'_> {
    fn from(v: bool) -> Self {
        Arg::Int(i64::from(v))
    }
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(v: &'a str) -> Self {
        Arg::Text(Cow::Borrowed(v))
    }
}

impl<'a> From<&'a String> for Arg<'a> {
    fn from(v: &'a String) -> Self {
        Arg::Text(Cow::Borrowed(v))
    }
}

impl From<String> for Arg<'_> {
    fn from(v: String) -> Self {
        Arg::Text(Cow::Owned(v))
    }
}

impl From<Uuid> for Arg<'_> {
    fn from(v: Uuid) -> Self {
        Arg::Id(v)
    }
}

impl From<Date> for Arg<'_> {
    fn from(v: Date) -> Self {
        Arg::Date(v)
    }
}

impl<'a, T: Into<Arg<'a>>> From<Option<T>> for Arg<'a> {
    fn from(v: Option<T>) -> Self {
        v.map_or(Arg::Null, Into::into)
    }
}

impl<'a> From<&'a Option<String>> for Arg<'a> {
    fn from(v: &'a Option<String>) -> Self {
        v.as_deref().map_or(Arg::Null, Into::into)
    }
}

/// The arguments of a statement, `$1` first.
macro_rules! args {
    ($($arg:expr),* $(,)?) => {
        &[$($crate::exec::Arg::from($arg)),*]
    };
}
pub(crate) use args;

impl rusqlite::ToSql for Arg<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Arg::Null => ToSqlOutput::Owned(Value::Null),
            Arg::Int(v) => ToSqlOutput::Owned(Value::Integer(*v)),
            Arg::Text(v) => ToSqlOutput::Borrowed(ValueRef::Text(v.as_bytes())),
            Arg::Id(v) => ToSqlOutput::Borrowed(ValueRef::Blob(v.as_bytes())),
            Arg::Date(v) => return v.to_sql(),
        })
    }
}

/// Statements in an open write transaction.
pub(crate) trait WriteTx: Send {
    /// A result row, read through [`Columns`].
    type Row<'r>: Columns;

    /// Runs a statement that returns no rows (one with `returning` goes through [`Self::row`]);
    /// the number of rows it changed.
    fn exec(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
    ) -> impl Future<Output = StoreResult<u64>> + Send;

    /// The first row of a statement (a query, or a write with `returning`), decoded.
    fn row<T: Send>(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
        decode: impl for<'r> FnOnce(&Self::Row<'r>) -> StoreResult<T> + Send,
    ) -> impl Future<Output = StoreResult<Option<T>>> + Send;
}

fn bind_sqlx<'q>(
    mut q: sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    args: &[Arg<'_>],
) -> sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
    for a in args {
        q = match a {
            Arg::Null => q.bind(None::<i64>),
            Arg::Int(v) => q.bind(*v),
            Arg::Text(v) => q.bind(v.clone().into_owned()),
            Arg::Id(v) => q.bind(*v),
            Arg::Date(v) => q.bind(*v),
        };
    }
    q
}

impl WriteTx for Transaction<'_, Sqlite> {
    type Row<'r> = SqliteRow;

    async fn exec(&mut self, sql: &str, args: &[Arg<'_>]) -> StoreResult<u64> {
        let done =
            bind_sqlx(sqlx::query(sql), args).execute(&mut **self).await.map_err(crate::map_err)?;
        Ok(done.rows_affected())
    }

    async fn row<T: Send>(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
        decode: impl for<'r> FnOnce(&SqliteRow) -> StoreResult<T> + Send,
    ) -> StoreResult<Option<T>> {
        let row = bind_sqlx(sqlx::query(sql), args)
            .fetch_optional(&mut **self)
            .await
            .map_err(crate::map_err)?;
        row.as_ref().map(decode).transpose()
    }
}

/// The writer's rusqlite connection, inside the savepoint of a grouped write. Its statements
/// run on the calling thread; the futures it returns are ready at once.
pub(crate) struct Direct<'c>(pub(crate) &'c mut rusqlite::Connection);

impl Direct<'_> {
    fn prepare(&self, sql: &str, args: &[Arg<'_>]) -> StoreResult<rusqlite::CachedStatement<'_>> {
        let mut stmt = self.0.prepare_cached(sql).map_err(crate::point::map_err)?;
        for i in 1..=stmt.parameter_count() {
            // `$N` (or `?N`) is argument N, wherever it appears. Bare `?`s are not used here:
            // sqlx and SQLite would not number them alike beside numbered ones.
            let n = stmt
                .parameter_name(i)
                .and_then(|name| name.get(1..))
                .and_then(|n| n.parse::<usize>().ok())
                .ok_or_else(|| {
                    StoreError::Other(format!("statement parameter {i} is not numbered: {sql}"))
                })?;
            let arg = args.get(n.wrapping_sub(1)).ok_or_else(|| {
                StoreError::Other(format!("statement parameter {n} has no argument"))
            })?;
            stmt.raw_bind_parameter(i, arg).map_err(crate::point::map_err)?;
        }
        Ok(stmt)
    }

    fn exec_now(&self, sql: &str, args: &[Arg<'_>]) -> StoreResult<u64> {
        let n = self.prepare(sql, args)?.raw_execute().map_err(crate::point::map_err)?;
        Ok(u64::try_from(n).unwrap_or(u64::MAX))
    }

    fn row_now<T>(
        &self,
        sql: &str,
        args: &[Arg<'_>],
        decode: impl for<'r> FnOnce(&rusqlite::Row<'r>) -> StoreResult<T>,
    ) -> StoreResult<Option<T>> {
        let mut stmt = self.prepare(sql, args)?;
        let mut rows = stmt.raw_query();
        match rows.next().map_err(crate::point::map_err)? {
            Some(row) => decode(row).map(Some),
            None => Ok(None),
        }
    }
}

impl WriteTx for Direct<'_> {
    type Row<'r> = rusqlite::Row<'r>;

    fn exec(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
    ) -> impl Future<Output = StoreResult<u64>> + Send {
        std::future::ready(self.exec_now(sql, args))
    }

    fn row<T: Send>(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
        decode: impl for<'r> FnOnce(&rusqlite::Row<'r>) -> StoreResult<T> + Send,
    ) -> impl Future<Output = StoreResult<Option<T>>> + Send {
        std::future::ready(self.row_now(sql, args, decode))
    }
}

#[cfg(test)]
mod tests {
    use sqlx::{ConnectOptions, Connection};
    use time::macros::date;
    use uuid::Uuid;

    use super::{Direct, WriteTx};
    use crate::point::Columns;

    fn decode(r: &impl Columns) -> guichet_store::StoreResult<(Uuid, Option<time::Date>, bool)> {
        Ok((r.get("id")?, r.get("day")?, r.get("flag")?))
    }

    /// What one driver writes, the other reads back the same, and `$N` is argument N wherever
    /// it appears in the statement.
    #[tokio::test]
    async fn both_drivers_bind_by_number_and_store_the_same_values() {
        let dir = std::env::temp_dir().join(format!(
            "guichet_exec_{}_{}",
            std::process::id(),
            time::OffsetDateTime::now_utc().unix_timestamp_nanos()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("e.sqlite3");
        let mut sqlx_conn = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .connect()
            .await
            .expect("sqlx connection");
        sqlx::query("create table v (n integer, id blob, day text, flag integer, label text)")
            .execute(&mut sqlx_conn)
            .await
            .expect("create");
        let id = Uuid::now_v7();
        let day = date!(2026 - 11 - 30);
        let insert = "insert into v (label, flag, day, id, n) values ($5, $4, $3, $2, $1)";
        let mut direct_conn = rusqlite::Connection::open(&path).expect("rusqlite connection");
        let mut direct = Direct(&mut direct_conn);
        direct.exec(insert, args![1_i64, id, day, true, "direct"]).await.expect("direct insert");
        let mut tx = sqlx_conn.begin().await.expect("begin");
        tx.exec(insert, args![2_i64, id, day, true, "sqlx"]).await.expect("sqlx insert");
        tx.commit().await.expect("commit");

        let read = "select n, id, day, flag, label from v where n = $1";
        for n in [1_i64, 2] {
            let mut tx = sqlx_conn.begin().await.expect("begin");
            let by_sqlx = tx.row(read, args![n], decode).await.expect("sqlx read");
            drop(tx);
            // (A closure: the function item is not general over the row's lifetime.)
            let by_direct = direct.row(read, args![n], |r| decode(r)).await.expect("direct read");
            assert_eq!(by_sqlx, Some((id, Some(day), true)), "row {n} read by sqlx");
            assert_eq!(by_direct, by_sqlx, "row {n} read by rusqlite");
        }
        let labels: Vec<(i64, String)> = sqlx::query_as("select n, label from v order by n")
            .fetch_all(&mut sqlx_conn)
            .await
            .expect("labels");
        assert_eq!(labels, vec![(1, "direct".to_owned()), (2, "sqlx".to_owned())]);
        let _ = std::fs::remove_dir_all(dir);
    }
}
