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
    alter(db, sql, event.as_uuid()).await;
}

/// The commune "alpha" and its service "question-mairie".
async fn commune_with_service(
    s: &dyn guichet_store::Store,
) -> (guichet_store::Tenant, guichet_store::Service) {
    let t = s.add_tenant(&tenant("alpha", TenantKind::Commune, None, 1), &[]).await.unwrap();
    let svc = service(t.id, "question-mairie");
    s.add_service(&svc).await.unwrap();
    (t, svc)
}

/// A request with no answers, submitted now.
fn bare_request(
    id: RequestId,
    tenant: guichet_domain::TenantId,
    service: guichet_domain::ServiceId,
) -> NewRequest {
    NewRequest {
        id,
        tenant_id: tenant,
        commune_tenant_id: None,
        service_id: service,
        citizen_id: None,
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
        let (t, svc) = commune_with_service(s.as_ref()).await;
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
        let r = NewRequest { citizen_id: Some(c.id), ..bare_request(id, t.id, svc.id) };
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
            for chain in s.list_chains().await.unwrap().into_iter().filter(|c| c.tenant == t) {
                events += s.list_chain_events(t, chain.lane, 0, 1000).await.unwrap().len();
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
        let record =
            |n: usize| SubmissionRecords { events: vec![note(a.id, n)], ..Default::default() };
        s.record(&record(0)).await.unwrap();
        let lanes = || async {
            let chains = s.list_chains().await.unwrap();
            chains.into_iter().map(|c| (c.tenant, c.lane, c.head.map(|h| h.0))).collect::<Vec<_>>()
        };
        assert_eq!(lanes().await, vec![(a.id, 0, Some(1))]);

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

        assert_eq!(lanes().await, vec![(a.id, 0, Some(2)), (a.id, 1, Some(1))]);
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

/// Runs one statement binding `$1` to `id`, on either backend.
async fn alter(db: &TestDb, sql: &str, id: uuid::Uuid) {
    match db.backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
            sqlx::query(sql).bind(id).execute(&pool).await.unwrap();
            pool.close().await;
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
            sqlx::query(sql).bind(id).execute(&pool).await.unwrap();
            pool.close().await;
        }
    }
}

#[tokio::test]
async fn a_chain_cut_short_of_its_head_or_an_event_moved_to_a_lane_without_head_is_found() {
    for db in TestDb::all().await {
        let s = &db.store;
        let a = s.add_tenant(&tenant("alpha", TenantKind::Commune, None, 1), &[]).await.unwrap();
        let b = s.add_tenant(&tenant("bravo", TenantKind::Commune, None, 2), &[]).await.unwrap();
        let mut notes = Vec::new();
        for (t, n) in [(a.id, 0), (a.id, 1), (a.id, 2), (b.id, 0)] {
            let e = note(t, n);
            notes.push(e.id);
            s.record(&SubmissionRecords { events: vec![e], ..Default::default() }).await.unwrap();
        }
        let run = || {
            let url = db.url.clone();
            async move { tokio::task::spawn_blocking(move || verify(&url)).await.unwrap() }
        };
        let (code, stdout, stderr) = run().await;
        assert_eq!(code, Some(0), "{:?}: {stdout} {stderr}", db.backend);

        // Alpha's last event deleted: every remaining link holds, but the head names a third.
        alter(&db, "delete from events where id = $1", notes[2].as_uuid()).await;
        // Bravo's one event moved to a lane that has no head.
        alter(&db, "update events set lane = 7 where id = $1", notes[3].as_uuid()).await;
        let (code, stdout, stderr) = run().await;
        assert_eq!(code, Some(1), "{:?}: {stdout} {stderr}", db.backend);
        assert!(
            stdout.contains(&format!("{}, chaîne 0, événement {} (n° 3)", a.id, notes[1]))
                && stdout.contains("ends before its head"),
            "{:?}: {stdout}",
            db.backend
        );
        assert!(
            stdout.contains(&format!("{}, chaîne 7, événement {}", b.id, notes[3]))
                && stdout.contains("has no head"),
            "{:?}: {stdout}",
            db.backend
        );
        // Bravo's lane 0 lost its only event too.
        assert!(
            stdout.contains(&format!("{}, chaîne 0, événement (aucun) (n° 1)", b.id)),
            "{stdout}"
        );
        db.finish().await;
    }
}

#[tokio::test]
async fn a_requests_timeline_is_in_the_order_its_events_were_written_whatever_their_times() {
    for db in TestDb::all().await {
        let s = &db.store;
        let (t, svc) = commune_with_service(s.as_ref()).await;
        let id = RequestId::new();
        let now = OffsetDateTime::now_utc();
        // Events are stamped when they are built, not in the order a write appends them (a
        // status change appends its "pièces demandées" after the change, built before it).
        let event = |kind: &str, seconds: i64| NewEvent {
            id: EventId::new(),
            tenant_id: t.id,
            request_id: Some(id),
            at: now + time::Duration::seconds(seconds),
            actor_kind: ActorKind::Agent,
            actor_id: None,
            channel: Channel::Web,
            kind: kind.into(),
            citizen_visible: true,
            data: serde_json::json!({}),
        };
        let r = bare_request(id, t.id, svc.id);
        let first = vec![event("submitted", 5), event("acknowledged", 4)];
        s.submit_request(&r, &|_: &str| {
            Ok(SubmissionRecords { events: first.clone(), ..Default::default() })
        })
        .await
        .unwrap();
        let later = vec![event("status_changed", 3), event("incomplete", 2)];
        s.record(&SubmissionRecords { events: later, ..Default::default() }).await.unwrap();
        let kinds = |events: Vec<guichet_store::Event>| -> Vec<String> {
            events.into_iter().map(|e| e.event.kind).collect()
        };
        let written = ["submitted", "acknowledged", "status_changed", "incomplete"];
        assert_eq!(
            kinds(s.list_request_events(id, false).await.unwrap()),
            written,
            "{:?}",
            db.backend
        );
        assert_eq!(
            kinds(s.list_request_events(id, true).await.unwrap()),
            written,
            "{:?}",
            db.backend
        );
        assert_eq!(kinds(s.list_request_history(id).await.unwrap()), written, "{:?}", db.backend);
        db.finish().await;
    }
}

/// The request's `updated_at`, as text, on either backend.
async fn updated_at(db: &TestDb, id: RequestId) -> String {
    match db.backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
            let sql = "select cast(updated_at as text) from requests where id = $1";
            let at: String =
                sqlx::query_scalar(sql).bind(id.as_uuid()).fetch_one(&pool).await.unwrap();
            pool.close().await;
            at
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
            let sql = "select updated_at::text from requests where id = $1";
            let at: String =
                sqlx::query_scalar(sql).bind(id.as_uuid()).fetch_one(&pool).await.unwrap();
            pool.close().await;
            at
        }
    }
}

