//! Storage stories of the citizen portal (accounts, sessions, services, drafts, requests and
//! their hash-chained events), run on every backend.

use std::sync::Arc;

use guichet_domain::audit::{ChainedFields, GENESIS, chain_hash};
use guichet_domain::request::{ActorKind, Channel};
use guichet_domain::{
    CitizenId, DocumentId, DraftId, EmailId, EventId, FileId, RequestId, TenantKind,
};
use guichet_store::{
    Draft, FileRecord, NewDocument, NewEmail, NewEvent, NewRequest, Session, Store, StoreError,
    SubmissionRecords, TokenPurpose,
};
use guichet_testkit::TestDb;
use guichet_testkit::fixtures::{citizen_account, service, tenant, token};
use time::{Duration, OffsetDateTime};

fn email(to: &str) -> NewEmail {
    NewEmail {
        id: EmailId::new(),
        to: to.to_owned(),
        subject: "Bienvenue".to_owned(),
        text: "texte".to_owned(),
        html: "<p>texte</p>".to_owned(),
        message_id: format!("{}@guichet.test", EmailId::new()),
        request_id: None,
        reply_to: None,
        references: Vec::new(),
        automatic: true,
    }
}

#[tokio::test]
async fn a_sign_up_writes_the_account_its_token_and_its_email_atomically() {
    for db in TestDb::all().await {
        let s = &db.store;
        let now = OffsetDateTime::now_utc();
        let account = citizen_account("camille@exemple.test", Some("45601"));
        let mail = email("camille@exemple.test");
        let job = mail.send_job(now);
        let c = s
            .create_citizen(
                &account,
                &token("h1", TokenPurpose::VerifyEmail),
                std::slice::from_ref(&mail),
                std::slice::from_ref(&job),
            )
            .await
            .unwrap();
        assert_eq!(c.email.as_str(), "camille@exemple.test");
        assert!(c.email_verified_at.is_none());
        assert_eq!(s.get_email(mail.id).await.unwrap().status, "pending");
        assert_eq!(s.job_counts().await.unwrap().pending, 1, "{:?}", db.backend);

        // Same address again: refused, and nothing else is written.
        let again = citizen_account("camille@exemple.test", None);
        let err = s
            .create_citizen(
                &again,
                &token("h2", TokenPurpose::VerifyEmail),
                &[email("x@exemple.test")],
                &[job],
            )
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::Conflict { constraint } if constraint == "citizens_email_key"),
            "{:?}: {err:?}",
            db.backend
        );
        assert_eq!(s.job_counts().await.unwrap().pending, 1);
        assert!(
            s.consume_citizen_token("h2", TokenPurpose::VerifyEmail, now).await.unwrap().is_none()
        );

        let (found, hash) = s.find_citizen_login(&c.email).await.unwrap().unwrap();
        assert_eq!(found.id, c.id);
        assert_eq!(hash.as_deref(), Some(account.password_hash.as_str()));
        assert_eq!(found.profile.insee_code.unwrap().as_str(), "45601");
        db.finish().await;
    }
}

#[tokio::test]
async fn tokens_are_single_use_purpose_bound_and_expire() {
    for db in TestDb::all().await {
        let s = &db.store;
        let now = OffsetDateTime::now_utc();
        let c = s
            .create_citizen(
                &citizen_account("a@exemple.test", None),
                &token("verify", TokenPurpose::VerifyEmail),
                &[],
                &[],
            )
            .await
            .unwrap();
        assert!(
            s.consume_citizen_token("verify", TokenPurpose::ResetPassword, now)
                .await
                .unwrap()
                .is_none(),
            "wrong purpose"
        );
        assert_eq!(
            s.consume_citizen_token("verify", TokenPurpose::VerifyEmail, now).await.unwrap(),
            Some(c.id)
        );
        assert!(s.get_citizen(c.id).await.unwrap().email_verified_at.is_some(), "{:?}", db.backend);
        assert!(
            s.consume_citizen_token("verify", TokenPurpose::VerifyEmail, now)
                .await
                .unwrap()
                .is_none(),
            "single use"
        );
        s.add_citizen_token(c.id, &token("reset", TokenPurpose::ResetPassword), &[], &[])
            .await
            .unwrap();
        assert!(
            s.consume_citizen_token("reset", TokenPurpose::ResetPassword, now + Duration::hours(2))
                .await
                .unwrap()
                .is_none(),
            "expired"
        );
        db.finish().await;
    }
}

