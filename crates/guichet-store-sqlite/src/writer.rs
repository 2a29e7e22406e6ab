//! The single writer connection, and group commit.
//!
//! Every write goes through one lock, fair, which holds the writer's connections. It is not a
//! one-connection sqlx pool: a pool hands a released connection back through a spawned task
//! that first pings it (a round trip to the connection's thread), so every write waited for two
//! trips through the async scheduler before the next could start.
//!
//! The writes that a submission and its acknowledgement make (draft saves, the submission,
//! agents' actions and request views, the job runner's bookkeeping, session extensions) are
//! *grouped*: while other writers queue behind the lock, each grouped write runs in its own
//! savepoint inside one open transaction, and the last of the queue commits it, once, for all.
//! Grouped writes run on a rusqlite connection, their statements on the calling thread
//! (`crate::exec`): a sqlx statement is two thread hand-offs, and a submission is a score of
//! statements, all made while every other writer waits. The commit, which waits for the disk,
//! runs on a blocking thread. The other writes (rarer: accounts, settings, imports) use a sqlx
//! connection; both connections are behind the same lock, and a group is committed before the
//! sqlx connection is handed out, so they never hold SQLite's write lock at the same time.
//! Each write still returns only after that commit is durable (bar the job runner's
//! completions, see `grouped_unawaited`), so a citizen's acknowledgement is never sent for data
//! a power cut could lose; but the disk flush, which is most of a small
//! write's cost with `synchronous=FULL`, is shared by up to `MAX_GROUP` writes. A write that
//! fails rolls back its own savepoint and nothing else. Should SQLite have rolled back the whole
//! transaction (disk full, I/O error), the group fails as one, every member gets an error, and
//! the connection is opened again.
//!
//! Just before each group's commit the store's `BeforeCommit` step runs in its transaction:
//! it enters the group's new requests into the full-text index, once for all of them (FTS5
//! would otherwise write an index segment for each, at every member's savepoint).
//!
//! Committing or abandoning a group runs in a task of its own, which the cancellation of the
//! caller (a timeout, a shutdown) cannot interrupt: the members waiting for its outcome must get
//! one, and the connection must not be left inside a transaction nobody will end. A group left
//! open for a queued writer that then went away is committed by a watchdog after
//! `STRAGGLER_WAIT`. A failed write returns its error at once: nothing of it is to be committed.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use guichet_store::{StoreError, StoreResult};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{ConnectOptions, Connection as _};
use tokio::sync::{Mutex, OwnedMappedMutexGuard, OwnedMutexGuard, watch};

use crate::exec::Direct;
use crate::point::map_err;

/// At most this many writes share a commit, so the first of a busy queue is not kept waiting
/// for long.
const MAX_GROUP: usize = 32;

/// A group left open is committed by its watchdog after this long at the latest (the writer it
/// was left open for may have been cancelled while queued).
const STRAGGLER_WAIT: Duration = Duration::from_millis(50);

/// Run on the grouped writes' connection inside each group's transaction, just before its
/// commit: the store's deferred work (see `crate::requests::index_pending_requests`). An error
/// fails the group as a failed commit would.
pub(crate) type BeforeCommit = fn(&rusqlite::Connection) -> rusqlite::Result<()>;

/// The outcome of a group's commit, as its members see it.
type Outcome = Option<Result<(), String>>;

struct Group {
    members: usize,
    done: watch::Sender<Outcome>,
}

/// What the lock guards (opaque outside this module).
pub(crate) struct State {
    /// For the writes that are not grouped.
    conn: Option<SqliteConnection>,
    /// For the grouped writes; opened again after a group failed.
    direct: Option<rusqlite::Connection>,
    /// The sqlx connection was handed out since the last grouped write: a transaction dropped
    /// there may still be being rolled back on sqlx's thread (see `grouped`).
    sqlx_used: bool,
    group: Option<Group>,
    closed: bool,
}

/// How the grouped writes' connection is opened: the same file and settings as sqlx's.
#[derive(Debug, Clone)]
pub(crate) struct DirectOptions {
    pub(crate) path: PathBuf,
    pub(crate) synchronous_full: bool,
    pub(crate) busy_timeout: Duration,
}

