//! The platform home, tenant homes, errors, operations endpoints.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use guichet_domain::TenantKind;
use guichet_store::Tenant;
use guichet_testkit::fixtures::tenant;
use guichet_web::WebConfig;

use crate::TestApp;

async fn territory(app: &TestApp) -> (Tenant, Tenant) {
    let store = &app.db.store;
    let mut epci = tenant("cc-test", TenantKind::Epci, None, 1);
    epci.name = "Communauté de communes Test".into();
    let epci = store.add_tenant(&epci, &[]).await.unwrap();
    let mut a = tenant("alpha", TenantKind::Commune, Some(epci.id), 2);
    a.name = "Alpha-sur-Mer".into();
    a.custom_domain = Some("demarches.alpha.test".into());
    let a = store.add_tenant(&a, &[]).await.unwrap();
    let mut b = tenant("bravo", TenantKind::Commune, Some(epci.id), 3);
    b.name = "Bravo <script>alert(1)</script>".into();
    store.add_tenant(&b, &[]).await.unwrap();
    (epci, a)
}

#[tokio::test]
async fn the_platform_home_lists_each_epci_with_its_communes() {
    let app = TestApp::new(WebConfig::default()).await;
    territory(&app).await;
    let page = app.get("/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.texts("section.territory h2"), ["Communauté de communes Test"]);
    assert_eq!(
        page.texts("ul.communes li a"),
        ["Alpha-sur-Mer", "Bravo <script>alert(1)</script>"]
    );
    assert_eq!(page.attrs("ul.communes li a", "href"), ["/alpha/", "/bravo/"]);
    assert!(!page.body.contains("<script>alert"), "names are HTML-escaped");
    assert_eq!(page.attrs("html", "lang"), ["fr"]);
    app.db.finish().await;
}

#[tokio::test]
async fn an_empty_platform_says_so() {
    let app = TestApp::new(WebConfig::default()).await;
    let page = app.get("/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.texts("p.empty").len(), 1);
    app.db.finish().await;
}

#[tokio::test]
async fn a_commune_home_shows_its_name_epci_and_contact_details() {
    let app = TestApp::new(WebConfig::default()).await;
    territory(&app).await;
    let page = app.get("/alpha/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.text("h1#title"), "Alpha-sur-Mer");
    assert_eq!(page.text("p.tenant-kind"), "Commune – code INSEE 2A002");
    assert_eq!(page.attrs("p.parent a", "href"), ["/cc-test/"]);
    let contact = page.text("section.contact address");
    assert!(
        contact.contains("Accueil de alpha") && contact.contains("04 95 00 00 00"),
        "{contact}"
    );
    assert_eq!(page.attrs("link[rel=stylesheet]", "href")[1], "/alpha/theme.css");
    app.db.finish().await;
}

#[tokio::test]
async fn an_epci_home_lists_its_member_communes() {
    let app = TestApp::new(WebConfig::default()).await;
    territory(&app).await;
    let page = app.get("/cc-test/").await;
    assert_eq!(page.texts("ul.communes li a").len(), 2);
    assert!(page.texts("p.parent").is_empty());
    app.db.finish().await;
}

#[tokio::test]
async fn unknown_tenants_and_pages_get_a_french_404_page() {
    let app = TestApp::new(WebConfig::default()).await;
    territory(&app).await;
    for path in ["/inconnue/", "/Not_A_Slug/", "/alpha/nothing-here", "/static/nope.css"] {
        let page = app.get(path).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(page.text("h1#title"), "Page introuvable", "{path}");
        assert!(page.header("content-type").starts_with("text/html"), "{path}");
    }
    app.db.finish().await;
}

#[tokio::test]
async fn a_tenant_path_without_trailing_slash_redirects() {
    let app = TestApp::new(WebConfig::default()).await;
    territory(&app).await;
    let page = app.get("/alpha").await;
    assert_eq!(page.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(page.header("location"), "/alpha/");
    assert_eq!(app.get("/inconnue").await.status, StatusCode::NOT_FOUND);
    app.db.finish().await;
}

#[tokio::test]
async fn a_custom_domain_serves_its_tenant_at_the_root() {
    let app = TestApp::new(WebConfig::default()).await;
    territory(&app).await;
    let page = app.get_host("/", "Demarches.Alpha.test:443").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.text("h1#title"), "Alpha-sur-Mer");
    // Links stay on the tenant's domain: no slug prefix.
    assert_eq!(page.attrs("a.site-name", "href"), ["/"]);
    assert_eq!(page.attrs("link[rel=stylesheet]", "href")[1], "/theme.css");
    let css = app.get_host("/theme.css", "demarches.alpha.test").await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.body.contains("--brand: #1f3f77"));
    // Platform endpoints are still reachable on a tenant domain.
    assert_eq!(app.get_host("/healthz", "demarches.alpha.test").await.status, StatusCode::OK);
    // An unknown host is the platform.
    assert_eq!(app.get_host("/", "unknown.test").await.text("h1#title"), "Vos démarches en ligne");
    app.db.finish().await;
}

#[tokio::test]
async fn every_page_carries_security_headers() {
    let app = TestApp::new(WebConfig::default()).await;
    territory(&app).await;
    for path in ["/", "/alpha/", "/inconnue/"] {
        let page = app.get(path).await;
        assert!(page.header("content-security-policy").contains("script-src 'self'"), "{path}");
        assert_eq!(page.header("x-content-type-options"), "nosniff");
        assert_eq!(page.header("x-frame-options"), "DENY");
    }
    app.db.finish().await;
}

#[tokio::test]
async fn the_stylesheet_is_served_with_a_hashed_name_and_long_cache() {
    let app = TestApp::new(WebConfig::default()).await;
    let home = app.get("/").await;
    let href = home.attrs("link[rel=stylesheet]", "href").remove(0);
    assert!(href.starts_with("/static/guichet-") && href.ends_with(".css"), "{href}");
    let css = app.get(&href).await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.header("cache-control").contains("immutable"));
    assert!(css.body.contains(":focus-visible"));
    app.db.finish().await;
}

#[tokio::test]
async fn healthz_reports_the_backend() {
    let app = TestApp::new(WebConfig::default()).await;
    let page = app.get("/healthz").await;
    assert_eq!(page.status, StatusCode::OK);
    let json: serde_json::Value = serde_json::from_str(&page.body).unwrap();
    assert_eq!(json, serde_json::json!({"status": "ok", "database": "sqlite"}));
    app.db.finish().await;
}

#[tokio::test]
async fn healthz_answers_503_when_the_database_is_gone() {
    let app = TestApp::new(WebConfig::default()).await;
    app.db.store.close().await;
    let page = app.get("/healthz").await;
    assert_eq!(page.status, StatusCode::SERVICE_UNAVAILABLE);
    // Pages say so in French, without internal details.
    let home = app.get("/").await;
    assert_eq!(home.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(home.text("h1#title"), "Service momentanément indisponible");
    assert!(!home.body.contains("pool"), "{}", home.body);
    app.db.finish().await;
}

#[tokio::test]
async fn metrics_count_requests_by_route_template() {
    let app = TestApp::new(WebConfig::default()).await;
    territory(&app).await;
    app.get("/alpha/").await;
    app.get("/cc-test/").await;
    app.get("/inconnue/").await;
    let page = app.get("/metrics").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains(
            r#"guichet_http_requests_total{method="GET",route="/{tenant}/",status="200"} 2"#
        ),
        "{}",
        page.body
    );
    assert!(page.body.contains(
        r#"guichet_http_requests_total{method="GET",route="/{tenant}/",status="404"} 1"#
    ));
    assert!(page.body.contains(
        r#"guichet_http_request_duration_seconds_count{method="GET",route="/{tenant}/"} 3"#
    ));
    app.db.finish().await;
}

#[tokio::test]
async fn metrics_require_the_configured_token() {
    let config = WebConfig { metrics_token: Some("t0ken".into()), ..WebConfig::default() };
    let app = TestApp::new(config).await;
    assert_eq!(app.get("/metrics").await.status, StatusCode::UNAUTHORIZED);
    let request = Request::get("/metrics")
        .header("authorization", "Bearer t0ken")
        .body(Body::empty())
        .unwrap();
    assert_eq!(app.request(request).await.status, StatusCode::OK);
    app.db.finish().await;
}

#[tokio::test]
async fn oversized_csp_reports_are_refused() {
    let app = TestApp::new(WebConfig::default()).await;
    let big = "x".repeat(20_000);
    let request = Request::post("/csp-report").body(Body::from(big)).unwrap();
    assert_eq!(app.request(request).await.status, StatusCode::PAYLOAD_TOO_LARGE);
    let request = Request::post("/csp-report").body(Body::from("{}")).unwrap();
    assert_eq!(app.request(request).await.status, StatusCode::NO_CONTENT);
    app.db.finish().await;
}

#[tokio::test]
async fn a_commune_catalogue_shows_its_services_and_the_epcis_grouped_and_searchable() {
    let app = TestApp::new(WebConfig::default()).await;
    let (epci, alpha) = territory(&app).await;
    let s = &app.db.store;
    for key in ["acte-etat-civil", "question-mairie"] {
        s.add_service(&guichet_testkit::fixtures::service(alpha.id, key)).await.unwrap();
    }
    s.add_service(&guichet_testkit::fixtures::service(epci.id, "signalement")).await.unwrap();
    let home = app.get("/alpha/").await;
    assert_eq!(home.texts("section.category h3"), ["Cadre de vie", "État civil", "Mairie"]);
    assert_eq!(
        home.attrs("li.service a", "href"),
        [
            "/alpha/demarches/signalement",
            "/alpha/demarches/acte-etat-civil",
            "/alpha/demarches/question-mairie"
        ]
    );
    // Search ignores case and accents.
    let found = app.get("/alpha/demarches?q=ETAT%20civil").await;
    assert_eq!(found.texts("li.service a"), ["Demande d'acte d'état civil"]);
    assert_eq!(found.text("p.result-count"), "1 démarche");
    let none = app.get("/alpha/demarches?q=piscine").await;
    assert_eq!(none.text("p.result-count"), "Aucune démarche ne correspond à votre recherche.");
    // The EPCI's service page, from the commune's portal.
    let page = app.get("/alpha/demarches/signalement").await;
    assert_eq!(page.text("h1#title"), "Signaler un problème sur l'espace public");
    assert_eq!(page.text("p.provider"), "Service proposé par Communauté de communes Test.");
    assert_eq!(page.texts("ul.requirements li").len(), 2);
    assert!(
        page.attrs("a.button", "href")[0]
            .starts_with("/compte/connexion?retour=/alpha/demarches/signalement")
    );
    let sva = app.get("/alpha/demarches/acte-etat-civil").await;
    assert_eq!(
        sva.text("p.regime"),
        "Pas de décision implicite : le service vous répond directement."
    );
    // Another commune's own service is not offered here.
    assert_eq!(app.get("/bravo/demarches/acte-etat-civil").await.status, StatusCode::NOT_FOUND);
    app.db.finish().await;
}

#[tokio::test]
async fn the_demo_mail_viewer_exists_only_in_demo_mode() {
    let app = TestApp::new(WebConfig::default()).await;
    assert_eq!(app.get("/demo/courriels").await.status, StatusCode::NOT_FOUND);
    app.db.finish().await;
    let app = TestApp::new(WebConfig { demo: true, ..WebConfig::default() }).await;
    let page = app.get("/demo/courriels").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.texts("p.empty").len(), 1);
    app.db.finish().await;
}

