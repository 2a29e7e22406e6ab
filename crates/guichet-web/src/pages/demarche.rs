//! Filling a service's form: a draft per citizen and service, one page at a time, every step
//! an ordinary form POST (no JavaScript needed), the server validating each page; then a
//! summary, and the submission with its legal acknowledgement.

use std::collections::BTreeMap;
use std::sync::Arc;

use askama::Template;
use axum::Extension;
use axum::extract::multipart::MultipartError;
use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use guichet_domain::form::{
    Answers, Field, FieldError, FieldKind, FileKind, FileRef, FormDefinition, RawInput,
};
use guichet_domain::request::{ActorKind, Channel, status};
use guichet_domain::{CitizenId, DraftId, EventId, FileId, RequestId, ServiceId, TenantId};
use guichet_store::{
    Citizen, Draft, FileRecord, NewEvent, NewRequest, Service, SubmissionRecords, Tenant,
};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::ack::{self, Ack, AckKind};
use crate::forms::FormFields;
use crate::host::DomainTenant;
use crate::pages::account::require_citizen;
use crate::pages::catalogue::find_offered;
use crate::pages::tenant::load_tenant;
use crate::pages::{Layout, render, tenant_base};
use crate::session::Visitor;
use crate::{AppError, AppState, cache};

/// Largest request body of a form page (several files).
pub(crate) const MAX_BODY: usize = 64 * 1024 * 1024;

// ---------------------------------------------------------------- reading bodies with files

/// What a form page POST carried.
pub(crate) struct Posted {
    pub raw: RawInput,
    pub files: BTreeMap<String, Vec<FileRef>>,
    pub file_errors: Vec<FieldError>,
}

impl Posted {
    pub fn get(&self, name: &str) -> &str {
        self.raw.get(name).and_then(|v| v.first()).map_or("", |s| s.trim())
    }
}

fn file_name(raw: Option<&str>) -> String {
    let name = raw.unwrap_or("fichier").rsplit(['/', '\\']).next().unwrap_or("fichier");
    let clean: String = name.chars().filter(|c| !c.is_control()).take(150).collect();
    if clean.trim().is_empty() { "fichier".to_owned() } else { clean }
}

/// The answer to a multipart body that stops halfway or breaks its format: most often a
/// connection cut during the upload.
fn unreadable_body() -> AppError {
    AppError::BadRequest(
        "Le formulaire envoyé est arrivé incomplet ou illisible (la connexion a peut-être été \
         interrompue pendant l'envoi). Rien n'a été enregistré de cet envoi ; vos réponses \
         précédentes sont conservées : revenez en arrière et envoyez-le à nouveau."
            .to_owned(),
    )
}

/// A multipart error as the citizen or agent should read it: too large (413) is theirs to
/// fix; anything else is a body that did not arrive whole (400), logged with its cause so that
/// an operator can tell a flaky network from a broken client.
fn multipart_error(e: MultipartError) -> AppError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return AppError::TooLarge(format!(
            "L'envoi dépasse la taille maximale autorisée ({} Mo en tout). Vos réponses \
             précédentes sont conservées : revenez en arrière et joignez des fichiers plus légers.",
            MAX_BODY / 1024 / 1024
        ));
    }
    tracing::warn!(error = %e.body_text(), status = e.status().as_u16(), "multipart body unreadable");
    unreadable_body()
}

/// Reads a URL-encoded or multipart body and checks its `_csrf` against `visitor`'s session.
/// Files are checked against their field (type by content, size) and stored; refused files
/// become field errors, never a lost page. In a multipart body the token is checked before the
/// first file is stored (forms put `_csrf` first): a forged post stores nothing.
pub(crate) async fn read_posted(
    state: &AppState,
    visitor: &Visitor,
    request: Request,
    fields: &[&Field],
    citizen: Option<CitizenId>,
) -> Result<Posted, AppError> {
    let multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    if !multipart {
        let FormFields(raw) = FormFields::from_request(request, state).await?;
        let posted = Posted { raw, files: BTreeMap::new(), file_errors: Vec::new() };
        visitor.check_csrf(posted.get("_csrf"))?;
        return Ok(posted);
    }
    let mut mp = Multipart::from_request(request, state).await.map_err(|e| {
        tracing::warn!(error = %e.body_text(), "multipart body refused");
        unreadable_body()
    })?;
    let mut posted =
        Posted { raw: RawInput::new(), files: BTreeMap::new(), file_errors: Vec::new() };
    while let Some(mut part) = mp.next_field().await.map_err(multipart_error)? {
        let name = part.name().unwrap_or("").to_owned();
        let Some(field) =
            part.file_name().is_some().then(|| fields.iter().find(|f| f.key == name)).flatten()
        else {
            if part.file_name().is_some() {
                // A file for a field that is not on this page: drain and ignore it.
                while part.chunk().await.map_err(multipart_error)?.is_some() {}
                continue;
            }
            let text = part.text().await.map_err(multipart_error)?;
            posted.raw.entry(name).or_default().push(text);
            continue;
        };
        let FieldKind::File { accept, max_size_mb, .. } = &field.kind else {
            while part.chunk().await.map_err(multipart_error)?.is_some() {}
            continue;
        };
        visitor.check_csrf(posted.get("_csrf"))?;
        let original = file_name(part.file_name());
        let max = usize::try_from(*max_size_mb).unwrap_or(10) * 1024 * 1024;
        let mut bytes = Vec::new();
        let mut oversized = false;
        while let Some(chunk) = part.chunk().await.map_err(multipart_error)? {
            if bytes.len() + chunk.len() > max {
                oversized = true;
                bytes.clear();
                continue;
            }
            if !oversized {
                bytes.extend_from_slice(&chunk);
            }
        }
        if oversized {
            posted.file_errors.push(FieldError {
                key: field.key.clone(),
                message: format!("« {} » : le fichier « {original} » dépasse la taille maximale de {max_size_mb} Mo.", field.label),
            });
            continue;
        }
        if bytes.is_empty() {
            continue; // no file chosen
        }
        let accepted = FileKind::sniff(&bytes).filter(|(kind, _)| accept.contains(kind));
        let Some((_, mime)) = accepted else {
            let labels: Vec<&str> = accept.iter().map(|k| k.label()).collect();
            posted.file_errors.push(FieldError {
                key: field.key.clone(),
                message: format!(
                    "« {} » : le fichier « {original} » n'est pas d'un format accepté ({}).",
                    field.label,
                    labels.join(" ou ")
                ),
            });
            continue;
        };
        let sha = state.files.put(&bytes).await.map_err(|e| AppError::Internal(e.into()))?;
        let record = FileRecord {
            id: FileId::new(),
            sha256: sha,
            size: i64::try_from(bytes.len()).unwrap_or(i64::MAX),
            content_type: mime.to_owned(),
            original_name: original.clone(),
            citizen_id: citizen,
            created_at: OffsetDateTime::now_utc(),
        };
        state.store.add_file(&record).await?;
        posted.files.entry(field.key.clone()).or_default().push(FileRef {
            id: record.id.to_string(),
            name: original,
            size: bytes.len() as u64,
            content_type: mime.to_owned(),
        });
    }
    visitor.check_csrf(posted.get("_csrf"))?;
    Ok(posted)
}

