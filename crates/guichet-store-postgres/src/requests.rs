//! Drafts, files, requests, events and documents on PostgreSQL.

use async_trait::async_trait;
use guichet_domain::audit::{ChainedFields, GENESIS, chain_hash};
use guichet_domain::form::Answers;
use guichet_domain::request::{ActorKind, Channel};
use guichet_domain::{
    CitizenId, DocumentId, DraftId, EventId, FileId, RequestId, ServiceId, TenantId,
};
use guichet_store::{
    Document, Draft, Event, FileRecord, NewDocument, NewEvent, NewRequest, RecordsBuilder,
    RequestRecord, RequestStore, RequestSummary, StoreError, StoreResult, SubmissionRecords,
    Submitted,
};
use sqlx::Connection as _;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{Postgres, Transaction};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::batch::Batch;
use crate::{FOR_UPDATE, PgStore, col, map_err, ts};

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_owned())
}

fn read_draft(row: &PgRow) -> StoreResult<Draft> {
    Ok(Draft {
        id: DraftId::from_uuid(col(row, "id")?),
        citizen_id: CitizenId::from_uuid(col(row, "citizen_id")?),
        service_id: ServiceId::from_uuid(col(row, "service_id")?),
        portal_tenant_id: TenantId::from_uuid(col(row, "portal_tenant_id")?),
        answers: col::<Json<Answers>>(row, "answers")?.0,
        page: col(row, "page")?,
        updated_at: ts(row, "updated_at")?,
    })
}

fn read_file(row: &PgRow) -> StoreResult<FileRecord> {
    Ok(FileRecord {
        id: FileId::from_uuid(col(row, "id")?),
        sha256: col(row, "sha256")?,
        size: col(row, "size")?,
        content_type: col(row, "content_type")?,
        original_name: col(row, "original_name")?,
        citizen_id: col::<Option<Uuid>>(row, "citizen_id")?.map(CitizenId::from_uuid),
        created_at: ts(row, "created_at")?,
    })
}

pub(crate) const REQUEST_COLUMNS: &str = "id, tenant_id, commune_tenant_id, service_id, citizen_id, reference, \
     channel, status, answers, submitter, submitted_at, deemed_decision_on, phase, assignee_id";

pub(crate) fn read_request(row: &PgRow) -> StoreResult<RequestRecord> {
    let channel: String = col(row, "channel")?;
    Ok(RequestRecord {
        id: RequestId::from_uuid(col(row, "id")?),
        tenant_id: TenantId::from_uuid(col(row, "tenant_id")?),
        commune_tenant_id: col::<Option<Uuid>>(row, "commune_tenant_id")?.map(TenantId::from_uuid),
        service_id: ServiceId::from_uuid(col(row, "service_id")?),
        citizen_id: col::<Option<Uuid>>(row, "citizen_id")?.map(CitizenId::from_uuid),
        reference: col(row, "reference")?,
        channel: Channel::parse(&channel).ok_or_else(|| corrupt("request channel"))?,
        status: col(row, "status")?,
        answers: col::<Json<Answers>>(row, "answers")?.0,
        submitter: col::<Json<serde_json::Value>>(row, "submitter")?.0,
        submitted_at: ts(row, "submitted_at")?,
        deemed_decision_on: col(row, "deemed_decision_on")?,
        phase: col(row, "phase")?,
        assignee_id: col::<Option<Uuid>>(row, "assignee_id")?
            .map(guichet_domain::AgentId::from_uuid),
    })
}

pub(crate) fn read_event(row: &PgRow) -> StoreResult<Event> {
    let actor: String = col(row, "actor_kind")?;
    let channel: String = col(row, "channel")?;
    let data: String = col(row, "data")?;
    Ok(Event {
        event: NewEvent {
            id: EventId::from_uuid(col(row, "id")?),
            tenant_id: TenantId::from_uuid(col(row, "tenant_id")?),
            request_id: col::<Option<Uuid>>(row, "request_id")?.map(RequestId::from_uuid),
            at: ts(row, "at")?,
            actor_kind: ActorKind::parse(&actor).ok_or_else(|| corrupt("event actor"))?,
            actor_id: col(row, "actor_id")?,
            channel: Channel::parse(&channel).ok_or_else(|| corrupt("event channel"))?,
            kind: col(row, "kind")?,
            citizen_visible: col(row, "citizen_visible")?,
            data: serde_json::from_str(&data).map_err(|_| corrupt("event data"))?,
        },
        lane: col(row, "lane")?,
        seq: col(row, "seq")?,
        prev_hash: col(row, "prev_hash")?,
        hash: col(row, "hash")?,
    })
}

