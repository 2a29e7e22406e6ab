//! The citizen portal's journeys, in-process, on every backend.

use axum::http::StatusCode;
use guichet_domain::TenantKind;
use guichet_domain::calendar::HolidayArea;
use guichet_domain::clock::{date_fr, paris};
use guichet_domain::deadline::{
    DelayLength, LegalDelay, Regime, RequestHistory, deemed_decision_date,
};
use guichet_store::Store;
use guichet_testkit::TestDb;
use guichet_testkit::fixtures::{service, tenant};
use guichet_web::WebConfig;
use std::sync::Arc;
use time::OffsetDateTime;

use crate::TestApp;
use crate::client::{Client, Part, location};

const PASSWORD: &str = "une phrase de passe solide";

pub(crate) async fn world(store: &Arc<dyn Store>) {
    let epci = store.add_tenant(&tenant("cc-test", TenantKind::Epci, None, 1), &[]).await.unwrap();
    let alpha = store
        .add_tenant(&tenant("alpha", TenantKind::Commune, Some(epci.id), 2), &[])
        .await
        .unwrap();
    let bravo = store
        .add_tenant(&tenant("bravo", TenantKind::Commune, Some(epci.id), 3), &[])
        .await
        .unwrap();
    for key in ["acte-etat-civil", "question-mairie", "reservation-salle", "declaration-prealable"]
    {
        store.add_service(&service(alpha.id, key)).await.unwrap();
    }
    // The same SVA regime without the prior check: an ARE at once.
    let mut direct = service(alpha.id, "declaration-prealable");
    direct.slug = "dp-directe".into();
    direct.prior_check = false;
    store.add_service(&direct).await.unwrap();
    store.add_service(&service(bravo.id, "question-mairie")).await.unwrap();
    store.add_service(&service(epci.id, "signalement")).await.unwrap();
}

async fn app(db: TestDb) -> TestApp {
    world(&db.store).await;
    TestApp::on(db, WebConfig::default())
}

/// The last e-mail sent to `to` whose subject contains `subject`.
pub(crate) async fn last_email(app: &TestApp, to: &str, subject: &str) -> guichet_store::NewEmail {
    app.db
        .store
        .list_recent_emails(100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.email)
        .find(|e| e.to == to && e.subject.contains(subject))
        .unwrap_or_else(|| panic!("no e-mail to {to} about {subject}"))
}

fn link_in(text: &str, prefix: &str) -> String {
    let start = text.find(prefix).unwrap_or_else(|| panic!("no {prefix} in {text}"));
    let rest = &text[start..];
    let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    rest[..end].trim_start_matches("http://127.0.0.1:8080").to_owned()
}

pub(crate) async fn sign_up(c: &mut Client<'_>, email: &str, back: &str) {
    let csrf = c.csrf(&format!("/compte/inscription?retour={back}")).await;
    let page = c
        .post(
            "/compte/inscription",
            &[
                ("_csrf", &csrf),
                ("retour", back),
                ("given_name", "Camille"),
                ("family_name", "Martin"),
                ("email", email),
                ("password", PASSWORD),
                ("password_confirm", PASSWORD),
                ("insee_code", "2A002"),
            ],
        )
        .await;
    assert!(location(&page).starts_with("/compte/?inscription=1"));
}

pub(crate) async fn verify(c: &mut Client<'_>, email: &str) {
    let mail = last_email(c.app, email, "confirmez").await;
    let link = link_in(&mail.text, "http://127.0.0.1:8080/compte/verifier/");
    let page = c.get(&link).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(page.text("h1#title"), "Adresse électronique confirmée");
}

async fn log_in(c: &mut Client<'_>, email: &str, password: &str) -> crate::Page {
    let csrf = c.csrf("/compte/connexion").await;
    c.post(
        "/compte/connexion",
        &[("_csrf", &csrf), ("email", email), ("password", password), ("retour", "/compte/")],
    )
    .await
}

/// Starts a service on a portal; returns the first step's path.
///
/// The service page opens the form with a GET, which makes no draft; this posts "commencer",
/// which makes an empty one at once, so that every step has its draft's address.
pub(crate) async fn start(c: &mut Client<'_>, portal: &str, service: &str) -> String {
    let page = c.get(&format!("/{portal}/demarches/{service}")).await;
    assert_eq!(page.status, StatusCode::OK);
    let csrf = c.csrf(&format!("/{portal}/demarches/{service}/formulaire")).await;
    let page =
        c.post(&format!("/{portal}/demarches/{service}/commencer"), &[("_csrf", &csrf)]).await;
    location(&page)
}

/// Posts a step with `action=suivant`; returns the response.
pub(crate) async fn step(c: &mut Client<'_>, path: &str, fields: &[(&str, &str)]) -> crate::Page {
    let csrf = c.csrf(path).await;
    let mut all = vec![("_csrf", csrf.as_str()), ("action", "suivant")];
    all.extend_from_slice(fields);
    c.post(path, &all).await
}

/// Fills every page, then submits from the summary; returns the request page path.
pub(crate) async fn fill_and_submit(
    c: &mut Client<'_>,
    first: &str,
    pages: &[&[(&str, &str)]],
) -> String {
    let mut path = first.to_owned();
    for fields in pages {
        let page = step(c, &path, fields).await;
        path = location(&page);
    }
    assert!(path.ends_with("/recapitulatif"), "{path}");
    let summary = c.get(&path).await;
    assert_eq!(summary.status, StatusCode::OK);
    let csrf = summary.attrs("form input[name=_csrf]", "value").remove(0);
    let page = c.post(&path.replace("/recapitulatif", "/envoyer"), &[("_csrf", &csrf)]).await;
    let target = location(&page);
    assert!(target.starts_with("/compte/demandes/") && target.ends_with("?envoye=1"), "{target}");
    target
}

pub(crate) const ACTE: &[&[(&str, &str)]] = &[
    &[("type_acte", "naissance"), ("type_document", "extrait_sans_filiation"), ("nombre", "1")],
    &[("nom", "Martin"), ("prenoms", "Camille"), ("date_evenement", "1990-05-12")],
    &[("qualite", "interesse"), ("remise", "mairie")],
];

pub(crate) const PNG: &[u8] =
    &[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, b'I', b'H', b'D', b'R'];