// ---------------------------------------------------------------- field views

pub(crate) struct OptionView {
    pub value: String,
    pub label: String,
    pub checked: bool,
}

/// A field ready for the template.
pub(crate) struct FieldView {
    pub key: String,
    pub label: String,
    pub kind: &'static str,
    pub input_type: &'static str,
    pub required: bool,
    pub help: Option<String>,
    pub text: String,
    pub value: String,
    pub options: Vec<OptionView>,
    pub street: String,
    pub postcode: String,
    pub city: String,
    pub files: Vec<FileRef>,
    pub accept: String,
    pub multiple: bool,
    pub max_size_mb: u32,
    pub error: Option<String>,
    pub condition: Option<String>,
}

impl FieldView {
    /// `aria-describedby` ids.
    pub fn described_by(&self) -> String {
        let mut ids = Vec::new();
        if self.help.is_some() {
            ids.push(format!("{}-hint", self.key));
        }
        if self.condition.is_some() {
            ids.push(format!("{}-condition", self.key));
        }
        if self.error.is_some() {
            ids.push(format!("{}-error", self.key));
        }
        ids.join(" ")
    }
}

fn condition_text(form: &FormDefinition, field: &Field) -> Option<String> {
    let c = field.condition.as_ref()?;
    let source = form.field(&c.field)?;
    let labels: Vec<String> = c
        .one_of
        .iter()
        .map(|v| match &source.kind {
            FieldKind::Choice { options } | FieldKind::MultipleChoice { options } => {
                options.iter().find(|o| &o.value == v).map_or(v.clone(), |o| o.label.clone())
            }
            FieldKind::YesNo => if v == "oui" { "Oui" } else { "Non" }.to_owned(),
            _ => v.clone(),
        })
        .collect();
    Some(format!(
        "À remplir seulement si vous avez répondu « {} » à la question « {} ».",
        labels.join(" » ou « "),
        source.label
    ))
}

