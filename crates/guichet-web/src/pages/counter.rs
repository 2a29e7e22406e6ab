//! Requests recorded by an agent on a citizen's behalf: a visit at the counter, a phone call,
//! a letter received by post, or a contact (e-mail, SMS) qualified into a request of a
//! service. The agent fills the service's own form (every page on one screen, conditions
//! applied on submission), the citizen is matched or created, the acting agent is recorded,
//! and the acknowledgement is printed (paper, R112-5) or e-mailed (electronic, R112-11-1).

use askama::Template;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use guichet_domain::form::{Field, FieldError, FieldKind, FileKind};
use guichet_domain::request::status;
use guichet_domain::request::{ActorKind, Channel};
use guichet_domain::{CitizenId, Email, EventId, Phone, RequestId, ServiceId};
use guichet_store::{
    Agent, InboundMessage, InboundUpdate, NewCitizenAccount, NewEvent, NewRequest, Profile,
    Service, StoreError, SubmissionRecords, TokenPurpose,
};
use serde_json::json;
use time::{Date, OffsetDateTime};

use crate::ack::{self, Ack, AckKind};
use crate::pages::agents::{layout, require_agent};
use crate::pages::backoffice::Choice;
use crate::pages::demarche::{FieldView, read_posted, views};
use crate::pages::{Layout, render};
use crate::session::AgentVisitor;
use crate::{AppError, AppState};

/// Who the request is for, as typed by the agent.
#[derive(Clone, Debug, Default)]
pub(crate) struct Identity {
    pub given_name: String,
    pub family_name: String,
    pub email: String,
    pub phone: String,
    pub street: String,
    pub postcode: String,
    pub city: String,
    pub received_on: String,
}

#[derive(Template)]
#[template(path = "agents/counter.html")]
struct CounterPage {
    layout: Layout,
    csrf: String,
    groups: Vec<(String, Vec<Choice>)>,
    channels: Vec<Choice>,
    service: Option<Service>,
    channel: String,
    contact: Option<InboundMessage>,
    identity: Identity,
    pages: Vec<(String, Vec<FieldView>)>,
    errors: Vec<FieldError>,
    file_base: &'static str,
    action: String,
}

#[derive(serde::Deserialize, Default)]
pub(crate) struct CounterQuery {
    demarche: Option<String>,
    canal: Option<String>,
    contact: Option<String>,
}

const PAPER_CHANNELS: [Channel; 3] = [Channel::Guichet, Channel::Telephone, Channel::Courrier];

fn channel_label(c: Channel) -> &'static str {
    match c {
        Channel::Guichet => "Accueil physique (guichet)",
        Channel::Telephone => "Appel téléphonique",
        Channel::Courrier => "Courrier reçu",
        other => other.label(),
    }
}

struct Ctx {
    agent: Agent,
    service: Option<Service>,
    channel: Channel,
    contact: Option<InboundMessage>,
}

async fn context(
    state: &AppState,
    visitor: &AgentVisitor,
    q: &CounterQuery,
) -> Result<Ctx, AppError> {
    let agent = require_agent(state, visitor).await?;
    let contact = match q.contact.as_deref().filter(|c| !c.is_empty()) {
        Some(id) => {
            let id: uuid::Uuid = id.parse().map_err(|_| AppError::NotFound)?;
            let c = state.store.get_inbound(agent.id, id).await?.ok_or(AppError::NotFound)?;
            crate::pages::contacts::open_or_conflict(&c)?;
            Some(c)
        }
        None => None,
    };
    // A qualified contact keeps its channel of origin; otherwise the agent chooses.
    let channel = match &contact {
        Some(c) => c.message.channel,
        None => q
            .canal
            .as_deref()
            .and_then(Channel::parse)
            .filter(|c| PAPER_CHANNELS.contains(c))
            .unwrap_or(Channel::Guichet),
    };
    let service = match q.demarche.as_deref().filter(|s| !s.is_empty()) {
        Some(id) => {
            let id: ServiceId = id.parse().map_err(|_| AppError::NotFound)?;
            let service = match state.store.get_service(id).await {
                Ok(s) => s,
                Err(StoreError::NotFound) => return Err(AppError::NotFound),
                Err(e) => return Err(e.into()),
            };
            // Only the agent's tenants' services, and a contact stays in its tenant.
            if agent.role_in(service.tenant_id).is_none()
                || contact.as_ref().is_some_and(|c| c.message.tenant_id != service.tenant_id)
            {
                return Err(AppError::NotFound);
            }
            Some(service)
        }
        None => None,
    };
    Ok(Ctx { agent, service, channel, contact })
}

