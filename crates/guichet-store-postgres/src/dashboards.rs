//! Dashboard aggregates and request timings on PostgreSQL.

use async_trait::async_trait;
use guichet_domain::metrics::{Timing, TimingEvent, classify, nearest_rank};
use guichet_domain::request::{ActorKind, Channel};
use guichet_domain::workflow::Phase;
use guichet_domain::{RequestId, ServiceId, TenantId};
use guichet_store::{
    Acknowledgements, Backlog, DashboardQuery, DashboardStore, NewEvent, Percentiles, PublicStats,
    StoreError, StoreResult, SubmissionRecords, VolumeCount,
};
use sqlx::Connection as _;
use sqlx::{Postgres, Transaction};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::batch::Batch;
use crate::requests::write_records;
use crate::{PgStore, col, map_err, ts, ts_opt};

type Row = sqlx::postgres::PgRow;

const TIMING_COLUMNS: &str = "submitted_at, phase, acknowledged_at, first_response_at, closed_at, \
     waiting_us, waiting_since, reopened, processing_us";

fn read_timing(row: &Row) -> StoreResult<Timing> {
    let phase: String = col(row, "phase")?;
    Ok(Timing {
        submitted_at: ts(row, "submitted_at")?,
        phase: Phase::parse(&phase).ok_or_else(|| StoreError::Corrupt(format!("phase {phase}")))?,
        acknowledged_at: ts_opt(row, "acknowledged_at")?,
        first_response_at: ts_opt(row, "first_response_at")?,
        closed_at: ts_opt(row, "closed_at")?,
        waiting_us: col(row, "waiting_us")?,
        waiting_since: ts_opt(row, "waiting_since")?,
        reopened: col(row, "reopened")?,
        processing_us: col(row, "processing_us")?,
    })
}

pub(crate) async fn load_timing(
    tx: &mut Transaction<'_, Postgres>,
    id: RequestId,
) -> StoreResult<Timing> {
    let sql = format!("select {TIMING_COLUMNS} from requests where id = $1");
    let row = sqlx::query(&sql).bind(id.as_uuid()).fetch_one(&mut **tx).await.map_err(map_err)?;
    read_timing(&row)
}

pub(crate) async fn store_timing(
    tx: &mut Transaction<'_, Postgres>,
    id: RequestId,
    t: &Timing,
) -> StoreResult<()> {
    sqlx::query(
        "update requests set acknowledged_at = $2, first_response_at = $3, closed_at = $4, \
         waiting_us = $5, waiting_since = $6, reopened = $7, processing_us = $8 where id = $1",
    )
    .bind(id.as_uuid())
    .bind(t.acknowledged_at)
    .bind(t.first_response_at)
    .bind(t.closed_at)
    .bind(t.waiting_us)
    .bind(t.waiting_since)
    .bind(t.reopened)
    .bind(t.processing_us)
    .execute(&mut **tx)
    .await
    .map_err(map_err)?;
    Ok(())
}

/// What a phase period copies from its request (see the migration `period_dimensions`).
pub(crate) const PERIOD_DIMENSIONS: &str =
    "service_id, channel, commune_id, submitted_at, deemed_decision_on";
const PERIOD_SOURCE: &str = "r.service_id, r.channel, coalesce(r.commune_tenant_id, r.tenant_id), \
     r.submitted_at, r.deemed_decision_on";

/// Adds the start of a request's first phase period to `batch`, its dimensions read from the
/// row the batch's part `request` inserts (`returning *`).
pub(crate) fn start_period_part<'a>(
    batch: &mut Batch<'a>,
    tenant: TenantId,
    phase: Phase,
    at: OffsetDateTime,
) {
    batch.part("first_period", |q| {
        q.push(format_args!(
            "insert into request_periods (request_id, seq, tenant_id, phase, started_at, {PERIOD_DIMENSIONS}) \
             select r.id, 0, "
        ))
        .push_bind(tenant.as_uuid())
        .push(", ")
        .push_bind(phase.as_str())
        .push(", ")
        .push_bind(at)
        .push(format_args!(", {PERIOD_SOURCE} from request r"));
    });
}

