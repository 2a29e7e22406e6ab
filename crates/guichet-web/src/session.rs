//! Sessions and CSRF protection.
//!
//! A visitor's session lives in the database; the `guichet_session` cookie carries a random
//! 256-bit token of which only the SHA-256 is stored, so a database leak does not leak live
//! sessions. The cookie is `HttpOnly`, `SameSite=Lax` and `Secure` when the public URL is
//! HTTPS, with `Path=/`: one login covers every portal of the platform (the EPCI's and each
//! commune's), as the citizen expects.
//!
//! A citizen's session and account, read together on every request, are kept in memory for a
//! moment ([`SessionCache`]): a page and what it loads next (a form's first page after the
//! service page, the next step) then cost no database read. The cache drops a session as soon as
//! this process commits anything that could change it (see `AccountsVersion`); a change made by
//! another instance (a logout, a new password) shows there within `http.session_cache_seconds`.
//! Agents' sessions are always read afresh: their pages read much more anyway.
//!
//! Anonymous visitors get a session only when a page needs one (a form to protect), so browsing
//! the catalogue writes nothing. Every state-changing request carries the session's CSRF token
//! in a hidden `_csrf` field (synchroniser token pattern); the token changes at login.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use guichet_domain::audit::{hex, sha256_hex};
use guichet_domain::{AgentId, CitizenId};
use guichet_store::{Citizen, Session};
use password_hash::rand_core::{OsRng, RngCore};
use time::{Duration, OffsetDateTime};

use crate::{AppError, AppState};

/// Cookie of citizen sessions.
pub const COOKIE: &str = "guichet_session";

/// Cookie of agent sessions: a separate session (and cookie, limited to `/agents`) so that an
/// agent who is also a citizen of the territory never mixes the two, and a citizen page can
/// never act with an agent's rights.
pub const AGENT_COOKIE: &str = "guichet_agent";

/// Which kind of session a layer manages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Citizens, on every portal.
    Citizen,
    /// Agents, under `/agents`.
    Agent,
}

impl Kind {
    fn cookie(self) -> &'static str {
        match self {
            Self::Citizen => COOKIE,
            Self::Agent => AGENT_COOKIE,
        }
    }

    fn path(self) -> &'static str {
        match self {
            Self::Citizen => "/",
            Self::Agent => "/agents",
        }
    }
}

/// Idle time after which a session ends.
pub const IDLE: Duration = Duration::hours(2);

/// Sessions are extended at most this often, so active browsing does not write on every click.
const TOUCH_EVERY: Duration = Duration::minutes(5);

/// How long a citizen's session is kept in memory by default (`http.session_cache_seconds`).
pub const CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(2);

/// At most this many sessions are kept: about 1 KB each.
const CACHE_CAPACITY: usize = 10_000;

/// Citizens' sessions read lately, each with its account, by token hash.
///
/// An entry serves only while the store's [`AccountsVersion`](guichet_store::AccountsVersion)
/// is the one read *before* the session was, so a logout, a new password, an edited profile or
/// a deleted account made through this process is never hidden by it; and only for the
/// configured delay, which bounds how long a change made by another instance can go unseen.
/// Extending a session (every few minutes) updates its entry here rather than dropping every
/// entry. Entries past their delay are swept out at most one delay later, so the accounts of
/// citizens gone (logged out, deleted) do not linger in memory.
#[derive(Default)]
pub(crate) struct SessionCache {
    entries: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    map: HashMap<String, Kept>,
    /// When entries past their delay were last swept out (`None`: never).
    swept: Option<std::time::Instant>,
}

struct Kept {
    session: Session,
    account: Option<Arc<Citizen>>,
    version: u64,
    at: std::time::Instant,
}

impl SessionCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The kept session, if it may still serve; an entry that may not is dropped.
    fn get(
        &self,
        hash: &str,
        version: u64,
        ttl: std::time::Duration,
        now: OffsetDateTime,
    ) -> Option<(Session, Option<Arc<Citizen>>)> {
        let mut entries = self.lock();
        let kept = entries.map.get(hash)?;
        if kept.version == version && kept.at.elapsed() < ttl && kept.session.expires_at > now {
            return Some((kept.session.clone(), kept.account.clone()));
        }
        entries.map.remove(hash);
        None
    }

    fn put(
        &self,
        hash: &str,
        version: u64,
        ttl: std::time::Duration,
        session: Session,
        account: Option<Arc<Citizen>>,
    ) {
        if ttl.is_zero() {
            return;
        }
        let mut entries = self.lock();
        let full = entries.map.len() >= CACHE_CAPACITY && !entries.map.contains_key(hash);
        if full || entries.swept.is_none_or(|at| at.elapsed() >= ttl) {
            entries.map.retain(|_, k| k.at.elapsed() < ttl);
            entries.swept = Some(std::time::Instant::now());
            if entries.map.len() >= CACHE_CAPACITY {
                entries.map.clear();
            }
        }
        let at = std::time::Instant::now();
        entries.map.insert(hash.to_owned(), Kept { session, account, version, at });
    }

    /// Records a session's extension in its entry, if kept. The entry keeps the time it was
    /// read at: what it holds is no fresher for the extension (which changes no row when
    /// another instance has ended the session meanwhile).
    fn extended(&self, hash: &str, session: &Session) {
        if let Some(kept) = self.lock().map.get_mut(hash) {
            kept.session.expires_at = session.expires_at;
            kept.session.last_seen_at = session.last_seen_at;
        }
    }
}