#[tokio::test]
async fn a_citizen_signs_up_on_one_portal_submits_two_services_and_is_known_everywhere() {
    for db in TestDb::all().await {
        let backend = db.backend;
        let app = app(db).await;
        let mut c = Client::new(&app);
        sign_up(&mut c, "camille@exemple.test", "/alpha/").await;
        verify(&mut c, "camille@exemple.test").await;

        // Commune A's civil-status service.
        let first = start(&mut c, "alpha", "acte-etat-civil").await;
        let acte = fill_and_submit(&mut c, &first, ACTE).await;

        // The EPCI's problem report, from commune A's portal, with a photo.
        let first = start(&mut c, "alpha", "signalement").await;
        let csrf = c.csrf(&first).await;
        let page = c
            .post_multipart(
                &first,
                &[
                    Part::Text("_csrf", &csrf),
                    Part::Text("action", "suivant"),
                    Part::Text("categorie", "eclairage"),
                    Part::Text("description", "Lampadaire éteint depuis une semaine"),
                    Part::Text("adresse.street", "2 rue des Écoles"),
                    Part::Text("adresse.postcode", "20000"),
                    Part::Text("adresse.city", "Alpha"),
                    Part::File("photo", "lampadaire.png", PNG),
                ],
            )
            .await;
        let summary = location(&page);
        let page = c.get(&summary).await;
        assert!(
            page.texts("section.summary dd").iter().any(|t| t == "lampadaire.png"),
            "{backend:?}"
        );
        let csrf = page.attrs("form input[name=_csrf]", "value").remove(0);
        let signalement = location(
            &c.post(&summary.replace("/recapitulatif", "/envoyer"), &[("_csrf", &csrf)]).await,
        );

        // Commune B's portal: still logged in (the service page offers to start, not to log in).
        let page = c.get("/bravo/demarches/question-mairie").await;
        assert_eq!(page.texts("main a.button"), ["Commencer la démarche"], "{backend:?}");
        assert_eq!(
            page.attrs("main a.button", "href"),
            ["/bravo/demarches/question-mairie/formulaire"]
        );

        // "My requests" lists both, with references and acknowledgements.
        let page = c.get("/compte/").await;
        let refs = page.texts("table.requests td:first-child a");
        assert_eq!(refs.len(), 2, "{backend:?}");
        let year = OffsetDateTime::now_utc().year();
        assert!(refs.contains(&format!("EC-{year}-000001")), "{refs:?}");
        assert!(refs.contains(&format!("SIG-{year}-000001")), "{refs:?}");
        for path in [acte, signalement] {
            let page = c.get(&path).await;
            assert_eq!(page.status, StatusCode::OK);
            let docs = page.texts("ul.documents li a");
            assert_eq!(docs.len(), 1, "{backend:?}: {docs:?}");
            assert!(docs[0].starts_with("Accusé de réception électronique"));
            let doc = c.get(&page.attrs("ul.documents li a", "href")[0]).await;
            assert!(doc.text("article.ack").contains("Date de réception"));
        }
        // The EPCI's request is routed with commune A.
        let page = c.get("/compte/").await;
        assert!(page.texts("table.requests td").iter().any(|t| t == "Collectivité cc-test"));
        app.db.finish().await;
    }
}

/// Submits a one-page-or-more service for a fresh verified citizen; returns the ack e-mail text.
async fn submit_for_ack(
    app: &TestApp,
    email: &str,
    service: &str,
    pages: &[&[(&str, &str)]],
) -> (String, usize) {
    let mut c = Client::new(app);
    sign_up(&mut c, email, "/alpha/").await;
    verify(&mut c, email).await;
    let first = start(&mut c, "alpha", service).await;
    // File pages go through multipart.
    let mut path = first;
    for fields in pages {
        let csrf = c.csrf(&path).await;
        let mut parts = vec![Part::Text("_csrf", &csrf), Part::Text("action", "suivant")];
        for (k, v) in *fields {
            if k.starts_with("dp") {
                parts.push(Part::File(k, "plan.pdf", b"%PDF-1.4\n%test\n"));
            } else {
                parts.push(Part::Text(k, v));
            }
        }
        let page = c.post_multipart(&path, &parts).await;
        path = location(&page);
    }
    let summary = c.get(&path).await;
    let csrf = summary.attrs("form input[name=_csrf]", "value").remove(0);
    location(&c.post(&path.replace("/recapitulatif", "/envoyer"), &[("_csrf", &csrf)]).await);
    let acks: Vec<_> = app
        .db
        .store
        .list_recent_emails(100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.email.to == email && e.email.subject.starts_with("Accusé"))
        .collect();
    let text = acks.first().map(|e| e.email.text.clone()).unwrap_or_default();
    (text, acks.len())
}

fn expected_deemed(regime: Regime, delay: &str) -> String {
    let received = paris(OffsetDateTime::now_utc()).date();
    let history = RequestHistory::new(received, HolidayArea::Metropole);
    let d = deemed_decision_date(
        &LegalDelay::new(regime, DelayLength::parse(delay).unwrap()),
        &history,
    )
    .unwrap();
    date_fr(d)
}

fn assert_common_mentions(text: &str) {
    // R112-11-1: date of receipt; name, address, e-mail and phone of the handling service.
    for mention in [
        "Date de réception :",
        "Accueil de alpha",
        "1 place de la Mairie, 20000 AJACCIO",
        "Courriel : accueil@alpha.test",
        "Téléphone : 04 95 00 00 00",
    ] {
        assert!(text.contains(mention), "missing {mention:?} in:\n{text}");
    }
}

const DP: &[&[(&str, &str)]] = &[
    &[
        ("adresse_terrain.street", "3 chemin Vert"),
        ("adresse_terrain.postcode", "20000"),
        ("adresse_terrain.city", "Alpha"),
        ("cadastre", "AB 12"),
        ("superficie", "800"),
    ],
    &[("nature", "cloture"), ("description", "Clôture en bois")],
    &[("dp1", ""), ("dp2", "")],
];

