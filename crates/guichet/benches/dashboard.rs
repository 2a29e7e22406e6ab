//! Dashboard benchmark: the consolidated EPCI dashboard (every figure, both periods, charts,
//! tables) rendered by the real router in-process, on 1,000,000 requests over one EPCI and
//! its 32 communes made by `guichet generate --tenants 33`. Target: p95 under 300 ms.
//!
//! ```sh
//! guichet generate --data-dir /tmp/dash --tenants 33 --requests 1000000
//! GUICHET_BENCH_DATABASE_URL=sqlite:///tmp/dash/guichet.sqlite3 cargo bench -p guichet --bench dashboard
//! ```
//! `bench/run-dashboard.sh` does both, on SQLite and on PostgreSQL.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Client, Plan, login, measure, open};
use guichet_jobs::JobStats;
use guichet_web::{AppState, WebConfig};

const SAMPLES: usize = 40;
const TARGET_P95: Duration = Duration::from_millis(300);

#[tokio::main]
async fn main() {
    let Ok(url) = std::env::var("GUICHET_BENCH_DATABASE_URL") else {
        eprintln!(
            "GUICHET_BENCH_DATABASE_URL is not set: generate a territory with `guichet generate --tenants 33` and point this variable at it (see bench/run-dashboard.sh)."
        );
        return;
    };
    let store = open(&url).await;
    let backend = store.backend();
    let state = AppState::new(store.clone(), WebConfig::default(), Arc::new(JobStats::default()));
    let router = guichet_web::router(state);
    let client = Client { cookie: login(&router).await, router };
    let (_, page, _) = client.get("/agents/tableau-de-bord").await;
    let commune = page
        .split("<select id=\"commune\" name=\"commune\">")
        .nth(1)
        .and_then(|s| s.split("<option value=\"").nth(2))
        .map(|s| s.split('"').next().unwrap_or("").to_owned())
        .unwrap_or_default();
    let today = time::OffsetDateTime::now_utc().date();
    let year_ago = today - time::Duration::days(365);
    let scenarios = [
        ("EPCI dashboard, 30 days", "/agents/tableau-de-bord".to_owned()),
        ("EPCI dashboard, 12 months", format!("/agents/tableau-de-bord?du={year_ago}&au={today}")),
        ("EPCI dashboard, one commune", format!("/agents/tableau-de-bord?commune={commune}")),
        ("EPCI dashboard, channel SMS", "/agents/tableau-de-bord?canal=sms".to_owned()),
        ("export XLSX (communes)", "/agents/tableau-de-bord/export.xlsx?table=communes".to_owned()),
    ];
    let plan = Plan { name: "dashboard", warmup: 3, samples: SAMPLES, target_p95: TARGET_P95 };
    measure(&client, backend, &plan, &scenarios).await;
}
