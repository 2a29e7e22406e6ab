//! What Guichet does with a message that arrives on a non-web channel: e-mail (fetched over
//! IMAP or piped by an MTA) and SMS (from Kannel).
//!
//! Every message is stored exactly once (its dedup key is the hash of the raw e-mail or
//! Kannel's id), with what it causes, in one transaction:
//! - automatic messages (auto-replies, bounces, lists, our own loops) are kept as *ignored*
//!   with the reason, never answered; a bounce marks our undelivered e-mail as failed;
//! - unreadable or oversized messages are *set aside* with the reason, for an agent to look at;
//! - a message in a thread Guichet knows (our Message-ID in `In-Reply-To`/`References`, or the
//!   phone number of an open request's citizen) joins that request's timeline;
//! - anything else becomes a *contact* in the tenant's inbox, acknowledged as the law requires
//!   for an electronic submission (CRPA L112-11).
//!
//! Nothing in a message can stop the loop: every failure is a recorded state, not an error.

use async_trait::async_trait;
use guichet_channels::imap::{self, ImapAccount};
use guichet_channels::inbound::{self, Automatic, InboundEmail};
use guichet_domain::audit::sha256_hex;
use guichet_domain::channel::find_reference;
use guichet_domain::form::FileKind;
use guichet_domain::request::{ActorKind, Channel};
use guichet_domain::{CitizenId, Email, EventId, FileId, Phone, RequestId, TenantId};
use guichet_jobs::{JobContext, JobHandler};
use guichet_store::{
    Endpoint, FileRecord, ImapPosition, InboundFile, NewEvent, NewInbound, SubmissionRecords,
};
use serde_json::json;
use time::OffsetDateTime;

use crate::ack::{self, Ack, AckKind, LegalDates};
use crate::{AppError, AppState};

/// Largest e-mail downloaded whole; above it only the headers are read and the message is
/// set aside (it stays in the mailbox).
pub const MAX_EMAIL_BYTES: u32 = 25 * 1024 * 1024;
/// Largest attachment kept.
pub const MAX_ATTACHMENT_BYTES: usize = 10 * 1024 * 1024;
/// Messages fetched per mailbox per run (the next run continues).
pub const FETCH_BATCH: usize = 200;

/// What became of a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Already stored: nothing done.
    Duplicate,
    /// Joined a request.
    Attached(RequestId),
    /// A new contact.
    Contact(uuid::Uuid),
    /// Kept without action, with the reason.
    Ignored(String),
    /// Set aside for an agent, with the reason.
    SetAside(String),
}

fn event(
    tenant: TenantId,
    request: Option<RequestId>,
    channel: Channel,
    actor: (ActorKind, Option<uuid::Uuid>),
    kind: &str,
    visible: bool,
    data: serde_json::Value,
) -> NewEvent {
    NewEvent {
        id: EventId::new(),
        tenant_id: tenant,
        request_id: request,
        at: OffsetDateTime::now_utc(),
        actor_kind: actor.0,
        actor_id: actor.1,
        channel,
        kind: kind.to_owned(),
        citizen_visible: visible,
        data,
    }
}

fn base_message(endpoint: &Endpoint, channel: Channel, dedup_key: String) -> NewInbound {
    NewInbound {
        id: uuid::Uuid::now_v7(),
        tenant_id: endpoint.tenant_id,
        endpoint_id: Some(endpoint.id),
        channel,
        dedup_key,
        sender: String::new(),
        sender_name: String::new(),
        subject: String::new(),
        body: String::new(),
        quoted: String::new(),
        message_id: None,
        state: "contact".to_owned(),
        reason: None,
        request_id: None,
        citizen_id: None,
        raw_file_id: None,
        files: Vec::new(),
        received_at: OffsetDateTime::now_utc(),
    }
}