#[tokio::test]
async fn every_submission_gets_one_acknowledgement_with_every_mandatory_mention() {
    for db in TestDb::all().await {
        let backend = db.backend;
        let app = app(db).await;

        // SVA: deemed accepted on a date, attestation of L232-3.
        let (text, n) = submit_for_ack(&app, "sva@exemple.test", "dp-directe", DP).await;
        assert_eq!(n, 1, "{backend:?}: exactly one acknowledgement");
        assert!(text.starts_with("ACCUSÉ DE RÉCEPTION ÉLECTRONIQUE"), "{text}");
        assert_common_mentions(&text);
        let date = expected_deemed(Regime::Sva, "months:1");
        assert!(
            text.contains(&format!(
                "réputée acceptée le {date}, sous réserve que votre dossier soit complet"
            )),
            "{backend:?}: {text}"
        );
        assert!(
            text.contains(
                "l'attestation de décision implicite d'acceptation prévue à l'article L232-3"
            ),
            "{text}"
        );

        // SVR: deemed rejected on a date, appeal routes and delays.
        let salle: &[&[(&str, &str)]] = &[&[
            ("salle", "reunion"),
            ("date", "2030-01-10"),
            ("creneau", "matin"),
            ("objet", "AG"),
            ("participants", "20"),
            ("association", "non"),
        ]];
        let (text, n) = submit_for_ack(&app, "svr@exemple.test", "reservation-salle", salle).await;
        assert_eq!(n, 1);
        assert_common_mentions(&text);
        let date = expected_deemed(Regime::Svr, "months:1");
        assert!(text.contains(&format!("réputée rejetée le {date}")), "{backend:?}: {text}");
        assert!(
            text.contains("Voies et délais de recours")
                && text.contains("tribunal administratif")
                && text.contains("deux mois"),
            "{text}"
        );

        // Information only: no implicit decision.
        let question: &[&[(&str, &str)]] = &[&[
            ("sujet", "Horaires"),
            ("question", "Quels horaires cet été ?"),
            ("rappel", "non"),
        ]];
        let (text, n) =
            submit_for_ack(&app, "info@exemple.test", "question-mairie", question).await;
        assert_eq!(n, 1);
        assert_common_mentions(&text);
        assert!(text.contains("ne donne pas lieu à une décision implicite"), "{text}");
        assert!(!text.contains("réputée"), "{text}");

        // Prior check: an acknowledgement of registration, announcing the ARE's latest date.
        let (text, n) = submit_for_ack(&app, "aee@exemple.test", "declaration-prealable", DP).await;
        assert_eq!(n, 1);
        assert!(text.starts_with("ACCUSÉ D'ENREGISTREMENT ÉLECTRONIQUE"), "{text}");
        assert_common_mentions(&text);
        assert!(
            text.contains("Un accusé de réception vous sera adressé au plus tard le"),
            "{text}"
        );
        app.db.finish().await;
    }
}

#[tokio::test]
async fn each_field_type_refuses_bad_input_in_french_and_keeps_the_rest() {
    let app = app(TestDb::sqlite().await).await;
    let mut c = Client::new(&app);
    sign_up(&mut c, "champs@exemple.test", "/alpha/").await;
    let first = start(&mut c, "alpha", "reservation-salle").await;
    let page = step(
        &mut c,
        &first,
        &[
            ("salle", "piscine"),
            ("date", "31/02/2030"),
            ("creneau", "soiree"),
            ("objet", ""),
            ("participants", "beaucoup"),
            ("equipements", "jacuzzi"),
            ("association", "oui"),
            ("nom_association", "Les Amis du Lys"),
        ],
    )
    .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    let summary = page.texts(".error-summary li a");
    assert_eq!(
        summary,
        [
            "« Salle » : choisissez une des options proposées.",
            "« Date souhaitée » : doit être une date valide, au format jj/mm/aaaa.",
            "« Objet de la manifestation » : ce champ est obligatoire.",
            "« Nombre de personnes attendues » : doit être un nombre (par exemple 12 ou 12,5).",
            "« Équipements souhaités » : choisissez parmi les options proposées.",
        ]
    );
    // Each error is also next to its field, linked for screen readers.
    assert_eq!(page.attrs("#participants", "aria-invalid"), ["true"]);
    assert_eq!(
        page.text("#participants-error"),
        "« Nombre de personnes attendues » : doit être un nombre (par exemple 12 ou 12,5)."
    );
    // What was typed stays on the page, valid or not.
    assert_eq!(page.attrs("#participants", "value"), ["beaucoup"]);
    assert_eq!(page.attrs("#nom_association", "value"), ["Les Amis du Lys"]);
    assert_eq!(page.attrs("input[name=creneau][checked]", "value"), ["soiree"]);
    // And the valid answers are saved in the draft.
    let page = c.get(&first).await;
    assert_eq!(page.attrs("input[name=creneau][checked]", "value"), ["soiree"]);
    assert_eq!(page.attrs("#nom_association", "value"), ["Les Amis du Lys"]);

    // E-mail, phone and address fields.
    let first = start(&mut c, "alpha", "question-mairie").await;
    let page = step(
        &mut c,
        &first,
        &[("sujet", "x"), ("question", "y"), ("rappel", "oui"), ("telephone", "12 34")],
    )
    .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        page.texts(".error-summary li a"),
        [
            "« Numéro de téléphone » : le numéro de téléphone doit comporter 10 chiffres (06 12 34 56 78) ou commencer par +."
        ]
    );
    let first = start(&mut c, "alpha", "acte-etat-civil").await;
    let mut path = first;
    for fields in &ACTE[..2] {
        path = location(&step(&mut c, &path, fields).await);
    }
    let page = step(
        &mut c,
        &path,
        &[
            ("qualite", "interesse"),
            ("remise", "courrier"),
            ("adresse_envoi.street", "1 rue X"),
            ("adresse_envoi.postcode", "2000"),
            ("adresse_envoi.city", "Alpha"),
        ],
    )
    .await;
    assert_eq!(
        page.texts(".error-summary li a"),
        ["« Adresse d'envoi » : le code postal doit comporter 5 chiffres."]
    );
    assert_eq!(page.attrs("input[name='adresse_envoi.street']", "value"), ["1 rue X"]);
    // Once saved, the address comes back part by part when the citizen returns to the step;
    // the step's other fields have no parts.
    let saved = step(
        &mut c,
        &path,
        &[
            ("qualite", "interesse"),
            ("remise", "courrier"),
            ("adresse_envoi.street", "1 rue X"),
            ("adresse_envoi.postcode", "20000"),
            ("adresse_envoi.city", "Alpha"),
        ],
    )
    .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER);
    let again = c.get(&path).await;
    assert_eq!(again.attrs("input[name='adresse_envoi.street']", "value"), ["1 rue X"]);
    assert_eq!(again.attrs("input[name='adresse_envoi.postcode']", "value"), ["20000"]);
    assert_eq!(again.attrs("input[name='adresse_envoi.city']", "value"), ["Alpha"]);
    assert!(again.attrs("input[name='qualite.street']", "value").is_empty());
    app.db.finish().await;
}