/// Ends the current phase period and starts the next, when the phase changes.
pub(crate) async fn change_period(
    tx: &mut Transaction<'_, Postgres>,
    request: RequestId,
    from: Phase,
    to: Phase,
    at: OffsetDateTime,
) -> StoreResult<()> {
    if from == to {
        // Same phase: the running period keeps going, with the deemed-decision date now in force.
        sqlx::query(
            "update request_periods set deemed_decision_on = \
             (select r.deemed_decision_on from requests r where r.id = $1) \
             where request_id = $1 and ended_at is null",
        )
        .bind(request.as_uuid())
        .execute(&mut **tx)
        .await
        .map_err(map_err)?;
        return Ok(());
    }
    sqlx::query(
        "update request_periods set ended_at = $2 where request_id = $1 and ended_at is null",
    )
    .bind(request.as_uuid())
    .bind(at)
    .execute(&mut **tx)
    .await
    .map_err(map_err)?;
    sqlx::query(&format!(
        "insert into request_periods (request_id, seq, tenant_id, phase, started_at, {PERIOD_DIMENSIONS}) \
         select $1, (select coalesce(max(p.seq), -1) + 1 from request_periods p where p.request_id = $1), \
         r.tenant_id, $2, $3, {PERIOD_SOURCE} from requests r where r.id = $1",
    ))
    .bind(request.as_uuid())
    .bind(to.as_str())
    .bind(at)
    .execute(&mut **tx)
    .await
    .map_err(map_err)?;
    Ok(())
}

/// Applies what events mean for their requests' timings (acknowledgement, first response),
/// inside the transaction that writes them. Status changes are applied by `change_status`,
/// which knows the phases.
pub(crate) async fn apply_event_timings(
    tx: &mut Transaction<'_, Postgres>,
    events: &[NewEvent],
    folded: Option<RequestId>,
) -> StoreResult<()> {
    for e in events {
        let Some(request) = e.request_id else { continue };
        // Already in the row, written with it (`fold_own_timings`).
        if folded == Some(request) {
            continue;
        }
        let what = classify(&e.kind, e.actor_kind == ActorKind::Agent, e.citizen_visible, &e.data);
        for w in what {
            let column = match w {
                TimingEvent::Acknowledged => "acknowledged_at",
                TimingEvent::Response => "first_response_at",
                _ => continue,
            };
            let sql =
                format!("update requests set {column} = coalesce({column}, $2) where id = $1");
            sqlx::query(&sql)
                .bind(request.as_uuid())
                .bind(e.at)
                .execute(&mut **tx)
                .await
                .map_err(map_err)?;
        }
    }
    Ok(())
}

