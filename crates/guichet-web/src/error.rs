//! The one error type of the web edge. Every handler returns `Result<_, AppError>`; the
//! response is a French page with the right status, and internal details go to the log (once,
//! here), never to the user.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use guichet_store::StoreError;

/// What can go wrong while answering a request.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The page or object does not exist (or the caller may not know that it does).
    #[error("not found")]
    NotFound,
    /// The request is malformed; the text is French and shown to the user.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The body is larger than the route accepts; the text is French and shown to the user.
    #[error("payload too large: {0}")]
    TooLarge(String),
    /// A state change without a valid anti-CSRF token.
    #[error("invalid CSRF token")]
    Csrf,
    /// Too many attempts (login throttling); the text says when to retry.
    #[error("too many requests")]
    TooManyRequests(String),
    /// The page needs a logged-in citizen; the value is where to come back after login.
    #[error("login required")]
    LoginRequired(String),
    /// Go elsewhere first (agent login, second factor).
    #[error("redirect")]
    Redirect(String),
    /// Refused: the text says why, in French.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The action cannot be done in the current state (e.g. someone changed the request).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database cannot be reached right now.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A bug or an unexpected failure.
    #[error("internal error: {0:#}")]
    Internal(#[from] anyhow::Error),
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::NotFound,
            StoreError::Unavailable(m) => Self::Unavailable(m),
            other => Self::Internal(anyhow::Error::new(other)),
        }
    }
}

impl From<askama::Error> for AppError {
    fn from(e: askama::Error) -> Self {
        Self::Internal(anyhow::Error::new(e))
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    layout: crate::pages::Layout,
    status: u16,
    title: &'a str,
    message: &'a str,
}

/// Renders an error page (also used by the router's fallback).
pub(crate) fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    let layout = crate::pages::Layout::platform(title, "Guichet");
    let page = ErrorPage { layout, status: status.as_u16(), title, message };
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        // The template is compiled in; failing to render it is a bug, answered in plain text.
        Err(_) => (status, title.to_owned()).into_response(),
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match self {
            Self::NotFound => error_page(
                StatusCode::NOT_FOUND,
                "Page introuvable",
                "La page demandée n'existe pas ou plus. Vérifiez l'adresse, ou revenez à l'accueil.",
            ),
            Self::Csrf => error_page(
                StatusCode::FORBIDDEN,
                "Formulaire expiré",
                "Pour votre sécurité, ce formulaire n'est plus valide : il a peut-être été ouvert \
                 il y a longtemps, ou avant une connexion. Revenez à la page précédente, \
                 rechargez-la puis envoyez-la à nouveau ; les réponses déjà enregistrées sont conservées.",
            ),
            Self::TooManyRequests(message) => {
                error_page(StatusCode::TOO_MANY_REQUESTS, "Trop de tentatives", &message)
            }
            Self::LoginRequired(back) => {
                let target =
                    format!("/compte/connexion?retour={}", crate::pages::url_encode(&back));
                (StatusCode::SEE_OTHER, [(axum::http::header::LOCATION, target)]).into_response()
            }
            Self::Redirect(target) => {
                (StatusCode::SEE_OTHER, [(axum::http::header::LOCATION, target)]).into_response()
            }
            Self::Forbidden(message) => {
                error_page(StatusCode::FORBIDDEN, "Action non autorisée", &message)
            }
            Self::Conflict(message) => {
                error_page(StatusCode::CONFLICT, "Action impossible", &message)
            }
            Self::BadRequest(message) => {
                error_page(StatusCode::BAD_REQUEST, "Demande incorrecte", &message)
            }
            Self::TooLarge(message) => {
                error_page(StatusCode::PAYLOAD_TOO_LARGE, "Envoi trop volumineux", &message)
            }
            Self::Unavailable(detail) => {
                tracing::error!(error = %detail, "database unavailable");
                error_page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Service momentanément indisponible",
                    "Le service ne peut pas répondre pour le moment. Rien de ce que vous avez \
                     envoyé n'a été enregistré : réessayez dans quelques minutes.",
                )
            }
            Self::Internal(e) => {
                tracing::error!(error = %format!("{e:#}"), "internal error");
                error_page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Erreur du service",
                    "Une erreur inattendue s'est produite. L'équipe technique en est informée ; \
                     réessayez dans quelques minutes.",
                )
            }
        }
    }
}

/// Answers requests cut off by the timeout layer.
pub(crate) async fn timeout(_: tower::BoxError) -> Response {
    error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Service momentanément indisponible",
        "Le service a mis trop de temps à répondre. Réessayez dans quelques minutes.",
    )
}
