//! The back-office: agents and their tenants, the inbox (every query scoped to the tenants the
//! agent belongs to, in SQL, so that no handler can forget the wall), workflow transitions,
//! assignment, reply templates, saved views, and reading the audit chain.

use async_trait::async_trait;
use guichet_domain::request::Channel;
use guichet_domain::{AgentId, CitizenId, Email, RequestId, Role, ServiceId, Slug, TenantId};
use time::{Date, OffsetDateTime};

use crate::{Event, RequestRecord, StoreResult, SubmissionRecords};

/// An agent's membership of a tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Membership {
    /// Tenant.
    pub tenant_id: TenantId,
    /// Its slug.
    pub tenant_slug: Slug,
    /// Its name.
    pub tenant_name: String,
    /// Role there.
    pub role: Role,
}

/// An agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Agent {
    /// Identifier.
    pub id: AgentId,
    /// Login e-mail.
    pub email: Email,
    /// Name shown to colleagues.
    pub display_name: String,
    /// Base32 TOTP secret once enrolled.
    pub totp_secret: Option<String>,
    /// Tenants and roles.
    pub memberships: Vec<Membership>,
}

impl Agent {
    /// The agent's role in a tenant, if a member.
    pub fn role_in(&self, tenant: TenantId) -> Option<Role> {
        self.memberships.iter().find(|m| m.tenant_id == tenant).map(|m| m.role)
    }

    /// Whether the agent administers at least one tenant (the second factor is then mandatory).
    pub fn is_admin(&self) -> bool {
        self.memberships.iter().any(|m| m.role == Role::TenantAdmin)
    }
}

/// Whose requests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AssigneeFilter {
    /// Anyone's.
    #[default]
    Any,
    /// Assigned to this agent.
    Agent(AgentId),
    /// Nobody's.
    Unassigned,
}

/// Deadline views.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeadlineFilter {
    /// All.
    #[default]
    Any,
    /// Not closed and past the deemed-decision date.
    Overdue,
    /// Not closed, deemed-decision date within the next days.
    DueWithin(i64),
}

/// Order of the inbox.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum InboxSort {
    /// Most recent submission first.
    #[default]
    Newest,
    /// Oldest submission first.
    Oldest,
}

/// Inbox filters (all optional, combined with AND).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InboxFilter {
    /// Handling tenant.
    pub tenant: Option<TenantId>,
    /// Service.
    pub service: Option<ServiceId>,
    /// Exact status.
    pub status: Option<String>,
    /// Phase ("open", "waiting", "closed").
    pub phase: Option<String>,
    /// Channel of origin.
    pub channel: Option<Channel>,
    /// Assignee.
    pub assignee: AssigneeFilter,
    /// Legal deadline view.
    pub deadline: DeadlineFilter,
    /// Submitted at or after this instant.
    pub from: Option<OffsetDateTime>,
    /// Submitted before this instant.
    pub to: Option<OffsetDateTime>,
    /// The citizen's commune: the EPCI's requests for its residents and the commune's own.
    pub commune: Option<TenantId>,
    /// Full-text query, already folded (lowercase, no accents).
    pub search: Option<String>,
    /// Order.
    pub sort: InboxSort,
    /// "Today" for deadline views (Paris date).
    pub today: Option<Date>,
}

/// Where the previous page ended (keyset pagination: stays fast deep in a million rows).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    /// Submission time of the last row shown.
    pub submitted_at: OffsetDateTime,
    /// Its id (tie-breaker).
    pub id: RequestId,
}

/// A row of the inbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboxRow {
    /// Request.
    pub id: RequestId,
    /// Reference.
    pub reference: String,
    /// Handling tenant's name.
    pub tenant_name: String,
    /// Service title.
    pub service_title: String,
    /// Citizen's name as submitted.
    pub citizen_name: String,
    /// Status key.
    pub status: String,
    /// Phase.
    pub phase: String,
    /// Channel.
    pub channel: Channel,
    /// Submission time.
    pub submitted_at: OffsetDateTime,
    /// Deemed-decision date.
    pub deemed_decision_on: Option<Date>,
    /// Assignee's name.
    pub assignee_name: Option<String>,
}

/// A workflow step to apply.
#[derive(Clone, Debug)]
pub struct StatusChange {
    /// Request.
    pub request_id: RequestId,
    /// The status the agent saw (the change fails if someone changed it meanwhile).
    pub expected_status: String,
    /// New status.
    pub status: String,
    /// Its phase.
    pub phase: String,
    /// New deemed-decision date (`None` keeps… nothing: it is written as given).
    pub deemed_decision_on: Option<Date>,
}

/// A reply template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplyTemplate {
    /// Identifier.
    pub id: uuid::Uuid,
    /// Tenant.
    pub tenant_id: TenantId,
    /// Title.
    pub title: String,
    /// Text.
    pub body: String,
}

/// A saved inbox view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedView {
    /// Identifier.
    pub id: uuid::Uuid,
    /// Owner.
    pub agent_id: AgentId,
    /// Name.
    pub name: String,
    /// The inbox query string.
    pub query: String,
}

/// The back-office.
/// An inbox page and its total from their two queries, run at the same time on two
/// connections: `inbox_page`'s default, and a backend's answer when it has no single pass.
pub async fn page_and_count<S: BackOfficeStore + ?Sized>(
    store: &S,
    agent: AgentId,
    filter: &InboxFilter,
    after: Option<Cursor>,
    limit: i64,
) -> StoreResult<(Vec<InboxRow>, i64)> {
    futures_util::future::try_join(
        store.inbox(agent, filter, after, limit),
        store.count_inbox(agent, filter),
    )
    .await
}