#[tokio::test]
async fn oversized_or_mistyped_files_are_refused_and_nothing_is_lost() {
    let app = app(TestDb::sqlite().await).await;
    let mut c = Client::new(&app);
    sign_up(&mut c, "fichiers@exemple.test", "/alpha/").await;
    let first = start(&mut c, "alpha", "signalement").await;
    let base = |csrf: &str| -> Vec<(String, String)> {
        vec![
            ("_csrf".into(), csrf.into()),
            ("action".into(), "suivant".into()),
            ("categorie".into(), "voirie".into()),
            ("description".into(), "Nid-de-poule".into()),
            ("adresse.street".into(), "1 rue Haute".into()),
            ("adresse.postcode".into(), "20000".into()),
            ("adresse.city".into(), "Alpha".into()),
        ]
    };
    // A program renamed as a photo.
    let csrf = c.csrf(&first).await;
    let fields = base(&csrf);
    let mut parts: Vec<Part> = fields.iter().map(|(k, v)| Part::Text(k, v)).collect();
    parts.push(Part::File("photo", "photo.jpg", b"MZ\x90\x00this is not an image"));
    let page = c.post_multipart(&first, &parts).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        page.texts(".error-summary li a"),
        ["« Photo » : le fichier « photo.jpg » n'est pas d'un format accepté (image JPEG ou PNG)."]
    );
    assert_eq!(page.attrs("#description", "value").len(), 0);
    assert_eq!(page.text("#description"), "Nid-de-poule");
    // 11 MB when 10 are allowed.
    let big = [PNG, &vec![0u8; 11 * 1024 * 1024]].concat();
    let csrf = c.csrf(&first).await;
    let fields = base(&csrf);
    let mut parts: Vec<Part> = fields.iter().map(|(k, v)| Part::Text(k, v)).collect();
    parts.push(Part::File("photo", "enorme.png", &big));
    let page = c.post_multipart(&first, &parts).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        page.texts(".error-summary li a"),
        ["« Photo » : le fichier « enorme.png » dépasse la taille maximale de 10 Mo."]
    );
    // The text answers were saved despite the refused files.
    let page = c.get(&first).await;
    assert_eq!(page.text("#description"), "Nid-de-poule");
    assert_eq!(page.attrs("input[name='adresse.city']", "value"), ["Alpha"]);
    app.db.finish().await;
}

