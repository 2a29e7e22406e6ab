//! Endpoints, inbound messages and the SMS outbox on PostgreSQL.

use async_trait::async_trait;
use guichet_domain::request::Channel;
use guichet_domain::{AgentId, CitizenId, DocumentId, FileId, RequestId, TenantId};
use guichet_store::{
    ChannelStore, Endpoint, ImapPosition, InboundFile, InboundMessage, InboundUpdate, NewInbound,
    NewSms, OutboxSms, RequestRecord, StoreError, StoreResult, SubmissionRecords,
};
use sqlx::Connection as _;
use sqlx::types::Json;
use sqlx::{Postgres, Transaction};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::batch::Batch;
use crate::requests::{REQUEST_COLUMNS, read_request, write_records};
use crate::{PgStore, col, map_err, ts, ts_opt};

type Row = sqlx::postgres::PgRow;

/// Adds the text messages' insert to `batch` (nothing if there are none).
pub(crate) fn sms_part<'a>(batch: &mut Batch<'a>, messages: &'a [NewSms], now: OffsetDateTime) {
    if messages.is_empty() {
        return;
    }
    batch.part("new_sms", |q| {
        q.push(
            "insert into outbox_sms (id, tenant_id, request_id, to_phone, body, segments, created_at) ",
        );
        q.push_values(messages, |mut row, m| {
            row.push_bind(m.id)
                .push_bind(m.tenant_id.as_uuid())
                .push_bind(m.request_id.map(|r| r.as_uuid()))
                .push_bind(&m.to)
                .push_bind(&m.body)
                .push_bind(m.segments)
                .push_bind(now);
        });
    });
}

/// Applies inbound-message state changes inside a caller's transaction; a message whose state
/// is no longer the expected one refuses the whole write (two agents on the same contact).
pub(crate) async fn apply_inbound_updates(
    tx: &mut Transaction<'_, Postgres>,
    updates: &[InboundUpdate],
    now: OffsetDateTime,
) -> StoreResult<()> {
    for u in updates {
        let changed = sqlx::query(
            "update inbound_messages set state = $4, request_id = coalesce($5, request_id), \
             handled_by = $6, handled_at = $7, reason = coalesce($8, reason) \
             where id = $1 and tenant_id = $2 and state = $3",
        )
        .bind(u.id)
        .bind(u.tenant_id.as_uuid())
        .bind(&u.expected_state)
        .bind(&u.state)
        .bind(u.request_id.map(|r| r.as_uuid()))
        .bind(u.agent.map(|a| a.as_uuid()))
        .bind(now)
        .bind(&u.reason)
        .execute(&mut **tx)
        .await
        .map_err(map_err)?
        .rows_affected();
        if changed == 0 {
            return Err(StoreError::Conflict { constraint: "inbound_messages_state".into() });
        }
        if let Some(request) = u.request_id {
            sqlx::query(
                "insert into request_files (request_id, file_id) \
                 select $1, file_id from inbound_files where message_id = $2 on conflict do nothing",
            )
            .bind(request.as_uuid())
            .bind(u.id)
            .execute(&mut **tx)
            .await
            .map_err(map_err)?;
        }
    }
    Ok(())
}

const ENDPOINT_COLUMNS: &str = "id, tenant_id, kind, address, imap_url, imap_password, uid_validity, \
     last_uid, last_fetch_at, last_error";

fn read_endpoint(row: &Row) -> StoreResult<Endpoint> {
    Ok(Endpoint {
        id: col(row, "id")?,
        tenant_id: TenantId::from_uuid(col(row, "tenant_id")?),
        kind: col(row, "kind")?,
        address: col(row, "address")?,
        imap_url: col(row, "imap_url")?,
        imap_password: col(row, "imap_password")?,
        uid_validity: col(row, "uid_validity")?,
        last_uid: col(row, "last_uid")?,
        last_fetch_at: ts_opt(row, "last_fetch_at")?,
        last_error: col(row, "last_error")?,
    })
}

