//! The citizen's own space: their requests across the whole territory, drafts, each
//! request's timeline, acknowledgements and files, and messages to the handling service.

use askama::Template;
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use guichet_domain::clock::{date_fr, datetime_fr};
use guichet_domain::form::{Field, FieldKind, FileKind};
use guichet_domain::request::{ActorKind, Channel, status};
use guichet_domain::{DocumentId, EventId, FileId, RequestId};
use guichet_store::{
    Citizen, Document, NewEvent, RequestRecord, RequestSummary, SubmissionRecords,
};
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::ack::{self, Ack, AckKind};
use crate::pages::account::require_citizen;
use crate::pages::demarche::read_posted;
use crate::pages::{Layout, render};
use crate::session::Visitor;
use crate::{AppError, AppState};

/// A row of "my requests".
pub(crate) struct RequestRow {
    pub summary: RequestSummary,
    pub status: &'static str,
    pub submitted: String,
}

/// A draft row.
pub(crate) struct DraftRow {
    pub title: String,
    pub href: String,
    pub updated: String,
    pub delete_href: String,
}

#[derive(Template)]
#[template(path = "mine/home.html")]
struct HomePage {
    layout: Layout,
    csrf: String,
    citizen: std::sync::Arc<Citizen>,
    requests: Vec<RequestRow>,
    drafts: Vec<DraftRow>,
    notice: Option<&'static str>,
}

#[derive(Deserialize)]
pub(crate) struct Notices {
    inscription: Option<String>,
    brouillon: Option<String>,
    brouillon_supprime: Option<String>,
}

/// `GET /compte/`
pub(crate) async fn home(
    State(state): State<AppState>,
    visitor: Visitor,
    Query(q): Query<Notices>,
) -> Result<Response, AppError> {
    let citizen = require_citizen(&state, &visitor, "/compte/").await?;
    let requests = state
        .store
        .list_citizen_requests(citizen.id)
        .await?
        .into_iter()
        .map(|summary| RequestRow {
            status: status::label(&summary.status),
            submitted: datetime_fr(summary.submitted_at),
            summary,
        })
        .collect();
    let mut drafts = Vec::new();
    for (d, title) in state.store.list_drafts(citizen.id).await? {
        let tenant = state.store.get_tenant(d.portal_tenant_id).await?;
        let page = usize::try_from(d.page).unwrap_or(0) + 1;
        drafts.push(DraftRow {
            title,
            href: format!("/{}/brouillons/{}/etape/{page}", tenant.slug, d.id),
            delete_href: format!("/{}/brouillons/{}/supprimer", tenant.slug, d.id),
            updated: datetime_fr(d.updated_at),
        });
    }
    let notice = if q.inscription.is_some() {
        Some(
            "Votre compte est créé. Un lien de confirmation vient d'être envoyé à votre adresse électronique.",
        )
    } else if q.brouillon.is_some() {
        Some("Votre demande est enregistrée en brouillon : vous pourrez la reprendre ici.")
    } else if q.brouillon_supprime.is_some() {
        Some("Le brouillon est supprimé.")
    } else {
        None
    };
    render(&HomePage {
        layout: Layout::platform("Mon espace", &state.config.platform_name),
        csrf: visitor.csrf(&state).await?,
        citizen,
        requests,
        drafts,
        notice,
    })
}

/// An entry of the citizen's timeline.
pub(crate) struct TimelineEntry {
    pub when: String,
    pub what: String,
    pub channel: &'static str,
    pub body: Option<String>,
    pub files: Vec<(String, String)>,
    pub from_citizen: bool,
}

fn describe(kind: &str, data: &Value, actor: ActorKind) -> String {
    match kind {
        "submitted" => "Demande envoyée".to_owned(),
        "acknowledged" => match data.get("kind").and_then(Value::as_str) {
            Some("aee") => "Accusé d'enregistrement envoyé".to_owned(),
            _ => "Accusé de réception envoyé".to_owned(),
        },
        "message" if actor == ActorKind::Citizen => "Votre message".to_owned(),
        "message" => "Message du service".to_owned(),
        "status_changed" => format!(
            "Statut : {}",
            status::label(data.get("to").and_then(Value::as_str).unwrap_or(""))
        ),
        other => other.replace('_', " "),
    }
}

#[derive(Template)]
#[template(path = "mine/request.html")]
struct RequestPage {
    layout: Layout,
    csrf: String,
    request: RequestRecord,
    service_title: String,
    handler_name: String,
    status: &'static str,
    submitted: String,
    deemed: Option<String>,
    regime: String,
    answers: Vec<(String, Vec<(String, String)>)>,
    files: Vec<(String, String)>,
    timeline: Vec<TimelineEntry>,
    documents: Vec<Document>,
    just_sent: bool,
    message_error: Option<String>,
    message_text: String,
    message_sent: bool,
    open: bool,
}

