//! Sending outbox e-mail.

use std::sync::Arc;

use anyhow::Context;
use async_trait::async_trait;
use guichet_channels::{MailError, Mailer, OutgoingEmail};
use guichet_domain::EmailId;
use guichet_store::SEND_EMAIL_JOB;

use crate::{JobContext, JobHandler};

/// Sends one outbox e-mail. Idempotent: an e-mail already marked sent is not sent again. (A
/// crash between delivery and marking can still send it twice; e-mail offers nothing better
/// than at-least-once, and the Message-ID lets clients drop the duplicate.)
pub struct SendEmail {
    /// The transport.
    pub mailer: Arc<dyn Mailer>,
    /// The `From` of every message.
    pub from: String,
}

#[async_trait]
impl JobHandler for SendEmail {
    fn kind(&self) -> &'static str {
        SEND_EMAIL_JOB
    }

    async fn run(&self, payload: serde_json::Value, ctx: JobContext) -> anyhow::Result<()> {
        let id: EmailId = payload
            .get("email_id")
            .and_then(|v| v.as_str())
            .context("payload without email_id")?
            .parse()
            .context("malformed email_id")?;
        let stored = ctx.store.get_email(id).await?;
        if stored.status == "sent" {
            return Ok(());
        }
        let e = &stored.email;
        let outgoing = OutgoingEmail {
            from: self.from.clone(),
            to: e.to.clone(),
            subject: e.subject.clone(),
            text: e.text.clone(),
            html: e.html.clone(),
            message_id: e.message_id.clone(),
            reply_to: e.reply_to.clone(),
            references: e.references.clone(),
            automatic: e.automatic,
        };
        match self.mailer.send(&outgoing).await {
            Ok(()) => {
                ctx.store.mark_email_sent(id, ctx.now).await?;
                tracing::info!(email.id = %id, transport = self.mailer.kind(), "e-mail sent");
                Ok(())
            }
            Err(err) => {
                // A malformed message will never go: record it as failed at once.
                let given_up =
                    matches!(err, MailError::Invalid(_)) || ctx.attempt >= ctx.max_attempts;
                ctx.store.mark_email_failed(id, &err.to_string(), given_up).await?;
                if matches!(err, MailError::Invalid(_)) {
                    tracing::error!(email.id = %id, error = %err, "e-mail cannot be sent");
                    return Ok(());
                }
                Err(err.into())
            }
        }
    }
}