fn action_url(ctx: &Ctx) -> String {
    let mut url = format!("/agents/guichet/nouveau?canal={}", ctx.channel.as_str());
    if let Some(s) = &ctx.service {
        url.push_str(&format!("&demarche={}", s.id));
    }
    if let Some(c) = &ctx.contact {
        url.push_str(&format!("&contact={}", c.message.id));
    }
    url
}

/// The scanned letter, a file field of our own next to the service's fields.
fn scan_field() -> Field {
    Field {
        key: "courrier_numerise".to_owned(),
        label: "Courrier numérisé".to_owned(),
        kind: FieldKind::File {
            accept: vec![FileKind::Pdf, FileKind::Image],
            max_size_mb: 20,
            multiple: false,
        },
        required: false,
        help: None,
        condition: None,
    }
}

async fn page(
    state: &AppState,
    visitor: &AgentVisitor,
    ctx: &Ctx,
    identity: Identity,
    answers: &guichet_domain::form::Answers,
    raw: Option<&guichet_domain::form::RawInput>,
    errors: Vec<FieldError>,
) -> Result<CounterPage, AppError> {
    let tenants: Vec<_> = ctx.agent.memberships.iter().map(|m| m.tenant_id).collect();
    let services = state.store.list_services(&tenants).await?;
    let mut groups = Vec::new();
    for m in &ctx.agent.memberships {
        if ctx.contact.as_ref().is_some_and(|c| c.message.tenant_id != m.tenant_id) {
            continue;
        }
        let items: Vec<Choice> = services
            .iter()
            .filter(|s| s.tenant_id == m.tenant_id && s.enabled)
            .map(|s| Choice {
                value: s.id.to_string(),
                label: s.title.clone(),
                selected: ctx.service.as_ref().is_some_and(|x| x.id == s.id),
            })
            .collect();
        if !items.is_empty() {
            groups.push((m.tenant_name.clone(), items));
        }
    }
    let channels = PAPER_CHANNELS
        .iter()
        .map(|c| Choice {
            value: c.as_str().to_owned(),
            label: channel_label(*c).to_owned(),
            selected: *c == ctx.channel,
        })
        .collect();
    let pages = match &ctx.service {
        Some(s) => (0..s.form.pages.len())
            .map(|i| (s.form.pages[i].title.clone(), views(&s.form, i, answers, raw, &errors)))
            .collect(),
        None => Vec::new(),
    };
    let title = match (&ctx.service, errors.is_empty()) {
        (Some(s), true) => format!("Enregistrer une demande : {}", s.title),
        (Some(s), false) => format!("Erreur – enregistrer une demande : {}", s.title),
        (None, _) => "Enregistrer une demande pour un usager".to_owned(),
    };
    Ok(CounterPage {
        layout: layout(state, title),
        csrf: visitor.0.csrf(state).await?,
        groups,
        channels,
        service: ctx.service.clone(),
        channel: ctx.channel.as_str().to_owned(),
        contact: ctx.contact.clone(),
        identity,
        pages,
        errors,
        file_base: "/agents/fichiers",
        action: action_url(ctx),
    })
}