/// A write opens a new lane of a tenant's chain when every lane is held by another write, up
/// to this many; past it, it waits for one. Sixteen writes of one tenant committing side by
/// side share their disk flushes well (the pool holds about as many connections), and a
/// verification walks at most sixteen chains per tenant.
const MAX_LANES: i32 = 16;

/// Takes a lane of a tenant's chain for this transaction, locked until its end: one no other
/// write holds if there is one, else a new one, else (all held, or the new one opened by another
/// write at the same moment) an existing lane picked by `fallback`, waiting for it. Returns the
/// lane, its last seq and its last hash.
async fn take_lane(
    tx: &mut Transaction<'_, Postgres>,
    tenant: uuid::Uuid,
    fallback: i32,
) -> StoreResult<(i32, i64, String)> {
    let read = |row: &PgRow| -> StoreResult<(i32, i64, String)> {
        Ok((col(row, "lane")?, col(row, "seq")?, col(row, "hash")?))
    };
    // Two rounds: a lane another write opened at the same moment is found on the second.
    let mut lanes = 1;
    for _ in 0..2 {
        let free = sqlx::query(
            "select lane, seq, hash from event_heads where tenant_id = $1 \
             order by lane limit 1 for update skip locked",
        )
        .bind(tenant)
        .fetch_optional(&mut **tx)
        .await
        .map_err(map_err)?;
        if let Some(row) = free {
            return read(&row);
        }
        // Every lane is held (or the tenant has none yet): open the next one. Should another
        // write open it at the same moment, this insert waits for that write's end and does
        // nothing, and the next round finds the lane free.
        let next: i32 = sqlx::query_scalar(
            "select coalesce(max(lane) + 1, 0) from event_heads where tenant_id = $1",
        )
        .bind(tenant)
        .fetch_one(&mut **tx)
        .await
        .map_err(map_err)?;
        lanes = next.max(1);
        if next >= MAX_LANES {
            break;
        }
        let opened = sqlx::query(
            "insert into event_heads (tenant_id, lane, seq, hash) values ($1, $2, 0, $3) \
             on conflict do nothing",
        )
        .bind(tenant)
        .bind(next)
        .bind(GENESIS)
        .execute(&mut **tx)
        .await
        .map_err(map_err)?;
        if opened.rows_affected() == 1 {
            return Ok((next, 0, GENESIS.to_owned()));
        }
    }
    let sql = format!(
        "select lane, seq, hash from event_heads where tenant_id = $1 and lane = $2{FOR_UPDATE}"
    );
    let row = sqlx::query(&sql)
        .bind(tenant)
        .bind(fallback.rem_euclid(lanes))
        .fetch_optional(&mut **tx)
        .await
        .map_err(map_err)?;
    match row {
        Some(row) => read(&row),
        // Only if lanes were deleted under us (the first lane exists once anything was
        // appended, and `lanes` counts only existing ones).
        None => {
            let sql = format!(
                "select lane, seq, hash from event_heads where tenant_id = $1 and lane = 0{FOR_UPDATE}"
            );
            read(&sqlx::query(&sql).bind(tenant).fetch_one(&mut **tx).await.map_err(map_err)?)
        }
    }
}

/// The free lane statement of `take_lane`, the main query of a batch: the same lane is then
/// taken in the batch's round trip.
fn free_lane<'a>(q: &mut sqlx::QueryBuilder<'a, Postgres>, tenant: uuid::Uuid) {
    q.push("select lane, seq, hash from event_heads where tenant_id = ")
        .push_bind(tenant)
        .push(" order by lane limit 1 for update skip locked");
}

/// Tenants of `events`, each once, in the order their lanes are taken: whatever the events'
/// order, a write holding a lane of one tenant waits only for a lane of a later tenant, so two
/// writes touching the same tenants (a bulk action across communes) can never wait on each
/// other in a cycle.
fn chain_tenants(events: &[NewEvent]) -> Vec<uuid::Uuid> {
    let mut tenants: Vec<uuid::Uuid> = events.iter().map(|e| e.tenant_id.as_uuid()).collect();
    tenants.sort_unstable();
    tenants.dedup();
    tenants
}

