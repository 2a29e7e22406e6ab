//! Back-office storage stories: tenant walls in every query, filters, full-text search, keyset
//! pagination, status changes, assignment, the audit chain; on every backend.

use std::sync::Arc;

use guichet_domain::request::{ActorKind, Channel};
use guichet_domain::{AgentId, CitizenId, Email, EventId, RequestId, Role, TenantId, TenantKind};
use guichet_store::{
    AssigneeFilter, Cursor, DeadlineFilter, InboxFilter, NewAgent, NewEvent, NewRequest,
    StatusChange, Store, StoreError, SubmissionRecords, TerritoryImport, TokenPurpose,
};
use guichet_testkit::fixtures::{citizen_account, service, tenant, token};
use guichet_testkit::{Backend, TestDb};
use time::{Date, Duration, OffsetDateTime};

struct World {
    a: TenantId,
    b: TenantId,
    agent_a: AgentId,
    agent_b: AgentId,
    agent_epci: AgentId,
    citizen: CitizenId,
    svc_a: guichet_domain::ServiceId,
    svc_b: guichet_domain::ServiceId,
}

fn agent(email: &str, memberships: Vec<(TenantId, Role)>) -> NewAgent {
    NewAgent {
        id: AgentId::new(),
        email: Email::parse(email).unwrap(),
        password_hash: "h".into(),
        display_name: email.into(),
        memberships,
    }
}

async fn world(s: &Arc<dyn Store>) -> World {
    let epci = s.add_tenant(&tenant("cc-test", TenantKind::Epci, None, 1), &[]).await.unwrap();
    let a =
        s.add_tenant(&tenant("alpha", TenantKind::Commune, Some(epci.id), 2), &[]).await.unwrap();
    let b =
        s.add_tenant(&tenant("bravo", TenantKind::Commune, Some(epci.id), 3), &[]).await.unwrap();
    let (agent_a, agent_b) = (
        agent("a@alpha.test", vec![(a.id, Role::Agent)]),
        agent("b@bravo.test", vec![(b.id, Role::Agent)]),
    );
    let agent_epci = agent(
        "e@cc.test",
        vec![(epci.id, Role::Agent), (a.id, Role::Agent), (b.id, Role::Supervisor)],
    );
    let ids = (agent_a.id, agent_b.id, agent_epci.id);
    s.import_territory(&TerritoryImport {
        name: "agents".into(),
        agents: vec![agent_a, agent_b, agent_epci],
        ..Default::default()
    })
    .await
    .unwrap();
    let svc_a = service(a.id, "signalement");
    let svc_b = service(b.id, "question-mairie");
    s.add_service(&svc_a).await.unwrap();
    s.add_service(&svc_b).await.unwrap();
    let citizen = s
        .create_citizen(
            &citizen_account("camille@exemple.test", None),
            &token("t", TokenPurpose::VerifyEmail),
            &[],
            &[],
        )
        .await
        .unwrap();
    World {
        a: a.id,
        b: b.id,
        agent_a: ids.0,
        agent_b: ids.1,
        agent_epci: ids.2,
        citizen: citizen.id,
        svc_a: svc_a.id,
        svc_b: svc_b.id,
    }
}

#[expect(clippy::too_many_arguments, reason = "a test fixture spelling out each column")]
async fn submit(
    s: &Arc<dyn Store>,
    tenant: TenantId,
    svc: guichet_domain::ServiceId,
    citizen: CitizenId,
    text: &str,
    at: OffsetDateTime,
    deemed: Option<Date>,
    channel: Channel,
) -> RequestId {
    let r = NewRequest {
        deemed_decision_on: deemed,
        channel,
        ..new_request(tenant, svc, citizen, text, at)
    };
    s.submit_request(&r, &|_: &str| Ok(SubmissionRecords::default())).await.unwrap();
    r.id
}

fn new_request(
    tenant: TenantId,
    svc: guichet_domain::ServiceId,
    citizen: CitizenId,
    text: &str,
    at: OffsetDateTime,
) -> NewRequest {
    NewRequest {
        id: RequestId::new(),
        tenant_id: tenant,
        commune_tenant_id: None,
        service_id: svc,
        citizen_id: Some(citizen),
        draft_id: None,
        reference_prefix: "R".into(),
        channel: Channel::Web,
        status: "received".into(),
        answers: Default::default(),
        submitter: serde_json::json!({"prenom": "Camille", "nom": "Martin"}),
        submitted_at: at,
        deemed_decision_on: None,
        ack_due_at: None,
        history: None,
        phase: "open".into(),
        search_text: guichet_domain::fold(&format!("Camille Martin {text}")),
    }
}

