//! Static assets, embedded in the binary (one file to deploy), served under content-hashed
//! names so that browsers may cache them for a year.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::AppError;

struct Asset {
    name: String,
    body: &'static [u8],
    content_type: &'static str,
}

/// FNV-1a, enough to tell versions of our own files apart.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

fn make_asset(stem: &str, ext: &str, body: &'static [u8], content_type: &'static str) -> Asset {
    Asset {
        name: format!("{stem}-{:012x}.{ext}", fnv1a(body) & 0xffff_ffff_ffff),
        body,
        content_type,
    }
}

static ASSETS: LazyLock<Vec<Asset>> = LazyLock::new(|| {
    vec![make_asset(
        "guichet",
        "css",
        include_bytes!("../assets/guichet.css"),
        "text/css; charset=utf-8",
    )]
});

/// URL of the main stylesheet.
pub(crate) fn stylesheet_url() -> String {
    format!("/static/{}", ASSETS[0].name)
}

/// Serves an embedded asset by its hashed name.
pub(crate) async fn asset(Path(file): Path<String>) -> Result<Response, AppError> {
    let found = ASSETS.iter().find(|a| a.name == file).ok_or(AppError::NotFound)?;
    Ok((
        [
            (header::CONTENT_TYPE, found.content_type),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        found.body,
    )
        .into_response())
}

/// Crawlers may index the portals but not the operations endpoints.
pub(crate) async fn robots() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "User-agent: *\nDisallow: /metrics\nDisallow: /healthz\n",
    )
}