/// `N` bytes of the operating system's random generator, drawn from a per-thread reserve
/// filled 4 KiB at a time: the form page needs twenty for its draft's nonce and id, and the
/// system call for each cost it 2 to 3 % of its CPU. Each byte is handed out once. Secrets
/// (session tokens) are drawn directly instead ([`random_token`]).
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    const RESERVE: usize = 4096;
    thread_local! {
        static RESERVE_LEFT: std::cell::RefCell<(Box<[u8; RESERVE]>, usize)> =
            std::cell::RefCell::new((Box::new([0; RESERVE]), RESERVE));
    }
    let mut out = [0u8; N];
    if N > RESERVE {
        OsRng.fill_bytes(&mut out);
        return out;
    }
    RESERVE_LEFT.with_borrow_mut(|(reserve, used)| {
        if RESERVE - *used < N {
            OsRng.fill_bytes(&mut reserve[..]);
            *used = 0;
        }
        out.copy_from_slice(&reserve[*used..*used + N]);
        *used += N;
    });
    out
}

/// A version 7 UUID, as the domain's ids: the millisecond time, then random bits from
/// [`random_bytes`]. Unlike `Uuid::now_v7`, two made within the same millisecond are not
/// ordered among themselves; nothing here needs them to be.
pub(crate) fn uuid_v7() -> uuid::Uuid {
    let millis = OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    let millis = u64::try_from(millis).unwrap_or(0);
    uuid::Builder::from_unix_timestamp_millis(millis, &random_bytes::<10>()).into_uuid()
}

/// A random token as 64 hex digits.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    hex(&bytes)
}

#[derive(Default)]
struct Inner {
    session: Option<Session>,
    /// The citizen's account, read with the session at the start of the request (shared with
    /// the session cache: every page of a citizen's reads it).
    account: Option<Arc<Citizen>>,
    set_cookie: Option<String>,
}

/// The current visitor, available to every handler.
#[derive(Clone)]
pub struct Visitor {
    inner: Arc<Mutex<Inner>>,
    secure: bool,
    kind: Kind,
}

/// The current agent session (under `/agents`).
#[derive(Clone)]
pub struct AgentVisitor(pub Visitor);

impl Visitor {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The logged-in citizen, if any.
    pub fn citizen(&self) -> Option<CitizenId> {
        self.lock().session.as_ref().and_then(|s| s.citizen_id)
    }

    /// The logged-in citizen's account as read with the session at the start of the request
    /// (`None` after a login or logout in this request: read it from the store then).
    pub fn account(&self) -> Option<Arc<Citizen>> {
        let inner = self.lock();
        let id = inner.session.as_ref().and_then(|s| s.citizen_id)?;
        inner.account.as_ref().filter(|a| a.id == id).cloned()
    }

    /// The agent whose password was checked, and whether their second factor was too.
    pub fn agent(&self) -> Option<(AgentId, bool)> {
        self.lock().session.as_ref().and_then(|s| s.agent_id.map(|a| (a, s.mfa_ok)))
    }

    /// The session's token hash (to mark the second factor passed).
    pub fn token_hash(&self) -> Option<String> {
        self.lock().session.as_ref().map(|s| s.token_hash.clone())
    }

    /// Records in this request's copy that the second factor was checked.
    pub fn set_mfa_ok(&self) {
        if let Some(s) = self.lock().session.as_mut() {
            s.mfa_ok = true;
        }
    }

    /// The CSRF token for forms, creating an anonymous session if there is none yet.
    pub async fn csrf(&self, state: &AppState) -> Result<String, AppError> {
        if let Some(s) = &self.lock().session {
            return Ok(s.csrf_token.clone());
        }
        self.start(state, None).await
    }

