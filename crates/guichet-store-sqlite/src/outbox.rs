//! The e-mail outbox on SQLite.

use async_trait::async_trait;
use guichet_domain::{EmailId, RequestId};
use guichet_store::{NewEmail, OutboxEmail, OutboxStore, StoreResult};
use sqlx::sqlite::SqliteRow;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::exec::{WriteTx, args};
use crate::{SqliteStore, col, map_err, to_us, ts, ts_opt};

/// Writes e-mails inside a caller's transaction.
pub(crate) async fn insert_emails(
    tx: &mut impl WriteTx,
    emails: &[NewEmail],
    now: OffsetDateTime,
) -> StoreResult<()> {
    for e in emails {
        tx.exec(
            "insert into outbox_emails (id, to_address, subject, body_text, body_html, message_id, \
             request_id, created_at, reply_to, refs, automatic) \
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            args![
                e.id.as_uuid(),
                &e.to,
                &e.subject,
                &e.text,
                &e.html,
                &e.message_id,
                e.request_id.map(|r| r.as_uuid()),
                to_us(now),
                &e.reply_to,
                e.references.join(" "),
                e.automatic,
            ],
        )
        .await?;
    }
    Ok(())
}

const COLUMNS: &str = "id, to_address, subject, body_text, body_html, message_id, request_id, \
     status, sent_at, last_error, created_at, reply_to, refs, automatic";

fn read_email(row: &SqliteRow) -> StoreResult<OutboxEmail> {
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
impl OutboxStore for SqliteStore {
    async fn get_email(&self, id: EmailId) -> StoreResult<OutboxEmail> {
        let sql = format!("select {COLUMNS} from outbox_emails where id = $1");
        let row =
            sqlx::query(&sql).bind(id.as_uuid()).fetch_one(&self.read).await.map_err(map_err)?;
        read_email(&row)
    }

    async fn mark_email_sent(&self, id: EmailId, now: OffsetDateTime) -> StoreResult<()> {
        self.write
            .grouped(async |tx| {
                tx.exec(
                    "update outbox_emails set status = 'sent', sent_at = $2, last_error = null \
                     where id = $1",
                    args![id.as_uuid(), to_us(now)],
                )
                .await
            })
            .await?;
        Ok(())
    }

    async fn mark_email_failed(&self, id: EmailId, error: &str, given_up: bool) -> StoreResult<()> {
        self.write
            .grouped(async |tx| {
                tx.exec(
                    "update outbox_emails set last_error = $2, \
                     status = case when $3 then 'failed' else status end where id = $1",
                    args![id.as_uuid(), error, given_up],
                )
                .await
            })
            .await?;
        Ok(())
    }

    async fn list_recent_emails(&self, limit: i64) -> StoreResult<Vec<OutboxEmail>> {
        let sql = format!("select {COLUMNS} from outbox_emails order by created_at desc limit $1");
        let rows = sqlx::query(&sql).bind(limit).fetch_all(&self.read).await.map_err(map_err)?;
        rows.iter().map(read_email).collect()
    }
}
