//! Services (démarches) of tenants.

use async_trait::async_trait;
use guichet_domain::form::FormDefinition;
use guichet_domain::{ServiceId, TenantId};
use time::OffsetDateTime;

use crate::StoreResult;

/// A service as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Service {
    /// Identifier.
    pub id: ServiceId,
    /// The tenant that provides and handles it.
    pub tenant_id: TenantId,
    /// URL slug, unique within the tenant.
    pub slug: String,
    /// The template it was made from.
    pub template: Option<String>,
    /// Title.
    pub title: String,
    /// Catalogue category.
    pub category: String,
    /// One sentence.
    pub summary: String,
    /// What it is for.
    pub description: String,
    /// What the citizen needs.
    pub requirements: Vec<String>,
    /// Expected delay told to citizens.
    pub delay_text: String,
    /// "sva", "svr" or "none".
    pub regime: String,
    /// Legal delay, in `DelayLength` stored form ("months:2").
    pub delay: String,
    /// AEE first, ARE after an agent's check.
    pub prior_check: bool,
    /// Reference prefix.
    pub reference_prefix: String,
    /// The form.
    pub form: FormDefinition,
    /// The service's own workflow; `None` uses the default one.
    pub workflow: Option<guichet_domain::workflow::Workflow>,
    /// Shown in the catalogue.
    pub enabled: bool,
    /// Creation time.
    pub created_at: OffsetDateTime,
}

impl Service {
    /// The workflow in force (the service's own, or the default).
    pub fn workflow(&self) -> guichet_domain::workflow::Workflow {
        self.workflow.clone().unwrap_or_default()
    }
}

/// Services.
#[async_trait]
pub trait ServiceStore {
    /// Adds a service. `Conflict { constraint: "services_tenant_id_slug_key" }` if the slug is taken.
    async fn add_service(&self, service: &Service) -> StoreResult<()>;

    /// A service by id.
    async fn get_service(&self, id: ServiceId) -> StoreResult<Service>;

    /// A service by tenant and slug.
    async fn find_service(&self, tenant: TenantId, slug: &str) -> StoreResult<Option<Service>>;

    /// Enabled services of these tenants (a commune and its EPCI), by category then title.
    async fn list_services(&self, tenants: &[TenantId]) -> StoreResult<Vec<Service>>;
}

impl Service {
    /// A tenant's service made from a shipped template, enabled.
    pub fn from_template(
        template: &guichet_domain::catalogue::ServiceTemplate,
        tenant_id: TenantId,
        now: OffsetDateTime,
    ) -> Self {
        Self {
            id: ServiceId::new(),
            tenant_id,
            slug: template.key.clone(),
            template: Some(template.key.clone()),
            title: template.title.clone(),
            category: template.category.clone(),
            summary: template.summary.clone(),
            description: template.description.clone(),
            requirements: template.requirements.clone(),
            delay_text: template.delay_text.clone(),
            regime: template.regime.clone(),
            delay: template.delay.clone(),
            prior_check: template.prior_check,
            reference_prefix: template.reference_prefix.clone(),
            form: template.form.clone(),
            workflow: None,
            enabled: true,
            created_at: now,
        }
    }
}
