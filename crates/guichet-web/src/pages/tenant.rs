//! A tenant's portal home page and its theme.

use askama::Template;
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use guichet_domain::Slug;
use guichet_store::Tenant;

use crate::host::DomainTenant;
use crate::pages::{Layout, render, tenant_base};
use crate::{AppError, AppState};

/// Finds the tenant named in the path; an invalid or unknown slug is a 404.
pub(crate) async fn load_tenant(
    state: &AppState,
    slug: &str,
) -> Result<std::sync::Arc<Tenant>, AppError> {
    let slug = Slug::parse(slug).map_err(|_| AppError::NotFound)?;
    crate::cache::tenant(state, &slug).await?.ok_or(AppError::NotFound)
}

#[derive(Template)]
#[template(path = "tenant_home.html")]
struct TenantHome {
    layout: Layout,
    base: String,
    query: String,
    groups: Vec<crate::pages::catalogue::Group>,
    tenant: std::sync::Arc<Tenant>,
    parent: Option<(Tenant, String)>,
    members: Vec<(Tenant, String)>,
}

/// `GET /{tenant}/`
pub(crate) async fn tenant_home(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    domain: Option<Extension<DomainTenant>>,
) -> Result<Response, AppError> {
    let tenant = load_tenant(&state, &slug).await?;
    let base = tenant_base(&tenant, domain.as_deref());
    // Links to other tenants always use platform paths: their own domains are theirs to share.
    let parent = match tenant.parent_id {
        Some(id) => {
            let p = crate::cache::tenant_by_id(&state, id).await?;
            let href = format!("/{}/", p.slug);
            Some((p, href))
        }
        None => None,
    };
    let members = state
        .store
        .list_member_tenants(tenant.id)
        .await?
        .into_iter()
        .map(|m| {
            let href = format!("/{}/", m.slug);
            (m, href)
        })
        .collect::<Vec<_>>();
    let mut members = members;
    members.sort_by_key(|(m, _)| crate::pages::collation_key(&m.name));
    let groups = crate::pages::catalogue::catalogue(&state, &tenant, "").await?;
    let layout = Layout::tenant("Accueil", &tenant, &base);
    render(&TenantHome { layout, base, query: String::new(), groups, tenant, parent, members })
}

/// `GET /{tenant}` → `/{tenant}/` (relative links need the trailing slash).
pub(crate) async fn redirect_to_slash(
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> Result<Redirect, AppError> {
    let tenant = load_tenant(&state, &slug).await?;
    Ok(Redirect::permanent(&format!("/{}/", tenant.slug)))
}

/// `GET /{tenant}/theme.css`: the tenant's colours as CSS custom properties. A stylesheet
/// rather than an inline `style` so that the Content-Security-Policy can forbid inline styles.
pub(crate) async fn theme_css(
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> Result<Response, AppError> {
    let tenant = load_tenant(&state, &slug).await?;
    // `Colour` is validated as #rrggbb, so it is safe to write into CSS.
    let css = format!(":root {{ --brand: {}; }}\n", tenant.branding.primary_colour);
    Ok((
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        css,
    )
        .into_response())
}
