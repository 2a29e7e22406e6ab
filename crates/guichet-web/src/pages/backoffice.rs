//! The agents' back-office: one inbox over every tenant the agent works for, the request page
//! with the actions its workflow allows now, notes, replies, assignment, bulk actions, exports.
//! Every store call is scoped to the agent's tenants in SQL; a foreign id is a 404.

use std::collections::BTreeMap;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use guichet_domain::calendar::HolidayArea;
use guichet_domain::clock::{date_fr, date_short, datetime_fr, paris};
use guichet_domain::deadline::{
    DelayLength, Incompleteness, LegalDelay, Regime, RequestHistory, deemed_decision_date,
};
use guichet_domain::request::{ActorKind, Channel};
use guichet_domain::workflow::{Phase, Workflow};
use guichet_domain::{AgentId, EventId, FileId, RequestId, Role};
use guichet_store::{
    Agent, AssigneeFilter, Cursor, DeadlineFilter, Event, InboxFilter, InboxRow, InboxSort,
    NewEvent, RequestRecord, SavedView, Service, StatusChange, StoreError, SubmissionRecords,
    Tenant,
};
use serde_json::{Value, json};
use time::{Date, OffsetDateTime};

use crate::ack::{self, Ack, AckKind};
use crate::forms::FormFields;
use crate::pages::agents::{layout, require_agent};
use crate::pages::{Layout, render, url_encode};
use crate::session::AgentVisitor;
use crate::{AppError, AppState};

const PAGE: i64 = 50;
const DUE_SOON_DAYS: i64 = 7;

// ---------------------------------------------------------------- inbox

/// The inbox's query string, parsed leniently: an unknown value is ignored, never an error.
pub(crate) fn parse_filter(q: &BTreeMap<String, String>, agent: AgentId) -> InboxFilter {
    let get = |k: &str| q.get(k).map(|s| s.trim()).filter(|s| !s.is_empty());
    let date = |k: &str| {
        get(k).and_then(|d| {
            Date::parse(d, &time::macros::format_description!("[year]-[month]-[day]")).ok()
        })
    };
    let start_of = |d: Date| {
        paris(d.midnight().assume_utc()).replace_date(d).replace_time(time::Time::MIDNIGHT)
    };
    InboxFilter {
        tenant: get("collectivite").and_then(|s| s.parse().ok()),
        service: get("demarche").and_then(|s| s.parse().ok()),
        status: get("statut").map(str::to_owned),
        phase: get("etat").filter(|p| ["open", "waiting", "closed"].contains(p)).map(str::to_owned),
        channel: get("canal").and_then(Channel::parse),
        assignee: match get("agent") {
            Some("moi") => AssigneeFilter::Agent(agent),
            Some("personne") => AssigneeFilter::Unassigned,
            Some(id) => id.parse().map_or(AssigneeFilter::Any, AssigneeFilter::Agent),
            None => AssigneeFilter::Any,
        },
        deadline: match get("delai") {
            Some("depasse") => DeadlineFilter::Overdue,
            Some("bientot") => DeadlineFilter::DueWithin(DUE_SOON_DAYS),
            _ => DeadlineFilter::Any,
        },
        from: date("du").map(start_of),
        to: date("au").map(|d| start_of(d + time::Duration::days(1))),
        commune: get("commune").and_then(|s| s.parse().ok()),
        search: get("q").map(guichet_domain::fold).filter(|s| !s.is_empty()),
        sort: if get("tri") == Some("ancien") { InboxSort::Oldest } else { InboxSort::Newest },
        today: Some(paris(OffsetDateTime::now_utc()).date()),
    }
}

fn cursor(q: &BTreeMap<String, String>) -> Option<Cursor> {
    let (ts, id) = q.get("apres")?.split_once('_')?;
    let us: i128 = ts.parse().ok()?;
    Some(Cursor {
        submitted_at: OffsetDateTime::from_unix_timestamp_nanos(us * 1000).ok()?,
        id: id.parse().ok()?,
    })
}

/// A row as shown.
pub(crate) struct Row {
    pub row: InboxRow,
    pub status_label: String,
    pub submitted: String,
    pub deemed: String,
    pub overdue: bool,
}

fn rows(rows: Vec<InboxRow>, today: Date) -> Vec<Row> {
    rows.into_iter()
        .map(|row| Row {
            status_label: Workflow::default()
                .status(&row.status)
                .map_or(row.status.clone(), |s| s.label.clone()),
            submitted: datetime_fr(row.submitted_at),
            deemed: row.deemed_decision_on.map(date_short).unwrap_or_default(),
            overdue: row.phase != "closed" && row.deemed_decision_on.is_some_and(|d| d < today),
            row,
        })
        .collect()
}

pub(crate) struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

fn choices(items: Vec<(String, String)>, current: Option<&String>) -> Vec<Choice> {
    items
        .into_iter()
        .map(|(value, label)| Choice { selected: current == Some(&value), value, label })
        .collect()
}

#[derive(Template)]
#[template(path = "agents/inbox.html")]
struct InboxPage {
    layout: Layout,
    csrf: String,
    agent: Agent,
    rows: Vec<Row>,
    count: i64,
    query: BTreeMap<String, String>,
    query_string: String,
    next: Option<String>,
    tenants: Vec<Choice>,
    statuses: Vec<Choice>,
    channels: Vec<Choice>,
    views: Vec<(SavedView, i64)>,
    assignees: Vec<Choice>,
    transitions: Vec<Choice>,
    has_totp: bool,
    contacts: i64,
}

impl InboxPage {
    fn q(&self, key: &str) -> &str {
        self.query.get(key).map_or("", String::as_str)
    }
}