    /// Refuses a state change whose `_csrf` field does not match the session's token.
    pub fn check_csrf(&self, token: &str) -> Result<(), AppError> {
        let inner = self.lock();
        let ok = inner.session.as_ref().is_some_and(|s| {
            s.csrf_token.len() == token.len()
                && s.csrf_token.bytes().zip(token.bytes()).fold(0u8, |a, (x, y)| a | (x ^ y)) == 0
        });
        if ok { Ok(()) } else { Err(AppError::Csrf) }
    }

    /// Starts a new session (rotating the token: a session id seen before login is never the
    /// one used after it); returns its CSRF token.
    async fn start(
        &self,
        state: &AppState,
        citizen: Option<CitizenId>,
    ) -> Result<String, AppError> {
        self.start_with(state, citizen, None, false).await
    }

    async fn start_with(
        &self,
        state: &AppState,
        citizen: Option<CitizenId>,
        agent: Option<AgentId>,
        mfa_ok: bool,
    ) -> Result<String, AppError> {
        let token = random_token();
        let now = OffsetDateTime::now_utc();
        let session = Session {
            token_hash: sha256_hex(token.as_bytes()),
            citizen_id: citizen,
            agent_id: agent,
            csrf_token: random_token(),
            mfa_ok,
            expires_at: now + IDLE,
            last_seen_at: now,
        };
        state.store.create_session(&session).await?;
        let csrf = session.csrf_token.clone();
        let mut inner = self.lock();
        inner.set_cookie = Some(cookie(self.kind, &token, self.secure, false));
        inner.session = Some(session);
        inner.account = None;
        Ok(csrf)
    }

    /// Logs a citizen in: ends the current session and starts an authenticated one.
    pub async fn login(&self, state: &AppState, citizen: CitizenId) -> Result<(), AppError> {
        let old = self.lock().session.take();
        if let Some(old) = old {
            state.store.delete_session(&old.token_hash).await?;
        }
        self.start(state, Some(citizen)).await.map(|_| ())
    }

    /// Logs an agent in (password checked); `mfa_ok` when no second factor is due.
    pub async fn login_agent(
        &self,
        state: &AppState,
        agent: AgentId,
        mfa_ok: bool,
    ) -> Result<(), AppError> {
        let old = self.lock().session.take();
        if let Some(old) = old {
            state.store.delete_session(&old.token_hash).await?;
        }
        self.start_with(state, None, Some(agent), mfa_ok).await.map(|_| ())
    }

    /// Logs out: ends the session and clears the cookie.
    pub async fn logout(&self, state: &AppState) -> Result<(), AppError> {
        let old = self.lock().session.take();
        if let Some(old) = old {
            state.store.delete_session(&old.token_hash).await?;
        }
        self.lock().set_cookie = Some(cookie(self.kind, "", self.secure, true));
        Ok(())
    }
}

fn cookie(kind: Kind, value: &str, secure: bool, expire: bool) -> String {
    let mut c = format!("{}={value}; Path={}; HttpOnly; SameSite=Lax", kind.cookie(), kind.path());
    if secure {
        c.push_str("; Secure");
    }
    if expire {
        c.push_str("; Max-Age=0");
    }
    c
}

fn cookie_value(parts: &axum::http::HeaderMap, name: &str) -> Option<String> {
    parts
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, v)| *k == name && v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(|(_, v)| v.to_owned())
}

/// Citizens' sessions, on every route (run by the router's one layer, `routed`).
pub(crate) async fn citizen_layer(state: AppState, request: Request, next: Next) -> Response {
    session_layer(state, Kind::Citizen, request, next).await
}

/// Middleware for agent sessions.
pub(crate) async fn agent_layer(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    session_layer(state, Kind::Agent, request, next).await
}

