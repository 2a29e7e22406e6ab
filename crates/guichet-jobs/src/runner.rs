//! The runner: claim, run, record, back off.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use guichet_domain::JobId;
use guichet_store::{NewJob, Store};
use time::{Duration, OffsetDateTime};
use tokio::sync::Notify;
use tracing::Instrument;

use crate::{JobContext, JobHandler, JobStats};

/// Handlers by kind, and which kinds recur.
#[derive(Default, Clone)]
pub struct Registry {
    handlers: HashMap<&'static str, Arc<dyn JobHandler>>,
    periodic: Vec<(&'static str, Duration)>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a handler.
    pub fn with(mut self, handler: impl JobHandler) -> Self {
        self.handlers.insert(handler.kind(), Arc::new(handler));
        self
    }

    /// Registers a handler that runs every `interval`. The next run is enqueued when one
    /// finishes, and once at start-up, always under the kind as deduplication key, so that any
    /// number of workers keep exactly one live occurrence.
    pub fn every(mut self, interval: Duration, handler: impl JobHandler) -> Self {
        self.periodic.push((handler.kind(), interval));
        self.with(handler)
    }

    fn interval_of(&self, kind: &str) -> Option<Duration> {
        self.periodic.iter().find(|(k, _)| *k == kind).map(|(_, i)| *i)
    }
}

/// Runner settings.
#[derive(Clone, Debug)]
pub struct RunnerConfig {
    /// Sleep between polls when the queue is empty.
    pub poll_interval: std::time::Duration,
    /// How long a claimed job is locked; a job still running then is presumed dead and claimed
    /// again, so handlers are also cut off at this limit.
    pub lease: Duration,
    /// First retry delay; doubled at each attempt.
    pub backoff_base: Duration,
    /// Longest retry delay.
    pub backoff_max: Duration,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        Self {
            poll_interval: std::time::Duration::from_secs(1),
            lease: Duration::minutes(5),
            backoff_base: Duration::seconds(10),
            backoff_max: Duration::hours(1),
        }
    }
}

/// What one step of the runner did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing was due.
    Empty,
    /// A job ran and succeeded.
    Done,
    /// A job failed and will be retried.
    Retry,
    /// A job failed for good.
    Failed,
}

/// Claims and runs jobs.
#[derive(Clone)]
pub struct Runner {
    store: Arc<dyn Store>,
    registry: Arc<Registry>,
    config: RunnerConfig,
    stats: Arc<JobStats>,
    wake: Arc<Notify>,
}

impl Runner {
    /// A runner over `store`.
    pub fn new(store: Arc<dyn Store>, registry: Registry, config: RunnerConfig) -> Self {
        Self {
            store,
            registry: Arc::new(registry),
            config,
            stats: Arc::new(JobStats::default()),
            wake: Arc::new(Notify::new()),
        }
    }

    /// The counters this runner keeps.
    pub fn stats(&self) -> Arc<JobStats> {
        self.stats.clone()
    }

    /// A handle that wakes the runner early (after enqueueing from the same process).
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Delay before retrying after `attempts` attempts: base × 2^(attempts−1), capped.
    pub fn backoff(&self, attempts: i32) -> Duration {
        let exp = u32::try_from(attempts.saturating_sub(1)).unwrap_or(0).min(20);
        let delay = self.config.backoff_base * 2_i32.pow(exp);
        delay.min(self.config.backoff_max)
    }

    /// Enqueues the first occurrence of every periodic job (deduplicated).
    pub async fn schedule_periodic(&self) -> anyhow::Result<()> {
        let now = OffsetDateTime::now_utc();
        for (kind, _) in &self.registry.periodic {
            let job = NewJob::now(kind, serde_json::Value::Null, now).dedup(*kind);
            self.store.enqueue_job(&job).await?;
        }
        Ok(())
    }

    /// Claims and runs one job.
    pub async fn run_once(&self) -> anyhow::Result<Outcome> {
        let mut done = None;
        let outcome = self.step(&mut done).await?;
        if let Some((id, at)) = done {
            self.store.complete_job(id, at).await?;
        }
        Ok(outcome)
    }

    /// Claims and runs one job, first marking `done` finished in the same round trip (and
    /// emptying it once written). A job that succeeds is left in `done` to be marked with the
    /// next claim, unless it recurs: its next occurrence is enqueued under the same
    /// deduplication key, which a job still marked running would hold.
    async fn step(&self, done: &mut Option<(JobId, OffsetDateTime)>) -> anyhow::Result<Outcome> {
        let now = OffsetDateTime::now_utc();
        let claimed = self.store.complete_and_claim(*done, now, self.config.lease).await?;
        *done = None;
        let Some(job) = claimed else {
            return Ok(Outcome::Empty);
        };
        let span = tracing::info_span!("job", job.id = %job.id, job.kind = %job.kind, job.attempt = job.attempts);
        let (outcome, finished) = self.process(job, now).instrument(span).await?;
        *done = finished;
        Ok(outcome)
    }

