//! Contacts: messages received on a non-web channel that are not tied to a request yet. An
//! agent answers one on its channel, attaches it to an existing request, qualifies it into a
//! request of a service (the counter form, prefilled), or files it with a reason. Incoming
//! paper letters are registered here too.

use askama::Template;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use guichet_domain::clock::{datetime_fr, paris};
use guichet_domain::form::{Field, FieldError, FieldKind, FileKind};
use guichet_domain::request::{ActorKind, Channel};
use guichet_domain::{EventId, TenantId};
use guichet_store::{
    Agent, InboundMessage, InboundUpdate, NewEvent, NewInbound, NewSms, StoreError,
    SubmissionRecords,
};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::forms::FormFields;
use crate::pages::agents::{layout, require_agent};
use crate::pages::backoffice::Choice;
use crate::pages::demarche::read_posted;
use crate::pages::{Layout, render};
use crate::session::AgentVisitor;
use crate::{AppError, AppState};

const STATES: [(&str, &str); 4] = [
    ("contact", "À traiter"),
    ("set_aside", "Mis de côté"),
    ("ignored", "Messages automatiques"),
    ("traites", "Traités"),
];

fn state_label(state: &str) -> &'static str {
    match state {
        "contact" => "à traiter",
        "attached" => "rattaché à une demande",
        "answered" => "répondu",
        "qualified" => "transformé en demande",
        "closed" => "classé",
        "set_aside" => "mis de côté",
        "ignored" => "message automatique",
        _ => "",
    }
}

pub(crate) struct ContactRow {
    pub m: InboundMessage,
    pub received: String,
    pub state: &'static str,
    pub excerpt: String,
}

fn row(m: InboundMessage) -> ContactRow {
    let excerpt: String = m.message.body.chars().take(160).collect();
    ContactRow {
        received: datetime_fr(m.message.received_at),
        state: state_label(&m.message.state),
        excerpt,
        m,
    }
}

#[derive(Template)]
#[template(path = "agents/contacts.html")]
struct ListPage {
    layout: Layout,
    tabs: Vec<Choice>,
    rows: Vec<ContactRow>,
}

#[derive(serde::Deserialize, Default)]
pub(crate) struct ListQuery {
    etat: Option<String>,
}

/// `GET /agents/contacts`
pub(crate) async fn list(
    State(state): State<AppState>,
    visitor: AgentVisitor,
    Query(q): Query<ListQuery>,
) -> Result<Response, AppError> {
    let agent = require_agent(&state, &visitor).await?;
    let current = q
        .etat
        .filter(|e| STATES.iter().any(|(k, _)| k == e))
        .unwrap_or_else(|| "contact".to_owned());
    let states: Vec<&str> = match current.as_str() {
        "traites" => vec!["attached", "answered", "qualified", "closed"],
        other => vec![other],
    };
    let rows =
        state.store.list_inbound(agent.id, &states, 200).await?.into_iter().map(row).collect();
    let tabs = STATES
        .iter()
        .map(|(k, l)| Choice {
            value: (*k).to_owned(),
            label: (*l).to_owned(),
            selected: *k == current,
        })
        .collect();
    render(&ListPage { layout: layout(&state, "Contacts"), tabs, rows })
}

#[derive(Template)]
#[template(path = "agents/contact.html")]
struct ContactPage {
    layout: Layout,
    csrf: String,
    c: ContactRow,
    services: Vec<(String, String)>,
    can_reply: Option<String>,
    error: Option<String>,
    draft: String,
    reference: String,
}

async fn load(
    state: &AppState,
    visitor: &AgentVisitor,
    id: &str,
) -> Result<(Agent, InboundMessage), AppError> {
    let agent = require_agent(state, visitor).await?;
    let id: uuid::Uuid = id.parse().map_err(|_| AppError::NotFound)?;
    let m = state.store.get_inbound(agent.id, id).await?.ok_or(AppError::NotFound)?;
    Ok((agent, m))
}

fn reply_channel(m: &InboundMessage) -> Option<String> {
    match m.message.channel {
        Channel::Email if !m.message.sender.is_empty() => {
            Some(format!("par courriel à {}", m.message.sender))
        }
        Channel::Sms => Some(format!("par SMS au {}", m.message.sender)),
        _ => None,
    }
}

