//! Drafts, files, requests, their events (the hash-chained audit trail) and documents.

use async_trait::async_trait;
use guichet_domain::form::Answers;
use guichet_domain::request::{ActorKind, Channel};
use guichet_domain::{
    CitizenId, DocumentId, DraftId, EventId, FileId, RequestId, ServiceId, TenantId,
};
use time::{Date, OffsetDateTime};

use crate::{NewEmail, NewJob, StoreResult};

/// A form in progress.
#[derive(Clone, Debug, PartialEq)]
pub struct Draft {
    /// Identifier, also the idempotency key of its submission.
    pub id: DraftId,
    /// Owner.
    pub citizen_id: CitizenId,
    /// Service.
    pub service_id: ServiceId,
    /// The portal (commune) where it was started: routes EPCI services.
    pub portal_tenant_id: TenantId,
    /// Answers so far.
    pub answers: Answers,
    /// Current page index.
    pub page: i32,
    /// Last save.
    pub updated_at: OffsetDateTime,
}

/// An uploaded file's metadata (the bytes are in the file store, addressed by `sha256`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileRecord {
    /// Identifier.
    pub id: FileId,
    /// Hex SHA-256 of the content.
    pub sha256: String,
    /// Size in bytes.
    pub size: i64,
    /// MIME type recognised from the content.
    pub content_type: String,
    /// Name given by the uploader (display only).
    pub original_name: String,
    /// Uploading citizen.
    pub citizen_id: Option<CitizenId>,
    /// Upload time.
    pub created_at: OffsetDateTime,
}

/// A request to create.
#[derive(Clone, Debug)]
pub struct NewRequest {
    /// Identifier.
    pub id: RequestId,
    /// Handling tenant.
    pub tenant_id: TenantId,
    /// The citizen's commune for an EPCI service.
    pub commune_tenant_id: Option<TenantId>,
    /// Service.
    pub service_id: ServiceId,
    /// Citizen.
    pub citizen_id: Option<CitizenId>,
    /// The draft submitted (idempotency: one request per draft).
    pub draft_id: Option<DraftId>,
    /// Reference prefix; the number is allocated by the store.
    pub reference_prefix: String,
    /// Channel of origin.
    pub channel: Channel,
    /// Initial status.
    pub status: String,
    /// Answers.
    pub answers: Answers,
    /// Identity of the submitter at submission time (kept if the account is deleted).
    pub submitter: serde_json::Value,
    /// Submission (receipt) time.
    pub submitted_at: OffsetDateTime,
    /// Deemed-decision date, when the regime has one.
    pub deemed_decision_on: Option<Date>,
    /// Phase of the initial status ("open", "waiting", "closed").
    pub phase: String,
    /// Folded searchable text (citizen's name, answers); the store adds the reference.
    pub search_text: String,
    /// When the acknowledgement of receipt is legally due (end of its last day, Paris time).
    pub ack_due_at: Option<OffsetDateTime>,
    /// For a request whose history happened elsewhere (imported, generated): its timing.
    /// Submissions leave it `None`; the store starts the timing from the phase.
    pub history: Option<guichet_domain::metrics::Timing>,
}

/// An event to append to a tenant's chain.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEvent {
    /// Identifier.
    pub id: EventId,
    /// Tenant whose chain it joins.
    pub tenant_id: TenantId,
    /// Request concerned.
    pub request_id: Option<RequestId>,
    /// When.
    pub at: OffsetDateTime,
    /// Who.
    pub actor_kind: ActorKind,
    /// Actor id (citizen or agent).
    pub actor_id: Option<uuid::Uuid>,
    /// Channel.
    pub channel: Channel,
    /// What ("submitted", "acknowledged", "message", "status_changed"…).
    pub kind: String,
    /// Whether the citizen sees it in their timeline.
    pub citizen_visible: bool,
    /// Details.
    pub data: serde_json::Value,
}

/// A stored event.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// The event.
    pub event: NewEvent,
    /// Which of the tenant's chains (`guichet_domain::audit`).
    pub lane: i32,
    /// Position in that chain.
    pub seq: i64,
    /// Hash of the previous event.
    pub prev_hash: String,
    /// This event's hash.
    pub hash: String,
}

/// A document kept on a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewDocument {
    /// Identifier.
    pub id: DocumentId,
    /// "aee" or "are".
    pub kind: String,
    /// Title.
    pub title: String,
    /// Plain text.
    pub text: String,
    /// HTML.
    pub html: String,
    /// When it was issued.
    pub created_at: OffsetDateTime,
    /// Short code printed on a paper letter.
    pub code: Option<String>,
}

/// What a submission writes besides the request, built once the reference is known.
#[derive(Clone, Debug, Default)]
pub struct SubmissionRecords {
    /// Events (submitted, acknowledged…).
    pub events: Vec<NewEvent>,
    /// Acknowledgements.
    pub documents: Vec<NewDocument>,
    /// E-mails.
    pub emails: Vec<NewEmail>,
    /// Jobs (sending those e-mails…).
    pub jobs: Vec<NewJob>,
    /// Text messages.
    pub sms: Vec<crate::NewSms>,
    /// Inbound messages whose state the action changes.
    pub inbound: Vec<crate::InboundUpdate>,
}