/// What a contact already tells about its sender and request.
fn prefill(ctx: &Ctx) -> (Identity, guichet_domain::form::Answers) {
    let mut identity = Identity {
        received_on: guichet_domain::clock::paris(OffsetDateTime::now_utc()).date().to_string(),
        ..Identity::default()
    };
    let mut answers = guichet_domain::form::Answers::new();
    let Some(c) = &ctx.contact else { return (identity, answers) };
    identity.received_on = guichet_domain::clock::paris(c.message.received_at).date().to_string();
    match c.message.channel {
        Channel::Email => identity.email = c.message.sender.clone(),
        Channel::Sms => identity.phone = c.message.sender.clone(),
        _ => {}
    }
    let mut names = c.message.sender_name.split_whitespace();
    if let (Some(first), rest) = (names.next(), names.collect::<Vec<_>>()) {
        if rest.is_empty() {
            identity.family_name = first.to_owned();
        } else {
            identity.given_name = first.to_owned();
            identity.family_name = rest.join(" ");
        }
    }
    // The message's text goes into the service's first free-text field.
    if let Some(service) = &ctx.service
        && let Some(field) = service
            .form
            .pages
            .iter()
            .flat_map(|p| &p.fields)
            .find(|f| matches!(f.kind, FieldKind::LongText { .. }))
    {
        answers.insert(field.key.clone(), json!(c.message.body));
    }
    (identity, answers)
}

/// A date as a date field sends it (2026-11-30) or as typed where there is no date picker
/// (30/11/2026).
pub(crate) fn parse_date(s: &str) -> Option<Date> {
    let s = s.trim();
    Date::parse(s, &time::macros::format_description!("[year]-[month]-[day]"))
        .or_else(|_| Date::parse(s, &time::macros::format_description!("[day]/[month]/[year]")))
        .ok()
}

/// `GET /agents/guichet/nouveau`
pub(crate) async fn form(
    State(state): State<AppState>,
    visitor: AgentVisitor,
    Query(q): Query<CounterQuery>,
) -> Result<Response, AppError> {
    let ctx = context(&state, &visitor, &q).await?;
    let (identity, answers) = prefill(&ctx);
    render(&page(&state, &visitor, &ctx, identity, &answers, None, Vec::new()).await?)
}

fn identity_of(raw: &guichet_domain::form::RawInput) -> Identity {
    let get = |k: &str| {
        raw.get(k).and_then(|v| v.first()).map(|s| s.trim().to_owned()).unwrap_or_default()
    };
    Identity {
        given_name: get("usager_prenom"),
        family_name: get("usager_nom"),
        email: get("usager_courriel"),
        phone: get("usager_telephone"),
        street: get("usager_voie"),
        postcode: get("usager_code_postal"),
        city: get("usager_commune"),
        received_on: get("recu_le"),
    }
}

fn error(key: &str, message: impl Into<String>) -> FieldError {
    FieldError { key: key.to_owned(), message: message.into() }
}

