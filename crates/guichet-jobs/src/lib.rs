//! Guichet's background jobs: the handler trait, the registry of handlers, and the runner that
//! claims jobs from the store, runs them, and retries failures with exponential backoff.
//!
//! Jobs are rows in the database (see `guichet_store::JobStore`), enqueued by store methods in
//! the same transaction as the write that causes them. The runner may run a job more than once
//! (a worker can die after the work but before marking it done, and its lease then expires), so
//! every handler must be idempotent: sending an e-mail checks whether it was already sent,
//! purges are naturally repeatable, and so on.
//!
//! `guichet serve` runs a runner in-process; `guichet worker` runs runners alone, and on
//! PostgreSQL any number of them can share the queue.

#![forbid(unsafe_code)]

mod email;
mod housekeeping;
mod runner;
mod sms;
mod stats;

pub use email::SendEmail;
pub use housekeeping::{PurgeJobs, PurgeSessions};
pub use runner::{Outcome, Registry, Runner, RunnerConfig};
pub use sms::SendSms;
pub use stats::JobStats;

use async_trait::async_trait;
use guichet_store::Store;
use std::sync::Arc;
use time::OffsetDateTime;

/// What a handler gets besides its payload.
#[derive(Clone)]
pub struct JobContext {
    /// The store.
    pub store: Arc<dyn Store>,
    /// When the runner claimed the job.
    pub now: OffsetDateTime,
    /// Which attempt this is (1 for the first run).
    pub attempt: i32,
    /// Attempts allowed: on the last one, a handler records a definitive failure.
    pub max_attempts: i32,
}

/// One kind of background work.
#[async_trait]
pub trait JobHandler: Send + Sync + 'static {
    /// The unique name stored in the `kind` column ("housekeeping.purge_jobs").
    fn kind(&self) -> &'static str;

    /// Does the work. Must be idempotent: it may run again after a crash or a timeout.
    async fn run(&self, payload: serde_json::Value, ctx: JobContext) -> anyhow::Result<()>;
}