#[tokio::test]
async fn a_cut_or_oversized_body_is_refused_in_french_and_the_draft_is_kept() {
    let app = app(TestDb::sqlite().await).await;
    let mut c = Client::new(&app);
    sign_up(&mut c, "coupure@exemple.test", "/alpha/").await;
    let first = start(&mut c, "alpha", "signalement").await;
    let csrf = c.csrf(&first).await;
    let saved = c
        .post(&first, &[("_csrf", &csrf), ("action", "enregistrer"), ("description", "Lampadaire")])
        .await;
    // Incomplete (422), but what was typed is kept.
    assert_eq!(saved.status, StatusCode::UNPROCESSABLE_ENTITY);

    // The connection drops during the upload: the body stops inside the file, no closing
    // boundary. A 400 that says so, not "too large".
    let csrf = c.csrf(&first).await;
    let boundary = "----coupure";
    let cut = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"_csrf\"\r\n\r\n{csrf}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"description\"\r\n\r\nAutre\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"a.png\"\r\n\
         Content-Type: image/png\r\n\r\n\x7fPNG half a pho"
    );
    let page = c
        .post_raw(&first, &format!("multipart/form-data; boundary={boundary}"), cut.into_bytes())
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert_eq!(page.text("h1"), "Demande incorrecte");
    assert!(page.text("main").contains("arrivé incomplet ou illisible"), "{}", page.body);

    // More than the 64 MB a form may carry: 413, in French.
    let mut big = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"_csrf\"\r\n\r\n{csrf}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"b.png\"\r\n\
         Content-Type: image/png\r\n\r\n"
    )
    .into_bytes();
    big.resize(big.len() + 65 * 1024 * 1024, b'x');
    big.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let page = c.post_raw(&first, &format!("multipart/form-data; boundary={boundary}"), big).await;
    assert_eq!(page.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(page.text("h1"), "Envoi trop volumineux");
    assert!(page.text("main").contains("taille maximale autorisée (64 Mo en tout)"));

    // A URL-encoded form over its limit: 413 too, never the "unreadable" page.
    let long = format!("_csrf={csrf}&description={}", "x".repeat(3 * 1024 * 1024));
    let page = c
        .post_raw("/compte/connexion", "application/x-www-form-urlencoded", long.into_bytes())
        .await;
    assert_eq!(page.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(page.text("h1"), "Envoi trop volumineux");

    // Nothing of the refused bodies was kept; what was saved before is intact.
    let page = c.get(&first).await;
    assert_eq!(page.text("#description"), "Lampadaire");
    app.db.finish().await;
}

#[tokio::test]
async fn a_draft_survives_logout_and_a_double_submission_makes_one_request() {
    for db in TestDb::all().await {
        let backend = db.backend;
        let app = app(db).await;
        let mut c = Client::new(&app);
        sign_up(&mut c, "brouillon@exemple.test", "/alpha/").await;
        verify(&mut c, "brouillon@exemple.test").await;
        let first = start(&mut c, "alpha", "acte-etat-civil").await;
        let second = location(&step(&mut c, &first, ACTE[0]).await);
        // Log out, log in again: the draft is listed and resumes where it was.
        let csrf = c.csrf("/compte/").await;
        location(&c.post("/compte/deconnexion", &[("_csrf", &csrf)]).await);
        assert_eq!(location(&c.get(&second).await), format!("/compte/connexion?retour={second}"));
        let page = log_in(&mut c, "brouillon@exemple.test", PASSWORD).await;
        assert_eq!(location(&page), "/compte/");
        let page = c.get("/compte/").await;
        assert_eq!(page.texts("ul.drafts li a"), ["Demande d'acte d'état civil"], "{backend:?}");
        assert_eq!(page.attrs("ul.drafts li a", "href"), std::slice::from_ref(&second));
        let page = c.get(&first).await;
        assert_eq!(page.attrs("input[name=type_acte][checked]", "value"), ["naissance"]);

        // Finish, then submit twice (double click / replayed POST).
        let mut path = second;
        for fields in &ACTE[1..] {
            path = location(&step(&mut c, &path, fields).await);
        }
        let csrf = c.csrf(&path).await;
        let send = path.replace("/recapitulatif", "/envoyer");
        let a = location(&c.post(&send, &[("_csrf", &csrf)]).await);
        let b = location(&c.post(&send, &[("_csrf", &csrf)]).await);
        assert_eq!(a, b, "{backend:?}: the same request");
        assert_eq!(c.get("/compte/").await.texts("table.requests tbody tr").len(), 1);
        assert_eq!(
            last_email_count(&app, "brouillon@exemple.test").await,
            1,
            "one acknowledgement"
        );
        app.db.finish().await;
    }
}

/// A complete problem report (`signalement`, a form without a summary page).
const REPORT: &[(&str, &str)] = &[
    ("categorie", "voirie"),
    ("description", "Nid-de-poule devant l'école"),
    ("adresse.street", "1 rue Haute"),
    ("adresse.postcode", "20000"),
    ("adresse.city", "Alpha"),
];

const REPORT_FORM: &str = "/alpha/demarches/signalement/formulaire";

/// The form opened from a service page: its `_csrf`, its `_brouillon` token, and the fields of
/// `answers` with `action`.
async fn fresh_fields(
    c: &mut Client<'_>,
    form: &str,
    action: &str,
    answers: &[(&str, &str)],
) -> Vec<(String, String)> {
    let page = c.get(form).await;
    assert_eq!(page.status, StatusCode::OK, "{form}: {}", page.body);
    let mut fields = vec![
        ("_csrf".to_owned(), page.attrs("input[name=_csrf]", "value").remove(0)),
        ("_brouillon".to_owned(), page.attrs("input[name=_brouillon]", "value").remove(0)),
        ("action".to_owned(), action.to_owned()),
    ];
    fields.extend(answers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    fields
}

fn pairs(fields: &[(String, String)]) -> Vec<(&str, &str)> {
    fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

#[tokio::test]
async fn a_form_without_a_summary_is_one_page_and_one_post_and_opening_it_writes_nothing() {
    for db in TestDb::all().await {
        let backend = db.backend;
        let app = app(db).await;
        let mut c = Client::new(&app);
        sign_up(&mut c, "rapide@exemple.test", "/alpha/").await;
        verify(&mut c, "rapide@exemple.test").await;
        // The service page links to the form: opening it is navigation.
        let page = c.get("/alpha/demarches/signalement").await;
        assert_eq!(page.attrs("main a.button", "href"), [REPORT_FORM]);
        assert_eq!(page.text("main a.button"), "Commencer la démarche");
        let page = c.get(REPORT_FORM).await;
        assert_eq!(page.status, StatusCode::OK, "{backend:?}");
        assert_eq!(page.attrs("main form[method=post]", "action"), [REPORT_FORM]);
        assert_eq!(page.texts("main form .actions button:not(.secondary)"), ["Envoyer ma demande"]);
        assert_eq!(
            page.text("#send-notice"),
            "En envoyant cette demande, vous recevrez aussitôt un accusé à l'adresse rapide@exemple.test."
        );
        // Opening the form wrote nothing: no draft in the account.
        assert!(c.get("/compte/").await.texts("ul.drafts li").is_empty(), "{backend:?}");

        let fields = fresh_fields(&mut c, REPORT_FORM, "envoyer", REPORT).await;
        let sent = location(&c.post(REPORT_FORM, &pairs(&fields)).await);
        assert!(sent.starts_with("/compte/demandes/") && sent.ends_with("?envoye=1"), "{sent}");
        // A double click: the same request, one acknowledgement, no draft left behind.
        assert_eq!(location(&c.post(REPORT_FORM, &pairs(&fields)).await), sent, "{backend:?}");
        let account = c.get("/compte/").await;
        assert_eq!(account.texts("table.requests tbody tr").len(), 1, "{backend:?}");
        assert!(account.texts("ul.drafts li").is_empty(), "{backend:?}");
        assert_eq!(last_email_count(&app, "rapide@exemple.test").await, 1);
        let page = c.get(&sent).await;
        assert_eq!(page.status, StatusCode::OK);
        assert_eq!(
            page.texts("ol.timeline li p.what"),
            ["Demande envoyée", "Accusé de réception envoyé"],
            "{backend:?}"
        );
        app.db.finish().await;
    }
}

#[tokio::test]
async fn a_first_page_refused_or_saved_becomes_a_draft_and_its_id_is_bound_to_its_citizen() {
    for db in TestDb::all().await {
        let backend = db.backend;
        let app = app(db).await;
        let mut c = Client::new(&app);
        // Anonymous: the login page, coming back to the form.
        assert_eq!(
            location(&c.get(REPORT_FORM).await),
            format!("/compte/connexion?retour={REPORT_FORM}")
        );
        sign_up(&mut c, "lent@exemple.test", "/alpha/").await;
        assert_eq!(
            c.get("/alpha/demarches/inconnu/formulaire").await.status,
            StatusCode::NOT_FOUND
        );
        // Address not confirmed yet: the last page does not send, the summary will say why.
        let page = c.get(REPORT_FORM).await;
        assert_eq!(page.texts("main form .actions button:not(.secondary)"), ["Continuer"]);
        assert!(page.texts("#send-notice").is_empty());

        // No CSRF token: refused, nothing written.
        let mut fields = fresh_fields(&mut c, REPORT_FORM, "suivant", REPORT).await;
        let csrf = fields.remove(0);
        let page = c.post(REPORT_FORM, &pairs(&fields)).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{backend:?}");
        assert!(c.get("/compte/").await.texts("ul.drafts li").is_empty());
        fields.insert(0, csrf);

        // The description missing: refused with the field named, the other answers kept, and
        // the page now belongs to a draft.
        let incomplete: Vec<(String, String)> =
            fields.iter().filter(|(k, _)| k != "description").cloned().collect();
        let page = c.post(REPORT_FORM, &pairs(&incomplete)).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{backend:?}");
        assert_eq!(
            page.texts(".error-summary li a"),
            ["« Description » : ce champ est obligatoire."]
        );
        assert_eq!(page.attrs("input[name='adresse.city']", "value"), ["Alpha"]);
        assert!(page.attrs("input[name=_brouillon]", "value").is_empty());
        let draft_step = page.attrs("main form[method=post]", "action").remove(0);
        assert!(
            draft_step.starts_with("/alpha/brouillons/") && draft_step.ends_with("/etape/1"),
            "{draft_step}"
        );
        assert_eq!(c.get("/compte/").await.texts("ul.drafts li").len(), 1);
        // The same page posted again, complete (the back button): the same draft, then the
        // summary, which asks for the address to be confirmed.
        let summary = location(&c.post(REPORT_FORM, &pairs(&fields)).await);
        assert_eq!(summary, draft_step.replace("/etape/1", "/recapitulatif"), "{backend:?}");
        assert_eq!(c.get("/compte/").await.texts("ul.drafts li").len(), 1, "{backend:?}");
        assert!(c.get(&summary).await.text(".notice.warning p").contains("confirmez d'abord"));

        // Another citizen's page: the id derives from who posts it, so Bob's post of Lent's
        // nonce makes a draft of his own and leaves Lent's alone.
        let mut bob = Client::new(&app);
        sign_up(&mut bob, "bob@exemple.test", "/alpha/").await;
        let mut stolen = fresh_fields(&mut bob, REPORT_FORM, "suivant", REPORT).await;
        stolen[1].1 = fields[1].1.clone();
        let his = location(&bob.post(REPORT_FORM, &pairs(&stolen)).await);
        assert!(his.ends_with("/recapitulatif") && his != summary, "{backend:?}: {his}");
        assert_eq!(bob.get(&summary).await.status, StatusCode::NOT_FOUND);
        assert_eq!(c.get(&summary).await.status, StatusCode::OK);

        // A form with a summary page goes on to it, once the address is confirmed too.
        verify(&mut c, "lent@exemple.test").await;
        let form = "/alpha/demarches/question-mairie/formulaire";
        let page = c.get(form).await;
        assert_eq!(page.texts("main form .actions button:not(.secondary)"), ["Continuer"]);
        let answers =
            [("sujet", "Horaires"), ("question", "Quand ouvrez-vous ?"), ("rappel", "non")];
        let fields = fresh_fields(&mut c, form, "suivant", &answers).await;
        let next = location(&c.post(form, &pairs(&fields)).await);
        assert!(next.starts_with("/alpha/brouillons/") && next.ends_with("/recapitulatif"));
        let csrf = c.csrf(&next).await;
        let sent = location(
            &c.post(&next.replace("/recapitulatif", "/envoyer"), &[("_csrf", &csrf)]).await,
        );
        assert!(sent.starts_with("/compte/demandes/"), "{sent}");
        // The same page posted again once sent (restored by the browser): a new draft, never
        // answers saved under the consumed id.
        let again = location(&c.post(form, &pairs(&fields)).await);
        assert!(again.ends_with("/recapitulatif") && again != next, "{backend:?}: {again}");
        // "Finish later" from a fresh form keeps the answers in a draft.
        let fields = fresh_fields(&mut c, form, "enregistrer", &answers).await;
        assert_eq!(location(&c.post(form, &pairs(&fields)).await), "/compte/?brouillon=1");
        assert_eq!(c.get("/compte/").await.texts("ul.drafts li").len(), 3, "{backend:?}");
        app.db.finish().await;
    }
}

#[tokio::test]
async fn a_report_with_a_photo_is_sent_from_its_one_page_and_a_forged_upload_stores_nothing() {
    let app = app(TestDb::sqlite().await).await;
    let mut c = Client::new(&app);
    sign_up(&mut c, "photo@exemple.test", "/alpha/").await;
    verify(&mut c, "photo@exemple.test").await;
    let fields = fresh_fields(&mut c, REPORT_FORM, "envoyer", REPORT).await;
    // Without the CSRF token, refused before the file is read into the store.
    let mut forged: Vec<Part> =
        fields.iter().skip(1).map(|(k, v)| Part::Text(k.as_str(), v.as_str())).collect();
    forged.push(Part::File("photo", "trou.png", PNG));
    let page = c.post_multipart(REPORT_FORM, &forged).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(c.get("/compte/").await.texts("table.requests tbody tr").is_empty());
    let stored = |dir: &std::path::Path| -> usize {
        std::fs::read_dir(dir).map_or(0, |shards| {
            shards.flatten().map(|d| std::fs::read_dir(d.path()).map_or(0, Iterator::count)).sum()
        })
    };
    assert_eq!(stored(&app.state.config.files_dir), 0, "no file stored for a forged post");
    // With it, as a browser sends the page (the token first): sent, the photo attached.
    let mut parts: Vec<Part> =
        fields.iter().map(|(k, v)| Part::Text(k.as_str(), v.as_str())).collect();
    parts.push(Part::File("photo", "trou.png", PNG));
    let sent = location(&c.post_multipart(REPORT_FORM, &parts).await);
    assert!(sent.starts_with("/compte/demandes/"), "{sent}");
    let page = c.get(&sent).await;
    let photo = page.attrs("section a[href^='/compte/fichiers/']", "href");
    assert_eq!(photo.len(), 1, "the photo is attached");
    assert_eq!(c.get(&photo[0]).await.status, StatusCode::OK);
    assert_eq!(stored(&app.state.config.files_dir), 1);
    app.db.finish().await;
}

async fn last_email_count(app: &TestApp, to: &str) -> usize {
    app.db
        .store
        .list_recent_emails(100)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.email.to == to && e.email.subject.starts_with("Accusé"))
        .count()
}

#[tokio::test]
async fn logins_are_throttled_and_state_changes_need_a_csrf_token() {
    for db in TestDb::all().await {
        let backend = db.backend;
        let app = app(db).await;
        let mut c = Client::new(&app);
        sign_up(&mut c, "cible@exemple.test", "/").await;
        let mut other = Client::new(&app);
        for _ in 0..5 {
            let page = log_in(&mut other, "cible@exemple.test", "mauvais mot de passe").await;
            assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
            assert_eq!(
                page.text(".error-summary p"),
                "Adresse électronique ou mot de passe incorrect."
            );
        }
        // Even the right password is refused while the account is throttled.
        let page = log_in(&mut other, "cible@exemple.test", PASSWORD).await;
        assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS, "{backend:?}");
        assert_eq!(page.text("h1#title"), "Trop de tentatives");

        // No token, or a token from another session: refused, nothing done.
        let page = c.post("/compte/deconnexion", &[]).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN);
        assert_eq!(page.text("h1#title"), "Formulaire expiré");
        let foreign = other.csrf("/compte/connexion").await;
        let page = c.post("/compte/deconnexion", &[("_csrf", &foreign)]).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN);
        assert_eq!(c.get("/compte/").await.status, StatusCode::OK, "still logged in");
        app.db.finish().await;
    }
}