fn query_string(q: &BTreeMap<String, String>) -> String {
    q.iter()
        .filter(|(k, v)| k.as_str() != "apres" && !v.trim().is_empty())
        .map(|(k, v)| format!("{}={}", url_encode(k), url_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// `GET /agents/`
pub(crate) async fn inbox(
    State(state): State<AppState>,
    visitor: AgentVisitor,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Response, AppError> {
    let agent = require_agent(&state, &visitor).await?;
    let filter = parse_filter(&q, agent.id);
    let today = filter.today.unwrap_or_else(|| OffsetDateTime::now_utc().date());
    let (found, count) = state.store.inbox_page(agent.id, &filter, cursor(&q), PAGE + 1).await?;
    let more = found.len() as i64 > PAGE;
    let mut found = found;
    found.truncate(PAGE as usize);
    let qs = query_string(&q);
    let next = more.then(|| {
        let last = &found[found.len() - 1];
        let us = last.submitted_at.unix_timestamp_nanos() / 1000;
        format!("/agents/?{}{}apres={us}_{}", qs, if qs.is_empty() { "" } else { "&" }, last.id)
    });
    let mut views = Vec::new();
    for v in state.store.list_saved_views(agent.id).await? {
        let parsed: BTreeMap<String, String> = v
            .query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_owned(), decode(v)))
            .collect();
        let n = state.store.count_inbox(agent.id, &parse_filter(&parsed, agent.id)).await?;
        views.push((v, n));
    }
    let tenants = choices(
        agent
            .memberships
            .iter()
            .map(|m| (m.tenant_id.to_string(), m.tenant_name.clone()))
            .collect(),
        q.get("collectivite"),
    );
    let workflow = Workflow::default();
    let statuses = choices(
        workflow.statuses.iter().map(|s| (s.key.clone(), s.label.clone())).collect(),
        q.get("statut"),
    );
    let channels = choices(
        [
            Channel::Web,
            Channel::Email,
            Channel::Sms,
            Channel::Courrier,
            Channel::Guichet,
            Channel::Telephone,
        ]
        .iter()
        .map(|c| (c.as_str().to_owned(), c.label().to_owned()))
        .collect(),
        q.get("canal"),
    );
    let mut assignees =
        vec![("moi".to_owned(), "Moi".to_owned()), ("personne".to_owned(), "Personne".to_owned())];
    let mut seen = Vec::new();
    for m in &agent.memberships {
        for (id, name, _) in state.store.list_tenant_agents(m.tenant_id).await? {
            if id != agent.id && !seen.contains(&id) {
                seen.push(id);
                assignees.push((id.to_string(), name));
            }
        }
    }
    let assignees = choices(assignees, q.get("agent"));
    let transitions = choices(
        workflow.transitions.iter().map(|t| (t.key.clone(), t.label.clone())).collect(),
        None,
    );
    let contacts = state.store.count_contacts(agent.id).await?;
    render(&InboxPage {
        contacts,
        layout: layout(&state, "Demandes"),
        csrf: visitor.0.csrf(&state).await?,
        has_totp: agent.totp_secret.is_some(),
        agent,
        rows: rows(found, today),
        count,
        query_string: qs,
        query: q,
        next,
        tenants,
        statuses,
        channels,
        views,
        assignees,
        transitions,
    })
}

fn decode(s: &str) -> String {
    let bytes = s.replace('+', " ").into_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&String::from_utf8_lossy(&bytes[i + 1..i + 3]), 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `POST /agents/vues`: saves the current filters under a name.
pub(crate) async fn save_view(
    State(state): State<AppState>,
    visitor: AgentVisitor,
    form: FormFields,
) -> Result<Response, AppError> {
    visitor.0.check_csrf(form.get("_csrf"))?;
    let agent = require_agent(&state, &visitor).await?;
    let name = form.get("nom");
    if name.is_empty() || name.chars().count() > 80 {
        return Err(AppError::BadRequest(
            "« Nom de la vue » : indiquez un nom de 80 caractères au plus.".into(),
        ));
    }
    let query = form.get("requete").chars().take(2000).collect::<String>();
    state
        .store
        .add_saved_view(&SavedView {
            id: uuid::Uuid::now_v7(),
            agent_id: agent.id,
            name: name.to_owned(),
            query: query.clone(),
        })
        .await?;
    Ok(Redirect::to(&format!("/agents/?{query}")).into_response())
}

/// `POST /agents/vues/{id}/supprimer`
pub(crate) async fn delete_view(
    State(state): State<AppState>,
    visitor: AgentVisitor,
    Path(id): Path<String>,
    form: FormFields,
) -> Result<Response, AppError> {
    visitor.0.check_csrf(form.get("_csrf"))?;
    let agent = require_agent(&state, &visitor).await?;
    let id: uuid::Uuid = id.parse().map_err(|_| AppError::NotFound)?;
    state.store.delete_saved_view(agent.id, id).await?;
    Ok(Redirect::to("/agents/").into_response())
}

// ---------------------------------------------------------------- exports

fn csv_field(s: &str) -> String {
    // Formula injection: a cell starting with = + - @ is prefixed so spreadsheets show text.
    let s = if s.starts_with(['=', '+', '-', '@']) { format!("'{s}") } else { s.to_owned() };
    if s.contains([';', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s }
}

const EXPORT_HEADER: [&str; 9] = [
    "Référence",
    "Collectivité",
    "Démarche",
    "Usager",
    "Canal",
    "Statut",
    "Déposée le",
    "Décision implicite le",
    "Agent",
];

/// Every row of an inbox view (up to 100,000), as text cells.
async fn export_rows(
    state: &AppState,
    agent: &Agent,
    q: &BTreeMap<String, String>,
) -> Result<Vec<Vec<String>>, AppError> {
    let filter = parse_filter(q, agent.id);
    let workflow = Workflow::default();
    let mut out = Vec::new();
    let mut after = None;
    while out.len() < 100_000 {
        let page = state.store.inbox(agent.id, &filter, after, 1000).await?;
        if page.is_empty() {
            break;
        }
        after = page.last().map(|r| Cursor { submitted_at: r.submitted_at, id: r.id });
        out.extend(page.into_iter().map(|r| {
            vec![
                r.reference,
                r.tenant_name,
                r.service_title,
                r.citizen_name,
                r.channel.label().to_owned(),
                workflow.status(&r.status).map_or(r.status.clone(), |s| s.label.clone()),
                datetime_fr(r.submitted_at),
                r.deemed_decision_on.map(date_short).unwrap_or_default(),
                r.assignee_name.unwrap_or_default(),
            ]
        }));
    }
    tracing::info!(agent.id = %agent.id, rows = out.len(), "inbox exported");
    Ok(out)
}

/// `GET /agents/export.csv`: the current inbox view, every page, as CSV (UTF-8 with BOM and
/// `;` separators, what French spreadsheet software expects).
pub(crate) async fn export_csv(
    State(state): State<AppState>,
    visitor: AgentVisitor,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Response, AppError> {
    let agent = require_agent(&state, &visitor).await?;
    let mut out = format!("\u{feff}{}\r\n", EXPORT_HEADER.join(";"));
    for row in export_rows(&state, &agent, &q).await? {
        out.push_str(&row.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(";"));
        out.push_str("\r\n");
    }
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"demandes.csv\""),
        ],
        out,
    )
        .into_response())
}

/// `GET /agents/export.ods`: the same as an OpenDocument spreadsheet.
pub(crate) async fn export_ods(
    State(state): State<AppState>,
    visitor: AgentVisitor,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Response, AppError> {
    let agent = require_agent(&state, &visitor).await?;
    let rows = export_rows(&state, &agent, &q).await?;
    let bytes = crate::sheets::spreadsheet("Demandes", &EXPORT_HEADER, &rows);
    Ok((
        [
            (header::CONTENT_TYPE, "application/vnd.oasis.opendocument.spreadsheet"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"demandes.ods\""),
        ],
        bytes,
    )
        .into_response())
}

// ---------------------------------------------------------------- request page

struct Loaded {
    agent: Agent,
    request: RequestRecord,
    service: Arc<Service>,
    tenant: Tenant,
    role: Role,
}

async fn load(state: &AppState, visitor: &AgentVisitor, id: &str) -> Result<Loaded, AppError> {
    let agent = require_agent(state, visitor).await?;
    let id: RequestId = id.parse().map_err(|_| AppError::NotFound)?;
    let request = state.store.get_agent_request(agent.id, id).await?.ok_or(AppError::NotFound)?;
    let role = agent.role_in(request.tenant_id).ok_or(AppError::NotFound)?;
    // The service and the tenant are read from the kept copies, as the citizen's pages read
    // them (`crate::cache`): they change only through imports, which show within seconds, and
    // every view and action of an agent read both from the database.
    let service = crate::cache::service(state, request.service_id).await?;
    let tenant = crate::cache::tenant_by_id(state, request.tenant_id).await?;
    Ok(Loaded { agent, request, service, tenant, role })
}

fn event(l: &Loaded, kind: &str, visible: bool, data: Value) -> NewEvent {
    NewEvent {
        id: EventId::new(),
        tenant_id: l.request.tenant_id,
        request_id: Some(l.request.id),
        at: OffsetDateTime::now_utc(),
        actor_kind: ActorKind::Agent,
        actor_id: Some(l.agent.id.as_uuid()),
        channel: Channel::Web,
        kind: kind.to_owned(),
        citizen_visible: visible,
        data,
    }
}

/// A timeline entry for agents.
pub(crate) struct Entry {
    pub when: String,
    pub what: String,
    pub who: String,
    pub channel: &'static str,
    pub body: Option<String>,
    pub quoted: Option<String>,
    pub internal: bool,
    pub files: Vec<(String, String)>,
    /// Links to what the event produced or received (letter PDF, original e-mail).
    pub links: Vec<(String, String)>,
}

fn describe(e: &Event, workflow: &Workflow) -> String {
    let d = &e.event.data;
    let s = |k: &str| d.get(k).and_then(Value::as_str).unwrap_or("");
    match e.event.kind.as_str() {
        "submitted" if d.get("on_behalf").and_then(Value::as_bool).unwrap_or(false) => format!(
            "Demande enregistrée par {} ({})",
            if s("agent").is_empty() { "un agent" } else { s("agent") },
            e.event.channel.label().to_lowercase()
        ),
        "submitted" => "Demande déposée".into(),
        "acknowledged" => match s("kind") {
            "aee" => "Accusé d'enregistrement envoyé".into(),
            "ar" if d.get("email").is_none_or(Value::is_null) => {
                "Accusé de réception établi (à remettre ou envoyer)".into()
            }
            _ => "Accusé de réception envoyé".into(),
        },
        "message" if e.event.actor_kind == ActorKind::Citizen => {
            format!("Message de l'usager ({})", e.event.channel.label().to_lowercase())
        }
        "message" => match e.event.channel {
            Channel::Sms => format!(
                "Réponse à l'usager par SMS ({} SMS)",
                d.get("segments").and_then(Value::as_i64).unwrap_or(1)
            ),
            Channel::Courrier => format!("Réponse à l'usager par courrier (code {})", s("code")),
            Channel::Email => "Réponse à l'usager par courriel".into(),
            _ => "Réponse à l'usager (espace en ligne)".into(),
        },

        "note" => "Note interne".into(),
        "assigned" => {
            format!("Attribuée à {}", if s("name").is_empty() { "personne" } else { s("name") })
        }
        "status_changed" => format!(
            "Statut : {}",
            workflow.status(s("to")).map_or(s("to").to_owned(), |x| x.label.clone())
        ),
        "viewed" => "Consultation du dossier".into(),
        other => other.replace('_', " "),
    }
}

#[derive(Template)]
#[template(path = "agents/request.html")]
struct RequestPage {
    layout: Layout,
    csrf: String,
    request: RequestRecord,
    service: Arc<Service>,
    tenant: Tenant,
    status_label: String,
    submitted: String,
    deemed: Option<String>,
    citizen_name: String,
    citizen_email: String,
    answers: Vec<(String, Vec<(String, String)>)>,
    files: Vec<(String, String, String)>,
    timeline: Vec<Entry>,
    others: Vec<Row>,
    actions: Vec<(String, String, bool, bool)>,
    assignees: Vec<Choice>,
    templates: Vec<(String, String)>,
    error: Option<String>,
    info: Option<String>,
    reply: ReplyDraft,
    reply_channels: Vec<Choice>,
    sms: Vec<(String, String, String, String)>,
    originals: Vec<(String, String, String)>,
}

/// What the reply form shows: the text being written and its channel.
#[derive(Clone, Default)]
pub(crate) struct ReplyDraft {
    pub text: String,
    pub channel: String,
}

/// Where a reply can go, and where it goes by default: the channel the request came by, or
/// SMS when the citizen prefers it, else e-mail when there is an address, else paper.
async fn reply_channels(
    state: &AppState,
    l: &Loaded,
    chosen: &str,
) -> Result<(Vec<Choice>, Option<String>, Option<String>), AppError> {
    let (email, phone, prefers_sms) = contact_points(state, l).await?;
    let mut items = Vec::new();
    if let Some(e) = &email {
        items.push(("courriel".to_owned(), format!("Courriel ({e}) et espace en ligne")));
    }
    if let Some(p) = &phone {
        let shown = guichet_domain::Phone::parse(p).map_or(p.clone(), |p| p.display_national());
        items.push(("sms".to_owned(), format!("SMS au {shown}")));
    }
    items.push(("courrier".to_owned(), "Courrier postal (lettre PDF à imprimer)".to_owned()));
    if l.request.citizen_id.is_some() {
        items.push(("portail".to_owned(), "Espace en ligne seulement".to_owned()));
    }
    let default = if !chosen.is_empty() && items.iter().any(|(v, _)| v == chosen) {
        chosen.to_owned()
    } else if phone.is_some() && (l.request.channel == Channel::Sms || prefers_sms) {
        "sms".to_owned()
    } else if l.request.channel == Channel::Courrier || email.is_none() {
        "courrier".to_owned()
    } else {
        "courriel".to_owned()
    };
    Ok((choices(items, Some(&default)), email, phone))
}

/// The citizen's e-mail address, phone number and SMS preference: from their account, else
/// from what was recorded on the request (a citizen without an account).
async fn contact_points(
    state: &AppState,
    l: &Loaded,
) -> Result<(Option<String>, Option<String>, bool), AppError> {
    let s = |k: &str| {
        l.request
            .submitter
            .get(k)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    if let Some(c) = l.request.citizen_id {
        match state.store.get_citizen(c).await {
            Ok(c) => {
                return Ok((
                    Some(c.email.to_string()),
                    c.profile.phone.map(|p| p.as_str().to_owned()).or_else(|| s("telephone")),
                    c.profile.notify_sms,
                ));
            }
            Err(StoreError::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok((s("courriel"), s("telephone"), false))
}

async fn request_page(
    state: &AppState,
    visitor: &AgentVisitor,
    l: &Loaded,
    error: Option<String>,
) -> Result<RequestPage, AppError> {
    request_page_with(state, visitor, l, error, None, ReplyDraft::default()).await
}

async fn request_page_with(
    state: &AppState,
    visitor: &AgentVisitor,
    l: &Loaded,
    error: Option<String>,
    info: Option<String>,
    reply: ReplyDraft,
) -> Result<RequestPage, AppError> {
    let workflow = l.service.workflow();
    let events = state.store.list_request_events(l.request.id, false).await?;
    let agents: BTreeMap<String, String> = state
        .store
        .list_tenant_agents(l.request.tenant_id)
        .await?
        .into_iter()
        .map(|(id, name, _)| (id.to_string(), name))
        .collect();
    let timeline = events
        .iter()
        .filter(|e| e.event.kind != "viewed")
        .map(|e| Entry {
            when: datetime_fr(e.event.at),
            what: describe(e, &workflow),
            who: match e.event.actor_kind {
                ActorKind::Citizen => "Usager".into(),
                ActorKind::System => "Guichet".into(),
                ActorKind::Agent => e
                    .event
                    .actor_id
                    .and_then(|a| agents.get(&a.to_string()).cloned())
                    .unwrap_or_else(|| "Agent".into()),
            },
            channel: e.event.channel.label(),
            body: e
                .event
                .data
                .get("body")
                .and_then(Value::as_str)
                .filter(|b| !b.is_empty())
                .map(str::to_owned),
            quoted: e
                .event
                .data
                .get("quoted")
                .and_then(Value::as_str)
                .filter(|b| !b.is_empty())
                .map(str::to_owned),
            links: event_links(l, e),
            internal: !e.event.citizen_visible,
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
        })
        .collect();
    let files = l
        .request
        .answers
        .values()
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(|f| {
            Some((
                f.get("id")?.as_str()?.to_owned(),
                f.get("name")?.as_str()?.to_owned(),
                f.get("content_type")?.as_str()?.to_owned(),
            ))
        })
        .collect();
    let today = paris(OffsetDateTime::now_utc()).date();
    let others = match l.request.citizen_id {
        Some(c) => rows(
            state
                .store
                .citizen_requests_for_agent(l.agent.id, c)
                .await?
                .into_iter()
                .filter(|r| r.id != l.request.id)
                .collect(),
            today,
        ),
        None => Vec::new(),
    };
    let submitter = &l.request.submitter;
    let s = |k: &str| submitter.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let assignees = choices(
        std::iter::once((String::new(), "Personne".to_owned()))
            .chain(agents.iter().map(|(id, n)| (id.clone(), n.clone())))
            .collect(),
        l.request.assignee_id.map(|a| a.to_string()).as_ref(),
    );
    let templates = state
        .store
        .list_reply_templates(l.request.tenant_id)
        .await?
        .into_iter()
        .map(|t| (t.title, t.body))
        .collect();
    let (reply_channels, _, _) = reply_channels(state, l, &reply.channel).await?;
    let sms = state
        .store
        .request_sms(l.request.id)
        .await?
        .into_iter()
        .map(|m| {
            let status = match m.status.as_str() {
                "pending" => "en attente d'envoi",
                "sent" => "envoyé à l'opérateur",
                "delivered" => "remis",
                _ => "échec",
            };
            (
                datetime_fr(m.created_at),
                m.sms.to,
                format!("{status}{}", m.last_error.map(|e| format!(" : {e}")).unwrap_or_default()),
                m.sms.body,
            )
        })
        .collect();
    let originals = state
        .store
        .request_inbound(l.request.id)
        .await?
        .into_iter()
        .filter_map(|m| {
            Some((
                m.message.raw_file_id?.to_string(),
                format!("{} du {}", m.message.channel.label(), datetime_fr(m.message.received_at)),
                m.message.sender,
            ))
        })
        .collect();
    Ok(RequestPage {
        info,
        reply,
        reply_channels,
        sms,
        originals,
        layout: layout(state, format!("Demande {}", l.request.reference)),
        csrf: visitor.0.csrf(state).await?,
        status_label: workflow
            .status(&l.request.status)
            .map_or(l.request.status.clone(), |x| x.label.clone()),
        submitted: datetime_fr(l.request.submitted_at),
        deemed: l.request.deemed_decision_on.map(date_fr),
        citizen_name: format!("{} {}", s("prenom"), s("nom")),
        citizen_email: s("courriel"),
        answers: l.service.form.summary(&l.request.answers),
        files,
        timeline,
        others,
        actions: workflow
            .available(&l.request.status, l.role)
            .into_iter()
            .map(|t| (t.key.clone(), t.label.clone(), t.message_required, t.incomplete))
            .collect(),
        assignees,
        templates,
        error,
        request: l.request.clone(),
        service: l.service.clone(),
        tenant: l.tenant.clone(),
    })
}

/// Links shown under a timeline entry.
fn event_links(l: &Loaded, e: &Event) -> Vec<(String, String)> {
    let d = &e.event.data;
    let mut links = Vec::new();
    if e.event.kind == "message"
        && e.event.channel == Channel::Courrier
        && let Some(doc) = d.get("document").and_then(Value::as_str)
        && d.get("code").is_some()
    {
        links.push((
            format!("/agents/demandes/{}/courriers/{doc}.pdf", l.request.id),
            "Lettre à imprimer (PDF)".to_owned(),
        ));
    }
    let on_behalf = d.get("on_behalf").and_then(Value::as_bool).unwrap_or(false);
    if e.event.kind == "submitted" && on_behalf {
        links.push((
            format!("/agents/demandes/{}/accuse", l.request.id),
            "Accusé de réception à imprimer".to_owned(),
        ));
    }
    links
}

/// `GET /agents/demandes/{id}`: viewing personal data is itself traced.
pub(crate) async fn show(
    State(state): State<AppState>,
    visitor: AgentVisitor,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let l = load(&state, &visitor, &id).await?;
    state
        .store
        .record(&SubmissionRecords {
            events: vec![event(&l, "viewed", false, json!({}))],
            ..Default::default()
        })
        .await?;
    let page = request_page(&state, &visitor, &l, None).await?;
    render(&page)
}

async fn refused(
    state: &AppState,
    visitor: &AgentVisitor,
    l: &Loaded,
    message: String,
) -> Result<Response, AppError> {
    let page = request_page(state, visitor, l, Some(message)).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response())
}

#[derive(Template)]
#[template(path = "emails/update.txt")]
struct UpdateText<'a> {
    name: &'a str,
    reference: &'a str,
    service: &'a str,
    status: Option<&'a str>,
    body: &'a str,
    link: &'a str,
    sender: &'a str,
}

#[derive(Template)]
#[template(path = "emails/update.html")]
struct UpdateHtml<'a> {
    name: &'a str,
    reference: &'a str,
    service: &'a str,
    status: Option<&'a str>,
    body: &'a str,
    link: &'a str,
    sender: &'a str,
}

/// The e-mail telling the citizen about a change or a reply, when they have an address.
async fn notify(
    state: &AppState,
    l: &Loaded,
    status: Option<&str>,
    body: &str,
) -> Result<Option<guichet_store::NewEmail>, AppError> {
    // A citizen with an account, or one known only by what was recorded at the counter or
    // from their e-mail (no account: the address on the request).
    let account = match l.request.citizen_id {
        Some(id) => match state.store.get_citizen(id).await {
            Ok(c) => Some(c),
            Err(StoreError::NotFound) => None,
            Err(e) => return Err(e.into()),
        },
        None => None,
    };
    let sub = |k: &str| l.request.submitter.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let (to, name, wants_email) = match &account {
        Some(c) => (
            c.email.to_string(),
            format!("{} {}", c.profile.given_name, c.profile.family_name),
            c.profile.notify_email,
        ),
        None if !sub("courriel").is_empty() => {
            (sub("courriel"), format!("{} {}", sub("prenom"), sub("nom")).trim().to_owned(), true)
        }
        None => return Ok(None),
    };
    if !wants_email && status.is_some() {
        return Ok(None);
    }
    let link = format!("{}/compte/demandes/{}", state.config.base_url, l.request.id);
    let subject = match status {
        Some(s) => format!("Votre demande {} : {s}", l.request.reference),
        None => format!("Nouveau message concernant votre demande {}", l.request.reference),
    };
    let sender = &l.tenant.contact.service_name;
    let (t, h) = (
        UpdateText {
            name: &name,
            reference: &l.request.reference,
            service: &l.service.title,
            status,
            body,
            link: &link,
            sender,
        },
        UpdateHtml {
            name: &name,
            reference: &l.request.reference,
            service: &l.service.title,
            status,
            body,
            link: &link,
            sender,
        },
    );
    let mut mail = crate::mail::email(state, &to, subject, &t, &h, Some(l.request.id))?;
    thread(state, l, &mut mail).await?;
    Ok(Some(mail))
}

/// Makes an e-mail about a request answer the citizen's own messages (so their mail client
/// threads the exchange) and come back to the tenant's functional address when they reply.
async fn thread(
    state: &AppState,
    l: &Loaded,
    mail: &mut guichet_store::NewEmail,
) -> Result<(), AppError> {
    mail.reply_to = crate::inbound::reply_address(state, l.request.tenant_id).await?;
    let mut ids: Vec<String> = state
        .store
        .request_inbound(l.request.id)
        .await?
        .into_iter()
        .filter_map(|m| m.message.message_id)
        .collect();
    // A long exchange keeps its last twenty ids: enough for any client to thread it.
    let skip = ids.len().saturating_sub(20);
    mail.references = ids.split_off(skip);
    Ok(())
}

fn date_field(s: &str) -> Option<Date> {
    Date::parse(s, &time::macros::format_description!("[year]-[month]-[day]")).ok()
}

/// Rebuilds the request's legal history from its events (received, incompleteness requested,
/// completed) and computes the deemed-decision date again.
fn recompute_deemed(l: &Loaded, events: &[Event], extra: &[NewEvent]) -> Option<Date> {
    let regime = Regime::parse(&l.service.regime)?;
    let length = DelayLength::parse(&l.service.delay).ok()?;
    let area =
        l.tenant.insee_code.as_ref().map_or(HolidayArea::Metropole, HolidayArea::for_commune);
    let mut history = RequestHistory::new(paris(l.request.submitted_at).date(), area);
    let mut open: Option<Incompleteness> = None;
    let all = events.iter().map(|e| &e.event).chain(extra.iter());
    for e in all {
        let d = &e.data;
        match e.kind.as_str() {
            "incomplete" => {
                let (Some(on), Some(deadline)) = (
                    d.get("requested_on").and_then(Value::as_str).and_then(date_field),
                    d.get("deadline").and_then(Value::as_str).and_then(date_field),
                ) else {
                    continue;
                };
                if let Some(prev) = open.take() {
                    let _ = history.push_incompleteness(prev);
                }
                open = Incompleteness::new(on, deadline).ok();
            }
            "completed" => {
                if let (Some(p), Some(on)) =
                    (open.take(), d.get("on").and_then(Value::as_str).and_then(date_field))
                    && let Ok(done) = p.completed(on)
                {
                    let _ = history.push_incompleteness(done);
                }
            }
            _ => {}
        }
    }
    if let Some(p) = open {
        let _ = history.push_incompleteness(p);
    }
    deemed_decision_date(&LegalDelay::new(regime, length), &history)
}

/// `POST /agents/demandes/{id}/transition`
pub(crate) async fn transition(
    State(state): State<AppState>,
    visitor: AgentVisitor,
    Path(id): Path<String>,
    form: FormFields,
) -> Result<Response, AppError> {
    visitor.0.check_csrf(form.get("_csrf"))?;
    let l = load(&state, &visitor, &id).await?;
    let workflow = l.service.workflow();
    let message = form.get("message").replace("\r\n", "\n");
    let t = match workflow.check(form.get("action"), &l.request.status, l.role, &message) {
        Ok(t) => t.clone(),
        Err(e) => return refused(&state, &visitor, &l, e.to_string()).await,
    };
    if message.chars().count() > 10_000 {
        return refused(
            &state,
            &visitor,
            &l,
            "« Message à l'usager » : 10 000 caractères au plus.".into(),
        )
        .await;
    }
    let today = paris(OffsetDateTime::now_utc()).date();
    let mut extra = Vec::new();
    if t.incomplete {
        let missing = form.get("manquant");
        let Some(deadline) = date_field(form.get("echeance")).filter(|d| *d > today) else {
            return refused(
                &state,
                &visitor,
                &l,
                "« Date limite pour compléter » : indiquez une date future.".into(),
            )
            .await;
        };
        if missing.is_empty() {
            return refused(
                &state,
                &visitor,
                &l,
                "« Pièces et informations manquantes » : listez ce qui manque.".into(),
            )
            .await;
        }
        extra.push(event(&l, "incomplete", true, json!({"missing": missing, "requested_on": today.to_string(), "deadline": deadline.to_string()})));
    }
    let from_phase = workflow.phase(&l.request.status);
    if from_phase == Phase::Waiting && workflow.phase(&t.to) != Phase::Waiting {
        extra.push(event(&l, "completed", true, json!({"on": today.to_string()})));
    }
    let events = state.store.list_request_events(l.request.id, false).await?;
    let deemed = recompute_deemed(&l, &events, &extra).or(if t.incomplete {
        None
    } else {
        l.request.deemed_decision_on
    });
    let to = workflow.status(&t.to).cloned();
    let citizen_label = to.as_ref().map_or(t.to.clone(), |s| s.citizen_label.clone());
    let mut records = SubmissionRecords::default();
    records.events.push(event(&l, "status_changed", true, json!({"from": l.request.status, "to": t.to, "citizen_label": citizen_label, "body": message, "transition": t.key})));
    records.events.extend(extra);
    if t.acknowledges {
        // The check is done: the acknowledgement of receipt follows the one of registration.
        if let Some(citizen) = match l.request.citizen_id {
            Some(c) => state.store.get_citizen(c).await.ok(),
            None => None,
        } {
            let area = ack::area_of(&[&l.tenant]);
            let dates = ack::legal_dates(&l.service, l.request.submitted_at, area);
            let name = format!("{} {}", citizen.profile.given_name, citizen.profile.family_name);
            let a = Ack {
                kind: AckKind::Are,
                reference: &l.request.reference,
                subject: &l.service.title,
                received_at: l.request.submitted_at,
                handler: &l.tenant,
                citizen_name: &name,
                dates: &dates,
                area,
                what: "votre demande",
            };
            let (document, email) = ack::render(&state, &a, citizen.email.as_str(), l.request.id)?;
            records.events.push(NewEvent {
                actor_kind: ActorKind::System,
                actor_id: None,
                ..event(
                    &l,
                    "acknowledged",
                    true,
                    json!({"document": document.id, "kind": "are", "email": email.id}),
                )
            });
            records.jobs.push(email.send_job(OffsetDateTime::now_utc()));
            records.documents.push(document);
            records.emails.push(email);
        }
    }
    if t.notify
        && let Some(email) = notify(&state, &l, Some(&citizen_label), &message).await?
    {
        records.jobs.push(email.send_job(OffsetDateTime::now_utc()));
        records.emails.push(email);
    }
    let change = StatusChange {
        request_id: l.request.id,
        expected_status: l.request.status.clone(),
        status: t.to.clone(),
        phase: workflow.phase(&t.to).as_str().to_owned(),
        deemed_decision_on: deemed,
    };
    match state.store.change_status(&change, &records).await {
        Ok(()) => Ok(Redirect::to(&format!("/agents/demandes/{}", l.request.id)).into_response()),
        Err(StoreError::Conflict { .. }) => Err(AppError::Conflict("Quelqu'un vient de modifier cette demande. Rechargez la page pour voir son nouvel état ; votre message n'a pas été envoyé.".into())),
        Err(e) => Err(e.into()),
    }
}

/// `POST /agents/demandes/{id}/note`: an internal note, never shown to the citizen.
pub(crate) async fn note(
    State(state): State<AppState>,
    visitor: AgentVisitor,
    Path(id): Path<String>,
    form: FormFields,
) -> Result<Response, AppError> {
    visitor.0.check_csrf(form.get("_csrf"))?;
    let l = load(&state, &visitor, &id).await?;
    let body = form.get("note").replace("\r\n", "\n");
    if body.is_empty() || body.chars().count() > 10_000 {
        return refused(
            &state,
            &visitor,
            &l,
            "« Note interne » : écrivez une note de 10 000 caractères au plus.".into(),
        )
        .await;
    }
    state
        .store
        .record(&SubmissionRecords {
            events: vec![event(&l, "note", false, json!({"body": body}))],
            ..Default::default()
        })
        .await?;
    Ok(Redirect::to(&format!("/agents/demandes/{}", l.request.id)).into_response())
}

/// `POST /agents/demandes/{id}/reponse`: a reply to the citizen on the chosen channel: e-mail
/// (threaded with the citizen's own messages) and the portal, SMS, or a paper letter produced
/// as a PDF. "Compter" only shows the SMS length without sending anything.
pub(crate) async fn reply(
    State(state): State<AppState>,
    visitor: AgentVisitor,
    Path(id): Path<String>,
    form: FormFields,
) -> Result<Response, AppError> {
    visitor.0.check_csrf(form.get("_csrf"))?;
    let l = load(&state, &visitor, &id).await?;
    let body = form.get("reponse").replace("\r\n", "\n");
    let draft = ReplyDraft { text: body.clone(), channel: form.get("canal").to_owned() };
    let refuse = |message: String| {
        let (state, visitor, l, draft) = (&state, &visitor, &l, draft.clone());
        async move {
            let page = request_page_with(state, visitor, l, Some(message), None, draft).await?;
            Ok::<Response, AppError>(
                (StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response(),
            )
        }
    };
    if body.is_empty() || body.chars().count() > 10_000 {
        return refuse(
            "« Réponse à l'usager » : écrivez une réponse de 10 000 caractères au plus.".into(),
        )
        .await;
    }
    let (channels, email, phone) = reply_channels(&state, &l, &draft.channel).await?;
    let Some(channel) = channels.iter().find(|c| c.selected).map(|c| c.value.clone()) else {
        return refuse("« Canal de la réponse » : choisissez un canal.".into()).await;
    };
    if channel != draft.channel && !draft.channel.is_empty() {
        return refuse(
            "« Canal de la réponse » : ce canal n'est pas disponible pour cet usager.".into(),
        )
        .await;
    }
    let length = guichet_domain::channel::sms_length(&body);
    if form.get("apercu") == "1" {
        let info = format!(
            "Longueur en SMS : {} caractère(s), {} SMS (codage {}). Rien n'a été envoyé.",
            body.chars().count(),
            length.segments,
            length.encoding.label()
        );
        let page = request_page_with(&state, &visitor, &l, None, Some(info), draft).await?;
        return render(&page);
    }
    let now = OffsetDateTime::now_utc();
    let mut records = SubmissionRecords::default();
    match channel.as_str() {
        "sms" => {
            if length.segments > guichet_domain::channel::MAX_SMS_SEGMENTS {
                return refuse(format!(
                    "« Réponse à l'usager » : ce texte ferait {} SMS ; {} au plus. Raccourcissez-le ou répondez par courriel ou courrier.",
                    length.segments,
                    guichet_domain::channel::MAX_SMS_SEGMENTS
                ))
                .await;
            }
            let Some(to) = phone.and_then(|p| guichet_domain::Phone::parse(&p).ok()) else {
                return refuse("« Canal de la réponse » : aucun numéro de téléphone valide n'est connu pour cet usager.".into()).await;
            };
            let to = to.as_str().to_owned();
            let sms = guichet_store::NewSms {
                id: uuid::Uuid::now_v7(),
                tenant_id: l.request.tenant_id,
                request_id: Some(l.request.id),
                to,
                body: body.clone(),
                segments: i32::try_from(length.segments).unwrap_or(i32::MAX),
            };
            records.events.push(NewEvent {
                channel: Channel::Sms,
                ..event(&l, "message", true, json!({"body": body, "sms": sms.id, "segments": length.segments, "encoding": length.encoding.label()}))
            });
            records.jobs.push(sms.send_job(now));
            records.sms.push(sms);
        }
        "courrier" => {
            let code = guichet_domain::channel::letter_code(random_u64());
            let document = letter_document(&l, &body, &code, now);
            records.events.push(NewEvent {
                channel: Channel::Courrier,
                ..event(
                    &l,
                    "message",
                    true,
                    json!({"body": body, "document": document.id, "code": code}),
                )
            });
            records.documents.push(document);
        }
        "courriel" => {
            records.events.push(NewEvent {
                channel: Channel::Email,
                ..event(&l, "message", true, json!({"body": body}))
            });
            if let Some(to) = email
                && let Some(mut mail) = notify(&state, &l, None, &body).await?
            {
                mail.to = to;
                mail.automatic = false;
                records.jobs.push(mail.send_job(now));
                records.emails.push(mail);
            }
        }
        _ => records.events.push(event(&l, "message", true, json!({"body": body}))),
    }
    state.store.record(&records).await?;
    Ok(Redirect::to(&format!("/agents/demandes/{}#historique", l.request.id)).into_response())
}

pub(crate) fn random_u64() -> u64 {
    use password_hash::rand_core::{OsRng, RngCore};
    OsRng.next_u64()
}

/// The letter as the document kept on the request (the PDF is laid out from it on demand,
/// always identical).
fn letter_document(
    l: &Loaded,
    body: &str,
    code: &str,
    now: OffsetDateTime,
) -> guichet_store::NewDocument {
    let text = format!("Référence : {}\nCode courrier : {code}\n\n{body}", l.request.reference);
    let html = format!(
        "<p>Référence : {}<br>Code courrier : {code}</p>{}",
        crate::pages::escape(&l.request.reference),
        body.split("\n\n")
            .map(|p| format!("<p>{}</p>", crate::pages::escape(p).replace('\n', "<br>")))
            .collect::<String>()
    );
    guichet_store::NewDocument {
        id: guichet_domain::DocumentId::new(),
        kind: "letter".to_owned(),
        title: format!("Courrier du {} – {}", date_fr(paris(now).date()), l.request.reference),
        text,
        html,
        created_at: now,
        code: Some(code.to_owned()),
    }
}

/// `GET /agents/demandes/{id}/courriers/{doc}.pdf`: a reply letter on the tenant's letterhead.
pub(crate) async fn letter_pdf(
    State(state): State<AppState>,
    visitor: AgentVisitor,
    Path((id, doc)): Path<(String, String)>,
) -> Result<Response, AppError> {
    let l = load(&state, &visitor, &id).await?;
    let doc_id = doc.trim_end_matches(".pdf");
    let document = state
        .store
        .list_request_documents(l.request.id)
        .await?
        .into_iter()
        .find(|d| d.document.id.to_string() == doc_id && d.document.kind == "letter")
        .ok_or(AppError::NotFound)?;
    let code = document.document.code.clone().unwrap_or_default();
    // The body is what follows the two heading lines of the stored text.
    let body = document.document.text.splitn(4, '\n').nth(3).unwrap_or("").to_owned();
    let s = |k: &str| l.request.submitter.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let address = l.request.submitter.get("adresse");
    let a =
        |k: &str| address.and_then(|x| x.get(k)).and_then(Value::as_str).unwrap_or("").to_owned();
    let mut recipient = vec![format!("{} {}", s("prenom"), s("nom")).trim().to_owned()];
    if !a("voie").is_empty() {
        recipient.push(a("voie"));
    }
    let town = format!("{} {}", a("code_postal"), a("commune")).trim().to_owned();
    if !town.is_empty() {
        recipient.push(town);
    }
    let c = &l.tenant.contact;
    let letter = guichet_channels::letter::Letter {
        sender: vec![
            l.tenant.name.clone(),
            c.service_name.clone(),
            c.street.clone(),
            format!("{} {}", c.postcode, c.city),
            format!("Tél. {} – {}", c.phone.display_national(), c.email),
        ],
        recipient,
        place_and_date: format!(
            "{}, le {}",
            c.city,
            date_fr(paris(document.document.created_at).date())
        ),
        reference: l.request.reference.clone(),
        code,
        subject: format!("Votre demande « {} »", l.service.title),
        body,
        signature: c.service_name.clone(),
    };
    let bytes = guichet_channels::letter::render_pdf(&letter);
    Ok((
        [
            (header::CONTENT_TYPE, "application/pdf".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("inline; filename=\"courrier-{}.pdf\"", l.request.reference),
            ),
            (header::CACHE_CONTROL, "private, no-store".to_owned()),
        ],
        bytes,
    )
        .into_response())
}

/// `POST /agents/demandes/{id}/assigner`
pub(crate) async fn assign(
    State(state): State<AppState>,
    visitor: AgentVisitor,
    Path(id): Path<String>,
    form: FormFields,
) -> Result<Response, AppError> {
    visitor.0.check_csrf(form.get("_csrf"))?;
    let l = load(&state, &visitor, &id).await?;
    assign_many(&state, &l.agent, &[l.request.id], form.get("agent")).await?;
    Ok(Redirect::to(&format!("/agents/demandes/{}", l.request.id)).into_response())
}

async fn assign_many(
    state: &AppState,
    agent: &Agent,
    ids: &[RequestId],
    to: &str,
) -> Result<u64, AppError> {
    let assignee: Option<AgentId> = match to {
        "" => None,
        "moi" => Some(agent.id),
        other => Some(
            other
                .parse()
                .map_err(|_| AppError::BadRequest("« Attribuer à » : agent inconnu.".into()))?,
        ),
    };
    let name = match assignee {
        Some(a) => Some(
            state
                .store
                .get_agent(a)
                .await
                .map_err(|_| AppError::BadRequest("« Attribuer à » : agent inconnu.".into()))?
                .display_name,
        ),
        None => None,
    };
    let mut records = SubmissionRecords::default();
    for id in ids {
        let r = state.store.get_agent_request(agent.id, *id).await?.ok_or(AppError::NotFound)?;
        records.events.push(NewEvent {
            id: EventId::new(),
            tenant_id: r.tenant_id,
            request_id: Some(r.id),
            at: OffsetDateTime::now_utc(),
            actor_kind: ActorKind::Agent,
            actor_id: Some(agent.id.as_uuid()),
            channel: Channel::Web,
            kind: "assigned".into(),
            citizen_visible: false,
            data: json!({"assignee": assignee, "name": name}),
        });
    }
    match state.store.assign(agent.id, ids, assignee, &records).await {
        Ok(n) => Ok(n),
        Err(StoreError::NotFound) => Err(AppError::BadRequest("« Attribuer à » : cet agent ne travaille pas pour la collectivité de toutes les demandes choisies ; rien n'a été modifié.".into())),
        Err(e) => Err(e.into()),
    }
}

/// `POST /agents/actions`: bulk assignment or transition on the selected requests. All or
/// nothing: if one request of the selection cannot take the action, none is changed.
pub(crate) async fn bulk(
    State(state): State<AppState>,
    visitor: AgentVisitor,
    form: FormFields,
) -> Result<Response, AppError> {
    visitor.0.check_csrf(form.get("_csrf"))?;
    let agent = require_agent(&state, &visitor).await?;
    let ids: Vec<RequestId> = form
        .0
        .get("ids")
        .map(|v| v.iter().filter_map(|s| s.parse().ok()).collect())
        .unwrap_or_default();
    if ids.is_empty() {
        return Err(AppError::BadRequest("Cochez au moins une demande.".into()));
    }
    if ids.len() > 500 {
        return Err(AppError::BadRequest("500 demandes au plus à la fois.".into()));
    }
    let back = format!("/agents/?{}", form.get("retour"));
    match form.get("operation") {
        "attribuer" => {
            assign_many(&state, &agent, &ids, form.get("agent")).await?;
        }
        "statut" => {
            let key = form.get("transition");
            let message = form.get("message");
            // Check everything first, then apply.
            let mut plan = Vec::new();
            for id in &ids {
                let r = state
                    .store
                    .get_agent_request(agent.id, *id)
                    .await?
                    .ok_or(AppError::NotFound)?;
                let service = state.store.get_service(r.service_id).await?;
                let role = agent.role_in(r.tenant_id).ok_or(AppError::NotFound)?;
                let workflow = service.workflow();
                let t = workflow.check(key, &r.status, role, message).map_err(|e| {
                    AppError::BadRequest(format!(
                        "{} : {e} ; aucune demande n'a été modifiée.",
                        r.reference
                    ))
                })?;
                if t.incomplete {
                    return Err(AppError::BadRequest("La demande de compléments se fait dossier par dossier (la liste des pièces manquantes lui est propre).".into()));
                }
                plan.push((r, service, role));
            }
            for (request, service, role) in plan {
                let tenant = crate::cache::tenant_by_id(&state, request.tenant_id).await?;
                let l = Loaded {
                    agent: agent.clone(),
                    request,
                    service: Arc::new(service),
                    tenant,
                    role,
                };
                let workflow = l.service.workflow();
                let Ok(t) = workflow.check(key, &l.request.status, role, message) else { continue };
                let citizen_label =
                    workflow.status(&t.to).map_or(t.to.clone(), |s| s.citizen_label.clone());
                let mut records = SubmissionRecords {
                    events: vec![event(
                        &l,
                        "status_changed",
                        true,
                        json!({"from": l.request.status, "to": t.to, "citizen_label": citizen_label, "body": message, "transition": t.key}),
                    )],
                    ..Default::default()
                };
                if t.notify
                    && let Some(email) = notify(&state, &l, Some(&citizen_label), message).await?
                {
                    records.jobs.push(email.send_job(OffsetDateTime::now_utc()));
                    records.emails.push(email);
                }
                let change = StatusChange {
                    request_id: l.request.id,
                    expected_status: l.request.status.clone(),
                    status: t.to.clone(),
                    phase: workflow.phase(&t.to).as_str().to_owned(),
                    deemed_decision_on: l.request.deemed_decision_on,
                };
                state.store.change_status(&change, &records).await?;
            }
        }
        _ => return Err(AppError::BadRequest("Choisissez une action.".into())),
    }
    Ok(Redirect::to(&back).into_response())
}

/// `GET /agents/fichiers/{id}`: a file of a request of the agent's tenants.
pub(crate) async fn file(
    State(state): State<AppState>,
    visitor: AgentVisitor,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let agent = require_agent(&state, &visitor).await?;
    let id: FileId = id.parse().map_err(|_| AppError::NotFound)?;
    if !state.store.agent_can_read_file(agent.id, id).await? {
        return Err(AppError::NotFound);
    }
    let record = state.store.get_file(id).await?;
    let bytes = state.files.get(&record.sha256).await.map_err(|e| AppError::Internal(e.into()))?;
    let safe: String = record
        .original_name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || ".-_ ".contains(*c))
        .collect();
    // Images and PDF open in the browser for preview; the strict CSP of the response and
    // nosniff keep them inert. Anything else downloads.
    let inline =
        matches!(record.content_type.as_str(), "application/pdf" | "image/jpeg" | "image/png");
    let disposition = format!(
        "{}; filename=\"{}\"",
        if inline { "inline" } else { "attachment" },
        if safe.is_empty() { "fichier" } else { &safe }
    );
    Ok((
        [
            (header::CONTENT_TYPE, record.content_type.clone()),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CACHE_CONTROL, "private, no-store".to_owned()),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; img-src 'self'; object-src 'self'; sandbox".to_owned(),
            ),
        ],
        bytes,
    )
        .into_response())
}

/// `GET /agents/demandes/{id}/historique.csv`: the request's full history.
pub(crate) async fn history_csv(
    State(state): State<AppState>,
    visitor: AgentVisitor,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let l = load(&state, &visitor, &id).await?;
    let workflow = l.service.workflow();
    let mut out = String::from(
        "\u{feff}Date;Événement;Auteur;Canal;Visible par l'usager;Détail;Empreinte\r\n",
    );
    for e in state.store.list_request_history(l.request.id).await? {
        let who = match e.event.actor_kind {
            ActorKind::Citizen => "Usager".to_owned(),
            ActorKind::System => "Guichet".to_owned(),
            ActorKind::Agent => e.event.actor_id.map(|a| a.to_string()).unwrap_or_default(),
        };
        let fields = [
            datetime_fr(e.event.at),
            describe(&e, &workflow),
            who,
            e.event.channel.label().to_owned(),
            if e.event.citizen_visible { "oui" } else { "non" }.to_owned(),
            e.event.data.to_string(),
            e.hash.clone(),
        ];
        out.push_str(&fields.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(";"));
        out.push_str("\r\n");
    }
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"historique-{}.csv\"", l.request.reference),
            ),
        ],
        out,
    )
        .into_response())
}