impl DirectOptions {
    fn open(&self) -> StoreResult<rusqlite::Connection> {
        let conn = rusqlite::Connection::open(&self.path).map_err(map_err)?;
        // A sqlx transaction dropped half-way is rolled back on sqlx's thread shortly after:
        // the wait covers that moment (it is otherwise never needed, the lock being ours).
        conn.busy_timeout(self.busy_timeout).map_err(map_err)?;
        let synchronous = if self.synchronous_full { "FULL" } else { "NORMAL" };
        // Rolling back to a savepoint needs the pages' earlier contents: in memory, not in a
        // temporary file created and deleted for each large group.
        conn.execute_batch(&format!(
            "pragma synchronous = {synchronous}; pragma foreign_keys = on; \
             pragma cache_size = -65536; pragma temp_store = memory;"
        ))
        .map_err(map_err)?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(conn)
    }
}

/// What to do with an open group, in a task of its own.
enum Settle {
    Commit,
    Abandon(String),
}

/// The writer (see the module's documentation). Used through an `Arc`: settling a group runs
/// in a spawned task that holds it.
pub(crate) struct Writer {
    state: Arc<Mutex<State>>,
    /// Writers queued on the lock: a grouped write leaves the group open only when one is.
    waiting: AtomicUsize,
    /// Commits made for groups, and writes that went through groups (for tests and metrics).
    group_commits: AtomicU64,
    grouped_writes: AtomicU64,
    /// A grouped write is running; still set when the lock is next taken means it panicked
    /// half-way, and its group (which holds half of it) must not be committed.
    unfinished: AtomicBool,
    options: SqliteConnectOptions,
    direct_options: DirectOptions,
    before_commit: Option<BeforeCommit>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").finish_non_exhaustive()
    }
}

fn closed() -> StoreError {
    StoreError::Unavailable("the SQLite store is closed".to_owned())
}

