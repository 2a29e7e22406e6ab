//! Guichet's HTTP edge: the router, page handlers with their askama templates, the operations
//! endpoints (`/healthz`, `/metrics`), security headers, tenant resolution (by path, or by
//! custom domain through the Host header), embedded assets, and the one `AppError` that turns
//! every failure into a French page with the right status.
//!
//! This crate holds an `Arc<dyn Store>` and never names a backend: the binary chooses it.

#![forbid(unsafe_code)]

mod assets;
mod error;
mod host;
mod metrics;
mod pages;
pub mod password;
mod security;
mod state;

use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};

pub use error::AppError;
pub use metrics::HttpMetrics;
pub use state::{AppState, WebConfig};

/// Builds the whole application.
pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .route("/", get(pages::home::platform_home))
        .route("/healthz", get(pages::ops::healthz))
        .route("/metrics", get(pages::ops::metrics))
        .route("/csp-report", post(pages::ops::csp_report))
        .route("/robots.txt", get(assets::robots))
        .route("/static/{file}", get(assets::asset))
        .route("/{tenant}", get(pages::tenant::redirect_to_slash))
        .route("/{tenant}/", get(pages::tenant::tenant_home))
        .route("/{tenant}/theme.css", get(pages::tenant::theme_css))
        .fallback(pages::not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), metrics::track))
        .with_state(state.clone());

    // Tenant resolution by custom domain rewrites the path before routing, so it wraps the
    // routes as an outer router whose only content is the inner one.
    Router::new()
        .fallback_service(routes)
        .layer(axum::middleware::from_fn_with_state(state.clone(), host::resolve_custom_domain))
        .layer(axum::middleware::from_fn(security::headers))
        .layer(
            tower::ServiceBuilder::new()
                .layer(axum::error_handling::HandleErrorLayer::new(error::timeout))
                .layer(tower::timeout::TimeoutLayer::new(Duration::from_secs(60))),
        )
}