/// Loads the session named by the cookie and writes back a new cookie if the handler started
/// or ended one.
async fn session_layer(state: AppState, kind: Kind, mut request: Request, next: Next) -> Response {
    let secure = state.config.public_url.as_deref().is_some_and(|u| u.starts_with("https://"));
    let now = OffsetDateTime::now_utc();
    let (mut session, mut account) = (None, None);
    if let Some(token) = cookie_value(request.headers(), kind.cookie()) {
        let hash = sha256_hex(token.as_bytes());
        let ttl = state.config.session_cache;
        // Read before the session: a write counted after this read makes the entry unusable.
        let version = state.store.accounts_version();
        // A citizen's pages need the account too: one read brings both.
        let found = match kind {
            Kind::Citizen => match state.sessions.get(&hash, version, ttl, now) {
                Some(kept) => Ok(Some(kept)),
                None => {
                    let read = state
                        .store
                        .get_citizen_session(&hash, now)
                        .await
                        .map(|found| found.map(|(s, a)| (s, a.map(Arc::new))));
                    if let Ok(Some((s, a))) = &read {
                        state.sessions.put(&hash, version, ttl, s.clone(), a.clone());
                    }
                    read
                }
            },
            Kind::Agent => state.store.get_session(&hash, now).await.map(|s| s.map(|s| (s, None))),
        };
        match found {
            Ok(Some((mut s, a))) => {
                if now - s.last_seen_at > TOUCH_EVERY {
                    s.expires_at = now + IDLE;
                    s.last_seen_at = now;
                    match state.store.touch_session(&hash, s.expires_at, now).await {
                        Ok(()) => state.sessions.extended(&hash, &s),
                        Err(e) => tracing::warn!(error = %e, "could not extend a session"),
                    }
                }
                account = a;
                session = Some(s);
            }
            Ok(None) => {}
            Err(e) => return AppError::from(e).into_response(),
        }
    }
    let visitor = Visitor {
        inner: Arc::new(Mutex::new(Inner { session, account, set_cookie: None })),
        secure,
        kind,
    };
    match kind {
        Kind::Citizen => {
            request.extensions_mut().insert(visitor.clone());
        }
        Kind::Agent => {
            request.extensions_mut().insert(AgentVisitor(visitor.clone()));
        }
    }
    let mut response = next.run(request).await;
    if let Some(c) = visitor.lock().set_cookie.take()
        && let Ok(v) = HeaderValue::from_str(&c)
    {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    // Pages that depend on who is logged in must not be cached by shared caches.
    if visitor.lock().session.is_some() {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    }
    response
}

impl<S: Send + Sync> FromRequestParts<S> for Visitor {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, AppError> {
        parts.extensions.get::<Visitor>().cloned().ok_or_else(|| {
            AppError::Internal(anyhow::anyhow!("session layer missing on this route"))
        })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AgentVisitor {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, AppError> {
        parts.extensions.get::<AgentVisitor>().cloned().ok_or_else(|| {
            AppError::Internal(anyhow::anyhow!("agent session layer missing on this route"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(hash: &str) -> Session {
        let now = OffsetDateTime::now_utc();
        Session {
            token_hash: hash.to_owned(),
            citizen_id: None,
            agent_id: None,
            csrf_token: "csrf".to_owned(),
            mfa_ok: false,
            expires_at: now + IDLE,
            last_seen_at: now,
        }
    }

    #[test]
    fn a_kept_session_serves_only_at_its_version_within_its_delay_and_before_its_expiry() {
        let cache = SessionCache::default();
        let (ttl, now) = (std::time::Duration::from_secs(60), OffsetDateTime::now_utc());
        cache.put("a", 7, ttl, session("a"), None);
        assert!(cache.get("a", 7, ttl, now).is_some());
        assert!(cache.get("a", 7, ttl, now + IDLE + Duration::minutes(1)).is_none(), "expired");
        cache.put("a", 7, ttl, session("a"), None);
        assert!(cache.get("a", 8, ttl, now).is_none(), "a write counted since");
        // An entry that may no longer serve is dropped, not kept beside the newer version.
        assert!(cache.lock().map.is_empty());
        assert!(cache.get("a", 7, ttl, now).is_none());
        // Nothing is kept with the cache off.
        cache.put("b", 7, std::time::Duration::ZERO, session("b"), None);
        assert!(cache.lock().map.is_empty());
    }

    #[test]
    fn an_extension_keeps_the_entrys_age_and_old_entries_are_swept_out() {
        let cache = SessionCache::default();
        let ttl = std::time::Duration::from_millis(50);
        let now = OffsetDateTime::now_utc();
        cache.put("a", 1, ttl, session("a"), None);
        std::thread::sleep(std::time::Duration::from_millis(30));
        let mut later = session("a");
        later.last_seen_at = now + Duration::minutes(6);
        cache.extended("a", &later);
        std::thread::sleep(std::time::Duration::from_millis(30));
        // Read 60 ms ago: past the delay, whatever the extension (which may have changed no
        // row, another instance having ended the session).
        assert!(cache.get("a", 1, ttl, now).is_none());
        // Entries past the delay leave memory at the next write after it, read or not.
        cache.put("b", 1, ttl, session("b"), None);
        std::thread::sleep(std::time::Duration::from_millis(60));
        cache.put("c", 1, ttl, session("c"), None);
        assert_eq!(cache.lock().map.keys().collect::<Vec<_>>(), ["c"]);
    }
}
