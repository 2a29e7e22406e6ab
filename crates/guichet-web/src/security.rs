//! Security headers on every response.

use axum::http::HeaderValue;
use axum::http::header;
use axum::response::Response;

/// No inline script or style anywhere (tenant colours come from `/{tenant}/theme.css`), so the
/// policy can be strict; violations are reported to `/csp-report` and logged.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'self'; object-src 'none'; \
     report-uri /csp-report";

/// Adds the security headers unless a handler already set them.
pub(crate) fn add_headers(response: &mut Response) {
    let h = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "same-origin"),
    ] {
        h.entry(name).or_insert(HeaderValue::from_static(value));
    }
    h.entry("permissions-policy")
        .or_insert(HeaderValue::from_static("camera=(), microphone=(), geolocation=(self)"));
}
