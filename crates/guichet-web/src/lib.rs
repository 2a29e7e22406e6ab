//! Guichet's HTTP edge: the router, page handlers with their askama templates, the operations
//! endpoints (`/healthz`, `/metrics`), security headers, tenant resolution (by path, or by
//! custom domain through the Host header), embedded assets, and the one `AppError` that turns
//! every failure into a French page with the right status.
//!
//! This crate holds an `Arc<dyn Store>` and never names a backend: the binary chooses it.

#![forbid(unsafe_code)]

pub mod ack;
mod assets;
mod cache;
mod complete;
mod error;
mod files;
mod forms;
mod host;
pub mod inbound;
mod mail;
mod metrics;
mod pages;
pub mod password;
mod security;
mod session;
mod sheets;
mod state;
pub mod totp;

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

pub use error::AppError;
pub use metrics::HttpMetrics;
pub use state::{AppState, WebConfig};

/// The back-office, under its own session layer (cookie `guichet_agent`, path `/agents`).
fn agent_routes(state: AppState) -> Router<AppState> {
    use pages::{admin, agents, backoffice, contacts, counter, dashboard};
    Router::new()
        .route("/agents", get(|| async { axum::response::Redirect::permanent("/agents/") }))
        .route("/agents/", get(backoffice::inbox))
        .route("/agents/connexion", get(agents::login_form).post(agents::login))
        .route("/agents/code", get(agents::code_form).post(agents::code))
        .route("/agents/totp", get(agents::totp_form).post(agents::totp_enrol))
        .route("/agents/deconnexion", post(agents::logout))
        .route("/agents/deconnexion-partout", post(agents::logout_everywhere))
        .route("/agents/vues", post(backoffice::save_view))
        .route("/agents/vues/{id}/supprimer", post(backoffice::delete_view))
        .route("/agents/actions", post(backoffice::bulk))
        .route("/agents/export.csv", get(backoffice::export_csv))
        .route("/agents/export.ods", get(backoffice::export_ods))
        .route("/agents/demandes/{id}", get(backoffice::show))
        .route("/agents/demandes/{id}/transition", post(backoffice::transition))
        .route("/agents/demandes/{id}/note", post(backoffice::note))
        .route("/agents/demandes/{id}/reponse", post(backoffice::reply))
        .route("/agents/demandes/{id}/assigner", post(backoffice::assign))
        .route("/agents/demandes/{id}/historique.csv", get(backoffice::history_csv))
        .route("/agents/fichiers/{id}", get(backoffice::file))
        .route("/agents/demandes/{id}/courriers/{doc}", get(backoffice::letter_pdf))
        .route("/agents/demandes/{id}/accuse", get(counter::print_ack))
        .route(
            "/agents/guichet/nouveau",
            get(counter::form)
                .post(counter::submit)
                .layer(DefaultBodyLimit::max(pages::demarche::MAX_BODY)),
        )
        .route("/agents/tableau-de-bord", get(dashboard::show))
        .route("/agents/tableau-de-bord/{file}", get(dashboard::export))
        .route("/agents/contacts", get(contacts::list))
        .route("/agents/contacts/{id}", get(contacts::show))
        .route("/agents/contacts/{id}/repondre", post(contacts::reply))
        .route("/agents/contacts/{id}/rattacher", post(contacts::attach))
        .route("/agents/contacts/{id}/classer", post(contacts::close))
        .route(
            "/agents/courrier/nouveau",
            get(contacts::letter_form)
                .post(contacts::letter_submit)
                .layer(DefaultBodyLimit::max(pages::demarche::MAX_BODY)),
        )
        .route("/agents/profil", get(admin::profile).post(admin::change_password))
        .route("/agents/admin/", get(admin::home))
        .route("/agents/admin/{tenant}/agents", post(admin::add_agent))
        .route("/agents/admin/{tenant}/agents/{agent}/role", post(admin::change_role))
        .route("/agents/admin/{tenant}/agents/{agent}/retirer", post(admin::remove))
        .route("/agents/admin/{tenant}/modeles", post(admin::add_template))
        .route("/agents/admin/{tenant}/canaux", post(admin::add_endpoint))
        .route("/agents/admin/{tenant}/delais-publics", post(admin::public_stats))
        .route("/agents/admin/{tenant}/canaux/{id}/supprimer", post(admin::delete_endpoint))
        .route("/agents/admin/{tenant}/modeles/{id}/supprimer", post(admin::delete_template))
        .route_layer(axum::middleware::from_fn_with_state(state, session::agent_layer))
}