pub(crate) fn views(
    form: &FormDefinition,
    page: usize,
    answers: &Answers,
    raw: Option<&RawInput>,
    errors: &[FieldError],
) -> Vec<FieldView> {
    let Some(p) = form.pages.get(page) else { return Vec::new() };
    let raw_first = |k: &str| raw.and_then(|r| r.get(k)).and_then(|v| v.first()).cloned();
    p.fields
        .iter()
        .map(|f| {
            let stored = answers.get(&f.key);
            let stored_text = match stored {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) => {
                    let x = n.as_f64().unwrap_or(0.0);
                    if x.fract() == 0.0 { format!("{x:.0}") } else { x.to_string() }
                }
                _ => String::new(),
            };
            let value = raw_first(&f.key).unwrap_or(stored_text);
            let (kind, input_type) = match &f.kind {
                FieldKind::Text { .. } => ("input", "text"),
                FieldKind::LongText { .. } => ("textarea", ""),
                FieldKind::Email => ("input", "email"),
                FieldKind::Phone => ("input", "tel"),
                FieldKind::Number { .. } => ("input", "text"),
                FieldKind::Date => ("input", "date"),
                FieldKind::Choice { .. } => ("radio", ""),
                FieldKind::MultipleChoice { .. } => ("checkbox", ""),
                FieldKind::YesNo => ("radio", ""),
                FieldKind::Address => ("address", ""),
                FieldKind::File { .. } => ("file", ""),
                FieldKind::Title => ("title", ""),
                FieldKind::Comment { .. } => ("comment", ""),
            };
            let chosen: Vec<String> = match raw.and_then(|r| r.get(&f.key)) {
                Some(v) => v.clone(),
                None => match stored {
                    Some(Value::String(s)) => vec![s.clone()],
                    Some(Value::Array(a)) => {
                        a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect()
                    }
                    _ => Vec::new(),
                },
            };
            let options = match &f.kind {
                FieldKind::Choice { options } | FieldKind::MultipleChoice { options } => options
                    .iter()
                    .map(|o| OptionView {
                        checked: chosen.contains(&o.value),
                        value: o.value.clone(),
                        label: o.label.clone(),
                    })
                    .collect(),
                FieldKind::YesNo => [("oui", "Oui"), ("non", "Non")]
                    .into_iter()
                    .map(|(v, l)| OptionView {
                        checked: chosen.iter().any(|c| c == v),
                        value: v.into(),
                        label: l.into(),
                    })
                    .collect(),
                _ => Vec::new(),
            };
            let part = |sub: &str| {
                raw_first(&format!("{}.{sub}", f.key))
                    .or_else(|| {
                        stored.and_then(|s| s.get(sub)).and_then(Value::as_str).map(str::to_owned)
                    })
                    .unwrap_or_default()
            };
            // Only an address has parts (three lookups and keys built for every other field
            // were a tenth of a step page's work).
            let (street, postcode, city) = if matches!(f.kind, FieldKind::Address) {
                (part("street"), part("postcode"), part("city"))
            } else {
                Default::default()
            };
            let files: Vec<FileRef> = stored
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|x| serde_json::from_value(x.clone()).ok()).collect())
                .unwrap_or_default();
            let (accept, multiple, max_size_mb) = match &f.kind {
                FieldKind::File { accept, multiple, max_size_mb } => (
                    accept
                        .iter()
                        .map(|k| match k {
                            FileKind::Pdf => "application/pdf,.pdf",
                            FileKind::Image => "image/jpeg,image/png,.jpg,.jpeg,.png",
                        })
                        .collect::<Vec<_>>()
                        .join(","),
                    *multiple,
                    *max_size_mb,
                ),
                _ => (String::new(), false, 0),
            };
            FieldView {
                key: f.key.clone(),
                label: f.label.clone(),
                kind,
                input_type,
                required: f.required,
                help: f.help.clone(),
                text: match &f.kind {
                    FieldKind::Comment { text } => text.clone(),
                    _ => String::new(),
                },
                value,
                options,
                street,
                postcode,
                city,
                files,
                accept,
                multiple,
                max_size_mb,
                error: errors.iter().find(|e| e.key == f.key).map(|e| e.message.clone()),
                condition: condition_text(form, f),
            }
        })
        .collect()
}

// ---------------------------------------------------------------- loading

struct Ctx {
    tenant: Arc<Tenant>,
    base: String,
    citizen: Arc<Citizen>,
    draft: Draft,
    service: Arc<Service>,
    /// The draft is not saved yet: the form was opened from the service page, and the first
    /// POST of its first page creates it, under the id that page carried.
    fresh: bool,
}

async fn load(
    state: &AppState,
    visitor: &Visitor,
    slug: &str,
    draft: &str,
    domain: Option<&DomainTenant>,
    back: &str,
) -> Result<Ctx, AppError> {
    let tenant = load_tenant(state, slug).await?;
    let base = tenant_base(&tenant, domain);
    let citizen = require_citizen(state, visitor, back).await?;
    let id: DraftId = draft.parse().map_err(|_| AppError::NotFound)?;
    // Another citizen's draft, or one started on another portal, does not exist here.
    let draft = state.store.get_draft(id, citizen.id).await?.ok_or(AppError::NotFound)?;
    if draft.portal_tenant_id != tenant.id {
        return Err(AppError::NotFound);
    }
    let service = crate::cache::service(state, draft.service_id).await?;
    Ok(Ctx { tenant, base, citizen, draft, service, fresh: false })
}

/// The context of a form opened from the service page: the service, offered and open, and a
/// draft that exists only once its first page is posted.
async fn load_fresh(
    state: &AppState,
    visitor: &Visitor,
    slug: &str,
    service_slug: &str,
    domain: Option<&DomainTenant>,
) -> Result<Ctx, AppError> {
    let tenant = load_tenant(state, slug).await?;
    let base = tenant_base(&tenant, domain);
    let back = format!("/{}/demarches/{service_slug}/formulaire", tenant.slug);
    let citizen = require_citizen(state, visitor, &back).await?;
    let (service, draft) = new_draft(state, &tenant, &citizen, service_slug).await?;
    Ok(Ctx { tenant, base, citizen, draft, service, fresh: true })
}

/// An empty draft of a service `tenant` offers and has open, on its first page (not saved).
async fn new_draft(
    state: &AppState,
    tenant: &Tenant,
    citizen: &Citizen,
    service_slug: &str,
) -> Result<(Arc<Service>, Draft), AppError> {
    let service = find_offered(state, tenant, service_slug).await?;
    if !service.enabled {
        return Err(AppError::NotFound);
    }
    let answers = Answers::new();
    let first = first_page(&service.form, &answers)?;
    let draft = Draft {
        id: DraftId::from_uuid(crate::session::uuid_v7()),
        citizen_id: citizen.id,
        service_id: service.id,
        portal_tenant_id: tenant.id,
        answers,
        page: i32::try_from(first).unwrap_or(0),
        updated_at: OffsetDateTime::now_utc(),
    };
    Ok((service, draft))
}

/// A fresh nonce for the `_brouillon` field of a form opened from the service page: a
/// version 7 UUID, whose millisecond time the draft's id keeps.
fn draft_nonce() -> String {
    crate::session::uuid_v7().simple().to_string()
}

