//! E-mails written by the web edge (account messages, acknowledgements), rendered from
//! templates in plain text and HTML, stored in the outbox with the job that sends them.

use askama::Template;
use guichet_domain::{EmailId, RequestId};
use guichet_store::NewEmail;

use crate::{AppError, AppState};

/// A rendered e-mail.
pub(crate) fn email(
    state: &AppState,
    to: &str,
    subject: String,
    text: &impl Template,
    html: &impl Template,
    request: Option<RequestId>,
) -> Result<NewEmail, AppError> {
    let id = EmailId::new();
    Ok(NewEmail {
        id,
        to: to.to_owned(),
        subject,
        text: text.render()?,
        html: html.render()?,
        message_id: format!("{id}@{}", state.config.mail_domain),
        request_id: request,
        reply_to: None,
        references: Vec::new(),
        automatic: true,
    })
}