fn session(hash: &str, citizen: Option<CitizenId>, now: OffsetDateTime) -> Session {
    Session {
        token_hash: hash.into(),
        citizen_id: citizen,
        agent_id: None,
        csrf_token: "csrf".into(),
        mfa_ok: false,
        expires_at: now + Duration::hours(2),
        last_seen_at: now,
    }
}

#[tokio::test]
async fn sessions_expire_slide_and_end_with_a_password_change() {
    for db in TestDb::all().await {
        let s = &db.store;
        let now = OffsetDateTime::now_utc();
        let c = s
            .create_citizen(
                &citizen_account("a@exemple.test", None),
                &token("t", TokenPurpose::VerifyEmail),
                &[],
                &[],
            )
            .await
            .unwrap();
        s.create_session(&session("s1", Some(c.id), now)).await.unwrap();
        s.create_session(&session("s2", Some(c.id), now)).await.unwrap();
        s.create_session(&session("anon", None, now)).await.unwrap();
        assert_eq!(s.get_session("s1", now).await.unwrap().unwrap().citizen_id, Some(c.id));
        assert!(s.get_session("s1", now + Duration::hours(3)).await.unwrap().is_none(), "expired");
        // The same session with its account, in one read.
        let (with, account) = s.get_citizen_session("s1", now).await.unwrap().unwrap();
        assert_eq!(with, s.get_session("s1", now).await.unwrap().unwrap(), "{:?}", db.backend);
        assert_eq!(account, Some(s.get_citizen(c.id).await.unwrap()), "{:?}", db.backend);
        let (anon, none) = s.get_citizen_session("anon", now).await.unwrap().unwrap();
        assert_eq!((anon.citizen_id, none), (None, None));
        assert!(s.get_citizen_session("s1", now + Duration::hours(3)).await.unwrap().is_none());
        assert!(s.get_citizen_session("nope", now).await.unwrap().is_none());
        s.touch_session("s1", now + Duration::hours(5), now).await.unwrap();
        assert!(
            s.get_session("s1", now + Duration::hours(3)).await.unwrap().is_some(),
            "{:?}",
            db.backend
        );
        s.set_citizen_password(c.id, "newhash").await.unwrap();
        assert!(s.get_session("s1", now).await.unwrap().is_none(), "password change ends sessions");
        assert!(s.get_session("s2", now).await.unwrap().is_none());
        assert!(s.get_session("anon", now).await.unwrap().is_some());
        assert_eq!(s.purge_expired_sessions(now + Duration::hours(3)).await.unwrap(), 1);
        db.finish().await;
    }
}

#[tokio::test]
async fn throttling_counts_within_a_window_and_resets() {
    for db in TestDb::all().await {
        let s = &db.store;
        let now = OffsetDateTime::now_utc();
        let w = Duration::minutes(15);
        for n in 1..=3 {
            assert_eq!(s.hit_throttle("login:a", w, now).await.unwrap(), n, "{:?}", db.backend);
        }
        assert_eq!(s.throttle_hits("login:a", w, now).await.unwrap(), 3);
        assert_eq!(s.throttle_hits("login:a", w, now + Duration::minutes(16)).await.unwrap(), 0);
        assert_eq!(
            s.hit_throttle("login:a", w, now + Duration::minutes(16)).await.unwrap(),
            1,
            "new window"
        );
        s.clear_throttle("login:a").await.unwrap();
        assert_eq!(s.throttle_hits("login:a", w, now).await.unwrap(), 0);
        db.finish().await;
    }
}

struct World {
    commune: guichet_domain::TenantId,
    svc: guichet_store::Service,
    alice: CitizenId,
    bob: CitizenId,
}

async fn world(s: &Arc<dyn Store>) -> World {
    let epci = s.add_tenant(&tenant("cc-test", TenantKind::Epci, None, 1), &[]).await.unwrap();
    let commune =
        s.add_tenant(&tenant("alpha", TenantKind::Commune, Some(epci.id), 2), &[]).await.unwrap();
    let svc = service(commune.id, "question-mairie");
    s.add_service(&svc).await.unwrap();
    s.add_service(&service(epci.id, "signalement")).await.unwrap();
    let alice = s
        .create_citizen(
            &citizen_account("alice@exemple.test", Some("2A002")),
            &token("ta", TokenPurpose::VerifyEmail),
            &[],
            &[],
        )
        .await
        .unwrap();
    let bob = s
        .create_citizen(
            &citizen_account("bob@exemple.test", None),
            &token("tb", TokenPurpose::VerifyEmail),
            &[],
            &[],
        )
        .await
        .unwrap();
    World { commune: commune.id, svc, alice: alice.id, bob: bob.id }
}

