//! The non-web channels: functional addresses and SMS numbers (endpoints), messages received
//! on them (a *contact* until an agent ties it to a request), text messages out.

use async_trait::async_trait;
use guichet_domain::request::Channel;
use guichet_domain::{AgentId, CitizenId, DocumentId, FileId, RequestId, TenantId};
use time::OffsetDateTime;

use crate::{NewJob, StoreResult};

/// The job kind that sends an outbox SMS (payload: `{"sms_id": "…"}`).
pub const SEND_SMS_JOB: &str = "sms.send";

/// A functional e-mail address (optionally fetched over IMAP) or an SMS number of a tenant.
#[derive(Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Identifier.
    pub id: uuid::Uuid,
    /// Owner.
    pub tenant_id: TenantId,
    /// "email" or "sms".
    pub kind: String,
    /// The address ("mairie@lys.fr") or number ("38100", "+33612345678"), lowercase.
    pub address: String,
    /// `imap://user@host:port/folder` when Guichet fetches the mailbox itself.
    pub imap_url: Option<String>,
    /// The IMAP password (hidden from `Debug`).
    pub imap_password: Option<String>,
    /// UIDVALIDITY of the folder when `last_uid` was recorded.
    pub uid_validity: Option<i64>,
    /// Highest UID stored.
    pub last_uid: i64,
    /// Last fetch attempt.
    pub last_fetch_at: Option<OffsetDateTime>,
    /// Last fetch error, cleared by a successful fetch.
    pub last_error: Option<String>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("id", &self.id)
            .field("tenant_id", &self.tenant_id)
            .field("kind", &self.kind)
            .field("address", &self.address)
            .field("imap_url", &self.imap_url)
            .field("last_uid", &self.last_uid)
            .finish_non_exhaustive()
    }
}

/// A file received with a message.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InboundFile {
    /// The stored file.
    pub id: FileId,
    /// Its name as sent.
    pub name: String,
    /// Its recognised type.
    pub content_type: String,
}

/// A message received on a non-web channel.
#[derive(Clone, Debug, PartialEq)]
pub struct NewInbound {
    /// Identifier.
    pub id: uuid::Uuid,
    /// Tenant it was sent to.
    pub tenant_id: TenantId,
    /// Address or number it arrived on.
    pub endpoint_id: Option<uuid::Uuid>,
    /// Channel.
    pub channel: Channel,
    /// What makes it unique within the tenant (hash of the raw e-mail, Kannel's id…): storing
    /// it twice is a no-op, which makes fetching restartable at any point.
    pub dedup_key: String,
    /// Sender's address, phone number or postal identity.
    pub sender: String,
    /// Sender's name when known.
    pub sender_name: String,
    /// Subject (e-mail, letter).
    pub subject: String,
    /// The new text.
    pub body: String,
    /// Quoted history (e-mail), kept and shown folded.
    pub quoted: String,
    /// `Message-ID` (e-mail), for threading.
    pub message_id: Option<String>,
    /// "contact", "attached", "answered", "qualified", "closed", "set_aside" or "ignored".
    pub state: String,
    /// Why it was set aside or ignored.
    pub reason: Option<String>,
    /// The request it belongs to.
    pub request_id: Option<RequestId>,
    /// The citizen it comes from, when matched.
    pub citizen_id: Option<CitizenId>,
    /// The original as received (e-mail source, scanned letter).
    pub raw_file_id: Option<FileId>,
    /// Files kept from it.
    pub files: Vec<InboundFile>,
    /// When it was received.
    pub received_at: OffsetDateTime,
}

/// A stored inbound message.
#[derive(Clone, Debug, PartialEq)]
pub struct InboundMessage {
    /// The message.
    pub message: NewInbound,
    /// Tenant's name.
    pub tenant_name: String,
    /// The request's reference, when tied to one.
    pub reference: Option<String>,
    /// Agent who handled it.
    pub handled_by: Option<AgentId>,
    /// When.
    pub handled_at: Option<OffsetDateTime>,
}

/// A state change of an inbound message, written with the records of the action that causes
/// it (a reply, a qualification into a request…) so both commit together.
#[derive(Clone, Debug, PartialEq)]
pub struct InboundUpdate {
    /// The message.
    pub id: uuid::Uuid,
    /// Its tenant (a guard: the update touches nothing elsewhere).
    pub tenant_id: TenantId,
    /// The state the agent saw: if it changed meanwhile the whole write is refused.
    pub expected_state: String,
    /// New state.
    pub state: String,
    /// The request it is now tied to; its files join the request.
    pub request_id: Option<RequestId>,
    /// The agent acting.
    pub agent: Option<AgentId>,
    /// Why (a filed contact's reason), kept on the message.
    pub reason: Option<String>,
}

/// Where an IMAP fetch has got to, saved with the message it stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImapPosition {
    /// The mailbox.
    pub endpoint_id: uuid::Uuid,
    /// Its folder's UIDVALIDITY.
    pub uid_validity: i64,
    /// The UID just stored.
    pub uid: i64,
}

/// A text message to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewSms {
    /// Identifier.
    pub id: uuid::Uuid,
    /// Sending tenant.
    pub tenant_id: TenantId,
    /// Request concerned.
    pub request_id: Option<RequestId>,
    /// Recipient (E.164).
    pub to: String,
    /// Text.
    pub body: String,
    /// Segments it takes.
    pub segments: i32,
}

