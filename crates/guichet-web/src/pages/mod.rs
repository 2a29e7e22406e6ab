//! Page handlers, one module per resource; each page's template struct lives beside its handler.

pub(crate) mod account;
pub(crate) mod admin;
pub(crate) mod agents;
pub(crate) mod api;
pub(crate) mod backoffice;
pub(crate) mod catalogue;
pub(crate) mod contacts;
pub(crate) mod counter;
pub(crate) mod dashboard;
pub(crate) mod demarche;
pub(crate) mod demo;
pub(crate) mod home;
pub(crate) mod legal;
pub(crate) mod mine;
pub(crate) mod ops;
pub(crate) mod service_levels;
pub(crate) mod tenant;

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use guichet_store::Tenant;

use crate::AppError;
use crate::assets::stylesheet_url;
use crate::host::DomainTenant;

/// What the base layout needs on every page.
pub(crate) struct Layout {
    /// `<title>` (the page's own title; the site name is appended).
    pub title: String,
    /// Site name: the tenant's name on its portal, the platform's name elsewhere.
    pub site_name: String,
    /// Link of the site name in the header.
    pub home_href: String,
    /// Stylesheet URL.
    pub css: String,
    /// Per-tenant theme stylesheet, if on a tenant portal.
    pub theme_css: Option<String>,
    /// Prefix of the legal pages linked from the footer (the tenant's, or the platform's).
    pub legal_base: String,
}

impl Layout {
    /// Layout of a platform page.
    pub fn platform(title: impl Into<String>, platform_name: &str) -> Self {
        Self {
            title: title.into(),
            site_name: platform_name.to_owned(),
            home_href: "/".to_owned(),
            css: stylesheet_url(),
            theme_css: None,
            legal_base: String::new(),
        }
    }

    /// Layout of a tenant portal page; `base` is the path prefix of the tenant's pages.
    pub fn tenant(title: impl Into<String>, tenant: &Tenant, base: &str) -> Self {
        Self {
            title: title.into(),
            site_name: tenant.name.clone(),
            home_href: format!("{base}/"),
            css: stylesheet_url(),
            theme_css: Some(format!("{base}/theme.css")),
            legal_base: base.to_owned(),
        }
    }
}

/// Path prefix of a tenant's pages: empty on its own domain, `/{slug}` on the platform host.
pub(crate) fn tenant_base(tenant: &Tenant, domain: Option<&DomainTenant>) -> String {
    match domain {
        Some(_) => String::new(),
        None => format!("/{}", tenant.slug),
    }
}

/// A sort key for French names: accents folded and case ignored, so "Épinay" sorts among the
/// E's and not after "Villeneuve" as byte order would have it.
pub(crate) fn collation_key(name: &str) -> String {
    name.chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'à' | 'â' | 'ä' => 'a',
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'î' | 'ï' => 'i',
            'ô' | 'ö' => 'o',
            'ù' | 'û' | 'ü' => 'u',
            'ç' => 'c',
            'ÿ' => 'y',
            '-' | '\'' => ' ',
            c => c,
        })
        .collect()
}

/// Percent-encodes a query-string value.
pub(crate) fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A safe local return path: only same-site absolute paths, never `//host` or a URL.
pub(crate) fn safe_return(path: Option<&str>) -> String {
    match path {
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && !p.contains('\\')
                && !p.contains("://") =>
        {
            p.to_owned()
        }
        _ => "/compte/".to_owned(),
    }
}

/// Renders a template as an HTML response.
pub(crate) fn render(page: &impl Template) -> Result<Response, AppError> {
    Ok(Html(page.render()?).into_response())
}

/// The router's fallback: a French 404 page.
pub(crate) async fn not_found() -> Response {
    crate::error::error_page(
        StatusCode::NOT_FOUND,
        "Page introuvable",
        "La page demandée n'existe pas ou plus. Vérifiez l'adresse, ou revenez à l'accueil.",
    )
}

/// Escapes text for HTML written outside templates (stored document bodies).
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    escape_into(&mut out, text);
    out
}

/// [`escape`], appended to `out`: the runs between special characters are copied whole (a kept
/// page's values, tokens mostly, have none).
pub(crate) fn escape_into(out: &mut String, text: &str) {
    let mut rest = text;
    while let Some(at) = rest.find(['&', '<', '>', '"', '\'']) {
        out.push_str(&rest[..at]);
        out.push_str(match rest.as_bytes()[at] {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            _ => "&#39;",
        });
        rest = &rest[at + 1..];
    }
    out.push_str(rest);
}