#[tokio::test]
async fn a_commune_catalogue_spans_the_commune_and_its_epci() {
    for db in TestDb::all().await {
        let s = &db.store;
        let w = world(s).await;
        let commune = s.get_tenant(w.commune).await.unwrap();
        let list = s.list_services(&[commune.id, commune.parent_id.unwrap()]).await.unwrap();
        let titles: Vec<_> = list.iter().map(|x| x.category.as_str()).collect();
        assert_eq!(titles, ["Cadre de vie", "Mairie"], "{:?}", db.backend);
        let found = s.find_service(w.commune, "question-mairie").await.unwrap().unwrap();
        assert_eq!(found.form, w.svc.form);
        assert_eq!(found.requirements, w.svc.requirements);
        let dup = service(w.commune, "question-mairie");
        let err = s.add_service(&dup).await.unwrap_err();
        assert!(
            matches!(&err, StoreError::Conflict { constraint } if constraint == "services_tenant_id_slug_key"),
            "{:?}: {err:?}",
            db.backend
        );
        db.finish().await;
    }
}

fn draft(w: &World, citizen: CitizenId) -> Draft {
    let mut answers = guichet_domain::form::Answers::new();
    answers.insert("sujet".into(), serde_json::json!("Horaires"));
    Draft {
        id: DraftId::new(),
        citizen_id: citizen,
        service_id: w.svc.id,
        portal_tenant_id: w.commune,
        answers,
        page: 0,
        updated_at: OffsetDateTime::now_utc(),
    }
}

#[tokio::test]
async fn drafts_belong_to_their_citizen() {
    for db in TestDb::all().await {
        let s = &db.store;
        let w = world(s).await;
        let mut d = draft(&w, w.alice);
        s.save_draft(&d).await.unwrap();
        d.page = 1;
        s.save_draft(&d).await.unwrap();
        assert_eq!(s.get_draft(d.id, w.alice).await.unwrap().unwrap().page, 1);
        assert!(s.get_draft(d.id, w.bob).await.unwrap().is_none(), "{:?}", db.backend);
        // Bob cannot overwrite Alice's draft by reusing its id.
        let mut hijack = d.clone();
        hijack.citizen_id = w.bob;
        hijack.page = 9;
        s.save_draft(&hijack).await.unwrap();
        assert_eq!(s.get_draft(d.id, w.alice).await.unwrap().unwrap().page, 1, "{:?}", db.backend);
        assert_eq!(s.list_drafts(w.alice).await.unwrap()[0].1, w.svc.title);
        s.delete_draft(d.id, w.bob).await.unwrap();
        assert!(s.get_draft(d.id, w.alice).await.unwrap().is_some());
        s.delete_draft(d.id, w.alice).await.unwrap();
        assert!(s.list_drafts(w.alice).await.unwrap().is_empty());
        db.finish().await;
    }
}

fn request(w: &World, d: &Draft) -> NewRequest {
    NewRequest {
        id: RequestId::new(),
        tenant_id: w.commune,
        commune_tenant_id: None,
        service_id: w.svc.id,
        citizen_id: Some(d.citizen_id),
        draft_id: Some(d.id),
        reference_prefix: "QM".into(),
        channel: Channel::Web,
        status: "received".into(),
        answers: d.answers.clone(),
        submitter: serde_json::json!({"name": "Alice"}),
        submitted_at: OffsetDateTime::now_utc(),
        deemed_decision_on: None,
        ack_due_at: None,
        history: None,
        phase: "open".into(),
        search_text: guichet_domain::fold(&format!(
            "Alice {}",
            guichet_domain::form::searchable_text(&d.answers)
        )),
    }
}