/// Builds the records of a submission from its reference; an error (its text for the logs)
/// rolls the whole submission back, so a request never exists without its records.
pub type RecordsBuilder<'a> = &'a (dyn Fn(&str) -> Result<SubmissionRecords, String> + Send + Sync);

/// What `submit_request` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Submitted {
    /// The request.
    pub id: RequestId,
    /// Its reference.
    pub reference: String,
    /// False when the draft had already been submitted (double click, replayed POST).
    pub created: bool,
}

/// A request as listed.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestSummary {
    /// Identifier.
    pub id: RequestId,
    /// Reference.
    pub reference: String,
    /// Service title.
    pub service_title: String,
    /// Handling tenant's name.
    pub tenant_name: String,
    /// Status.
    pub status: String,
    /// Channel.
    pub channel: Channel,
    /// Submission time.
    pub submitted_at: OffsetDateTime,
}

/// A request in full.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestRecord {
    /// Identifier.
    pub id: RequestId,
    /// Handling tenant.
    pub tenant_id: TenantId,
    /// Citizen's commune (EPCI services).
    pub commune_tenant_id: Option<TenantId>,
    /// Service.
    pub service_id: ServiceId,
    /// Citizen.
    pub citizen_id: Option<CitizenId>,
    /// Reference.
    pub reference: String,
    /// Channel.
    pub channel: Channel,
    /// Status.
    pub status: String,
    /// Answers.
    pub answers: Answers,
    /// Submitter identity snapshot.
    pub submitter: serde_json::Value,
    /// Submission time.
    pub submitted_at: OffsetDateTime,
    /// Deemed-decision date.
    pub deemed_decision_on: Option<Date>,
    /// Phase of the status.
    pub phase: String,
    /// Assigned agent.
    pub assignee_id: Option<guichet_domain::AgentId>,
}

/// A stored document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Document {
    /// The document.
    pub document: NewDocument,
    /// Request.
    pub request_id: RequestId,
}

/// Drafts, files, requests, events and documents.
#[async_trait]
pub trait RequestStore {
    /// Creates or replaces a draft.
    async fn save_draft(&self, draft: &Draft) -> StoreResult<()>;

    /// A draft of this citizen (another citizen's draft is `None`).
    async fn get_draft(&self, id: DraftId, citizen: CitizenId) -> StoreResult<Option<Draft>>;

    /// The citizen's drafts, most recent first, with their service titles.
    async fn list_drafts(&self, citizen: CitizenId) -> StoreResult<Vec<(Draft, String)>>;

    /// Deletes a draft of this citizen.
    async fn delete_draft(&self, id: DraftId, citizen: CitizenId) -> StoreResult<()>;

    /// Records an uploaded file.
    async fn add_file(&self, file: &FileRecord) -> StoreResult<()>;

    /// A file by id.
    async fn get_file(&self, id: FileId) -> StoreResult<FileRecord>;

    /// Whether a request of this citizen references this file (its answers or messages).
    async fn citizen_can_read_file(&self, file: FileId, citizen: CitizenId) -> StoreResult<bool>;

    /// Submits a request: allocates its reference (per tenant and year), inserts it, deletes
    /// its draft, and writes what `build(reference)` returns, in one transaction. A draft
    /// already submitted returns the existing request with `created: false`.
    async fn submit_request(
        &self,
        request: &NewRequest,
        build: RecordsBuilder<'_>,
    ) -> StoreResult<Submitted>;

    /// The request made from this citizen's draft, if it was submitted.
    async fn find_request_by_draft(
        &self,
        draft: DraftId,
        citizen: CitizenId,
    ) -> StoreResult<Option<RequestId>>;

    /// Appends events (with documents, e-mails, jobs) to existing requests, atomically.
    async fn record(&self, records: &SubmissionRecords) -> StoreResult<()>;

    /// A citizen's requests, most recent first.
    async fn list_citizen_requests(&self, citizen: CitizenId) -> StoreResult<Vec<RequestSummary>>;

    /// A request of this citizen (another citizen's is `None`).
    async fn get_citizen_request(
        &self,
        id: RequestId,
        citizen: CitizenId,
    ) -> StoreResult<Option<RequestRecord>>;

    /// A request's timeline in the order its events were written (a request's writes are
    /// serialised by its row, whatever chain lane they took): every event but the traced views,
    /// or with `citizen_view` only those the citizen may see.
    async fn list_request_events(
        &self,
        id: RequestId,
        citizen_view: bool,
    ) -> StoreResult<Vec<Event>>;

    /// A request's whole history in order, views included (the history export).
    async fn list_request_history(&self, id: RequestId) -> StoreResult<Vec<Event>>;

    /// A request's documents in order.
    async fn list_request_documents(&self, id: RequestId) -> StoreResult<Vec<Document>>;
}