fn all() -> InboxFilter {
    InboxFilter::default()
}

#[tokio::test]
async fn agents_see_their_tenants_requests_only() {
    for db in TestDb::all().await {
        let s = &db.store;
        let w = world(s).await;
        let now = OffsetDateTime::now_utc();
        let ra = submit(s, w.a, w.svc_a, w.citizen, "lampadaire", now, None, Channel::Web).await;
        let rb = submit(s, w.b, w.svc_b, w.citizen, "horaires", now, None, Channel::Web).await;
        let ids =
            |rows: Vec<guichet_store::InboxRow>| rows.into_iter().map(|r| r.id).collect::<Vec<_>>();
        assert_eq!(
            ids(s.inbox(w.agent_a, &all(), None, 50).await.unwrap()),
            [ra],
            "{:?}",
            db.backend
        );
        assert_eq!(ids(s.inbox(w.agent_b, &all(), None, 50).await.unwrap()), [rb]);
        assert_eq!(s.inbox(w.agent_epci, &all(), None, 50).await.unwrap().len(), 2);
        // Asking for another tenant explicitly changes nothing.
        let other = InboxFilter { tenant: Some(w.b), ..all() };
        assert!(s.inbox(w.agent_a, &other, None, 50).await.unwrap().is_empty(), "{:?}", db.backend);
        assert_eq!(s.count_inbox(w.agent_a, &other).await.unwrap(), 0);
        assert!(s.get_agent_request(w.agent_a, rb).await.unwrap().is_none(), "{:?}", db.backend);
        assert!(s.get_agent_request(w.agent_a, ra).await.unwrap().is_some());
        assert_eq!(s.citizen_requests_for_agent(w.agent_a, w.citizen).await.unwrap().len(), 1);
        // Assigning a foreign request fails as a whole.
        let err = s
            .assign(w.agent_a, &[ra, rb], Some(w.agent_a), &SubmissionRecords::default())
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound), "{:?}", db.backend);
        assert!(
            s.get_agent_request(w.agent_a, ra).await.unwrap().unwrap().assignee_id.is_none(),
            "nothing half-done"
        );
        // Nor can a request be assigned to an agent who is not a member of its tenant.
        assert!(
            s.assign(w.agent_epci, &[ra], Some(w.agent_b), &SubmissionRecords::default())
                .await
                .is_err()
        );
        assert_eq!(
            s.assign(w.agent_epci, &[ra], Some(w.agent_a), &SubmissionRecords::default())
                .await
                .unwrap(),
            1
        );
        let mine = InboxFilter { assignee: AssigneeFilter::Agent(w.agent_a), ..all() };
        assert_eq!(ids(s.inbox(w.agent_a, &mine, None, 50).await.unwrap()), [ra]);
        let unassigned = InboxFilter { assignee: AssigneeFilter::Unassigned, ..all() };
        assert_eq!(
            ids(s.inbox(w.agent_epci, &unassigned, None, 50).await.unwrap()),
            [rb],
            "{:?}",
            db.backend
        );
        db.finish().await;
    }
}

