//! Operations endpoints: health, metrics, CSP violation reports.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::AppState;

/// `GET /healthz`: 200 when the database answers, 503 otherwise. Load balancers and the
/// operator's monitoring poll it; it says which backend is in use but nothing secret.
pub(crate) async fn healthz(State(state): State<AppState>) -> Response {
    let backend = state.store.backend();
    match state.store.ping().await {
        Ok(()) => Json(serde_json::json!({"status": "ok", "database": backend})).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({"status": "unavailable", "database": backend})),
            )
                .into_response()
        }
    }
}

/// `GET /metrics`: Prometheus text format. Protected by a bearer token when one is configured.
pub(crate) async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = &state.config.metrics_token {
        let expected = format!("Bearer {token}");
        let given = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        if !given.is_some_and(|g| constant_time_eq(g.as_bytes(), expected.as_bytes())) {
            return (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer")], "")
                .into_response();
        }
    }
    // Job counts come from the database; if it is down, the HTTP series still render.
    let jobs = match state.store.job_counts().await {
        Ok(counts) => Some(counts),
        Err(e) => {
            tracing::warn!(error = %e, "metrics: could not count jobs");
            None
        }
    };
    let body = state.metrics.render(jobs, &state.job_stats.snapshot());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body).into_response()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Largest CSP report we read; browsers send a few hundred bytes.
const MAX_REPORT: usize = 16 * 1024;

/// `POST /csp-report`: browsers report Content-Security-Policy violations here; each is logged
/// so that an operator notices an injected script or a broken page.
pub(crate) async fn csp_report(body: Bytes) -> StatusCode {
    if body.len() > MAX_REPORT {
        return StatusCode::PAYLOAD_TOO_LARGE;
    }
    let text = String::from_utf8_lossy(&body);
    tracing::warn!(report = %text, "content security policy violation");
    StatusCode::NO_CONTENT
}
