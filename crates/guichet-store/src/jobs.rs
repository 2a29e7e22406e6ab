//! The background-job queue.

use async_trait::async_trait;
use guichet_domain::JobId;
use time::{Duration, OffsetDateTime};

use crate::StoreResult;

/// A job to enqueue.
#[derive(Clone, Debug, PartialEq)]
pub struct NewJob {
    /// The handler that runs it ("housekeeping.purge_jobs").
    pub kind: String,
    /// The handler's arguments.
    pub payload: serde_json::Value,
    /// While a job with the same key is pending or running, enqueueing another is a no-op:
    /// this is what makes periodic jobs safe with several workers.
    pub dedup_key: Option<String>,
    /// Not before this instant.
    pub run_at: OffsetDateTime,
    /// Attempts before the job is marked failed.
    pub max_attempts: i32,
}

impl NewJob {
    /// A job to run as soon as possible, with the default of 8 attempts.
    pub fn now(kind: &str, payload: serde_json::Value, now: OffsetDateTime) -> Self {
        Self { kind: kind.to_owned(), payload, dedup_key: None, run_at: now, max_attempts: 8 }
    }

    /// Sets the deduplication key.
    pub fn dedup(mut self, key: impl Into<String>) -> Self {
        self.dedup_key = Some(key.into());
        self
    }
}

/// A claimed job.
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    /// Identifier.
    pub id: JobId,
    /// Handler name.
    pub kind: String,
    /// Arguments.
    pub payload: serde_json::Value,
    /// Attempts so far, including the current one.
    pub attempts: i32,
    /// Attempts allowed.
    pub max_attempts: i32,
    /// Deduplication key, if any.
    pub dedup_key: Option<String>,
}

/// Job counts by state, for `/metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JobCounts {
    /// Waiting to run (including retries scheduled later).
    pub pending: i64,
    /// Claimed by a worker.
    pub running: i64,
    /// Finished successfully and not yet purged.
    pub done: i64,
    /// Gave up after `max_attempts`.
    pub failed: i64,
}

impl JobCounts {
    /// Adds `n` jobs of the stored `status` (both backends read counts grouped by status).
    pub fn add(&mut self, status: &str, n: i64) {
        match status {
            "pending" => self.pending += n,
            "running" => self.running += n,
            "done" => self.done += n,
            _ => self.failed += n,
        }
    }
}

/// Storage of jobs.
#[async_trait]
pub trait JobStore {
    /// Enqueues a job on its own (when there is no business write to join). Returns `None` when
    /// deduplicated against a pending or running job with the same key.
    async fn enqueue_job(&self, job: &NewJob) -> StoreResult<Option<JobId>>;

    /// Claims the oldest due job, locking it until `now + lease`. A running job whose lease has
    /// expired (its worker died) is claimable again; that is why handlers must be idempotent.
    async fn claim_job(&self, now: OffsetDateTime, lease: Duration) -> StoreResult<Option<Job>> {
        self.complete_and_claim(None, now, lease).await
    }

    /// Marks a claimed job done.
    async fn complete_job(&self, id: JobId, now: OffsetDateTime) -> StoreResult<()>;

    /// `complete_job` for `done` (a job that finished at that time), then `claim_job`, as one
    /// write: a busy runner's two steps between jobs. The job marked done is never the one
    /// claimed.
    async fn complete_and_claim(
        &self,
        done: Option<(JobId, OffsetDateTime)>,
        now: OffsetDateTime,
        lease: Duration,
    ) -> StoreResult<Option<Job>>;

    /// Records a failure: with `retry_at` the job goes back to pending for then, without it the
    /// job is marked failed for good.
    async fn fail_job(
        &self,
        id: JobId,
        error: &str,
        retry_at: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> StoreResult<()>;

    /// Counts by state.
    async fn job_counts(&self) -> StoreResult<JobCounts>;

    /// Deletes done jobs finished before `before`; returns how many.
    async fn purge_done_jobs(&self, before: OffsetDateTime) -> StoreResult<u64>;
}
