//! Public pages kept rendered: a tenant's home, its catalogue, its service pages and theme, and
//! the platform's home page are the same for every anonymous visitor, are what citizens (and
//! crawlers) load most, and change only when the catalogue does. Each is rendered once and
//! served from memory for a few seconds, so a busy portal costs no database query and no
//! template per view.
//!
//! Freshness: a change made through this process (anything an agent posts) empties the cache at
//! once; a change made elsewhere (`guichet import`, another instance on the same PostgreSQL)
//! shows within [`TTL`]. Visitors with a session (a citizen logged in, a draft in progress)
//! always get a fresh page, since theirs can differ (the "start" button carries their CSRF token).
//!
//! The same holds for the tenants (by slug) and services (by id) that a citizen's own pages read
//! on every view (a draft's step, its summary): they are public, change rarely, and reading
//! them from the database was two of the five queries of a form page.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use guichet_domain::{ServiceId, Slug};
use guichet_store::{Service, Tenant};

use crate::host::DomainTenant;
use crate::{AppError, AppState};

/// A tenant by slug (`None`: no such tenant), kept for [`TTL`].
pub(crate) async fn tenant(state: &AppState, slug: &Slug) -> Result<Option<Tenant>, AppError> {
    let cache = &state.pages;
    let generation = cache.generation.load(Ordering::Relaxed);
    if let Some(t) = cache.tenants.get(slug.as_str(), generation) {
        return Ok(Some(t));
    }
    let found = state.store.find_tenant_by_slug(slug).await?;
    if let Some(t) = &found {
        cache.tenants.put(slug.as_str().to_owned(), generation, t.clone());
    }
    Ok(found)
}

/// A service by id, kept for [`TTL`].
pub(crate) async fn service(state: &AppState, id: ServiceId) -> Result<Service, AppError> {
    let cache = &state.pages;
    let generation = cache.generation.load(Ordering::Relaxed);
    let key = id.to_string();
    if let Some(s) = cache.services.get(&key, generation) {
        return Ok(s);
    }
    let service = state.store.get_service(id).await?;
    cache.services.put(key, generation, service.clone());
    Ok(service)
}

/// How long a page is served without being rendered again.
pub const TTL: Duration = Duration::from_secs(10);

/// Bound on the bytes kept, so that 35,000 tenants' pages cannot grow memory without limit.
const MAX_BYTES: usize = 8 * 1024 * 1024;

/// A page larger than this is not kept (it would evict many others).
const MAX_PAGE: usize = 512 * 1024;

/// First path segments that are never a tenant's public page.
const RESERVED: &[&str] = &["agents", "compte", "static", "api", "demo", "healthz", "metrics"];

struct Entry {
    at: Instant,
    generation: u64,
    headers: HeaderMap,
    body: Bytes,
}

/// Bound on the tenants and services kept.
const MAX_RECORDS: usize = 10_000;

/// Records kept by key, with the generation and time they were read at.
struct Memo<V> {
    entries: Mutex<HashMap<String, (Instant, u64, V)>>,
}

impl<V> Default for Memo<V> {
    fn default() -> Self {
        Self { entries: Mutex::default() }
    }
}

impl<V: Clone> Memo<V> {
    fn get(&self, key: &str, generation: u64) -> Option<V> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(key)
            .filter(|(at, g, _)| *g == generation && at.elapsed() < TTL)
            .map(|(_, _, v)| v.clone())
    }

    fn put(&self, key: String, generation: u64, value: V) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_RECORDS {
            entries.retain(|_, (at, g, _)| *g == generation && at.elapsed() < TTL);
            if entries.len() >= MAX_RECORDS {
                entries.clear();
            }
        }
        entries.insert(key, (Instant::now(), generation, value));
    }
}

/// The rendered public pages, and the tenants and services citizens' pages read.
#[derive(Default)]
pub(crate) struct PageCache {
    entries: Mutex<HashMap<String, Entry>>,
    bytes: AtomicU64,
    generation: AtomicU64,
    tenants: Memo<Tenant>,
    services: Memo<Service>,
}

impl PageCache {
    /// Forgets every page and record (a change was made).
    pub(crate) fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::Relaxed);
    }

    fn get(&self, key: &str) -> Option<(HeaderMap, Bytes)> {
        let generation = self.generation.load(Ordering::Relaxed);
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(key)
            .filter(|e| e.generation == generation && e.at.elapsed() < TTL)
            .map(|e| (e.headers.clone(), e.body.clone()))
    }

    fn put(&self, key: String, generation: u64, headers: HeaderMap, body: Bytes) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let size = body.len() + key.len();
        let mut total = usize::try_from(self.bytes.load(Ordering::Relaxed)).unwrap_or(usize::MAX);
        if total + size > MAX_BYTES {
            let current = self.generation.load(Ordering::Relaxed);
            entries.retain(|_, e| e.generation == current && e.at.elapsed() < TTL);
            total = entries.values().map(|e| e.body.len()).sum();
            if total + size > MAX_BYTES {
                entries.clear();
                total = 0;
            }
        }
        let replaced = entries.insert(key, Entry { at: Instant::now(), generation, headers, body });
        total = total + size - replaced.map_or(0, |e| e.body.len());
        self.bytes.store(u64::try_from(total).unwrap_or(u64::MAX), Ordering::Relaxed);
    }
}