#[tokio::test]
async fn session_cookies_are_secure_behind_https() {
    let app = TestApp::new(WebConfig {
        public_url: Some("https://demarches.exemple.fr".into()),
        ..WebConfig::default()
    })
    .await;
    let page = app.get("/compte/connexion").await;
    let cookie = page.header("set-cookie");
    assert!(cookie.starts_with("guichet_session="), "{cookie}");
    for part in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/"] {
        assert!(cookie.contains(part), "{part} missing in {cookie}");
    }
    app.db.finish().await;
    let app = TestApp::new(WebConfig::default()).await;
    assert!(!app.get("/compte/connexion").await.header("set-cookie").contains("Secure"));
    // Browsing the catalogue creates no session.
    assert_eq!(app.get("/").await.header("set-cookie"), "");
    app.db.finish().await;
}

#[tokio::test]
async fn every_tenant_publishes_its_accessibility_statement_and_terms_linked_from_every_footer() {
    let app = TestApp::new(WebConfig::default()).await;
    let (_, alpha) = territory(&app).await;
    app.db
        .store
        .add_service(&guichet_testkit::fixtures::service(alpha.id, "question-mairie"))
        .await
        .unwrap();
    for (page, base) in [
        ("/", ""),
        ("/alpha/", "/alpha"),
        ("/cc-test/", "/cc-test"),
        ("/compte/connexion", ""),
        ("/inconnue/", ""),
    ] {
        let p = app.get(page).await;
        assert_eq!(
            p.attrs("footer ul.legal-links a", "href"),
            [format!("{base}/accessibilite"), format!("{base}/conditions-utilisation")],
            "{page}"
        );
        assert_eq!(
            p.texts("footer ul.legal-links a")[0],
            "Accessibilité : non conforme",
            "{page}: the compliance mention"
        );
    }
    let statement = app.get("/alpha/accessibilite").await;
    assert_eq!(statement.status, StatusCode::OK);
    let headings = statement.texts("main h2");
    for h in [
        "État de conformité",
        "Contenus non accessibles",
        "Établissement de cette déclaration",
        "Retour d'information et contact",
        "Voies de recours",
    ] {
        assert!(headings.iter().any(|x| x == h), "{h} missing: {headings:?}");
    }
    assert!(statement.text("main").contains("accueil@alpha.test"));
    let terms = app.get("/alpha/conditions-utilisation").await;
    assert_eq!(terms.texts("ul.teleservices a"), ["Poser une question à la mairie"]);
    assert!(
        terms.text("ul.addresses").contains("ne-pas-repondre@guichet.localhost")
            && terms.text("ul.addresses").contains("accueil@alpha.test")
    );
    assert_eq!(app.get("/accessibilite").await.status, StatusCode::OK);
    assert_eq!(app.get("/conditions-utilisation").await.status, StatusCode::OK);
    app.db.finish().await;
}

