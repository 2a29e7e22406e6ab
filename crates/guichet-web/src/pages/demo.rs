//! Demo only: the e-mails Guichet has written, so that a visitor of the demo can read what
//! citizens receive (the demo's mail transport writes .eml files instead of sending).

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use guichet_domain::EmailId;
use guichet_domain::clock::datetime_fr;
use guichet_store::OutboxEmail;

use crate::pages::{Layout, render};
use crate::{AppError, AppState};

pub(crate) struct Row {
    pub email: OutboxEmail,
    pub when: String,
}

#[derive(Template)]
#[template(path = "demo/emails.html")]
struct ListPage {
    layout: Layout,
    rows: Vec<Row>,
}

/// `GET /demo/courriels`
pub(crate) async fn emails(State(state): State<AppState>) -> Result<Response, AppError> {
    if !state.config.demo {
        return Err(AppError::NotFound);
    }
    let rows = state
        .store
        .list_recent_emails(200)
        .await?
        .into_iter()
        .map(|email| Row { when: datetime_fr(email.created_at), email })
        .collect();
    render(&ListPage {
        layout: Layout::platform("Courriels envoyés (démonstration)", &state.config.platform_name),
        rows,
    })
}

#[derive(Template)]
#[template(path = "demo/email.html")]
struct EmailPage {
    layout: Layout,
    row: Row,
}

/// `GET /demo/courriels/{id}`
pub(crate) async fn email(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    if !state.config.demo {
        return Err(AppError::NotFound);
    }
    let id: EmailId = id.parse().map_err(|_| AppError::NotFound)?;
    let email = state.store.get_email(id).await?;
    let row = Row { when: datetime_fr(email.created_at), email };
    render(&EmailPage {
        layout: Layout::platform(row.email.email.subject.clone(), &state.config.platform_name),
        row,
    })
}
