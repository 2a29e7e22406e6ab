//! Dashboard figures on a fixture computed by hand (several services, channels and communes,
//! a reopening, a wait for missing items, a late and a missing acknowledgement), on every
//! backend; and the figures kept on the requests agree with a replay of their events.

use std::sync::Arc;

use guichet_domain::request::{ActorKind, Channel};
use guichet_domain::{EventId, RequestId, ServiceId, TenantId, TenantKind};
use guichet_store::{DashboardQuery, NewEvent, NewRequest, StatusChange, Store, SubmissionRecords};
use guichet_testkit::fixtures::{service, tenant};
use guichet_testkit::{Backend, TestDb};
use time::macros::{date, datetime};
use time::{Date, Duration, OffsetDateTime};

struct World {
    epci: TenantId,
    a: TenantId,
    b: TenantId,
    sa: ServiceId,
    sb: ServiceId,
    se: ServiceId,
}

async fn world(s: &Arc<dyn Store>) -> World {
    let epci = s.add_tenant(&tenant("cc-test", TenantKind::Epci, None, 1), &[]).await.unwrap();
    let a =
        s.add_tenant(&tenant("alpha", TenantKind::Commune, Some(epci.id), 2), &[]).await.unwrap();
    let b =
        s.add_tenant(&tenant("bravo", TenantKind::Commune, Some(epci.id), 3), &[]).await.unwrap();
    let (sa, sb, se) = (
        service(a.id, "question-mairie"),
        service(b.id, "acte-etat-civil"),
        service(epci.id, "signalement"),
    );
    for x in [&sa, &sb, &se] {
        s.add_service(x).await.unwrap();
    }
    World { epci: epci.id, a: a.id, b: b.id, sa: sa.id, sb: sb.id, se: se.id }
}

fn event(
    tenant: TenantId,
    r: RequestId,
    at: OffsetDateTime,
    kind: &str,
    agent: bool,
    visible: bool,
    data: serde_json::Value,
) -> NewEvent {
    NewEvent {
        id: EventId::new(),
        tenant_id: tenant,
        request_id: Some(r),
        at,
        actor_kind: if agent { ActorKind::Agent } else { ActorKind::System },
        actor_id: None,
        channel: Channel::Web,
        kind: kind.to_owned(),
        citizen_visible: visible,
        data,
    }
}

struct Req<'a> {
    tenant: TenantId,
    commune: Option<TenantId>,
    service: ServiceId,
    channel: Channel,
    at: OffsetDateTime,
    ack: Option<OffsetDateTime>,
    ack_due: OffsetDateTime,
    deemed: Option<Date>,
    label: &'a str,
}

async fn submit(s: &Arc<dyn Store>, r: Req<'_>) -> RequestId {
    let id = RequestId::new();
    let new = NewRequest {
        id,
        tenant_id: r.tenant,
        commune_tenant_id: r.commune,
        service_id: r.service,
        citizen_id: None,
        draft_id: None,
        reference_prefix: "T".into(),
        channel: r.channel,
        status: "received".into(),
        answers: Default::default(),
        submitter: serde_json::json!({"nom": r.label}),
        submitted_at: r.at,
        deemed_decision_on: r.deemed,
        ack_due_at: Some(r.ack_due),
        history: None,
        phase: "open".into(),
        search_text: r.label.into(),
    };
    let (tenant, ack, at) = (r.tenant, r.ack, r.at);
    s.submit_request(&new, &move |reference: &str| {
        let mut events = vec![event(
            tenant,
            id,
            at,
            "submitted",
            false,
            true,
            serde_json::json!({"reference": reference}),
        )];
        if let Some(ack) = ack {
            events.push(event(
                tenant,
                id,
                ack,
                "acknowledged",
                false,
                true,
                serde_json::json!({"kind": "are"}),
            ));
        }
        Ok(SubmissionRecords { events, ..Default::default() })
    })
    .await
    .unwrap();
    id
}

