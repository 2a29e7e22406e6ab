//! The dashboard pages: figures from requests submitted through the portal, charts with their
//! tables, links to the inbox, exports read back by real spreadsheet readers (Python's openpyxl
//! and odfpy), tenant walls, and the public service-level page with its switch.

use std::process::Command;

use axum::http::StatusCode;
use guichet_testkit::TestDb;
use guichet_web::WebConfig;

use crate::TestApp;
use crate::backoffice::{agent_login, agents};
use crate::client::{Client, location};
use crate::portal::{fill_and_submit, sign_up, start, verify, world};

const READER: &str = r#"
import json, sys
kind, path = sys.argv[1], sys.argv[2]
rows = []
if kind == "xlsx":
    import openpyxl
    ws = openpyxl.load_workbook(path).active
    rows = [[c for c in r] for r in ws.iter_rows(values_only=True)]
else:
    from odf.opendocument import load
    from odf.table import Table, TableRow, TableCell
    from odf import teletype
    table = load(path).spreadsheet.getElementsByType(Table)[0]
    for r in table.getElementsByType(TableRow):
        row = []
        for c in r.getElementsByType(TableCell):
            if c.getAttribute("valuetype") == "float":
                v = float(c.getAttribute("value"))
                row.append(int(v) if v.is_integer() else v)
            else:
                row.append(teletype.extractText(c))
        rows.append(row)
print(json.dumps(rows))
"#;

fn readers_available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import openpyxl, odf"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but openpyxl/odfpy are missing"
        );
        eprintln!("SKIPPED: spreadsheet readers (pip install openpyxl odfpy)");
    }
    ok
}