fn records(w: &World, id: RequestId, citizen: CitizenId, reference: &str) -> SubmissionRecords {
    let at = OffsetDateTime::now_utc();
    let event = |kind: &str, visible: bool| NewEvent {
        id: EventId::new(),
        tenant_id: w.commune,
        request_id: Some(id),
        at,
        actor_kind: ActorKind::Citizen,
        actor_id: Some(citizen.as_uuid()),
        channel: Channel::Web,
        kind: kind.into(),
        citizen_visible: visible,
        data: serde_json::json!({"reference": reference}),
    };
    let mut mail = email("alice@exemple.test");
    mail.request_id = Some(id);
    let job = mail.send_job(at);
    SubmissionRecords {
        events: vec![event("submitted", true), event("internal_check", false)],
        documents: vec![NewDocument {
            id: DocumentId::new(),
            kind: "are".into(),
            title: format!("Accusé de réception {reference}"),
            text: reference.into(),
            html: reference.into(),
            created_at: at,
            code: None,
        }],
        emails: vec![mail],
        jobs: vec![job],
        ..Default::default()
    }
}

#[tokio::test]
async fn submitting_allocates_a_yearly_reference_once_per_draft() {
    for db in TestDb::all().await {
        let s = &db.store;
        let w = world(s).await;
        let d1 = draft(&w, w.alice);
        s.save_draft(&d1).await.unwrap();
        let r1 = request(&w, &d1);
        let build = |reference: &str| Ok(records(&w, r1.id, w.alice, reference));
        let first = s.submit_request(&r1, &build).await.unwrap();
        let year = r1.submitted_at.year();
        assert_eq!(first.reference, format!("QM-{year}-000001"), "{:?}", db.backend);
        assert!(first.created);
        assert!(s.get_draft(d1.id, w.alice).await.unwrap().is_none(), "draft consumed");

        // A replayed POST of the same draft: the same request, nothing new written.
        let replay = NewRequest { id: RequestId::new(), ..r1.clone() };
        let again = s.submit_request(&replay, &build).await.unwrap();
        assert_eq!(
            (again.id, again.reference.as_str(), again.created),
            (first.id, first.reference.as_str(), false)
        );
        assert_eq!(s.list_request_documents(first.id).await.unwrap().len(), 1, "{:?}", db.backend);
        assert_eq!(s.job_counts().await.unwrap().pending, 1);

        let d2 = draft(&w, w.alice);
        let r2 = request(&w, &d2);
        let second = s
            .submit_request(&r2, &|reference: &str| Ok(records(&w, r2.id, w.alice, reference)))
            .await
            .unwrap();
        assert_eq!(second.reference, format!("QM-{year}-000002"));

        let mine = s.list_citizen_requests(w.alice).await.unwrap();
        assert_eq!(mine.len(), 2);
        assert_eq!(mine[0].service_title, w.svc.title);
        assert!(
            s.get_citizen_request(first.id, w.bob).await.unwrap().is_none(),
            "{:?}: another citizen's request",
            db.backend
        );
        let mine1 = s.get_citizen_request(first.id, w.alice).await.unwrap().unwrap();
        assert_eq!(mine1.answers, d1.answers);
        assert_eq!(
            s.list_request_events(first.id, true).await.unwrap().len(),
            1,
            "internal events hidden"
        );
        assert_eq!(s.list_request_events(first.id, false).await.unwrap().len(), 2);
        db.finish().await;
    }
}

#[tokio::test]
async fn events_form_an_unbroken_hash_chain_even_under_concurrent_submissions() {
    for db in TestDb::all().await {
        submit_concurrently_and_check_the_chain(&db, 12).await;
        db.finish().await;
    }
}

/// On two threads, with the writes truly at the same time: SQLite groups them into shared
/// commits, and PostgreSQL, given only two connections, must never hold one while waiting for
/// another (a submission that did would wait forever for its reference number).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_submissions_complete_with_a_two_connection_pool_and_keep_the_chain() {
    let mut dbs = vec![TestDb::sqlite().await];
    dbs.extend(TestDb::postgres_with_connections(2).await);
    for db in dbs {
        let run = submit_concurrently_and_check_the_chain(&db, 24);
        tokio::time::timeout(std::time::Duration::from_secs(60), run)
            .await
            .unwrap_or_else(|_| panic!("{:?}: submissions did not complete", db.backend));
        db.finish().await;
    }
}