async fn contact_page(
    state: &AppState,
    visitor: &AgentVisitor,
    m: InboundMessage,
    error: Option<String>,
    draft: String,
    reference: String,
) -> Result<ContactPage, AppError> {
    let services = state
        .store
        .list_services(&[m.message.tenant_id])
        .await?
        .into_iter()
        .filter(|s| s.enabled)
        .map(|s| (s.id.to_string(), s.title))
        .collect();
    Ok(ContactPage {
        layout: layout(state, format!("Contact du {}", datetime_fr(m.message.received_at))),
        csrf: visitor.0.csrf(state).await?,
        can_reply: reply_channel(&m),
        services,
        c: row(m),
        error,
        draft,
        reference,
    })
}

fn event(
    agent: &Agent,
    m: &InboundMessage,
    request: Option<guichet_domain::RequestId>,
    kind: &str,
    visible: bool,
    data: Value,
) -> NewEvent {
    NewEvent {
        id: EventId::new(),
        tenant_id: m.message.tenant_id,
        request_id: request,
        at: OffsetDateTime::now_utc(),
        actor_kind: ActorKind::Agent,
        actor_id: Some(agent.id.as_uuid()),
        channel: m.message.channel,
        kind: kind.to_owned(),
        citizen_visible: visible,
        data,
    }
}

/// `GET /agents/contacts/{id}`: reading a citizen's message is traced like a request view.
pub(crate) async fn show(
    State(state): State<AppState>,
    visitor: AgentVisitor,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let (agent, m) = load(&state, &visitor, &id).await?;
    state
        .store
        .record(&SubmissionRecords {
            events: vec![event(
                &agent,
                &m,
                None,
                "contact_viewed",
                false,
                json!({"inbound": m.message.id}),
            )],
            ..Default::default()
        })
        .await?;
    render(&contact_page(&state, &visitor, m, None, String::new(), String::new()).await?)
}

async fn refuse(
    state: &AppState,
    visitor: &AgentVisitor,
    m: InboundMessage,
    message: String,
    draft: String,
    reference: String,
) -> Result<Response, AppError> {
    let page = contact_page(state, visitor, m, Some(message), draft, reference).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response())
}

/// Only a message still waiting (a contact, or set aside) can be handled.
pub(crate) fn open_or_conflict(m: &InboundMessage) -> Result<(), AppError> {
    if matches!(m.message.state.as_str(), "contact" | "set_aside") {
        Ok(())
    } else {
        Err(AppError::Conflict(
            "Ce message a déjà été traité : rechargez la liste des contacts.".into(),
        ))
    }
}

fn conflict(e: StoreError) -> AppError {
    match e {
        StoreError::Conflict { .. } => AppError::Conflict(
            "Ce contact vient d'être traité par quelqu'un d'autre : rechargez la page.".into(),
        ),
        other => other.into(),
    }
}

fn update(
    agent: &Agent,
    m: &InboundMessage,
    to: &str,
    request: Option<guichet_domain::RequestId>,
) -> InboundUpdate {
    InboundUpdate {
        reason: None,
        id: m.message.id,
        tenant_id: m.message.tenant_id,
        expected_state: m.message.state.clone(),
        state: to.to_owned(),
        request_id: request,
        agent: Some(agent.id),
    }
}

#[derive(Template)]
#[template(path = "emails/contact_reply.txt")]
struct ReplyText<'a> {
    body: &'a str,
    sender: &'a str,
    quoted: &'a str,
}

#[derive(Template)]
#[template(path = "emails/contact_reply.html")]
struct ReplyHtml<'a> {
    body: &'a str,
    sender: &'a str,
}

