//! The back-office: agent login with TOTP, tenant walls on every route, the default workflow
//! end to end with the citizen's view, on every backend.

use axum::http::StatusCode;
use guichet_domain::{AgentId, Email, Role, Slug};
use guichet_store::{NewAgent, TerritoryImport};
use guichet_testkit::TestDb;
use guichet_web::WebConfig;
use std::sync::LazyLock;

use crate::TestApp;
use crate::client::{Client, Part, location};
use crate::portal::{ACTE, PNG, fill_and_submit, last_email, sign_up, start, verify, world};

const AGENT_PASSWORD: &str = "mot de passe des agents";
static HASH: LazyLock<String> =
    LazyLock::new(|| guichet_web::password::hash_password(AGENT_PASSWORD).unwrap());

pub(crate) struct Agents {
    pub alpha: String,
    pub bravo: String,
    pub admin: String,
}

pub(crate) async fn agents(app: &TestApp) -> Agents {
    let s = &app.db.store;
    let id = |slug: &str| {
        let s = s.clone();
        let slug = slug.to_owned();
        async move { s.find_tenant_by_slug(&Slug::parse(&slug).unwrap()).await.unwrap().unwrap().id }
    };
    let (alpha, bravo, epci) = (id("alpha").await, id("bravo").await, id("cc-test").await);
    let agent = |email: &str, m: Vec<(guichet_domain::TenantId, Role)>| NewAgent {
        id: AgentId::new(),
        email: Email::parse(email).unwrap(),
        password_hash: HASH.clone(),
        display_name: format!("Agent {email}"),
        memberships: m,
    };
    s.import_territory(&TerritoryImport {
        name: "agents".into(),
        agents: vec![
            agent("agent@alpha.test", vec![(alpha, Role::Agent)]),
            agent("agent@bravo.test", vec![(bravo, Role::Agent)]),
            agent(
                "admin@cc.test",
                vec![(epci, Role::TenantAdmin), (alpha, Role::Supervisor), (bravo, Role::Agent)],
            ),
        ],
        ..Default::default()
    })
    .await
    .unwrap();
    Agents {
        alpha: "agent@alpha.test".into(),
        bravo: "agent@bravo.test".into(),
        admin: "admin@cc.test".into(),
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

fn code(secret: &str) -> String {
    let bytes = guichet_web::totp::base32_decode(secret).unwrap();
    format!("{:06}", guichet_web::totp::code_at(&bytes, now_secs() / 30))
}

/// Logs an agent in; enrols TOTP first when required. Returns the client.
pub(crate) async fn agent_login<'a>(app: &'a TestApp, email: &str) -> Client<'a> {
    let mut c = Client::new(app);
    let csrf = c.agent_csrf("/agents/connexion").await;
    let page = c
        .post_agent(
            "/agents/connexion",
            &[("_csrf", &csrf), ("email", email), ("password", AGENT_PASSWORD)],
        )
        .await;
    match location(&page).as_str() {
        "/agents/" => {}
        "/agents/totp" => {
            let page = c.get_agent("/agents/totp").await;
            let secret = page.attrs("input[name=secret]", "value").remove(0);
            let csrf = page.attrs("input[name=_csrf]", "value").remove(0);
            let page = c
                .post_agent(
                    "/agents/totp",
                    &[("_csrf", &csrf), ("secret", &secret), ("code", &code(&secret))],
                )
                .await;
            assert_eq!(location(&page), "/agents/");
        }
        other => panic!("unexpected redirect {other}"),
    }
    c
}

/// A citizen submits the civil-status service on alpha and a question on bravo.
async fn requests(app: &TestApp) -> (String, String, Client<'_>) {
    let mut c = Client::new(app);
    sign_up(&mut c, "usager@exemple.test", "/alpha/").await;
    verify(&mut c, "usager@exemple.test").await;
    let first = start(&mut c, "alpha", "acte-etat-civil").await;
    let a = fill_and_submit(&mut c, &first, ACTE).await;
    let first = start(&mut c, "bravo", "question-mairie").await;
    let b = fill_and_submit(
        &mut c,
        &first,
        &[&[("sujet", "Horaires"), ("question", "Éclairage du stade ?"), ("rappel", "non")]],
    )
    .await;
    let id = |p: &str| {
        p.trim_start_matches("/compte/demandes/").trim_end_matches("?envoye=1").to_owned()
    };
    (id(&a), id(&b), c)
}