#[derive(Deserialize)]
pub(crate) struct RequestNotices {
    envoye: Option<String>,
    message: Option<String>,
}

async fn load_request(
    state: &AppState,
    citizen: &Citizen,
    id: &str,
) -> Result<RequestRecord, AppError> {
    let id: RequestId = id.parse().map_err(|_| AppError::NotFound)?;
    // Another citizen's request does not exist for this one: same 404 as a wrong id.
    state.store.get_citizen_request(id, citizen.id).await?.ok_or(AppError::NotFound)
}

async fn request_page(
    state: &AppState,
    visitor: &Visitor,
    citizen: &Citizen,
    request: RequestRecord,
    notices: (bool, bool),
    message: (Option<String>, String),
) -> Result<RequestPage, AppError> {
    let service = state.store.get_service(request.service_id).await?;
    let handler = state.store.get_tenant(request.tenant_id).await?;
    let events = state.store.list_request_events(request.id, true).await?;
    let documents = state.store.list_request_documents(request.id).await?;
    let timeline = events
        .iter()
        .map(|e| TimelineEntry {
            when: datetime_fr(e.event.at),
            what: describe(&e.event.kind, &e.event.data, e.event.actor_kind),
            channel: e.event.channel.label(),
            body: e.event.data.get("body").and_then(Value::as_str).map(str::to_owned),
            files: e
                .event
                .data
                .get("files")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|f| {
                            Some((
                                f.get("id")?.as_str()?.to_owned(),
                                f.get("name")?.as_str()?.to_owned(),
                            ))
                        })
                        .collect()
                })
                .unwrap_or_default(),
            from_citizen: e.event.actor_kind == ActorKind::Citizen,
        })
        .collect();
    let files = request
        .answers
        .values()
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(|f| {
            Some((f.get("id")?.as_str()?.to_owned(), f.get("name")?.as_str()?.to_owned()))
        })
        .collect();
    let regime = match service.regime.as_str() {
        "sva" => "Silence vaut acceptation",
        "svr" => "Silence vaut rejet",
        _ => "Pas de décision implicite",
    }
    .to_owned();
    let _ = citizen;
    Ok(RequestPage {
        layout: Layout::platform(
            format!("Demande {}", request.reference),
            &state.config.platform_name,
        ),
        csrf: visitor.csrf(state).await?,
        service_title: service.title.clone(),
        handler_name: handler.name,
        status: status::label(&request.status),
        submitted: datetime_fr(request.submitted_at),
        deemed: request.deemed_decision_on.map(date_fr),
        regime,
        answers: service.form.summary(&request.answers),
        files,
        timeline,
        documents,
        just_sent: notices.0,
        message_sent: notices.1,
        message_error: message.0,
        message_text: message.1,
        open: !matches!(request.status.as_str(), "closed" | "accepted" | "rejected"),
        request,
    })
}

/// `GET /compte/demandes/{id}`
pub(crate) async fn show(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(id): Path<String>,
    Query(q): Query<RequestNotices>,
) -> Result<Response, AppError> {
    let citizen = require_citizen(&state, &visitor, &format!("/compte/demandes/{id}")).await?;
    let request = load_request(&state, &citizen, &id).await?;
    let page = request_page(
        &state,
        &visitor,
        &citizen,
        request,
        (q.envoye.is_some(), q.message.is_some()),
        (None, String::new()),
    )
    .await?;
    render(&page)
}

/// The message form's fields, for file checks.
fn message_fields() -> Vec<Field> {
    vec![Field {
        key: "pieces".to_owned(),
        label: "Pièces jointes".to_owned(),
        kind: FieldKind::File {
            accept: vec![FileKind::Pdf, FileKind::Image],
            max_size_mb: 10,
            multiple: true,
        },
        required: false,
        help: None,
        condition: None,
    }]
}