const INBOUND_COLUMNS: &str = "m.id, m.tenant_id, m.endpoint_id, m.channel, m.dedup_key, m.sender, \
     m.sender_name, m.subject, m.body, m.quoted, m.message_id, m.state, m.reason, m.request_id, \
     m.citizen_id, m.raw_file_id, m.files, m.received_at, m.handled_by, m.handled_at, \
     t.name as tenant_name, r.reference";

const INBOUND_FROM: &str = "inbound_messages m join tenants t on t.id = m.tenant_id \
     left join requests r on r.id = m.request_id";

fn read_inbound(row: &Row) -> StoreResult<InboundMessage> {
    let channel: String = col(row, "channel")?;
    Ok(InboundMessage {
        message: NewInbound {
            id: col(row, "id")?,
            tenant_id: TenantId::from_uuid(col(row, "tenant_id")?),
            endpoint_id: col(row, "endpoint_id")?,
            channel: Channel::parse(&channel)
                .ok_or_else(|| StoreError::Corrupt(format!("channel {channel}")))?,
            dedup_key: col(row, "dedup_key")?,
            sender: col(row, "sender")?,
            sender_name: col(row, "sender_name")?,
            subject: col(row, "subject")?,
            body: col(row, "body")?,
            quoted: col(row, "quoted")?,
            message_id: col(row, "message_id")?,
            state: col(row, "state")?,
            reason: col(row, "reason")?,
            request_id: col::<Option<Uuid>>(row, "request_id")?.map(RequestId::from_uuid),
            citizen_id: col::<Option<Uuid>>(row, "citizen_id")?.map(CitizenId::from_uuid),
            raw_file_id: col::<Option<Uuid>>(row, "raw_file_id")?.map(FileId::from_uuid),
            files: col::<Json<Vec<InboundFile>>>(row, "files")?.0,
            received_at: ts(row, "received_at")?,
        },
        tenant_name: col(row, "tenant_name")?,
        reference: col(row, "reference")?,
        handled_by: col::<Option<Uuid>>(row, "handled_by")?.map(AgentId::from_uuid),
        handled_at: ts_opt(row, "handled_at")?,
    })
}

const SMS_COLUMNS: &str =
    "id, tenant_id, request_id, to_phone, body, segments, status, last_error, created_at";

fn read_sms(row: &Row) -> StoreResult<OutboxSms> {
    Ok(OutboxSms {
        sms: NewSms {
            id: col(row, "id")?,
            tenant_id: TenantId::from_uuid(col(row, "tenant_id")?),
            request_id: col::<Option<Uuid>>(row, "request_id")?.map(RequestId::from_uuid),
            to: col(row, "to_phone")?,
            body: col(row, "body")?,
            segments: col(row, "segments")?,
        },
        status: col(row, "status")?,
        last_error: col(row, "last_error")?,
        created_at: ts(row, "created_at")?,
    })
}