#[tokio::test]
async fn administrators_must_enrol_totp_and_then_always_give_a_code() {
    let db = TestDb::sqlite().await;
    world(&db.store).await;
    let app = TestApp::on(db, WebConfig::default());
    let who = agents(&app).await;
    let mut c = Client::new(&app);
    let csrf = c.agent_csrf("/agents/connexion").await;
    let page = c
        .post_agent(
            "/agents/connexion",
            &[("_csrf", &csrf), ("email", &who.admin), ("password", AGENT_PASSWORD)],
        )
        .await;
    assert_eq!(location(&page), "/agents/totp", "an administrator enrols first");
    // Not in yet.
    assert_eq!(location(&c.get_agent("/agents/").await), "/agents/totp");
    let page = c.get_agent("/agents/totp").await;
    let secret = page.attrs("input[name=secret]", "value").remove(0);
    let csrf = page.attrs("input[name=_csrf]", "value").remove(0);
    let bad = c
        .post_agent("/agents/totp", &[("_csrf", &csrf), ("secret", &secret), ("code", "000000")])
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let ok = c
        .post_agent(
            "/agents/totp",
            &[("_csrf", &csrf), ("secret", &secret), ("code", &code(&secret))],
        )
        .await;
    assert_eq!(location(&ok), "/agents/");
    assert_eq!(c.get_agent("/agents/").await.status, StatusCode::OK);

    // Next time: password, then code.
    let mut d = Client::new(&app);
    let csrf = d.agent_csrf("/agents/connexion").await;
    let page = d
        .post_agent(
            "/agents/connexion",
            &[("_csrf", &csrf), ("email", &who.admin), ("password", AGENT_PASSWORD)],
        )
        .await;
    assert_eq!(location(&page), "/agents/code");
    assert_eq!(location(&d.get_agent("/agents/").await), "/agents/code");
    let csrf = d.agent_csrf("/agents/code").await;
    for _ in 0..5 {
        assert_eq!(
            d.post_agent("/agents/code", &[("_csrf", &csrf), ("code", "123456")]).await.status,
            StatusCode::UNPROCESSABLE_ENTITY
        );
    }
    // Throttled after five wrong codes, even with the right one.
    assert_eq!(
        d.post_agent("/agents/code", &[("_csrf", &csrf), ("code", &code(&secret))]).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );

    // Log out everywhere ends the first session too.
    let csrf = c.agent_csrf("/agents/").await;
    location(&c.post_agent("/agents/deconnexion-partout", &[("_csrf", &csrf)]).await);
    let mut e = Client::new(&app);
    e.agent_cookie = c.agent_cookie.clone();
    assert_eq!(location(&e.get_agent("/agents/").await), "/agents/connexion");
    app.db.finish().await;
}

#[tokio::test]
async fn citizen_and_agent_sessions_are_separate() {
    let db = TestDb::sqlite().await;
    world(&db.store).await;
    let app = TestApp::on(db, WebConfig::default());
    let who = agents(&app).await;
    let mut citizen = Client::new(&app);
    sign_up(&mut citizen, "x@exemple.test", "/").await;
    // A citizen session is not an agent session.
    citizen.agent_cookie = citizen.cookie.clone();
    assert_eq!(location(&citizen.get_agent("/agents/").await), "/agents/connexion");
    let agent = agent_login(&app, &who.alpha).await;
    assert!(agent.cookie.is_none(), "the agent has no citizen session");
    app.db.finish().await;
}

