//! Agent authentication: password, then a TOTP second factor (mandatory for administrators,
//! enrolled from the agent's first login), throttled, in a session separate from citizens'.

use askama::Template;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use guichet_domain::Email;
use guichet_store::Agent;
use std::net::SocketAddr;
use time::{Duration, OffsetDateTime};

use crate::forms::FormFields;
use crate::pages::{Layout, render};
use crate::password::verify_password;
use crate::session::AgentVisitor;
use crate::totp;
use crate::{AppError, AppState};

const WINDOW: Duration = Duration::minutes(15);

/// The logged-in agent with both factors checked, or a redirect to what is missing.
pub(crate) async fn require_agent(
    state: &AppState,
    visitor: &AgentVisitor,
) -> Result<Agent, AppError> {
    let Some((id, mfa_ok)) = visitor.0.agent() else {
        return Err(AppError::Redirect("/agents/connexion".into()));
    };
    let agent = match state.store.get_agent(id).await {
        Ok(a) => a,
        Err(guichet_store::StoreError::NotFound) => {
            return Err(AppError::Redirect("/agents/connexion".into()));
        }
        Err(e) => return Err(e.into()),
    };
    if !mfa_ok {
        let next = if agent.totp_secret.is_some() { "/agents/code" } else { "/agents/totp" };
        return Err(AppError::Redirect(next.into()));
    }
    Ok(agent)
}

/// Layout of back-office pages.
pub(crate) fn layout(state: &AppState, title: impl Into<String>) -> Layout {
    let mut l = Layout::platform(title, &state.config.platform_name);
    l.site_name = format!("{} – espace agents", state.config.platform_name);
    l.home_href = "/agents/".into();
    l
}

#[derive(Template)]
#[template(path = "agents/login.html")]
struct LoginPage {
    layout: Layout,
    csrf: String,
    error: Option<String>,
    email: String,
}

/// `GET /agents/connexion`
pub(crate) async fn login_form(
    State(state): State<AppState>,
    visitor: AgentVisitor,
) -> Result<Response, AppError> {
    render(&LoginPage {
        layout: layout(&state, "Connexion des agents"),
        csrf: visitor.0.csrf(&state).await?,
        error: None,
        email: String::new(),
    })
}

/// `POST /agents/connexion`
pub(crate) async fn login(
    State(state): State<AppState>,
    visitor: AgentVisitor,
    peer: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    form: FormFields,
) -> Result<Response, AppError> {
    visitor.0.check_csrf(form.get("_csrf"))?;
    let now = OffsetDateTime::now_utc();
    let address = peer
        .map_or_else(|| "unknown".to_owned(), |axum::Extension(ConnectInfo(a))| a.ip().to_string());
    let email = form.get("email").to_lowercase();
    let (account_key, ip_key) =
        (format!("agent-login:account:{email}"), format!("agent-login:ip:{address}"));
    if state.store.throttle_hits(&account_key, WINDOW, now).await? >= 5
        || state.store.throttle_hits(&ip_key, WINDOW, now).await? >= 30
    {
        tracing::warn!(client.address = %address, "agent login throttled");
        return Err(AppError::TooManyRequests("Trop de tentatives de connexion ont échoué. Réessayez dans 15 minutes ou demandez à votre administrateur de réinitialiser votre accès.".into()));
    }
    let found = match Email::parse(&email) {
        Ok(e) => state.store.find_agent_login(&e).await?,
        Err(_) => None,
    };
    let password = form.raw("password").to_owned();
    let hash = found.as_ref().map(|(_, h)| h.clone());
    let ok =
        tokio::task::spawn_blocking(move || hash.is_some_and(|h| verify_password(&password, &h)))
            .await
            .map_err(|e| AppError::Internal(e.into()))?;
    match found {
        Some((agent, _)) if ok => {
            state.store.clear_throttle(&account_key).await?;
            // No second factor yet and none required: the password suffices (the agent is
            // invited to enrol one). Administrators must enrol before anything else.
            let mfa_ok = agent.totp_secret.is_none() && !agent.is_admin();
            visitor.0.login_agent(&state, agent.id, mfa_ok).await?;
            tracing::info!(agent.id = %agent.id, "agent password accepted");
            let next = match (&agent.totp_secret, mfa_ok) {
                (Some(_), _) => "/agents/code",
                (None, false) => "/agents/totp",
                (None, true) => "/agents/",
            };
            Ok(Redirect::to(next).into_response())
        }
        _ => {
            state.store.hit_throttle(&account_key, WINDOW, now).await?;
            state.store.hit_throttle(&ip_key, WINDOW, now).await?;
            let page = LoginPage {
                layout: layout(&state, "Connexion des agents"),
                csrf: visitor.0.csrf(&state).await?,
                error: Some("Adresse électronique ou mot de passe incorrect.".into()),
                email: form.get("email").to_owned(),
            };
            Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response())
        }
    }
}

#[derive(Template)]
#[template(path = "agents/code.html")]
struct CodePage {
    layout: Layout,
    csrf: String,
    error: Option<String>,
}

async fn pending_agent(state: &AppState, visitor: &AgentVisitor) -> Result<Agent, AppError> {
    let (id, _) =
        visitor.0.agent().ok_or_else(|| AppError::Redirect("/agents/connexion".into()))?;
    Ok(state.store.get_agent(id).await?)
}