#[tokio::test]
async fn full_text_search_ignores_case_and_accents_and_finds_plurals() {
    for db in TestDb::all().await {
        let s = &db.store;
        let w = world(s).await;
        let now = OffsetDateTime::now_utc();
        let r1 = submit(
            s,
            w.a,
            w.svc_a,
            w.citizen,
            "Éclairage public en panne, lampadaires éteints",
            now,
            None,
            Channel::Web,
        )
        .await;
        submit(s, w.a, w.svc_a, w.citizen, "Nid-de-poule rue Haute", now, None, Channel::Web).await;
        for q in ["eclairage", "ÉCLAIRAGE", "lampadaire", "lampadaires", "Eclairage Public"] {
            let f = InboxFilter { search: Some(guichet_domain::fold(q)), ..all() };
            let rows = s.inbox(w.agent_a, &f, None, 50).await.unwrap();
            assert_eq!(
                rows.iter().map(|r| r.id).collect::<Vec<_>>(),
                [r1],
                "{:?}: {q}",
                db.backend
            );
        }
        // The reference is searchable too; hostile input is just text.
        let reference = s.get_agent_request(w.agent_a, r1).await.unwrap().unwrap().reference;
        let f = InboxFilter { search: Some(guichet_domain::fold(&reference)), ..all() };
        assert_eq!(s.inbox(w.agent_a, &f, None, 50).await.unwrap().len(), 1, "{:?}", db.backend);
        for hostile in ["\"", "NEAR(", "*", "a OR b", "'; drop table requests; --"] {
            let f = InboxFilter { search: Some(guichet_domain::fold(hostile)), ..all() };
            s.inbox(w.agent_a, &f, None, 50).await.unwrap();
        }
        db.finish().await;
    }
}

/// Requests written at the same moment (on SQLite, into shared commit groups, whose text
/// index is written once per group) are all found from their commit on, one refused among them
/// leaves nothing in the index, and a text changed or a request removed afterwards keeps the
/// index exact (SQLite: FTS5's own integrity check, nothing left waiting to be indexed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_written_together_are_searchable_at_once_and_a_refused_one_leaves_no_trace() {
    for db in TestDb::all().await {
        let s = &db.store;
        let w = Arc::new(world(s).await);
        let now = OffsetDateTime::now_utc();
        let taken = submit(s, w.a, w.svc_a, w.citizen, "premier", now, None, Channel::Web).await;
        let mut tasks = Vec::new();
        for i in 0..24 {
            let (s, w) = (s.clone(), w.clone());
            tasks.push(tokio::spawn(async move {
                let mut r = new_request(w.a, w.svc_a, w.citizen, &format!("ruelle{i:02}"), now);
                if i == 7 {
                    // The same id as an earlier request: refused by the store.
                    r.id = taken;
                }
                let outcome = s.submit_request(&r, &|_: &str| Ok(SubmissionRecords::default()));
                (i, r.id, outcome.await)
            }));
        }
        let search = async |word: &str| {
            let f = InboxFilter { search: Some(guichet_domain::fold(word)), ..all() };
            s.inbox(w.agent_a, &f, None, 50).await.unwrap().iter().map(|r| r.id).collect::<Vec<_>>()
        };
        for task in tasks {
            let (i, id, outcome) = task.await.unwrap();
            if i == 7 {
                assert!(
                    matches!(outcome, Err(StoreError::Conflict { .. })),
                    "{:?}: {outcome:?}",
                    db.backend
                );
                assert_eq!(
                    search("ruelle07").await,
                    [],
                    "{:?}: nothing of it is found",
                    db.backend
                );
            } else {
                outcome.unwrap();
                // As soon as the store has answered: the write is committed, and indexed.
                assert_eq!(search(&format!("ruelle{i:02}")).await, [id], "{:?}: {i}", db.backend);
            }
        }
        assert_eq!(search("premier").await, [taken], "{:?}", db.backend);

        if db.backend == Backend::Sqlite {
            // A text changed and a request removed by a write outside the commit groups (as an
            // import or a repair would); the next group's commit indexes what they left noted.
            let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
            sqlx::query(
                "update requests set search_text = replace(search_text, 'premier', 'venelle') \
                 where id = $1",
            )
            .bind(taken.as_uuid())
            .execute(&pool)
            .await
            .unwrap();
            // One indexed request removed, and one removed while its new text waits to be
            // indexed (both in one transaction); foreign keys off, its periods go with it.
            let (indexed, noted) = (search("ruelle03").await[0], search("ruelle05").await[0]);
            let mut conn = pool.acquire().await.unwrap();
            sqlx::query("pragma foreign_keys = off").execute(&mut *conn).await.unwrap();
            let mut tx = sqlx::Connection::begin(&mut *conn).await.unwrap();
            sqlx::query(
                "update requests set search_text = replace(search_text, 'ruelle05', 'impasse') \
                 where id = $1",
            )
            .bind(noted.as_uuid())
            .execute(&mut *tx)
            .await
            .unwrap();
            for id in [indexed, noted] {
                sqlx::query("delete from requests where id = $1")
                    .bind(id.as_uuid())
                    .execute(&mut *tx)
                    .await
                    .unwrap();
            }
            tx.commit().await.unwrap();
            drop(conn);
            submit(s, w.a, w.svc_a, w.citizen, "dernier", now, None, Channel::Web).await;
            assert_eq!(search("venelle").await, [taken]);
            assert_eq!(search("premier").await, []);
            assert_eq!(search("ruelle03").await, []);
            assert_eq!(search("ruelle05").await, []);
            assert_eq!(search("impasse").await, []);
            assert_eq!(search("dernier").await.len(), 1);
            let noted: i64 = sqlx::query_scalar("select count(*) from requests_fts_pending")
                .fetch_one(&pool)
                .await
                .unwrap();
            assert_eq!(noted, 0, "nothing is left waiting to be indexed");
            sqlx::query(
                "insert into requests_fts (requests_fts, rank) values ('integrity-check', 1)",
            )
            .execute(&pool)
            .await
            .expect("the full-text index matches the requests");
            pool.close().await;
        }
        db.finish().await;
    }
}