/// Stores bytes in the file store and their record.
pub(crate) async fn keep_file(
    state: &AppState,
    bytes: &[u8],
    content_type: &str,
    name: &str,
    citizen: Option<CitizenId>,
) -> Result<FileId, AppError> {
    let sha256 = state.files.put(bytes).await.map_err(|e| AppError::Internal(e.into()))?;
    let id = FileId::new();
    state
        .store
        .add_file(&FileRecord {
            id,
            sha256,
            size: bytes.len() as i64,
            content_type: content_type.to_owned(),
            original_name: name.chars().take(200).collect(),
            citizen_id: citizen,
            created_at: OffsetDateTime::now_utc(),
        })
        .await?;
    Ok(id)
}

/// Saves what can be kept of the attachments; returns the kept files and a note listing the
/// refused ones (type or size), which is added to the message so agents know.
async fn keep_attachments(
    state: &AppState,
    mail: &InboundEmail,
    citizen: Option<CitizenId>,
) -> Result<(Vec<InboundFile>, Vec<String>), AppError> {
    let mut kept = Vec::new();
    let mut refused = Vec::new();
    for a in &mail.attachments {
        if a.bytes.len() > MAX_ATTACHMENT_BYTES {
            refused.push(format!(
                "« {} » ({} Mo) : trop volumineux, limite {} Mo",
                a.name,
                a.bytes.len() / 1024 / 1024,
                MAX_ATTACHMENT_BYTES / 1024 / 1024
            ));
            continue;
        }
        // The type is what the bytes are, never what the sender declares.
        match FileKind::sniff(&a.bytes) {
            Some((_, mime)) => {
                let id = keep_file(state, &a.bytes, mime, &a.name, citizen).await?;
                kept.push(InboundFile { id, name: a.name.clone(), content_type: mime.to_owned() });
            }
            None => refused.push(format!(
                "« {} » ({}) : type non accepté (PDF, JPEG ou PNG seulement) ; il reste dans le message d'origine",
                a.name, a.declared_type
            )),
        }
    }
    Ok((kept, refused))
}

/// The address replies to this tenant should go to (its first functional address).
pub(crate) async fn reply_address(
    state: &AppState,
    tenant: TenantId,
) -> Result<Option<String>, AppError> {
    Ok(state
        .store
        .list_endpoints(Some(tenant))
        .await?
        .into_iter()
        .find(|e| e.kind == "email")
        .map(|e| e.address))
}

