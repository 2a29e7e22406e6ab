//! Bulk loading of a territory (the demo, imports, the benchmark generator).

use async_trait::async_trait;
use guichet_domain::{AgentId, CitizenId, Email, InseeCode, Phone, Role, TenantId};

use crate::{NewTenant, StoreResult};

/// A citizen account to create.
#[derive(Clone, Debug)]
pub struct NewCitizen {
    /// Identifier.
    pub id: CitizenId,
    /// Login e-mail.
    pub email: Email,
    /// PHC string of an argon2id hash.
    pub password_hash: String,
    /// Given name.
    pub given_name: String,
    /// Family name.
    pub family_name: String,
    /// Mobile phone.
    pub phone: Option<Phone>,
    /// INSEE code of the commune of residence (routes EPCI services).
    pub insee_code: Option<InseeCode>,
    /// Whether the e-mail is already verified (true for imported accounts).
    pub email_verified: bool,
}

/// An agent account to create with its memberships.
#[derive(Clone, Debug)]
pub struct NewAgent {
    /// Identifier.
    pub id: AgentId,
    /// Login e-mail.
    pub email: Email,
    /// PHC string of an argon2id hash.
    pub password_hash: String,
    /// Name shown to colleagues.
    pub display_name: String,
    /// Tenants and roles.
    pub memberships: Vec<(TenantId, Role)>,
}

/// A whole territory loaded in one transaction.
#[derive(Clone, Debug, Default)]
pub struct TerritoryImport {
    /// Name recorded once loaded ("demo-v1"); importing the same name again changes nothing.
    pub name: String,
    /// Tenants, parents before children.
    pub tenants: Vec<NewTenant>,
    /// Agents.
    pub agents: Vec<NewAgent>,
    /// Citizens.
    pub citizens: Vec<NewCitizen>,
    /// Services of the tenants.
    pub services: Vec<crate::Service>,
}

/// What an import did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportOutcome {
    /// Everything was inserted.
    Loaded,
    /// An import of that name had already been loaded; nothing changed.
    AlreadyLoaded,
}

/// Bulk loading.
#[async_trait]
pub trait TerritoryStore {
    /// Loads a territory atomically, once per import name.
    async fn import_territory(&self, import: &TerritoryImport) -> StoreResult<ImportOutcome>;

    /// Whether an import of that name was loaded.
    async fn has_import(&self, name: &str) -> StoreResult<bool>;

    /// Inserts many requests at once with their references already chosen (the benchmark
    /// generator), in one transaction, with their `events` (their histories: messages,
    /// status changes, acknowledgements), chained in the order given onto lane 0 of their
    /// tenants' chains (`records::chain_on_lane_zero`: the generator is the only writer), and
    /// raises the reference counters to match. The requests' timing columns are those of their
    /// `history`; the events are not replayed into them.
    async fn bulk_insert_requests(
        &self,
        requests: &[(crate::NewRequest, String)],
        events: &[crate::NewEvent],
    ) -> StoreResult<()>;
}
