//! `guichet audit verify` finds a tampered event, on every backend.

use guichet_domain::request::{ActorKind, Channel};
use guichet_domain::{EventId, RequestId, TenantKind};
use guichet_store::{NewEvent, NewRequest, SubmissionRecords, TokenPurpose};
use guichet_testkit::fixtures::{citizen_account, service, tenant, token};
use guichet_testkit::{Backend, TestDb};
use time::OffsetDateTime;

use crate::http::command;

async fn tamper(db: &TestDb, event: EventId) {
    let sql = "update events set data = '{\"body\":\"modifié après coup\"}' where id = $1";
    match db.backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
            sqlx::query(sql).bind(event.as_uuid()).execute(&pool).await.unwrap();
            pool.close().await;
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
            sqlx::query(sql).bind(event.as_uuid()).execute(&pool).await.unwrap();
            pool.close().await;
        }
    }
}

fn verify(url: &str) -> (Option<i32>, String, String) {
    let dir = std::env::temp_dir();
    let out = command(&["audit", "verify", "--data-dir", dir.to_str().unwrap()])
        .env("DATABASE_URL", url)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn changing_one_event_row_makes_audit_verify_fail_and_name_it() {
    for db in TestDb::all().await {
        let s = &db.store;
        let t = s.add_tenant(&tenant("alpha", TenantKind::Commune, None, 1), &[]).await.unwrap();
        let svc = service(t.id, "question-mairie");
        s.add_service(&svc).await.unwrap();
        let c = s
            .create_citizen(
                &citizen_account("a@exemple.test", None),
                &token("t", TokenPurpose::VerifyEmail),
                &[],
                &[],
            )
            .await
            .unwrap();
        let id = RequestId::new();
        let events: Vec<NewEvent> = (0..3)
            .map(|i| NewEvent {
                id: EventId::new(),
                tenant_id: t.id,
                request_id: Some(id),
                at: OffsetDateTime::now_utc(),
                actor_kind: ActorKind::Citizen,
                actor_id: Some(c.id.as_uuid()),
                channel: Channel::Web,
                kind: "message".into(),
                citizen_visible: true,
                data: serde_json::json!({"body": format!("message {i}")}),
            })
            .collect();
        let target = events[1].id;
        let r = NewRequest {
            id,
            tenant_id: t.id,
            commune_tenant_id: None,
            service_id: svc.id,
            citizen_id: Some(c.id),
            draft_id: None,
            reference_prefix: "QM".into(),
            channel: Channel::Web,
            status: "received".into(),
            answers: Default::default(),
            submitter: serde_json::json!({}),
            submitted_at: OffsetDateTime::now_utc(),
            deemed_decision_on: None,
            ack_due_at: None,
            history: None,
            phase: "open".into(),
            search_text: String::new(),
        };
        s.submit_request(&r, &|_: &str| {
            Ok(SubmissionRecords { events: events.clone(), ..Default::default() })
        })
        .await
        .unwrap();
        let url = db.url.clone();
        let (code, stdout, stderr) =
            tokio::task::spawn_blocking(move || verify(&url)).await.unwrap();
        assert_eq!(code, Some(0), "{:?}: {stdout} {stderr}", db.backend);
        assert!(stdout.contains("toutes les chaînes sont intactes"), "{stdout}");

        tamper(&db, target).await;
        let url = db.url.clone();
        let (code, stdout, stderr) =
            tokio::task::spawn_blocking(move || verify(&url)).await.unwrap();
        assert_eq!(code, Some(1), "{:?}: {stdout} {stderr}", db.backend);
        assert!(
            stdout.contains(&format!("événement {target} (n° 2)")),
            "{:?}: {stdout}",
            db.backend
        );
        assert!(
            stderr.contains(&target.to_string()) && stderr.contains("does not match its hash"),
            "{stderr}"
        );
        db.finish().await;
    }
}

/// A system note `n` in a tenant's chain, outside any request.
fn note(tenant: guichet_domain::TenantId, n: usize) -> NewEvent {
    NewEvent {
        id: EventId::new(),
        tenant_id: tenant,
        request_id: None,
        at: OffsetDateTime::now_utc(),
        actor_kind: ActorKind::System,
        actor_id: None,
        channel: Channel::Web,
        kind: "note".into(),
        citizen_visible: false,
        data: serde_json::json!({ "n": n }),
    }
}

#[tokio::test]
async fn events_of_several_tenants_in_one_write_each_extend_their_own_chain() {
    for db in TestDb::all().await {
        let s = &db.store;
        let a = s.add_tenant(&tenant("alpha", TenantKind::Commune, None, 1), &[]).await.unwrap();
        let b = s.add_tenant(&tenant("bravo", TenantKind::Commune, None, 2), &[]).await.unwrap();
        let event = |t: &guichet_store::Tenant, i: usize| note(t.id, i);
        // Two writes, each interleaving both tenants' events.
        for round in 0..2 {
            let events = vec![
                event(&a, round * 3),
                event(&b, round * 3),
                event(&a, round * 3 + 1),
                event(&a, round * 3 + 2),
                event(&b, round * 3 + 1),
            ];
            s.record(&SubmissionRecords { events, ..Default::default() }).await.unwrap();
        }
        for (t, n) in [(&a, 6), (&b, 4)] {
            let chain = s.list_tenant_events(t.id, 0, 100).await.unwrap();
            let seqs: Vec<i64> = chain.iter().map(|e| e.seq).collect();
            assert_eq!(seqs, (1..=n).collect::<Vec<i64>>(), "{:?}", db.backend);
            for pair in chain.windows(2) {
                assert_eq!(pair[1].prev_hash, pair[0].hash, "{:?}", db.backend);
            }
            let order: Vec<i64> = chain.iter().filter_map(|e| e.event.data["n"].as_i64()).collect();
            assert_eq!(
                order,
                {
                    let mut o = order.clone();
                    o.sort();
                    o
                },
                "in write order"
            );
        }
        let url = db.url.clone();
        let (code, stdout, stderr) =
            tokio::task::spawn_blocking(move || verify(&url)).await.unwrap();
        assert_eq!(code, Some(0), "{:?}: {stdout} {stderr}", db.backend);
        db.finish().await;
    }
}

#[tokio::test]
async fn concurrent_writes_touching_two_tenants_in_opposite_orders_all_succeed() {
    for db in TestDb::all().await {
        let s = db.store.clone();
        let a = s.add_tenant(&tenant("alpha", TenantKind::Commune, None, 1), &[]).await.unwrap();
        let b = s.add_tenant(&tenant("bravo", TenantKind::Commune, None, 2), &[]).await.unwrap();
        let event = |t: guichet_domain::TenantId| note(t, 0);
        // Half the writes name alpha first, half bravo first: locking the heads in the events'
        // order would let two of them wait on each other (a deadlock on PostgreSQL).
        let writes: Vec<_> = (0..24)
            .map(|i| {
                let s = s.clone();
                let order = if i % 2 == 0 { [a.id, b.id] } else { [b.id, a.id] };
                tokio::spawn(async move {
                    let events = vec![event(order[0]), event(order[1]), event(order[0])];
                    s.record(&SubmissionRecords { events, ..Default::default() }).await
                })
            })
            .collect();
        for w in writes {
            w.await.unwrap().unwrap_or_else(|e| panic!("{:?}: {e}", db.backend));
        }
        assert_eq!(s.list_tenant_events(a.id, 0, 1000).await.unwrap().len(), 36);
        assert_eq!(s.list_tenant_events(b.id, 0, 1000).await.unwrap().len(), 36);
        let url = db.url.clone();
        let (code, stdout, stderr) =
            tokio::task::spawn_blocking(move || verify(&url)).await.unwrap();
        assert_eq!(code, Some(0), "{:?}: {stdout} {stderr}", db.backend);
        db.finish().await;
    }
}
