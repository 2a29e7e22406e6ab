//! Tenants and their tree.

use async_trait::async_trait;
use guichet_domain::{Branding, InseeCode, Siren, Slug, TenantContact, TenantId, TenantKind};
use time::OffsetDateTime;

use crate::{NewJob, StoreResult};

/// A tenant as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tenant {
    /// Identifier.
    pub id: TenantId,
    /// URL slug (`/{slug}/`).
    pub slug: Slug,
    /// EPCI, commune or syndicate.
    pub kind: TenantKind,
    /// Official name ("Saint-Aubin-sur-Lys").
    pub name: String,
    /// The EPCI a commune belongs to.
    pub parent_id: Option<TenantId>,
    /// SIREN of the legal entity.
    pub siren: Siren,
    /// INSEE code, for communes.
    pub insee_code: Option<InseeCode>,
    /// Contact details used by acknowledgements.
    pub contact: TenantContact,
    /// Colours and logo.
    pub branding: Branding,
    /// A host name that serves this tenant's portal at its root ("demarches.saint-aubin.fr").
    pub custom_domain: Option<String>,
    /// When the tenant was created.
    pub created_at: OffsetDateTime,
}

/// A tenant to create. The id is chosen by the caller so that related rows can be built first.
#[derive(Clone, Debug)]
pub struct NewTenant {
    /// Identifier.
    pub id: TenantId,
    /// URL slug.
    pub slug: Slug,
    /// Kind.
    pub kind: TenantKind,
    /// Official name.
    pub name: String,
    /// Parent EPCI.
    pub parent_id: Option<TenantId>,
    /// SIREN.
    pub siren: Siren,
    /// INSEE code (communes).
    pub insee_code: Option<InseeCode>,
    /// Contact details.
    pub contact: TenantContact,
    /// Branding.
    pub branding: Branding,
    /// Custom host name, lowercase, without port.
    pub custom_domain: Option<String>,
}

/// Storage of tenants.
#[async_trait]
pub trait TenantStore {
    /// Creates a tenant and enqueues `jobs` in the same transaction.
    /// Fails with `Conflict { constraint }` naming `tenants_slug_key`, `tenants_siren_key` or
    /// `tenants_custom_domain_key` (unique constraints are named `{table}_{column}_key` on both backends).
    async fn add_tenant(&self, tenant: &NewTenant, jobs: &[NewJob]) -> StoreResult<Tenant>;

    /// A tenant by id.
    async fn get_tenant(&self, id: TenantId) -> StoreResult<Tenant>;

    /// A tenant by slug, or `None`.
    async fn find_tenant_by_slug(&self, slug: &Slug) -> StoreResult<Option<Tenant>>;

    /// The tenant serving a custom host name (compared lowercase), or `None`.
    async fn find_tenant_by_domain(&self, host: &str) -> StoreResult<Option<Tenant>>;

    /// Tenants with no parent (EPCIs and independent tenants), by name.
    async fn list_root_tenants(&self) -> StoreResult<Vec<Tenant>>;

    /// The members of a tenant (communes of an EPCI), by name.
    async fn list_member_tenants(&self, parent: TenantId) -> StoreResult<Vec<Tenant>>;

    /// How many tenants exist.
    async fn count_tenants(&self) -> StoreResult<i64>;
}
