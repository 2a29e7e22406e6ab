//! Territory imports on PostgreSQL: one transaction for the whole territory.

use async_trait::async_trait;
use guichet_store::{ImportOutcome, StoreResult, TerritoryImport, TerritoryStore};
use sqlx::Connection as _;
use time::OffsetDateTime;

use crate::{PgStore, map_err, tenants::insert_tenant};

#[async_trait]
impl TerritoryStore for PgStore {
    async fn import_territory(&self, import: &TerritoryImport) -> StoreResult<ImportOutcome> {
        let now = OffsetDateTime::now_utc();
        let mut conn = self.pool.get().await?;
        let mut tx = conn.begin().await.map_err(map_err)?;
        // The marker goes in first: a second import of the same name stops here, and a failed
        // import rolls the marker back with everything else.
        let marked = sqlx::query(
            "insert into imports (name, loaded_at) values ($1, $2) on conflict do nothing",
        )
        .bind(&import.name)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if marked.rows_affected() == 0 {
            return Ok(ImportOutcome::AlreadyLoaded);
        }
        for tenant in &import.tenants {
            insert_tenant(&mut tx, tenant, now).await?;
        }
        for agent in &import.agents {
            sqlx::query(
                "insert into agents (id, email, password_hash, display_name, created_at) \
                 values ($1, $2, $3, $4, $5)",
            )
            .bind(agent.id.as_uuid())
            .bind(agent.email.as_str())
            .bind(&agent.password_hash)
            .bind(&agent.display_name)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
            for (tenant, role) in &agent.memberships {
                sqlx::query(
                    "insert into memberships (agent_id, tenant_id, role) values ($1, $2, $3)",
                )
                .bind(agent.id.as_uuid())
                .bind(tenant.as_uuid())
                .bind(role.as_str())
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
            }
        }
        for c in &import.citizens {
            sqlx::query(
                "insert into citizens (id, email, password_hash, given_name, family_name, phone, \
                 insee_code, email_verified_at, created_at) \
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(c.id.as_uuid())
            .bind(c.email.as_str())
            .bind(&c.password_hash)
            .bind(&c.given_name)
            .bind(&c.family_name)
            .bind(c.phone.as_ref().map(|p| p.as_str()))
            .bind(c.insee_code.as_ref().map(|i| i.as_str()))
            .bind(c.email_verified.then_some(now))
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        }
        for service in &import.services {
            crate::services::insert_service(&mut tx, service).await?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(ImportOutcome::Loaded)
    }

    async fn bulk_insert_requests(
        &self,
        requests: &[(guichet_store::NewRequest, String)],
        events: &[guichet_store::NewEvent],
    ) -> StoreResult<()> {
        const COLUMNS: usize = 25;
        let mut conn = self.pool.get().await?;
        let mut tx = conn.begin().await.map_err(map_err)?;
        // Multi-row inserts: one statement per 1,000 rows keeps the parameter count under both
        // databases' limits and the load at hundreds of thousands of rows a minute.
        for chunk in requests.chunks(1000) {
            let mut sql = String::from(
                "insert into requests (id, tenant_id, commune_tenant_id, service_id, citizen_id, reference, \
                 channel, status, answers, submitter, submitted_at, deemed_decision_on, created_at, \
                 updated_at, phase, search_text, assignee_id, ack_due_at, acknowledged_at, \
                 first_response_at, closed_at, waiting_us, waiting_since, reopened, processing_us) values ",
            );
            for i in 0..chunk.len() {
                let n = i * COLUMNS;
                let placeholders: Vec<String> =
                    (1..=COLUMNS).map(|k| format!("${}", n + k)).collect();
                if i > 0 {
                    sql.push(',');
                }
                sql.push('(');
                sql.push_str(&placeholders.join(", "));
                sql.push(')');
            }
            let mut q = sqlx::query(&sql);
            for (r, reference) in chunk {
                let t = r.history.unwrap_or_else(|| {
                    guichet_domain::metrics::Timing::new(
                        r.submitted_at,
                        guichet_domain::workflow::Phase::parse(&r.phase)
                            .unwrap_or(guichet_domain::workflow::Phase::Open),
                    )
                });
                q = q
                    .bind(r.id.as_uuid())
                    .bind(r.tenant_id.as_uuid())
                    .bind(r.commune_tenant_id.map(|t| t.as_uuid()))
                    .bind(r.service_id.as_uuid())
                    .bind(r.citizen_id.map(|c| c.as_uuid()))
                    .bind(reference.as_str())
                    .bind(r.channel.as_str())
                    .bind(r.status.as_str())
                    .bind(sqlx::types::Json(&r.answers))
                    .bind(sqlx::types::Json(&r.submitter))
                    .bind(r.submitted_at)
                    .bind(r.deemed_decision_on)
                    .bind(r.submitted_at)
                    .bind(r.submitted_at)
                    .bind(r.phase.as_str())
                    .bind(guichet_store::records::search_document(
                        reference,
                        r.tenant_id.as_uuid(),
                        &r.search_text,
                    ))
                    .bind(None::<uuid::Uuid>)
                    .bind(r.ack_due_at)
                    .bind(t.acknowledged_at)
                    .bind(t.first_response_at)
                    .bind(t.closed_at)
                    .bind(t.waiting_us)
                    .bind(t.waiting_since)
                    .bind(t.reopened)
                    .bind(t.processing_us);
            }
            q.execute(&mut *tx).await.map_err(map_err)?;
            // The phase periods the generated timing implies (a generated history has no
            // events): pending from submission, then waiting or closed from when it started.
            let ids: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 1)).collect();
            let dims = crate::dashboards::PERIOD_DIMENSIONS;
            let sql = format!(
                "insert into request_periods (request_id, seq, tenant_id, phase, started_at, ended_at, {dims}) \
                 select r.id, 0, r.tenant_id, case when r.closed_at is not null or r.waiting_since is not null \
                 then 'open' else r.phase end, r.submitted_at, coalesce(r.closed_at, r.waiting_since), \
                 r.service_id, r.channel, coalesce(r.commune_tenant_id, r.tenant_id), r.submitted_at, \
                 r.deemed_decision_on from requests r where r.id in ({ids}) \
                 union all \
                 select r.id, 1, r.tenant_id, r.phase, coalesce(r.closed_at, r.waiting_since), null, \
                 r.service_id, r.channel, coalesce(r.commune_tenant_id, r.tenant_id), r.submitted_at, \
                 r.deemed_decision_on from requests r where r.id in ({ids}) \
                 and (r.closed_at is not null or r.waiting_since is not null)",
                ids = ids.join(", ")
            );
            let mut q = sqlx::query(&sql);
            for (r, _) in chunk {
                q = q.bind(r.id.as_uuid());
            }
            q.execute(&mut *tx).await.map_err(map_err)?;
        }
        insert_chained_events(&mut tx, events).await?;
        // Keep the counters ahead of the generated numbers (the reference's last part).
        let mut highest: std::collections::HashMap<(uuid::Uuid, i32), i64> =
            std::collections::HashMap::new();
        for (r, reference) in requests {
            let n = reference.rsplit('-').next().and_then(|x| x.parse().ok()).unwrap_or(0);
            let e = highest.entry((r.tenant_id.as_uuid(), r.submitted_at.year())).or_default();
            *e = (*e).max(n);
        }
        // One statement for them all: a batch touches thousands of tenants.
        let (mut tenants, mut years, mut lasts) = (Vec::new(), Vec::new(), Vec::new());
        for ((tenant, year), last) in highest {
            tenants.push(tenant);
            years.push(year);
            lasts.push(last);
        }
        sqlx::query(
            "insert into reference_counters (tenant_id, year, last) \
             select t, y, l from unnest($1::uuid[], $2::int[], $3::bigint[]) as x (t, y, l) \
             on conflict (tenant_id, year) do update set last = \
             greatest(reference_counters.last, excluded.last)",
        )
        .bind(&tenants)
        .bind(&years)
        .bind(&lasts)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }

    async fn has_import(&self, name: &str) -> StoreResult<bool> {
        let n: i64 = sqlx::query_scalar("select count(*) from imports where name = $1")
            .bind(name)
            .fetch_one(&mut *self.pool.get().await?)
            .await
            .map_err(map_err)?;
        Ok(n > 0)
    }
}

/// Appends a bulk load's events to lane 0 of their tenants' chains: the heads read (and locked,
/// though a bulk load is the only writer) in one statement, the events chained in memory,
/// written 1,000 rows a statement (`pos` numbers them in that order, a request's timeline
/// order), and the heads written back in one statement.
async fn insert_chained_events(
    conn: &mut sqlx::PgConnection,
    events: &[guichet_store::NewEvent],
) -> StoreResult<()> {
    use sqlx::Row as _;
    const COLUMNS: usize = 13;
    let mut tenants: Vec<uuid::Uuid> = events.iter().map(|e| e.tenant_id.as_uuid()).collect();
    tenants.sort_unstable();
    tenants.dedup();
    let mut heads = std::collections::HashMap::with_capacity(tenants.len());
    let rows = sqlx::query(
        "select tenant_id, seq, hash from event_heads where lane = 0 and tenant_id = any($1) \
         order by tenant_id for update",
    )
    .bind(&tenants)
    .fetch_all(&mut *conn)
    .await
    .map_err(map_err)?;
    for row in rows {
        let tenant: uuid::Uuid = row.try_get("tenant_id").map_err(map_err)?;
        heads.insert(
            tenant,
            (row.try_get("seq").map_err(map_err)?, row.try_get("hash").map_err(map_err)?),
        );
    }
    let chained = guichet_store::records::chain_on_lane_zero(events, &mut heads);
    for chunk in chained.chunks(1000) {
        let mut sql = String::from(
            "insert into events (id, tenant_id, lane, seq, request_id, at, actor_kind, actor_id, \
             channel, kind, citizen_visible, data, prev_hash, hash) values ",
        );
        for i in 0..chunk.len() {
            let n = i * COLUMNS;
            let placeholders: Vec<String> = (1..=COLUMNS).map(|k| format!("${}", n + k)).collect();
            if i > 0 {
                sql.push(',');
            }
            // Lane 0, after the tenant.
            sql.push_str(&format!(
                "({}, {}, 0, {})",
                placeholders[0],
                placeholders[1],
                placeholders[2..].join(", ")
            ));
        }
        let mut q = sqlx::query(&sql);
        for c in chunk {
            let e = c.event;
            q = q
                .bind(e.id.as_uuid())
                .bind(e.tenant_id.as_uuid())
                .bind(c.seq)
                .bind(e.request_id.map(|r| r.as_uuid()))
                .bind(e.at)
                .bind(e.actor_kind.as_str())
                .bind(e.actor_id)
                .bind(e.channel.as_str())
                .bind(e.kind.as_str())
                .bind(e.citizen_visible)
                .bind(c.data.as_str())
                .bind(c.prev_hash.as_str())
                .bind(c.hash.as_str());
        }
        q.execute(&mut *conn).await.map_err(map_err)?;
    }
    let (mut ids, mut seqs, mut hashes) = (Vec::new(), Vec::new(), Vec::new());
    for (tenant, (seq, hash)) in heads {
        ids.push(tenant);
        seqs.push(seq);
        hashes.push(hash);
    }
    sqlx::query(
        "insert into event_heads (tenant_id, lane, seq, hash) \
         select t, 0, s, h from unnest($1::uuid[], $2::bigint[], $3::text[]) as x (t, s, h) \
         on conflict (tenant_id, lane) do update set seq = excluded.seq, hash = excluded.hash",
    )
    .bind(&ids)
    .bind(&seqs)
    .bind(&hashes)
    .execute(&mut *conn)
    .await
    .map_err(map_err)?;
    Ok(())
}
