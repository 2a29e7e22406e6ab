//! What the in-process benchmarks share: opening the generated database, logging the bench
//! agent in through the real login form, timing requests through the router, percentiles.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use guichet_store::Store;
use http_body_util::BodyExt;
use tower::ServiceExt;

pub struct Client {
    pub router: axum::Router,
    pub cookie: String,
}

impl Client {
    pub async fn get(&self, path: &str) -> (u16, String, Duration) {
        let request = Request::get(path)
            .header("host", "127.0.0.1")
            .header("cookie", &self.cookie)
            .body(Body::empty())
            .expect("request");
        let started = Instant::now();
        let response = self.router.clone().oneshot(request).await.expect("infallible");
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.expect("body").to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned(), started.elapsed())
    }
}

pub async fn open(url: &str) -> Arc<dyn Store> {
    if url.starts_with("sqlite:") {
        let s = guichet_store_sqlite::SqliteStore::connect(url, &Default::default())
            .await
            .expect("open SQLite");
        s.migrate().await.expect("migrate");
        Arc::new(s)
    } else {
        let s = guichet_store_postgres::PgStore::connect(url, &Default::default())
            .await
            .expect("connect PostgreSQL");
        s.migrate().await.expect("migrate");
        Arc::new(s)
    }
}

pub async fn login(router: &axum::Router) -> String {
    let response = router
        .clone()
        .oneshot(
            Request::get("/agents/connexion")
                .header("host", "127.0.0.1")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let cookie =
        response.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let body = String::from_utf8_lossy(&response.into_body().collect().await.unwrap().to_bytes())
        .into_owned();
    let csrf =
        body.split("name=\"_csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let form = format!(
        "_csrf={csrf}&email=bench%40generated.test&password={}",
        guichet::generate::BENCH_PASSWORD
    );
    let response = router
        .clone()
        .oneshot(
            Request::post("/agents/connexion")
                .header("host", "127.0.0.1")
                .header("cookie", &cookie)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from(form))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        response.headers()["location"],
        "/agents/",
        "bench agent login (run `guichet generate` first)"
    );
    response.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned()
}

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}
