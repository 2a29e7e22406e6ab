//! Public pages kept rendered: a tenant's home, its catalogue, its service pages and theme, and
//! the platform's home page are the same for every anonymous visitor, are what citizens (and
//! crawlers) load most, and change only when the catalogue does. Each is rendered once and
//! served from memory for a few seconds, so a busy portal costs no database query and no
//! template per view.
//!
//! Freshness: the catalogue, tenants and services change through imports (`guichet import`,
//! another process or instance), which show within the configured delay (`http.page_cache_seconds`,
//! [`TTL`] by default; zero turns the cache off). Visitors with a session (a citizen logged in,
//! a draft in progress) always get a page rendered for them, since theirs can differ (the
//! service page's start link, the account links).
//!
//! The same holds for the tenants (by slug or id) and services (by id, or by their tenant and
//! slug) that a citizen's own pages read on every view (a draft's step, its summary, a
//! service's page): they are public, change rarely, and reading them from the database was two
//! of the five queries of a form page and three of a submission's. A service is shared, not
//! copied, by the requests that read it: a form definition can weigh tens of kilobytes.
//! Submitting reads the service afresh: the legal regime a request runs under is the one in
//! force when it is sent. A portal's catalogue (its services' titles and summaries, sorted in
//! French order) is kept too: a logged-in citizen's catalogue and home page are rendered for
//! them, but need not read and sort every service with its form on each view.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;

use guichet_domain::audit::sha256_hex;
use guichet_domain::{ServiceId, Slug, TenantId};
use guichet_store::{Service, Tenant};

use crate::host::DomainTenant;
use crate::pages::catalogue::{Listed, listing};
use crate::{AppError, AppState};

/// A tenant by slug (`None`: no such tenant), kept for [`TTL`]; shared, not copied, since
/// every page of a tenant starts here.
pub(crate) async fn tenant(state: &AppState, slug: &Slug) -> Result<Option<Arc<Tenant>>, AppError> {
    let (cache, ttl) = (&state.pages, state.config.page_cache);
    if let Some(t) = cache.tenants.get(slug.as_str(), ttl) {
        return Ok(Some(t));
    }
    let found = state.store.find_tenant_by_slug(slug).await?.map(Arc::new);
    if let Some(t) = found.as_ref().filter(|_| !ttl.is_zero()) {
        cache.tenants.put(slug.as_str().to_owned(), ttl, Arc::clone(t));
    }
    Ok(found)
}

/// A tenant by id, kept for [`TTL`] (the key's `:` cannot appear in a slug).
pub(crate) async fn tenant_by_id(state: &AppState, id: TenantId) -> Result<Tenant, AppError> {
    let (cache, ttl) = (&state.pages, state.config.page_cache);
    let key = format!("id:{id}");
    if let Some(t) = cache.tenants.get(&key, ttl) {
        return Ok(Tenant::clone(&t));
    }
    let tenant = state.store.get_tenant(id).await?;
    if !ttl.is_zero() {
        cache.tenants.put(key, ttl, Arc::new(tenant.clone()));
    }
    Ok(tenant)
}

/// A service by id, kept for [`TTL`].
pub(crate) async fn service(state: &AppState, id: ServiceId) -> Result<Arc<Service>, AppError> {
    let (cache, ttl) = (&state.pages, state.config.page_cache);
    let key = id.to_string();
    if let Some(s) = cache.services.get(&key, ttl) {
        return Ok(s);
    }
    let service = Arc::new(state.store.get_service(id).await?);
    if !ttl.is_zero() {
        cache.services.put(key, ttl, Arc::clone(&service));
    }
    Ok(service)
}

/// The service `tenant` itself offers under `slug` (`None`: none), kept for [`TTL`] (the key's
/// `/` cannot appear in an id or a slug).
pub(crate) async fn tenant_service(
    state: &AppState,
    tenant: TenantId,
    slug: &str,
) -> Result<Option<Arc<Service>>, AppError> {
    let (cache, ttl) = (&state.pages, state.config.page_cache);
    let key = format!("{tenant}/{slug}");
    if let Some(s) = cache.services.get(&key, ttl) {
        return Ok(Some(s));
    }
    // Known to be missing: an EPCI's service asked on a commune's portal is looked for under
    // the commune first, on every view of its form.
    if cache.absent.get(&key, ttl).is_some() {
        return Ok(None);
    }
    let found = state.store.find_service(tenant, slug).await?.map(Arc::new);
    if !ttl.is_zero() {
        match &found {
            Some(s) => cache.services.put(key, ttl, Arc::clone(s)),
            None => cache.absent.put(key, ttl, Arc::new(())),
        }
    }
    Ok(found)
}