/// `POST /compte/demandes/{id}/messages`: a message (and files) to the handling service. It
/// is an electronic submission, so it is acknowledged like the request itself.
pub(crate) async fn post_message(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, AppError> {
    let citizen = require_citizen(&state, &visitor, &format!("/compte/demandes/{id}")).await?;
    let record = load_request(&state, &citizen, &id).await?;
    let fields = message_fields();
    let refs: Vec<&Field> = fields.iter().collect();
    let posted = read_posted(&state, &visitor, request, &refs, Some(citizen.id)).await?;
    let body = posted.get("message").replace("\r\n", "\n");
    let files = posted.files.get("pieces").cloned().unwrap_or_default();
    let error = if let Some(fe) = posted.file_errors.first() {
        Some(fe.message.clone())
    } else if body.is_empty() && files.is_empty() {
        Some("« Votre message » : écrivez un message ou joignez un fichier.".to_owned())
    } else if body.chars().count() > 5000 {
        Some("« Votre message » : ne doit pas dépasser 5000 caractères.".to_owned())
    } else {
        None
    };
    if error.is_some() {
        let page =
            request_page(&state, &visitor, &citizen, record, (false, false), (error, body)).await?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response());
    }
    let service = state.store.get_service(record.service_id).await?;
    let handler = state.store.get_tenant(record.tenant_id).await?;
    let now = OffsetDateTime::now_utc();
    let area = ack::area_of(&[&handler]);
    // A message does not start a new decision delay: the acknowledgement repeats none.
    let dates = ack::LegalDates { regime: guichet_domain::deadline::Regime::None, deemed: None };
    let name = format!("{} {}", citizen.profile.given_name, citizen.profile.family_name);
    let a = Ack {
        kind: AckKind::Are,
        reference: &record.reference,
        subject: &service.title,
        received_at: now,
        handler: &handler,
        citizen_name: &name,
        dates: &dates,
        area,
        what: "votre message concernant la demande",
    };
    let (document, email) = ack::render(&state, &a, citizen.email.as_str(), record.id)?;
    let event = |kind: &str, actor: ActorKind, data: Value| NewEvent {
        id: EventId::new(),
        tenant_id: handler.id,
        request_id: Some(record.id),
        at: now,
        actor_kind: actor,
        actor_id: (actor == ActorKind::Citizen).then(|| citizen.id.as_uuid()),
        channel: Channel::Web,
        kind: kind.to_owned(),
        citizen_visible: true,
        data,
    };
    let job = email.send_job(now);
    let records = SubmissionRecords {
        events: vec![
            event("message", ActorKind::Citizen, json!({"body": body, "files": files})),
            event(
                "acknowledged",
                ActorKind::System,
                json!({"document": document.id, "kind": "are", "email": email.id, "of": "message"}),
            ),
        ],
        documents: vec![document],
        emails: vec![email],
        jobs: vec![job],
        ..Default::default()
    };
    state.store.record(&records).await?;
    Ok(Redirect::to(&format!("/compte/demandes/{}?message=1#echanges", record.id)).into_response())
}

#[derive(Template)]
#[template(path = "mine/document.html")]
struct DocumentPage {
    layout: Layout,
    request: RequestRecord,
    document: Document,
}

/// `GET /compte/demandes/{id}/documents/{doc}`
pub(crate) async fn document(
    State(state): State<AppState>,
    visitor: Visitor,
    Path((id, doc)): Path<(String, String)>,
) -> Result<Response, AppError> {
    let citizen = require_citizen(&state, &visitor, &format!("/compte/demandes/{id}")).await?;
    let request = load_request(&state, &citizen, &id).await?;
    let doc: DocumentId = doc.parse().map_err(|_| AppError::NotFound)?;
    let document = state
        .store
        .list_request_documents(request.id)
        .await?
        .into_iter()
        .find(|d| d.document.id == doc)
        .ok_or(AppError::NotFound)?;
    render(&DocumentPage {
        layout: Layout::platform(document.document.title.clone(), &state.config.platform_name),
        request,
        document,
    })
}

/// `GET /compte/fichiers/{id}`: a file the citizen uploaded or that belongs to their request.
pub(crate) async fn file(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let citizen = require_citizen(&state, &visitor, "/compte/").await?;
    let id: FileId = id.parse().map_err(|_| AppError::NotFound)?;
    if !state.store.citizen_can_read_file(id, citizen.id).await? {
        return Err(AppError::NotFound);
    }
    let record = state.store.get_file(id).await?;
    let bytes = state.files.get(&record.sha256).await.map_err(|e| AppError::Internal(e.into()))?;
    let safe_name: String = record
        .original_name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || ".-_ ".contains(*c))
        .collect();
    Ok((
        [
            (header::CONTENT_TYPE, record.content_type.clone()),
            // Always a download: an uploaded file is never rendered in our origin.
            (
                header::CONTENT_DISPOSITION,
                format!(
                    "attachment; filename=\"{}\"",
                    if safe_name.is_empty() { "fichier".into() } else { safe_name }
                ),
            ),
            (header::CACHE_CONTROL, "private, no-store".to_owned()),
        ],
        bytes,
    )
        .into_response())
}
