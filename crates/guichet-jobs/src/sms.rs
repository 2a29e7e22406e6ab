//! Sending outbox text messages through Kannel.

use anyhow::Context;
use async_trait::async_trait;
use guichet_channels::sms::{Kannel, OutgoingSms, SmsError};
use guichet_store::SEND_SMS_JOB;

use crate::{JobContext, JobHandler};

/// Sends one outbox SMS. A message already handed to the gateway is not handed again; a crash
/// between the gateway's acceptance and the mark can send it twice (at-least-once, as e-mail). Without a configured gateway the message is marked failed
/// with the reason, visible to the agent on the request.
pub struct SendSms {
    /// The gateway, if configured.
    pub gateway: Option<Kannel>,
}

#[async_trait]
impl JobHandler for SendSms {
    fn kind(&self) -> &'static str {
        SEND_SMS_JOB
    }

    async fn run(&self, payload: serde_json::Value, ctx: JobContext) -> anyhow::Result<()> {
        let id: uuid::Uuid = payload
            .get("sms_id")
            .and_then(|v| v.as_str())
            .context("payload without sms_id")?
            .parse()
            .context("malformed sms_id")?;
        let stored = ctx.store.get_sms(id).await?;
        if stored.status != "pending" {
            return Ok(());
        }
        let Some(gateway) = &self.gateway else {
            ctx.store
                .mark_sms(id, "failed", Some("aucune passerelle SMS n'est configurée"), ctx.now)
                .await?;
            tracing::error!(sms.id = %id, "no SMS gateway configured: message not sent");
            return Ok(());
        };
        let outgoing = OutgoingSms {
            id: id.to_string(),
            to: stored.sms.to.clone(),
            text: stored.sms.body.clone(),
        };
        match gateway.send(&outgoing).await {
            Ok(()) => {
                ctx.store.mark_sms(id, "sent", None, ctx.now).await?;
                tracing::info!(sms.id = %id, segments = stored.sms.segments, "SMS handed to the gateway");
                Ok(())
            }
            Err(err @ SmsError::Rejected(_)) => {
                ctx.store.mark_sms(id, "failed", Some(&err.to_string()), ctx.now).await?;
                tracing::error!(sms.id = %id, error = %err, "SMS refused by the gateway");
                Ok(())
            }
            Err(err) => {
                if ctx.attempt >= ctx.max_attempts {
                    ctx.store.mark_sms(id, "failed", Some(&err.to_string()), ctx.now).await?;
                }
                Err(err.into())
            }
        }
    }
}