/// Counts a queued writer for as long as it waits for the lock, cancelled or not.
struct Queued<'a>(&'a AtomicUsize);

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Writer {
    /// Opens the writer's connections (sqlx's first: it creates the file and sets WAL mode).
    pub(crate) async fn open(
        options: SqliteConnectOptions,
        direct_options: DirectOptions,
        before_commit: Option<BeforeCommit>,
    ) -> StoreResult<Arc<Self>> {
        let conn = options.connect().await.map_err(|e| {
            StoreError::Unavailable(format!("could not open the SQLite writer: {e}"))
        })?;
        let direct = direct_options.open().map_err(|e| {
            StoreError::Unavailable(format!("could not open the SQLite writer: {e}"))
        })?;
        Ok(Arc::new(Self {
            state: Arc::new(Mutex::new(State {
                conn: Some(conn),
                direct: Some(direct),
                sqlx_used: false,
                group: None,
                closed: false,
            })),
            waiting: AtomicUsize::new(0),
            group_commits: AtomicU64::new(0),
            grouped_writes: AtomicU64::new(0),
            unfinished: AtomicBool::new(false),
            options,
            direct_options,
            before_commit,
        }))
    }

    async fn acquire(&self) -> OwnedMutexGuard<State> {
        self.waiting.fetch_add(1, Ordering::AcqRel);
        let queued = Queued(&self.waiting);
        let state = Arc::clone(&self.state).lock_owned().await;
        drop(queued);
        state
    }

    /// The sqlx connection, opened again if it was lost.
    async fn ensure_conn(&self, state: &mut State) -> StoreResult<()> {
        if state.closed {
            return Err(closed());
        }
        if state.conn.is_none() {
            let conn = self.options.connect().await.map_err(|e| {
                StoreError::Unavailable(format!("could not reopen the SQLite writer: {e}"))
            })?;
            state.conn = Some(conn);
        }
        Ok(())
    }

    /// The grouped writes' connection, opened again if a failed group closed it.
    fn ensure_direct<'s>(&self, state: &'s mut State) -> StoreResult<&'s mut rusqlite::Connection> {
        if state.closed {
            return Err(closed());
        }
        if state.direct.is_none() {
            let conn = self.direct_options.open().map_err(|e| {
                StoreError::Unavailable(format!("could not reopen the SQLite writer: {e}"))
            })?;
            state.direct = Some(conn);
        }
        state.direct.as_mut().ok_or_else(closed)
    }

    /// The connection, for a write of its own (in arrival order). A group left open is
    /// committed first.
    pub(crate) async fn lock(
        self: &Arc<Self>,
    ) -> StoreResult<OwnedMappedMutexGuard<State, SqliteConnection>> {
        let state = self.acquire().await;
        let mut state = self.settle(state, Settle::Commit).await?;
        self.ensure_conn(&mut state).await?;
        state.sqlx_used = true;
        OwnedMutexGuard::try_map(state, |s| s.conn.as_mut()).map_err(|_| closed())
    }

    /// Runs `write` in a savepoint of the current group's transaction and returns its result
    /// once the group is committed (see the module's documentation).
    ///
    /// `write`'s statements run on the calling thread (its futures are ready at once): it must
    /// not await anything else, or every other writer would wait for it.
    pub(crate) async fn grouped<T>(
        self: &Arc<Self>,
        write: impl AsyncFnOnce(&mut Direct<'_>) -> StoreResult<T>,
    ) -> StoreResult<T> {
        self.group_write(true, write).await
    }

    /// As [`Self::grouped`], but returns once the write is applied, without waiting for its
    /// group's commit (which follows within `STRAGGLER_WAIT`, or at once if no writer is
    /// queued). Other writes see it at once (they go through this connection); a crash or a
    /// failed group before the commit loses it. Only for bookkeeping whose loss repeats work
    /// and nothing else: the job runner's completions and failures (a job is run at least
    /// once; what a job does that must not be repeated, such as marking an e-mail sent,
    /// waits). Under load each job made three writes in turn, each waiting for a commit behind
    /// the pages' writes; now two wait.
    pub(crate) async fn grouped_unawaited<T>(
        self: &Arc<Self>,
        write: impl AsyncFnOnce(&mut Direct<'_>) -> StoreResult<T>,
    ) -> StoreResult<T> {
        self.group_write(false, write).await
    }

    async fn group_write<T>(
        self: &Arc<Self>,
        wait_for_commit: bool,
        write: impl AsyncFnOnce(&mut Direct<'_>) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let mut state = self.acquire().await;
        if self.unfinished.load(Ordering::Acquire) {
            // `settle` rolls back what a panicked write left (see `unfinished`).
            state = self.settle(state, Settle::Commit).await?;
        }
        if state.sqlx_used {
            // A sqlx transaction dropped half-way (its caller cancelled) is rolled back on
            // sqlx's thread after the lock was given back: until then SQLite's write lock is
            // still held there, and `begin immediate` below would sleep in SQLite's busy
            // handler on this runtime thread. sqlx runs a connection's commands in order, so a
            // ping answered means the rollback is done.
            if let Some(conn) = state.conn.as_mut() {
                conn.ping().await.map_err(crate::map_err)?;
            }
            state.sqlx_used = false;
        }
        let opened = state.group.is_some();
        let conn = self.ensure_direct(&mut state)?;
        if !opened {
            // `immediate`: the write lock is taken now, not upgraded to mid-way.
            conn.execute_batch("begin immediate").map_err(map_err)?;
        }
        self.unfinished.store(true, Ordering::Release);
        // `Err`: the savepoint could not be opened or released; the write's own outcome (an
        // error there keeps its cause) is `Ok`. `dangling`: its rollback failed.
        let mut dangling = false;
        let outcome: Result<StoreResult<T>, rusqlite::Error> = match conn
            .execute_batch("savepoint grouped")
        {
            Ok(()) => match write(&mut Direct(conn)).await {
                Ok(value) => conn.execute_batch("release grouped").map(|()| Ok(value)),
                Err(e) => match conn.execute_batch("rollback to grouped; release grouped") {
                    Ok(()) => Ok(Err(e)),
                    // Reported with the write's own error (a full disk, say); the group
                    // is abandoned below.
                    Err(rollback) => {
                        tracing::error!(error = %rollback, "rolling back a failed SQLite write");
                        dangling = true;
                        Ok(Err(e))
                    }
                },
            },
            Err(e) => Err(e),
        };
        self.unfinished.store(false, Ordering::Release);
        // A failed statement can make SQLite roll back the whole transaction (disk full, I/O
        // error): the earlier members' writes are gone with it. A savepoint left open would
        // have the next commit keep half a write.
        let broken = dangling || outcome.is_err() || conn.is_autocommit();
        if !opened && !broken {
            state.group = Some(Group { members: 0, done: watch::Sender::new(None) });
        }
        let result = match outcome {
            Ok(result) if !broken => result,
            outcome => {
                let reason = match &outcome {
                    Ok(Err(e)) => e.to_string(),
                    Err(e) => e.to_string(),
                    Ok(Ok(_)) => "SQLite rolled the write group's transaction back".to_owned(),
                };
                drop(self.settle(state, Settle::Abandon(reason.clone())).await);
                return Err(match outcome {
                    Ok(Err(e)) => e,
                    Err(e) => map_err(e),
                    Ok(Ok(_)) => StoreError::Unavailable(reason),
                });
            }
        };
        let Some(group) = state.group.as_mut() else {
            // Unreachable (an open transaction always has its group), but were it reached, the
            // transaction must not be left open.
            drop(self.settle(state, Settle::Abandon("write group lost".to_owned())).await);
            return Err(StoreError::Other("write group lost".to_owned()));
        };
        group.members += 1;
        let mut outcome = group.done.subscribe();
        if self.waiting.load(Ordering::Acquire) > 0 && group.members < MAX_GROUP {
            // The next writer continues the group; the watchdog commits it should that writer
            // go away before it gets the lock.
            if group.members == 1 {
                self.watch_group();
            }
            drop(state);
        } else {
            drop(self.settle(state, Settle::Commit).await?);
        }
        // A failed write was rolled back to its savepoint: it has nothing to wait for.
        let value = result?;
        if !wait_for_commit {
            return Ok(value);
        }
        // An error here means the group was dropped without an outcome (a panic): the write
        // is not known to be durable.
        let _ = outcome.wait_for(Option::is_some).await;
        let outcome = outcome.borrow().clone();
        match outcome {
            Some(Ok(())) => Ok(value),
            Some(Err(e)) => Err(StoreError::Unavailable(e)),
            None => Err(StoreError::Unavailable("write group not committed".to_owned())),
        }
    }

    /// Commits whatever group is open once `STRAGGLER_WAIT` has passed.
    fn watch_group(self: &Arc<Self>) {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            tokio::time::sleep(STRAGGLER_WAIT).await;
            // Not counted as waiting: no group is left open on its account.
            let state = Arc::clone(&this.state).lock_owned().await;
            if let Err(e) = this.settle(state, Settle::Commit).await {
                tracing::error!(error = %e, "the SQLite writer's watchdog failed");
            }
        });
    }

    /// Commits or abandons the open group in a task of its own (see the module's
    /// documentation), then gives the lock back to the caller.
    async fn settle(
        self: &Arc<Self>,
        mut state: OwnedMutexGuard<State>,
        mut how: Settle,
    ) -> StoreResult<OwnedMutexGuard<State>> {
        if self.unfinished.swap(false, Ordering::AcqRel) {
            // The write it was open for is a panicked task's, cut off half-way (a write that
            // returns clears the flag before it gives the lock up): its group is rolled back
            // with it, and the connection, still inside that transaction, is replaced.
            how = Settle::Abandon("a write of the group stopped half-way".to_owned());
        }
        if state.group.is_none() && matches!(how, Settle::Commit) {
            return Ok(state);
        }
        let this = Arc::clone(self);
        tokio::spawn(async move {
            match how {
                Settle::Commit => this.commit_group(&mut state).await,
                Settle::Abandon(reason) => this.abandon(&mut state, &reason),
            }
            state
        })
        .await
        .map_err(|e| StoreError::Other(format!("the SQLite writer's task failed: {e}")))
    }

    /// Commits the open group, if any, and tells its members.
    async fn commit_group(&self, state: &mut State) {
        let Some(group) = state.group.take() else { return };
        let Some(conn) = state.direct.take() else {
            group.done.send_replace(Some(Err("the SQLite writer is closed".to_owned())));
            return;
        };
        // The commit waits for the disk (`synchronous=FULL`): not on a runtime thread.
        let before_commit = self.before_commit;
        let committed = tokio::task::spawn_blocking(move || {
            let outcome = before_commit
                .map_or(Ok(()), |run| run(&conn))
                .and_then(|()| conn.execute_batch("commit"));
            (conn, outcome)
        })
        .await;
        let outcome = match committed {
            Ok((conn, outcome)) => {
                state.direct = Some(conn);
                outcome.map_err(|e| e.to_string())
            }
            Err(e) => Err(format!("the SQLite commit's thread failed: {e}")),
        };
        match outcome {
            Ok(()) => {
                self.group_commits.fetch_add(1, Ordering::Relaxed);
                self.grouped_writes.fetch_add(group.members as u64, Ordering::Relaxed);
                group.done.send_replace(Some(Ok(())));
            }
            Err(e) => {
                state.group = Some(group);
                self.abandon(state, &e);
            }
        }
    }

    /// Fails the open group: its members get `reason`, and the connection, whose transaction
    /// state is no longer known, is closed (which rolls back whatever is left) and opened again
    /// by the next grouped write.
    fn abandon(&self, state: &mut State, reason: &str) {
        tracing::error!(error = %reason, "a group of SQLite writes failed and was rolled back");
        if let Some(group) = state.group.take() {
            group.done.send_replace(Some(Err(format!("write group rolled back: {reason}"))));
        }
        if let Some(conn) = state.direct.take() {
            // Closing waits for nothing on disk: the transaction is rolled back, not committed.
            drop(conn);
        }
    }

    /// Groups committed and the writes they held, since start (read by the tests; not yet
    /// exported to `/metrics`).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn group_stats(&self) -> (u64, u64) {
        (self.group_commits.load(Ordering::Relaxed), self.grouped_writes.load(Ordering::Relaxed))
    }

    /// Commits any open group and closes the connection; later writes are refused.
    pub(crate) async fn close(self: &Arc<Self>) {
        let state = self.acquire().await;
        let Ok(mut state) = self.settle(state, Settle::Commit).await else { return };
        state.closed = true;
        drop(state.direct.take());
        if let Some(conn) = state.conn.take()
            && let Err(e) = conn.close().await
        {
            tracing::warn!(error = %e, "closing the SQLite writer");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    use guichet_store::StoreError;
    use sqlx::ConnectOptions;
    use sqlx::sqlite::SqliteConnectOptions;

    use super::{DirectOptions, Writer};
    use crate::exec::{WriteTx, args};

    async fn writer() -> (Arc<Writer>, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!(
            "guichet_writer_{}_{}",
            std::process::id(),
            time::OffsetDateTime::now_utc().unix_timestamp_nanos()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let options = SqliteConnectOptions::new()
            .filename(dir.join("w.sqlite3"))
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal);
        let direct = DirectOptions {
            path: dir.join("w.sqlite3"),
            synchronous_full: true,
            busy_timeout: std::time::Duration::from_secs(5),
        };
        let w = Writer::open(options, direct, None).await.expect("open writer");
        sqlx::query("create table t (id integer primary key)")
            .execute(&mut *w.lock().await.expect("lock"))
            .await
            .expect("create table");
        (w, dir)
    }

    /// The ids committed to the test table, read from a connection of their own.
    async fn committed_ids(dir: &std::path::Path) -> Vec<i64> {
        let mut reader = SqliteConnectOptions::new()
            .filename(dir.join("w.sqlite3"))
            .read_only(true)
            .connect()
            .await
            .expect("reader");
        sqlx::query_scalar("select id from t order by id")
            .fetch_all(&mut reader)
            .await
            .expect("read")
    }

    async fn insert(w: &Arc<Writer>, id: i64) -> Result<(), StoreError> {
        w.grouped(async |tx| tx.exec("insert into t (id) values ($1)", args![id]).await.map(|_| ()))
            .await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn queued_writes_share_one_commit_and_a_failed_one_rolls_back_alone() {
        let (w, dir) = writer().await;
        insert(&w, 1).await.expect("first insert");
        assert_eq!(w.group_stats(), (1, 1), "a write alone commits at once");

        // Eight writes queue behind the lock, one of which repeats an id.
        let held = w.lock().await.expect("lock");
        let ids = [2, 3, 4, 1, 5, 6, 7, 8];
        let mut tasks = Vec::new();
        for (i, id) in ids.into_iter().enumerate() {
            let queued = Arc::clone(&w);
            tasks.push(tokio::spawn(async move { insert(&queued, id).await }));
            while w.waiting.load(Ordering::Acquire) < i + 1 {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
        }
        drop(held);
        let mut outcomes = Vec::new();
        for task in tasks {
            outcomes.push(task.await.expect("task"));
        }
        for (id, outcome) in ids.iter().zip(&outcomes) {
            if *id == 1 {
                assert!(
                    matches!(outcome, Err(StoreError::Conflict { .. })),
                    "the repeated id fails alone: {outcome:?}"
                );
            } else {
                assert!(outcome.is_ok(), "write {id}: {outcome:?}");
            }
        }
        assert_eq!(w.group_stats(), (2, 9), "the eight queued writes shared one commit");

        // Everything committed is there, read from another connection.
        assert_eq!(committed_ids(&dir).await, (1..=8).collect::<Vec<_>>());
        w.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    /// An unawaited write is seen by the next write at once and committed with its group.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unawaited_write_is_seen_at_once_and_committed_with_its_group() {
        let (w, dir) = writer().await;
        let held = w.lock().await.expect("lock");
        let first = Arc::clone(&w);
        let unawaited = tokio::spawn(async move {
            first
                .grouped_unawaited(async |tx| {
                    tx.exec("insert into t (id) values ($1)", args![7_i64]).await.map(|_| ())
                })
                .await
        });
        while w.waiting.load(Ordering::Acquire) < 1 {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        let second = Arc::clone(&w);
        let seen = tokio::spawn(async move {
            second
                .grouped(async |tx| {
                    tx.row("select count(*) as n from t", &[], |r| {
                        crate::point::Columns::get::<i64>(r, "n")
                    })
                    .await
                })
                .await
        });
        while w.waiting.load(Ordering::Acquire) < 2 {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        drop(held);
        unawaited.await.expect("task").expect("applied");
        assert_eq!(seen.await.expect("task").expect("count"), Some(1), "the next write sees it");
        assert_eq!(w.group_stats(), (1, 2), "one commit for both");
        w.close().await;
        assert_eq!(committed_ids(&dir).await, vec![7], "committed");
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A write that panics half-way leaves nothing behind, and later writes go on.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_that_panics_half_way_is_rolled_back_and_the_writer_goes_on() {
        let (w, dir) = writer().await;
        for with_group in [false, true] {
            // With a group: an earlier member waits for the commit while the writer panics.
            let held = w.lock().await.expect("lock");
            let member = with_group.then(|| {
                let queued = Arc::clone(&w);
                tokio::spawn(async move { insert(&queued, 10).await })
            });
            while with_group && w.waiting.load(Ordering::Acquire) < 1 {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
            let panicking = Arc::clone(&w);
            let task = tokio::spawn(async move {
                panicking
                    .grouped(async |tx| {
                        tx.exec("insert into t (id) values ($1)", args![99_i64]).await?;
                        panic!("a bug half-way through a write");
                        #[allow(unreachable_code)]
                        Ok(())
                    })
                    .await
            });
            while w.waiting.load(Ordering::Acquire) < 1 + usize::from(with_group) {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
            drop(held);
            assert!(task.await.is_err(), "the task panicked");
            if let Some(member) = member {
                let outcome = member.await.expect("member task");
                assert!(
                    matches!(outcome, Err(StoreError::Unavailable(_))),
                    "the panicking write's group is not committed: {outcome:?}"
                );
            }
            insert(&w, 1 + i64::from(with_group)).await.expect("the next write");
        }
        let ids: Vec<i64> = sqlx::query_scalar("select id from t order by id")
            .fetch_all(&mut *w.lock().await.expect("lock"))
            .await
            .expect("read");
        assert_eq!(ids, vec![1, 2], "nothing of the panicked writes nor of their group is kept");
        w.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A group left open for a writer that never came is committed by its watchdog.
    #[tokio::test]
    async fn a_group_left_open_is_committed_by_its_watchdog() {
        let (w, dir) = writer().await;
        let mut outcome = {
            let mut state = w.acquire().await;
            let conn = state.direct.as_mut().expect("connection");
            conn.execute_batch("begin immediate; insert into t (id) values (42)").expect("insert");
            let group = super::Group { members: 1, done: tokio::sync::watch::Sender::new(None) };
            let outcome = group.done.subscribe();
            state.group = Some(group);
            w.watch_group();
            outcome
        };
        tokio::time::timeout(std::time::Duration::from_secs(10), outcome.wait_for(Option::is_some))
            .await
            .expect("the watchdog settles the group")
            .expect("an outcome");
        assert_eq!(*outcome.borrow(), Some(Ok(())));
        let n: i64 = sqlx::query_scalar("select count(*) from t where id = 42")
            .fetch_one(&mut *w.lock().await.expect("lock"))
            .await
            .expect("count");
        assert_eq!((n, w.group_stats()), (1, (1, 1)));
        w.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn writes_are_visible_to_the_next_writer_and_a_closed_writer_refuses() {
        let (w, dir) = writer().await;
        insert(&w, 1).await.expect("grouped insert");
        let n: i64 = sqlx::query_scalar("select count(*) from t")
            .fetch_one(&mut *w.lock().await.expect("lock"))
            .await
            .expect("count");
        assert_eq!(n, 1);
        w.close().await;
        assert!(matches!(insert(&w, 2).await, Err(StoreError::Unavailable(_))));
        assert!(matches!(w.lock().await, Err(StoreError::Unavailable(_))));
        let _ = std::fs::remove_dir_all(dir);
    }
}