/// `GET /agents/code`
pub(crate) async fn code_form(
    State(state): State<AppState>,
    visitor: AgentVisitor,
) -> Result<Response, AppError> {
    pending_agent(&state, &visitor).await?;
    render(&CodePage {
        layout: layout(&state, "Code de vérification"),
        csrf: visitor.0.csrf(&state).await?,
        error: None,
    })
}

/// `POST /agents/code`
pub(crate) async fn code(
    State(state): State<AppState>,
    visitor: AgentVisitor,
    form: FormFields,
) -> Result<Response, AppError> {
    visitor.0.check_csrf(form.get("_csrf"))?;
    let agent = pending_agent(&state, &visitor).await?;
    let Some(secret) = agent.totp_secret.clone() else {
        return Ok(Redirect::to("/agents/totp").into_response());
    };
    let now = OffsetDateTime::now_utc();
    let key = format!("agent-totp:{}", agent.id);
    if state.store.throttle_hits(&key, WINDOW, now).await? >= 5 {
        return Err(AppError::TooManyRequests(
            "Trop de codes erronés. Réessayez dans 15 minutes.".into(),
        ));
    }
    let seconds = u64::try_from(now.unix_timestamp()).unwrap_or(0);
    if !totp::verify(&secret, form.get("code"), seconds) {
        state.store.hit_throttle(&key, WINDOW, now).await?;
        let page = CodePage {
            layout: layout(&state, "Code de vérification"),
            csrf: visitor.0.csrf(&state).await?,
            error: Some("« Code à 6 chiffres » : code incorrect ou expiré.".into()),
        };
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response());
    }
    state.store.clear_throttle(&key).await?;
    mark_mfa(&state, &visitor).await?;
    tracing::info!(agent.id = %agent.id, "agent logged in with second factor");
    Ok(Redirect::to("/agents/").into_response())
}

async fn mark_mfa(state: &AppState, visitor: &AgentVisitor) -> Result<(), AppError> {
    if let Some(hash) = visitor.0.token_hash() {
        state.store.set_session_mfa(&hash).await?;
        visitor.0.set_mfa_ok();
    }
    Ok(())
}

#[derive(Template)]
#[template(path = "agents/totp.html")]
struct TotpPage {
    layout: Layout,
    csrf: String,
    secret: String,
    uri: String,
    error: Option<String>,
    required: bool,
}

/// `GET /agents/totp`: enrolment of the second factor.
pub(crate) async fn totp_form(
    State(state): State<AppState>,
    visitor: AgentVisitor,
) -> Result<Response, AppError> {
    let agent = pending_agent(&state, &visitor).await?;
    if agent.totp_secret.is_some() && !visitor.0.agent().is_some_and(|(_, ok)| ok) {
        return Ok(Redirect::to("/agents/code").into_response());
    }
    let secret = totp::new_secret();
    let uri = totp::uri(&secret, agent.email.as_str(), &state.config.platform_name);
    render(&TotpPage {
        layout: layout(&state, "Double authentification"),
        csrf: visitor.0.csrf(&state).await?,
        secret,
        uri,
        error: None,
        required: agent.is_admin(),
    })
}

/// `POST /agents/totp`
pub(crate) async fn totp_enrol(
    State(state): State<AppState>,
    visitor: AgentVisitor,
    form: FormFields,
) -> Result<Response, AppError> {
    visitor.0.check_csrf(form.get("_csrf"))?;
    let agent = pending_agent(&state, &visitor).await?;
    if agent.totp_secret.is_some() && !visitor.0.agent().is_some_and(|(_, ok)| ok) {
        return Ok(Redirect::to("/agents/code").into_response());
    }
    let secret = form.get("secret").to_owned();
    let seconds = u64::try_from(OffsetDateTime::now_utc().unix_timestamp()).unwrap_or(0);
    if totp::base32_decode(&secret).is_none_or(|b| b.len() < 16)
        || !totp::verify(&secret, form.get("code"), seconds)
    {
        let uri = totp::uri(&secret, agent.email.as_str(), &state.config.platform_name);
        let page = TotpPage { layout: layout(&state, "Double authentification"), csrf: visitor.0.csrf(&state).await?, secret, uri, error: Some("« Code à 6 chiffres » : code incorrect. Vérifiez l'heure de votre téléphone et recopiez le code affiché.".into()), required: agent.is_admin() };
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response());
    }
    state.store.set_agent_totp(agent.id, Some(&secret)).await?;
    mark_mfa(&state, &visitor).await?;
    tracing::info!(agent.id = %agent.id, "agent enrolled a second factor");
    Ok(Redirect::to("/agents/").into_response())
}

/// `POST /agents/deconnexion`
pub(crate) async fn logout(
    State(state): State<AppState>,
    visitor: AgentVisitor,
    form: FormFields,
) -> Result<Response, AppError> {
    visitor.0.check_csrf(form.get("_csrf"))?;
    visitor.0.logout(&state).await?;
    Ok(Redirect::to("/agents/connexion").into_response())
}

/// `POST /agents/deconnexion-partout`: ends every session of the agent, on every device.
pub(crate) async fn logout_everywhere(
    State(state): State<AppState>,
    visitor: AgentVisitor,
    form: FormFields,
) -> Result<Response, AppError> {
    visitor.0.check_csrf(form.get("_csrf"))?;
    let agent = require_agent(&state, &visitor).await?;
    state.store.delete_agent_sessions(agent.id).await?;
    visitor.0.logout(&state).await?;
    Ok(Redirect::to("/agents/connexion").into_response())
}