/// The id of the draft a form opened from the service page is saved under: derived from the
/// nonce the page carried and from who posts it, where, for which service. Posting the same
/// page twice (a double click, the back button) names the same draft, or the request it
/// became; but a citizen cannot name an id of their choosing (another citizen's draft, whose
/// later submission would then collide with theirs), nor carry a page over to another service
/// or portal.
fn fresh_draft_id(
    citizen: CitizenId,
    portal: TenantId,
    service: ServiceId,
    nonce: &str,
) -> Option<DraftId> {
    if nonce.len() != 32 || !nonce.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let seed = format!("draft\n{citizen}\n{portal}\n{service}\n{nonce}");
    let digest = <sha2::Sha256 as sha2::Digest>::digest(seed.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    // A version 7 UUID as the other ids: the nonce's millisecond time first (the indexes on
    // drafts and on requests' draft ids stay append-friendly), then the digest's bits, which a
    // citizen cannot steer towards another's id.
    let nonce_time = u64::from_str_radix(&nonce[..12], 16).ok()?;
    bytes[..6].copy_from_slice(&nonce_time.to_be_bytes()[2..]);
    bytes[6] = (bytes[6] & 0x0f) | 0x70;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    Some(DraftId::from_uuid(uuid::Uuid::from_bytes(bytes)))
}

/// The first page shown for these answers; a form without any has nothing to fill.
fn first_page(form: &FormDefinition, answers: &Answers) -> Result<usize, AppError> {
    form.visible_pages(answers).first().copied().ok_or(AppError::NotFound)
}

fn step_href(base: &str, draft: DraftId, page: usize) -> String {
    format!("{base}/brouillons/{draft}/etape/{}", page + 1)
}

fn parse_step(step: &str, form: &FormDefinition, answers: &Answers) -> Result<usize, AppError> {
    let n: usize = step.parse().map_err(|_| AppError::NotFound)?;
    let index = n.checked_sub(1).ok_or(AppError::NotFound)?;
    if form.visible_pages(answers).contains(&index) { Ok(index) } else { Err(AppError::NotFound) }
}

// ---------------------------------------------------------------- handlers

/// `POST /{tenant}/demarches/{service}/commencer`: starts an empty draft and opens its first
/// page. The service page now opens the form with a GET (`fresh_form`), which writes nothing;
/// this stays for pages and bookmarks made before, and for clients that want the draft first.
pub(crate) async fn start(
    State(state): State<AppState>,
    visitor: Visitor,
    Path((slug, service_slug)): Path<(String, String)>,
    domain: Option<Extension<DomainTenant>>,
    form: FormFields,
) -> Result<Response, AppError> {
    let tenant = load_tenant(&state, &slug).await?;
    let base = tenant_base(&tenant, domain.as_deref());
    let citizen =
        require_citizen(&state, &visitor, &format!("/{}/demarches/{service_slug}", tenant.slug))
            .await?;
    visitor.check_csrf(form.get("_csrf"))?;
    let (_, draft) = new_draft(&state, &tenant, &citizen, &service_slug).await?;
    state.store.save_draft(&draft).await?;
    let first = usize::try_from(draft.page).unwrap_or(0);
    Ok(Redirect::to(&step_href(&base, draft.id, first)).into_response())
}

#[derive(Template)]
#[template(path = "demarche/step.html")]
struct StepPage {
    layout: Layout,
    base: String,
    csrf: String,
    service: Arc<Service>,
    /// Where the page is posted: the draft's step, or the service's form while no draft exists.
    action: String,
    /// On a form opened from the service page, the nonce its draft's id is derived from.
    token: Option<String>,
    /// The page's button sends the request (the form has no summary page, and this is its last
    /// page); the citizen is told where the acknowledgement goes.
    sends: bool,
    email: String,
    position: usize,
    total: usize,
    page_title: String,
    fields: Vec<FieldView>,
    errors: Vec<FieldError>,
    multipart: bool,
    has_previous: bool,
    file_base: &'static str,
}

async fn render_step(
    state: &AppState,
    visitor: &Visitor,
    ctx: &Ctx,
    page: usize,
    raw: Option<&RawInput>,
    errors: Vec<FieldError>,
) -> Result<Response, AppError> {
    let csrf = visitor.csrf(state).await?;
    let sends = sends_directly(ctx, page);
    // A form opened from the service page shows its first page empty, the same for every
    // citizen but for three values: kept rendered, with those spliced in (`cache::Spliced`).
    let key = (ctx.fresh && raw.is_none() && errors.is_empty()).then(|| {
        format!("form\n{}\n{}\n{}\n{page}\n{sends}", ctx.tenant.id, ctx.base, ctx.service.id)
    });
    let email = ctx.citizen.email.to_string();
    if let Some(key) = &key
        && let Some(page) = crate::cache::spliced(state, key, &ctx.service)
    {
        return Ok(Html(page.fill(&[&csrf, &draft_nonce(), &email])).into_response());
    }
    let form = &ctx.service.form;
    let visible = form.visible_pages(&ctx.draft.answers);
    let position = visible.iter().position(|p| *p == page).unwrap_or(0) + 1;
    let fields = views(form, page, &ctx.draft.answers, raw, &errors);
    let multipart = fields.iter().any(|f| f.kind == "file");
    let title = form.pages.get(page).map_or_else(String::new, |p| p.title.clone());
    let layout_title = if errors.is_empty() {
        format!("{} – étape {position} sur {}", ctx.service.title, visible.len())
    } else {
        format!("Erreur – {} – étape {position} sur {}", ctx.service.title, visible.len())
    };
    let action = if ctx.fresh {
        format!("{}/demarches/{}/formulaire", ctx.base, ctx.service.slug)
    } else {
        step_href(&ctx.base, ctx.draft.id, page)
    };
    let mut page_view = StepPage {
        layout: Layout::tenant(layout_title, &ctx.tenant, &ctx.base),
        base: ctx.base.clone(),
        token: ctx.fresh.then(draft_nonce),
        csrf,
        service: Arc::clone(&ctx.service),
        action,
        sends,
        email,
        position,
        total: visible.len(),
        page_title: title,
        fields,
        multipart,
        has_previous: form.previous_page(page, &ctx.draft.answers).is_some(),
        file_base: "/compte/fichiers",
        errors,
    };
    let Some(key) = key else {
        return render(&page_view);
    };
    let values = [
        std::mem::replace(&mut page_view.csrf, SPLICE[0].to_string()),
        page_view.token.replace(SPLICE[1].to_string()).unwrap_or_default(),
        std::mem::replace(&mut page_view.email, SPLICE[2].to_string()),
    ];
    let rendered = page_view.render()?;
    let Some(spliced) =
        crate::cache::Spliced::split(&rendered, &SPLICE, &[1, 1, usize::from(sends)])
    else {
        // The form's own text holds a marker: rendered for this visitor, as other pages are.
        page_view.csrf = values[0].clone();
        page_view.token = Some(values[1].clone());
        page_view.email = values[2].clone();
        return render(&page_view);
    };
    let spliced = Arc::new(spliced);
    crate::cache::keep_spliced(state, key, &ctx.service, Arc::clone(&spliced));
    Ok(Html(spliced.fill(&[&values[0], &values[1], &values[2]])).into_response())
}

/// Where a kept form page takes its visitor's CSRF token, nonce and address (private use
/// characters: see `cache::Spliced`).
const SPLICE: [char; 3] = ['\u{E000}', '\u{E001}', '\u{E002}'];

/// Whether this page's button sends the request: the form has no summary page, no page follows
/// this one, and the citizen's address is confirmed (otherwise the summary says why the request
/// cannot be sent yet).
fn sends_directly(ctx: &Ctx, page: usize) -> bool {
    let form = &ctx.service.form;
    // A later page that this page's own answers could show: the button cannot promise to send.
    let here: Vec<&str> = form
        .pages
        .get(page)
        .map_or_else(Vec::new, |p| p.fields.iter().map(|f| f.key.as_str()).collect());
    let may_follow = form
        .pages
        .iter()
        .skip(page + 1)
        .any(|p| p.condition.as_ref().is_none_or(|c| here.contains(&c.field.as_str())));
    !form.confirmation
        && form.next_page(page, &ctx.draft.answers).is_none()
        && !may_follow
        && ctx.citizen.email_verified_at.is_some()
}

/// `GET /{tenant}/demarches/{service}/formulaire`: the form's first page, opened from the
/// service page. Nothing is written until the citizen posts it: opening a form and leaving
/// leaves no empty draft behind.
pub(crate) async fn fresh_form(
    State(state): State<AppState>,
    visitor: Visitor,
    Path((slug, service_slug)): Path<(String, String)>,
    domain: Option<Extension<DomainTenant>>,
) -> Result<Response, AppError> {
    let ctx = load_fresh(&state, &visitor, &slug, &service_slug, domain.as_deref()).await?;
    let page = usize::try_from(ctx.draft.page).unwrap_or(0);
    render_step(&state, &visitor, &ctx, page, None, Vec::new()).await
}

/// `POST /{tenant}/demarches/{service}/formulaire`: the first page of a form opened from the
/// service page. The draft is created under the id the page carried, so that posting the page
/// twice (a double click, the back button) finds the same draft, or the request it became.
pub(crate) async fn fresh_submit(
    State(state): State<AppState>,
    visitor: Visitor,
    Path((slug, service_slug)): Path<(String, String)>,
    domain: Option<Extension<DomainTenant>>,
    request: Request,
) -> Result<Response, AppError> {
    let mut ctx = load_fresh(&state, &visitor, &slug, &service_slug, domain.as_deref()).await?;
    let page = usize::try_from(ctx.draft.page).unwrap_or(0);
    // The service is shared (`Arc`): its fields outlive the context handed on below.
    let service = Arc::clone(&ctx.service);
    let fields: Vec<&Field> = service.form.pages[page].fields.iter().collect();
    let posted = read_posted(&state, &visitor, request, &fields, Some(ctx.citizen.id)).await?;
    // Without a valid nonce (a client that drops the field), the page still counts: its draft
    // gets a new id, and only a second post of the same page would make a second draft.
    let nonce = posted.get("_brouillon");
    let Some(id) = fresh_draft_id(ctx.citizen.id, ctx.tenant.id, ctx.service.id, nonce) else {
        return apply_posted(&state, &visitor, ctx, page, &fields, posted).await;
    };
    match state.store.get_draft(id, ctx.citizen.id).await? {
        // Posted again after the draft was made: the same draft (the id covers the service and
        // the portal, so it is this form's).
        Some(draft) => {
            ctx.draft = draft;
            ctx.fresh = false;
        }
        // Sent already, and now posted without sending (a page restored by the browser after
        // the request went through a summary): a new draft, or these answers would be saved
        // under a consumed id and never sent. Posted with "envoyer", the same id finds the
        // request made by the first post: a double click makes one request.
        None if posted.get("action") != "envoyer"
            && state.store.find_request_by_draft(id, ctx.citizen.id).await?.is_some() => {}
        None => ctx.draft.id = id,
    }
    apply_posted(&state, &visitor, ctx, page, &fields, posted).await
}

/// `GET /{tenant}/brouillons/{draft}/etape/{n}`
pub(crate) async fn step_form(
    State(state): State<AppState>,
    visitor: Visitor,
    Path((slug, draft, step)): Path<(String, String, String)>,
    domain: Option<Extension<DomainTenant>>,
) -> Result<Response, AppError> {
    let back = format!("/{slug}/brouillons/{draft}/etape/{step}");
    let ctx = load(&state, &visitor, &slug, &draft, domain.as_deref(), &back).await?;
    let page = parse_step(&step, &ctx.service.form, &ctx.draft.answers)?;
    render_step(&state, &visitor, &ctx, page, None, Vec::new()).await
}

/// `POST /{tenant}/brouillons/{draft}/etape/{n}`: validates and saves the page, then goes to
/// the next page, the previous one, the summary, or back to the account ("finish later").
pub(crate) async fn step_submit(
    State(state): State<AppState>,
    visitor: Visitor,
    Path((slug, draft, step)): Path<(String, String, String)>,
    domain: Option<Extension<DomainTenant>>,
    request: Request,
) -> Result<Response, AppError> {
    let back = format!("/{slug}/brouillons/{draft}/etape/{step}");
    let ctx = load(&state, &visitor, &slug, &draft, domain.as_deref(), &back).await?;
    let page = parse_step(&step, &ctx.service.form, &ctx.draft.answers)?;
    // The service is shared (`Arc`): its fields outlive the context handed on below.
    let service = Arc::clone(&ctx.service);
    let fields: Vec<&Field> = service.form.pages[page].fields.iter().collect();
    let posted = read_posted(&state, &visitor, request, &fields, Some(ctx.citizen.id)).await?;
    apply_posted(&state, &visitor, ctx, page, &fields, posted).await
}

/// Validates and saves a posted page, then goes to the next page, the previous one, the
/// summary, back to the account ("finish later"), or sends the request when the form has no
/// summary page.
async fn apply_posted(
    state: &AppState,
    visitor: &Visitor,
    mut ctx: Ctx,
    page: usize,
    fields: &[&Field],
    posted: Posted,
) -> Result<Response, AppError> {
    let action = posted.get("action").to_owned();
    let mut errors =
        ctx.service.form.apply_page(page, &posted.raw, &posted.files, &mut ctx.draft.answers);
    // A refused file and an error on the same field: the file's message says more.
    for fe in posted.file_errors {
        errors.retain(|e| e.key != fe.key);
        errors.push(fe);
    }
    // Order errors as the fields appear.
    errors.sort_by_key(|e| fields.iter().position(|f| f.key == e.key).unwrap_or(usize::MAX));
    // Where the citizen goes next, which is also where the draft resumes.
    let next = match action.as_str() {
        "precedent" => ctx.service.form.previous_page(page, &ctx.draft.answers).unwrap_or(page),
        _ if !errors.is_empty() || action == "enregistrer" => page,
        _ => ctx.service.form.next_page(page, &ctx.draft.answers).unwrap_or(page),
    };
    ctx.draft.page = i32::try_from(next).unwrap_or(0);
    ctx.draft.updated_at = OffsetDateTime::now_utc();
    // Sent from its last page, without a summary: the request is made in one write, and the
    // draft is never saved (the submission would delete it at once).
    if action == "envoyer" && errors.is_empty() && next == page && sends_directly(&ctx, page) {
        let outcome = send(state, &ctx.citizen, &ctx.tenant, ctx.draft.clone()).await;
        return match outcome {
            Ok(Sent::Made(request)) => {
                Ok(Redirect::to(&format!("/compte/demandes/{request}?envoye=1")).into_response())
            }
            // The service changed since the page was shown: the draft keeps the answers.
            Ok(Sent::Incomplete(missing)) => {
                state.store.save_draft(&ctx.draft).await?;
                Ok(Redirect::to(&step_href(&ctx.base, ctx.draft.id, missing)).into_response())
            }
            Err(e) => {
                // Nothing valid is lost: the answers wait in a draft.
                if let Err(saved) = state.store.save_draft(&ctx.draft).await {
                    tracing::warn!(error = %saved, "could not keep the answers of a failed submission");
                }
                Err(e)
            }
        };
    }
    // Valid answers are saved even when others are refused: nothing valid is lost.
    state.store.save_draft(&ctx.draft).await?;
    ctx.fresh = false;

    if action == "precedent" {
        return Ok(Redirect::to(&step_href(&ctx.base, ctx.draft.id, next)).into_response());
    }
    if !errors.is_empty() {
        let response = render_step(state, visitor, &ctx, page, Some(&posted.raw), errors).await?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, response).into_response());
    }
    if action == "enregistrer" {
        return Ok(Redirect::to("/compte/?brouillon=1").into_response());
    }
    if next == page {
        return Ok(Redirect::to(&format!(
            "{}/brouillons/{}/recapitulatif",
            ctx.base, ctx.draft.id
        ))
        .into_response());
    }
    Ok(Redirect::to(&step_href(&ctx.base, ctx.draft.id, next)).into_response())
}

