//! Pages every portal must publish: the accessibility statement in the RGAA format (reachable
//! from every page, with the compliance mention in every footer), and the terms of use of the
//! téléservices, which list them and the addresses used for acknowledgements (CRPA L112-9,
//! R112-11-1).

use askama::Template;
use axum::Extension;
use axum::extract::{Path, State};
use axum::response::Response;
use guichet_store::Tenant;

use crate::host::DomainTenant;
use crate::pages::catalogue::{Group, catalogue};
use crate::pages::tenant::load_tenant;
use crate::pages::{Layout, render, tenant_base};
use crate::{AppError, AppState};

#[derive(Template)]
#[template(path = "legal/accessibility.html")]
struct AccessibilityPage {
    layout: Layout,
    entity: String,
    contact_email: String,
    contact_service: String,
}

#[derive(Template)]
#[template(path = "legal/terms.html")]
struct TermsPage {
    layout: Layout,
    entity: String,
    tenant: Option<std::sync::Arc<Tenant>>,
    groups: Vec<Group>,
    base: String,
    from: String,
}

/// `GET /{tenant}/accessibilite`
pub(crate) async fn tenant_accessibility(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    domain: Option<Extension<DomainTenant>>,
) -> Result<Response, AppError> {
    let tenant = load_tenant(&state, &slug).await?;
    let base = tenant_base(&tenant, domain.as_deref());
    render(&AccessibilityPage {
        layout: Layout::tenant("Déclaration d'accessibilité", &tenant, &base),
        contact_email: tenant.contact.email.to_string(),
        contact_service: tenant.contact.service_name.clone(),
        entity: tenant.name.clone(),
    })
}

/// `GET /accessibilite` (the platform's own pages: account, back-office).
pub(crate) async fn platform_accessibility(
    State(state): State<AppState>,
) -> Result<Response, AppError> {
    render(&AccessibilityPage {
        layout: Layout::platform("Déclaration d'accessibilité", &state.config.platform_name),
        entity: state.config.platform_name.clone(),
        contact_email: state.config.mail_from_address(),
        contact_service: format!("L'équipe de {}", state.config.platform_name),
    })
}

/// `GET /{tenant}/conditions-utilisation`
pub(crate) async fn tenant_terms(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    domain: Option<Extension<DomainTenant>>,
) -> Result<Response, AppError> {
    let tenant = load_tenant(&state, &slug).await?;
    let base = tenant_base(&tenant, domain.as_deref());
    let groups = catalogue(&state, &tenant, "").await?;
    render(&TermsPage {
        layout: Layout::tenant("Conditions d'utilisation", &tenant, &base),
        entity: tenant.name.clone(),
        tenant: Some(tenant),
        groups,
        base,
        from: state.config.mail_from_address(),
    })
}

/// `GET /conditions-utilisation`
pub(crate) async fn platform_terms(State(state): State<AppState>) -> Result<Response, AppError> {
    render(&TermsPage {
        layout: Layout::platform("Conditions d'utilisation", &state.config.platform_name),
        entity: state.config.platform_name.clone(),
        tenant: None,
        groups: Vec::new(),
        base: String::new(),
        from: state.config.mail_from_address(),
    })
}