/// One draft sent eight times at once (a double click, a browser retrying on a poor
/// connection): one request is made, every send answers with it, and nothing is written twice.
/// On PostgreSQL the sends pass the "already sent?" check together and all but one then meet
/// the unique draft id inside their transaction, which must roll back and answer with the
/// request that won.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_draft_sent_many_times_at_once_makes_one_request() {
    for db in TestDb::all().await {
        let s = &db.store;
        let w = Arc::new(world(s).await);
        let d = draft(&w, w.alice);
        s.save_draft(&d).await.unwrap();
        let first = request(&w, &d);
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (s, w) = (s.clone(), w.clone());
            let r = NewRequest { id: RequestId::new(), ..first.clone() };
            tasks.push(tokio::spawn(async move {
                let sent = s
                    .submit_request(&r, &|reference: &str| {
                        Ok(records(&w, r.id, w.alice, reference))
                    })
                    .await
                    .unwrap();
                (sent.id, sent.reference, sent.created)
            }));
        }
        let mut answers = Vec::new();
        for t in tasks {
            answers.push(t.await.unwrap());
        }
        let made: Vec<_> = answers.iter().filter(|(_, _, created)| *created).collect();
        assert_eq!(made.len(), 1, "{:?}: {answers:?}", db.backend);
        let (id, reference, _) = made[0].clone();
        assert!(
            answers.iter().all(|(i, r, _)| *i == id && *r == reference),
            "{:?}: {answers:?}",
            db.backend
        );
        assert_eq!(s.list_citizen_requests(w.alice).await.unwrap().len(), 1, "{:?}", db.backend);
        assert_eq!(s.list_request_documents(id).await.unwrap().len(), 1, "{:?}", db.backend);
        assert_eq!(s.list_request_events(id, false).await.unwrap().len(), 2, "{:?}", db.backend);
        assert_eq!(s.job_counts().await.unwrap().pending, 1, "{:?}", db.backend);
        assert!(s.get_draft(d.id, w.alice).await.unwrap().is_none(), "{:?}", db.backend);
        db.finish().await;
    }
}

/// Submits `n` requests of one citizen at once, then checks their references are distinct
/// and the tenant's events form unbroken hash chains (one per lane: on PostgreSQL, writes that
/// ran side by side took lanes of their own).
async fn submit_concurrently_and_check_the_chain(db: &TestDb, n: usize) {
    let s = &db.store;
    let w = Arc::new(world(s).await);
    let mut tasks = Vec::new();
    for _ in 0..n {
        let (s, w) = (s.clone(), w.clone());
        tasks.push(tokio::spawn(async move {
            let d = draft(&w, w.alice);
            let r = request(&w, &d);
            s.submit_request(&r, &|reference: &str| Ok(records(&w, r.id, w.alice, reference)))
                .await
                .unwrap()
                .reference
        }));
    }
    let mut refs = Vec::new();
    for t in tasks {
        refs.push(t.await.unwrap());
    }
    refs.sort();
    refs.dedup();
    assert_eq!(refs.len(), n, "{:?}: references are unique", db.backend);

    let mut events = Vec::new();
    for r in s.list_citizen_requests(w.alice).await.unwrap() {
        events.extend(s.list_request_events(r.id, false).await.unwrap());
    }
    assert_eq!(events.len(), 2 * n, "{:?}", db.backend);
    events.sort_by_key(|e| (e.lane, e.seq));
    let mut prev = GENESIS.to_owned();
    for (i, e) in events.iter().enumerate() {
        if i == 0 || events[i - 1].lane != e.lane {
            prev = GENESIS.to_owned();
            assert_eq!(e.seq, 1, "{:?}: lane {} starts at 1", db.backend, e.lane);
        } else {
            assert_eq!(e.seq, events[i - 1].seq + 1, "{:?}: no gap in lane {}", db.backend, e.lane);
        }
        assert_eq!(e.prev_hash, prev, "{:?}: chain link at seq {}", db.backend, e.seq);
        let (id, tenant) = (e.event.id.to_string(), e.event.tenant_id.to_string());
        let request = e.event.request_id.map(|r| r.to_string());
        let actor = e.event.actor_id.map(|a| a.to_string());
        let data = e.event.data.to_string();
        let expected = chain_hash(
            &prev,
            &ChainedFields {
                lane: e.lane,
                seq: e.seq,
                id: &id,
                tenant_id: &tenant,
                request_id: request.as_deref(),
                at_us: i64::try_from(e.event.at.unix_timestamp_nanos() / 1000).unwrap(),
                actor_kind: e.event.actor_kind.as_str(),
                actor_id: actor.as_deref(),
                channel: e.event.channel.as_str(),
                kind: &e.event.kind,
                citizen_visible: e.event.citizen_visible,
                data: &data,
            },
        );
        assert_eq!(e.hash, expected, "{:?}: hash at seq {}", db.backend, e.seq);
        prev = e.hash.clone();
    }
}

