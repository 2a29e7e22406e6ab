//! Outgoing e-mail, written in the same transaction as its cause and sent by a job.

use async_trait::async_trait;
use guichet_domain::{EmailId, RequestId};
use time::OffsetDateTime;

use crate::{NewJob, StoreResult};

/// The job kind that sends an outbox e-mail (payload: `{"email_id": "…"}`).
pub const SEND_EMAIL_JOB: &str = "email.send";

/// An e-mail to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEmail {
    /// Identifier.
    pub id: EmailId,
    /// Recipient address.
    pub to: String,
    /// Subject.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// HTML body.
    pub html: String,
    /// `Message-ID` header value (without angle brackets), for threading replies.
    pub message_id: String,
    /// The request it concerns, if any.
    pub request_id: Option<RequestId>,
    /// `Reply-To` (the tenant's functional address), so that answers come back to Guichet.
    pub reply_to: Option<String>,
    /// Message-IDs this one answers, oldest first (`In-Reply-To`, `References`).
    pub references: Vec<String>,
    /// Sent by Guichet on its own (acknowledgements, notifications): marked
    /// `Auto-Submitted` so that vacation responders and other robots do not answer it.
    /// False for an agent's answer, written by a person.
    pub automatic: bool,
}

impl NewEmail {
    /// The job that sends it, to enqueue in the same transaction.
    pub fn send_job(&self, now: OffsetDateTime) -> NewJob {
        NewJob::now(SEND_EMAIL_JOB, serde_json::json!({"email_id": self.id}), now)
            .dedup(format!("{SEND_EMAIL_JOB}:{}", self.id))
    }
}

/// An e-mail in the outbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxEmail {
    /// The e-mail.
    pub email: NewEmail,
    /// "pending", "sent" or "failed".
    pub status: String,
    /// When it left.
    pub sent_at: Option<OffsetDateTime>,
    /// Last delivery error.
    pub last_error: Option<String>,
    /// When it was written.
    pub created_at: OffsetDateTime,
}

/// The outbox.
#[async_trait]
pub trait OutboxStore {
    /// An e-mail by id.
    async fn get_email(&self, id: EmailId) -> StoreResult<OutboxEmail>;

    /// Marks an e-mail sent.
    async fn mark_email_sent(&self, id: EmailId, now: OffsetDateTime) -> StoreResult<()>;

    /// Records a delivery failure (`failed` when the job gives up).
    async fn mark_email_failed(&self, id: EmailId, error: &str, given_up: bool) -> StoreResult<()>;

    /// The most recent e-mails, newest first (the demo's mail viewer).
    async fn list_recent_emails(&self, limit: i64) -> StoreResult<Vec<OutboxEmail>>;
}