/// The catalogue of a tenant's portal (its services and its EPCI's, open, in catalogue order),
/// as its pages list it: read and sorted once per freshness period rather than on every view
/// of a logged-in citizen, whose pages are not kept whole.
pub(crate) async fn catalogue(
    state: &AppState,
    tenant: &Tenant,
) -> Result<Arc<Vec<Arc<Listed>>>, AppError> {
    let (cache, ttl) = (&state.pages, state.config.page_cache);
    let key = tenant.id.to_string();
    if let Some(listed) = cache.catalogues.get(&key, ttl) {
        return Ok(listed);
    }
    let mut tenants = vec![tenant.id];
    tenants.extend(tenant.parent_id);
    let listed = Arc::new(listing(state.store.list_services(&tenants).await?));
    if !ttl.is_zero() {
        cache.catalogues.put(key, ttl, Arc::clone(&listed));
    }
    Ok(listed)
}

/// A page kept rendered but for a few values of its visitor's, spliced in on each view (a form's
/// empty first page: the same for every citizen but for their CSRF token, the page's nonce and
/// their address). Rendered once with a marker in place of each value; markers are characters
/// of Unicode's private use area, which templates do not escape and French text does not use.
pub(crate) struct Spliced {
    /// The page's text between the values: one more than `holes`.
    parts: Vec<String>,
    /// Which value fills each hole (an index into `fill`'s `values`).
    holes: Vec<usize>,
    /// The text's length, for the filled page's allocation.
    len: usize,
}

impl Spliced {
    /// Splits `rendered` at `markers`; `None` unless marker `i` appears exactly `counts[i]`
    /// times (a marker found in the page's own text would put a visitor's value in the wrong
    /// place: such a page is rendered for each visitor instead).
    pub(crate) fn split(rendered: &str, markers: &[char], counts: &[usize]) -> Option<Self> {
        let (mut parts, mut holes, mut seen) = (Vec::new(), Vec::new(), vec![0; markers.len()]);
        let mut rest = rendered;
        while let Some((at, c)) = rest.char_indices().find(|(_, c)| markers.contains(c)) {
            let which = markers.iter().position(|m| *m == c)?;
            parts.push(rest[..at].to_owned());
            holes.push(which);
            seen[which] += 1;
            rest = &rest[at + c.len_utf8()..];
        }
        parts.push(rest.to_owned());
        (seen == counts).then_some(Self { parts, holes, len: rendered.len() })
    }

    /// The page with each hole filled by its value, HTML-escaped.
    pub(crate) fn fill(&self, values: &[&str]) -> String {
        let mut out = String::with_capacity(self.len + 128);
        for (part, hole) in self.parts.iter().zip(&self.holes) {
            out.push_str(part);
            let value = values.get(*hole).copied().unwrap_or_default();
            crate::pages::escape_into(&mut out, value);
        }
        out.push_str(self.parts.last().map_or("", String::as_str));
        out
    }
}

/// A spliced page kept under `key`, if still fresh and rendered from this very copy of the
/// service it shows (a kept service read again, changed or not, has the page rendered again:
/// the page is never older than the service it is served with).
pub(crate) fn spliced(state: &AppState, key: &str, service: &Arc<Service>) -> Option<Arc<Spliced>> {
    state.pages.spliced_page(key, state.config.page_cache, service)
}

/// Keeps a spliced page rendered from `service` for [`TTL`] (not at all when the page cache is
/// off).
pub(crate) fn keep_spliced(
    state: &AppState,
    key: String,
    service: &Arc<Service>,
    page: Arc<Spliced>,
) {
    let ttl = state.config.page_cache;
    if !ttl.is_zero() {
        state.pages.spliced.put(key, ttl, Arc::new((Arc::clone(service), page)));
    }
}

/// How long a page is served without being rendered again, by default.
pub const TTL: Duration = Duration::from_secs(10);

/// Bound on the bytes kept (bodies, keys, headers and bookkeeping), so that 35,000 tenants'
/// pages cannot grow memory without limit.
const MAX_BYTES: usize = 8 * 1024 * 1024;