#[tokio::test]
async fn files_are_readable_by_their_uploader_and_the_request_owner_only() {
    for db in TestDb::all().await {
        let s = &db.store;
        let w = world(s).await;
        let file = FileRecord {
            id: FileId::new(),
            sha256: "ab".repeat(32),
            size: 10,
            content_type: "image/png".into(),
            original_name: "photo.png".into(),
            citizen_id: Some(w.alice),
            created_at: OffsetDateTime::now_utc(),
        };
        s.add_file(&file).await.unwrap();
        assert!(s.citizen_can_read_file(file.id, w.alice).await.unwrap());
        assert!(!s.citizen_can_read_file(file.id, w.bob).await.unwrap(), "{:?}", db.backend);
        let mut d = draft(&w, w.alice);
        d.answers.insert("piece".into(), serde_json::json!([{"id": file.id.to_string(), "name": "photo.png", "size": 10, "content_type": "image/png"}]));
        let r = request(&w, &d);
        s.submit_request(&r, &|reference: &str| Ok(records(&w, r.id, w.alice, reference)))
            .await
            .unwrap();
        // The account is deleted: the request stays with the administration, detached.
        s.delete_citizen(w.alice).await.unwrap();
        assert!(s.list_citizen_requests(w.alice).await.unwrap().is_empty());
        assert_eq!(s.get_file(file.id).await.unwrap().citizen_id, None, "{:?}", db.backend);
        assert!(matches!(s.get_citizen(w.alice).await, Err(StoreError::NotFound)));
        db.finish().await;
    }
}

#[tokio::test]
async fn the_accounts_version_counts_every_write_that_can_change_a_live_session_or_its_account() {
    for db in TestDb::all().await {
        let s = &db.store;
        let b = db.backend;
        let now = OffsetDateTime::now_utc();
        let new = |email: &str, token_hash: &str| {
            (citizen_account(email, None), token(token_hash, TokenPurpose::VerifyEmail))
        };
        let (account, verify) = new("v@exemple.test", "tv");
        let c = s.create_citizen(&account, &verify, &[], &[]).await.unwrap();
        let (account, verify) = new("w@exemple.test", "tw");
        let gone = s.create_citizen(&account, &verify, &[], &[]).await.unwrap();
        // Creating, reading, extending and purging sessions changes nothing a kept copy shows
        // (an expiry is checked on every use).
        let before = s.accounts_version();
        s.create_session(&session("s1", Some(c.id), now)).await.unwrap();
        s.create_session(&session("s2", Some(c.id), now)).await.unwrap();
        s.create_session(&session("s3", Some(gone.id), now)).await.unwrap();
        s.get_citizen_session("s1", now).await.unwrap();
        s.touch_session("s1", now + Duration::hours(2), now).await.unwrap();
        s.purge_expired_sessions(now).await.unwrap();
        assert_eq!(s.accounts_version(), before, "{b:?}");
        // Each of these does.
        let mut last = before;
        let mut counted = |what: &str| {
            let v = s.accounts_version();
            assert!(v > last, "{b:?}: {what} was not counted");
            last = v;
        };
        s.consume_citizen_token("tv", TokenPurpose::VerifyEmail, now).await.unwrap().unwrap();
        counted("a verified address");
        let mut profile = s.get_citizen(c.id).await.unwrap().profile;
        profile.given_name = "Autre".into();
        s.update_citizen_profile(c.id, &profile).await.unwrap();
        counted("an edited profile");
        s.delete_session("s2").await.unwrap();
        counted("a logout");
        s.delete_citizen_sessions(c.id).await.unwrap();
        counted("a logout everywhere");
        s.set_citizen_password(c.id, "hash").await.unwrap();
        counted("a new password");
        s.delete_citizen(gone.id).await.unwrap();
        counted("a deleted account");
        // A write that finds nothing is counted too: a cache then reads once more, no harm.
        assert!(s.set_citizen_password(gone.id, "hash").await.is_err());
        counted("a failed write");
        db.finish().await;
    }
}