/// A status change made by an agent at `at` (visible: it is a response).
async fn step(
    s: &Arc<dyn Store>,
    tenant: TenantId,
    r: RequestId,
    from: &str,
    to: &str,
    phase: &str,
    at: OffsetDateTime,
) {
    let records = SubmissionRecords {
        events: vec![event(
            tenant,
            r,
            at,
            "status_changed",
            true,
            true,
            serde_json::json!({"from": from, "to": to}),
        )],
        ..Default::default()
    };
    let change = StatusChange {
        request_id: r,
        expected_status: from.into(),
        status: to.into(),
        phase: phase.into(),
        deemed_decision_on: None,
    };
    s.change_status(&change, &records).await.unwrap();
}

const DAY: i64 = 86_400_000_000;
const HOUR: i64 = 3_600_000_000;

#[tokio::test]
async fn every_dashboard_figure_matches_the_hand_computed_fixture() {
    for db in TestDb::all().await {
        let s = db.store.clone();
        let w = world(&s).await;
        let h = |t: OffsetDateTime, n: i64| t + Duration::hours(n);
        // r1: alpha, web; answered after 24 h, closed after 3 days.
        let t1 = datetime!(2026-03-02 09:00 UTC);
        let r1 = submit(
            &s,
            Req {
                tenant: w.a,
                commune: None,
                service: w.sa,
                channel: Channel::Web,
                at: t1,
                ack: Some(h(t1, 1)),
                ack_due: datetime!(2026-03-16 23:00 UTC),
                deemed: None,
                label: "r1",
            },
        )
        .await;
        step(&s, w.a, r1, "received", "in_progress", "open", datetime!(2026-03-03 09:00 UTC)).await;
        step(&s, w.a, r1, "in_progress", "accepted", "closed", datetime!(2026-03-05 09:00 UTC))
            .await;
        // r2: alpha, e-mail; three days waiting for the citizen; closed after 7 days: 4 days.
        let t2 = datetime!(2026-03-04 09:00 UTC);
        let r2 = submit(
            &s,
            Req {
                tenant: w.a,
                commune: None,
                service: w.sa,
                channel: Channel::Email,
                at: t2,
                ack: Some(h(t2, 1)),
                ack_due: datetime!(2026-03-18 23:00 UTC),
                deemed: None,
                label: "r2",
            },
        )
        .await;
        step(
            &s,
            w.a,
            r2,
            "received",
            "awaiting_citizen",
            "waiting",
            datetime!(2026-03-05 09:00 UTC),
        )
        .await;
        step(
            &s,
            w.a,
            r2,
            "awaiting_citizen",
            "in_progress",
            "open",
            datetime!(2026-03-08 09:00 UTC),
        )
        .await;
        step(&s, w.a, r2, "in_progress", "accepted", "closed", datetime!(2026-03-11 09:00 UTC))
            .await;
        // r3: bravo, SMS; acknowledged late; closed, reopened, closed again after 10 days.
        let t3 = datetime!(2026-03-10 09:00 UTC);
        let r3 = submit(
            &s,
            Req {
                tenant: w.b,
                commune: None,
                service: w.sb,
                channel: Channel::Sms,
                at: t3,
                ack: Some(datetime!(2026-03-13 09:00 UTC)),
                ack_due: datetime!(2026-03-11 23:00 UTC),
                deemed: None,
                label: "r3",
            },
        )
        .await;
        step(&s, w.b, r3, "received", "rejected", "closed", datetime!(2026-03-12 09:00 UTC)).await;
        step(&s, w.b, r3, "rejected", "in_progress", "open", datetime!(2026-03-14 09:00 UTC)).await;
        step(&s, w.b, r3, "in_progress", "closed", "closed", datetime!(2026-03-20 09:00 UTC)).await;
        // r4: the EPCI's service for a bravo citizen, by post; open, past its deadline.
        let t4 = datetime!(2026-03-15 09:00 UTC);
        submit(
            &s,
            Req {
                tenant: w.epci,
                commune: Some(w.b),
                service: w.se,
                channel: Channel::Courrier,
                at: t4,
                ack: Some(t4),
                ack_due: datetime!(2026-03-27 23:00 UTC),
                deemed: Some(date!(2026 - 03 - 20)),
                label: "r4",
            },
        )
        .await;
        // r5: alpha, at the counter; an agent's message after 4 hours; due soon.
        let t5 = datetime!(2026-03-28 09:00 UTC);
        let r5 = submit(
            &s,
            Req {
                tenant: w.a,
                commune: None,
                service: w.sa,
                channel: Channel::Guichet,
                at: t5,
                ack: Some(t5),
                ack_due: datetime!(2026-04-10 22:00 UTC),
                deemed: Some(date!(2026 - 04 - 03)),
                label: "r5",
            },
        )
        .await;
        s.record(&SubmissionRecords {
            events: vec![event(
                w.a,
                r5,
                h(t5, 4),
                "message",
                true,
                true,
                serde_json::json!({"body": "Reçu"}),
            )],
            ..Default::default()
        })
        .await
        .unwrap();
        // An internal note is no response.
        s.record(&SubmissionRecords {
            events: vec![event(
                w.a,
                r5,
                h(t5, 1),
                "note",
                true,
                false,
                serde_json::json!({"body": "x"}),
            )],
            ..Default::default()
        })
        .await
        .unwrap();
        // r7: bravo, web, not acknowledged yet.
        let t7 = datetime!(2026-03-30 09:00 UTC);
        submit(
            &s,
            Req {
                tenant: w.b,
                commune: None,
                service: w.sb,
                channel: Channel::Web,
                at: t7,
                ack: None,
                ack_due: datetime!(2026-04-13 22:00 UTC),
                deemed: None,
                label: "r7",
            },
        )
        .await;
        // r6: the previous period; closed after 2 days.
        let t6 = datetime!(2026-02-10 09:00 UTC);
        let r6 = submit(
            &s,
            Req {
                tenant: w.a,
                commune: None,
                service: w.sa,
                channel: Channel::Web,
                at: t6,
                ack: Some(t6),
                ack_due: datetime!(2026-02-24 23:00 UTC),
                deemed: None,
                label: "r6",
            },
        )
        .await;
        step(&s, w.a, r6, "received", "accepted", "closed", datetime!(2026-02-12 09:00 UTC)).await;

        let q = DashboardQuery {
            tenants: vec![w.epci, w.a, w.b],
            commune: None,
            service: None,
            channel: None,
            from: datetime!(2026-03-01 00:00 UTC),
            to: datetime!(2026-03-31 00:00 UTC),
        };
        let previous =
            DashboardQuery { from: datetime!(2026-01-30 00:00 UTC), to: q.from, ..q.clone() };
        let backend = format!("{:?}", db.backend);

        // Volumes by service, channel, commune.
        let v = s.volume_counts(&q).await.unwrap();
        let total: i64 = v.iter().map(|c| c.n).sum();
        assert_eq!(total, 6, "{backend}");
        let by = |f: &dyn Fn(&guichet_store::VolumeCount) -> bool| {
            v.iter().filter(|c| f(c)).map(|c| c.n).sum::<i64>()
        };
        assert_eq!(
            (by(&|c| c.service == w.sa), by(&|c| c.service == w.sb), by(&|c| c.service == w.se)),
            (3, 2, 1),
            "{backend}"
        );
        assert_eq!(
            [
                Channel::Web,
                Channel::Email,
                Channel::Sms,
                Channel::Courrier,
                Channel::Guichet,
                Channel::Telephone
            ]
            .map(|ch| by(&|c| c.channel == ch)),
            [2, 1, 1, 1, 1, 0],
            "{backend}"
        );
        assert_eq!(
            (by(&|c| c.commune == w.a), by(&|c| c.commune == w.b), by(&|c| c.commune == w.epci)),
            (3, 3, 0),
            "{backend}: the EPCI's request counts for the citizen's commune"
        );
        assert_eq!(s.volume_counts(&previous).await.unwrap().iter().map(|c| c.n).sum::<i64>(), 1);
        let hours: i64 = s.volume_by_hour(&q).await.unwrap().iter().map(|(_, n)| n).sum();
        assert_eq!(hours, 6);
        // Filters narrow every figure the same way.
        let only_b = DashboardQuery { commune: Some(w.b), ..q.clone() };
        assert_eq!(s.volume_counts(&only_b).await.unwrap().iter().map(|c| c.n).sum::<i64>(), 3);
        let only_web = DashboardQuery { channel: Some(Channel::Web), ..q.clone() };
        assert_eq!(s.volume_counts(&only_web).await.unwrap().iter().map(|c| c.n).sum::<i64>(), 2);
        let only_alpha = DashboardQuery { tenants: vec![w.a], ..q.clone() };
        assert_eq!(s.volume_counts(&only_alpha).await.unwrap().iter().map(|c| c.n).sum::<i64>(), 3);

        // Processing times: r1 3 days, r2 7 − 3 waiting = 4 days, r3 10 days (its last closing).
        let p = s.processing_times(&q).await.unwrap();
        let get = |svc: Option<ServiceId>| {
            p.iter()
                .find(|x| x.service == svc)
                .cloned()
                .unwrap_or_else(|| panic!("{backend}: {svc:?} in {p:?}"))
        };
        let sa = get(Some(w.sa));
        assert_eq!((sa.n, sa.median_us, sa.p90_us), (2, 3 * DAY, 4 * DAY), "{backend}");
        let sb = get(Some(w.sb));
        assert_eq!((sb.n, sb.median_us, sb.p90_us), (1, 10 * DAY, 10 * DAY), "{backend}");
        let all = get(None);
        assert_eq!((all.n, all.median_us, all.p90_us), (3, 4 * DAY, 10 * DAY), "{backend}");
        let before = s.processing_times(&previous).await.unwrap();
        assert_eq!(before.iter().find(|x| x.service.is_none()).map(|x| x.median_us), Some(2 * DAY));

        // First responses: 24 h, 24 h, 48 h, 4 h; r4 and r7 have none.
        let (first, without) = s.first_response_times(&q).await.unwrap();
        let first = first.unwrap();
        assert_eq!(
            (first.n, first.median_us, first.p90_us, without),
            (4, 24 * HOUR, 48 * HOUR, 2),
            "{backend}"
        );

        // Backlog at the end of the period: r4 (16 days old, overdue), r5 (due soon), r7.
        let backlog = s.backlog(&q, q.to, 7).await.unwrap();
        assert_eq!(
            (
                backlog.open,
                backlog.under_7_days,
                backlog.under_30_days,
                backlog.under_90_days,
                backlog.over_90_days,
                backlog.overdue,
                backlog.due_soon
            ),
            (3, 2, 1, 0, 0, 1, 1),
            "{backend}"
        );
        // On 13 March r1, r2 and r3 were all closed (r3 reopened the next day): none pending;
        // on 15 March r3 (reopened) and r4 were.
        let mid = s.backlog(&q, datetime!(2026-03-13 00:00 UTC), 7).await.unwrap();
        assert_eq!(mid.open, 0, "{backend}");
        let later = s.backlog(&q, datetime!(2026-03-15 12:00 UTC), 7).await.unwrap();
        assert_eq!((later.open, later.under_7_days, later.overdue), (2, 2, 0), "{backend}");

        // Acknowledgements: r3 late, r7 none.
        let acks = s.acknowledgements(&q).await.unwrap();
        assert_eq!((acks.due, acks.in_time), (6, 4), "{backend}");

        // Views are traced in the history but left out of the timeline.
        s.record(&SubmissionRecords {
            events: vec![event(w.a, r1, h(t1, 100), "viewed", true, false, serde_json::json!({}))],
            ..Default::default()
        })
        .await
        .unwrap();
        let timeline = s.list_request_events(r1, false).await.unwrap();
        let history = s.list_request_history(r1).await.unwrap();
        assert!(timeline.iter().all(|e| e.event.kind != "viewed"), "{backend}");
        assert_eq!(history.len(), timeline.len() + 1, "{backend}");

        // The figures kept on the requests are exactly what their events say.
        let report = guichet::stats::verify(s.as_ref(), false).await.unwrap();
        assert_eq!(report.checked, 7, "{backend}");
        assert!(report.drifted.is_empty(), "{backend}: {:?}", report.drifted);
        // A figure edited behind the store's back is found and repaired from the events.
        let (id, _, mut t) = s.timings(None, 1).await.unwrap().remove(0);
        t.waiting_us += 1;
        s.set_timing(id, &t).await.unwrap();
        let report = guichet::stats::verify(s.as_ref(), true).await.unwrap();
        assert_eq!(report.drifted.len(), 1);
        assert!(guichet::stats::verify(s.as_ref(), false).await.unwrap().drifted.is_empty());
        // So is a phase period whose copy of its request's dimensions was edited.
        assert_eq!(report.periods_drifted, 0, "{backend}");
        tamper_period(&db, id).await;
        let report = guichet::stats::verify(s.as_ref(), false).await.unwrap();
        assert_eq!(report.periods_drifted, 1, "{backend}");
        assert_eq!(guichet::stats::verify(s.as_ref(), true).await.unwrap().periods_drifted, 1);
        assert_eq!(guichet::stats::verify(s.as_ref(), false).await.unwrap().periods_drifted, 0);
        db.finish().await;
    }
}