/// `POST /agents/contacts/{id}/repondre`: answers on the contact's own channel.
pub(crate) async fn reply(
    State(state): State<AppState>,
    visitor: AgentVisitor,
    Path(id): Path<String>,
    form: FormFields,
) -> Result<Response, AppError> {
    visitor.0.check_csrf(form.get("_csrf"))?;
    let (agent, m) = load(&state, &visitor, &id).await?;
    let body = form.get("reponse").replace("\r\n", "\n");
    if body.is_empty() || body.chars().count() > 10_000 {
        return refuse(
            &state,
            &visitor,
            m,
            "« Réponse » : écrivez une réponse de 10 000 caractères au plus.".into(),
            body,
            String::new(),
        )
        .await;
    }
    open_or_conflict(&m)?;
    let now = OffsetDateTime::now_utc();
    let tenant = state.store.get_tenant(m.message.tenant_id).await?;
    let mut records = SubmissionRecords::default();
    match m.message.channel {
        Channel::Email if !m.message.sender.is_empty() => {
            let subject = if m.message.subject.is_empty() {
                format!("Réponse de {}", tenant.contact.service_name)
            } else if m.message.subject.to_lowercase().starts_with("re:") {
                m.message.subject.clone()
            } else {
                format!("Re: {}", m.message.subject)
            };
            let quoted: String = m.message.body.lines().map(|l| format!("> {l}\n")).collect();
            let sender = &tenant.contact.service_name;
            let mut mail = crate::mail::email(
                &state,
                &m.message.sender,
                subject,
                &ReplyText { body: &body, sender, quoted: &quoted },
                &ReplyHtml { body: &body, sender },
                None,
            )?;
            mail.reply_to = crate::inbound::reply_address(&state, m.message.tenant_id).await?;
            mail.automatic = false;
            mail.references = m.message.message_id.iter().cloned().collect();
            records.events.push(event(
                &agent,
                &m,
                None,
                "contact_answered",
                false,
                json!({"inbound": m.message.id, "body": body, "email": mail.id}),
            ));
            records.jobs.push(mail.send_job(now));
            records.emails.push(mail);
        }
        Channel::Sms => {
            let Ok(to) = guichet_domain::Phone::parse(&m.message.sender) else {
                return refuse(&state, &visitor, m, "« Réponse » : le numéro de l'expéditeur n'est pas un numéro de mobile valide ; répondez par un autre canal.".into(), body, String::new()).await;
            };
            let length = guichet_domain::channel::sms_length(&body);
            if length.segments > guichet_domain::channel::MAX_SMS_SEGMENTS {
                return refuse(
                    &state,
                    &visitor,
                    m,
                    format!(
                        "« Réponse » : ce texte ferait {} SMS ; {} au plus.",
                        length.segments,
                        guichet_domain::channel::MAX_SMS_SEGMENTS
                    ),
                    body,
                    String::new(),
                )
                .await;
            }
            let sms = NewSms {
                id: uuid::Uuid::now_v7(),
                tenant_id: m.message.tenant_id,
                request_id: None,
                to: to.as_str().to_owned(),
                body: body.clone(),
                segments: i32::try_from(length.segments).unwrap_or(i32::MAX),
            };
            records.events.push(event(&agent, &m, None, "contact_answered", false, json!({"inbound": m.message.id, "body": body, "sms": sms.id, "segments": length.segments})));
            records.jobs.push(sms.send_job(now));
            records.sms.push(sms);
        }
        _ => {
            return refuse(&state, &visitor, m, "Ce contact n'a pas d'adresse de réponse électronique : pour répondre par courrier, créez une demande ou rattachez-le à une demande, puis répondez par courrier depuis la demande.".into(), body, String::new()).await;
        }
    }
    records.inbound.push(update(&agent, &m, "answered", None));
    state.store.record(&records).await.map_err(conflict)?;
    Ok(Redirect::to("/agents/contacts?repondu=1").into_response())
}

/// `POST /agents/contacts/{id}/rattacher`: joins an existing request of the same tenant.
pub(crate) async fn attach(
    State(state): State<AppState>,
    visitor: AgentVisitor,
    Path(id): Path<String>,
    form: FormFields,
) -> Result<Response, AppError> {
    visitor.0.check_csrf(form.get("_csrf"))?;
    let (agent, m) = load(&state, &visitor, &id).await?;
    open_or_conflict(&m)?;
    let reference = form.get("reference").trim().to_uppercase();
    if reference.is_empty() {
        return refuse(
            &state,
            &visitor,
            m,
            "« Référence de la demande » : indiquez la référence (par exemple EC-2026-000123)."
                .into(),
            String::new(),
            reference,
        )
        .await;
    }
    let found = state.store.thread_request(m.message.tenant_id, &[], Some(&reference)).await?;
    let Some(request) = found else {
        return refuse(&state, &visitor, m, format!("« Référence de la demande » : aucune demande « {reference} » dans cette collectivité."), String::new(), reference).await;
    };
    let files: Vec<Value> =
        m.message.files.iter().map(|f| json!({"id": f.id, "name": f.name})).collect();
    let records = SubmissionRecords {
        events: vec![NewEvent {
            actor_kind: ActorKind::Citizen,
            actor_id: m.message.citizen_id.map(|c| c.as_uuid()),
            ..event(
                &agent,
                &m,
                Some(request),
                "message",
                true,
                json!({"body": m.message.body, "quoted": m.message.quoted, "subject": m.message.subject, "files": files, "inbound": m.message.id, "sender": m.message.sender, "attached_by": agent.display_name}),
            )
        }],
        inbound: vec![update(&agent, &m, "attached", Some(request))],
        ..Default::default()
    };
    state.store.record(&records).await.map_err(conflict)?;
    Ok(Redirect::to(&format!("/agents/demandes/{request}#historique")).into_response())
}

