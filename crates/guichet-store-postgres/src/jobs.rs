//! The job queue on PostgreSQL. Several workers may claim at once: `for update skip locked`
//! lets each take a different due row without waiting on the others.

use async_trait::async_trait;
use guichet_domain::JobId;
use guichet_store::{Job, JobCounts, JobStore, NewJob, StoreResult};
use sqlx::Connection as _;
use sqlx::{Postgres, Row, Transaction};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::batch::Batch;
use crate::{PgStore, map_err};

/// Inserts jobs inside a caller's transaction; returns the ids of those not deduplicated.
pub(crate) async fn insert_jobs(
    tx: &mut Transaction<'_, Postgres>,
    jobs: &[NewJob],
    now: OffsetDateTime,
) -> StoreResult<Vec<Option<JobId>>> {
    let mut ids = Vec::with_capacity(jobs.len());
    for job in jobs {
        let id = JobId::new();
        // `on conflict do nothing` covers the partial unique index on live dedup keys.
        let done = sqlx::query(
            "insert into jobs (id, kind, payload, dedup_key, max_attempts, run_at, created_at) \
             values ($1, $2, $3, $4, $5, $6, $7) on conflict do nothing",
        )
        .bind(id.as_uuid())
        .bind(&job.kind)
        .bind(&job.payload)
        .bind(&job.dedup_key)
        .bind(job.max_attempts)
        .bind(job.run_at)
        .bind(now)
        .execute(&mut **tx)
        .await
        .map_err(map_err)?;
        ids.push((done.rows_affected() == 1).then_some(id));
    }
    Ok(ids)
}

/// Adds the jobs' insert to `batch` (nothing if there are none), for writes that do not need
/// to know which were deduplicated.
pub(crate) fn jobs_part<'a>(batch: &mut Batch<'a>, jobs: &'a [NewJob], now: OffsetDateTime) {
    if jobs.is_empty() {
        return;
    }
    batch.part("new_jobs", |q| {
        q.push(
            "insert into jobs (id, kind, payload, dedup_key, max_attempts, run_at, created_at) ",
        );
        q.push_values(jobs, |mut row, job| {
            row.push_bind(JobId::new().as_uuid())
                .push_bind(&job.kind)
                .push_bind(&job.payload)
                .push_bind(&job.dedup_key)
                .push_bind(job.max_attempts)
                .push_bind(job.run_at)
                .push_bind(now);
        });
        // Covers the partial unique index on live dedup keys, as `insert_jobs`.
        q.push(" on conflict do nothing");
    });
}

#[async_trait]
impl JobStore for PgStore {
    async fn enqueue_job(&self, job: &NewJob) -> StoreResult<Option<JobId>> {
        let mut conn = self.pool.get().await?;
        let mut tx = conn.begin().await.map_err(map_err)?;
        let ids =
            insert_jobs(&mut tx, std::slice::from_ref(job), OffsetDateTime::now_utc()).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(ids.into_iter().next().flatten())
    }

    async fn complete_and_claim(
        &self,
        done: Option<(JobId, OffsetDateTime)>,
        now: OffsetDateTime,
        lease: Duration,
    ) -> StoreResult<Option<Job>> {
        // The oldest due pending job (the (status, run_at) index) and the lease that expired
        // first (`jobs_leases_idx`, migration 20261130000010) are each found by walking an
        // index; the older by `run_at` is claimed. One `where … or …`
        // gathered every due job and sorted them all: milliseconds per claim once thousands of
        // e-mails wait, which is exactly when the runner must keep up. Both candidates are
        // locked (`skip locked`: concurrent claimers take others) until this statement ends.
        // The job done before is marked so in the same statement (module `batch`), and never
        // taken as the expired candidate: one statement cannot change a row twice.
        let (done_id, done_at) = done.map(|(id, at)| (id.as_uuid(), at)).unzip();
        let row = sqlx::query(
            "with done as (update jobs set status = 'done', locked_until = null, finished_at = $4 \
                           where id = $3), \
                  pending as (select id, run_at from jobs where status = 'pending' and run_at <= $1 \
                              order by run_at limit 1 for update skip locked), \
                  expired as (select id, run_at from jobs \
                              where status = 'running' and locked_until < $1 \
                              and id is distinct from $3 \
                              order by locked_until limit 1 for update skip locked) \
             update jobs set status = 'running', attempts = attempts + 1, locked_until = $2 \
             where id = (select id from (select * from pending union all select * from expired) c \
                         order by run_at limit 1) \
             returning id, kind, payload, attempts, max_attempts, dedup_key",
        )
        .bind(now)
        .bind(now + lease)
        .bind(done_id)
        .bind(done_at)
        .fetch_optional(&mut *self.pool.get().await?)
        .await
        .map_err(map_err)?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(Job {
            id: JobId::from_uuid(row.try_get::<Uuid, _>("id").map_err(map_err)?),
            kind: row.try_get("kind").map_err(map_err)?,
            payload: row.try_get("payload").map_err(map_err)?,
            attempts: row.try_get("attempts").map_err(map_err)?,
            max_attempts: row.try_get("max_attempts").map_err(map_err)?,
            dedup_key: row.try_get("dedup_key").map_err(map_err)?,
        }))
    }

    async fn complete_job(&self, id: JobId, now: OffsetDateTime) -> StoreResult<()> {
        sqlx::query(
            "update jobs set status = 'done', locked_until = null, finished_at = $2 where id = $1",
        )
        .bind(id.as_uuid())
        .bind(now)
        .execute(&mut *self.pool.get().await?)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn fail_job(
        &self,
        id: JobId,
        error: &str,
        retry_at: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        let q = match retry_at {
            Some(at) => sqlx::query(
                "update jobs set status = 'pending', locked_until = null, last_error = $2, \
                 run_at = $3 where id = $1",
            )
            .bind(id.as_uuid())
            .bind(error)
            .bind(at),
            None => sqlx::query(
                "update jobs set status = 'failed', locked_until = null, last_error = $2, \
                 finished_at = $3 where id = $1",
            )
            .bind(id.as_uuid())
            .bind(error)
            .bind(now),
        };
        q.execute(&mut *self.pool.get().await?).await.map_err(map_err)?;
        Ok(())
    }

    async fn job_counts(&self) -> StoreResult<JobCounts> {
        let rows = sqlx::query("select status, count(*) as n from jobs group by status")
            .fetch_all(&mut *self.pool.get().await?)
            .await
            .map_err(map_err)?;
        let mut counts = JobCounts::default();
        for row in rows {
            let status: String = row.try_get("status").map_err(map_err)?;
            let n: i64 = row.try_get("n").map_err(map_err)?;
            counts.add(&status, n);
        }
        Ok(counts)
    }

    async fn purge_done_jobs(&self, before: OffsetDateTime) -> StoreResult<u64> {
        let done = sqlx::query("delete from jobs where status = 'done' and finished_at < $1")
            .bind(before)
            .execute(&mut *self.pool.get().await?)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected())
    }
}
