//! Tenant administration without a developer: agents and their roles (an EPCI agent can be
//! granted a member commune by adding them there), reply templates, and each agent's own
//! password. Only administrators of a tenant can change it; a tenant keeps at least one.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use guichet_domain::{AgentId, Email, Role, TenantId};
use guichet_store::{Agent, NewAgent, ReplyTemplate, StoreError};

use crate::forms::FormFields;
use crate::pages::agents::{layout, require_agent};
use crate::pages::{Layout, render};
use crate::password::{hash_password, verify_password};
use crate::session::AgentVisitor;
use crate::{AppError, AppState};

/// A member as listed.
pub(crate) struct Member {
    pub id: AgentId,
    pub name: String,
    pub email: String,
    pub role: Role,
    pub totp: bool,
    pub is_me: bool,
}

/// A tenant the agent administers.
pub(crate) struct Administered {
    pub id: TenantId,
    pub name: String,
    pub members: Vec<Member>,
    pub templates: Vec<ReplyTemplate>,
    pub endpoints: Vec<guichet_store::Endpoint>,
    pub public_stats: Option<guichet_store::PublicStats>,
    pub published: bool,
}

#[derive(Template)]
#[template(path = "agents/admin.html")]
struct AdminPage {
    layout: Layout,
    csrf: String,
    tenants: Vec<Administered>,
    error: Option<String>,
}

