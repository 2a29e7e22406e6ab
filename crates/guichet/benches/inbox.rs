//! Back-office benchmark: the inbox's first page, filtered views, full-text search, a deep page
//! and the request page, answered by the real router (handlers, templates, store) in-process,
//! on a territory made by `guichet generate`. Reports p50/p95/p99 against the 50 ms target.
//!
//! ```sh
//! guichet generate --data-dir /tmp/bench-sqlite --tenants 35000 --requests 1000000
//! GUICHET_BENCH_DATABASE_URL=sqlite:///tmp/bench-sqlite/guichet.sqlite3 cargo bench -p guichet --bench inbox
//! ```
//! `bench/run-inbox.sh` does both, on SQLite and on PostgreSQL.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Client, Plan, login, measure, open};
use guichet_jobs::JobStats;
use guichet_web::{AppState, WebConfig};

const SAMPLES: usize = 200;
const TARGET_P95: Duration = Duration::from_millis(50);

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
    let plan = Plan { name: "inbox", warmup: 10, samples: SAMPLES, target_p95: TARGET_P95 };
    measure(&client, backend, &plan, &scenarios).await;
}
