//! Page and endpoint tests of the web edge, in-process (no socket), on a throwaway SQLite
//! store, asserting through CSS selectors.

mod backoffice;
mod client;
mod dashboards;
mod multichannel;
mod pages;
mod portal;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use guichet_jobs::JobStats;
use guichet_testkit::TestDb;
use guichet_web::{AppState, WebConfig};
use http_body_util::BodyExt;
use scraper::{Html, Selector};
use tower::ServiceExt;

/// An app on a fresh SQLite store.
pub struct TestApp {
    pub db: TestDb,
    pub router: axum::Router,
    pub state: AppState,
}

impl TestApp {
    pub async fn new(config: WebConfig) -> Self {
        Self::on(TestDb::sqlite().await, config)
    }

    /// An app on a given database (for stories run on every backend).
    pub fn on(db: TestDb, mut config: WebConfig) -> Self {
        config.files_dir =
            std::env::temp_dir().join(format!("guichet-files-{}", uuid::Uuid::now_v7().simple()));
        let state = AppState::new(db.store.clone(), config, Arc::new(JobStats::default()));
        Self { router: guichet_web::router(state.clone()), state, db }
    }

    pub async fn request(&self, request: Request<Body>) -> Page {
        let response = self.router.clone().oneshot(request).await.expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.expect("body").to_bytes();
        Page { status, headers, body: String::from_utf8_lossy(&bytes).into_owned() }
    }

    pub async fn get(&self, path: &str) -> Page {
        self.get_host(path, "127.0.0.1:8080").await
    }

    pub async fn get_host(&self, path: &str, host: &str) -> Page {
        let request = Request::get(path).header("host", host).body(Body::empty()).expect("request");
        self.request(request).await
    }
}

/// A response, with selector helpers.
pub struct Page {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: String,
}

impl Page {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    /// Texts of the elements matching `selector`, whitespace-collapsed.
    pub fn texts(&self, selector: &str) -> Vec<String> {
        let doc = Html::parse_document(&self.body);
        let sel = Selector::parse(selector).expect("valid selector");
        doc.select(&sel)
            .map(|e| e.text().collect::<String>().split_whitespace().collect::<Vec<_>>().join(" "))
            .collect()
    }

    /// Values of attribute `attr` on the elements matching `selector`.
    pub fn attrs(&self, selector: &str, attr: &str) -> Vec<String> {
        let doc = Html::parse_document(&self.body);
        let sel = Selector::parse(selector).expect("valid selector");
        doc.select(&sel).filter_map(|e| e.value().attr(attr).map(str::to_owned)).collect()
    }

    pub fn text(&self, selector: &str) -> String {
        self.texts(selector)
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no {selector} in {}", self.body))
    }
}