/// A page of the summary: its title, its step number, and (label, answer) rows.
type Section = (String, usize, Vec<(String, String)>);

#[derive(Template)]
#[template(path = "demarche/summary.html")]
struct SummaryPage {
    layout: Layout,
    base: String,
    csrf: String,
    service: Arc<Service>,
    draft: DraftId,
    sections: Vec<Section>,
    verified: bool,
    email: String,
}

/// `GET /{tenant}/brouillons/{draft}/recapitulatif`
pub(crate) async fn summary(
    State(state): State<AppState>,
    visitor: Visitor,
    Path((slug, draft)): Path<(String, String)>,
    domain: Option<Extension<DomainTenant>>,
) -> Result<Response, AppError> {
    let back = format!("/{slug}/brouillons/{draft}/recapitulatif");
    let mut ctx = load(&state, &visitor, &slug, &draft, domain.as_deref(), &back).await?;
    if let Err(page) = ctx.service.form.check_complete(&mut ctx.draft.answers) {
        return Ok(Redirect::to(&step_href(&ctx.base, ctx.draft.id, page)).into_response());
    }
    let form = &ctx.service.form;
    let visible = form.visible_pages(&ctx.draft.answers);
    let sections = form
        .summary(&ctx.draft.answers)
        .into_iter()
        .zip(visible)
        .map(|((title, rows), page)| (title, page + 1, rows))
        .collect();
    render(&SummaryPage {
        layout: Layout::tenant(
            format!("Récapitulatif – {}", ctx.service.title),
            &ctx.tenant,
            &ctx.base,
        ),
        base: ctx.base.clone(),
        csrf: visitor.csrf(&state).await?,
        draft: ctx.draft.id,
        sections,
        verified: ctx.citizen.email_verified_at.is_some(),
        email: ctx.citizen.email.to_string(),
        service: ctx.service,
    })
}