/// Requests loaded in bulk (the data generator) are searchable from their commit on, as
/// submitted ones are.
#[tokio::test]
async fn requests_loaded_in_bulk_are_searchable() {
    for db in TestDb::all().await {
        let s = &db.store;
        let w = world(s).await;
        let now = OffsetDateTime::now_utc();
        let rows: Vec<(NewRequest, String)> = (0..3)
            .map(|i| {
                (
                    new_request(w.a, w.svc_a, w.citizen, &format!("charrette{i}"), now),
                    format!("G-{i}"),
                )
            })
            .collect();
        s.bulk_insert_requests(&rows, &[]).await.unwrap();
        for (r, _) in &rows {
            let word = r.search_text.rsplit(' ').next().unwrap().to_owned();
            let f = InboxFilter { search: Some(word.clone()), ..all() };
            let found: Vec<RequestId> =
                s.inbox(w.agent_a, &f, None, 50).await.unwrap().iter().map(|x| x.id).collect();
            assert_eq!(found, [r.id], "{:?}: {word}", db.backend);
        }
        db.finish().await;
    }
}

#[tokio::test]
async fn keyset_pages_cover_every_request_once_and_filters_combine() {
    for db in TestDb::all().await {
        let s = &db.store;
        let w = world(s).await;
        let base = OffsetDateTime::now_utc() - Duration::days(30);
        let today = base.date() + Duration::days(30);
        for i in 0..25 {
            let channel = if i % 5 == 0 { Channel::Email } else { Channel::Web };
            // Every third request shares its instant with the previous one: ties on the date.
            let at = base + Duration::hours(i - i64::from(i % 3 == 0));
            let deemed = match i % 4 {
                0 => Some(today - Duration::days(1)),
                1 => Some(today + Duration::days(3)),
                _ => None,
            };
            submit(s, w.a, w.svc_a, w.citizen, "x", at, deemed, channel).await;
        }
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = s.inbox(w.agent_a, &all(), cursor, 7).await.unwrap();
            if page.is_empty() {
                break;
            }
            cursor = page.last().map(|r| Cursor { submitted_at: r.submitted_at, id: r.id });
            seen.extend(page);
        }
        assert_eq!(seen.len(), 25, "{:?}", db.backend);
        let mut ids: Vec<_> = seen.iter().map(|r| r.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 25, "{:?}: no row twice", db.backend);
        assert!(seen.windows(2).all(|p| p[0].submitted_at >= p[1].submitted_at));

        let by_channel = InboxFilter { channel: Some(Channel::Email), ..all() };
        assert_eq!(s.count_inbox(w.agent_a, &by_channel).await.unwrap(), 5);
        let overdue =
            InboxFilter { deadline: DeadlineFilter::Overdue, today: Some(today), ..all() };
        assert_eq!(s.count_inbox(w.agent_a, &overdue).await.unwrap(), 7, "{:?}", db.backend);
        let soon =
            InboxFilter { deadline: DeadlineFilter::DueWithin(7), today: Some(today), ..all() };
        assert_eq!(s.count_inbox(w.agent_a, &soon).await.unwrap(), 6);
        let recent = InboxFilter { from: Some(base + Duration::hours(20)), ..all() };
        assert_eq!(s.count_inbox(w.agent_a, &recent).await.unwrap(), 5, "{:?}", db.backend);
        db.finish().await;
    }
}