/// `POST /agents/guichet/nouveau`
pub(crate) async fn submit(
    State(state): State<AppState>,
    visitor: AgentVisitor,
    Query(q): Query<CounterQuery>,
    request: Request,
) -> Result<Response, AppError> {
    let ctx = context(&state, &visitor, &q).await?;
    let Some(service) = ctx.service.clone() else {
        return Err(AppError::BadRequest("« Démarche » : choisissez une démarche.".into()));
    };
    let scan = scan_field();
    let mut fields: Vec<&Field> = service.form.pages.iter().flat_map(|p| &p.fields).collect();
    fields.push(&scan);
    let posted = read_posted(&state, &visitor.0, request, &fields, None).await?;
    let identity = identity_of(&posted.raw);

    let mut errors = Vec::new();
    if identity.given_name.is_empty() && identity.family_name.is_empty() {
        errors.push(error("usager_nom", "« Nom de l'usager » : indiquez au moins le nom."));
    }
    if identity.given_name.chars().count() > 100 || identity.family_name.chars().count() > 100 {
        errors.push(error("usager_nom", "« Nom de l'usager » : 100 caractères au plus."));
    }
    let email = match identity.email.as_str() {
        "" => None,
        e => match Email::parse(e) {
            Ok(e) => Some(e),
            Err(err) => {
                errors.push(error("usager_courriel", format!("« Courriel de l'usager » : {err}.")));
                None
            }
        },
    };
    let phone = match identity.phone.as_str() {
        "" => None,
        p => match Phone::parse(p) {
            Ok(p) => Some(p),
            Err(err) => {
                errors
                    .push(error("usager_telephone", format!("« Téléphone de l'usager » : {err}.")));
                None
            }
        },
    };
    let today = guichet_domain::clock::paris(OffsetDateTime::now_utc()).date();
    let received_on = parse_date(&identity.received_on);
    match received_on {
        Some(d) if d <= today && d > today - time::Duration::days(366) => {}
        _ => errors.push(error(
            "recu_le",
            "« Date de réception » : indiquez une date passée de moins d'un an (jj/mm/aaaa).",
        )),
    }
    let scanned = posted.files.get(&scan.key).cloned().unwrap_or_default();
    if ctx.channel == Channel::Courrier && ctx.contact.is_none() && scanned.is_empty() {
        errors.push(error(
            "courrier_numerise",
            "« Courrier numérisé » : joignez le courrier reçu (PDF, JPEG ou PNG).",
        ));
    }

    // Every page in order, as the citizen would have gone through them; errors on a page that
    // the answers hide do not count (`check_complete` then drops its answers).
    let mut answers = guichet_domain::form::Answers::new();
    for i in 0..service.form.pages.len() {
        let mut page_errors = service.form.apply_page(i, &posted.raw, &posted.files, &mut answers);
        if service.form.visible_pages(&answers).contains(&i) {
            errors.append(&mut page_errors);
        }
    }
    for fe in posted.file_errors.clone() {
        errors.retain(|e| e.key != fe.key);
        errors.push(fe);
    }
    if errors.is_empty()
        && let Err(page) = service.form.check_complete(&mut answers)
    {
        let field = service.form.pages[page]
            .fields
            .iter()
            .find(|f| f.required && f.kind.takes_answer() && !answers.contains_key(&f.key));
        errors.push(match field {
            Some(f) => error(&f.key, format!("« {} » : ce champ est obligatoire.", f.label)),
            None => error(
                "formulaire",
                format!(
                    "« {} » : des réponses obligatoires manquent.",
                    service.form.pages[page].title
                ),
            ),
        });
    }
    if !errors.is_empty() {
        let page =
            page(&state, &visitor, &ctx, identity, &answers, Some(&posted.raw), errors).await?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response());
    }
    if !scanned.is_empty() {
        answers.insert(scan.key.clone(), serde_json::to_value(&scanned).unwrap_or_default());
    }
    let received_on = received_on.unwrap_or(today);

    // The citizen: an account with this address or phone, else a new account when there is an
    // address (they get a link to choose a password), else the identity on the request only.
    let mut citizen_id: Option<CitizenId> = None;
    let mut invitation = None;
    // Only a verified address ties the request to an account: anyone can type an address or
    // a phone number into their own profile. An unverified account with this address keeps
    // the request off it (the identity stays on the request).
    let mut existing = false;
    if let Some(e) = &email
        && let Some((c, _)) = state.store.find_citizen_login(e).await?
    {
        existing = true;
        citizen_id = c.email_verified_at.is_some().then_some(c.id);
    }
    if !existing && let Some(e) = &email {
        let id = CitizenId::new();
        let hash = crate::password::hash_password(&crate::session::random_token())
            .map_err(AppError::Internal)?;
        let account = NewCitizenAccount {
            id,
            email: e.clone(),
            password_hash: hash,
            profile: Profile {
                given_name: identity.given_name.clone(),
                family_name: identity.family_name.clone(),
                phone: phone.clone(),
                street: Some(identity.street.clone()).filter(|s| !s.is_empty()),
                postcode: Some(identity.postcode.clone()).filter(|s| !s.is_empty()),
                city: Some(identity.city.clone()).filter(|s| !s.is_empty()),
                notify_email: true,
                ..Profile::default()
            },
        };
        let name = format!("{} {}", identity.given_name, identity.family_name);
        let (token, mail, job) = crate::pages::account::token_email(
            &state,
            TokenPurpose::ResetPassword,
            e.as_str(),
            name.trim(),
            OffsetDateTime::now_utc(),
        )?;
        match state.store.create_citizen(&account, &token, &[mail], &[job]).await {
            Ok(c) => {
                citizen_id = Some(c.id);
                invitation = Some(c.id);
            }
            Err(StoreError::Conflict { .. }) => {}
            Err(err) => return Err(err.into()),
        }
    }

    let handler = state.store.get_tenant(service.tenant_id).await?;
    let area = ack::area_of(&[&handler]);
    // The legal clock starts on the day the request reached the administration.
    let received_at = if received_on == today {
        OffsetDateTime::now_utc()
    } else {
        received_on
            .midnight()
            .assume_offset(guichet_domain::clock::paris(OffsetDateTime::now_utc()).offset())
    };
    let dates = ack::legal_dates(&service, received_at, area);
    let request_id = RequestId::new();
    let name = format!("{} {}", identity.given_name, identity.family_name).trim().to_owned();
    let electronic = matches!(ctx.channel, Channel::Email | Channel::Sms);
    let new = NewRequest {
        id: request_id,
        tenant_id: handler.id,
        commune_tenant_id: None,
        service_id: service.id,
        citizen_id,
        draft_id: None,
        reference_prefix: service.reference_prefix.clone(),
        channel: ctx.channel,
        status: status::RECEIVED.to_owned(),
        answers: answers.clone(),
        submitter: json!({
            "nom": identity.family_name,
            "prenom": identity.given_name,
            "courriel": email.as_ref().map(|e| e.to_string()),
            "telephone": phone.as_ref().map(|p| p.as_str().to_owned()),
            "adresse": {"voie": identity.street, "code_postal": identity.postcode, "commune": identity.city},
            "enregistre_par": ctx.agent.display_name,
        }),
        submitted_at: received_at,
        deemed_decision_on: dates.deemed,
        history: None,
        ack_due_at: Some(ack::ack_due_at(received_at, area)),
        phase: service.workflow().phase(status::RECEIVED).as_str().to_owned(),
        search_text: guichet_domain::fold(&format!(
            "{name} {} {} {}",
            email.as_ref().map(|e| e.to_string()).unwrap_or_default(),
            phone.as_ref().map(|p| p.display_national()).unwrap_or_default(),
            guichet_domain::form::searchable_text(&answers)
        )),
    };
    let agent = ctx.agent.clone();
    let channel = ctx.channel;
    let contact = ctx.contact.clone();
    let state2 = state.clone();
    let build = move |reference: &str| -> Result<SubmissionRecords, String> {
        let event = |kind: &str, actor: ActorKind, data: serde_json::Value| NewEvent {
            id: EventId::new(),
            tenant_id: handler.id,
            request_id: Some(request_id),
            at: OffsetDateTime::now_utc(),
            actor_kind: actor,
            actor_id: (actor == ActorKind::Agent).then(|| agent.id.as_uuid()),
            channel,
            kind: kind.to_owned(),
            citizen_visible: true,
            data,
        };
        let a = Ack {
            kind: if electronic { AckKind::Are } else { AckKind::Paper },
            reference,
            subject: &service.title,
            received_at,
            handler: &handler,
            citizen_name: &name,
            dates: &dates,
            area,
            what: "votre demande",
        };
        let mut records = SubmissionRecords::default();
        records.events.push(event(
            "submitted",
            ActorKind::Agent,
            json!({"reference": reference, "service": service.title, "on_behalf": true, "agent": agent.display_name, "inbound": contact.as_ref().map(|c| c.message.id)}),
        ));
        let (document, mail) = match &email {
            Some(e) => {
                let (d, m) =
                    ack::render(&state2, &a, e.as_str(), request_id).map_err(|e| e.to_string())?;
                (d, Some(m))
            }
            None => (ack::document(&a).map_err(|e| e.to_string())?, None),
        };
        records.events.push(event(
            "acknowledged",
            ActorKind::System,
            json!({"document": document.id, "kind": document.kind, "email": mail.as_ref().map(|m| m.id)}),
        ));
        records.documents.push(document);
        if let Some(mut m) = mail {
            if let Some(c) = &contact {
                m.references = c.message.message_id.iter().cloned().collect();
            }
            records.jobs.push(m.send_job(OffsetDateTime::now_utc()));
            records.emails.push(m);
        }
        if let Some(c) = &contact {
            records.inbound.push(InboundUpdate {
                id: c.message.id,
                tenant_id: c.message.tenant_id,
                expected_state: c.message.state.clone(),
                state: "qualified".to_owned(),
                request_id: Some(request_id),
                agent: Some(agent.id),
                reason: None,
            });
            if !c.message.body.is_empty() {
                records.events.push(NewEvent {
                    actor_id: c.message.citizen_id.map(|x| x.as_uuid()),
                    ..event(
                        "message",
                        ActorKind::Citizen,
                        json!({"body": c.message.body, "quoted": c.message.quoted, "subject": c.message.subject, "files": c.message.files.iter().map(|f| json!({"id": f.id, "name": f.name})).collect::<Vec<_>>(), "inbound": c.message.id, "sender": c.message.sender}),
                    )
                });
            }
        }
        Ok(records)
    };
    let submitted = match state.store.submit_request(&new, &build).await {
        Ok(s) => s,
        Err(StoreError::Conflict { constraint }) if constraint == "inbound_messages_state" => {
            return Err(AppError::Conflict(
                "Ce contact vient d'être traité par quelqu'un d'autre ; aucune demande n'a été créée.".into(),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    tracing::info!(request.id = %submitted.id, request.reference = %submitted.reference, channel = channel.as_str(), agent.id = %ctx.agent.id, invited = invitation.is_some(), "request recorded on behalf of a citizen");
    Ok(Redirect::to(&format!("/agents/demandes/{}?enregistree=1", submitted.id)).into_response())
}

#[derive(Template)]
#[template(path = "agents/ack_print.html")]
struct AckPrint {
    layout: Layout,
    id: RequestId,
    reference: String,
    html: String,
}

/// `GET /agents/demandes/{id}/accuse`: the acknowledgement to print and hand over or post.
pub(crate) async fn print_ack(
    State(state): State<AppState>,
    visitor: AgentVisitor,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let agent = require_agent(&state, &visitor).await?;
    let id: RequestId = id.parse().map_err(|_| AppError::NotFound)?;
    let request = state.store.get_agent_request(agent.id, id).await?.ok_or(AppError::NotFound)?;
    let document = state
        .store
        .list_request_documents(request.id)
        .await?
        .into_iter()
        .find(|d| matches!(d.document.kind.as_str(), "ar" | "are" | "aee"))
        .ok_or(AppError::NotFound)?;
    render(&AckPrint {
        layout: layout(&state, format!("Accusé de réception – {}", request.reference)),
        id: request.id,
        reference: request.reference,
        html: document.document.html,
    })
}

impl CounterPage {
    fn identity_errors(&self, key: &str) -> Option<&str> {
        self.errors.iter().find(|e| e.key == key).map(|e| e.message.as_str())
    }
}