impl NewSms {
    /// The job that sends it, to enqueue in the same transaction.
    pub fn send_job(&self, now: OffsetDateTime) -> NewJob {
        NewJob::now(SEND_SMS_JOB, serde_json::json!({"sms_id": self.id}), now)
            .dedup(format!("{SEND_SMS_JOB}:{}", self.id))
    }
}

/// A text message in the outbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxSms {
    /// The message.
    pub sms: NewSms,
    /// "pending", "sent", "delivered" or "failed".
    pub status: String,
    /// Last error or failure report.
    pub last_error: Option<String>,
    /// When it was written.
    pub created_at: OffsetDateTime,
}

/// Endpoints, inbound messages and the SMS outbox.
#[async_trait]
pub trait ChannelStore {
    /// Adds an endpoint (`Conflict` on `endpoints_address_key` if the address is taken).
    async fn add_endpoint(&self, endpoint: &Endpoint) -> StoreResult<()>;

    /// A tenant's endpoints, or every endpoint when `tenant` is `None` (the fetch job).
    async fn list_endpoints(&self, tenant: Option<TenantId>) -> StoreResult<Vec<Endpoint>>;

    /// The endpoint with this address or number.
    async fn find_endpoint(&self, address: &str) -> StoreResult<Option<Endpoint>>;

    /// Removes a tenant's endpoint (messages keep their history).
    async fn delete_endpoint(&self, tenant: TenantId, id: uuid::Uuid) -> StoreResult<()>;

    /// Records a fetch attempt's outcome; `position` (UIDVALIDITY, last UID) when it changes.
    async fn set_endpoint_status(
        &self,
        id: uuid::Uuid,
        position: Option<(i64, i64)>,
        error: Option<&str>,
        at: OffsetDateTime,
    ) -> StoreResult<()>;

    /// Stores a received message with what it causes (events, acknowledgement e-mail…) and,
    /// for IMAP, the new position, all in one transaction. Returns false, writing nothing but
    /// the position, when the message was already stored (same tenant and dedup key).
    async fn ingest(
        &self,
        message: &NewInbound,
        position: Option<&ImapPosition>,
        records: &crate::SubmissionRecords,
    ) -> StoreResult<bool>;

    /// Whether a message with this dedup key is already stored (checked before storing its
    /// files; the unique constraint stays the final guard).
    async fn inbound_exists(&self, tenant: TenantId, dedup_key: &str) -> StoreResult<bool>;

    /// The request a message belongs to: by any of its thread ids (our outgoing Message-IDs
    /// and messages already tied to a request), else by a reference found in its subject.
    async fn thread_request(
        &self,
        tenant: TenantId,
        thread_ids: &[String],
        reference: Option<&str>,
    ) -> StoreResult<Option<RequestId>>;

    /// The most recent request of the tenant that is not closed and whose submitter's phone
    /// number (recorded on the request) is this one. Profile numbers are not verified, so they
    /// never decide.
    async fn open_request_by_phone(
        &self,
        tenant: TenantId,
        phone: &str,
    ) -> StoreResult<Option<RequestId>>;

    /// A citizen account by phone number.
    async fn find_citizen_by_phone(&self, phone: &str) -> StoreResult<Option<CitizenId>>;

    /// Messages of the agent's tenants in these states, newest first.
    async fn list_inbound(
        &self,
        agent: AgentId,
        states: &[&str],
        limit: i64,
    ) -> StoreResult<Vec<InboundMessage>>;

    /// Contacts waiting in the agent's tenants.
    async fn count_contacts(&self, agent: AgentId) -> StoreResult<i64>;

    /// One message of the agent's tenants.
    async fn get_inbound(
        &self,
        agent: AgentId,
        id: uuid::Uuid,
    ) -> StoreResult<Option<InboundMessage>>;

    /// Messages tied to a request (their originals and set-aside reasons for agents).
    async fn request_inbound(&self, request: RequestId) -> StoreResult<Vec<InboundMessage>>;

    /// A request by id, for system work (threading an inbound message); never for display.
    async fn get_request(&self, id: RequestId) -> StoreResult<crate::RequestRecord>;

    /// An SMS by id.
    async fn get_sms(&self, id: uuid::Uuid) -> StoreResult<OutboxSms>;

    /// Records an SMS's progress ("sent", "delivered", "failed" with the error). A delivery
    /// report never moves a message backwards (a late "sent" after "delivered").
    async fn mark_sms(
        &self,
        id: uuid::Uuid,
        status: &str,
        error: Option<&str>,
        at: OffsetDateTime,
    ) -> StoreResult<()>;

    /// The SMS of a request.
    async fn request_sms(&self, request: RequestId) -> StoreResult<Vec<OutboxSms>>;

    /// Marks our sent e-mails named by a bounce as failed, with the reason, among the requests
    /// of the tenant the bounce came to (a forged bounce cannot touch another tenant's mail).
    /// Returns how many.
    async fn mark_emails_bounced(
        &self,
        tenant: TenantId,
        message_ids: &[String],
        reason: &str,
    ) -> StoreResult<u64>;

    /// The request and document a letter code belongs to, within the agent's tenants.
    async fn find_letter(
        &self,
        agent: AgentId,
        code: &str,
    ) -> StoreResult<Option<(RequestId, DocumentId)>>;
}
