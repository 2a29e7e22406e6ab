//! The e-mail outbox on SQLite.

use std::sync::LazyLock;

use async_trait::async_trait;
use guichet_domain::{EmailId, RequestId};
use guichet_store::{NewEmail, OutboxEmail, OutboxStore, StoreError, StoreResult};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::exec::{WriteTx, args};
use crate::point::Columns;
use crate::{SqliteStore, map_err, to_us};

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

fn read_email(row: &impl Columns) -> StoreResult<OutboxEmail> {
    Ok(OutboxEmail {
        email: NewEmail {
            id: EmailId::from_uuid(row.get("id")?),
            to: row.get("to_address")?,
            subject: row.get("subject")?,
            text: row.get("body_text")?,
            html: row.get("body_html")?,
            message_id: row.get("message_id")?,
            request_id: row.get::<Option<Uuid>>("request_id")?.map(RequestId::from_uuid),
            reply_to: row.get("reply_to")?,
            references: row.get::<String>("refs")?.split_whitespace().map(str::to_owned).collect(),
            automatic: row.get("automatic")?,
        },
        status: row.get("status")?,
        sent_at: row.instant_opt("sent_at")?,
        last_error: row.get("last_error")?,
        created_at: row.instant("created_at")?,
    })
}

/// A point read (`crate::point`): the job runner reads each e-mail it sends.
static BY_ID: LazyLock<String> =
    LazyLock::new(|| format!("select {COLUMNS} from outbox_emails where id = ?1"));

#[async_trait]
impl OutboxStore for SqliteStore {
    async fn get_email(&self, id: EmailId) -> StoreResult<OutboxEmail> {
        self.point.optional(&BY_ID, [id.as_uuid()], |r| read_email(r))?.ok_or(StoreError::NotFound)
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