#[tokio::test]
async fn a_status_change_is_refused_if_someone_changed_it_first_and_events_chain() {
    for db in TestDb::all().await {
        let s = &db.store;
        let w = world(s).await;
        let r =
            submit(s, w.a, w.svc_a, w.citizen, "x", OffsetDateTime::now_utc(), None, Channel::Web)
                .await;
        let event = NewEvent {
            id: EventId::new(),
            tenant_id: w.a,
            request_id: Some(r),
            at: OffsetDateTime::now_utc(),
            actor_kind: ActorKind::Agent,
            actor_id: Some(w.agent_a.as_uuid()),
            channel: Channel::Web,
            kind: "status_changed".into(),
            citizen_visible: true,
            data: serde_json::json!({"from": "received", "to": "in_progress"}),
        };
        let records = SubmissionRecords { events: vec![event], ..Default::default() };
        let change = StatusChange {
            request_id: r,
            expected_status: "received".into(),
            status: "in_progress".into(),
            phase: "open".into(),
            deemed_decision_on: None,
        };
        s.change_status(&change, &records).await.unwrap();
        let err = s.change_status(&change, &records).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict { .. }), "{:?}", db.backend);
        assert_eq!(s.get_agent_request(w.agent_a, r).await.unwrap().unwrap().status, "in_progress");
        let chains = s.list_chains().await.unwrap();
        assert_eq!(chains.iter().map(|c| (c.tenant, c.lane)).collect::<Vec<_>>(), vec![(w.a, 0)]);
        let events = s.list_chain_events(w.a, 0, 0, 100).await.unwrap();
        assert_eq!(events.len(), 1, "{:?}: the refused change wrote nothing", db.backend);
        db.finish().await;
    }
}

#[tokio::test]
async fn search_pages_count_and_cover_every_match_once() {
    for db in TestDb::all().await {
        let s = &db.store;
        let w = world(s).await;
        let base = OffsetDateTime::now_utc() - Duration::days(3);
        for i in 0..30 {
            let text = if i % 2 == 0 { "éclairage public" } else { "voirie" };
            submit(
                s,
                w.a,
                w.svc_a,
                w.citizen,
                text,
                base + Duration::minutes(i / 3),
                None,
                Channel::Web,
            )
            .await;
        }
        let f = InboxFilter { search: Some("eclairage".into()), ..all() };
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let (page, total) = s.inbox_page(w.agent_a, &f, cursor, 4).await.unwrap();
            assert_eq!(total, 15, "{:?}", db.backend);
            let Some(last) = page.last() else { break };
            cursor = Some(Cursor { submitted_at: last.submitted_at, id: last.id });
            seen.extend(page.iter().map(|r| (r.submitted_at, r.id)));
        }
        assert_eq!(seen.len(), 15, "{:?}", db.backend);
        let mut sorted = seen.clone();
        sorted.sort_by(|a, b| b.cmp(a));
        assert_eq!(seen, sorted, "{:?}: newest first, no repeats", db.backend);
        // The other filters apply to the matches.
        let phone = InboxFilter { channel: Some(Channel::Telephone), ..f.clone() };
        assert_eq!(s.inbox_page(w.agent_a, &phone, None, 4).await.unwrap().1, 0);
        let web = InboxFilter { channel: Some(Channel::Web), ..f.clone() };
        let (page, total) = s.inbox_page(w.agent_a, &web, None, 4).await.unwrap();
        assert_eq!((page.len(), total), (4, 15), "{:?}", db.backend);
        // Blank text searches nothing: the whole inbox.
        let blank = InboxFilter { search: Some("  ".into()), ..all() };
        assert_eq!(s.inbox_page(w.agent_a, &blank, None, 4).await.unwrap().1, 30);
        // The plain inbox agrees.
        let (page, total) = s.inbox_page(w.agent_a, &all(), None, 50).await.unwrap();
        assert_eq!((page.len(), total), (30, 30));
        db.finish().await;
    }
}
