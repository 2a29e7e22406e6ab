//! Territory imports on SQLite: one transaction for the whole territory.

use async_trait::async_trait;
use guichet_store::{ImportOutcome, StoreResult, TerritoryImport, TerritoryStore};
use sqlx::Connection as _;
use time::OffsetDateTime;

use crate::{SqliteStore, map_err, tenants::insert_tenant, to_us};

#[async_trait]
impl TerritoryStore for SqliteStore {
    async fn import_territory(&self, import: &TerritoryImport) -> StoreResult<ImportOutcome> {
        let now = OffsetDateTime::now_utc();
        let mut writer = self.write.lock().await?;
        let mut tx = writer.begin().await.map_err(map_err)?;
        // The marker goes in first: a second import of the same name stops here, and a failed
        // import rolls the marker back with everything else.
        let marked = sqlx::query(
            "insert into imports (name, loaded_at) values ($1, $2) on conflict do nothing",
        )
        .bind(&import.name)
        .bind(to_us(now))
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
            .bind(to_us(now))
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
            .bind(c.email_verified.then(|| to_us(now)))
            .bind(to_us(now))
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
        let mut writer = self.write.lock().await?;
        let mut tx = writer.begin().await.map_err(map_err)?;
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
                // Positional `?`: with thousands of parameters, numbered `$N` names cost a
                // lookup each in sqlx's SQLite binding, which dominated the load time.
                let placeholders: Vec<&str> = (1..=COLUMNS).map(|_| "?").collect();
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
                    .bind(to_us(r.submitted_at))
                    .bind(r.deemed_decision_on)
                    .bind(to_us(r.submitted_at))
                    .bind(to_us(r.submitted_at))
                    .bind(r.phase.as_str())
                    .bind(guichet_store::records::search_document(
                        reference,
                        r.tenant_id.as_uuid(),
                        &r.search_text,
                    ))
                    .bind(None::<uuid::Uuid>)
                    .bind(r.ack_due_at.map(to_us))
                    .bind(t.acknowledged_at.map(to_us))
                    .bind(t.first_response_at.map(to_us))
                    .bind(t.closed_at.map(to_us))
                    .bind(t.waiting_us)
                    .bind(t.waiting_since.map(to_us))
                    .bind(t.reopened)
                    .bind(t.processing_us);
            }
            q.execute(&mut *tx).await.map_err(map_err)?;
            // The phase periods the generated timing implies (a generated history has no
            // events): pending from submission, then waiting or closed from when it started.
            let ids: Vec<String> = (0..chunk.len()).map(|_| "?".to_owned()).collect();
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
            // Positional `?` twice: the ids are bound once per list.
            for _ in 0..2 {
                for (r, _) in chunk {
                    q = q.bind(r.id.as_uuid());
                }
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
        for ((tenant, year), last) in highest {
            sqlx::query(
                "insert into reference_counters (tenant_id, year, last) values ($1, $2, $3) \
                 on conflict (tenant_id, year) do update set last = \
                 case when reference_counters.last > excluded.last then reference_counters.last else excluded.last end",
            )
            .bind(tenant)
            .bind(year)
            .bind(last)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        }
        // Searchable from the commit on, as a submission is.
        for sql in crate::requests::INDEX_PENDING_REQUESTS {
            sqlx::query(sql).execute(&mut *tx).await.map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)
    }

    async fn has_import(&self, name: &str) -> StoreResult<bool> {
        let n: i64 = sqlx::query_scalar("select count(*) from imports where name = $1")
            .bind(name)
            .fetch_one(&self.read)
            .await
            .map_err(map_err)?;
        Ok(n > 0)
    }
}

/// Appends a bulk load's events to lane 0 of their tenants' chains: the heads read in one
/// statement per 500 tenants, the events chained in memory, written 1,000 rows a statement,
/// and the heads written back 500 a statement.
async fn insert_chained_events(
    conn: &mut sqlx::SqliteConnection,
    events: &[guichet_store::NewEvent],
) -> StoreResult<()> {
    use sqlx::Row as _;
    let mut tenants: Vec<uuid::Uuid> = events.iter().map(|e| e.tenant_id.as_uuid()).collect();
    tenants.sort_unstable();
    tenants.dedup();
    let mut heads = std::collections::HashMap::with_capacity(tenants.len());
    for chunk in tenants.chunks(500) {
        let sql = format!(
            "select tenant_id, seq, hash from event_heads where lane = 0 and tenant_id in ({})",
            vec!["?"; chunk.len()].join(", ")
        );
        let mut q = sqlx::query(&sql);
        for t in chunk {
            q = q.bind(*t);
        }
        for row in q.fetch_all(&mut *conn).await.map_err(map_err)? {
            let tenant: uuid::Uuid = row.try_get("tenant_id").map_err(map_err)?;
            heads.insert(
                tenant,
                (row.try_get("seq").map_err(map_err)?, row.try_get("hash").map_err(map_err)?),
            );
        }
    }
    let chained = guichet_store::records::chain_on_lane_zero(events, &mut heads);
    for chunk in chained.chunks(1000) {
        let sql = format!(
            "insert into events (id, tenant_id, lane, seq, request_id, at, actor_kind, actor_id, \
             channel, kind, citizen_visible, data, prev_hash, hash) values {}",
            vec!["(?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ")
        );
        let mut q = sqlx::query(&sql);
        for c in chunk {
            let e = c.event;
            q = q
                .bind(e.id.as_uuid())
                .bind(e.tenant_id.as_uuid())
                .bind(c.seq)
                .bind(e.request_id.map(|r| r.as_uuid()))
                .bind(to_us(e.at))
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
    let heads: Vec<_> = heads.into_iter().collect();
    for chunk in heads.chunks(500) {
        let sql = format!(
            "insert into event_heads (tenant_id, lane, seq, hash) values {} \
             on conflict (tenant_id) do update set seq = excluded.seq, hash = excluded.hash",
            vec!["(?, 0, ?, ?)"; chunk.len()].join(", ")
        );
        let mut q = sqlx::query(&sql);
        for (tenant, (seq, hash)) in chunk {
            q = q.bind(*tenant).bind(*seq).bind(hash.as_str());
        }
        q.execute(&mut *conn).await.map_err(map_err)?;
    }
    Ok(())
}