/// Builds the whole application.
pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .route("/", get(pages::home::platform_home))
        .route("/healthz", get(pages::ops::healthz))
        .route(
            "/api/v1/inbound/email",
            post(pages::api::email).layer(DefaultBodyLimit::max(pages::api::MAX_PIPED_EMAIL)),
        )
        .route("/api/v1/sms/inbound", get(pages::api::sms))
        .route("/api/v1/sms/dlr", get(pages::api::dlr))
        .route("/metrics", get(pages::ops::metrics))
        .route("/csp-report", post(pages::ops::csp_report))
        .route("/robots.txt", get(assets::robots))
        .route("/accessibilite", get(pages::legal::platform_accessibility))
        .route("/conditions-utilisation", get(pages::legal::platform_terms))
        .route("/{tenant}/accessibilite", get(pages::legal::tenant_accessibility))
        .route("/{tenant}/conditions-utilisation", get(pages::legal::tenant_terms))
        .route("/static/{file}", get(assets::asset))
        .route("/{tenant}", get(pages::tenant::redirect_to_slash))
        .route("/{tenant}/", get(pages::tenant::tenant_home))
        .route("/{tenant}/theme.css", get(pages::tenant::theme_css))
        .route("/{tenant}/delais-de-traitement", get(pages::service_levels::show))
        .route("/{tenant}/demarches", get(pages::catalogue::search))
        .route("/{tenant}/demarches/{service}", get(pages::catalogue::service_page))
        .route("/{tenant}/demarches/{service}/commencer", post(pages::demarche::start))
        .route(
            "/{tenant}/demarches/{service}/formulaire",
            get(pages::demarche::fresh_form)
                .post(pages::demarche::fresh_submit)
                .layer(DefaultBodyLimit::max(pages::demarche::MAX_BODY)),
        )
        .route(
            "/{tenant}/brouillons/{draft}/etape/{step}",
            get(pages::demarche::step_form)
                .post(pages::demarche::step_submit)
                .layer(DefaultBodyLimit::max(pages::demarche::MAX_BODY)),
        )
        .route("/{tenant}/brouillons/{draft}/recapitulatif", get(pages::demarche::summary))
        .route("/{tenant}/brouillons/{draft}/envoyer", post(pages::demarche::submit))
        .route("/{tenant}/brouillons/{draft}/supprimer", post(pages::demarche::delete))
        .route("/compte/", get(pages::mine::home))
        .route("/compte", get(|| async { axum::response::Redirect::permanent("/compte/") }))
        .route("/compte/inscription", get(pages::account::signup_form).post(pages::account::signup))
        .route("/compte/verifier", post(pages::account::resend_verification))
        .route("/compte/verifier/{token}", get(pages::account::verify_email))
        .route("/compte/connexion", get(pages::account::login_form).post(pages::account::login))
        .route("/compte/deconnexion", post(pages::account::logout))
        .route(
            "/compte/mot-de-passe-oublie",
            get(pages::account::forgot_form).post(pages::account::forgot),
        )
        .route(
            "/compte/nouveau-mot-de-passe/{token}",
            get(pages::account::reset_form).post(pages::account::reset),
        )
        .route("/compte/profil", get(pages::account::profile_form).post(pages::account::profile))
        .route("/compte/export", get(pages::account::export))
        .route("/compte/suppression", get(pages::account::delete_form).post(pages::account::delete))
        .route("/compte/demandes/{id}", get(pages::mine::show))
        .route(
            "/compte/demandes/{id}/messages",
            post(pages::mine::post_message).layer(DefaultBodyLimit::max(pages::demarche::MAX_BODY)),
        )
        .route("/compte/demandes/{id}/documents/{doc}", get(pages::mine::document))
        .route("/compte/fichiers/{id}", get(pages::mine::file))
        .merge(agent_routes(state.clone()))
        .route("/demo/courriels", get(pages::demo::emails))
        .route("/demo/courriels/{id}", get(pages::demo::email))
        .fallback(pages::not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), routed))
        .with_state(state.clone());

    // Tenant resolution by custom domain rewrites the path before routing, so it wraps the
    // routes as an outer router whose only content is the inner one.
    Router::new()
        .fallback_service(routes)
        .layer(axum::middleware::from_fn_with_state(state, edge))
        .layer(
            tower::ServiceBuilder::new()
                .layer(axum::error_handling::HandleErrorLayer::new(error::timeout))
                .layer(tower::timeout::TimeoutLayer::new(Duration::from_secs(60))),
        )
}

/// What every request goes through before routing, as one layer rather than four: each
/// `from_fn` layer clones and boxes the services it wraps on every request, which cost the form
/// page a few per cent of its CPU. In order: the security headers (on every answer, kept
/// pages and errors included), the custom domain's rewrite (the page cache keys on its
/// result), the public page cache, then the handler in a task of its own.
async fn edge(
    axum::extract::State(state): axum::extract::State<AppState>,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let mut response = match host::resolve_custom_domain(&state, &mut request).await {
        Ok(()) => cache::serve(&state, request, |request| run_to_completion(request, next)).await,
        Err(response) => response,
    };
    security::add_headers(&mut response);
    response
}

/// What every routed request goes through, as one layer: timed and counted under its route
/// template (known only once routed), with the citizen's session loaded.
async fn routed(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let timing = state.metrics.start(&request);
    let response = session::citizen_layer(state.clone(), request, next).await;
    state.metrics.finish(timing, response.status());
    response
}

/// Runs every request's handler to its end, even when its client hangs up or the request
/// times out: the request completes; only its answer is lost (see `complete::ToCompletion`).
async fn run_to_completion(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    complete::ToCompletion::new(next.run(request)).await
}