/// Edits a request's first phase period behind the store's back.
async fn tamper_period(db: &TestDb, request: RequestId) {
    let sql = "update request_periods set channel = 'tampered' where request_id = $1 and seq = 0";
    match db.backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
            sqlx::query(sql).bind(request.as_uuid()).execute(&pool).await.unwrap();
            pool.close().await;
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
            sqlx::query(sql).bind(request.as_uuid()).execute(&pool).await.unwrap();
            pool.close().await;
        }
    }
}

#[tokio::test]
async fn the_period_dimensions_migration_fills_the_periods_already_there() {
    for db in TestDb::all().await {
        let backend = db.backend;
        let s = db.store.clone();
        let w = world(&s).await;
        let t = datetime!(2026-03-02 09:00 UTC);
        for (commune, label) in [(None, "r1"), (Some(w.b), "r2")] {
            submit(
                &s,
                Req {
                    tenant: if commune.is_some() { w.epci } else { w.a },
                    commune,
                    service: if commune.is_some() { w.se } else { w.sa },
                    channel: Channel::Web,
                    at: t,
                    ack: None,
                    ack_due: datetime!(2026-03-16 23:00 UTC),
                    deemed: Some(date!(2026 - 05 - 02)),
                    label,
                },
            )
            .await;
        }
        // Back to the schema as it was before `period_dimensions`, with its periods.
        let undo = [
            "drop index request_periods_ending_idx",
            "alter table request_periods drop column service_id",
            "alter table request_periods drop column channel",
            "alter table request_periods drop column commune_id",
            "alter table request_periods drop column submitted_at",
            "alter table request_periods drop column deemed_decision_on",
            "create index request_periods_ending_idx on request_periods (tenant_id, ended_at, \
             started_at, request_id) where phase <> 'closed'",
            "delete from _sqlx_migrations where version = 20261130000008",
        ];
        let missing = "select count(*) from request_periods where service_id is null \
             or channel is null or commune_id is null or submitted_at is null \
             or deemed_decision_on is null";
        // Undoes the migration with a raw pool, migrates again with the store, counts.
        macro_rules! undo_and_migrate {
            ($pool:ty, $store:expr) => {{
                let pool = <$pool>::connect(&db.url).await.unwrap();
                for sql in undo {
                    sqlx::query(sql).execute(&pool).await.unwrap();
                }
                let store = $store.await.unwrap();
                store.migrate().await.unwrap();
                store.close().await;
                let n: i64 = sqlx::query_scalar("select count(*) from request_periods")
                    .fetch_one(&pool)
                    .await
                    .unwrap();
                let left: i64 = sqlx::query_scalar(missing).fetch_one(&pool).await.unwrap();
                pool.close().await;
                (n, left)
            }};
        }
        let (periods, left) = match backend {
            Backend::Sqlite => undo_and_migrate!(
                sqlx::SqlitePool,
                guichet_store_sqlite::SqliteStore::connect(&db.url, &Default::default())
            ),
            Backend::Postgres => undo_and_migrate!(
                sqlx::PgPool,
                guichet_store_postgres::PgStore::connect(&db.url, &Default::default())
            ),
        };
        assert_eq!((periods, left), (2, 0), "{backend:?}");
        // The copies agree with their requests, commune included (the EPCI's request names
        // the citizen's commune).
        let report = guichet::stats::verify(s.as_ref(), false).await.unwrap();
        assert_eq!(report.periods_drifted, 0, "{backend:?}");
        db.finish().await;
    }
}
