//! The e-mail outbox on PostgreSQL.

use async_trait::async_trait;
use guichet_domain::{EmailId, RequestId};
use guichet_store::{NewEmail, OutboxEmail, OutboxStore, StoreResult};
use sqlx::postgres::PgRow;
use sqlx::{Postgres, Transaction};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::batch::Batch;
use crate::{PgStore, col, map_err, ts, ts_opt};

/// Writes e-mails inside a caller's transaction.
pub(crate) async fn insert_emails(
    tx: &mut Transaction<'_, Postgres>,
    emails: &[NewEmail],
    now: OffsetDateTime,
) -> StoreResult<()> {
    let mut batch = Batch::new();
    emails_part(&mut batch, emails, now);
    batch.execute(tx).await
}

/// Adds the e-mails' insert to `batch` (nothing if there are none).
pub(crate) fn emails_part<'a>(batch: &mut Batch<'a>, emails: &'a [NewEmail], now: OffsetDateTime) {
    if emails.is_empty() {
        return;
    }
    batch.part("new_emails", |q| {
        q.push(
            "insert into outbox_emails (id, to_address, subject, body_text, body_html, message_id, \
             request_id, created_at, reply_to, refs, automatic) ",
        );
        q.push_values(emails, |mut row, e| {
            row.push_bind(e.id.as_uuid())
                .push_bind(&e.to)
                .push_bind(&e.subject)
                .push_bind(&e.text)
                .push_bind(&e.html)
                .push_bind(&e.message_id)
                .push_bind(e.request_id.map(|r| r.as_uuid()))
                .push_bind(now)
                .push_bind(&e.reply_to)
                .push_bind(e.references.join(" "))
                .push_bind(e.automatic);
        });
    });
}

const COLUMNS: &str = "id, to_address, subject, body_text, body_html, message_id, request_id, \
     status, sent_at, last_error, created_at, reply_to, refs, automatic";

fn read_email(row: &PgRow) -> StoreResult<OutboxEmail> {
    Ok(OutboxEmail {
        email: NewEmail {
            id: EmailId::from_uuid(col(row, "id")?),
            to: col(row, "to_address")?,
            subject: col(row, "subject")?,
            text: col(row, "body_text")?,
            html: col(row, "body_html")?,
            message_id: col(row, "message_id")?,
            request_id: col::<Option<Uuid>>(row, "request_id")?.map(RequestId::from_uuid),
            reply_to: col(row, "reply_to")?,
            references: col::<String>(row, "refs")?.split_whitespace().map(str::to_owned).collect(),
            automatic: col(row, "automatic")?,
        },
        status: col(row, "status")?,
        sent_at: ts_opt(row, "sent_at")?,
        last_error: col(row, "last_error")?,
        created_at: ts(row, "created_at")?,
    })
}

#[async_trait]
impl OutboxStore for PgStore {
    async fn get_email(&self, id: EmailId) -> StoreResult<OutboxEmail> {
        let sql = format!("select {COLUMNS} from outbox_emails where id = $1");
        let row = sqlx::query(&sql)
            .bind(id.as_uuid())
            .fetch_one(&mut *self.pool.get().await?)
            .await
            .map_err(map_err)?;
        read_email(&row)
    }

    async fn mark_email_sent(&self, id: EmailId, now: OffsetDateTime) -> StoreResult<()> {
        sqlx::query("update outbox_emails set status = 'sent', sent_at = $2, last_error = null where id = $1")
            .bind(id.as_uuid())
            .bind(now)
            .execute(&mut *self.pool.get().await?)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn mark_email_failed(&self, id: EmailId, error: &str, given_up: bool) -> StoreResult<()> {
        sqlx::query(
            "update outbox_emails set last_error = $2, \
             status = case when $3 then 'failed' else status end where id = $1",
        )
        .bind(id.as_uuid())
        .bind(error)
        .bind(given_up)
        .execute(&mut *self.pool.get().await?)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn list_recent_emails(&self, limit: i64) -> StoreResult<Vec<OutboxEmail>> {
        let sql = format!("select {COLUMNS} from outbox_emails order by created_at desc limit $1");
        let rows = sqlx::query(&sql)
            .bind(limit)
            .fetch_all(&mut *self.pool.get().await?)
            .await
            .map_err(map_err)?;
        rows.iter().map(read_email).collect()
    }
}
