//! Tenant resolution by custom domain: `https://demarches.saint-aubin.fr/` serves the same
//! pages as `/saint-aubin/` on the platform's own host. The path is rewritten before routing,
//! and a `DomainTenant` extension tells pages to write links without the slug prefix.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::http::{Uri, header};
use axum::response::{IntoResponse, Response};

use crate::{AppError, AppState};

/// Paths that belong to the platform whatever the host.
const GLOBAL_PREFIXES: &[&str] =
    &["/static/", "/healthz", "/metrics", "/csp-report", "/robots.txt", "/api/"];

/// How long a host lookup is remembered. Short, so that an administrator's change shows soon;
/// long enough that a busy portal does not query the tenant table on every request.
const TTL: Duration = Duration::from_secs(30);

/// Bound on remembered hosts, so that requests with random Host headers cannot grow memory.
const CAPACITY: usize = 10_000;

/// Marks a request that arrived on a tenant's own domain.
#[derive(Clone, Debug)]
pub struct DomainTenant;

/// Remembered host → slug lookups (including misses).
#[derive(Default)]
pub(crate) struct DomainCache {
    entries: Mutex<HashMap<String, (Instant, Option<String>)>>,
}

impl DomainCache {
    fn get(&self, host: &str) -> Option<Option<String>> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.get(host).filter(|(at, _)| at.elapsed() < TTL).map(|(_, slug)| slug.clone())
    }

    fn put(&self, host: String, slug: Option<String>) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= CAPACITY {
            entries.retain(|_, (at, _)| at.elapsed() < TTL);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        entries.insert(host, (Instant::now(), slug));
    }
}

/// The request's host name, lowercase, without port.
fn host_of(request: &Request) -> Option<String> {
    let raw = request.headers().get(header::HOST)?.to_str().ok()?;
    let host = if raw.starts_with('[') {
        raw.split_inclusive(']').next().unwrap_or(raw)
    } else {
        raw.rsplit_once(':').map_or(raw, |(h, _)| h)
    };
    Some(host.trim_end_matches('.').to_ascii_lowercase())
}

/// Rewrites `/x` to `/{slug}/x`, and marks the request, when the Host is a tenant's custom
/// domain; a failed lookup is the request's answer.
pub(crate) async fn resolve_custom_domain(
    state: &AppState,
    request: &mut Request,
) -> Result<(), Response> {
    let Some(host) = host_of(request) else { return Ok(()) };
    let path = request.uri().path();
    if state.config.platform_hosts.contains(&host)
        || host.parse::<std::net::IpAddr>().is_ok()
        || GLOBAL_PREFIXES.iter().any(|p| path.starts_with(p))
    {
        return Ok(());
    }
    let slug = match state.domains.get(&host) {
        Some(slug) => slug,
        None => match state.store.find_tenant_by_domain(&host).await {
            Ok(tenant) => {
                let slug = tenant.map(|t| t.slug.into_inner());
                state.domains.put(host, slug.clone());
                slug
            }
            Err(e) => return Err(AppError::from(e).into_response()),
        },
    };
    if let Some(slug) = slug {
        let path = request.uri().path();
        let rewritten = match request.uri().query() {
            Some(q) => format!("/{slug}{path}?{q}"),
            None => format!("/{slug}{path}"),
        };
        if let Ok(uri) = rewritten.parse::<Uri>() {
            *request.uri_mut() = uri;
            request.extensions_mut().insert(DomainTenant);
        }
    }
    Ok(())
}
