//! Guichet's storage contract: one trait per aggregate, the models they exchange, `StoreError`.
//!
//! Both backends (`guichet-store-sqlite`, `guichet-store-postgres`) implement every trait, and
//! the conformance suite (`guichet-store-sqlite/tests` and friends, run through the `guichet`
//! crate's integration tests) replays the same stories on both. Methods are business
//! operations: each is atomic, and a method that causes background work takes the jobs to
//! enqueue so that they commit or roll back with the write (a crash can never lose the e-mail
//! of a committed submission, nor send one for a rolled-back write).
//!
//! The web and jobs crates hold an `Arc<dyn Store>`; only the binary names a backend.

#![forbid(unsafe_code)]

mod accounts;
mod backoffice;
mod channels;
mod dashboards;
mod jobs;
mod outbox;
pub mod records;
mod requests;
mod services;
mod tenants;
mod territory;

use async_trait::async_trait;

pub use accounts::{
    AccountStore, AccountsVersion, Citizen, NewCitizenAccount, NewToken, Profile, Session,
    SessionStore, TokenPurpose,
};
pub use backoffice::{
    Agent, AssigneeFilter, BackOfficeStore, ChainHead, Cursor, DeadlineFilter, InboxFilter,
    InboxRow, InboxSort, Membership, ReplyTemplate, SavedView, StatusChange, page_and_count,
};
pub use channels::{
    ChannelStore, Endpoint, ImapPosition, InboundFile, InboundMessage, InboundUpdate, NewInbound,
    NewSms, OutboxSms, SEND_SMS_JOB,
};
pub use dashboards::{
    Acknowledgements, Backlog, DashboardQuery, DashboardStore, Percentiles, PublicStats,
    VolumeCount,
};
pub use jobs::{Job, JobCounts, JobStore, NewJob};
pub use outbox::{NewEmail, OutboxEmail, OutboxStore, SEND_EMAIL_JOB};
pub use requests::{
    Document, Draft, Event, FileRecord, NewDocument, NewEvent, NewRequest, RecordsBuilder,
    RequestRecord, RequestStore, RequestSummary, SubmissionRecords, Submitted,
};
pub use services::{Service, ServiceStore};
pub use tenants::{NewTenant, Tenant, TenantStore};
pub use territory::{ImportOutcome, NewAgent, NewCitizen, TerritoryImport, TerritoryStore};

/// What can go wrong in storage, in terms callers can act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row asked for does not exist (or is not visible to the caller).
    #[error("not found")]
    NotFound,
    /// A uniqueness rule refused the write; `constraint` is the constraint's name, identical on
    /// both backends (migrations name them explicitly).
    #[error("conflict on {constraint}")]
    Conflict {
        /// Name of the violated constraint.
        constraint: String,
    },
    /// The database could not be reached.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Stored data could not be read back into a domain value (a bug or a manual edit).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// Anything else from the driver.
    #[error("database error: {0}")]
    Other(String),
}

/// Shorthand for store results.
pub type StoreResult<T> = Result<T, StoreError>;

/// Everything the application needs from storage.
#[async_trait]
pub trait Store:
    TenantStore
    + JobStore
    + TerritoryStore
    + AccountStore
    + SessionStore
    + ServiceStore
    + RequestStore
    + OutboxStore
    + BackOfficeStore
    + ChannelStore
    + DashboardStore
    + Send
    + Sync
    + 'static
{
    /// "sqlite" or "postgres", for logs, `/healthz` and test reports.
    fn backend(&self) -> &'static str;

    /// Checks that the database answers (used by `/healthz`).
    async fn ping(&self) -> StoreResult<()>;

    /// Closes the pool, letting in-flight queries finish (graceful shutdown).
    async fn close(&self);
}