/// Handles one raw e-mail received on `endpoint`. `oversized` carries the real size when only
/// the headers could be read.
pub async fn ingest_email(
    state: &AppState,
    endpoint: &Endpoint,
    raw: &[u8],
    oversized: Option<u32>,
    position: Option<ImapPosition>,
) -> Result<Outcome, AppError> {
    let dedup_key = match oversized {
        Some(size) => format!("sha256:{}:{size}", sha256_hex(raw)),
        None => format!("sha256:{}", sha256_hex(raw)),
    };
    // Already stored (a re-read mailbox): no file written, nothing sent, only the position.
    if state.store.inbound_exists(endpoint.tenant_id, &dedup_key).await? {
        if let Some(p) = &position {
            state
                .store
                .set_endpoint_status(
                    endpoint.id,
                    Some((p.uid_validity, p.uid)),
                    None,
                    OffsetDateTime::now_utc(),
                )
                .await?;
        }
        return Ok(Outcome::Duplicate);
    }
    let mut m = base_message(endpoint, Channel::Email, dedup_key);
    let system = (ActorKind::System, None);
    let parsed = inbound::parse(raw, &state.config.mail_domain);
    let mut records = SubmissionRecords::default();

    // Unreadable or oversized: set aside, never lost.
    let mail = match (parsed, oversized) {
        (Ok(mail), None) => mail,
        (parsed, _) => {
            let reason = match oversized {
                Some(size) => format!(
                    "message trop volumineux ({} Mo, limite {} Mo) : il reste dans la boîte aux lettres, seuls ses en-têtes ont été lus",
                    size / 1024 / 1024,
                    MAX_EMAIL_BYTES / 1024 / 1024
                ),
                None => "message illisible (structure MIME invalide) : l'original est conservé"
                    .to_owned(),
            };
            if let Ok(mail) = &parsed {
                m.sender = mail.from_address.clone().unwrap_or_default();
                m.sender_name = mail.from_name.clone().unwrap_or_default();
                m.subject = mail.subject.clone();
                m.message_id = mail.message_id.clone();
            }
            if oversized.is_none() {
                m.raw_file_id = Some(
                    keep_file(state, raw, "message/rfc822", "message-original.eml", None).await?,
                );
            }
            m.state = "set_aside".to_owned();
            m.reason = Some(reason.clone());
            records.events.push(event(
                endpoint.tenant_id,
                None,
                Channel::Email,
                system,
                "inbound_set_aside",
                false,
                json!({"inbound": m.id, "reason": reason}),
            ));
            return store(state, &m, position, &records, Outcome::SetAside(reason)).await;
        }
    };
    m.sender = mail.from_address.clone().unwrap_or_default();
    m.sender_name = mail.from_name.clone().unwrap_or_default();
    m.subject = mail.subject.clone();
    m.message_id = mail.message_id.clone();
    m.body = mail.body.clone();
    m.quoted = mail.quoted.clone();

    if let Some(auto) = mail.automatic.or_else(|| {
        // Mail from one of our own functional addresses is a loop too.
        (m.sender == endpoint.address).then_some(Automatic::Loop)
    }) {
        let mut reason = auto.reason().to_owned();
        if auto == Automatic::Bounce && !mail.bounced_ids.is_empty() {
            let n = state
                .store
                .mark_emails_bounced(
                    endpoint.tenant_id,
                    &mail.bounced_ids,
                    &format!("non remis : avis reçu de {}", m.sender),
                )
                .await?;
            reason.push_str(&format!(" ; {n} courriel(s) marqué(s) non remis"));
        }
        m.state = "ignored".to_owned();
        m.reason = Some(reason.clone());
        records.events.push(event(
            endpoint.tenant_id,
            None,
            Channel::Email,
            system,
            "inbound_ignored",
            false,
            json!({"inbound": m.id, "reason": reason}),
        ));
        return store(state, &m, position, &records, Outcome::Ignored(reason)).await;
    }

    m.raw_file_id =
        Some(keep_file(state, raw, "message/rfc822", "message-original.eml", None).await?);
    let sender_email = Email::parse(&m.sender).ok();
    // Only a verified address names a citizen: anyone can claim an address at sign-up.
    let citizen = match &sender_email {
        Some(e) => state
            .store
            .find_citizen_login(e)
            .await?
            .map(|(c, _)| c)
            .filter(|c| c.email_verified_at.is_some()),
        None => None,
    };
    m.citizen_id = citizen.as_ref().map(|c| c.id);
    let (files, refused) = keep_attachments(state, &mail, m.citizen_id).await?;
    m.files = files;
    if !refused.is_empty() {
        m.body.push_str(&format!("\n\n[Pièces jointes non conservées : {}]", refused.join(" ; ")));
    }
    if mail.from_html {
        m.body.push_str("\n\n[Message reçu au format HTML : texte extrait, mise en forme et contenus actifs retirés.]");
    }

    // Threading: by our Message-IDs or the citizen's own (In-Reply-To, References), else by a
    // reference typed in the subject. Either way the message joins the request only if it
    // comes from the request's own citizen: a third party in copy who answers "to all", or
    // anyone typing a reference, lands as a contact for an agent to check.
    let tenant = endpoint.tenant_id;
    let mut request = state.store.thread_request(tenant, &mail.thread_ids, None).await?;
    if request.is_none()
        && let Some(reference) = find_reference(&mail.subject)
    {
        request = state.store.thread_request(tenant, &[], Some(&reference)).await?;
    }
    if let Some(found) = request {
        let r = state.store.get_request(found).await?;
        let submitter_email = r.submitter.get("courriel").and_then(|v| v.as_str()).unwrap_or("");
        let account_email = match r.citizen_id {
            Some(c) => match state.store.get_citizen(c).await {
                Ok(c) => Some(c.email.to_string()),
                Err(guichet_store::StoreError::NotFound) => None,
                Err(e) => return Err(e.into()),
            },
            None => None,
        };
        let same = !m.sender.is_empty()
            && (submitter_email.eq_ignore_ascii_case(&m.sender)
                || account_email.is_some_and(|a| a.eq_ignore_ascii_case(&m.sender)));
        if !same {
            request = None;
            m.reason = Some(format!(
                "concerne la demande {}, mais l'expéditeur n'en est pas le demandeur : à rattacher après vérification",
                r.reference
            ));
        }
    }
    let handler = state.store.get_tenant(tenant).await?;
    let reply_to = Some(endpoint.address.clone());
    let mut references: Vec<String> = mail.thread_ids.iter().rev().cloned().collect();
    if let Some(id) = &mail.message_id {
        references.push(id.clone());
    }
    let files_json: Vec<_> = m.files.iter().map(|f| json!({"id": f.id, "name": f.name})).collect();
    let citizen_actor = (ActorKind::Citizen, m.citizen_id.map(|c| c.as_uuid()));
    let name = if m.sender_name.is_empty() { m.sender.clone() } else { m.sender_name.clone() };

    let outcome = if let Some(request_id) = request {
        let r = state.store.get_request(request_id).await?;
        let service = state.store.get_service(r.service_id).await?;
        m.state = "attached".to_owned();
        m.request_id = Some(request_id);
        records.events.push(event(
            tenant,
            Some(request_id),
            Channel::Email,
            citizen_actor,
            "message",
            true,
            json!({"body": m.body, "quoted": m.quoted, "subject": m.subject, "files": files_json, "inbound": m.id, "sender": m.sender}),
        ));
        if !m.sender.is_empty() {
            let area = ack::area_of(&[&handler]);
            let dates = LegalDates { regime: guichet_domain::Regime::None, deemed: None };
            let a = Ack {
                kind: AckKind::Are,
                reference: &r.reference,
                subject: &service.title,
                received_at: m.received_at,
                handler: &handler,
                citizen_name: &name,
                dates: &dates,
                area,
                what: "votre message concernant la demande",
            };
            let (document, mut email) = ack::render(state, &a, &m.sender, request_id)?;
            email.reply_to = reply_to;
            email.references = references;
            records.events.push(event(
                tenant,
                Some(request_id),
                Channel::Email,
                system,
                "acknowledged",
                true,
                json!({"document": document.id, "kind": "are", "email": email.id, "of": "message"}),
            ));
            records.jobs.push(email.send_job(OffsetDateTime::now_utc()));
            records.documents.push(document);
            records.emails.push(email);
        }
        Outcome::Attached(request_id)
    } else {
        records.events.push(event(
            tenant,
            None,
            Channel::Email,
            citizen_actor,
            "contact_received",
            false,
            json!({"inbound": m.id, "sender": m.sender, "subject": m.subject}),
        ));
        // At most three acknowledgements an hour to one sender: a forged sender or a robot
        // that escaped detection cannot turn the mairie into a mail cannon.
        let throttle_key = format!("ack:{tenant}:{}", m.sender);
        let allowed = sender_email.is_some()
            && state
                .store
                .hit_throttle(&throttle_key, time::Duration::hours(1), OffsetDateTime::now_utc())
                .await?
                <= 3;
        if allowed {
            let short = m.id.simple().to_string();
            let reference = format!("C-{}", &short[short.len() - 8..].to_uppercase());
            let area = ack::area_of(&[&handler]);
            let dates = LegalDates { regime: guichet_domain::Regime::None, deemed: None };
            let subject =
                if m.subject.is_empty() { "(sans objet)".to_owned() } else { m.subject.clone() };
            let a = Ack {
                kind: AckKind::Contact,
                reference: &reference,
                subject: &subject,
                received_at: m.received_at,
                handler: &handler,
                citizen_name: &name,
                dates: &dates,
                area,
                what: "votre courriel",
            };
            let mut email = ack::render_email(
                state,
                &a,
                &m.sender,
                format!("Accusé de réception de votre courriel « {subject} »"),
            )?;
            email.reply_to = reply_to;
            email.references = references;
            records.events.push(event(
                tenant,
                None,
                Channel::Email,
                system,
                "contact_acknowledged",
                false,
                json!({"inbound": m.id, "email": email.id}),
            ));
            records.jobs.push(email.send_job(OffsetDateTime::now_utc()));
            records.emails.push(email);
        }
        Outcome::Contact(m.id)
    };
    store(state, &m, position, &records, outcome).await
}