/// `POST /{tenant}/brouillons/{draft}/envoyer`: submits the draft. A second POST of the same
/// draft (double click, replay) finds the request already made and shows it.
pub(crate) async fn submit(
    State(state): State<AppState>,
    visitor: Visitor,
    Path((slug, draft)): Path<(String, String)>,
    domain: Option<Extension<DomainTenant>>,
    form: FormFields,
) -> Result<Response, AppError> {
    let back = format!("/{slug}/brouillons/{draft}/recapitulatif");
    let citizen = require_citizen(&state, &visitor, &back).await?;
    visitor.check_csrf(form.get("_csrf"))?;
    let tenant = load_tenant(&state, &slug).await?;
    let base = tenant_base(&tenant, domain.as_deref());
    let draft_id: DraftId = draft.parse().map_err(|_| AppError::NotFound)?;
    let Some(draft) = state.store.get_draft(draft_id, citizen.id).await? else {
        // Already submitted (the draft is consumed by its submission), or never existed.
        return match state.store.find_request_by_draft(draft_id, citizen.id).await? {
            Some(request) => {
                Ok(Redirect::to(&format!("/compte/demandes/{request}?envoye=1")).into_response())
            }
            None => Err(AppError::NotFound),
        };
    };
    if draft.portal_tenant_id != tenant.id {
        return Err(AppError::NotFound);
    }
    if citizen.email_verified_at.is_none() {
        return Ok(
            Redirect::to(&format!("{base}/brouillons/{draft_id}/recapitulatif")).into_response()
        );
    }
    match send(&state, &citizen, &tenant, draft).await? {
        Sent::Made(request) => {
            Ok(Redirect::to(&format!("/compte/demandes/{request}?envoye=1")).into_response())
        }
        Sent::Incomplete(page) => {
            Ok(Redirect::to(&step_href(&base, draft_id, page)).into_response())
        }
    }
}