#[tokio::test]
async fn a_view_is_traced_without_touching_the_request_and_an_action_updates_it() {
    for db in TestDb::all().await {
        let s = &db.store;
        let (t, svc) = commune_with_service(s.as_ref()).await;
        let id = RequestId::new();
        s.submit_request(&bare_request(id, t.id, svc.id), &|_: &str| {
            Ok(SubmissionRecords::default())
        })
        .await
        .unwrap();
        let submitted = updated_at(&db, id).await;
        let on_request = |kind: &str| NewEvent {
            request_id: Some(id),
            kind: kind.into(),
            actor_kind: ActorKind::Agent,
            ..note(t.id, 0)
        };
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        s.record(&SubmissionRecords { events: vec![on_request("viewed")], ..Default::default() })
            .await
            .unwrap();
        assert_eq!(
            updated_at(&db, id).await,
            submitted,
            "{:?}: a view is not an update",
            db.backend
        );
        let history = s.list_request_history(id).await.unwrap();
        assert!(
            history.iter().any(|e| e.event.kind == "viewed"),
            "{:?}: the view is traced",
            db.backend
        );
        s.record(&SubmissionRecords { events: vec![on_request("note")], ..Default::default() })
            .await
            .unwrap();
        assert_ne!(updated_at(&db, id).await, submitted, "{:?}", db.backend);
        db.finish().await;
    }
}

#[tokio::test]
async fn many_concurrent_writes_of_one_tenant_open_at_most_sixteen_lanes_and_all_verify() {
    // PostgreSQL, with more connections than lanes: writes race to open lanes, and past
    // sixteen wait for one; none may fail, lose an event or break a chain.
    let Some(db) = TestDb::postgres_with_connections(32).await else { return };
    let s = db.store.clone();
    let a = s.add_tenant(&tenant("alpha", TenantKind::Commune, None, 1), &[]).await.unwrap();
    let writes: Vec<_> = (0..96)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                let events = vec![note(a.id, 2 * i), note(a.id, 2 * i + 1)];
                s.record(&SubmissionRecords { events, ..Default::default() }).await
            })
        })
        .collect();
    for w in writes {
        w.await.unwrap().unwrap();
    }
    let chains = s.list_chains().await.unwrap();
    assert!((2..=16).contains(&chains.len()), "{} lanes", chains.len());
    let mut notes = Vec::new();
    for chain in &chains {
        let events = s.list_chain_events(a.id, chain.lane, 0, 1000).await.unwrap();
        assert_eq!(chain.head.as_ref().map(|h| h.0), Some(events.len() as i64));
        // A write's two events are consecutive on its lane.
        for pair in events.chunks(2) {
            let n: Vec<i64> = pair.iter().map(|e| e.event.data["n"].as_i64().unwrap()).collect();
            assert_eq!((n[0] % 2, n[1]), (0, n[0] + 1), "lane {}", chain.lane);
        }
        notes.extend(events.iter().map(|e| e.event.data["n"].as_i64().unwrap()));
    }
    notes.sort_unstable();
    assert_eq!(notes, (0..192).collect::<Vec<i64>>());
    let url = db.url.clone();
    let (code, stdout, stderr) = tokio::task::spawn_blocking(move || verify(&url)).await.unwrap();
    assert_eq!(code, Some(0), "{stdout} {stderr}");
    db.finish().await;
}
