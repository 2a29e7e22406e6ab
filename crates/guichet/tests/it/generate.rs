//! `guichet generate` on every backend: the synthetic requests carry their histories, on hash
//! chains that `guichet audit verify` accepts, and their dashboard figures are what those
//! histories say (`guichet stats verify`).

use guichet::generate::{BENCH_AGENT, Scale, run};
use guichet_domain::Email;
use guichet_store::InboxFilter;
use guichet_testkit::TestDb;

#[tokio::test]
async fn generated_requests_carry_their_history_on_verified_chains() {
    for db in TestDb::all().await {
        let s = db.store.as_ref();
        let scale = Scale { tenants: 58, requests: 600, seed: 11 };
        run(s, scale, "not-a-real-hash").await.unwrap();
        let report = guichet::audit::verify(s).await.unwrap();
        assert!(report.broken.is_empty(), "{:?}: {:?}", db.backend, report.broken);
        assert!(report.events >= 2 * 600, "{:?}: {} events", db.backend, report.events);
        // The dashboards' columns are what the events say (`guichet stats verify`).
        let stats = guichet::stats::verify(s, false).await.unwrap();
        assert_eq!(
            (stats.checked, stats.without_events, stats.drifted.len(), stats.periods_drifted),
            (600, 0, 0, 0),
            "{:?}",
            db.backend
        );
        // The benchmark agent's requests, as the back-office lists them: each with its
        // submission first, its acknowledgement, and events in time order.
        let (agent, _) = s
            .find_agent_login(&Email::parse(BENCH_AGENT).unwrap())
            .await
            .unwrap()
            .expect("the benchmark agent");
        let filter = InboxFilter::default();
        let page = s.inbox(agent.id, &filter, None, 50).await.unwrap();
        assert!(!page.is_empty(), "{:?}", db.backend);
        for r in &page {
            let events = s.list_request_events(r.id, false).await.unwrap();
            assert_eq!(events[0].event.kind, "submitted", "{:?}", db.backend);
            assert!(events.iter().any(|e| e.event.kind == "acknowledged"));
            assert!(events.windows(2).all(|w| w[0].event.at <= w[1].event.at), "{:?}", db.backend);
        }
        // A second run over the same territory changes nothing.
        run(s, scale, "not-a-real-hash").await.unwrap();
        assert_eq!(guichet::audit::verify(s).await.unwrap().events, report.events);
        // A territory whose requests are not the ones asked for (a generation stopped halfway
        // looks the same) is refused, in French, rather than taken as done.
        let other = Scale { requests: 700, ..scale };
        let refused = run(s, other, "not-a-real-hash").await.unwrap_err().to_string();
        assert!(refused.contains("recommencez sur une base vide"), "{refused}");
        assert_eq!(guichet::audit::verify(s).await.unwrap().events, report.events);
        db.finish().await;
    }
}
