//! A portal's catalogue: the tenant's own services plus its EPCI's (competence), grouped by
//! category and searchable, and a page per service.

use std::sync::Arc;

use askama::Template;
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use guichet_domain::deadline::{DelayLength, LegalDelay, Regime};
use guichet_store::{Service, Tenant};
use serde::Deserialize;

use crate::host::DomainTenant;
use crate::pages::tenant::load_tenant;
use crate::pages::{Layout, collation_key, render, tenant_base};
use crate::session::Visitor;
use crate::{AppError, AppState};

/// A category and its services.
pub(crate) struct Group {
    pub category: String,
    pub services: Vec<Service>,
}

/// The services offered on a tenant's portal, grouped by category.
pub(crate) async fn catalogue(
    state: &AppState,
    tenant: &Tenant,
    query: &str,
) -> Result<Vec<Group>, AppError> {
    let mut tenants = vec![tenant.id];
    tenants.extend(tenant.parent_id);
    let words: Vec<String> = collation_key(query).split_whitespace().map(str::to_owned).collect();
    let mut services = state.store.list_services(&tenants).await?;
    services.retain(|s| {
        let hay =
            collation_key(&format!("{} {} {} {}", s.title, s.summary, s.category, s.description));
        words.iter().all(|w| hay.contains(w.as_str()))
    });
    services.sort_by(|a, b| {
        collation_key(&a.category)
            .cmp(&collation_key(&b.category))
            .then_with(|| collation_key(&a.title).cmp(&collation_key(&b.title)))
    });
    let mut groups: Vec<Group> = Vec::new();
    for s in services {
        match groups.last_mut() {
            Some(g) if g.category == s.category => g.services.push(s),
            _ => groups.push(Group { category: s.category.clone(), services: vec![s] }),
        }
    }
    Ok(groups)
}

#[derive(Deserialize)]
pub(crate) struct Search {
    q: Option<String>,
}

#[derive(Template)]
#[template(path = "catalogue/search.html")]
struct SearchPage {
    layout: Layout,
    base: String,
    query: String,
    groups: Vec<Group>,
    count: usize,
}

/// `GET /{tenant}/demarches?q=`
pub(crate) async fn search(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    domain: Option<Extension<DomainTenant>>,
    Query(q): Query<Search>,
) -> Result<Response, AppError> {
    let tenant = load_tenant(&state, &slug).await?;
    let base = tenant_base(&tenant, domain.as_deref());
    let query: String = q.q.unwrap_or_default().trim().chars().take(100).collect();
    let groups = catalogue(&state, &tenant, &query).await?;
    let count = groups.iter().map(|g| g.services.len()).sum();
    let title = if query.is_empty() {
        "Toutes les démarches".to_owned()
    } else {
        format!("Recherche « {query} »")
    };
    render(&SearchPage {
        layout: Layout::tenant(title, &tenant, &base),
        base,
        query,
        groups,
        count,
    })
}

/// Finds a service offered on a portal: the tenant's own, or its EPCI's.
pub(crate) async fn find_offered(
    state: &AppState,
    tenant: &Tenant,
    slug: &str,
) -> Result<Arc<Service>, AppError> {
    if let Some(s) = crate::cache::tenant_service(state, tenant.id, slug).await? {
        return Ok(s);
    }
    if let Some(parent) = tenant.parent_id
        && let Some(s) = crate::cache::tenant_service(state, parent, slug).await?
    {
        return Ok(s);
    }
    Err(AppError::NotFound)
}

#[derive(Template)]
#[template(path = "catalogue/service.html")]
struct ServicePage {
    layout: Layout,
    base: String,
    service: Arc<Service>,
    provider: Option<String>,
    regime: String,
    /// A citizen is logged in: the button opens the form (a GET: nothing is written until its
    /// first page is posted).
    logged_in: bool,
    login_href: String,
}

/// `GET /{tenant}/demarches/{service}`
pub(crate) async fn service_page(
    State(state): State<AppState>,
    visitor: Visitor,
    Path((slug, service_slug)): Path<(String, String)>,
    domain: Option<Extension<DomainTenant>>,
) -> Result<Response, AppError> {
    let tenant = load_tenant(&state, &slug).await?;
    let base = tenant_base(&tenant, domain.as_deref());
    let service = find_offered(&state, &tenant, &service_slug).await?;
    if !service.enabled {
        return Err(AppError::NotFound);
    }
    let provider = if service.tenant_id == tenant.id {
        None
    } else {
        Some(crate::cache::tenant_by_id(&state, service.tenant_id).await?.name)
    };
    let regime = match (Regime::parse(&service.regime), DelayLength::parse(&service.delay)) {
        (Some(r @ (Regime::Sva | Regime::Svr)), Ok(length)) => LegalDelay::new(r, length).label(),
        _ => "Pas de décision implicite : le service vous répond directement.".to_owned(),
    };
    let here = format!("/{}/demarches/{}", tenant.slug, service.slug);
    let login_href = format!("/compte/connexion?retour={}", crate::pages::url_encode(&here));
    render(&ServicePage {
        layout: Layout::tenant(service.title.clone(), &tenant, &base),
        base,
        service,
        provider,
        regime,
        logged_in: visitor.citizen().is_some(),
        login_href,
    })
}