#[tokio::test]
async fn a_citizen_never_reads_another_citizens_request_draft_or_file() {
    for db in TestDb::all().await {
        let backend = db.backend;
        let app = app(db).await;
        let mut alice = Client::new(&app);
        sign_up(&mut alice, "alice@exemple.test", "/alpha/").await;
        verify(&mut alice, "alice@exemple.test").await;
        let first = start(&mut alice, "alpha", "signalement").await;
        let csrf = alice.csrf(&first).await;
        let summary = location(
            &alice
                .post_multipart(
                    &first,
                    &[
                        Part::Text("_csrf", &csrf),
                        Part::Text("action", "suivant"),
                        Part::Text("categorie", "voirie"),
                        Part::Text("description", "Trou"),
                        Part::Text("adresse.street", "1 rue A"),
                        Part::Text("adresse.postcode", "20000"),
                        Part::Text("adresse.city", "Alpha"),
                        Part::File("photo", "trou.png", PNG),
                    ],
                )
                .await,
        );
        let draft_step = first.clone();
        let page = alice.get(&summary).await;
        let csrf = page.attrs("form input[name=_csrf]", "value").remove(0);
        let request = location(
            &alice.post(&summary.replace("/recapitulatif", "/envoyer"), &[("_csrf", &csrf)]).await,
        );
        let request = request.trim_end_matches("?envoye=1").to_owned();
        let page = alice.get(&request).await;
        let file = page.attrs("section a[href^='/compte/fichiers/']", "href").remove(0);
        let document = page.attrs("ul.documents a", "href").remove(0);
        assert_eq!(alice.get(&file).await.status, StatusCode::OK);
        let second = start(&mut alice, "alpha", "question-mairie").await;

        let mut bob = Client::new(&app);
        sign_up(&mut bob, "bob@exemple.test", "/").await;
        for path in [
            request.as_str(),
            document.as_str(),
            file.as_str(),
            second.as_str(),
            draft_step.as_str(),
            "/compte/demandes/not-an-id",
            "/compte/fichiers/00000000-0000-0000-0000-000000000000",
        ] {
            let page = bob.get(path).await;
            assert_eq!(page.status, StatusCode::NOT_FOUND, "{backend:?}: Bob reads {path}");
        }
        let csrf = bob.csrf("/compte/").await;
        let page = bob
            .post(&format!("{request}/messages"), &[("_csrf", &csrf), ("message", "intrusion")])
            .await;
        assert_eq!(page.status, StatusCode::NOT_FOUND);
        // Anonymous visitors are sent to the login page.
        let mut anon = Client::new(&app);
        assert!(location(&anon.get(&request).await).starts_with("/compte/connexion"));
        assert!(location(&anon.get(&file).await).starts_with("/compte/connexion"));
        app.db.finish().await;
    }
}

