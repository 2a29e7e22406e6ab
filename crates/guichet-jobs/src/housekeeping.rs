//! Periodic housekeeping.

use async_trait::async_trait;
use time::Duration;

use crate::{JobContext, JobHandler};

/// Deletes finished jobs after a retention period so the queue table stays small.
/// Failed jobs are kept: an operator must look at them (they show in `/metrics`).
pub struct PurgeJobs {
    /// How long done jobs are kept.
    pub retention: Duration,
}

#[async_trait]
impl JobHandler for PurgeJobs {
    fn kind(&self) -> &'static str {
        "housekeeping.purge_jobs"
    }

    async fn run(&self, _payload: serde_json::Value, ctx: JobContext) -> anyhow::Result<()> {
        let purged = ctx.store.purge_done_jobs(ctx.now - self.retention).await?;
        tracing::info!(jobs.purged = purged, "purged finished jobs");
        Ok(())
    }
}

/// Deletes expired sessions (anonymous visitors' included).
pub struct PurgeSessions;

#[async_trait]
impl JobHandler for PurgeSessions {
    fn kind(&self) -> &'static str {
        "housekeeping.purge_sessions"
    }

    async fn run(&self, _payload: serde_json::Value, ctx: JobContext) -> anyhow::Result<()> {
        let purged = ctx.store.purge_expired_sessions(ctx.now).await?;
        tracing::info!(sessions.purged = purged, "purged expired sessions");
        Ok(())
    }
}