fn roles() -> [(Role, &'static str); 3] {
    [(Role::Agent, "agent"), (Role::Supervisor, "supervisor"), (Role::TenantAdmin, "tenant_admin")]
}

async fn page(
    state: &AppState,
    visitor: &AgentVisitor,
    agent: &Agent,
    error: Option<String>,
) -> Result<Response, AppError> {
    let mut tenants = Vec::new();
    for m in agent.memberships.iter().filter(|m| m.role == Role::TenantAdmin) {
        let mut members = Vec::new();
        for (id, name, role) in state.store.list_tenant_agents(m.tenant_id).await? {
            let a = state.store.get_agent(id).await?;
            members.push(Member {
                id,
                name,
                email: a.email.to_string(),
                role,
                totp: a.totp_secret.is_some(),
                is_me: id == agent.id,
            });
        }
        let templates = state.store.list_reply_templates(m.tenant_id).await?;
        let endpoints = state.store.list_endpoints(Some(m.tenant_id)).await?;
        let public_stats = state.store.public_stats(m.tenant_id).await?;
        tenants.push(Administered {
            id: m.tenant_id,
            name: m.tenant_name.clone(),
            members,
            templates,
            endpoints,
            published: public_stats.as_ref().is_none_or(|p| p.enabled),
            public_stats,
        });
    }
    if tenants.is_empty() {
        return Err(AppError::Forbidden(
            "Cette page est réservée aux administrateurs d'une collectivité.".into(),
        ));
    }
    let status = if error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    let html = render(&AdminPage {
        layout: layout(state, "Administration"),
        csrf: visitor.0.csrf(state).await?,
        tenants,
        error,
    })?;
    Ok((status, html).into_response())
}

/// The agent, if administrator of `tenant`; a 404 otherwise (another tenant's id does not exist).
async fn admin_of(
    state: &AppState,
    visitor: &AgentVisitor,
    tenant: &str,
) -> Result<(Agent, TenantId), AppError> {
    let agent = require_agent(state, visitor).await?;
    let tenant: TenantId = tenant.parse().map_err(|_| AppError::NotFound)?;
    if agent.role_in(tenant) != Some(Role::TenantAdmin) {
        return Err(AppError::NotFound);
    }
    Ok((agent, tenant))
}

/// `GET /agents/admin/`
pub(crate) async fn home(
    State(state): State<AppState>,
    visitor: AgentVisitor,
) -> Result<Response, AppError> {
    let agent = require_agent(&state, &visitor).await?;
    page(&state, &visitor, &agent, None).await
}

fn parse_role(s: &str) -> Option<Role> {
    Role::parse(s)
}

/// `POST /agents/admin/{tenant}/agents`: adds an existing agent (by e-mail) to the tenant, or
/// creates a new one with an initial password the administrator hands over.
pub(crate) async fn add_agent(
    State(state): State<AppState>,
    visitor: AgentVisitor,
    Path(tenant): Path<String>,
    form: FormFields,
) -> Result<Response, AppError> {
    visitor.0.check_csrf(form.get("_csrf"))?;
    let (agent, tenant) = admin_of(&state, &visitor, &tenant).await?;
    let Some(role) = parse_role(form.get("role")) else {
        return page(&state, &visitor, &agent, Some("« Rôle » : choisissez un rôle.".into())).await;
    };
    let email = match Email::parse(form.get("email")) {
        Ok(e) => e,
        Err(e) => {
            return page(
                &state,
                &visitor,
                &agent,
                Some(format!("« Adresse électronique » : {e}.")),
            )
            .await;
        }
    };
    if let Some((existing, _)) = state.store.find_agent_login(&email).await? {
        state.store.set_membership(existing.id, tenant, role).await?;
        tracing::info!(agent.id = %existing.id, tenant.id = %tenant, by = %agent.id, "membership granted");
        return Ok(Redirect::to("/agents/admin/").into_response());
    }
    let name = form.get("nom");
    let password = form.raw("mot_de_passe").to_owned();
    if name.is_empty() || name.chars().count() > 100 {
        return page(
            &state,
            &visitor,
            &agent,
            Some("« Nom » : indiquez le nom de l'agent (100 caractères au plus).".into()),
        )
        .await;
    }
    if password.chars().count() < 12 {
        return page(
            &state,
            &visitor,
            &agent,
            Some("« Mot de passe initial » : 12 caractères au moins.".into()),
        )
        .await;
    }
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| AppError::Internal(e.into()))?
        .map_err(AppError::Internal)?;
    let new = NewAgent {
        id: AgentId::new(),
        email,
        password_hash: hash,
        display_name: name.to_owned(),
        memberships: vec![(tenant, role)],
    };
    match state.store.add_agent(&new).await {
        Ok(()) => {
            tracing::info!(agent.id = %new.id, tenant.id = %tenant, by = %agent.id, "agent created");
            Ok(Redirect::to("/agents/admin/").into_response())
        }
        Err(StoreError::Conflict { .. }) => {
            page(
                &state,
                &visitor,
                &agent,
                Some("« Adresse électronique » : un agent existe déjà avec cette adresse.".into()),
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /agents/admin/{tenant}/agents/{agent}/role`
pub(crate) async fn change_role(
    State(state): State<AppState>,
    visitor: AgentVisitor,
    Path((tenant, member)): Path<(String, String)>,
    form: FormFields,
) -> Result<Response, AppError> {
    visitor.0.check_csrf(form.get("_csrf"))?;
    let (agent, tenant) = admin_of(&state, &visitor, &tenant).await?;
    let member: AgentId = member.parse().map_err(|_| AppError::NotFound)?;
    state.store.get_agent(member).await?.role_in(tenant).ok_or(AppError::NotFound)?;
    let Some(role) = parse_role(form.get("role")) else {
        return page(&state, &visitor, &agent, Some("« Rôle » : choisissez un rôle.".into())).await;
    };
    match state.store.set_membership(member, tenant, role).await {
        Ok(()) => Ok(Redirect::to("/agents/admin/").into_response()),
        Err(StoreError::Conflict { .. }) => {
            page(
                &state,
                &visitor,
                &agent,
                Some("La collectivité doit garder au moins un administrateur.".into()),
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /agents/admin/{tenant}/agents/{agent}/retirer`
pub(crate) async fn remove(
    State(state): State<AppState>,
    visitor: AgentVisitor,
    Path((tenant, member)): Path<(String, String)>,
    form: FormFields,
) -> Result<Response, AppError> {
    visitor.0.check_csrf(form.get("_csrf"))?;
    let (agent, tenant) = admin_of(&state, &visitor, &tenant).await?;
    let member: AgentId = member.parse().map_err(|_| AppError::NotFound)?;
    state.store.get_agent(member).await?.role_in(tenant).ok_or(AppError::NotFound)?;
    match state.store.remove_membership(member, tenant).await {
        Ok(()) => Ok(Redirect::to("/agents/admin/").into_response()),
        Err(StoreError::Conflict { .. }) => {
            page(
                &state,
                &visitor,
                &agent,
                Some("La collectivité doit garder au moins un administrateur.".into()),
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /agents/admin/{tenant}/modeles`
pub(crate) async fn add_template(
    State(state): State<AppState>,
    visitor: AgentVisitor,
    Path(tenant): Path<String>,
    form: FormFields,
) -> Result<Response, AppError> {
    visitor.0.check_csrf(form.get("_csrf"))?;
    let (agent, tenant) = admin_of(&state, &visitor, &tenant).await?;
    let (title, body) = (form.get("titre"), form.get("texte").replace("\r\n", "\n"));
    if title.is_empty()
        || title.chars().count() > 150
        || body.is_empty()
        || body.chars().count() > 10_000
    {
        return page(&state, &visitor, &agent, Some("« Modèle de réponse » : un titre (150 caractères au plus) et un texte sont nécessaires.".into())).await;
    }
    state
        .store
        .add_reply_template(&ReplyTemplate {
            id: uuid::Uuid::now_v7(),
            tenant_id: tenant,
            title: title.to_owned(),
            body,
        })
        .await?;
    Ok(Redirect::to("/agents/admin/").into_response())
}

/// `POST /agents/admin/{tenant}/modeles/{id}/supprimer`
pub(crate) async fn delete_template(
    State(state): State<AppState>,
    visitor: AgentVisitor,
    Path((tenant, id)): Path<(String, String)>,
    form: FormFields,
) -> Result<Response, AppError> {
    visitor.0.check_csrf(form.get("_csrf"))?;
    let (_, tenant) = admin_of(&state, &visitor, &tenant).await?;
    let id: uuid::Uuid = id.parse().map_err(|_| AppError::NotFound)?;
    state.store.delete_reply_template(tenant, id).await?;
    Ok(Redirect::to("/agents/admin/").into_response())
}

#[derive(Template)]
#[template(path = "agents/profile.html")]
struct ProfilePage {
    layout: Layout,
    csrf: String,
    agent: Agent,
    error: Option<String>,
    saved: bool,
}

/// `GET /agents/profil`
pub(crate) async fn profile(
    State(state): State<AppState>,
    visitor: AgentVisitor,
) -> Result<Response, AppError> {
    let agent = require_agent(&state, &visitor).await?;
    render(&ProfilePage {
        layout: layout(&state, "Mon profil"),
        csrf: visitor.0.csrf(&state).await?,
        agent,
        error: None,
        saved: false,
    })
}

/// `POST /agents/profil`: changes the agent's own password (ends their other sessions).
pub(crate) async fn change_password(
    State(state): State<AppState>,
    visitor: AgentVisitor,
    form: FormFields,
) -> Result<Response, AppError> {
    visitor.0.check_csrf(form.get("_csrf"))?;
    let agent = require_agent(&state, &visitor).await?;
    let (current, new, confirm) =
        (form.raw("actuel").to_owned(), form.raw("nouveau").to_owned(), form.raw("confirmation"));
    let hash = state.store.find_agent_login(&agent.email).await?.map(|(_, h)| h);
    let ok =
        tokio::task::spawn_blocking(move || hash.is_some_and(|h| verify_password(&current, &h)))
            .await
            .map_err(|e| AppError::Internal(e.into()))?;
    let error = if !ok {
        Some("« Mot de passe actuel » : mot de passe incorrect.")
    } else if new.chars().count() < 12 {
        Some("« Nouveau mot de passe » : 12 caractères au moins.")
    } else if new != confirm {
        Some("« Confirmation » : les deux mots de passe sont différents.")
    } else {
        None
    };
    if let Some(e) = error {
        let html = render(&ProfilePage {
            layout: layout(&state, "Mon profil"),
            csrf: visitor.0.csrf(&state).await?,
            agent,
            error: Some(e.into()),
            saved: false,
        })?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, html).into_response());
    }
    let hash = tokio::task::spawn_blocking(move || hash_password(&new))
        .await
        .map_err(|e| AppError::Internal(e.into()))?
        .map_err(AppError::Internal)?;
    state.store.set_agent_password(agent.id, &hash).await?;
    // Every session ended, this one too: start a fresh one (both factors were just proven).
    visitor.0.login_agent(&state, agent.id, true).await?;
    render(&ProfilePage {
        layout: layout(&state, "Mon profil"),
        csrf: visitor.0.csrf(&state).await?,
        agent,
        error: None,
        saved: true,
    })
}

/// `POST /agents/admin/{tenant}/canaux`: a functional e-mail address (fetched over IMAP when an
/// IMAP address is given, else fed by an MTA through the inbound endpoint) or an SMS number.
pub(crate) async fn add_endpoint(
    State(state): State<AppState>,
    visitor: AgentVisitor,
    Path(tenant): Path<String>,
    form: FormFields,
) -> Result<Response, AppError> {
    visitor.0.check_csrf(form.get("_csrf"))?;
    let (agent, tenant) = admin_of(&state, &visitor, &tenant).await?;
    let kind = form.get("type");
    let address = form.get("adresse").trim().to_lowercase();
    let refuse = |m: &str| page(&state, &visitor, &agent, Some(m.to_owned()));
    let (imap_url, imap_password) = match kind {
        "email" => {
            if Email::parse(&address).is_err() {
                return refuse(
                    "« Adresse fonctionnelle » : indiquez une adresse électronique valide.",
                )
                .await;
            }
            match form.get("imap").trim() {
                "" => (None, None),
                url => {
                    let password = form.raw("imap_mot_de_passe");
                    if let Err(e) = guichet_channels::imap::ImapAccount::from_url(url, password) {
                        return refuse(&format!("« Serveur IMAP » : {e}.")).await;
                    }
                    if password.is_empty() {
                        return refuse(
                            "« Mot de passe IMAP » : indiquez le mot de passe de la boîte.",
                        )
                        .await;
                    }
                    (Some(url.to_owned()), Some(password.to_owned()))
                }
            }
        }
        "sms" => {
            let ok = (3..=16).contains(&address.len())
                && address.trim_start_matches('+').bytes().all(|b| b.is_ascii_digit());
            if !ok {
                return refuse(
                    "« Numéro SMS » : un numéro court (38100) ou international (+33612345678).",
                )
                .await;
            }
            (None, None)
        }
        _ => return refuse("« Type » : choisissez courriel ou SMS.").await,
    };
    let endpoint = guichet_store::Endpoint {
        id: uuid::Uuid::now_v7(),
        tenant_id: tenant,
        kind: kind.to_owned(),
        address,
        imap_url,
        imap_password,
        uid_validity: None,
        last_uid: 0,
        last_fetch_at: None,
        last_error: None,
    };
    match state.store.add_endpoint(&endpoint).await {
        Ok(()) => Ok(Redirect::to("/agents/admin/").into_response()),
        Err(StoreError::Conflict { .. }) => {
            refuse("« Adresse fonctionnelle » : cette adresse ou ce numéro est déjà utilisé.").await
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /agents/admin/{tenant}/canaux/{id}/supprimer`
pub(crate) async fn delete_endpoint(
    State(state): State<AppState>,
    visitor: AgentVisitor,
    Path((tenant, id)): Path<(String, String)>,
    form: FormFields,
) -> Result<Response, AppError> {
    visitor.0.check_csrf(form.get("_csrf"))?;
    let (_, tenant) = admin_of(&state, &visitor, &tenant).await?;
    let id: uuid::Uuid = id.parse().map_err(|_| AppError::NotFound)?;
    match state.store.delete_endpoint(tenant, id).await {
        Ok(()) | Err(StoreError::NotFound) => Ok(Redirect::to("/agents/admin/").into_response()),
        Err(e) => Err(e.into()),
    }
}

/// `POST /agents/admin/{tenant}/delais-publics`: publishes the tenant's service levels or
/// stops publishing them, with the reason (required to stop; kept).
pub(crate) async fn public_stats(
    State(state): State<AppState>,
    visitor: AgentVisitor,
    Path(tenant): Path<String>,
    form: FormFields,
) -> Result<Response, AppError> {
    visitor.0.check_csrf(form.get("_csrf"))?;
    let (agent, tenant) = admin_of(&state, &visitor, &tenant).await?;
    let enabled = match form.get("publier") {
        "oui" => true,
        "non" => false,
        _ => {
            return page(
                &state,
                &visitor,
                &agent,
                Some("« Publier les délais de traitement » : choisissez oui ou non.".into()),
            )
            .await;
        }
    };
    let reason = form.get("motif").trim().to_owned();
    if !enabled && (reason.is_empty() || reason.chars().count() > 500) {
        return page(&state, &visitor, &agent, Some("« Motif » : indiquez pourquoi les délais ne sont plus publiés (500 caractères au plus).".into())).await;
    }
    let now = time::OffsetDateTime::now_utc();
    let records = guichet_store::SubmissionRecords {
        events: vec![guichet_store::NewEvent {
            id: guichet_domain::EventId::new(),
            tenant_id: tenant,
            request_id: None,
            at: now,
            actor_kind: guichet_domain::request::ActorKind::Agent,
            actor_id: Some(agent.id.as_uuid()),
            channel: guichet_domain::request::Channel::Web,
            kind: "public_stats_changed".into(),
            citizen_visible: false,
            data: serde_json::json!({"enabled": enabled, "reason": reason}),
        }],
        ..Default::default()
    };
    let setting = guichet_store::PublicStats {
        enabled,
        reason: (!reason.is_empty()).then_some(reason),
        changed_by: Some(agent.id),
        changed_at: now,
    };
    state.store.set_public_stats(tenant, &setting, &records).await?;
    Ok(Redirect::to("/agents/admin/").into_response())
}
