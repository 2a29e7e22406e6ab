//! Shared application state.

use std::sync::Arc;

use guichet_jobs::JobStats;
use guichet_store::Store;

use crate::host::DomainCache;
use crate::metrics::HttpMetrics;

/// Web settings, from the binary's configuration.
#[derive(Clone)]
pub struct WebConfig {
    /// Public base URL ("https://demarches.cc-exemple.fr"), used in links sent by e-mail and to
    /// decide whether cookies are `Secure`. `None` when serving plain HTTP on loopback.
    pub public_url: Option<String>,
    /// Name of the platform shown on the platform home page.
    pub platform_name: String,
    /// Host names that are the platform itself (never looked up as tenant domains).
    pub platform_hosts: Vec<String>,
    /// If set, `/metrics` requires `Authorization: Bearer <token>`.
    pub metrics_token: Option<String>,
    /// Demo mode: demo-only pages are reachable.
    pub demo: bool,
    /// Base URL for links in e-mails (the public URL, or the listening address).
    pub base_url: String,
    /// Where uploaded files are stored (content-addressed).
    pub files_dir: std::path::PathBuf,
    /// Domain of generated Message-IDs.
    pub mail_domain: String,
    /// The `From` of outgoing e-mail ("Guichet <ne-pas-repondre@…>"), named in the terms of use.
    pub mail_from: String,
    /// Token of the machine endpoints (MTA pipe, Kannel); without it they do not exist.
    pub inbound_token: Option<String>,
    /// How long public pages, tenants and services are kept (zero: not kept).
    pub page_cache: std::time::Duration,
    /// How long a citizen's session is kept in memory (zero: read on every request).
    pub session_cache: std::time::Duration,
}

impl std::fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Tokens are secrets: never printed.
        f.debug_struct("WebConfig")
            .field("public_url", &self.public_url)
            .field("platform_name", &self.platform_name)
            .field("demo", &self.demo)
            .field("base_url", &self.base_url)
            .field("metrics_token", &self.metrics_token.as_ref().map(|_| "[secret]"))
            .field("inbound_token", &self.inbound_token.as_ref().map(|_| "[secret]"))
            .finish_non_exhaustive()
    }
}

impl WebConfig {
    /// The address part of `mail_from`.
    pub fn mail_from_address(&self) -> String {
        let f = self.mail_from.trim();
        match (f.rfind('<'), f.rfind('>')) {
            (Some(a), Some(b)) if a < b => f[a + 1..b].to_owned(),
            _ => f.to_owned(),
        }
    }
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            public_url: None,
            platform_name: "Guichet".to_owned(),
            platform_hosts: vec![
                "localhost".to_owned(),
                "127.0.0.1".to_owned(),
                "[::1]".to_owned(),
            ],
            metrics_token: None,
            demo: false,
            base_url: "http://127.0.0.1:8080".to_owned(),
            files_dir: std::env::temp_dir().join("guichet-files"),
            mail_domain: "guichet.localhost".to_owned(),
            mail_from: "Guichet <ne-pas-repondre@guichet.localhost>".to_owned(),
            inbound_token: None,
            page_cache: crate::cache::TTL,
            session_cache: crate::session::CACHE_TTL,
        }
    }
}

/// Everything a handler can reach. Cloned for every extractor and middleware of every request,
/// so a clone is one reference count.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// What `AppState` shares (reached through it by `Deref`).
pub struct Shared {
    /// The store (a backend chosen by the binary).
    pub store: Arc<dyn Store>,
    /// Settings.
    pub config: Arc<WebConfig>,
    /// HTTP counters and latencies.
    pub metrics: Arc<HttpMetrics>,
    /// Counters of the in-process job runner (empty when jobs run elsewhere).
    pub job_stats: Arc<JobStats>,
    pub(crate) domains: Arc<DomainCache>,
    pub(crate) pages: Arc<crate::cache::PageCache>,
    pub(crate) sessions: crate::session::SessionCache,
    /// Uploaded files.
    pub files: crate::files::FileStore,
}

impl AppState {
    /// Assembles the state.
    pub fn new(store: Arc<dyn Store>, config: WebConfig, job_stats: Arc<JobStats>) -> Self {
        let files = crate::files::FileStore::new(config.files_dir.clone());
        Self(Arc::new(Shared {
            store,
            config: Arc::new(config),
            metrics: Arc::new(HttpMetrics::default()),
            job_stats,
            domains: Arc::new(DomainCache::default()),
            pages: Arc::default(),
            sessions: crate::session::SessionCache::default(),
            files,
        }))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}