/// A client that hangs up does not cancel the write it asked for: the handler runs to the end
/// in its own task (a handler dropped halfway could leave a database transaction open).
#[tokio::test]
async fn a_request_whose_client_hangs_up_still_completes_its_write() {
    let app = TestApp::new(WebConfig::default()).await;
    let mut c = crate::client::Client::new(&app);
    let csrf = c.csrf("/compte/inscription").await;
    let body = format!(
        "_csrf={csrf}&given_name=Camille&family_name=Martin&email=parti%40exemple.test&password=mot+de+passe+solide&password_confirm=mot+de+passe+solide&insee_code=&retour=%2F"
    );
    let request = axum::http::Request::post("/compte/inscription")
        .header("host", "127.0.0.1:8080")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", format!("guichet_session={}", c.cookie.clone().unwrap()))
        .body(axum::body::Body::from(body))
        .unwrap();
    // Polled once, then dropped, as when the connection closes.
    let dropped = tokio::time::timeout(
        std::time::Duration::ZERO,
        tower::ServiceExt::oneshot(app.router.clone(), request),
    )
    .await;
    assert!(dropped.is_err(), "the client left before the answer");
    let email = guichet_domain::Email::parse("parti@exemple.test").unwrap();
    let mut found = false;
    for _ in 0..200 {
        if app.db.store.find_citizen_login(&email).await.unwrap().is_some() {
            found = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(found, "the sign-up completed although nobody waited for its answer");
}

#[tokio::test]
async fn public_pages_are_kept_for_anonymous_visitors_for_the_configured_delay() {
    let delay = std::time::Duration::from_millis(1500);
    let app = TestApp::new(WebConfig { page_cache: delay, ..WebConfig::default() }).await;
    crate::portal::world(&app.db.store).await;
    let s = &app.db.store;
    let alpha = s
        .find_tenant_by_slug(&guichet_domain::Slug::parse("alpha").unwrap())
        .await
        .unwrap()
        .unwrap();
    let titles = |p: &crate::Page| p.texts("li.service a");
    let kept_at = std::time::Instant::now();
    let before = titles(&app.get("/alpha/demarches").await);
    assert!(!before.is_empty());

    // A service added by another process (an import, another instance): anonymous visitors get
    // the kept page until the delay has passed.
    let mut added = guichet_testkit::fixtures::service(alpha.id, "question-mairie");
    added.slug = "question-bis".into();
    added.title = "Une autre question".into();
    s.add_service(&added).await.unwrap();
    let again = app.get("/alpha/demarches").await;
    assert!(kept_at.elapsed() < delay, "the machine was too slow for this check");
    assert_eq!(titles(&again), before);
    // Kept pages keep their headers; the security headers are added to every answer.
    assert_eq!(again.header("content-type"), "text/html; charset=utf-8");
    assert!(!again.header("content-security-policy").is_empty());

    // A visitor with a session gets a page rendered for them, and a search its own results,
    // from the same kept catalogue: the change shows within the same delay for everyone.
    let with_session = || {
        Request::get("/alpha/demarches")
            .header("host", "127.0.0.1:8080")
            .header("cookie", "guichet_session=inconnu")
            .body(Body::empty())
            .unwrap()
    };
    let new = "Une autre question".to_owned();
    assert_eq!(titles(&app.request(with_session()).await), before);
    assert!(titles(&app.get("/alpha/demarches?q=question").await).iter().all(|t| *t != new));

    // A browser holding this very page gets a bodiless "not modified".
    let etag = again.header("etag").to_owned();
    assert!(etag.starts_with('"') && again.header("cache-control") == "no-cache", "{etag}");
    let conditional = |etag: &str| {
        Request::get("/alpha/demarches")
            .header("host", "127.0.0.1:8080")
            .header("if-none-match", etag)
            .body(Body::empty())
            .unwrap()
    };
    let unchanged = app.request(conditional(&etag)).await;
    assert_eq!((unchanged.status, unchanged.body.as_str()), (StatusCode::NOT_MODIFIED, ""));
    assert_eq!(app.request(conditional("\"autre\"")).await.status, StatusCode::OK);

    // Kept pages are still counted in the metrics.
    assert!(app.get("/metrics").await.body.contains("route=\"(cached public page)\""));

    // After the delay, everyone sees the change, including the browser that held the old page.
    tokio::time::sleep(delay).await;
    assert!(titles(&app.get("/alpha/demarches").await).contains(&new));
    assert!(titles(&app.request(with_session()).await).contains(&new));
    assert!(titles(&app.get("/alpha/demarches?q=autre").await).contains(&new));
    let changed = app.request(conditional(&etag)).await;
    assert_eq!(changed.status, StatusCode::OK);
    assert!(titles(&changed).contains(&new));

    // With the cache off, every view is fresh.
    let off =
        TestApp::new(WebConfig { page_cache: std::time::Duration::ZERO, ..WebConfig::default() })
            .await;
    crate::portal::world(&off.db.store).await;
    let first = titles(&off.get("/alpha/demarches").await);
    let alpha = off
        .db
        .store
        .find_tenant_by_slug(&guichet_domain::Slug::parse("alpha").unwrap())
        .await
        .unwrap()
        .unwrap();
    let mut added = guichet_testkit::fixtures::service(alpha.id, "question-mairie");
    added.slug = "question-bis".into();
    added.title = "Une autre question".into();
    off.db.store.add_service(&added).await.unwrap();
    let second = titles(&off.get("/alpha/demarches").await);
    assert_eq!(second.len(), first.len() + 1);
    app.db.finish().await;
    off.db.finish().await;
}