async fn store(
    state: &AppState,
    m: &NewInbound,
    position: Option<ImapPosition>,
    records: &SubmissionRecords,
    outcome: Outcome,
) -> Result<Outcome, AppError> {
    let created = state.store.ingest(m, position.as_ref(), records).await?;
    if created {
        tracing::info!(inbound.id = %m.id, tenant.id = %m.tenant_id, channel = m.channel.as_str(), state = %m.state, "message received");
        Ok(outcome)
    } else {
        Ok(Outcome::Duplicate)
    }
}

/// Handles one SMS received by Kannel for `endpoint` (the tenant's number).
pub async fn ingest_sms(
    state: &AppState,
    endpoint: &Endpoint,
    from: &str,
    text: &str,
    external_id: &str,
) -> Result<Outcome, AppError> {
    let from = Phone::parse(from)
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|_| from.trim().to_owned());
    let key = if external_id.trim().is_empty() {
        // Kannel always sends its id; without one, the content and minute stand in.
        let minute = OffsetDateTime::now_utc().unix_timestamp() / 60;
        format!("sms:{}", sha256_hex(format!("{from}\n{text}\n{minute}").as_bytes()))
    } else {
        format!("kannel:{}", external_id.trim())
    };
    if state.store.inbound_exists(endpoint.tenant_id, &key).await? {
        return Ok(Outcome::Duplicate);
    }
    let mut m = base_message(endpoint, Channel::Sms, key);
    m.sender = from.clone();
    m.body = text.chars().filter(|c| !c.is_control() || *c == '\n').take(5000).collect();
    let tenant = endpoint.tenant_id;
    let mut records = SubmissionRecords::default();
    let request = state.store.open_request_by_phone(tenant, &from).await?;
    if let Some(r) = request {
        m.citizen_id = state.store.get_request(r).await?.citizen_id;
    }
    let actor = (ActorKind::Citizen, m.citizen_id.map(|c| c.as_uuid()));
    let outcome = match request {
        Some(request) => {
            m.state = "attached".to_owned();
            m.request_id = Some(request);
            records.events.push(event(
                tenant,
                Some(request),
                Channel::Sms,
                actor,
                "message",
                true,
                json!({"body": m.body, "inbound": m.id, "sender": m.sender}),
            ));
            Outcome::Attached(request)
        }
        None => {
            records.events.push(event(
                tenant,
                None,
                Channel::Sms,
                actor,
                "contact_received",
                false,
                json!({"inbound": m.id, "sender": m.sender}),
            ));
            Outcome::Contact(m.id)
        }
    };
    store(state, &m, None, &records, outcome).await
}

