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
            let chain = s.list_chain_events(t.id, 0, 0, 100).await.unwrap();
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
        for t in [a.id, b.id] {
            let mut events = 0;
            for (_, lane) in s.list_chains().await.unwrap().into_iter().filter(|c| c.0 == t) {
                events += s.list_chain_events(t, lane, 0, 1000).await.unwrap().len();
            }
            assert_eq!(events, 36, "{:?}", db.backend);
        }
        let url = db.url.clone();
        let (code, stdout, stderr) =
            tokio::task::spawn_blocking(move || verify(&url)).await.unwrap();
        assert_eq!(code, Some(0), "{:?}: {stdout} {stderr}", db.backend);
        db.finish().await;
    }
}

#[tokio::test]
async fn a_write_takes_a_free_lane_of_its_tenants_chain_rather_than_wait_for_another_commit() {
    // PostgreSQL only: there, writes of one tenant run side by side, and one holding the
    // tenant's chain until its commit (which waits for the disk) must not hold up the others.
    // SQLite's one writer runs them one after the other, on one lane.
    for db in TestDb::all().await {
        if db.backend != Backend::Postgres {
            db.finish().await;
            continue;
        }
        let s = &db.store;
        let a = s.add_tenant(&tenant("alpha", TenantKind::Commune, None, 1), &[]).await.unwrap();
        let record = |n: usize| SubmissionRecords { events: vec![note(a.id, n)], ..Default::default() };
        s.record(&record(0)).await.unwrap();
        assert_eq!(s.list_chains().await.unwrap(), vec![(a.id, 0)]);

        // Another write holds lane 0, as one waiting for its commit does.
        let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
        let mut holder = pool.begin().await.unwrap();
        sqlx::query("select seq from event_heads where tenant_id = $1 and lane = 0 for update")
            .bind(a.id.as_uuid())
            .fetch_one(&mut *holder)
            .await
            .unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(10), s.record(&record(1)))
            .await
            .expect("the write waited for the lane another write holds")
            .unwrap();
        holder.rollback().await.unwrap();
        s.record(&record(2)).await.unwrap();

        assert_eq!(s.list_chains().await.unwrap(), vec![(a.id, 0), (a.id, 1)]);
        let lane = |n: i32| s.list_chain_events(a.id, n, 0, 100);
        let (zero, one) = (lane(0).await.unwrap(), lane(1).await.unwrap());
        let notes = |chain: &[guichet_store::Event]| -> Vec<(i64, i64)> {
            chain.iter().map(|e| (e.seq, e.event.data["n"].as_i64().unwrap())).collect()
        };
        // The free lane 0 is taken again once released: lanes are opened only when needed.
        assert_eq!(notes(&zero), vec![(1, 0), (2, 2)]);
        assert_eq!(notes(&one), vec![(1, 1)]);
        assert_eq!(one[0].prev_hash, guichet_domain::audit::GENESIS);
        assert!(one.iter().chain(&zero).all(|e| e.event.tenant_id == a.id));
        let url = db.url.clone();
        let (code, stdout, stderr) =
            tokio::task::spawn_blocking(move || verify(&url)).await.unwrap();
        assert_eq!(code, Some(0), "{stdout} {stderr}");
        assert!(stdout.contains("2 chaînes vérifiées, 3 événements"), "{stdout}");

        // An event moved to another lane, or changed there, breaks the chain.
        sqlx::query("update events set lane = 1, seq = 2, prev_hash = $2 where id = $1")
            .bind(zero[1].event.id.as_uuid())
            .bind(&one[0].hash)
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        let url = db.url.clone();
        let (code, stdout, stderr) =
            tokio::task::spawn_blocking(move || verify(&url)).await.unwrap();
        assert_eq!(code, Some(1), "{stdout} {stderr}");
        assert!(stdout.contains(&zero[1].event.id.to_string()), "{stdout}");
        db.finish().await;
    }
}