    /// Runs a claimed job and records its end, except a success to mark done (returned).
    async fn process(
        &self,
        job: guichet_store::Job,
        now: OffsetDateTime,
    ) -> anyhow::Result<(Outcome, Option<(JobId, OffsetDateTime)>)> {
        let result = if job.attempts > job.max_attempts {
            // Claimed again after its lease expired on the last allowed attempt.
            Err("abandonné après expiration du délai de traitement".to_owned())
        } else if let Some(handler) = self.registry.handlers.get(job.kind.as_str()).cloned() {
            let ctx = JobContext {
                store: self.store.clone(),
                now,
                attempt: job.attempts,
                max_attempts: job.max_attempts,
            };
            let payload = job.payload.clone();
            let lease = std::time::Duration::try_from(self.config.lease).unwrap_or_default();
            // Spawned so that a panicking handler fails its job instead of the runner.
            let task = tokio::spawn(async move { handler.run(payload, ctx).await });
            match tokio::time::timeout(lease, task).await {
                Ok(Ok(Ok(()))) => Ok(()),
                Ok(Ok(Err(e))) => Err(format!("{e:#}")),
                Ok(Err(join)) => Err(format!("handler panicked: {join}")),
                Err(_) => Err("timed out".to_owned()),
            }
        } else {
            // Perhaps enqueued by a newer version during a rolling upgrade: retry later.
            Err(format!("no handler for job kind {:?}", job.kind))
        };

        let finished = OffsetDateTime::now_utc();
        match result {
            Ok(()) => {
                let mut deferred = Some((job.id, finished));
                if let Some(interval) = self.registry.interval_of(&job.kind) {
                    self.store.complete_job(job.id, finished).await?;
                    deferred = None;
                    let next = NewJob::now(&job.kind, job.payload.clone(), finished + interval)
                        .dedup(job.kind.clone());
                    self.store.enqueue_job(&next).await?;
                }
                self.stats.record(&job.kind, "done");
                tracing::debug!("job done");
                Ok((Outcome::Done, deferred))
            }
            Err(error) if job.attempts < job.max_attempts => {
                let at = finished + self.backoff(job.attempts);
                self.store.fail_job(job.id, &error, Some(at), finished).await?;
                self.stats.record(&job.kind, "retry");
                tracing::warn!(error = %error, retry_at = %at, "job failed, will retry");
                Ok((Outcome::Retry, None))
            }
            Err(error) => {
                self.store.fail_job(job.id, &error, None, finished).await?;
                // A periodic job that failed for good still runs at its next time: one bad
                // night must not stop mail fetching or purges until the next restart.
                if let Some(interval) = self.registry.interval_of(&job.kind) {
                    let next = NewJob::now(&job.kind, job.payload.clone(), finished + interval)
                        .dedup(job.kind.clone());
                    self.store.enqueue_job(&next).await?;
                }
                self.stats.record(&job.kind, "failed");
                tracing::error!(error = %error, "job failed for good");
                Ok((Outcome::Failed, None))
            }
        }
    }

    /// Runs every due job now, and returns how many ran (tests and one-shot commands).
    pub async fn run_pending(&self) -> anyhow::Result<usize> {
        let mut n = 0;
        let mut done = None;
        // The last claim, which finds nothing, marks the last job done; should a claim fail
        // instead, the job before it is marked on its own before the error is returned.
        let ran = loop {
            match self.step(&mut done).await {
                Ok(Outcome::Empty) => break Ok(n),
                Ok(_) => n += 1,
                Err(e) => break Err(e),
            }
        };
        if let Some((id, at)) = done {
            self.store.complete_job(id, at).await?;
        }
        ran
    }

    /// Runs until `shutdown` completes. The job in progress is finished first.
    pub async fn run_until(&self, shutdown: impl Future<Output = ()>) {
        if let Err(e) = self.schedule_periodic().await {
            tracing::error!(error = %format!("{e:#}"), "could not schedule periodic jobs");
        }
        tokio::pin!(shutdown);
        let mut done = None;
        loop {
            let idle = match self.step(&mut done).await {
                Ok(Outcome::Empty) => true,
                Ok(_) => false,
                Err(e) => {
                    // The database is unreachable or similar: log once per poll and wait.
                    tracing::error!(error = %format!("{e:#}"), "job runner could not reach the store");
                    true
                }
            };
            if idle {
                tokio::select! {
                    () = &mut shutdown => break,
                    () = self.wake.notified() => {}
                    () = tokio::time::sleep(self.config.poll_interval) => {}
                }
            } else if futures_ready(&mut shutdown).await {
                break;
            }
        }
        if let Some((id, at)) = done
            && let Err(e) = self.store.complete_job(id, at).await
        {
            // Its lease will expire and it will run again (handlers are idempotent).
            tracing::error!(error = %format!("{e:#}"), "could not mark the last job done");
        }
        tracing::info!("job runner stopped");
    }
}

/// Whether `fut` is already complete, without waiting.
async fn futures_ready(fut: &mut std::pin::Pin<&mut impl Future<Output = ()>>) -> bool {
    tokio::select! {
        biased;
        () = fut.as_mut() => true,
        () = std::future::ready(()) => false,
    }
}