/// Fetches new messages of one mailbox; returns how many were handled. A message that cannot
/// be stored (database down) stops the run where it is: the next run resumes from there.
pub async fn fetch_mailbox(state: &AppState, endpoint: &Endpoint) -> Result<usize, AppError> {
    fetch_mailbox_at_most(state, endpoint, FETCH_BATCH).await
}

/// Same, handling at most `limit` messages (the rest waits for the next run).
pub async fn fetch_mailbox_at_most(
    state: &AppState,
    endpoint: &Endpoint,
    limit: usize,
) -> Result<usize, AppError> {
    let (Some(url), Some(password)) = (&endpoint.imap_url, &endpoint.imap_password) else {
        return Ok(0);
    };
    let now = OffsetDateTime::now_utc();
    let result = async {
        let account = ImapAccount::from_url(url, password)?;
        let mut session = imap::connect(&account).await?;
        let validity = i64::from(session.uid_validity);
        // A new UIDVALIDITY means the folder was recreated: read it again from the start
        // (what was already stored is recognised by its hash).
        let last = if endpoint.uid_validity == Some(validity) { endpoint.last_uid } else { 0 };
        let uids = session.uids_after(u32::try_from(last).unwrap_or(0)).await?;
        Ok::<_, imap::ImapError>((session, validity, uids))
    }
    .await;
    let (mut session, validity, uids) = match result {
        Ok(x) => x,
        Err(e) => {
            tracing::warn!(endpoint = %endpoint.address, error = %e, "mailbox fetch failed");
            state.store.set_endpoint_status(endpoint.id, None, Some(&e.to_string()), now).await?;
            return Ok(0);
        }
    };
    let mut handled = 0;
    let mut error = None;
    let started = std::time::Instant::now();
    for uid in uids.into_iter().take(limit) {
        // A run stays well under the job's lease; the next run continues.
        if started.elapsed() > std::time::Duration::from_secs(120) {
            break;
        }
        let fetched = match session.fetch(uid, MAX_EMAIL_BYTES).await {
            Ok(Some(f)) => f,
            Ok(None) => continue, // expunged meanwhile
            Err(e) => {
                error = Some(e.to_string());
                break;
            }
        };
        let position =
            ImapPosition { endpoint_id: endpoint.id, uid_validity: validity, uid: i64::from(uid) };
        let oversized = fetched.truncated.then_some(fetched.size);
        if let Err(e) =
            ingest_email(state, endpoint, &fetched.bytes, oversized, Some(position)).await
        {
            // A message that cannot be stored (whatever in it the database refuses) is set
            // aside with the reason rather than blocking the mailbox forever; if even that
            // fails, the database itself is in trouble: stop and retry later.
            tracing::error!(endpoint = %endpoint.address, uid, error = %e, "message could not be stored");
            if let Err(e2) =
                set_aside_unstorable(state, endpoint, &fetched.bytes, position, &e.to_string())
                    .await
            {
                error = Some(format!("enregistrement impossible : {e2}"));
                break;
            }
        }
        handled += 1;
    }
    session.logout().await;
    // The position was saved with each message; this records the run and its error, if any.
    state
        .store
        .set_endpoint_status(endpoint.id, None, error.as_deref(), OffsetDateTime::now_utc())
        .await?;
    Ok(handled)
}

