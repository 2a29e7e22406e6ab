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
    pub services: Vec<Arc<Listed>>,
}

/// A service as the catalogue lists it, with what its search looks through.
pub(crate) struct Listed {
    pub slug: String,
    pub title: String,
    pub summary: String,
    pub category: String,
    /// Title, summary, category and description, accents folded, case ignored.
    haystack: String,
}

/// The services offered and open on `tenant`'s portal (its own and its EPCI's), in catalogue
/// order: by category, then title, in French order.
pub(crate) fn listing(services: Vec<Service>) -> Vec<Arc<Listed>> {
    let mut listed: Vec<(String, String, Listed)> = services
        .into_iter()
        .map(|s| {
            let haystack = collation_key(&format!(
                "{} {} {} {}",
                s.title, s.summary, s.category, s.description
            ));
            let keys = (collation_key(&s.category), collation_key(&s.title));
            let l = Listed {
                slug: s.slug,
                title: s.title,
                summary: s.summary,
                category: s.category,
                haystack,
            };
            (keys.0, keys.1, l)
        })
        .collect();
    listed.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    listed.into_iter().map(|(_, _, l)| Arc::new(l)).collect()
}

/// The services offered on a tenant's portal, grouped by category; with a query, those whose
/// every word appears in their title, summary, category or description.
pub(crate) async fn catalogue(
    state: &AppState,
    tenant: &Tenant,
    query: &str,
) -> Result<Vec<Group>, AppError> {
    let words: Vec<String> = collation_key(query).split_whitespace().map(str::to_owned).collect();
    let listed = crate::cache::catalogue(state, tenant).await?;
    let mut groups: Vec<Group> = Vec::new();
    for s in listed.iter().filter(|s| words.iter().all(|w| s.haystack.contains(w.as_str()))) {
        match groups.last_mut() {
            Some(g) if g.category == s.category => g.services.push(Arc::clone(s)),
            _ => groups.push(Group { category: s.category.clone(), services: vec![Arc::clone(s)] }),
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
    /// A citizen is logged in: the link opens the form (navigation: nothing is written until
    /// its first page is posted).
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