#[tokio::test]
async fn every_back_office_route_refuses_another_tenants_ids() {
    for db in TestDb::all().await {
        let backend = db.backend;
        world(&db.store).await;
        let app = TestApp::on(db, WebConfig::default());
        let who = agents(&app).await;
        let (a, b, mut citizen) = requests(&app).await;
        // A file on bravo's side: the citizen writes to bravo with a photo.
        let csrf = citizen.csrf(&format!("/compte/demandes/{b}")).await;
        location(
            &citizen
                .post_multipart(
                    &format!("/compte/demandes/{b}/messages"),
                    &[
                        Part::Text("_csrf", &csrf),
                        Part::Text("message", "photo"),
                        Part::File("pieces", "p.png", PNG),
                    ],
                )
                .await,
        );
        let page = citizen.get(&format!("/compte/demandes/{b}")).await;
        let file_b = page
            .attrs("ol.timeline a[href^='/compte/fichiers/']", "href")
            .remove(0)
            .trim_start_matches("/compte/fichiers/")
            .to_owned();

        let mut alpha = agent_login(&app, &who.alpha).await;
        let csrf = alpha.agent_csrf("/agents/").await;
        assert_eq!(alpha.get_agent(&format!("/agents/demandes/{a}")).await.status, StatusCode::OK);
        for path in [
            format!("/agents/demandes/{b}"),
            format!("/agents/demandes/{b}/historique.csv"),
            format!("/agents/fichiers/{file_b}"),
            "/agents/demandes/pas-un-id".into(),
        ] {
            assert_eq!(
                alpha.get_agent(&path).await.status,
                StatusCode::NOT_FOUND,
                "{backend:?}: GET {path}"
            );
        }
        for (path, fields) in [
            (format!("/agents/demandes/{b}/transition"), vec![("action", "start")]),
            (format!("/agents/demandes/{b}/note"), vec![("note", "x")]),
            (format!("/agents/demandes/{b}/reponse"), vec![("reponse", "x")]),
            (format!("/agents/demandes/{b}/assigner"), vec![("agent", "moi")]),
            (
                "/agents/actions".to_owned(),
                vec![
                    ("ids", a.as_str()),
                    ("ids", b.as_str()),
                    ("operation", "attribuer"),
                    ("agent", "moi"),
                ],
            ),
        ] {
            let mut all = vec![("_csrf", csrf.as_str())];
            all.extend(fields);
            let page = alpha.post_agent(&path, &all).await;
            assert_eq!(page.status, StatusCode::NOT_FOUND, "{backend:?}: POST {path}");
        }
        // Nothing changed on either request (the bulk action was all or nothing).
        let page = alpha.get_agent(&format!("/agents/demandes/{a}")).await;
        assert!(
            page.attrs("#assign option[selected]", "value").is_empty(),
            "{backend:?}: still unassigned"
        );
        // Inbox, search, filters and export never show bravo's request.
        let reference_b = citizen.get(&format!("/compte/demandes/{b}")).await.text("dd.reference");
        for path in [
            "/agents/".to_owned(),
            format!("/agents/?q={reference_b}"),
            "/agents/?q=eclairage".into(),
            format!("/agents/?collectivite={}", "x"),
        ] {
            let page = alpha.get_agent(&path).await;
            assert!(
                !page.texts("table.inbox tbody td").contains(&reference_b),
                "{backend:?}: {path}"
            );
            assert!(!page.body.contains(&b), "{backend:?}: {path}");
        }
        let csv = alpha.get_agent("/agents/export.csv").await;
        assert!(
            !csv.body.contains(&reference_b) && csv.body.contains("EC-"),
            "{backend:?}: {}",
            csv.body
        );
        // The EPCI's administrator, member of both communes, sees both.
        let mut admin = agent_login(&app, &who.admin).await;
        let page = admin.get_agent("/agents/").await;
        assert_eq!(page.texts("table.inbox tbody tr").len(), 2, "{backend:?}");
        assert_eq!(
            admin.get_agent(&format!("/agents/fichiers/{file_b}")).await.status,
            StatusCode::OK
        );
        let mut bravo = agent_login(&app, &who.bravo).await;
        let search = bravo.get_agent("/agents/?q=ECLAIRAGE").await;
        assert_eq!(
            search.texts("table.inbox tbody tr td:nth-child(2) a"),
            std::slice::from_ref(&reference_b),
            "{backend:?}: accent-insensitive search"
        );
        app.db.finish().await;
    }
}