/// Records a message that could not be stored normally: only its hash and the reason.
async fn set_aside_unstorable(
    state: &AppState,
    endpoint: &Endpoint,
    raw: &[u8],
    position: ImapPosition,
    error: &str,
) -> Result<(), AppError> {
    let mut m = base_message(endpoint, Channel::Email, format!("sha256:{}", sha256_hex(raw)));
    m.state = "set_aside".to_owned();
    m.subject = "(message impossible à enregistrer)".to_owned();
    m.reason = Some(format!(
        "message impossible à enregistrer ({error}) : il reste dans la boîte aux lettres (UID {})",
        position.uid
    ));
    let records = SubmissionRecords {
        events: vec![event(
            endpoint.tenant_id,
            None,
            Channel::Email,
            (ActorKind::System, None),
            "inbound_set_aside",
            false,
            json!({"inbound": m.id, "reason": m.reason}),
        )],
        ..Default::default()
    };
    state.store.ingest(&m, Some(&position), &records).await?;
    Ok(())
}

/// The periodic job that fetches every IMAP mailbox.
pub struct FetchMail {
    /// Application state (store, files, settings).
    pub state: AppState,
}

/// The job kind.
pub const FETCH_MAIL_JOB: &str = "mail.fetch";

#[async_trait]
impl JobHandler for FetchMail {
    fn kind(&self) -> &'static str {
        FETCH_MAIL_JOB
    }

    async fn run(&self, _payload: serde_json::Value, _ctx: JobContext) -> anyhow::Result<()> {
        for endpoint in self.state.store.list_endpoints(None).await? {
            if endpoint.imap_url.is_none() {
                continue;
            }
            match fetch_mailbox(&self.state, &endpoint).await {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!(endpoint = %endpoint.address, messages = n, "mailbox fetched")
                }
                Err(e) => {
                    tracing::error!(endpoint = %endpoint.address, error = %e, "mailbox fetch stopped")
                }
            }
        }
        Ok(())
    }
}