/// What sending a draft came to.
enum Sent {
    /// The request, made now or by an earlier send of the same draft.
    Made(RequestId),
    /// The service's form asks for more than the draft holds (it changed meanwhile): the page
    /// to complete.
    Incomplete(usize),
}

/// Makes the request from a complete draft sent from `tenant`'s portal, with its
/// acknowledgement, in one transaction.
async fn send(
    state: &AppState,
    citizen: &Citizen,
    tenant: &Tenant,
    mut draft: Draft,
) -> Result<Sent, AppError> {
    // Read fresh: the submission fixes the legal regime and delay the request runs under.
    let service = state.store.get_service(draft.service_id).await?;
    if let Err(page) = service.form.check_complete(&mut draft.answers) {
        return Ok(Sent::Incomplete(page));
    }
    // A commune's own service is handled by the portal's tenant, already at hand; an EPCI
    // service asked from a commune's portal is routed to the EPCI (kept like the portal's
    // tenant, module `cache`) with that commune.
    let (handler, commune) = if service.tenant_id == tenant.id {
        (tenant.clone(), None)
    } else {
        (cache::tenant_by_id(state, service.tenant_id).await?, Some(tenant.clone()))
    };
    let now = OffsetDateTime::now_utc();
    let area = ack::area_of(&[commune.as_ref().unwrap_or(&handler), &handler]);
    let dates = ack::legal_dates(&service, now, area);
    let kind = if service.prior_check { AckKind::Aee } else { AckKind::Are };
    let name = format!("{} {}", citizen.profile.given_name, citizen.profile.family_name);
    let request_id = RequestId::new();
    let new = NewRequest {
        id: request_id,
        tenant_id: handler.id,
        commune_tenant_id: commune.as_ref().map(|c| c.id),
        service_id: service.id,
        citizen_id: Some(citizen.id),
        draft_id: Some(draft.id),
        reference_prefix: service.reference_prefix.clone(),
        channel: Channel::Web,
        status: if service.prior_check { status::SUBMITTED } else { status::RECEIVED }.to_owned(),
        answers: draft.answers.clone(),
        submitter: json!({
            "nom": citizen.profile.family_name,
            "prenom": citizen.profile.given_name,
            "courriel": citizen.email,
            "telephone": citizen.profile.phone,
            "adresse": {"voie": citizen.profile.street, "code_postal": citizen.profile.postcode, "commune": citizen.profile.city},
        }),
        submitted_at: now,
        deemed_decision_on: dates.deemed,
        history: None,
        ack_due_at: Some(ack::ack_due_at(now, area)),
        phase: service
            .workflow()
            .phase(if service.prior_check { status::SUBMITTED } else { status::RECEIVED })
            .as_str()
            .to_owned(),
        search_text: guichet_domain::fold(&format!(
            "{} {} {} {}",
            citizen.profile.given_name,
            citizen.profile.family_name,
            citizen.email,
            guichet_domain::form::searchable_text(&draft.answers)
        )),
    };
    // The acknowledgement needs the reference, which the store allocates inside the
    // transaction: it is rendered there, and a rendering failure rolls the submission back, so
    // a request never exists without it.
    let build = |reference: &str| {
        let a = Ack {
            kind,
            reference,
            subject: &service.title,
            received_at: now,
            handler: &handler,
            citizen_name: &name,
            dates: &dates,
            area,
            what: "votre demande",
        };
        let (document, email) = ack::render(state, &a, citizen.email.as_str(), request_id)
            .map_err(|e| e.to_string())?;
        let event = |kind: &str, actor: ActorKind, data: Value| NewEvent {
            id: EventId::new(),
            tenant_id: handler.id,
            request_id: Some(request_id),
            at: now,
            actor_kind: actor,
            actor_id: (actor == ActorKind::Citizen).then(|| citizen.id.as_uuid()),
            channel: Channel::Web,
            kind: kind.to_owned(),
            citizen_visible: true,
            data,
        };
        let job = email.send_job(now);
        Ok(SubmissionRecords {
            events: vec![
                event(
                    "submitted",
                    ActorKind::Citizen,
                    json!({"reference": reference, "service": service.title}),
                ),
                event(
                    "acknowledged",
                    ActorKind::System,
                    json!({"document": document.id, "kind": kind.as_str(), "email": email.id}),
                ),
            ],
            documents: vec![document],
            emails: vec![email],
            jobs: vec![job],
            ..Default::default()
        })
    };
    let submitted = state.store.submit_request(&new, &build).await?;
    if submitted.created {
        tracing::info!(request.id = %submitted.id, request.reference = %submitted.reference, channel = "web", "request submitted");
    }
    Ok(Sent::Made(submitted.id))
}