#[tokio::test]
async fn a_request_goes_through_the_default_workflow_and_the_citizen_follows_it() {
    for db in TestDb::all().await {
        let backend = db.backend;
        world(&db.store).await;
        let app = TestApp::on(db, WebConfig::default());
        let who = agents(&app).await;
        let (a, _, mut citizen) = requests(&app).await;
        let mut agent = agent_login(&app, &who.alpha).await;
        let path = format!("/agents/demandes/{a}");
        let act = |key: &'static str, extra: Vec<(&'static str, String)>| (key, extra);
        let steps = [
            act("start", vec![]),
            act(
                "ask_completion",
                vec![
                    ("message", "Merci de préciser le lieu de naissance.".into()),
                    ("manquant", "Lieu de naissance".into()),
                    ("echeance", "2099-01-31".into()),
                ],
            ),
            act("resume", vec![]),
            act("accept", vec![("message", "Votre extrait est envoyé par courrier.".into())]),
            act("close", vec![]),
        ];
        // A refused action first: a message is required to accept.
        let csrf = agent.agent_csrf(&path).await;
        let page = agent
            .post_agent(
                &format!("{path}/transition"),
                &[("_csrf", &csrf), ("action", "accept"), ("message", "")],
            )
            .await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            page.text(".error-summary p"),
            "« Message à l'usager » : un message est obligatoire pour cette action"
        );
        for (key, extra) in steps {
            let csrf = agent.agent_csrf(&path).await;
            let mut fields: Vec<(&str, &str)> = vec![("_csrf", &csrf), ("action", key)];
            fields.extend(extra.iter().map(|(k, v)| (*k, v.as_str())));
            let page = agent.post_agent(&format!("{path}/transition"), &fields).await;
            assert_eq!(location(&page), path, "{backend:?}: {key}: {}", page.body);
        }
        // An internal note and a reply.
        let csrf = agent.agent_csrf(&path).await;
        location(
            &agent
                .post_agent(
                    &format!("{path}/note"),
                    &[("_csrf", &csrf), ("note", "Vérifié au registre.")],
                )
                .await,
        );
        location(
            &agent
                .post_agent(
                    &format!("{path}/reponse"),
                    &[("_csrf", &csrf), ("reponse", "Bonne journée.")],
                )
                .await,
        );
        let page = agent.get_agent(&path).await;
        assert_eq!(page.text("dd.status"), "Clôturée");
        // The citizen was told at each notifying status, and reads the reply.
        let emails: Vec<String> = app
            .db
            .store
            .list_recent_emails(100)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.email.to == "usager@exemple.test")
            .map(|e| e.email.subject)
            .collect();
        for expected in
            ["En cours de traitement", "En attente de votre part", "Acceptée", "Nouveau message"]
        {
            assert!(
                emails.iter().any(|s| s.contains(expected)),
                "{backend:?}: no e-mail for {expected}: {emails:?}"
            );
        }
        // The citizen's timeline equals the agent's minus internal events.
        let agent_view: Vec<(String, Option<String>)> = {
            let items = page.texts("ol.agent-timeline li:not(.internal) p.what");
            let bodies = page.texts("ol.agent-timeline li:not(.internal)");
            items.into_iter().zip(bodies).map(|(w, all)| (w, Some(all))).collect()
        };
        let mine = citizen.get(&format!("/compte/demandes/{a}")).await;
        let citizen_whats = mine.texts("ol.timeline li p.what");
        assert_eq!(citizen_whats.len(), agent_view.len(), "{backend:?}: {citizen_whats:?}");
        assert!(!mine.body.contains("Vérifié au registre"), "internal notes stay internal");
        assert!(mine.texts("ol.timeline li p.body").iter().any(|b| b == "Bonne journée."));
        assert!(
            mine.texts("ol.timeline li p.body")
                .iter()
                .any(|b| b == "Votre extrait est envoyé par courrier.")
        );
        let history = agent.get_agent(&format!("{path}/historique.csv")).await;
        assert!(
            history.body.contains("Note interne;") && history.body.lines().count() >= 10,
            "{}",
            history.body
        );
        app.db.finish().await;
    }
}

