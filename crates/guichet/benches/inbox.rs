//! Back-office benchmark: the inbox's first page, filtered views, full-text search, a deep page
//! and the request page, answered by the real router (handlers, templates, store) in-process,
//! on a territory made by `guichet generate`. Reports p50/p95/p99 against the 50 ms target.
//!
//! ```sh
//! guichet generate --data-dir /tmp/bench-sqlite --tenants 35000 --requests 1000000
//! GUICHET_BENCH_DATABASE_URL=sqlite:///tmp/bench-sqlite/guichet.sqlite3 cargo bench -p guichet --bench inbox
//! ```
//! `bench/run-inbox.sh` does both, on SQLite and on PostgreSQL.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use guichet_jobs::JobStats;
use guichet_store::Store;
use guichet_web::{AppState, WebConfig};
use http_body_util::BodyExt;
use tower::ServiceExt;

const SAMPLES: usize = 200;
const TARGET_P95: Duration = Duration::from_millis(50);

struct Client {
    router: axum::Router,
    cookie: String,
}

impl Client {
    async fn get(&self, path: &str) -> (u16, String, Duration) {
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

async fn open(url: &str) -> Arc<dyn Store> {
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

async fn login(router: &axum::Router) -> String {
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

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let Ok(url) = std::env::var("GUICHET_BENCH_DATABASE_URL") else {
        eprintln!(
            "GUICHET_BENCH_DATABASE_URL is not set: generate a territory with `guichet generate` and point this variable at it (see bench/run-inbox.sh)."
        );
        return;
    };
    let store = open(&url).await;
    let backend = store.backend();
    let state = AppState::new(store.clone(), WebConfig::default(), Arc::new(JobStats::default()));
    let router = guichet_web::router(state);
    let client = Client { cookie: login(&router).await, router };

    // A request id and a next-page link to exercise the request page and keyset pages.
    let (_, first, _) = client.get("/agents/").await;
    let request = first
        .split("href=\"/agents/demandes/")
        .nth(1)
        .map(|s| s.split('"').next().unwrap_or("").to_owned())
        .unwrap_or_default();
    let next = first
        .split("rel=\"next\"")
        .next()
        .and_then(|s| s.rsplit("href=\"").next())
        .map(|s| s.split('"').next().unwrap_or("").replace("&amp;", "&"))
        .unwrap_or_default();
    let scenarios = [
        ("inbox first page", "/agents/".to_owned()),
        ("inbox filtered (open, web)", "/agents/?etat=open&canal=web".to_owned()),
        ("inbox overdue", "/agents/?delai=depasse".to_owned()),
        ("full-text search", "/agents/?q=eclairage".to_owned()),
        ("search + filter", "/agents/?q=voirie+ecole&etat=open".to_owned()),
        ("second page (keyset)", next),
        ("request page", format!("/agents/demandes/{request}")),
    ];
    println!("backend: {backend}  samples: {SAMPLES}  target: p95 < {} ms", TARGET_P95.as_millis());
    println!("{:<30} {:>9} {:>9} {:>9} {:>7}", "scenario", "p50 ms", "p95 ms", "p99 ms", "target");
    let mut report = Vec::new();
    for (name, path) in scenarios {
        if path.is_empty() {
            continue;
        }
        for _ in 0..10 {
            client.get(&path).await;
        }
        let mut times = Vec::with_capacity(SAMPLES);
        for _ in 0..SAMPLES {
            let (status, _, t) = client.get(&path).await;
            assert_eq!(status, 200, "{name}: {path}");
            times.push(t);
        }
        times.sort();
        let (p50, p95, p99) =
            (percentile(&times, 0.5), percentile(&times, 0.95), percentile(&times, 0.99));
        let ok = p95 < TARGET_P95;
        println!(
            "{name:<30} {:>9.2} {:>9.2} {:>9.2} {:>7}",
            p50.as_secs_f64() * 1e3,
            p95.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3,
            if ok { "ok" } else { "MISSED" }
        );
        report.push(format!(
            "{{\"scenario\":\"{name}\",\"p50_ms\":{:.3},\"p95_ms\":{:.3},\"p99_ms\":{:.3},\"target_p95_ms\":50,\"met\":{ok}}}",
            p50.as_secs_f64() * 1e3,
            p95.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3
        ));
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/results");
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("inbox-{backend}.json"));
    let _ = std::fs::write(
        &path,
        format!("{{\"backend\":\"{backend}\",\"results\":[{}]}}\n", report.join(",")),
    );
    println!("report: {}", path.display());
}