/// `POST /agents/contacts/{id}/classer`: filed without follow-up, with the reason.
pub(crate) async fn close(
    State(state): State<AppState>,
    visitor: AgentVisitor,
    Path(id): Path<String>,
    form: FormFields,
) -> Result<Response, AppError> {
    visitor.0.check_csrf(form.get("_csrf"))?;
    let (agent, m) = load(&state, &visitor, &id).await?;
    open_or_conflict(&m)?;
    let reason = form.get("motif").trim().to_owned();
    if reason.is_empty() || reason.chars().count() > 500 {
        return refuse(
            &state,
            &visitor,
            m,
            "« Motif du classement » : indiquez un motif de 500 caractères au plus.".into(),
            String::new(),
            String::new(),
        )
        .await;
    }
    let records = SubmissionRecords {
        events: vec![event(
            &agent,
            &m,
            None,
            "contact_closed",
            false,
            json!({"inbound": m.message.id, "reason": reason}),
        )],
        inbound: vec![InboundUpdate {
            reason: Some(format!("classé : {reason}")),
            ..update(&agent, &m, "closed", None)
        }],
        ..Default::default()
    };
    state.store.record(&records).await.map_err(conflict)?;
    Ok(Redirect::to("/agents/contacts").into_response())
}

// ---------------------------------------------------------------- letters

#[derive(Template)]
#[template(path = "agents/letter.html")]
struct LetterPage {
    layout: Layout,
    csrf: String,
    tenants: Vec<Choice>,
    errors: Vec<FieldError>,
    v: LetterForm,
}

#[derive(Default, Clone)]
pub(crate) struct LetterForm {
    pub sender: String,
    pub address: String,
    pub subject: String,
    pub summary: String,
    pub received_on: String,
    pub code: String,
}

impl LetterPage {
    fn error(&self, key: &str) -> Option<&str> {
        self.errors.iter().find(|e| e.key == key).map(|e| e.message.as_str())
    }
}

fn tenant_choices(agent: &Agent, current: &str) -> Vec<Choice> {
    agent
        .memberships
        .iter()
        .map(|m| Choice {
            value: m.tenant_id.to_string(),
            label: m.tenant_name.clone(),
            selected: m.tenant_id.to_string() == current,
        })
        .collect()
}

/// `GET /agents/courrier/nouveau`
pub(crate) async fn letter_form(
    State(state): State<AppState>,
    visitor: AgentVisitor,
) -> Result<Response, AppError> {
    let agent = require_agent(&state, &visitor).await?;
    render(&LetterPage {
        layout: layout(&state, "Enregistrer un courrier reçu"),
        csrf: visitor.0.csrf(&state).await?,
        tenants: tenant_choices(&agent, ""),
        errors: Vec::new(),
        v: LetterForm {
            received_on: paris(OffsetDateTime::now_utc()).date().to_string(),
            ..LetterForm::default()
        },
    })
}