/// Reads a spreadsheet with a real reader; numbers come back as numbers.
fn read(kind: &str, bytes: &[u8]) -> Vec<Vec<serde_json::Value>> {
    let path = std::env::temp_dir()
        .join(format!("guichet-export-{}.{kind}", uuid::Uuid::now_v7().simple()));
    std::fs::write(&path, bytes).unwrap();
    let out = Command::new("python3").arg("-c").arg(READER).arg(kind).arg(&path).output().unwrap();
    assert!(out.status.success(), "{kind}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

async fn bytes(app: &TestApp, agent: &Client<'_>, path: &str) -> (StatusCode, String, Vec<u8>) {
    use http_body_util::BodyExt;
    let request = axum::http::Request::get(path)
        .header("host", "127.0.0.1:8080")
        .header("cookie", format!("guichet_agent={}", agent.agent_cookie.clone().unwrap()))
        .body(axum::body::Body::empty())
        .unwrap();
    let response = tower::ServiceExt::oneshot(app.router.clone(), request).await.unwrap();
    let status = response.status();
    let ct = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, ct, response.into_body().collect().await.unwrap().to_bytes().to_vec())
}

#[tokio::test]
async fn dashboards_count_export_and_respect_walls_and_the_public_page_can_be_switched_off() {
    for db in TestDb::all().await {
        let backend = format!("{:?}", db.backend);
        world(&db.store).await;
        let app = TestApp::on(db, WebConfig::default());
        let who = agents(&app).await;
        // Three questions to alpha, one to bravo.
        let mut citizen = Client::new(&app);
        sign_up(&mut citizen, "usager@exemple.test", "/alpha/").await;
        verify(&mut citizen, "usager@exemple.test").await;
        for (portal, subject) in
            [("alpha", "Stade"), ("alpha", "Cantine"), ("alpha", "Voirie"), ("bravo", "Marché")]
        {
            let first = start(&mut citizen, portal, "question-mairie").await;
            fill_and_submit(
                &mut citizen,
                &first,
                &[&[("sujet", subject), ("question", "?"), ("rappel", "non")]],
            )
            .await;
        }
        let store = app.db.store.clone();
        let id = |slug: &str| {
            let store = store.clone();
            let slug = slug.to_owned();
            async move {
                store
                    .find_tenant_by_slug(&guichet_domain::Slug::parse(&slug).unwrap())
                    .await
                    .unwrap()
                    .unwrap()
                    .id
            }
        };
        let (alpha, bravo, epci) = (id("alpha").await, id("bravo").await, id("cc-test").await);

        // Alpha's agent: alpha's dashboard only.
        let mut agent = agent_login(&app, &who.alpha).await;
        let page = agent.get_agent("/agents/tableau-de-bord").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert!(page.text("h1").contains("Collectivité alpha"));
        assert_eq!(
            page.texts(".kpi-value").first().map(String::as_str),
            Some("3 : voir les demandes"),
            "{backend}"
        );
        assert_eq!(
            page.attrs(".kpi-value a", "href")
                .first()
                .map(|h| h.starts_with("/agents/?collectivite=")),
            Some(true)
        );
        let charts = page.attrs("svg.chart", "role");
        assert!(
            !charts.is_empty() && charts.iter().all(|r| r == "img"),
            "charts are images with a title and a description"
        );
        assert_eq!(page.texts("svg.chart title").len(), charts.len());
        assert!(
            page.texts("table.data caption").len() >= charts.len(),
            "every chart has its data table"
        );
        let channels = page.texts("#canaux tbody tr");
        assert!(channels.iter().any(|r| r.starts_with("En ligne 3")), "{channels:?}");
        assert_eq!(
            agent.get_agent(&format!("/agents/tableau-de-bord?collectivite={bravo}")).await.status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            agent.get_agent(&format!("/agents/tableau-de-bord?collectivite={epci}")).await.status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            agent
                .get_agent(&format!(
                    "/agents/tableau-de-bord/export.xlsx?collectivite={bravo}&table=canaux"
                ))
                .await
                .status,
            StatusCode::NOT_FOUND
        );
        // Bad dates: a clear message, the default period, nothing breaks.
        let bad = agent.get_agent("/agents/tableau-de-bord?du=32/13/2026").await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(bad.text("#erreurs").contains("« Du »"));
        assert_eq!(
            agent.get_agent("/agents/tableau-de-bord/export.csv?table=nope").await.status,
            StatusCode::BAD_REQUEST
        );

        // The EPCI administrator: the consolidated view, by commune.
        let mut admin = agent_login(&app, &who.admin).await;
        let page = admin.get_agent("/agents/tableau-de-bord").await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.text("h1").contains("cc-test"), "{}", page.text("h1"));
        let communes = page.texts("#communes tbody tr");
        assert!(
            communes.contains(&"Collectivité alpha 3 0 nouveau".to_owned()),
            "{backend}: {communes:?}"
        );
        assert!(communes.contains(&"Collectivité bravo 1 0 nouveau".to_owned()), "{communes:?}");
        let narrowed = admin.get_agent(&format!("/agents/tableau-de-bord?commune={bravo}")).await;
        assert!(narrowed.texts(".kpi-value").first().is_some_and(|v| v.starts_with("1")));

        if readers_available() {
            let query = format!("collectivite={epci}&table=communes");
            let (status, ct, csv) =
                bytes(&app, &admin, &format!("/agents/tableau-de-bord/export.csv?{query}")).await;
            assert_eq!((status, ct.as_str()), (StatusCode::OK, "text/csv; charset=utf-8"));
            let csv = String::from_utf8(csv).unwrap();
            let (_, ct, xlsx) =
                bytes(&app, &admin, &format!("/agents/tableau-de-bord/export.xlsx?{query}")).await;
            assert_eq!(ct, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet");
            let (_, _, ods) =
                bytes(&app, &admin, &format!("/agents/tableau-de-bord/export.ods?{query}")).await;
            let from_xlsx = read("xlsx", &xlsx);
            let from_ods = read("ods", &ods);
            assert_eq!(from_xlsx, from_ods, "{backend}: both readers see the same cells");
            assert_eq!(
                from_xlsx[0],
                vec![
                    serde_json::json!("Commune"),
                    "Demandes".into(),
                    "Période précédente".into(),
                    "Évolution".into()
                ]
            );
            let alpha_row = from_xlsx.iter().find(|r| r[0] == "Collectivité alpha").unwrap();
            assert_eq!(alpha_row[1], serde_json::json!(3), "a number, not text");
            // The CSV says the same.
            assert!(csv.contains("Collectivité alpha;3;0;nouveau"), "{csv}");
            assert_eq!(csv.lines().count(), from_xlsx.len());
        }

        // The public page: alpha's times, then switched off by its administrator, with a reason.
        let public = app.get("/alpha/delais-de-traitement").await;
        assert_eq!(public.status, StatusCode::OK);
        assert!(
            public
                .texts("table.service-levels tbody tr")
                .iter()
                .any(|r| r.contains("Poser une question à la mairie")),
            "{}",
            public.body
        );
        assert!(
            app.get("/alpha/")
                .await
                .attrs("a", "href")
                .iter()
                .any(|h| h.ends_with("/delais-de-traitement"))
        );
        let csrf = admin.agent_csrf("/agents/admin/").await;
        // Alpha's supervisor is no administrator of alpha: refused.
        let refused = admin
            .post_agent(
                &format!("/agents/admin/{alpha}/delais-publics"),
                &[("_csrf", &csrf), ("publier", "non"), ("motif", "x")],
            )
            .await;
        assert_eq!(refused.status, StatusCode::NOT_FOUND);
        let no_reason = admin
            .post_agent(
                &format!("/agents/admin/{epci}/delais-publics"),
                &[("_csrf", &csrf), ("publier", "non")],
            )
            .await;
        assert_eq!(no_reason.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(no_reason.text("#erreurs").contains("« Motif »"));
        location(
            &admin
                .post_agent(
                    &format!("/agents/admin/{epci}/delais-publics"),
                    &[
                        ("_csrf", &csrf),
                        ("publier", "non"),
                        ("motif", "Refonte des démarches en cours"),
                    ],
                )
                .await,
        );
        let off = app.get("/cc-test/delais-de-traitement").await;
        assert!(off.body.contains("ne publie pas ses délais"));
        assert!(off.body.contains("Refonte des démarches en cours"), "the reason is shown");
        assert!(off.texts("table").is_empty());
        location(
            &admin
                .post_agent(
                    &format!("/agents/admin/{epci}/delais-publics"),
                    &[("_csrf", &csrf), ("publier", "oui")],
                )
                .await,
        );
        assert!(!app.get("/cc-test/delais-de-traitement").await.body.contains("ne publie pas"));
        let kept = store.public_stats(epci).await.unwrap().unwrap();
        assert_eq!(
            kept.reason.as_deref(),
            Some("Refonte des démarches en cours"),
            "the reason is kept"
        );
        app.db.finish().await;
    }
}