#[tokio::test]
async fn a_message_on_a_request_is_acknowledged_and_joins_the_timeline() {
    let app = app(TestDb::sqlite().await).await;
    let mut c = Client::new(&app);
    sign_up(&mut c, "message@exemple.test", "/alpha/").await;
    verify(&mut c, "message@exemple.test").await;
    let first = start(&mut c, "alpha", "acte-etat-civil").await;
    let request =
        fill_and_submit(&mut c, &first, ACTE).await.trim_end_matches("?envoye=1").to_owned();
    let csrf = c.csrf(&request).await;
    let page = c
        .post_multipart(
            &format!("{request}/messages"),
            &[
                Part::Text("_csrf", &csrf),
                Part::Text("message", "Je joins ma pièce d'identité."),
                Part::File("pieces", "identite.pdf", b"%PDF-1.4 test"),
            ],
        )
        .await;
    assert!(location(&page).ends_with("?message=1#echanges"));
    let page = c.get(&request).await;
    let whats = page.texts("ol.timeline li p.what");
    assert_eq!(
        whats,
        [
            "Demande envoyée",
            "Accusé de réception envoyé",
            "Votre message",
            "Accusé de réception envoyé"
        ]
    );
    assert_eq!(page.text("ol.timeline li p.body"), "Je joins ma pièce d'identité.");
    assert_eq!(page.texts("ol.timeline li ul a"), ["identite.pdf"]);
    assert_eq!(last_email_count(&app, "message@exemple.test").await, 2);
    // An empty message is refused in French.
    let csrf = c.csrf(&request).await;
    let page = c
        .post_multipart(
            &format!("{request}/messages"),
            &[Part::Text("_csrf", &csrf), Part::Text("message", "  ")],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        page.text(".error-summary p"),
        "« Votre message » : écrivez un message ou joignez un fichier."
    );
    app.db.finish().await;
}

#[tokio::test]
async fn the_account_exports_everything_and_can_be_deleted() {
    let app = app(TestDb::sqlite().await).await;
    let mut c = Client::new(&app);
    sign_up(&mut c, "rgpd@exemple.test", "/alpha/").await;
    verify(&mut c, "rgpd@exemple.test").await;
    let first = start(&mut c, "alpha", "acte-etat-civil").await;
    fill_and_submit(&mut c, &first, ACTE).await;
    let export = c.get("/compte/export").await;
    assert_eq!(export.status, StatusCode::OK);
    assert!(export.header("content-disposition").starts_with("attachment"));
    let json: serde_json::Value = serde_json::from_str(&export.body).unwrap();
    assert_eq!(json["compte"]["email"], "rgpd@exemple.test");
    assert_eq!(json["demandes"][0]["reponses"]["nom"], "Martin");
    assert!(
        json["demandes"][0]["documents"][0]["texte"]
            .as_str()
            .unwrap()
            .contains("ACCUSÉ DE RÉCEPTION")
    );

    let csrf = c.csrf("/compte/suppression").await;
    let page = c.post("/compte/suppression", &[("_csrf", &csrf), ("password", "faux")]).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    let csrf = c.csrf("/compte/suppression").await;
    let page = c.post("/compte/suppression", &[("_csrf", &csrf), ("password", PASSWORD)]).await;
    assert_eq!(page.text("h1#title"), "Compte supprimé");
    let page = log_in(&mut c, "rgpd@exemple.test", PASSWORD).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "the account is gone");
    app.db.finish().await;
}

#[tokio::test]
async fn a_password_reset_link_works_once_and_ends_other_sessions() {
    let app = app(TestDb::sqlite().await).await;
    let mut c = Client::new(&app);
    sign_up(&mut c, "oubli@exemple.test", "/").await;
    let mut other = Client::new(&app);
    let csrf = other.csrf("/compte/mot-de-passe-oublie").await;
    let page = other
        .post("/compte/mot-de-passe-oublie", &[("_csrf", &csrf), ("email", "oubli@exemple.test")])
        .await;
    assert_eq!(page.text("h1#title"), "Consultez votre messagerie");
    // Unknown addresses get the same answer.
    let csrf = other.csrf("/compte/mot-de-passe-oublie").await;
    let unknown = other
        .post(
            "/compte/mot-de-passe-oublie",
            &[("_csrf", &csrf), ("email", "personne@exemple.test")],
        )
        .await;
    assert_eq!(unknown.text("h1#title"), "Consultez votre messagerie");
    let mail = last_email(&app, "oubli@exemple.test", "réinitialisation").await;
    let link = link_in(&mail.text, "http://127.0.0.1:8080/compte/nouveau-mot-de-passe/");
    let csrf = other.csrf(&link).await;
    let new = "un tout nouveau mot de passe";
    let page =
        other.post(&link, &[("_csrf", &csrf), ("password", new), ("password_confirm", new)]).await;
    assert_eq!(page.text("h1#title"), "Mot de passe changé");
    // The first browser's session has ended.
    assert!(location(&c.get("/compte/").await).starts_with("/compte/connexion"));
    // The link does not work twice.
    let csrf = other.csrf(&link).await;
    let page =
        other.post(&link, &[("_csrf", &csrf), ("password", new), ("password_confirm", new)]).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert_eq!(
        location(&log_in(&mut Client::new(&app), "oubli@exemple.test", new).await),
        "/compte/"
    );
    app.db.finish().await;
}