/// `POST /agents/courrier/nouveau`: a scanned letter becomes a contact, or joins its request
/// directly when it carries the code of a letter Guichet sent.
pub(crate) async fn letter_submit(
    State(state): State<AppState>,
    visitor: AgentVisitor,
    request: Request,
) -> Result<Response, AppError> {
    let agent = require_agent(&state, &visitor).await?;
    let scan = Field {
        key: "scan".to_owned(),
        label: "Courrier numérisé".to_owned(),
        kind: FieldKind::File {
            accept: vec![FileKind::Pdf, FileKind::Image],
            max_size_mb: 20,
            multiple: false,
        },
        required: true,
        help: None,
        condition: None,
    };
    let posted = read_posted(&state, &visitor.0, request, &[&scan], None).await?;
    let v = LetterForm {
        sender: posted.get("expediteur").to_owned(),
        address: posted.get("adresse").to_owned(),
        subject: posted.get("objet").to_owned(),
        summary: posted.get("resume").to_owned(),
        received_on: posted.get("recu_le").to_owned(),
        code: posted.get("code").to_owned(),
    };
    let tenant_field = posted.get("collectivite").to_owned();
    let mut errors: Vec<FieldError> = posted.file_errors.clone();
    let err = |k: &str, m: &str| FieldError { key: k.to_owned(), message: m.to_owned() };
    let tenant: Option<TenantId> =
        tenant_field.parse().ok().filter(|t| agent.role_in(*t).is_some());
    if tenant.is_none() {
        errors.push(err(
            "collectivite",
            "« Collectivité destinataire » : choisissez une de vos collectivités.",
        ));
    }
    if v.sender.is_empty() || v.sender.chars().count() > 200 {
        errors.push(err(
            "expediteur",
            "« Expéditeur » : indiquez le nom de l'expéditeur (200 caractères au plus).",
        ));
    }
    let today = paris(OffsetDateTime::now_utc()).date();
    let received = crate::pages::counter::parse_date(&v.received_on)
        .filter(|d| *d <= today && *d > today - time::Duration::days(366));
    if received.is_none() {
        errors.push(err(
            "recu_le",
            "« Date de réception » : indiquez une date passée de moins d'un an.",
        ));
    }
    let files = posted.files.get("scan").cloned().unwrap_or_default();
    if files.is_empty() && !errors.iter().any(|e| e.key == "scan") {
        errors.push(err("scan", "« Courrier numérisé » : joignez le courrier (PDF, JPEG ou PNG)."));
    }
    let letter = match v.code.trim() {
        "" => None,
        typed => match guichet_domain::channel::normalise_letter_code(typed) {
            Some(code) => match state.store.find_letter(agent.id, &code).await? {
                Some(found) => Some(found),
                None => {
                    errors.push(err("code", "« Code courrier » : aucun courrier envoyé ne porte ce code dans vos collectivités."));
                    None
                }
            },
            None => {
                errors.push(err("code", "« Code courrier » : un code a 9 caractères (lettres et chiffres), par exemple K7M-4QX-2BZ."));
                None
            }
        },
    };
    if !errors.is_empty() {
        let page = LetterPage {
            layout: layout(&state, "Erreur – enregistrer un courrier reçu"),
            csrf: visitor.0.csrf(&state).await?,
            tenants: tenant_choices(&agent, &tenant_field),
            errors,
            v,
        };
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response());
    }
    let (Some(mut tenant), Some(received)) = (tenant, received) else {
        return Err(AppError::BadRequest("Formulaire incomplet.".into()));
    };
    let mut request_id = None;
    if let Some((request, _)) = letter {
        let r = state.store.get_request(request).await?;
        tenant = r.tenant_id;
        request_id = Some(request);
    }
    let received_at = if received == today {
        OffsetDateTime::now_utc()
    } else {
        received.midnight().assume_offset(paris(OffsetDateTime::now_utc()).offset())
    };
    let inbound_files: Vec<guichet_store::InboundFile> = files
        .iter()
        .filter_map(|f| {
            Some(guichet_store::InboundFile {
                id: f.id.parse().ok()?,
                name: f.name.clone(),
                content_type: f.content_type.clone(),
            })
        })
        .collect();
    let body = if v.summary.is_empty() { String::new() } else { v.summary.clone() };
    let message = NewInbound {
        id: uuid::Uuid::now_v7(),
        tenant_id: tenant,
        endpoint_id: None,
        channel: Channel::Courrier,
        dedup_key: format!("courrier:{}", uuid::Uuid::now_v7()),
        sender: if v.address.is_empty() {
            v.sender.clone()
        } else {
            format!("{}, {}", v.sender, v.address)
        },
        sender_name: v.sender.clone(),
        subject: v.subject.clone(),
        body: body.clone(),
        quoted: String::new(),
        message_id: None,
        state: if request_id.is_some() { "attached" } else { "contact" }.to_owned(),
        reason: None,
        request_id,
        citizen_id: None,
        raw_file_id: None,
        files: inbound_files.clone(),
        received_at,
    };
    let files_json: Vec<Value> =
        inbound_files.iter().map(|f| json!({"id": f.id, "name": f.name})).collect();
    let stub = InboundMessage {
        message: message.clone(),
        tenant_name: String::new(),
        reference: None,
        handled_by: None,
        handled_at: None,
    };
    let mut records = SubmissionRecords::default();
    match request_id {
        Some(request) => records.events.push(NewEvent {
            actor_kind: ActorKind::Citizen,
            actor_id: None,
            ..event(&agent, &stub, Some(request), "message", true, json!({"body": body, "subject": v.subject, "files": files_json, "inbound": message.id, "sender": v.sender, "registered_by": agent.display_name}))
        }),
        None => records.events.push(event(&agent, &stub, None, "contact_received", false, json!({"inbound": message.id, "sender": v.sender, "subject": v.subject, "registered_by": agent.display_name}))),
    }
    state.store.ingest(&message, None, &records).await?;
    Ok(match request_id {
        Some(r) => Redirect::to(&format!("/agents/demandes/{r}#historique")),
        None => Redirect::to(&format!("/agents/contacts/{}", message.id)),
    }
    .into_response())
}