/// Where every lane is held, writes wait on lanes spread by their first event's id (random
/// bits of a v7 UUID), rather than all on one.
fn lane_fallback(events: &[NewEvent]) -> i32 {
    events.first().map_or(0, |e| (e.id.as_uuid().as_u128() % 65_521) as i32)
}

/// A chained event's row, every value owned, for a multi-row insert.
struct EventRow {
    id: uuid::Uuid,
    tenant: uuid::Uuid,
    lane: i32,
    seq: i64,
    request: Option<uuid::Uuid>,
    at: OffsetDateTime,
    actor_kind: &'static str,
    actor: Option<uuid::Uuid>,
    channel: &'static str,
    kind: String,
    citizen_visible: bool,
    data: String,
    prev: String,
    hash: String,
}

/// Appends events to their tenants' hash chains inside a caller's transaction. `heads`: the
/// lanes already taken, by tenant (`chain_tenants` order); those missing are taken here.
async fn append_events(
    tx: &mut Transaction<'_, Postgres>,
    events: &[NewEvent],
    mut heads: Vec<(uuid::Uuid, i32, i64, String)>,
) -> StoreResult<()> {
    // Each tenant's lane is taken (and locked) once, followed in memory while its events are
    // chained, and written back with them: a write's events cost one statement, whatever
    // their number.
    let fallback = lane_fallback(events);
    for tenant in chain_tenants(events) {
        if !heads.iter().any(|(t, _, _, _)| *t == tenant) {
            let (lane, seq, hash) = take_lane(tx, tenant, fallback).await?;
            heads.push((tenant, lane, seq, hash));
        }
    }
    let mut rows = Vec::with_capacity(events.len());
    for e in events {
        let tenant = e.tenant_id.as_uuid();
        let Some(at) = heads.iter().position(|(t, _, _, _)| *t == tenant) else {
            return Err(StoreError::Other(format!("no chain head read for tenant {tenant}")));
        };
        let lane = heads[at].1;
        let seq = heads[at].2 + 1;
        let prev = std::mem::take(&mut heads[at].3);
        let data = e.data.to_string();
        let (id, tenant_s) = (e.id.to_string(), e.tenant_id.to_string());
        let request_s = e.request_id.map(|r| r.to_string());
        let actor_s = e.actor_id.map(|a| a.to_string());
        let at_us = e.at.unix_timestamp_nanos() / 1_000;
        let hash = chain_hash(
            &prev,
            &ChainedFields {
                lane,
                seq,
                id: &id,
                tenant_id: &tenant_s,
                request_id: request_s.as_deref(),
                at_us: i64::try_from(at_us).unwrap_or(i64::MAX),
                actor_kind: e.actor_kind.as_str(),
                actor_id: actor_s.as_deref(),
                channel: e.channel.as_str(),
                kind: &e.kind,
                citizen_visible: e.citizen_visible,
                data: &data,
            },
        );
        heads[at].2 = seq;
        heads[at].3.clone_from(&hash);
        rows.push(EventRow {
            id: e.id.as_uuid(),
            tenant,
            lane,
            seq,
            request: e.request_id.map(|r| r.as_uuid()),
            at: e.at,
            actor_kind: e.actor_kind.as_str(),
            actor: e.actor_id,
            channel: e.channel.as_str(),
            kind: e.kind.clone(),
            citizen_visible: e.citizen_visible,
            data,
            prev,
            hash,
        });
    }
    let mut batch = Batch::new();
    batch.part("new_events", |q| {
        q.push(
            "insert into events (id, tenant_id, lane, seq, request_id, at, actor_kind, actor_id, \
             channel, kind, citizen_visible, data, prev_hash, hash) ",
        );
        q.push_values(rows, |mut row, e| {
            row.push_bind(e.id)
                .push_bind(e.tenant)
                .push_bind(e.lane)
                .push_bind(e.seq)
                .push_bind(e.request)
                .push_bind(e.at)
                .push_bind(e.actor_kind)
                .push_bind(e.actor)
                .push_bind(e.channel)
                .push_bind(e.kind)
                .push_bind(e.citizen_visible)
                .push_bind(e.data)
                .push_bind(e.prev)
                .push_bind(e.hash);
        });
    });
    for (i, (tenant, lane, seq, hash)) in heads.into_iter().enumerate() {
        batch.part(&format!("head{i}"), |q| {
            q.push("update event_heads set seq = ")
                .push_bind(seq)
                .push(", hash = ")
                .push_bind(hash)
                .push(" where tenant_id = ")
                .push_bind(tenant)
                .push(" and lane = ")
                .push_bind(lane);
        });
    }
    batch.execute(tx).await
}