/// What an entry costs besides its body, key and headers (map slot, allocations).
const ENTRY_OVERHEAD: usize = 256;

/// A page larger than this is not kept (it would evict many others).
const MAX_PAGE: usize = 512 * 1024;

/// First path segments that are never a tenant's public page.
const RESERVED: &[&str] = &["agents", "compte", "static", "api", "demo", "healthz", "metrics"];

struct Entry {
    at: Instant,
    headers: HeaderMap,
    body: Bytes,
    /// What it counts against [`MAX_BYTES`].
    size: usize,
}

/// Bound on the tenants kept (a few hundred bytes each).
const MAX_TENANTS: usize = 10_000;

/// Bound on the services kept (a form definition can weigh tens of kilobytes).
const MAX_SERVICES: usize = 500;

/// Bound on the spliced form pages kept: a form's first page weighs 4–40 KB, so at most some
/// 8 MB, as the public pages.
const MAX_SPLICED: usize = 200;

/// Bound on the portals' catalogues kept: a commune's lists its services and its EPCI's, with
/// their folded search text, some 20 KB; 200 of them stay under 5 MB however many portals
/// crawlers walk through.
const MAX_CATALOGUES: usize = 200;

/// Records kept by key, with the time they were read at.
struct Memo<V> {
    entries: Mutex<HashMap<String, (Instant, Arc<V>)>>,
    capacity: usize,
}

impl<V> Memo<V> {
    fn new(capacity: usize) -> Self {
        Self { entries: Mutex::default(), capacity }
    }

    fn get(&self, key: &str, ttl: Duration) -> Option<Arc<V>> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.get(key).filter(|(at, _)| at.elapsed() < ttl).map(|(_, v)| Arc::clone(v))
    }

    fn put(&self, key: String, ttl: Duration, value: Arc<V>) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= self.capacity {
            entries.retain(|_, (at, _)| at.elapsed() < ttl);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(key, (Instant::now(), value));
    }
}

/// Kept pages and their total size (bodies, keys, headers and bookkeeping).
#[derive(Default)]
struct Pages {
    map: HashMap<String, Entry>,
    size: usize,
}

/// The rendered public pages, and the tenants and services citizens' pages read.
pub(crate) struct PageCache {
    pages: Mutex<Pages>,
    tenants: Memo<Tenant>,
    services: Memo<Service>,
    catalogues: Memo<Vec<Arc<Listed>>>,
    /// Tenant and slug pairs known to name no service.
    absent: Memo<()>,
    /// Pages kept but for their visitor's values (by tenant, base, service and variant), with
    /// the copy of the service each was rendered from.
    spliced: Memo<(Arc<Service>, Arc<Spliced>)>,
}

impl Default for PageCache {
    fn default() -> Self {
        Self {
            pages: Mutex::default(),
            tenants: Memo::new(MAX_TENANTS),
            services: Memo::new(MAX_SERVICES),
            catalogues: Memo::new(MAX_CATALOGUES),
            absent: Memo::new(MAX_SERVICES),
            spliced: Memo::new(MAX_SPLICED),
        }
    }
}

impl PageCache {
    fn spliced_page(
        &self,
        key: &str,
        ttl: Duration,
        service: &Arc<Service>,
    ) -> Option<Arc<Spliced>> {
        let (from, page) = &*self.spliced.get(key, ttl)?;
        Arc::ptr_eq(from, service).then(|| Arc::clone(page))
    }

    fn get(&self, key: &str, ttl: Duration) -> Option<(HeaderMap, Bytes)> {
        let pages = self.pages.lock().unwrap_or_else(|p| p.into_inner());
        pages
            .map
            .get(key)
            .filter(|e| e.at.elapsed() < ttl)
            .map(|e| (e.headers.clone(), e.body.clone()))
    }

