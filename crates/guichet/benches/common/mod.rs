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

/// How a benchmark run is measured.
pub struct Plan {
    /// File name prefix of the JSON report ("inbox", "dashboard").
    pub name: &'static str,
    /// Unmeasured requests before each scenario.
    pub warmup: usize,
    /// Measured requests per scenario.
    pub samples: usize,
    /// The p95 to stay under.
    pub target_p95: Duration,
}

/// Times each scenario (a GET answered 200), prints p50/p95/p99 against the target and writes
/// `bench/results/<name>-<backend>.json`. Scenarios with an empty path are skipped.
pub async fn measure(client: &Client, backend: &str, plan: &Plan, scenarios: &[(&str, String)]) {
    let target_ms = plan.target_p95.as_millis();
    println!("backend: {backend}  samples: {}  target: p95 < {target_ms} ms", plan.samples);
    println!("{:<32} {:>9} {:>9} {:>9} {:>7}", "scenario", "p50 ms", "p95 ms", "p99 ms", "target");
    let mut report = Vec::new();
    for (name, path) in scenarios.iter().filter(|(_, p)| !p.is_empty()) {
        for _ in 0..plan.warmup {
            client.get(path).await;
        }
        let mut times = Vec::with_capacity(plan.samples);
        for _ in 0..plan.samples {
            let (status, _, t) = client.get(path).await;
            assert_eq!(status, 200, "{name}: {path}");
            times.push(t);
        }
        times.sort();
        let ms = |p: f64| percentile(&times, p).as_secs_f64() * 1e3;
        let (p50, p95, p99) = (ms(0.5), ms(0.95), ms(0.99));
        let ok = percentile(&times, 0.95) < plan.target_p95;
        println!(
            "{name:<32} {p50:>9.2} {p95:>9.2} {p99:>9.2} {:>7}",
            if ok { "ok" } else { "MISSED" }
        );
        report.push(format!(
            "{{\"scenario\":\"{name}\",\"p50_ms\":{p50:.3},\"p95_ms\":{p95:.3},\"p99_ms\":{p99:.3},\"target_p95_ms\":{target_ms},\"met\":{ok}}}"
        ));
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/results");
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("{}-{backend}.json", plan.name));
    let _ = std::fs::write(
        &path,
        format!("{{\"backend\":\"{backend}\",\"results\":[{}]}}\n", report.join(",")),
    );
    println!("report: {}", path.display());
}