/// A citizen signed up (and so logged in) on `app`, whose session has been read once, which
/// keeps it in memory; returns their id.
async fn kept_session(c: &mut Client<'_>, email: &str) -> guichet_domain::CitizenId {
    sign_up(c, email, "/").await;
    assert_eq!(c.get("/compte/").await.status, StatusCode::OK);
    let email = guichet_domain::Email::parse(email).unwrap();
    c.app.db.store.find_citizen_login(&email).await.unwrap().unwrap().0.id
}

#[tokio::test]
async fn a_logout_or_an_account_change_made_here_reaches_a_session_kept_in_memory_at_once() {
    for db in TestDb::all().await {
        world(&db.store).await;
        let backend = db.backend;
        let minute = std::time::Duration::from_secs(60);
        let app = TestApp::on(db, WebConfig { session_cache: minute, ..WebConfig::default() });
        // A logout: the cookie it ended no longer opens the account, though it was kept.
        let mut c = Client::new(&app);
        kept_session(&mut c, "memoire@exemple.test").await;
        let ended = c.cookie.clone();
        let csrf = c.csrf("/compte/").await;
        assert_eq!(location(&c.post("/compte/deconnexion", &[("_csrf", &csrf)]).await), "/");
        let mut replay = Client::new(&app);
        replay.cookie = ended;
        let page = replay.get("/compte/").await;
        assert!(location(&page).starts_with("/compte/connexion"), "{backend:?}: {}", page.status);
        // A new password set through this instance's store ends the citizen's other sessions.
        let mut c = Client::new(&app);
        let id = kept_session(&mut c, "memoire2@exemple.test").await;
        app.state.store.set_citizen_password(id, "another hash").await.unwrap();
        let page = c.get("/compte/").await;
        assert!(location(&page).starts_with("/compte/connexion"), "{backend:?}: {}", page.status);
        // An edited profile shows on the next page of a session kept from before.
        let mut c = Client::new(&app);
        let id = kept_session(&mut c, "memoire3@exemple.test").await;
        let mut profile = app.state.store.get_citizen(id).await.unwrap().profile;
        profile.given_name = "Dominique".into();
        app.state.store.update_citizen_profile(id, &profile).await.unwrap();
        let page = c.get("/compte/").await;
        assert!(
            page.body.contains("Dominique"),
            "{backend:?}: the account page shows the old name"
        );
        app.db.finish().await;
    }
}

#[tokio::test]
async fn another_instances_logout_shows_within_the_session_cache_delay() {
    for db in TestDb::all().await {
        world(&db.store).await;
        let backend = db.backend;
        let other = db.another_instance().await;
        let delay = std::time::Duration::from_millis(1500);
        let app = TestApp::on(db, WebConfig { session_cache: delay, ..WebConfig::default() });
        let mut c = Client::new(&app);
        let id = kept_session(&mut c, "ailleurs@exemple.test").await;
        // Another instance ends every session of the citizen: this one, which kept the
        // session a moment ago, still serves it from memory...
        other.delete_citizen_sessions(id).await.unwrap();
        assert_eq!(c.get("/compte/").await.status, StatusCode::OK, "{backend:?}");
        // ...until the delay has passed.
        tokio::time::sleep(delay + std::time::Duration::from_millis(100)).await;
        let page = c.get("/compte/").await;
        assert!(location(&page).starts_with("/compte/connexion"), "{backend:?}: {}", page.status);
        other.close().await;
        app.db.finish().await;
    }
}

#[tokio::test]
async fn with_the_session_cache_off_another_instances_logout_shows_at_once() {
    let db = TestDb::sqlite().await;
    world(&db.store).await;
    let other = db.another_instance().await;
    let zero = std::time::Duration::ZERO;
    let app = TestApp::on(db, WebConfig { session_cache: zero, ..WebConfig::default() });
    let mut c = Client::new(&app);
    let id = kept_session(&mut c, "sans-cache@exemple.test").await;
    other.delete_citizen_sessions(id).await.unwrap();
    assert!(location(&c.get("/compte/").await).starts_with("/compte/connexion"));
    other.close().await;
    app.db.finish().await;
}

#[tokio::test]
async fn a_form_page_kept_rendered_carries_each_citizens_own_token_nonce_and_address() {
    let app = app(TestDb::sqlite().await).await;
    let mut pages = Vec::new();
    for email in ["un@exemple.test", "deux@exemple.test"] {
        let mut c = Client::new(&app);
        sign_up(&mut c, email, "/alpha/").await;
        verify(&mut c, email).await;
        let own_csrf = c.csrf("/compte/").await;
        // The first citizen's view renders the page and keeps it; the second's is spliced.
        let page = c.get(REPORT_FORM).await;
        assert_eq!(page.status, StatusCode::OK);
        assert_eq!(page.attrs("input[name=_csrf]", "value"), std::slice::from_ref(&own_csrf));
        let nonce = page.attrs("input[name=_brouillon]", "value").remove(0);
        assert_eq!(
            page.text("#send-notice"),
            format!(
                "En envoyant cette demande, vous recevrez aussitôt un accusé à l'adresse {email}."
            )
        );
        // The rest of the page is the same for both.
        let rest =
            page.body.replace(&own_csrf, "CSRF").replace(&nonce, "NONCE").replace(email, "EMAIL");
        pages.push((nonce, rest));
        // Each view has its own nonce, so that each opening makes its own draft.
        let again = c.get(REPORT_FORM).await.attrs("input[name=_brouillon]", "value").remove(0);
        assert_ne!(again, pages.last().unwrap().0);
    }
    assert_ne!(pages[0].0, pages[1].0);
    assert_eq!(pages[0].1, pages[1].1);
    app.db.finish().await;
}

#[tokio::test]
async fn a_form_whose_text_holds_a_splicing_marker_is_rendered_for_each_visitor() {
    let db = TestDb::sqlite().await;
    world(&db.store).await;
    let slug = guichet_domain::Slug::parse("alpha").unwrap();
    let alpha = db.store.find_tenant_by_slug(&slug).await.unwrap().unwrap();
    let mut odd = service(alpha.id, "question-mairie");
    odd.slug = "etrange".into();
    odd.title = "Question \u{E000} étrange".into();
    db.store.add_service(&odd).await.unwrap();
    let app = TestApp::on(db, WebConfig::default());
    for email in ["trois@exemple.test", "quatre@exemple.test"] {
        let mut c = Client::new(&app);
        sign_up(&mut c, email, "/alpha/").await;
        let own_csrf = c.csrf("/compte/").await;
        let page = c.get("/alpha/demarches/etrange/formulaire").await;
        assert_eq!(page.status, StatusCode::OK);
        assert_eq!(page.attrs("input[name=_csrf]", "value"), [own_csrf]);
        assert_eq!(page.text("nav.breadcrumb a:last-child"), "Question \u{E000} étrange");
    }
    app.db.finish().await;
}
