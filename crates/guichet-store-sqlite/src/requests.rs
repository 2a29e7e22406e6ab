//! Drafts, files, requests, events and documents on SQLite.

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
use sqlx::sqlite::SqliteRow;
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::exec::{WriteTx, args};
use crate::jobs::insert_jobs;
use crate::outbox::insert_emails;
use crate::point::Columns;
use crate::{SqliteStore, col, map_err, to_us, ts};

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_owned())
}

fn read_draft(row: &impl Columns) -> StoreResult<Draft> {
    // sqlx's `Json` writes JSON as text; read as text, it decodes the same on both drivers.
    let answers: String = row.get("answers")?;
    Ok(Draft {
        id: DraftId::from_uuid(row.get("id")?),
        citizen_id: CitizenId::from_uuid(row.get("citizen_id")?),
        service_id: ServiceId::from_uuid(row.get("service_id")?),
        portal_tenant_id: TenantId::from_uuid(row.get("portal_tenant_id")?),
        answers: serde_json::from_str::<Answers>(&answers)
            .map_err(|e| StoreError::Corrupt(format!("draft answers: {e}")))?,
        page: row.get("page")?,
        updated_at: row.instant("updated_at")?,
    })
}

fn read_file(row: &SqliteRow) -> StoreResult<FileRecord> {
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

pub(crate) fn read_request(row: &SqliteRow) -> StoreResult<RequestRecord> {
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

pub(crate) fn read_event(row: &SqliteRow) -> StoreResult<Event> {
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

/// Appends events to their tenants' hash chains inside a caller's transaction.
pub(crate) async fn append_events(tx: &mut impl WriteTx, events: &[NewEvent]) -> StoreResult<()> {
    // Each tenant's head is read once, followed in memory while its events are chained, and
    // written back once: a submission's events cost one statement each, plus two per tenant
    // (three for a tenant's very first event), instead of four each.
    // Heads are read in tenant order, as on PostgreSQL (where the order keeps two writes
    // locking the same heads from waiting on each other in a cycle).
    let mut tenants: Vec<uuid::Uuid> = events.iter().map(|e| e.tenant_id.as_uuid()).collect();
    tenants.sort_unstable();
    tenants.dedup();
    let mut heads: Vec<(uuid::Uuid, i64, String)> = Vec::with_capacity(tenants.len());
    for tenant in tenants {
        let (seq, hash) = match tx.row(HEAD_SQL, args![tenant], |r| read_head(r)).await? {
            Some(head) => head,
            None => {
                tx.exec(
                    "insert into event_heads (tenant_id, seq, hash) values ($1, 0, $2)",
                    args![tenant, GENESIS],
                )
                .await?;
                (0, GENESIS.to_owned())
            }
        };
        heads.push((tenant, seq, hash));
    }
    for e in events {
        let tenant = e.tenant_id.as_uuid();
        let Some(at) = heads.iter().position(|(t, _, _)| *t == tenant) else {
            return Err(StoreError::Other(format!("no chain head read for tenant {tenant}")));
        };
        let seq = heads[at].1 + 1;
        let prev = std::mem::take(&mut heads[at].2);
        let data = e.data.to_string();
        let (id, tenant_s) = (e.id.to_string(), e.tenant_id.to_string());
        let request_s = e.request_id.map(|r| r.to_string());
        let actor_s = e.actor_id.map(|a| a.to_string());
        let at_us = e.at.unix_timestamp_nanos() / 1_000;
        let hash = chain_hash(
            &prev,
            &ChainedFields {
                lane: 0,
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
        tx.exec(
            "insert into events (id, tenant_id, seq, request_id, at, actor_kind, actor_id, channel, \
             kind, citizen_visible, data, prev_hash, hash) \
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            args![
                e.id.as_uuid(),
                tenant,
                seq,
                e.request_id.map(|r| r.as_uuid()),
                to_us(e.at),
                e.actor_kind.as_str(),
                e.actor_id,
                e.channel.as_str(),
                &e.kind,
                e.citizen_visible,
                &data,
                &prev,
                &hash,
            ],
        )
        .await?;
        heads[at].1 = seq;
        heads[at].2 = hash;
    }
    for (tenant, seq, hash) in heads {
        tx.exec(
            "update event_heads set seq = $2, hash = $3 where tenant_id = $1 and lane = 0",
            args![tenant, seq, &hash],
        )
        .await?;
    }
    Ok(())
}

fn read_head(r: &impl Columns) -> StoreResult<(i64, String)> {
    Ok((r.get("seq")?, r.get("hash")?))
}

/// A tenant's chain head (no lock clause: SQLite has one writer). Always lane 0: one write
/// appends after the other, so no write ever finds the tenant's chain held by another and needs
/// a lane of its own (the events' and heads' `lane` column defaults to 0).
const HEAD_SQL: &str = "select seq, hash from event_heads where tenant_id = $1 and lane = 0";

/// Writes everything a submission or a later action produces, inside a caller's transaction.
/// `folded`: the request whose row already holds these events' timing (`fold_own_timings`).
pub(crate) async fn write_records(
    tx: &mut impl WriteTx,
    request: Option<RequestId>,
    records: &SubmissionRecords,
    now: OffsetDateTime,
    folded: Option<RequestId>,
) -> StoreResult<()> {
    crate::dashboards::apply_event_timings(tx, &records.events, folded).await?;
    for d in &records.documents {
        let request_id = request
            .or_else(|| records.events.iter().find_map(|e| e.request_id))
            .ok_or_else(|| StoreError::Other("a document needs a request".into()))?;
        insert_document(tx, request_id, d).await?;
    }
    insert_emails(tx, &records.emails, now).await?;
    crate::channels::insert_sms(tx, &records.sms, now).await?;
    crate::channels::apply_inbound_updates(tx, &records.inbound, now).await?;
    insert_jobs(tx, &records.jobs, now).await?;
    // Last: appending takes the lock on the tenant's chain head, held until the commit, and
    // every write of that tenant queues behind it.
    append_events(tx, &records.events).await?;
    Ok(())
}

async fn insert_document(
    tx: &mut impl WriteTx,
    request: RequestId,
    d: &NewDocument,
) -> StoreResult<()> {
    tx.exec(
        "insert into documents (id, request_id, kind, title, body_text, body_html, created_at, code) \
         values ($1, $2, $3, $4, $5, $6, $7, $8)",
        args![
            d.id.as_uuid(),
            request.as_uuid(),
            &d.kind,
            &d.title,
            &d.text,
            &d.html,
            to_us(d.created_at),
            &d.code,
        ],
    )
    .await?;
    Ok(())
}

/// File ids referenced by answers (file fields hold arrays of {id, …}).
fn referenced_files(answers: &Answers) -> Vec<Uuid> {
    answers
        .values()
        .filter_map(serde_json::Value::as_array)
        .flatten()
        .filter_map(|f| f.get("id").and_then(serde_json::Value::as_str))
        .filter_map(|id| Uuid::parse_str(id).ok())
        .collect()
}

/// Enters the requests noted by the `requests_fts_*` triggers into the full-text index, and
/// clears the notes (see migration `20261130000012`). Run inside a write transaction, just
/// before its commit: by the writer for every group, and by the other writes that add requests.
pub(crate) const INDEX_PENDING_REQUESTS: [&str; 2] = [
    "insert into requests_fts (rowid, search_text) select r.rowid, r.search_text \
     from requests_fts_pending p join requests r on r.rowid = p.request_rowid",
    "delete from requests_fts_pending",
];

/// [`INDEX_PENDING_REQUESTS`] on the grouped writes' connection (`writer::BeforeCommit`).
pub(crate) fn index_pending_requests(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    for sql in INDEX_PENDING_REQUESTS {
        conn.prepare_cached(sql)?.execute([])?;
    }
    Ok(())
}

/// The body of `submit_request`, in its savepoint of a write group.
async fn submit_in(
    tx: &mut impl WriteTx,
    r: &NewRequest,
    build: RecordsBuilder<'_>,
    now: OffsetDateTime,
) -> StoreResult<Submitted> {
    if let Some(draft) = r.draft_id {
        let existing = tx
            .row(
                // Another citizen's draft id (a page's token tampered with) is not found here,
                // and the insert below then meets the unique index.
                "select id, reference from requests where draft_id = $1 and citizen_id is $2",
                args![draft.as_uuid(), r.citizen_id.map(|c| c.as_uuid())],
                |row| Ok((row.get::<Uuid>("id")?, row.get::<String>("reference")?)),
            )
            .await?;
        if let Some((id, reference)) = existing {
            // A draft saved again under the consumed id (answers kept after a send that had
            // in fact gone through) would otherwise stay in the citizen's list for good.
            tx.exec(
                "delete from drafts where id = $1 and citizen_id is $2",
                args![draft.as_uuid(), r.citizen_id.map(|c| c.as_uuid())],
            )
            .await?;
            return Ok(Submitted { id: RequestId::from_uuid(id), reference, created: false });
        }
    }
    let year = r.submitted_at.year();
    let number: i64 = tx
        .row(
            "insert into reference_counters (tenant_id, year, last) values ($1, $2, 1) \
             on conflict (tenant_id, year) do update set last = reference_counters.last + 1 \
             returning last",
            args![r.tenant_id.as_uuid(), year],
            |row| row.get("last"),
        )
        .await?
        .ok_or(StoreError::NotFound)?;
    let reference = guichet_domain::request::reference(&r.reference_prefix, year, number);
    // The timing starts with the request's phase (a status event at submission time, as
    // the demo's, replays to the same).
    let phase = guichet_domain::workflow::Phase::parse(&r.phase)
        .unwrap_or(guichet_domain::workflow::Phase::Open);
    let mut timing =
        r.history.unwrap_or_else(|| guichet_domain::metrics::Timing::new(r.submitted_at, phase));
    // An error rolls back the write's savepoint: the reference and the request with it.
    let records = build(&reference).map_err(StoreError::Other)?;
    guichet_store::records::fold_own_timings(&mut timing, r.id, &records.events);
    let answers = serde_json::to_string(&r.answers)
        .map_err(|e| StoreError::Other(format!("request answers: {e}")))?;
    let search =
        guichet_store::records::search_document(&reference, r.tenant_id.as_uuid(), &r.search_text);
    tx.exec(
        "insert into requests (id, tenant_id, commune_tenant_id, service_id, citizen_id, draft_id, \
         reference, channel, status, answers, submitter, submitted_at, deemed_decision_on, \
         created_at, updated_at, phase, search_text, ack_due_at, acknowledged_at, \
         first_response_at, closed_at, waiting_us, waiting_since, reopened, processing_us) \
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14, $15, $16, $17, \
         $18, $19, $20, $21, $22, $23, $24)",
        args![
            r.id.as_uuid(),
            r.tenant_id.as_uuid(),
            r.commune_tenant_id.map(|t| t.as_uuid()),
            r.service_id.as_uuid(),
            r.citizen_id.map(|c| c.as_uuid()),
            r.draft_id.map(|d| d.as_uuid()),
            &reference,
            r.channel.as_str(),
            &r.status,
            answers,
            r.submitter.to_string(),
            to_us(r.submitted_at),
            r.deemed_decision_on,
            to_us(now),
            &r.phase,
            search,
            r.ack_due_at.map(to_us),
            timing.acknowledged_at.map(to_us),
            timing.first_response_at.map(to_us),
            timing.closed_at.map(to_us),
            timing.waiting_us,
            timing.waiting_since.map(to_us),
            timing.reopened,
            timing.processing_us,
        ],
    )
    .await?;
    crate::dashboards::start_period(tx, r.id, r.tenant_id, timing.phase, r.submitted_at).await?;
    for file in referenced_files(&r.answers) {
        tx.exec(
            "insert into request_files (request_id, file_id) values ($1, $2) on conflict do nothing",
            args![r.id.as_uuid(), file],
        )
        .await?;
    }
    if let (Some(draft), Some(citizen)) = (r.draft_id, r.citizen_id) {
        tx.exec(
            "delete from drafts where id = $1 and citizen_id = $2",
            args![draft.as_uuid(), citizen.as_uuid()],
        )
        .await?;
    }
    write_records(tx, Some(r.id), &records, now, Some(r.id)).await?;
    Ok(Submitted { id: r.id, reference, created: true })
}

/// The body of `record`, in its savepoint of a write group.
async fn record_in(
    tx: &mut impl WriteTx,
    records: &SubmissionRecords,
    now: OffsetDateTime,
) -> StoreResult<()> {
    for e in &records.events {
        if let (Some(request), Some(files)) =
            (e.request_id, e.data.get("files").and_then(|f| f.as_array()))
        {
            for id in files.iter().filter_map(|f| f.get("id").and_then(|i| i.as_str())) {
                let Ok(file) = Uuid::parse_str(id) else { continue };
                tx.exec(
                    "insert into request_files (request_id, file_id) values ($1, $2) \
                     on conflict do nothing",
                    args![request.as_uuid(), file],
                )
                .await?;
            }
        }
        // A view is traced, but it changes nothing of the request: its row is not touched (an
        // agent reading a request does not make it "updated", nor wait for another's view).
        if let Some(request) = e.request_id
            && e.kind != "viewed"
        {
            tx.exec(
                "update requests set updated_at = $2 where id = $1",
                args![request.as_uuid(), to_us(now)],
            )
            .await?;
        }
    }
    write_records(tx, None, records, now, None).await
}

#[async_trait]
impl RequestStore for SqliteStore {
    async fn save_draft(&self, d: &Draft) -> StoreResult<()> {
        let answers = serde_json::to_string(&d.answers)
            .map_err(|e| StoreError::Other(format!("draft answers: {e}")))?;
        self.write
            .grouped(async |tx| {
                tx.exec(
                    "insert into drafts (id, citizen_id, service_id, portal_tenant_id, answers, \
                     page, created_at, updated_at) values ($1, $2, $3, $4, $5, $6, $7, $7) \
                     on conflict (id) do update set answers = excluded.answers, page = excluded.page, \
                     updated_at = excluded.updated_at where drafts.citizen_id = excluded.citizen_id",
                    args![
                        d.id.as_uuid(),
                        d.citizen_id.as_uuid(),
                        d.service_id.as_uuid(),
                        d.portal_tenant_id.as_uuid(),
                        &answers,
                        d.page,
                        to_us(d.updated_at),
                    ],
                )
                .await?;
                Ok(())
            })
            .await
    }

    async fn get_draft(&self, id: DraftId, citizen: CitizenId) -> StoreResult<Option<Draft>> {
        // Read by every page of a form: a point read (`crate::point`), which sees every commit
        // made before it starts (WAL), as the step just saved.
        self.point.optional(
            "select id, citizen_id, service_id, portal_tenant_id, answers, page, updated_at \
             from drafts where id = ?1 and citizen_id = ?2",
            [id.as_uuid(), citizen.as_uuid()],
            |r| read_draft(r),
        )
    }

    async fn list_drafts(&self, citizen: CitizenId) -> StoreResult<Vec<(Draft, String)>> {
        let rows = sqlx::query(
            "select d.id, d.citizen_id, d.service_id, d.portal_tenant_id, d.answers, d.page, \
             d.updated_at, s.title from drafts d join services s on s.id = d.service_id \
             where d.citizen_id = $1 order by d.updated_at desc",
        )
        .bind(citizen.as_uuid())
        .fetch_all(&self.read)
        .await
        .map_err(map_err)?;
        rows.iter().map(|r| Ok((read_draft(r)?, col(r, "title")?))).collect()
    }

    async fn delete_draft(&self, id: DraftId, citizen: CitizenId) -> StoreResult<()> {
        sqlx::query("delete from drafts where id = $1 and citizen_id = $2")
            .bind(id.as_uuid())
            .bind(citizen.as_uuid())
            .execute(&mut *self.write.lock().await?)
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
        .bind(to_us(f.created_at))
        .execute(&mut *self.write.lock().await?)
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
        .fetch_one(&self.read)
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
        .fetch_one(&self.read)
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
        self.write.grouped(async |tx| submit_in(tx, r, build, now).await).await
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
                .fetch_optional(&self.read)
                .await
                .map_err(map_err)?;
        Ok(id.map(RequestId::from_uuid))
    }

    async fn record(&self, records: &SubmissionRecords) -> StoreResult<()> {
        let now = OffsetDateTime::now_utc();
        // Agents' actions and the trace of every view of a request: grouped, a view costs a
        // share of a commit rather than a whole one.
        self.write.grouped(async |tx| record_in(tx, records, now).await).await
    }

    async fn list_citizen_requests(&self, citizen: CitizenId) -> StoreResult<Vec<RequestSummary>> {
        let rows = sqlx::query(
            "select r.id, r.reference, r.status, r.channel, r.submitted_at, s.title, t.name \
             from requests r join services s on s.id = r.service_id join tenants t on t.id = r.tenant_id \
             where r.citizen_id = $1 order by r.submitted_at desc",
        )
        .bind(citizen.as_uuid())
        .fetch_all(&self.read)
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
            .fetch_optional(&self.read)
            .await
            .map_err(map_err)?;
        row.as_ref().map(read_request).transpose()
    }

    // Here a request's events are in `seq` order, the order they were written: SQLite's one
    // writer keeps every tenant on lane 0 (PostgreSQL orders by `pos`).
    async fn list_request_events(
        &self,
        id: RequestId,
        citizen_view: bool,
    ) -> StoreResult<Vec<Event>> {
        let sql = format!(
            "select id, tenant_id, lane, seq, request_id, at, actor_kind, actor_id, channel, kind, \
             citizen_visible, data, prev_hash, hash from events where request_id = $1 {} order by seq",
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
        let rows =
            sqlx::query(&sql).bind(id.as_uuid()).fetch_all(&self.read).await.map_err(map_err)?;
        rows.iter().map(read_event).collect()
    }

    async fn list_request_history(&self, id: RequestId) -> StoreResult<Vec<Event>> {
        let rows = sqlx::query(
            "select id, tenant_id, lane, seq, request_id, at, actor_kind, actor_id, channel, kind, \
             citizen_visible, data, prev_hash, hash from events where request_id = $1 order by seq",
        )
        .bind(id.as_uuid())
        .fetch_all(&self.read)
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
        .fetch_all(&self.read)
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