#[async_trait]
impl ChannelStore for PgStore {
    async fn add_endpoint(&self, e: &Endpoint) -> StoreResult<()> {
        sqlx::query(
            "insert into endpoints (id, tenant_id, kind, address, imap_url, imap_password, created_at) \
             values ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(e.id)
        .bind(e.tenant_id.as_uuid())
        .bind(&e.kind)
        .bind(e.address.to_lowercase())
        .bind(&e.imap_url)
        .bind(&e.imap_password)
        .bind(OffsetDateTime::now_utc())
        .execute(&mut *self.pool.get().await?)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn list_endpoints(&self, tenant: Option<TenantId>) -> StoreResult<Vec<Endpoint>> {
        let sql = format!(
            "select {ENDPOINT_COLUMNS} from endpoints where ($1 is null or tenant_id = $1) order by kind, address"
        );
        let rows = sqlx::query(&sql)
            .bind(tenant.map(|t| t.as_uuid()))
            .fetch_all(&mut *self.pool.get().await?)
            .await
            .map_err(map_err)?;
        rows.iter().map(read_endpoint).collect()
    }

    async fn find_endpoint(&self, address: &str) -> StoreResult<Option<Endpoint>> {
        let sql = format!("select {ENDPOINT_COLUMNS} from endpoints where address = $1");
        let row = sqlx::query(&sql)
            .bind(address.trim().to_lowercase())
            .fetch_optional(&mut *self.pool.get().await?)
            .await
            .map_err(map_err)?;
        row.as_ref().map(read_endpoint).transpose()
    }

    async fn delete_endpoint(&self, tenant: TenantId, id: Uuid) -> StoreResult<()> {
        let n = sqlx::query("delete from endpoints where id = $1 and tenant_id = $2")
            .bind(id)
            .bind(tenant.as_uuid())
            .execute(&mut *self.pool.get().await?)
            .await
            .map_err(map_err)?
            .rows_affected();
        if n == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    async fn set_endpoint_status(
        &self,
        id: Uuid,
        position: Option<(i64, i64)>,
        error: Option<&str>,
        at: OffsetDateTime,
    ) -> StoreResult<()> {
        sqlx::query(
            "update endpoints set last_fetch_at = $2, last_error = $3, \
             uid_validity = coalesce($4, uid_validity), last_uid = coalesce($5, last_uid) where id = $1",
        )
        .bind(id)
        .bind(at)
        .bind(error)
        .bind(position.map(|p| p.0))
        .bind(position.map(|p| p.1))
        .execute(&mut *self.pool.get().await?)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn ingest(
        &self,
        m: &NewInbound,
        position: Option<&ImapPosition>,
        records: &SubmissionRecords,
    ) -> StoreResult<bool> {
        let now = OffsetDateTime::now_utc();
        let mut conn = self.pool.get().await?;
        let mut tx = conn.begin().await.map_err(map_err)?;
        let inserted = sqlx::query(
            "insert into inbound_messages (id, tenant_id, endpoint_id, channel, dedup_key, sender, \
             sender_name, subject, body, quoted, message_id, state, reason, request_id, citizen_id, \
             raw_file_id, files, received_at, created_at) \
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19) \
             on conflict (tenant_id, dedup_key) do nothing",
        )
        .bind(m.id)
        .bind(m.tenant_id.as_uuid())
        .bind(m.endpoint_id)
        .bind(m.channel.as_str())
        .bind(&m.dedup_key)
        .bind(&m.sender)
        .bind(&m.sender_name)
        .bind(&m.subject)
        .bind(&m.body)
        .bind(&m.quoted)
        .bind(&m.message_id)
        .bind(&m.state)
        .bind(&m.reason)
        .bind(m.request_id.map(|r| r.as_uuid()))
        .bind(m.citizen_id.map(|c| c.as_uuid()))
        .bind(m.raw_file_id.map(|f| f.as_uuid()))
        .bind(Json(&m.files))
        .bind(m.received_at)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?
        .rows_affected()
            == 1;
        if inserted {
            let files = m.files.iter().map(|f| f.id).chain(m.raw_file_id);
            for file in files {
                sqlx::query(
                    "insert into inbound_files (message_id, file_id) values ($1, $2) on conflict do nothing",
                )
                .bind(m.id)
                .bind(file.as_uuid())
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
            }
            if let Some(request) = m.request_id {
                for f in &m.files {
                    sqlx::query(
                        "insert into request_files (request_id, file_id) values ($1, $2) on conflict do nothing",
                    )
                    .bind(request.as_uuid())
                    .bind(f.id.as_uuid())
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                }
                sqlx::query("update requests set updated_at = $2 where id = $1")
                    .bind(request.as_uuid())
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
            }
            write_records(&mut tx, m.request_id, records, now, None).await?;
        }
        if let Some(p) = position {
            sqlx::query(
                "update endpoints set uid_validity = $2, last_uid = $3, last_fetch_at = $4, last_error = null \
                 where id = $1 and (uid_validity is null or uid_validity <> $2 or last_uid < $3)",
            )
            .bind(p.endpoint_id)
            .bind(p.uid_validity)
            .bind(p.uid)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(inserted)
    }

    async fn inbound_exists(&self, tenant: TenantId, dedup_key: &str) -> StoreResult<bool> {
        let n: i64 = sqlx::query_scalar(
            "select count(*) from inbound_messages where tenant_id = $1 and dedup_key = $2",
        )
        .bind(tenant.as_uuid())
        .bind(dedup_key)
        .fetch_one(&mut *self.pool.get().await?)
        .await
        .map_err(map_err)?;
        Ok(n > 0)
    }

    async fn thread_request(
        &self,
        tenant: TenantId,
        thread_ids: &[String],
        reference: Option<&str>,
    ) -> StoreResult<Option<RequestId>> {
        for id in thread_ids.iter().take(20) {
            let found: Option<Uuid> = sqlx::query_scalar(
                "select r.id from outbox_emails o join requests r on r.id = o.request_id \
                 where o.message_id = $1 and r.tenant_id = $2 \
                 union all \
                 select r.id from inbound_messages m join requests r on r.id = m.request_id \
                 where m.message_id = $1 and m.tenant_id = $2 and r.tenant_id = $2 limit 1",
            )
            .bind(id)
            .bind(tenant.as_uuid())
            .fetch_optional(&mut *self.pool.get().await?)
            .await
            .map_err(map_err)?;
            if let Some(id) = found {
                return Ok(Some(RequestId::from_uuid(id)));
            }
        }
        let Some(reference) = reference else { return Ok(None) };
        let found: Option<Uuid> =
            sqlx::query_scalar("select id from requests where tenant_id = $1 and reference = $2")
                .bind(tenant.as_uuid())
                .bind(reference)
                .fetch_optional(&mut *self.pool.get().await?)
                .await
                .map_err(map_err)?;
        Ok(found.map(RequestId::from_uuid))
    }

    async fn open_request_by_phone(
        &self,
        tenant: TenantId,
        phone: &str,
    ) -> StoreResult<Option<RequestId>> {
        let found: Option<Uuid> = sqlx::query_scalar(
            "select r.id from requests r \
             where r.tenant_id = $1 and r.phase <> 'closed' and r.submitter->>'telephone' = $2 \
             order by r.submitted_at desc limit 1",
        )
        .bind(tenant.as_uuid())
        .bind(phone)
        .fetch_optional(&mut *self.pool.get().await?)
        .await
        .map_err(map_err)?;
        Ok(found.map(RequestId::from_uuid))
    }

    async fn find_citizen_by_phone(&self, phone: &str) -> StoreResult<Option<CitizenId>> {
        let found: Option<Uuid> = sqlx::query_scalar(
            "select id from citizens where phone = $1 order by created_at limit 1",
        )
        .bind(phone)
        .fetch_optional(&mut *self.pool.get().await?)
        .await
        .map_err(map_err)?;
        Ok(found.map(CitizenId::from_uuid))
    }

    async fn list_inbound(
        &self,
        agent: AgentId,
        states: &[&str],
        limit: i64,
    ) -> StoreResult<Vec<InboundMessage>> {
        // States are a fixed vocabulary; binding them one by one keeps the SQL parameterised.
        let placeholders: Vec<String> = (0..states.len()).map(|i| format!("${}", i + 3)).collect();
        let sql = format!(
            "select {INBOUND_COLUMNS} from {INBOUND_FROM} \
             where m.tenant_id in (select tenant_id from memberships where agent_id = $1) \
             and m.state in ({}) order by m.received_at desc, m.id desc limit $2",
            if placeholders.is_empty() { "null".to_owned() } else { placeholders.join(", ") }
        );
        let mut q = sqlx::query(&sql).bind(agent.as_uuid()).bind(limit);
        for s in states {
            q = q.bind(*s);
        }
        let rows = q.fetch_all(&mut *self.pool.get().await?).await.map_err(map_err)?;
        rows.iter().map(read_inbound).collect()
    }

    async fn count_contacts(&self, agent: AgentId) -> StoreResult<i64> {
        sqlx::query_scalar(
            "select count(*) from inbound_messages where state = 'contact' \
             and tenant_id in (select tenant_id from memberships where agent_id = $1)",
        )
        .bind(agent.as_uuid())
        .fetch_one(&mut *self.pool.get().await?)
        .await
        .map_err(map_err)
    }

    async fn get_inbound(&self, agent: AgentId, id: Uuid) -> StoreResult<Option<InboundMessage>> {
        let sql = format!(
            "select {INBOUND_COLUMNS} from {INBOUND_FROM} where m.id = $2 \
             and m.tenant_id in (select tenant_id from memberships where agent_id = $1)"
        );
        let row = sqlx::query(&sql)
            .bind(agent.as_uuid())
            .bind(id)
            .fetch_optional(&mut *self.pool.get().await?)
            .await
            .map_err(map_err)?;
        row.as_ref().map(read_inbound).transpose()
    }

    async fn request_inbound(&self, request: RequestId) -> StoreResult<Vec<InboundMessage>> {
        let sql = format!(
            "select {INBOUND_COLUMNS} from {INBOUND_FROM} where m.request_id = $1 order by m.received_at, m.id"
        );
        let rows = sqlx::query(&sql)
            .bind(request.as_uuid())
            .fetch_all(&mut *self.pool.get().await?)
            .await
            .map_err(map_err)?;
        rows.iter().map(read_inbound).collect()
    }

    async fn get_request(&self, id: RequestId) -> StoreResult<RequestRecord> {
        let sql = format!("select {REQUEST_COLUMNS} from requests where id = $1");
        let row = sqlx::query(&sql)
            .bind(id.as_uuid())
            .fetch_one(&mut *self.pool.get().await?)
            .await
            .map_err(map_err)?;
        read_request(&row)
    }

    async fn get_sms(&self, id: Uuid) -> StoreResult<OutboxSms> {
        let sql = format!("select {SMS_COLUMNS} from outbox_sms where id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_one(&mut *self.pool.get().await?)
            .await
            .map_err(map_err)?;
        read_sms(&row)
    }

    async fn mark_sms(
        &self,
        id: Uuid,
        status: &str,
        error: Option<&str>,
        at: OffsetDateTime,
    ) -> StoreResult<()> {
        // Order of states: pending < sent < delivered | failed; a report never goes back.
        sqlx::query(
            "update outbox_sms set status = $2, last_error = coalesce($3, last_error), \
             sent_at = case when $2 = 'sent' then $4 else sent_at end, \
             delivered_at = case when $2 = 'delivered' then $4 else delivered_at end \
             where id = $1 and (status = 'pending' or (status = 'sent' and $2 in ('delivered', 'failed')))",
        )
        .bind(id)
        .bind(status)
        .bind(error)
        .bind(at)
        .execute(&mut *self.pool.get().await?)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn request_sms(&self, request: RequestId) -> StoreResult<Vec<OutboxSms>> {
        let sql = format!(
            "select {SMS_COLUMNS} from outbox_sms where request_id = $1 order by created_at, id"
        );
        let rows = sqlx::query(&sql)
            .bind(request.as_uuid())
            .fetch_all(&mut *self.pool.get().await?)
            .await
            .map_err(map_err)?;
        rows.iter().map(read_sms).collect()
    }

    async fn mark_emails_bounced(
        &self,
        tenant: TenantId,
        message_ids: &[String],
        reason: &str,
    ) -> StoreResult<u64> {
        let mut n = 0;
        for id in message_ids.iter().take(20) {
            n += sqlx::query(
                "update outbox_emails set status = 'failed', last_error = $2 where message_id = $1 \
                 and status = 'sent' and request_id in (select id from requests where tenant_id = $3)",
            )
            .bind(id)
            .bind(reason)
            .bind(tenant.as_uuid())
            .execute(&mut *self.pool.get().await?)
            .await
            .map_err(map_err)?
            .rows_affected();
        }
        Ok(n)
    }

    async fn find_letter(
        &self,
        agent: AgentId,
        code: &str,
    ) -> StoreResult<Option<(RequestId, DocumentId)>> {
        let row = sqlx::query(
            "select d.id, d.request_id from documents d join requests r on r.id = d.request_id \
             where d.code = $2 and r.tenant_id in (select tenant_id from memberships where agent_id = $1)",
        )
        .bind(agent.as_uuid())
        .bind(code)
        .fetch_optional(&mut *self.pool.get().await?)
        .await
        .map_err(map_err)?;
        match row {
            Some(row) => Ok(Some((
                RequestId::from_uuid(col(&row, "request_id")?),
                DocumentId::from_uuid(col(&row, "id")?),
            ))),
            None => Ok(None),
        }
    }
}