/// Placeholders for a tenant list, binding them.
fn tenant_list(tenants: &[TenantId], binds: &mut Vec<Bind>) -> String {
    if tenants.is_empty() {
        return "null".to_owned();
    }
    tenants
        .iter()
        .map(|t| {
            binds.push(Bind::Id(t.as_uuid()));
            format!("${}", binds.len())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A bound value of a dynamically built query.
enum Bind {
    Id(Uuid),
    At(OffsetDateTime),
    Text(String),
}

/// `where` conditions of a dashboard query on `requests r`; binds are appended in order.
fn scope(q: &DashboardQuery, period: Option<&str>, binds: &mut Vec<Bind>) -> String {
    let mut parts = Vec::new();
    let tenants: Vec<String> = q
        .tenants
        .iter()
        .map(|t| {
            binds.push(Bind::Id(t.as_uuid()));
            format!("${}", binds.len())
        })
        .collect();
    parts.push(if tenants.is_empty() {
        "1 = 0".to_owned()
    } else {
        format!("r.tenant_id in ({})", tenants.join(", "))
    });
    if let Some(c) = q.commune {
        binds.push(Bind::Id(c.as_uuid()));
        parts.push(format!("coalesce(r.commune_tenant_id, r.tenant_id) = ${}", binds.len()));
    }
    if let Some(s) = q.service {
        binds.push(Bind::Id(s.as_uuid()));
        parts.push(format!("r.service_id = ${}", binds.len()));
    }
    if let Some(c) = q.channel {
        binds.push(Bind::Text(c.as_str().to_owned()));
        parts.push(format!("r.channel = ${}", binds.len()));
    }
    if let Some(column) = period {
        binds.push(Bind::At(q.from));
        let from = binds.len();
        binds.push(Bind::At(q.to));
        parts.push(format!("r.{column} >= ${from} and r.{column} < ${}", binds.len()));
    }
    parts.join(" and ")
}

/// `where` conditions of a dashboard query on phase periods `x` (which carry the request's
/// dimensions), without dates; binds are appended in order.
fn period_scope(q: &DashboardQuery, binds: &mut Vec<Bind>) -> String {
    let mut parts = vec![if q.tenants.is_empty() {
        "1 = 0".to_owned()
    } else {
        format!("x.tenant_id in ({})", tenant_list(&q.tenants, binds))
    }];
    if let Some(c) = q.commune {
        binds.push(Bind::Id(c.as_uuid()));
        parts.push(format!("x.commune_id = ${}", binds.len()));
    }
    if let Some(s) = q.service {
        binds.push(Bind::Id(s.as_uuid()));
        parts.push(format!("x.service_id = ${}", binds.len()));
    }
    if let Some(c) = q.channel {
        binds.push(Bind::Text(c.as_str().to_owned()));
        parts.push(format!("x.channel = ${}", binds.len()));
    }
    parts.join(" and ")
}

macro_rules! bound {
    ($sql:expr, $binds:expr) => {{
        let mut query = sqlx::query($sql);
        for b in $binds {
            query = match b {
                Bind::Id(u) => query.bind(*u),
                Bind::At(t) => query.bind(*t),
                Bind::Text(s) => query.bind(s.as_str()),
            };
        }
        query
    }};
}

/// The integers an `array_agg` aggregated (column `v`; none when it is null).
fn values(row: &Row) -> StoreResult<Vec<i64>> {
    Ok(col::<Option<Vec<i64>>>(row, "v")?.unwrap_or_default())
}

/// Nearest-rank median and 90th percentile of sorted values.
fn ranked(service: Option<ServiceId>, sorted: &[i64]) -> Option<Percentiles> {
    Some(Percentiles {
        service,
        n: i64::try_from(sorted.len()).ok()?,
        median_us: nearest_rank(sorted, 50)?,
        p90_us: nearest_rank(sorted, 90)?,
    })
}

#[async_trait]
impl DashboardStore for PgStore {
    async fn volume_counts(&self, q: &DashboardQuery) -> StoreResult<Vec<VolumeCount>> {
        let mut binds = Vec::new();
        let cond = scope(q, Some("submitted_at"), &mut binds);
        let sql = format!(
            "select r.service_id, r.channel, coalesce(r.commune_tenant_id, r.tenant_id) as commune, \
             count(*) as n from requests r where {cond} group by r.service_id, r.channel, \
             coalesce(r.commune_tenant_id, r.tenant_id)"
        );
        let rows =
            bound!(&sql, &binds).fetch_all(&mut *self.pool.get().await?).await.map_err(map_err)?;
        rows.iter()
            .map(|row| {
                let channel: String = col(row, "channel")?;
                Ok(VolumeCount {
                    service: ServiceId::from_uuid(col(row, "service_id")?),
                    channel: Channel::parse(&channel)
                        .ok_or_else(|| StoreError::Corrupt(format!("channel {channel}")))?,
                    commune: TenantId::from_uuid(col(row, "commune")?),
                    n: col(row, "n")?,
                })
            })
            .collect()
    }

    async fn volume_by_hour(&self, q: &DashboardQuery) -> StoreResult<Vec<(i64, i64)>> {
        let mut binds = Vec::new();
        let cond = scope(q, Some("submitted_at"), &mut binds);
        let sql = format!(
            "select floor(extract(epoch from r.submitted_at) / 3600)::bigint as h, count(*) as n from requests r where {cond} group by 1 order by 1"
        );
        let rows =
            bound!(&sql, &binds).fetch_all(&mut *self.pool.get().await?).await.map_err(map_err)?;
        rows.iter().map(|row| Ok((col(row, "h")?, col(row, "n")?))).collect()
    }

    async fn processing_times(&self, q: &DashboardQuery) -> StoreResult<Vec<Percentiles>> {
        let mut binds = Vec::new();
        let cond = scope(q, Some("closed_at"), &mut binds);
        // The values come from a covering index, one aggregated row per service: moving tens
        // of thousands of single-value rows through the driver cost more than the scan.
        // They are ranked in Rust, with the one definition of the domain.
        let sql = format!(
            "select r.service_id, array_agg(r.processing_us) as v from requests r \
             where {cond} and r.processing_us is not null group by r.service_id"
        );
        let rows =
            bound!(&sql, &binds).fetch_all(&mut *self.pool.get().await?).await.map_err(map_err)?;
        let mut out = Vec::with_capacity(rows.len() + 1);
        let mut all = Vec::new();
        for row in &rows {
            let service = ServiceId::from_uuid(sqlx::Row::try_get(row, 0).map_err(map_err)?);
            let mut v = values(row)?;
            all.extend_from_slice(&v);
            v.sort_unstable();
            out.extend(ranked(Some(service), &v));
        }
        out.sort_by_key(|p| p.service);
        all.sort_unstable();
        out.extend(ranked(None, &all));
        Ok(out)
    }

    async fn first_response_times(
        &self,
        q: &DashboardQuery,
    ) -> StoreResult<(Option<Percentiles>, i64)> {
        let mut binds = Vec::new();
        let cond = scope(q, Some("submitted_at"), &mut binds);
        let sql = format!(
            "select array_agg((extract(epoch from (r.first_response_at - r.submitted_at)) * 1000000)::bigint) filter (where r.first_response_at is not null) as v, \
             count(*) - count(r.first_response_at) as without from requests r where {cond}"
        );
        let row =
            bound!(&sql, &binds).fetch_one(&mut *self.pool.get().await?).await.map_err(map_err)?;
        let mut v = values(&row)?;
        v.sort_unstable();
        Ok((ranked(None, &v), col(&row, "without")?))
    }

    async fn backlog(
        &self,
        q: &DashboardQuery,
        at: OffsetDateTime,
        due_soon_days: i64,
    ) -> StoreResult<Backlog> {
        let mut binds = Vec::new();
        let push = |t: OffsetDateTime, binds: &mut Vec<Bind>| {
            binds.push(Bind::At(t));
            binds.len()
        };
        let now = push(at, &mut binds);
        let d7 = push(at - time::Duration::days(7), &mut binds);
        let d30 = push(at - time::Duration::days(30), &mut binds);
        let d90 = push(at - time::Duration::days(90), &mut binds);
        let today = guichet_domain::clock::paris(at).date();
        binds.push(Bind::Text(today.to_string()));
        let today_i = binds.len();
        binds.push(Bind::Text((today + time::Duration::days(due_soon_days)).to_string()));
        let soon_i = binds.len();
        let sums = format!(
            "count(*) as open, \
             coalesce(sum(case when x.submitted_at >= ${d7} then 1 else 0 end), 0) as a, \
             coalesce(sum(case when x.submitted_at < ${d7} and x.submitted_at >= ${d30} then 1 else 0 end), 0) as b, \
             coalesce(sum(case when x.submitted_at < ${d30} and x.submitted_at >= ${d90} then 1 else 0 end), 0) as c, \
             coalesce(sum(case when x.submitted_at < ${d90} then 1 else 0 end), 0) as d, \
             coalesce(sum(case when x.deemed_decision_on < ${today_i}::date then 1 else 0 end), 0) as overdue, \
             coalesce(sum(case when x.deemed_decision_on >= ${today_i}::date and x.deemed_decision_on <= ${soon_i}::date then 1 else 0 end), 0) as soon"
        );
        let sql = if at >= OffsetDateTime::now_utc() - time::Duration::seconds(5) {
            // Now: the requests' current phase says it (a covering partial index).
            let cond = scope(q, None, &mut binds);
            format!(
                "select {sums} from (select r.submitted_at, r.deemed_decision_on from requests r \
                 where {cond} and r.phase <> 'closed' and r.submitted_at <= ${now}) x"
            )
        } else {
            // A past moment: the pending phase periods containing it, among those that end
            // after it or have not ended (the others are history, never read). The periods
            // carry the request's dimensions, so this reads one covering index.
            let cond = period_scope(q, &mut binds);
            format!(
                "select {sums} from (\
                 select x.submitted_at, x.deemed_decision_on from request_periods x where {cond} \
                 and x.phase <> 'closed' and x.ended_at > ${now} and x.started_at <= ${now} \
                 union all \
                 select x.submitted_at, x.deemed_decision_on from request_periods x where {cond} \
                 and x.phase <> 'closed' and x.ended_at is null and x.started_at <= ${now}) x"
            )
        };
        let row =
            bound!(&sql, &binds).fetch_one(&mut *self.pool.get().await?).await.map_err(map_err)?;
        Ok(Backlog {
            open: col(&row, "open")?,
            under_7_days: col(&row, "a")?,
            under_30_days: col(&row, "b")?,
            under_90_days: col(&row, "c")?,
            over_90_days: col(&row, "d")?,
            overdue: col(&row, "overdue")?,
            due_soon: col(&row, "soon")?,
        })
    }

    async fn acknowledgements(&self, q: &DashboardQuery) -> StoreResult<Acknowledgements> {
        let mut binds = Vec::new();
        let cond = scope(q, Some("submitted_at"), &mut binds);
        let sql = format!(
            "select count(*) as due, \
             coalesce(sum(case when r.acknowledged_at is not null and r.acknowledged_at < r.ack_due_at then 1 else 0 end), 0) as in_time \
             from requests r where {cond} and r.ack_due_at is not null"
        );
        let row =
            bound!(&sql, &binds).fetch_one(&mut *self.pool.get().await?).await.map_err(map_err)?;
        Ok(Acknowledgements { due: col(&row, "due")?, in_time: col(&row, "in_time")? })
    }

    async fn public_stats(&self, tenant: TenantId) -> StoreResult<Option<PublicStats>> {
        let row = sqlx::query(
            "select enabled, reason, changed_by, changed_at from public_stats where tenant_id = $1",
        )
        .bind(tenant.as_uuid())
        .fetch_optional(&mut *self.pool.get().await?)
        .await
        .map_err(map_err)?;
        row.map(|row| {
            Ok(PublicStats {
                enabled: col(&row, "enabled")?,
                reason: col(&row, "reason")?,
                changed_by: col::<Option<Uuid>>(&row, "changed_by")?
                    .map(guichet_domain::AgentId::from_uuid),
                changed_at: ts(&row, "changed_at")?,
            })
        })
        .transpose()
    }

    async fn set_public_stats(
        &self,
        tenant: TenantId,
        s: &PublicStats,
        records: &SubmissionRecords,
    ) -> StoreResult<()> {
        let now = OffsetDateTime::now_utc();
        let mut conn = self.pool.get().await?;
        let mut tx = conn.begin().await.map_err(map_err)?;
        sqlx::query(
            "insert into public_stats (tenant_id, enabled, reason, changed_by, changed_at) \
             values ($1, $2, $3, $4, $5) on conflict (tenant_id) do update set enabled = $2, \
             reason = coalesce($3, public_stats.reason), changed_by = $4, changed_at = $5",
        )
        .bind(tenant.as_uuid())
        .bind(s.enabled)
        .bind(&s.reason)
        .bind(s.changed_by.map(|a| a.as_uuid()))
        .bind(s.changed_at)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        write_records(&mut tx, None, records, now, None).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn timings(
        &self,
        after: Option<RequestId>,
        limit: i64,
    ) -> StoreResult<Vec<(RequestId, ServiceId, Timing)>> {
        let sql = format!(
            "select id, service_id, {TIMING_COLUMNS} from requests where ($1 is null or id > $1) \
             order by id limit $2"
        );
        let rows = sqlx::query(&sql)
            .bind(after.map(|a| a.as_uuid()))
            .bind(limit)
            .fetch_all(&mut *self.pool.get().await?)
            .await
            .map_err(map_err)?;
        rows.iter()
            .map(|row| {
                Ok((
                    RequestId::from_uuid(col(row, "id")?),
                    ServiceId::from_uuid(col(row, "service_id")?),
                    read_timing(row)?,
                ))
            })
            .collect()
    }

    async fn timeline_events_between(
        &self,
        first: RequestId,
        last: RequestId,
    ) -> StoreResult<Vec<guichet_store::Event>> {
        let rows = sqlx::query(
            "select id, tenant_id, lane, seq, request_id, at, actor_kind, actor_id, channel, kind, \
             citizen_visible, data, prev_hash, hash from events \
             where request_id >= $1 and request_id <= $2 and kind <> 'viewed' \
             order by request_id, pos nulls first, seq",
        )
        .bind(first.as_uuid())
        .bind(last.as_uuid())
        .fetch_all(&mut *self.pool.get().await?)
        .await
        .map_err(map_err)?;
        rows.iter().map(crate::requests::read_event).collect()
    }

    async fn set_timing(&self, id: RequestId, timing: &Timing) -> StoreResult<()> {
        let mut conn = self.pool.get().await?;
        let mut tx = conn.begin().await.map_err(map_err)?;
        store_timing(&mut tx, id, timing).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn period_drift(&self, repair: bool) -> StoreResult<u64> {
        let drifted = "p.service_id is distinct from r.service_id \
             or p.channel is distinct from r.channel \
             or p.commune_id is distinct from coalesce(r.commune_tenant_id, r.tenant_id) \
             or p.submitted_at is distinct from r.submitted_at \
             or (p.ended_at is null and p.deemed_decision_on is distinct from r.deemed_decision_on)";
        if !repair {
            let sql = format!(
                "select count(*) from request_periods p join requests r on r.id = p.request_id \
                 where {drifted}"
            );
            let n: i64 = sqlx::query_scalar(&sql)
                .fetch_one(&mut *self.pool.get().await?)
                .await
                .map_err(map_err)?;
            return Ok(u64::try_from(n).unwrap_or_default());
        }
        let sql = format!(
            "update request_periods as p set service_id = r.service_id, channel = r.channel, \
             commune_id = coalesce(r.commune_tenant_id, r.tenant_id), submitted_at = r.submitted_at, \
             deemed_decision_on = case when p.ended_at is null then r.deemed_decision_on \
             else p.deemed_decision_on end \
             from requests r where r.id = p.request_id and ({drifted})"
        );
        let done =
            sqlx::query(&sql).execute(&mut *self.pool.get().await?).await.map_err(map_err)?;
        Ok(done.rows_affected())
    }
}