#[async_trait]
pub trait BackOfficeStore {
    /// An agent and their password hash, by e-mail.
    async fn find_agent_login(&self, email: &Email) -> StoreResult<Option<(Agent, String)>>;

    /// An agent with memberships.
    async fn get_agent(&self, id: AgentId) -> StoreResult<Agent>;

    /// Enrols (or removes) the TOTP second factor.
    async fn set_agent_totp(&self, id: AgentId, secret: Option<&str>) -> StoreResult<()>;

    /// Marks an agent session as having passed the second factor.
    async fn set_session_mfa(&self, token_hash: &str) -> StoreResult<()>;

    /// Ends every session of an agent ("log out everywhere").
    async fn delete_agent_sessions(&self, id: AgentId) -> StoreResult<()>;

    /// Agents who are members of a tenant.
    async fn list_tenant_agents(
        &self,
        tenant: TenantId,
    ) -> StoreResult<Vec<(AgentId, String, Role)>>;

    /// One page of the inbox of `agent` (only requests of the agent's tenants).
    async fn inbox(
        &self,
        agent: AgentId,
        filter: &InboxFilter,
        after: Option<Cursor>,
        limit: i64,
    ) -> StoreResult<Vec<InboxRow>>;

    /// How many requests a filter matches in the agent's inbox.
    async fn count_inbox(&self, agent: AgentId, filter: &InboxFilter) -> StoreResult<i64>;

    /// One page and the total, together: by default both queries at once, on two
    /// connections; a backend may answer both from one pass (SQLite does for full-text
    /// searches, where matching is the expensive part).
    async fn inbox_page(
        &self,
        agent: AgentId,
        filter: &InboxFilter,
        after: Option<Cursor>,
        limit: i64,
    ) -> StoreResult<(Vec<InboxRow>, i64)> {
        page_and_count(self, agent, filter, after, limit).await
    }

    /// A request, if it belongs to one of the agent's tenants.
    async fn get_agent_request(
        &self,
        agent: AgentId,
        id: RequestId,
    ) -> StoreResult<Option<RequestRecord>>;

    /// Other requests of the same citizen within the agent's tenants (the 360° view).
    async fn citizen_requests_for_agent(
        &self,
        agent: AgentId,
        citizen: CitizenId,
    ) -> StoreResult<Vec<InboxRow>>;

    /// Applies a status change with its records, atomically; `Conflict` if the status changed
    /// meanwhile (two agents on the same request).
    async fn change_status(
        &self,
        change: &StatusChange,
        records: &SubmissionRecords,
    ) -> StoreResult<()>;

    /// Assigns requests (of the agent's tenants only) to `assignee` (or nobody), with their
    /// records; returns how many were assigned.
    async fn assign(
        &self,
        agent: AgentId,
        requests: &[RequestId],
        assignee: Option<AgentId>,
        records: &SubmissionRecords,
    ) -> StoreResult<u64>;

    /// A tenant's reply templates.
    async fn list_reply_templates(&self, tenant: TenantId) -> StoreResult<Vec<ReplyTemplate>>;

    /// Adds a reply template.
    async fn add_reply_template(&self, template: &ReplyTemplate) -> StoreResult<()>;

    /// An agent's saved views.
    async fn list_saved_views(&self, agent: AgentId) -> StoreResult<Vec<SavedView>>;

    /// Saves a view.
    async fn add_saved_view(&self, view: &SavedView) -> StoreResult<()>;

    /// Deletes one of the agent's saved views.
    async fn delete_saved_view(&self, agent: AgentId, id: uuid::Uuid) -> StoreResult<()>;

    /// Whether a file belongs to a request of the agent's tenants (answers or messages).
    async fn agent_can_read_file(
        &self,
        agent: AgentId,
        file: guichet_domain::FileId,
    ) -> StoreResult<bool>;

    /// Creates an agent with memberships. `Conflict { constraint: "agents_email_key" }` if the
    /// address is taken.
    async fn add_agent(&self, agent: &crate::NewAgent) -> StoreResult<()>;

    /// Sets (adds or changes) an agent's role in a tenant.
    async fn set_membership(&self, agent: AgentId, tenant: TenantId, role: Role)
    -> StoreResult<()>;

    /// Removes an agent from a tenant; refuses (`Conflict { constraint: "last_admin" }`) to
    /// remove or demote the tenant's last administrator.
    async fn remove_membership(&self, agent: AgentId, tenant: TenantId) -> StoreResult<()>;

    /// How many administrators a tenant has.
    async fn count_tenant_admins(&self, tenant: TenantId) -> StoreResult<i64>;

    /// Sets an agent's password hash and ends their sessions.
    async fn set_agent_password(&self, agent: AgentId, password_hash: &str) -> StoreResult<()>;

    /// Deletes a tenant's reply template.
    async fn delete_reply_template(&self, tenant: TenantId, id: uuid::Uuid) -> StoreResult<()>;

    /// Every event chain, by tenant then lane: those with a head, and any lane that events name
    /// without one (which only an alteration of the database can make).
    async fn list_chains(&self) -> StoreResult<Vec<ChainHead>>;

    /// A chain's events in order, from `after_seq` (exclusive).
    async fn list_chain_events(
        &self,
        tenant: TenantId,
        lane: i32,
        after_seq: i64,
        limit: i64,
    ) -> StoreResult<Vec<Event>>;
}

/// An event chain (a tenant's lane, `guichet_domain::audit`) and its recorded head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainHead {
    /// Tenant.
    pub tenant: TenantId,
    /// Lane.
    pub lane: i32,
    /// The last event's seq and hash as the head records them; `None` for a lane that events
    /// name but that has no head.
    pub head: Option<(i64, String)>,
}