    fn put(&self, key: String, ttl: Duration, headers: HeaderMap, body: Bytes) {
        let headers_size: usize = headers.iter().map(|(n, v)| n.as_str().len() + v.len()).sum();
        let size = body.len() + key.len() + headers_size + ENTRY_OVERHEAD;
        let mut pages = self.pages.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(old) = pages.map.remove(&key) {
            pages.size -= old.size;
        }
        if pages.size + size > MAX_BYTES {
            pages.map.retain(|_, e| e.at.elapsed() < ttl);
            pages.size = pages.map.values().map(|e| e.size).sum();
            if pages.size + size > MAX_BYTES {
                pages.map.clear();
                pages.size = 0;
            }
        }
        pages.size += size;
        pages.map.insert(key, Entry { at: Instant::now(), headers, body, size });
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

/// Whether a response says it must not be kept.
fn uncacheable(headers: &HeaderMap) -> bool {
    headers.contains_key(header::SET_COOKIE)
        || headers
            .get_all(header::CACHE_CONTROL)
            .iter()
            .any(|v| v.to_str().is_ok_and(|v| v.contains("no-store") || v.contains("private")))
}

/// Whether `If-None-Match` names this entity tag (weak comparison, as RFC 9110 asks for it).
fn not_modified(if_none_match: Option<&HeaderValue>, etag: Option<&HeaderValue>) -> bool {
    let (Some(asked), Some(etag)) = (if_none_match, etag) else { return false };
    let Ok(asked) = asked.to_str() else { return false };
    let strip = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    let etag = strip(etag.to_str().unwrap_or_default());
    asked.trim() == "*" || asked.split(',').any(|t| strip(t) == etag)
}

fn bodiless_304() -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::NOT_MODIFIED;
    response
}

/// Serves kept public pages, and keeps the ones `render` answers.
pub(crate) async fn serve<F, Fut>(state: &AppState, request: Request, render: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Response>,
{
    let ttl = state.config.page_cache;
    if ttl.is_zero()
        || request.method() != Method::GET
        || request.uri().query().is_some()
        || has_session(&request)
        || !cacheable(request.uri().path())
    {
        return render(request).await;
    }
    let domain = request.extensions().get::<DomainTenant>().is_some();
    let key = format!("{}{}", if domain { "d" } else { "p" }, request.uri().path());
    let started = Instant::now();
    let if_none_match = request.headers().get(header::IF_NONE_MATCH).cloned();
    if let Some((headers, body)) = state.pages.get(&key, ttl) {
        // A browser that has this very page answers "not modified" with no body: on a phone
        // with a poor connection, revisiting the catalogue costs a few hundred bytes.
        let mut response = if not_modified(if_none_match.as_ref(), headers.get(header::ETAG)) {
            bodiless_304()
        } else {
            Response::new(Body::from(body))
        };
        *response.headers_mut() = headers;
        state.metrics.observe(
            "GET",
            "(cached public page)",
            response.status().as_u16(),
            started.elapsed().as_secs_f64(),
        );
        return response;
    }
    let response = render(request).await;
    if response.status() != StatusCode::OK || uncacheable(response.headers()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    // The handler rendered the whole page in memory already; a page too large to keep is
    // still answered, just not kept.
    match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => {
            if bytes.len() <= MAX_PAGE {
                // Browsers may keep it too, but must ask again each time (the answer is then a
                // bodiless 304 while the page is unchanged).
                let etag = format!("\"{}\"", &sha256_hex(&bytes)[..32]);
                if let Ok(v) = HeaderValue::from_str(&etag) {
                    parts.headers.insert(header::ETAG, v);
                }
                parts
                    .headers
                    .entry(header::CACHE_CONTROL)
                    .or_insert(HeaderValue::from_static("no-cache"));
                state.pages.put(key, ttl, parts.headers.clone(), bytes.clone());
                if not_modified(if_none_match.as_ref(), parts.headers.get(header::ETAG)) {
                    let mut response = bodiless_304();
                    *response.headers_mut() = parts.headers;
                    return response;
                }
            }
            Response::from_parts(parts, Body::from(bytes))
        }
        Err(e) => axum::response::IntoResponse::into_response(AppError::Internal(anyhow::anyhow!(
            "reading a rendered page: {e}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MARKS: [char; 2] = ['\u{E000}', '\u{E001}'];

    #[test]
    fn a_spliced_page_fills_each_hole_with_its_value_escaped() {
        let page =
            Spliced::split("<p a=\"\u{E000}\">\u{E001} et \u{E000}</p>", &MARKS, &[2, 1]).unwrap();
        assert_eq!(page.fill(&["x", "<b>&'"]), "<p a=\"x\">&lt;b&gt;&amp;&#39; et x</p>");
        // Markers at the ends, and a page without any.
        let edges = Spliced::split("\u{E001}milieu\u{E000}", &MARKS, &[1, 1]).unwrap();
        assert_eq!(edges.fill(&["fin", "début"]), "débutmilieufin");
        assert_eq!(Spliced::split("rien", &MARKS, &[0, 0]).unwrap().fill(&["a", "b"]), "rien");
        // Escaping copies the runs between special characters: specials side by side, at both
        // ends, and among letters of several bytes.
        let one = Spliced::split("[\u{E000}]", &MARKS, &[1, 0]).unwrap();
        assert_eq!(one.fill(&["\"<é&&ü>'"]), "[&quot;&lt;é&amp;&amp;ü&gt;&#39;]");
        assert_eq!(one.fill(&["Zoë Ñ"]), "[Zoë Ñ]");
    }

    #[test]
    fn a_spliced_page_serves_only_with_the_copy_of_the_service_it_was_rendered_from() {
        let cache = PageCache::default();
        let tenant = guichet_domain::TenantId::new();
        let service = Arc::new(guichet_testkit::fixtures::service(tenant, "signalement"));
        let page = Arc::new(Spliced::split("x", &MARKS, &[0, 0]).unwrap());
        cache.spliced.put("k".into(), TTL, Arc::new((Arc::clone(&service), page)));
        assert!(cache.spliced_page("k", TTL, &service).is_some());
        // The service read again (its kept copy expired): the page is rendered again, even
        // though it was kept later than the service and is not expired itself.
        let again = Arc::new(Service::clone(&service));
        assert!(cache.spliced_page("k", TTL, &again).is_none());
    }

    #[test]
    fn a_page_whose_markers_are_not_counted_as_expected_is_not_spliced() {
        assert!(Spliced::split("\u{E000}\u{E000}", &MARKS, &[1, 0]).is_none());
        assert!(Spliced::split("\u{E000}", &MARKS, &[1, 1]).is_none());
    }

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
    fn the_cache_is_bounded_and_pages_expire() {
        let cache = PageCache::default();
        let page = Bytes::from(vec![b'x'; 300 * 1024]);
        for i in 0..100 {
            cache.put(format!("p/{i}/"), TTL, HeaderMap::new(), page.clone());
            // Replacing a page does not count it twice.
            cache.put(format!("p/{i}/"), TTL, HeaderMap::new(), page.clone());
        }
        let (kept, counted) = cache.pages.lock().map(|p| (p.map.len(), p.size)).unwrap_or((0, 0));
        assert!(kept > 1 && kept * 300 * 1024 <= MAX_BYTES, "{kept} pages kept");
        assert!(counted <= MAX_BYTES && counted >= kept * 300 * 1024, "{counted}");
        // Many tiny pages (a theme each) are bounded too, headers counted.
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/css; charset=utf-8"));
        for i in 0..100_000 {
            cache.put(format!("p/t{i}/theme.css"), TTL, headers.clone(), Bytes::from("x"));
        }
        let counted = cache.pages.lock().map(|p| p.size).unwrap_or(usize::MAX);
        assert!(counted <= MAX_BYTES, "{counted}");
        assert!(cache.get("p/t99999/theme.css", TTL).is_some());
        assert!(cache.get("p/t99999/theme.css", Duration::ZERO).is_none(), "expired");
    }

    #[test]
    fn kept_records_are_bounded_and_expire() {
        let memo: Memo<u32> = Memo::new(100);
        for i in 0..110 {
            memo.put(i.to_string(), TTL, Arc::new(i));
        }
        assert!(memo.entries.lock().map(|e| e.len()).unwrap_or(0) <= 100);
        assert_eq!(memo.get("109", TTL), Some(Arc::new(109)));
        assert_eq!(memo.get("109", Duration::ZERO), None, "expired");
    }

    #[test]
    fn conditional_requests_compare_entity_tags_weakly() {
        let tag = HeaderValue::from_static("\"abc\"");
        let asked = |v: &'static str| Some(HeaderValue::from_static(v));
        assert!(not_modified(asked("\"abc\"").as_ref(), Some(&tag)));
        assert!(not_modified(asked("W/\"abc\"").as_ref(), Some(&tag)));
        assert!(not_modified(asked("\"x\", \"abc\"").as_ref(), Some(&tag)));
        assert!(not_modified(asked("*").as_ref(), Some(&tag)));
        assert!(!not_modified(asked("\"abd\"").as_ref(), Some(&tag)));
        assert!(!not_modified(None, Some(&tag)));
        assert!(!not_modified(asked("\"abc\"").as_ref(), None));
    }
}