/// `POST /{tenant}/brouillons/{draft}/supprimer`
pub(crate) async fn delete(
    State(state): State<AppState>,
    visitor: Visitor,
    Path((slug, draft)): Path<(String, String)>,
    form: FormFields,
) -> Result<Response, AppError> {
    let citizen = require_citizen(&state, &visitor, "/compte/").await?;
    visitor.check_csrf(form.get("_csrf"))?;
    let _ = load_tenant(&state, &slug).await?;
    let id: DraftId = draft.parse().map_err(|_| AppError::NotFound)?;
    state.store.delete_draft(id, citizen.id).await?;
    Ok(Redirect::to("/compte/?brouillon_supprime=1").into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_draft_id_is_time_ordered_and_bound_to_who_posts_it_where() {
        let (citizen, portal, service) = (CitizenId::new(), TenantId::new(), ServiceId::new());
        let nonce = draft_nonce();
        let id = fresh_draft_id(citizen, portal, service, &nonce).expect("a valid nonce");
        // The same page posted again names the same draft.
        assert_eq!(fresh_draft_id(citizen, portal, service, &nonce), Some(id));
        // Another citizen, portal or service: another draft.
        for other in [
            fresh_draft_id(CitizenId::new(), portal, service, &nonce),
            fresh_draft_id(citizen, TenantId::new(), service, &nonce),
            fresh_draft_id(citizen, portal, ServiceId::new(), &nonce),
        ] {
            assert_ne!(other, Some(id));
        }
        // A version 7 UUID carrying the nonce's time.
        let uuid = id.as_uuid();
        assert_eq!(uuid.get_version_num(), 7);
        assert_eq!(uuid.simple().to_string()[..12], nonce[..12]);
        // Not a nonce: no id (the page then gets a new draft).
        let short = &nonce[..31];
        let not_hex = format!("{short}g");
        for bad in ["", "zz", short, not_hex.as_str()] {
            assert_eq!(fresh_draft_id(citizen, portal, service, bad), None, "{bad}");
        }
    }

    #[test]
    fn nonces_are_version_7_uuids_of_now_and_never_repeat_across_refills_of_the_reserve() {
        // 1,000 nonces draw 10,000 random bytes: the 4 KiB reserve is refilled twice.
        let nonces: Vec<String> = (0..1000).map(|_| draft_nonce()).collect();
        let distinct: std::collections::HashSet<&str> =
            nonces.iter().map(|n| &n[12..]).filter(|r| r.len() == 20).collect();
        assert_eq!(distinct.len(), 1000, "random parts repeat");
        let now = DraftId::new().as_uuid().simple().to_string();
        for n in &nonces {
            let uuid = uuid::Uuid::parse_str(n).expect("a UUID");
            assert_eq!(uuid.get_version_num(), 7, "{n}");
            // The millisecond time, within a second of now.
            let (t, nt) = (u64::from_str_radix(&n[..12], 16), u64::from_str_radix(&now[..12], 16));
            assert!(nt.unwrap() - t.unwrap() < 1000, "{n} is not of now ({now})");
        }
    }
}