#[tokio::test]
async fn an_acknowledgement_of_receipt_follows_the_check_of_a_registered_request() {
    let db = TestDb::sqlite().await;
    world(&db.store).await;
    let app = TestApp::on(db, WebConfig::default());
    let who = agents(&app).await;
    let mut c = Client::new(&app);
    sign_up(&mut c, "dp@exemple.test", "/alpha/").await;
    verify(&mut c, "dp@exemple.test").await;
    let first = start(&mut c, "alpha", "declaration-prealable").await;
    let mut path = first;
    for fields in [
        vec![
            Part::Text("adresse_terrain.street", "3 chemin Vert"),
            Part::Text("adresse_terrain.postcode", "20000"),
            Part::Text("adresse_terrain.city", "Alpha"),
            Part::Text("cadastre", "AB 12"),
            Part::Text("superficie", "800"),
        ],
        vec![Part::Text("nature", "cloture"), Part::Text("description", "Clôture")],
        vec![
            Part::File("dp1", "dp1.pdf", b"%PDF-1.4 a"),
            Part::File("dp2", "dp2.pdf", b"%PDF-1.4 b"),
        ],
    ] {
        let csrf = c.csrf(&path).await;
        let mut parts = vec![Part::Text("_csrf", &csrf), Part::Text("action", "suivant")];
        parts.extend(fields);
        path = location(&c.post_multipart(&path, &parts).await);
    }
    let csrf = c.csrf(&path).await;
    let request =
        location(&c.post(&path.replace("/recapitulatif", "/envoyer"), &[("_csrf", &csrf)]).await);
    let id = request.trim_start_matches("/compte/demandes/").trim_end_matches("?envoye=1");
    assert!(
        last_email(&app, "dp@exemple.test", "Accusé d'enregistrement")
            .await
            .text
            .contains("au plus tard le")
    );
    let mut agent = agent_login(&app, &who.alpha).await;
    let page = agent.get_agent(&format!("/agents/demandes/{id}")).await;
    assert_eq!(page.text("dd.status"), "Enregistrée (accusé de réception à envoyer)");
    // Images and PDF are previewable, served inline.
    let file = page.attrs("ul.files a", "href").remove(0);
    let pdf = agent.get_agent(&file).await;
    assert!(pdf.header("content-disposition").starts_with("inline"));
    let csrf = page.attrs("input[name=_csrf]", "value").remove(0);
    location(
        &agent
            .post_agent(
                &format!("/agents/demandes/{id}/transition"),
                &[("_csrf", &csrf), ("action", "acknowledge")],
            )
            .await,
    );
    let ack = last_email(&app, "dp@exemple.test", "Accusé de réception").await;
    assert!(ack.text.contains("réputée acceptée le"), "{}", ack.text);
    let mine = c.get(&format!("/compte/demandes/{id}")).await;
    assert_eq!(mine.texts("ul.documents li a").len(), 2);
    app.db.finish().await;
}

#[tokio::test]
async fn administrators_manage_their_tenants_agents_and_reply_templates_only() {
    for db in TestDb::all().await {
        let backend = db.backend;
        world(&db.store).await;
        let app = TestApp::on(db, WebConfig::default());
        let who = agents(&app).await;
        let s = &app.db.store;
        let tenant = |slug: &'static str| async move {
            s.find_tenant_by_slug(&Slug::parse(slug).unwrap()).await.unwrap().unwrap().id
        };
        let (alpha, epci) = (tenant("alpha").await, tenant("cc-test").await);
        // A plain agent has no administration.
        let mut plain = agent_login(&app, &who.alpha).await;
        assert_eq!(plain.get_agent("/agents/admin/").await.status, StatusCode::FORBIDDEN);
        let csrf = plain.agent_csrf("/agents/").await;
        let page = plain
            .post_agent(
                &format!("/agents/admin/{alpha}/modeles"),
                &[("_csrf", &csrf), ("titre", "x"), ("texte", "y")],
            )
            .await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{backend:?}");

        let mut admin = agent_login(&app, &who.admin).await;
        let page = admin.get_agent("/agents/admin/").await;
        assert_eq!(
            page.texts("section.admin-tenant h2"),
            ["Collectivité cc-test"],
            "{backend:?}: only administered tenants"
        );
        let csrf = page.attrs("input[name=_csrf]", "value").remove(0);
        // Alpha is not administered by them (supervisor there): 404.
        let page = admin
            .post_agent(
                &format!("/agents/admin/{alpha}/modeles"),
                &[("_csrf", &csrf), ("titre", "x"), ("texte", "y")],
            )
            .await;
        assert_eq!(page.status, StatusCode::NOT_FOUND);
        // Grant alpha's agent a membership of the EPCI, and create a new agent.
        location(
            &admin
                .post_agent(
                    &format!("/agents/admin/{epci}/agents"),
                    &[("_csrf", &csrf), ("email", &who.alpha), ("role", "agent")],
                )
                .await,
        );
        location(
            &admin
                .post_agent(
                    &format!("/agents/admin/{epci}/agents"),
                    &[
                        ("_csrf", &csrf),
                        ("email", "nouvel@cc.test"),
                        ("nom", "Nouvel Agent"),
                        ("mot_de_passe", "un mot de passe initial"),
                        ("role", "supervisor"),
                    ],
                )
                .await,
        );
        let page = admin.get_agent("/agents/admin/").await;
        let emails = page.texts("table.members tbody td:nth-child(2)");
        assert!(
            emails.contains(&who.alpha) && emails.contains(&"nouvel@cc.test".to_owned()),
            "{backend:?}: {emails:?}"
        );
        let mut newcomer = Client::new(&app);
        let csrf2 = newcomer.agent_csrf("/agents/connexion").await;
        let page = newcomer
            .post_agent(
                "/agents/connexion",
                &[
                    ("_csrf", &csrf2),
                    ("email", "nouvel@cc.test"),
                    ("password", "un mot de passe initial"),
                ],
            )
            .await;
        assert_eq!(location(&page), "/agents/");
        // The last administrator cannot be removed or demoted.
        let me =
            s.find_agent_login(&Email::parse(&who.admin).unwrap()).await.unwrap().unwrap().0.id;
        let page = admin
            .post_agent(
                &format!("/agents/admin/{epci}/agents/{me}/role"),
                &[("_csrf", &csrf), ("role", "agent")],
            )
            .await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{backend:?}");
        assert_eq!(
            page.text(".error-summary p"),
            "La collectivité doit garder au moins un administrateur."
        );
        let page = admin
            .post_agent(&format!("/agents/admin/{epci}/agents/{me}/retirer"), &[("_csrf", &csrf)])
            .await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
        // Reply templates.
        location(
            &admin
                .post_agent(
                    &format!("/agents/admin/{epci}/modeles"),
                    &[
                        ("_csrf", &csrf),
                        ("titre", "Pièce manquante"),
                        ("texte", "Merci de nous transmettre…"),
                    ],
                )
                .await,
        );
        assert_eq!(
            admin.get_agent("/agents/admin/").await.texts("ul.templates strong"),
            ["Pièce manquante"]
        );
        app.db.finish().await;
    }
}