/// Whether a path is a public page that is the same for every anonymous visitor:
/// `/`, `/{tenant}/`, `/{tenant}/demarches`, `/{tenant}/demarches/{service}`,
/// `/{tenant}/theme.css`, `/{tenant}/accessibilite`, `/{tenant}/conditions-utilisation`.
fn cacheable(path: &str) -> bool {
    if path == "/" {
        return true;
    }
    let Some(rest) = path.strip_prefix('/') else { return false };
    let mut parts = rest.split('/');
    let Some(tenant) = parts.next() else { return false };
    if tenant.is_empty() || RESERVED.contains(&tenant) {
        return false;
    }
    let parts: Vec<&str> = parts.collect();
    match parts.as_slice() {
        [""] | ["demarches"] | ["theme.css"] | ["accessibilite"] | ["conditions-utilisation"] => {
            true
        }
        ["demarches", service] => !service.is_empty(),
        _ => false,
    }
}

/// Whether the request carries a citizen session cookie.
fn has_session(request: &Request) -> bool {
    request
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.contains(crate::session::COOKIE)))
}

/// Middleware: serves kept public pages, keeps the ones it renders, and empties the cache when
/// an agent changes something.
pub(crate) async fn serve(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    if method != Method::GET {
        let agent_change = request.uri().path().starts_with("/agents/");
        let response = next.run(request).await;
        if agent_change && (response.status().is_success() || response.status().is_redirection()) {
            state.pages.invalidate();
        }
        return response;
    }
    if request.uri().query().is_some() || has_session(&request) || !cacheable(request.uri().path())
    {
        return next.run(request).await;
    }
    let domain = request.extensions().get::<DomainTenant>().is_some();
    let key = format!("{}{}", if domain { "d" } else { "p" }, request.uri().path());
    let started = Instant::now();
    if let Some((headers, body)) = state.pages.get(&key) {
        let mut response = Response::new(Body::from(body));
        *response.headers_mut() = headers;
        state.metrics.observe(
            "GET",
            "(page publique en cache)",
            200,
            started.elapsed().as_secs_f64(),
        );
        return response;
    }
    let generation = state.pages.generation.load(Ordering::Relaxed);
    let response = next.run(request).await;
    if response.status() != StatusCode::OK || response.headers().contains_key(header::SET_COOKIE) {
        return response;
    }
    let (parts, body) = response.into_parts();
    match axum::body::to_bytes(body, MAX_PAGE).await {
        Ok(bytes) => {
            state.pages.put(key, generation, parts.headers.clone(), bytes.clone());
            Response::from_parts(parts, Body::from(bytes))
        }
        Err(e) => {
            // Larger than a page should be: answered as an error rather than cut short.
            tracing::warn!(error = %e, "public page too large to keep");
            axum::response::IntoResponse::into_response(AppError::Internal(anyhow::anyhow!(
                "page too large: {e}"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_pages_are_kept() {
        for path in [
            "/",
            "/saint-aubin/",
            "/saint-aubin/demarches",
            "/saint-aubin/demarches/question-mairie",
            "/saint-aubin/theme.css",
            "/saint-aubin/accessibilite",
        ] {
            assert!(cacheable(path), "{path}");
        }
        for path in [
            "/saint-aubin",
            "/saint-aubin/demarches/question-mairie/commencer",
            "/saint-aubin/brouillons/x/etape/1",
            "/saint-aubin/delais-de-traitement",
            "/compte/",
            "/agents/",
            "/static/app.css",
            "/demo/courriels",
            "//",
        ] {
            assert!(!cacheable(path), "{path}");
        }
    }

    #[test]
    fn the_cache_is_bounded_and_invalidated() {
        let cache = PageCache::default();
        let page = Bytes::from(vec![b'x'; 300 * 1024]);
        for i in 0..100 {
            cache.put(format!("p/{i}/"), 0, HeaderMap::new(), page.clone());
        }
        let kept = cache.entries.lock().map(|e| e.len()).unwrap_or(0);
        assert!(kept * 300 * 1024 <= MAX_BYTES, "{kept} pages kept");
        assert!(cache.get("p/99/").is_some());
        cache.invalidate();
        assert!(cache.get("p/99/").is_none());
    }

    #[test]
    fn kept_records_are_bounded_and_follow_the_generation() {
        let memo: Memo<u32> = Memo::default();
        for i in 0..(MAX_RECORDS as u32 + 10) {
            memo.put(i.to_string(), 0, i);
        }
        assert!(memo.entries.lock().map(|e| e.len()).unwrap_or(0) <= MAX_RECORDS);
        let last = (MAX_RECORDS as u32 + 9).to_string();
        assert_eq!(memo.get(&last, 0), Some(MAX_RECORDS as u32 + 9));
        assert_eq!(memo.get(&last, 1), None, "a newer generation never sees older records");
    }
}