/// Writes everything a submission or a later action produces, inside a caller's transaction.
/// `folded`: the request whose row already holds these events' timing (`fold_own_timings`).
pub(crate) async fn write_records(
    tx: &mut Transaction<'_, Postgres>,
    request: Option<RequestId>,
    records: &SubmissionRecords,
    now: OffsetDateTime,
    folded: Option<RequestId>,
) -> StoreResult<()> {
    write_records_after(tx, Batch::new(), request, records, now, folded).await
}

/// `write_records` after the caller's own writes in `batch`, sent with the new documents,
/// messages and jobs as one statement (module `batch`), which also takes the first tenant's
/// lane; the events follow in a second. A submission's transaction is thus four round trips.
pub(crate) async fn write_records_after<'a>(
    tx: &mut Transaction<'_, Postgres>,
    mut batch: Batch<'a>,
    request: Option<RequestId>,
    records: &'a SubmissionRecords,
    now: OffsetDateTime,
    folded: Option<RequestId>,
) -> StoreResult<()> {
    // The timings of requests that exist already (a new request's are folded into its row):
    // one statement each, since two may change one row, which a batch's parts cannot; and
    // before any lane is taken, so that a write never holds a lane while waiting for a
    // request's row.
    crate::dashboards::apply_event_timings(tx, &records.events, folded).await?;
    if !records.documents.is_empty() {
        let request_id = request
            .or_else(|| records.events.iter().find_map(|e| e.request_id))
            .ok_or_else(|| StoreError::Other("a document needs a request".into()))?;
        documents_part(&mut batch, request_id, &records.documents);
    }
    crate::outbox::emails_part(&mut batch, &records.emails, now);
    crate::channels::sms_part(&mut batch, &records.sms, now);
    crate::jobs::jobs_part(&mut batch, &records.jobs, now);
    // The lane comes last, held from here to the commit (another write of the tenant then
    // takes another lane, up to `MAX_LANES`), so it is held as briefly as can be.
    let first = chain_tenants(&records.events).first().copied();
    let mut heads = Vec::new();
    if let Some(tenant) = first {
        let mut sql = batch.finish(|q| free_lane(q, tenant));
        let free = sql.build().fetch_optional(&mut **tx).await.map_err(map_err)?;
        if let Some(row) = free {
            heads.push((tenant, col(&row, "lane")?, col(&row, "seq")?, col(&row, "hash")?));
        }
    } else {
        batch.execute(tx).await?;
    }
    // Statements whose effect is checked (an inbound message's expected state) cannot be parts
    // of a batch; they follow it, since they may refer to the request it inserts.
    crate::channels::apply_inbound_updates(tx, &records.inbound, now).await?;
    if !records.events.is_empty() {
        append_events(tx, &records.events, heads).await?;
    }
    Ok(())
}

fn documents_part<'a>(batch: &mut Batch<'a>, request: RequestId, documents: &'a [NewDocument]) {
    batch.part("new_documents", |q| {
        q.push(
            "insert into documents (id, request_id, kind, title, body_text, body_html, created_at, code) ",
        );
        q.push_values(documents, |mut row, d| {
            row.push_bind(d.id.as_uuid())
                .push_bind(request.as_uuid())
                .push_bind(&d.kind)
                .push_bind(&d.title)
                .push_bind(&d.text)
                .push_bind(&d.html)
                .push_bind(d.created_at)
                .push_bind(&d.code);
        });
    });
}