#[tokio::test]
async fn inbox_views_export_as_csv_and_as_an_ods_a_zip_reader_opens() {
    let db = TestDb::sqlite().await;
    world(&db.store).await;
    let app = TestApp::on(db, WebConfig::default());
    let who = agents(&app).await;
    let (_, _, _) = requests(&app).await;
    let mut agent = agent_login(&app, &who.admin).await;
    let csv = agent.get_agent("/agents/export.csv?canal=web").await;
    assert!(csv.body.starts_with("\u{feff}Référence;Collectivité;"));
    assert_eq!(csv.body.lines().count(), 3, "{}", csv.body);
    let request = axum::http::Request::get("/agents/export.ods")
        .header("host", "127.0.0.1")
        .header("cookie", format!("guichet_agent={}", agent.agent_cookie.clone().unwrap()))
        .body(axum::body::Body::empty())
        .unwrap();
    let response = tower::ServiceExt::oneshot(app.router.clone(), request).await.unwrap();
    assert_eq!(
        response.headers()["content-type"],
        "application/vnd.oasis.opendocument.spreadsheet"
    );
    let bytes = http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
    let path = std::env::temp_dir().join(format!("guichet-export-{}.ods", uuid::Uuid::now_v7()));
    std::fs::write(&path, &bytes).unwrap();
    // Python's zipfile checks every CRC; ElementTree parses the sheet.
    let script = "import sys, zipfile, xml.etree.ElementTree as ET\n\
z = zipfile.ZipFile(sys.argv[1])\n\
assert z.testzip() is None\n\
assert z.namelist()[0] == 'mimetype' and z.read('mimetype') == b'application/vnd.oasis.opendocument.spreadsheet'\n\
ns = '{urn:oasis:names:tc:opendocument:xmlns:text:1.0}p'\n\
print('|'.join(p.text or '' for p in ET.fromstring(z.read('content.xml')).iter(ns)))\n";
    let out =
        std::process::Command::new("python3").arg("-c").arg(script).arg(&path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let cells = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(cells.starts_with("Référence|Collectivité|Démarche"), "{cells}");
    assert!(cells.contains("EC-") && cells.contains("QM-"), "{cells}");
    let _ = std::fs::remove_file(path);
    app.db.finish().await;
}
