//! Dashboard figures, aggregated in the database from the same request rows the inbox reads
//! (their timing columns are kept by the store as events happen and checked against the
//! events by `guichet stats verify`), and each tenant's choice about its public page.

use async_trait::async_trait;
use guichet_domain::metrics::Timing;
use guichet_domain::request::Channel;
use guichet_domain::{AgentId, RequestId, ServiceId, TenantId};
use time::OffsetDateTime;

use crate::StoreResult;

/// What a dashboard looks at: requests of `tenants` (the handling tenants in scope),
/// optionally one citizen's commune, service and channel, over `[from, to)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DashboardQuery {
    /// Handling tenants in scope.
    pub tenants: Vec<TenantId>,
    /// The citizen's commune (`commune_tenant_id`, or the handling commune).
    pub commune: Option<TenantId>,
    /// One service.
    pub service: Option<ServiceId>,
    /// One channel.
    pub channel: Option<Channel>,
    /// Start of the period (included).
    pub from: OffsetDateTime,
    /// End of the period (excluded).
    pub to: OffsetDateTime,
}

/// Requests submitted in the period, per service, channel and commune.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeCount {
    /// Service.
    pub service: ServiceId,
    /// Channel of origin.
    pub channel: Channel,
    /// The citizen's commune (or the handling tenant).
    pub commune: TenantId,
    /// How many.
    pub n: i64,
}

/// Nearest-rank median and 90th percentile of durations, in microseconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Percentiles {
    /// The service, or `None` for all services together.
    pub service: Option<ServiceId>,
    /// Values counted.
    pub n: i64,
    /// Median.
    pub median_us: i64,
    /// 90th percentile.
    pub p90_us: i64,
}

/// Requests open at a moment, by age, and against their legal deadline.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Open (not closed) requests.
    pub open: i64,
    /// Of which submitted less than 7 days before.
    pub under_7_days: i64,
    /// 7 to 30 days.
    pub under_30_days: i64,
    /// 30 to 90 days.
    pub under_90_days: i64,
    /// 90 days or more.
    pub over_90_days: i64,
    /// Past their deemed-decision date.
    pub overdue: i64,
    /// Deemed-decision date within the next days.
    pub due_soon: i64,
}

/// Acknowledgements of receipt of the requests submitted in the period.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Acknowledgements {
    /// Requests that had to be acknowledged.
    pub due: i64,
    /// Acknowledged by the legal deadline.
    pub in_time: i64,
}

/// A tenant's public service-level page setting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicStats {
    /// Shown or not.
    pub enabled: bool,
    /// Why it was switched off (kept when switched on again).
    pub reason: Option<String>,
    /// Who changed it last.
    pub changed_by: Option<AgentId>,
    /// When.
    pub changed_at: OffsetDateTime,
}

/// Dashboard queries.
#[async_trait]
pub trait DashboardStore {
    /// Requests submitted in the period, per service, channel and commune.
    async fn volume_counts(&self, q: &DashboardQuery) -> StoreResult<Vec<VolumeCount>>;

    /// Requests submitted in the period per hour (hours since the Unix epoch, UTC), for
    /// bucketing into days and weeks of legal (Paris) time by the caller.
    async fn volume_by_hour(&self, q: &DashboardQuery) -> StoreResult<Vec<(i64, i64)>>;

    /// Processing times of the requests closed in the period: per service, and overall.
    async fn processing_times(&self, q: &DashboardQuery) -> StoreResult<Vec<Percentiles>>;

    /// First-response times of the requests submitted in the period that got one (overall),
    /// and how many submitted in the period still have none.
    async fn first_response_times(
        &self,
        q: &DashboardQuery,
    ) -> StoreResult<(Option<Percentiles>, i64)>;

    /// Requests open at `at` (the period filters apply but not its dates), by age, and
    /// against their deadline (`due_soon_days` ahead).
    async fn backlog(
        &self,
        q: &DashboardQuery,
        at: OffsetDateTime,
        due_soon_days: i64,
    ) -> StoreResult<Backlog>;

    /// Acknowledgements of the requests submitted in the period.
    async fn acknowledgements(&self, q: &DashboardQuery) -> StoreResult<Acknowledgements>;

    /// The tenant's public page setting (`None`: never changed, shown by default).
    async fn public_stats(&self, tenant: TenantId) -> StoreResult<Option<PublicStats>>;

    /// Changes it, with the event that records the change, atomically.
    async fn set_public_stats(
        &self,
        tenant: TenantId,
        setting: &PublicStats,
        records: &crate::SubmissionRecords,
    ) -> StoreResult<()>;

    /// Requests in id order after `after`, for verification: id, service, stored timing.
    async fn timings(
        &self,
        after: Option<RequestId>,
        limit: i64,
    ) -> StoreResult<Vec<(RequestId, ServiceId, Timing)>>;

    /// The timeline events (views left out) of the requests whose ids lie in `[first, last]`,
    /// in request then chain order: one read per batch of `timings` for verification.
    async fn timeline_events_between(
        &self,
        first: RequestId,
        last: RequestId,
    ) -> StoreResult<Vec<crate::Event>>;

    /// Overwrites a request's timing (`guichet stats rebuild`).
    async fn set_timing(&self, id: RequestId, timing: &Timing) -> StoreResult<()>;

    /// Phase periods whose copy of their request's dimensions (service, channel, commune,
    /// submission time; the deemed-decision date for the running one) differs from the request;
    /// with `repair`, copies them again. Returns how many differed.
    async fn period_drift(&self, repair: bool) -> StoreResult<u64>;
}