/// File ids referenced by answers (file fields hold arrays of {id, …}).
fn referenced_files(answers: &Answers) -> Vec<Uuid> {
    answers
        .values()
        .filter_map(serde_json::Value::as_array)
        .flatten()
        .filter_map(|f| f.get("id").and_then(serde_json::Value::as_str))
        .filter_map(|id| Uuid::parse_str(id).ok())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// Deletes a sent draft saved again under its consumed id, or it would stay in the citizen's
/// list for good.
async fn forget_sent_draft(
    conn: &mut sqlx::PgConnection,
    draft: DraftId,
    citizen: Option<CitizenId>,
) -> StoreResult<()> {
    sqlx::query("delete from drafts where id = $1 and citizen_id is not distinct from $2")
        .bind(draft.as_uuid())
        .bind(citizen.map(|c| c.as_uuid()))
        .execute(conn)
        .await
        .map_err(map_err)?;
    Ok(())
}

impl PgStore {
    /// The request already made from `r`'s draft by the same citizen, if any (a second send:
    /// a double click, a replayed POST). A draft saved again under the consumed id is deleted,
    /// or it would stay in the citizen's list for good. Another citizen's draft id (a forged
    /// page) is not found here, and the insert then meets the unique index.
    async fn submitted_draft(&self, r: &NewRequest) -> StoreResult<Option<Submitted>> {
        let Some(draft) = r.draft_id else { return Ok(None) };
        let citizen = r.citizen_id.map(|c| c.as_uuid());
        let mut conn = self.pool.get().await?;
        let existing = sqlx::query(
            "select id, reference from requests where draft_id = $1 \
             and citizen_id is not distinct from $2",
        )
        .bind(draft.as_uuid())
        .bind(citizen)
        .fetch_optional(&mut *conn)
        .await
        .map_err(map_err)?;
        let Some(row) = existing else { return Ok(None) };
        forget_sent_draft(&mut conn, draft, r.citizen_id).await?;
        Ok(Some(Submitted {
            id: RequestId::from_uuid(col(&row, "id")?),
            reference: col(&row, "reference")?,
            created: false,
        }))
    }
}

#[async_trait]
impl RequestStore for PgStore {
    async fn save_draft(&self, d: &Draft) -> StoreResult<()> {
        sqlx::query(
            "insert into drafts (id, citizen_id, service_id, portal_tenant_id, answers, page, created_at, updated_at) \
             values ($1, $2, $3, $4, $5, $6, $7, $7) \
             on conflict (id) do update set answers = excluded.answers, page = excluded.page, \
             updated_at = excluded.updated_at where drafts.citizen_id = excluded.citizen_id",
        )
        .bind(d.id.as_uuid())
        .bind(d.citizen_id.as_uuid())
        .bind(d.service_id.as_uuid())
        .bind(d.portal_tenant_id.as_uuid())
        .bind(Json(&d.answers))
        .bind(d.page)
        .bind(d.updated_at)
        .execute(&mut *self.pool.get().await?)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn get_draft(&self, id: DraftId, citizen: CitizenId) -> StoreResult<Option<Draft>> {
        let row = sqlx::query(
            "select id, citizen_id, service_id, portal_tenant_id, answers, page, updated_at \
             from drafts where id = $1 and citizen_id = $2",
        )
        .bind(id.as_uuid())
        .bind(citizen.as_uuid())
        .fetch_optional(&mut *self.pool.get().await?)
        .await
        .map_err(map_err)?;
        row.as_ref().map(read_draft).transpose()
    }

    async fn list_drafts(&self, citizen: CitizenId) -> StoreResult<Vec<(Draft, String)>> {
        let rows = sqlx::query(
            "select d.id, d.citizen_id, d.service_id, d.portal_tenant_id, d.answers, d.page, \
             d.updated_at, s.title from drafts d join services s on s.id = d.service_id \
             where d.citizen_id = $1 order by d.updated_at desc",
        )
        .bind(citizen.as_uuid())
        .fetch_all(&mut *self.pool.get().await?)
        .await
        .map_err(map_err)?;
        rows.iter().map(|r| Ok((read_draft(r)?, col(r, "title")?))).collect()
    }

    async fn delete_draft(&self, id: DraftId, citizen: CitizenId) -> StoreResult<()> {
        sqlx::query("delete from drafts where id = $1 and citizen_id = $2")
            .bind(id.as_uuid())
            .bind(citizen.as_uuid())
            .execute(&mut *self.pool.get().await?)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn add_file(&self, f: &FileRecord) -> StoreResult<()> {
        sqlx::query(
            "insert into files (id, sha256, size, content_type, original_name, citizen_id, created_at) \
             values ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(f.id.as_uuid())
        .bind(&f.sha256)
        .bind(f.size)
        .bind(&f.content_type)
        .bind(&f.original_name)
        .bind(f.citizen_id.map(|c| c.as_uuid()))
        .bind(f.created_at)
        .execute(&mut *self.pool.get().await?)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn get_file(&self, id: FileId) -> StoreResult<FileRecord> {
        let row = sqlx::query(
            "select id, sha256, size, content_type, original_name, citizen_id, created_at \
             from files where id = $1",
        )
        .bind(id.as_uuid())
        .fetch_one(&mut *self.pool.get().await?)
        .await
        .map_err(map_err)?;
        read_file(&row)
    }

    async fn citizen_can_read_file(&self, file: FileId, citizen: CitizenId) -> StoreResult<bool> {
        // The uploader may read it (in a draft), and so may the citizen whose request holds it.
        let n: i64 = sqlx::query_scalar(
            "select count(*) from files f where f.id = $1 and (f.citizen_id = $2 or exists \
             (select 1 from request_files rf join requests r on r.id = rf.request_id \
              where rf.file_id = f.id and r.citizen_id = $2))",
        )
        .bind(file.as_uuid())
        .bind(citizen.as_uuid())
        .fetch_one(&mut *self.pool.get().await?)
        .await
        .map_err(map_err)?;
        Ok(n > 0)
    }

    async fn submit_request(
        &self,
        r: &NewRequest,
        build: RecordsBuilder<'_>,
    ) -> StoreResult<Submitted> {
        let now = OffsetDateTime::now_utc();
        // One pooled connection at a time: a submission holding its transaction while waiting
        // for a second connection would deadlock a busy pool.
        let mut conn = self.pool.get().await?;
        let year = r.submitted_at.year();
        // One round trip asks whether this draft was already sent (a double click, a replayed
        // POST) and, if not, takes the number. The number comes from this statement's own short
        // transaction, before the request's. Taken inside the request's, the counter's row
        // stayed locked until its commit, and every submission of the tenant queued behind the
        // one before (measured: 254 a second, all waiting on that lock). Its commit need not
        // wait for the disk: WAL is written in order, so the request's durable commit makes the
        // counter durable too, and if the server stops before that, the number was never shown
        // to anyone. A submission that fails after taking its number leaves a gap; numbers are
        // never given twice.
        let row = sqlx::query(
            "with made as (select id, reference from requests where draft_id = $3 \
                           and citizen_id is not distinct from $4), \
                  counted as (insert into reference_counters (tenant_id, year, last) \
                              select $1, $2, 1 \
                              from (select set_config('synchronous_commit', 'off', true)) s \
                              where not exists (select 1 from made) \
                              on conflict (tenant_id, year) \
                              do update set last = reference_counters.last + 1 \
                              returning last) \
             select (select id from made) as id, (select reference from made) as reference, \
                    (select last from counted) as last",
        )
        .bind(r.tenant_id.as_uuid())
        .bind(year)
        .bind(r.draft_id.map(|d| d.as_uuid()))
        .bind(r.citizen_id.map(|c| c.as_uuid()))
        .fetch_one(&mut *conn)
        .await
        .map_err(map_err)?;
        if let (Some(id), Some(draft)) = (col::<Option<Uuid>>(&row, "id")?, r.draft_id) {
            forget_sent_draft(&mut conn, draft, r.citizen_id).await?;
            return Ok(Submitted {
                id: RequestId::from_uuid(id),
                reference: col(&row, "reference")?,
                created: false,
            });
        }
        let number: i64 = col::<Option<i64>>(&row, "last")?
            .ok_or_else(|| corrupt("no reference number taken"))?;
        let reference = guichet_domain::request::reference(&r.reference_prefix, year, number);
        let mut tx = conn.begin().await.map_err(map_err)?;
        // The timing starts with the request's phase (a status event at submission time, as
        // the demo's, replays to the same).
        let phase = guichet_domain::workflow::Phase::parse(&r.phase)
            .unwrap_or(guichet_domain::workflow::Phase::Open);
        let mut timing = r
            .history
            .unwrap_or_else(|| guichet_domain::metrics::Timing::new(r.submitted_at, phase));
        // Dropping the transaction on error rolls back the request (its number stays used).
        let records = build(&reference).map_err(StoreError::Other)?;
        guichet_store::records::fold_own_timings(&mut timing, r.id, &records.events);
        // The request, its first period, its files and the draft's removal go in the same
        // statement as the records (`write_records_after`).
        let mut batch = Batch::new();
        let search = guichet_store::records::search_document(
            &reference,
            r.tenant_id.as_uuid(),
            &r.search_text,
        );
        batch.part("request", |q| {
            q.push(
                "insert into requests (id, tenant_id, commune_tenant_id, service_id, citizen_id, \
                 draft_id, reference, channel, status, answers, submitter, submitted_at, \
                 deemed_decision_on, created_at, updated_at, phase, search_text, ack_due_at, \
                 acknowledged_at, first_response_at, closed_at, waiting_us, waiting_since, \
                 reopened, processing_us) ",
            );
            // One row; the search text moves into it.
            q.push_values([search], |mut row, search| {
                row.push_bind(r.id.as_uuid())
                    .push_bind(r.tenant_id.as_uuid())
                    .push_bind(r.commune_tenant_id.map(|t| t.as_uuid()))
                    .push_bind(r.service_id.as_uuid())
                    .push_bind(r.citizen_id.map(|c| c.as_uuid()))
                    .push_bind(r.draft_id.map(|d| d.as_uuid()))
                    .push_bind(&reference)
                    .push_bind(r.channel.as_str())
                    .push_bind(&r.status)
                    .push_bind(Json(&r.answers))
                    .push_bind(Json(&r.submitter))
                    .push_bind(r.submitted_at)
                    .push_bind(r.deemed_decision_on)
                    .push_bind(now)
                    .push_bind(now)
                    .push_bind(&r.phase)
                    .push_bind(search)
                    .push_bind(r.ack_due_at)
                    .push_bind(timing.acknowledged_at)
                    .push_bind(timing.first_response_at)
                    .push_bind(timing.closed_at)
                    .push_bind(timing.waiting_us)
                    .push_bind(timing.waiting_since)
                    .push_bind(timing.reopened)
                    .push_bind(timing.processing_us);
            });
            q.push(" returning *");
        });
        crate::dashboards::start_period_part(&mut batch, r.tenant_id, timing.phase, r.submitted_at);
        let files = referenced_files(&r.answers);
        if !files.is_empty() {
            batch.part("request_files_added", |q| {
                q.push("insert into request_files (request_id, file_id) ");
                q.push_values(files, |mut row, file| {
                    row.push_bind(r.id.as_uuid()).push_bind(file);
                });
                q.push(" on conflict do nothing");
            });
        }
        if let (Some(draft), Some(citizen)) = (r.draft_id, r.citizen_id) {
            batch.part("draft_removed", |q| {
                q.push("delete from drafts where id = ")
                    .push_bind(draft.as_uuid())
                    .push(" and citizen_id = ")
                    .push_bind(citizen.as_uuid());
            });
        }
        let written =
            write_records_after(&mut tx, batch, Some(r.id), &records, now, Some(r.id)).await;
        if let Err(e) = written {
            // The same draft sent twice at the same instant (a double click on two
            // connections): both passed the check above, the unique draft_id refused this
            // insert, and the first request is the answer to both.
            if matches!(e, StoreError::Conflict { .. }) && r.draft_id.is_some() {
                tx.rollback().await.map_err(map_err)?;
                drop(conn);
                if let Some(found) = self.submitted_draft(r).await? {
                    return Ok(found);
                }
            }
            return Err(e);
        }
        tx.commit().await.map_err(map_err)?;
        Ok(Submitted { id: r.id, reference, created: true })
    }

    async fn find_request_by_draft(
        &self,
        draft: DraftId,
        citizen: CitizenId,
    ) -> StoreResult<Option<RequestId>> {
        let id: Option<Uuid> =
            sqlx::query_scalar("select id from requests where draft_id = $1 and citizen_id = $2")
                .bind(draft.as_uuid())
                .bind(citizen.as_uuid())
                .fetch_optional(&mut *self.pool.get().await?)
                .await
                .map_err(map_err)?;
        Ok(id.map(RequestId::from_uuid))
    }

    async fn record(&self, records: &SubmissionRecords) -> StoreResult<()> {
        let now = OffsetDateTime::now_utc();
        let mut conn = self.pool.get().await?;
        let mut tx = conn.begin().await.map_err(map_err)?;
        for e in &records.events {
            if let (Some(request), Some(files)) =
                (e.request_id, e.data.get("files").and_then(|f| f.as_array()))
            {
                for id in files.iter().filter_map(|f| f.get("id").and_then(|i| i.as_str())) {
                    let Ok(file) = Uuid::parse_str(id) else { continue };
                    sqlx::query("insert into request_files (request_id, file_id) values ($1, $2) on conflict do nothing")
                        .bind(request.as_uuid())
                        .bind(file)
                        .execute(&mut *tx)
                        .await
                        .map_err(map_err)?;
                }
            }
            // A view is traced, but it changes nothing of the request: its row is not touched
            // (an agent reading a request does not make it "updated", nor wait for another's
            // view on the row's lock).
            if let Some(request) = e.request_id
                && e.kind != "viewed"
            {
                sqlx::query("update requests set updated_at = $2 where id = $1")
                    .bind(request.as_uuid())
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
            }
        }
        write_records(&mut tx, None, records, now, None).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn list_citizen_requests(&self, citizen: CitizenId) -> StoreResult<Vec<RequestSummary>> {
        let rows = sqlx::query(
            "select r.id, r.reference, r.status, r.channel, r.submitted_at, s.title, t.name \
             from requests r join services s on s.id = r.service_id join tenants t on t.id = r.tenant_id \
             where r.citizen_id = $1 order by r.submitted_at desc",
        )
        .bind(citizen.as_uuid())
        .fetch_all(&mut *self.pool.get().await?)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|row| {
                let channel: String = col(row, "channel")?;
                Ok(RequestSummary {
                    id: RequestId::from_uuid(col(row, "id")?),
                    reference: col(row, "reference")?,
                    service_title: col(row, "title")?,
                    tenant_name: col(row, "name")?,
                    status: col(row, "status")?,
                    channel: Channel::parse(&channel).ok_or_else(|| corrupt("channel"))?,
                    submitted_at: ts(row, "submitted_at")?,
                })
            })
            .collect()
    }

    async fn get_citizen_request(
        &self,
        id: RequestId,
        citizen: CitizenId,
    ) -> StoreResult<Option<RequestRecord>> {
        let sql =
            format!("select {REQUEST_COLUMNS} from requests where id = $1 and citizen_id = $2");
        let row = sqlx::query(&sql)
            .bind(id.as_uuid())
            .bind(citizen.as_uuid())
            .fetch_optional(&mut *self.pool.get().await?)
            .await
            .map_err(map_err)?;
        row.as_ref().map(read_request).transpose()
    }

    // A request's events may lie on several lanes: `pos` is the order they were written in
    // (migration 20261130000011); those written before it have none and come first, in seq order.
    async fn list_request_events(
        &self,
        id: RequestId,
        citizen_view: bool,
    ) -> StoreResult<Vec<Event>> {
        let sql = format!(
            "select id, tenant_id, lane, seq, request_id, at, actor_kind, actor_id, channel, kind, \
             citizen_visible, data, prev_hash, hash from events where request_id = $1 {} order by pos nulls first, seq",
            // Views are traced but are not part of the timeline: a busy request gathers
            // thousands of them, which only the history export reads.
            // `kind <> 'viewed'` in both: views are never shown to citizens either, and the
            // condition lets the partial index `events_timeline_idx` answer.
            if citizen_view {
                "and kind <> 'viewed' and citizen_visible"
            } else {
                "and kind <> 'viewed'"
            }
        );
        let rows = sqlx::query(&sql)
            .bind(id.as_uuid())
            .fetch_all(&mut *self.pool.get().await?)
            .await
            .map_err(map_err)?;
        rows.iter().map(read_event).collect()
    }

    async fn list_request_history(&self, id: RequestId) -> StoreResult<Vec<Event>> {
        let rows = sqlx::query(
            "select id, tenant_id, lane, seq, request_id, at, actor_kind, actor_id, channel, kind, \
             citizen_visible, data, prev_hash, hash from events where request_id = $1 order by pos nulls first, seq",
        )
        .bind(id.as_uuid())
        .fetch_all(&mut *self.pool.get().await?)
        .await
        .map_err(map_err)?;
        rows.iter().map(read_event).collect()
    }

    async fn list_request_documents(&self, id: RequestId) -> StoreResult<Vec<Document>> {
        let rows = sqlx::query(
            "select id, request_id, kind, title, body_text, body_html, created_at, code from documents \
             where request_id = $1 order by created_at, id",
        )
        .bind(id.as_uuid())
        .fetch_all(&mut *self.pool.get().await?)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|row| {
                Ok(Document {
                    document: NewDocument {
                        id: DocumentId::from_uuid(col(row, "id")?),
                        kind: col(row, "kind")?,
                        title: col(row, "title")?,
                        text: col(row, "body_text")?,
                        html: col(row, "body_html")?,
                        created_at: ts(row, "created_at")?,
                        code: col(row, "code")?,
                    },
                    request_id: RequestId::from_uuid(col(row, "request_id")?),
                })
            })
            .collect()
    }
}
