//! The citizen account: sign-up with e-mail verification, login (throttled), logout, password
//! reset, profile, data export, deletion. One account for the whole platform.

use askama::Template;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use guichet_domain::audit::sha256_hex;
use guichet_domain::{CitizenId, Email, InseeCode, Phone};
use guichet_store::{Citizen, NewCitizenAccount, NewToken, Profile, StoreError, TokenPurpose};
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

use crate::forms::FormFields;
use crate::mail::email;
use crate::pages::{Layout, render, safe_return, url_encode};
use crate::password::{hash_password, verify_password};
use crate::session::{Visitor, random_token};
use crate::{AppError, AppState};

/// Failed logins allowed per account, then per address, within `THROTTLE_WINDOW`.
const MAX_FAILURES_PER_ACCOUNT: i64 = 5;
const MAX_FAILURES_PER_ADDRESS: i64 = 30;
const THROTTLE_WINDOW: Duration = Duration::minutes(15);

/// Minimum password length (CNIL's recommendation for a password alone is 12 characters).
const MIN_PASSWORD: usize = 12;
const MAX_PASSWORD: usize = 256;

/// An error tied to a form field.
pub(crate) struct FieldMessage {
    pub key: &'static str,
    pub message: String,
}

fn field_error(key: &'static str, message: impl Into<String>) -> FieldMessage {
    FieldMessage { key, message: message.into() }
}

/// A commune option for the "where do you live" select.
pub(crate) struct CommuneOption {
    pub code: String,
    pub name: String,
    pub selected: bool,
}

async fn commune_options(state: &AppState, selected: &str) -> Result<Vec<CommuneOption>, AppError> {
    let mut options = Vec::new();
    for root in state.store.list_root_tenants().await? {
        for m in state.store.list_member_tenants(root.id).await? {
            if let Some(code) = m.insee_code {
                options.push(CommuneOption {
                    selected: code.as_str() == selected,
                    code: code.into_inner(),
                    name: m.name,
                });
            }
        }
    }
    options.sort_by(|a, b| {
        crate::pages::collation_key(&a.name).cmp(&crate::pages::collation_key(&b.name))
    });
    Ok(options)
}

/// The citizen currently logged in, or a redirect to the login page that comes back to `back`.
pub(crate) async fn require_citizen(
    state: &AppState,
    visitor: &Visitor,
    back: &str,
) -> Result<Arc<Citizen>, AppError> {
    let id = visitor.citizen().ok_or_else(|| AppError::LoginRequired(back.to_owned()))?;
    if let Some(account) = visitor.account() {
        return Ok(account);
    }
    match state.store.get_citizen(id).await {
        Ok(c) => Ok(Arc::new(c)),
        // The account was deleted in another session.
        Err(StoreError::NotFound) => Err(AppError::LoginRequired(back.to_owned())),
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub(crate) struct ReturnTo {
    retour: Option<String>,
}

// ---------------------------------------------------------------- sign-up

#[derive(Template)]
#[template(path = "account/signup.html")]
struct SignupPage {
    layout: Layout,
    csrf: String,
    errors: Vec<FieldMessage>,
    given_name: String,
    family_name: String,
    email: String,
    communes: Vec<CommuneOption>,
    back: String,
}

impl SignupPage {
    fn error(&self, key: &str) -> Option<&str> {
        self.errors.iter().find(|e| e.key == key).map(|e| e.message.as_str())
    }
}

/// `GET /compte/inscription`
pub(crate) async fn signup_form(
    State(state): State<AppState>,
    visitor: Visitor,
    Query(q): Query<ReturnTo>,
) -> Result<Response, AppError> {
    let page = SignupPage {
        layout: Layout::platform("Créer un compte", &state.config.platform_name),
        csrf: visitor.csrf(&state).await?,
        errors: Vec::new(),
        given_name: String::new(),
        family_name: String::new(),
        email: String::new(),
        communes: commune_options(&state, "").await?,
        back: safe_return(q.retour.as_deref()),
    };
    render(&page)
}

#[derive(Template)]
#[template(path = "emails/verify.txt")]
struct VerifyText<'a> {
    name: &'a str,
    link: &'a str,
    platform: &'a str,
}

#[derive(Template)]
#[template(path = "emails/verify.html")]
struct VerifyHtml<'a> {
    name: &'a str,
    link: &'a str,
    platform: &'a str,
}

/// A one-time token for `purpose`, the e-mail carrying its link, and the job sending it.
pub(crate) fn token_email(
    state: &AppState,
    purpose: TokenPurpose,
    to: &str,
    name: &str,
    now: OffsetDateTime,
) -> Result<(NewToken, guichet_store::NewEmail, guichet_store::NewJob), AppError> {
    let token = random_token();
    let platform = state.config.platform_name.as_str();
    let (mail, expires_at) = match purpose {
        TokenPurpose::VerifyEmail => {
            let link = format!("{}/compte/verifier/{token}", state.config.base_url);
            let mail = email(
                state,
                to,
                format!("{platform} : confirmez votre adresse électronique"),
                &VerifyText { name, link: &link, platform },
                &VerifyHtml { name, link: &link, platform },
                None,
            )?;
            (mail, now + Duration::days(2))
        }
        TokenPurpose::ResetPassword => {
            let link = format!("{}/compte/nouveau-mot-de-passe/{token}", state.config.base_url);
            let mail = email(
                state,
                to,
                format!("{platform} : réinitialisation de votre mot de passe"),
                &ResetText { name, link: &link, platform },
                &ResetHtml { name, link: &link, platform },
                None,
            )?;
            (mail, now + Duration::hours(1))
        }
    };
    let job = mail.send_job(now);
    Ok((NewToken { token_hash: sha256_hex(token.as_bytes()), purpose, expires_at }, mail, job))
}

/// `POST /compte/inscription`
pub(crate) async fn signup(
    State(state): State<AppState>,
    visitor: Visitor,
    form: FormFields,
) -> Result<Response, AppError> {
    visitor.check_csrf(form.get("_csrf"))?;
    let mut errors = Vec::new();
    let given_name = form.get("given_name").to_owned();
    let family_name = form.get("family_name").to_owned();
    if given_name.is_empty() {
        errors.push(field_error("given_name", "« Prénom » : ce champ est obligatoire."));
    } else if given_name.chars().count() > 100 {
        errors.push(field_error("given_name", "« Prénom » : ne doit pas dépasser 100 caractères."));
    }
    if family_name.is_empty() {
        errors.push(field_error("family_name", "« Nom » : ce champ est obligatoire."));
    } else if family_name.chars().count() > 100 {
        errors.push(field_error("family_name", "« Nom » : ne doit pas dépasser 100 caractères."));
    }
    let email_addr = match Email::parse(form.get("email")) {
        Ok(e) => Some(e),
        Err(e) => {
            errors.push(field_error("email", format!("« Adresse électronique » : {e}.")));
            None
        }
    };
    let password = form.raw("password");
    check_password(password, form.raw("password_confirm"), &mut errors);
    let insee = match form.get("insee_code") {
        "" => None,
        code => match InseeCode::parse(code) {
            Ok(c) => Some(c),
            Err(_) => {
                errors.push(field_error(
                    "insee_code",
                    "« Commune de résidence » : choisissez une commune de la liste.",
                ));
                None
            }
        },
    };
    let back = safe_return(Some(form.get("retour")));

    if let (true, Some(email_addr)) = (errors.is_empty(), email_addr.clone()) {
        let hash = hash_blocking(password.to_owned()).await?;
        let account = NewCitizenAccount {
            id: CitizenId::new(),
            email: email_addr.clone(),
            password_hash: hash,
            profile: Profile {
                given_name: given_name.clone(),
                family_name: family_name.clone(),
                insee_code: insee,
                notify_email: true,
                ..Profile::default()
            },
        };
        let name = format!("{given_name} {family_name}");
        let now = OffsetDateTime::now_utc();
        let (new_token, mail, job) =
            token_email(&state, TokenPurpose::VerifyEmail, email_addr.as_str(), &name, now)?;
        match state.store.create_citizen(&account, &new_token, &[mail], &[job]).await {
            Ok(citizen) => {
                visitor.login(&state, citizen.id).await?;
                tracing::info!(citizen.id = %citizen.id, "citizen signed up");
                return Ok(Redirect::to(&format!("/compte/?inscription=1&retour={}", url_encode(&back))).into_response());
            }
            Err(StoreError::Conflict { .. }) => errors.push(field_error(
                "email",
                "« Adresse électronique » : un compte existe déjà avec cette adresse. Connectez-vous, ou utilisez « Mot de passe oublié ».",
            )),
            Err(e) => return Err(e.into()),
        }
    }
    let page = SignupPage {
        layout: Layout::platform("Créer un compte", &state.config.platform_name),
        csrf: visitor.csrf(&state).await?,
        communes: commune_options(&state, form.get("insee_code")).await?,
        errors,
        given_name,
        family_name,
        email: form.get("email").to_owned(),
        back,
    };
    Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response())
}

fn check_password(password: &str, confirm: &str, errors: &mut Vec<FieldMessage>) {
    let n = password.chars().count();
    if n < MIN_PASSWORD {
        errors.push(field_error(
            "password",
            format!("« Mot de passe » : {MIN_PASSWORD} caractères au moins."),
        ));
    } else if n > MAX_PASSWORD {
        errors.push(field_error(
            "password",
            format!("« Mot de passe » : {MAX_PASSWORD} caractères au plus."),
        ));
    } else if password != confirm {
        errors.push(field_error(
            "password_confirm",
            "« Confirmation du mot de passe » : les deux mots de passe sont différents.",
        ));
    }
}

async fn hash_blocking(password: String) -> Result<String, AppError> {
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| AppError::Internal(e.into()))?
        .map_err(AppError::Internal)
}

#[derive(Template)]
#[template(path = "account/message.html")]
struct MessagePage {
    layout: Layout,
    title: String,
    paragraphs: Vec<String>,
    link: Option<(String, String)>,
}

fn message(
    state: &AppState,
    title: &str,
    paragraphs: Vec<String>,
    link: Option<(&str, &str)>,
) -> Result<Response, AppError> {
    render(&MessagePage {
        layout: Layout::platform(title, &state.config.platform_name),
        title: title.to_owned(),
        paragraphs,
        link: link.map(|(h, t)| (h.to_owned(), t.to_owned())),
    })
}

/// `GET /compte/verifier/{token}`
pub(crate) async fn verify_email(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<Response, AppError> {
    let now = OffsetDateTime::now_utc();
    let found = state
        .store
        .consume_citizen_token(&sha256_hex(token.as_bytes()), TokenPurpose::VerifyEmail, now)
        .await?;
    match found {
        Some(_) => message(&state, "Adresse électronique confirmée", vec!["Merci : votre adresse est confirmée. Vous pouvez envoyer vos demandes en ligne.".into()], Some(("/compte/", "Aller à mon espace"))),
        None => Ok((
            StatusCode::NOT_FOUND,
            message(&state, "Lien invalide ou expiré", vec!["Ce lien de confirmation a déjà servi ou a expiré (il est valable 48 heures). Connectez-vous : votre espace propose d'en recevoir un nouveau.".into()], Some(("/compte/connexion", "Se connecter")))?,
        ).into_response()),
    }
}

/// `POST /compte/verifier` (send a new verification link)
pub(crate) async fn resend_verification(
    State(state): State<AppState>,
    visitor: Visitor,
    form: FormFields,
) -> Result<Response, AppError> {
    visitor.check_csrf(form.get("_csrf"))?;
    let citizen = require_citizen(&state, &visitor, "/compte/").await?;
    if citizen.email_verified_at.is_none() {
        let now = OffsetDateTime::now_utc();
        let key = format!("verify:{}", citizen.id);
        if state.store.hit_throttle(&key, Duration::hours(1), now).await? > 5 {
            return Err(AppError::TooManyRequests("Plusieurs liens viennent déjà d'être envoyés. Consultez votre messagerie (y compris les indésirables) ou réessayez dans une heure.".into()));
        }
        let name = format!("{} {}", citizen.profile.given_name, citizen.profile.family_name);
        let (t, mail, job) =
            token_email(&state, TokenPurpose::VerifyEmail, citizen.email.as_str(), &name, now)?;
        state.store.add_citizen_token(citizen.id, &t, &[mail], &[job]).await?;
    }
    message(
        &state,
        "Lien envoyé",
        vec![format!("Un nouveau lien de confirmation a été envoyé à {}.", citizen.email)],
        Some(("/compte/", "Retour à mon espace")),
    )
}

// ---------------------------------------------------------------- login / logout

#[derive(Template)]
#[template(path = "account/login.html")]
struct LoginPage {
    layout: Layout,
    csrf: String,
    error: Option<String>,
    email: String,
    back: String,
}

/// `GET /compte/connexion`
pub(crate) async fn login_form(
    State(state): State<AppState>,
    visitor: Visitor,
    Query(q): Query<ReturnTo>,
) -> Result<Response, AppError> {
    let back = safe_return(q.retour.as_deref());
    if visitor.citizen().is_some() {
        return Ok(Redirect::to(&back).into_response());
    }
    render(&LoginPage {
        layout: Layout::platform("Se connecter", &state.config.platform_name),
        csrf: visitor.csrf(&state).await?,
        error: None,
        email: String::new(),
        back,
    })
}

/// `POST /compte/connexion`
pub(crate) async fn login(
    State(state): State<AppState>,
    visitor: Visitor,
    peer: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    form: FormFields,
) -> Result<Response, AppError> {
    visitor.check_csrf(form.get("_csrf"))?;
    let now = OffsetDateTime::now_utc();
    let back = safe_return(Some(form.get("retour")));
    let address = peer
        .map_or_else(|| "unknown".to_owned(), |axum::Extension(ConnectInfo(a))| a.ip().to_string());
    let ip_key = format!("login:ip:{address}");
    let email_text = form.get("email").to_lowercase();
    let account_key = format!("login:account:{email_text}");
    let too_many = "Trop de tentatives de connexion ont échoué. Par sécurité, réessayez dans 15 minutes, ou utilisez « Mot de passe oublié ».";
    if state.store.throttle_hits(&account_key, THROTTLE_WINDOW, now).await?
        >= MAX_FAILURES_PER_ACCOUNT
        || state.store.throttle_hits(&ip_key, THROTTLE_WINDOW, now).await?
            >= MAX_FAILURES_PER_ADDRESS
    {
        tracing::warn!(client.address = %address, "login throttled");
        return Err(AppError::TooManyRequests(too_many.to_owned()));
    }
    let found = match Email::parse(&email_text) {
        Ok(e) => state.store.find_citizen_login(&e).await?,
        Err(_) => None,
    };
    let password = form.raw("password").to_owned();
    let hash = found.as_ref().and_then(|(_, h)| h.clone());
    // Verify against a fixed dummy hash when the account does not exist, so that the answer
    // takes as long and does not reveal which addresses have an account.
    let ok = tokio::task::spawn_blocking(move || match hash {
        Some(h) => verify_password(&password, &h),
        None => {
            let _ = verify_password(&password, &DUMMY_HASH);
            false
        }
    })
    .await
    .map_err(|e| AppError::Internal(e.into()))?;
    match found {
        Some((citizen, _)) if ok => {
            state.store.clear_throttle(&account_key).await?;
            visitor.login(&state, citizen.id).await?;
            tracing::info!(citizen.id = %citizen.id, "citizen logged in");
            Ok(Redirect::to(&back).into_response())
        }
        _ => {
            state.store.hit_throttle(&account_key, THROTTLE_WINDOW, now).await?;
            state.store.hit_throttle(&ip_key, THROTTLE_WINDOW, now).await?;
            let page = LoginPage {
                layout: Layout::platform("Se connecter", &state.config.platform_name),
                csrf: visitor.csrf(&state).await?,
                error: Some("Adresse électronique ou mot de passe incorrect.".to_owned()),
                email: form.get("email").to_owned(),
                back,
            };
            Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response())
        }
    }
}

/// A real argon2id hash (same parameters as stored ones) of a random string, computed once.
static DUMMY_HASH: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| hash_password(&random_token()).unwrap_or_default());

/// `POST /compte/deconnexion`
pub(crate) async fn logout(
    State(state): State<AppState>,
    visitor: Visitor,
    form: FormFields,
) -> Result<Response, AppError> {
    visitor.check_csrf(form.get("_csrf"))?;
    visitor.logout(&state).await?;
    Ok(Redirect::to("/").into_response())
}

// ---------------------------------------------------------------- password reset

#[derive(Template)]
#[template(path = "account/forgot.html")]
struct ForgotPage {
    layout: Layout,
    csrf: String,
    error: Option<String>,
}

/// `GET /compte/mot-de-passe-oublie`
pub(crate) async fn forgot_form(
    State(state): State<AppState>,
    visitor: Visitor,
) -> Result<Response, AppError> {
    render(&ForgotPage {
        layout: Layout::platform("Mot de passe oublié", &state.config.platform_name),
        csrf: visitor.csrf(&state).await?,
        error: None,
    })
}

#[derive(Template)]
#[template(path = "emails/reset.txt")]
struct ResetText<'a> {
    name: &'a str,
    link: &'a str,
    platform: &'a str,
}

#[derive(Template)]
#[template(path = "emails/reset.html")]
struct ResetHtml<'a> {
    name: &'a str,
    link: &'a str,
    platform: &'a str,
}

/// `POST /compte/mot-de-passe-oublie`: always the same answer, whether the account exists
/// or not, so the form cannot be used to find out who has an account.
pub(crate) async fn forgot(
    State(state): State<AppState>,
    visitor: Visitor,
    form: FormFields,
) -> Result<Response, AppError> {
    visitor.check_csrf(form.get("_csrf"))?;
    let Ok(address) = Email::parse(form.get("email")) else {
        let page = ForgotPage {
            layout: Layout::platform("Mot de passe oublié", &state.config.platform_name),
            csrf: visitor.csrf(&state).await?,
            error: Some("« Adresse électronique » : l'adresse électronique doit être de la forme nom@domaine.fr.".into()),
        };
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response());
    };
    let now = OffsetDateTime::now_utc();
    let key = format!("reset:{address}");
    let allowed = state.store.hit_throttle(&key, Duration::hours(1), now).await? <= 3;
    if let (true, Some((citizen, _))) = (allowed, state.store.find_citizen_login(&address).await?) {
        let name = format!("{} {}", citizen.profile.given_name, citizen.profile.family_name);
        let (t, mail, job) =
            token_email(&state, TokenPurpose::ResetPassword, citizen.email.as_str(), &name, now)?;
        state.store.add_citizen_token(citizen.id, &t, &[mail], &[job]).await?;
    }
    message(
        &state,
        "Consultez votre messagerie",
        vec![format!(
            "Si un compte existe pour {address}, un lien pour choisir un nouveau mot de passe vient d'y être envoyé. Il est valable une heure."
        )],
        Some(("/compte/connexion", "Retour à la connexion")),
    )
}

#[derive(Template)]
#[template(path = "account/reset.html")]
struct ResetPage {
    layout: Layout,
    csrf: String,
    token: String,
    errors: Vec<FieldMessage>,
}

impl ResetPage {
    fn error(&self, key: &str) -> Option<&str> {
        self.errors.iter().find(|e| e.key == key).map(|e| e.message.as_str())
    }
}

/// `GET /compte/nouveau-mot-de-passe/{token}`
pub(crate) async fn reset_form(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(token): Path<String>,
) -> Result<Response, AppError> {
    render(&ResetPage {
        layout: Layout::platform("Nouveau mot de passe", &state.config.platform_name),
        csrf: visitor.csrf(&state).await?,
        token,
        errors: Vec::new(),
    })
}

/// `POST /compte/nouveau-mot-de-passe/{token}`
pub(crate) async fn reset(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(token): Path<String>,
    form: FormFields,
) -> Result<Response, AppError> {
    visitor.check_csrf(form.get("_csrf"))?;
    let mut errors = Vec::new();
    check_password(form.raw("password"), form.raw("password_confirm"), &mut errors);
    if !errors.is_empty() {
        let page = ResetPage {
            layout: Layout::platform("Nouveau mot de passe", &state.config.platform_name),
            csrf: visitor.csrf(&state).await?,
            token,
            errors,
        };
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response());
    }
    let now = OffsetDateTime::now_utc();
    let Some(id) = state
        .store
        .consume_citizen_token(&sha256_hex(token.as_bytes()), TokenPurpose::ResetPassword, now)
        .await?
    else {
        return Ok((
            StatusCode::NOT_FOUND,
            message(
                &state,
                "Lien invalide ou expiré",
                vec!["Ce lien a déjà servi ou a expiré. Demandez-en un nouveau.".into()],
                Some(("/compte/mot-de-passe-oublie", "Mot de passe oublié")),
            )?,
        )
            .into_response());
    };
    let hash = hash_blocking(form.raw("password").to_owned()).await?;
    // Changing the password ends every session of the account, this one included.
    state.store.set_citizen_password(id, &hash).await?;
    let citizen = state.store.get_citizen(id).await?;
    state.store.clear_throttle(&format!("login:account:{}", citizen.email)).await?;
    visitor.login(&state, id).await?;
    message(
        &state,
        "Mot de passe changé",
        vec![
            "Votre nouveau mot de passe est enregistré. Vos autres connexions ont été fermées."
                .into(),
        ],
        Some(("/compte/", "Aller à mon espace")),
    )
}

// ---------------------------------------------------------------- profile

#[derive(Template)]
#[template(path = "account/profile.html")]
struct ProfilePage {
    layout: Layout,
    csrf: String,
    citizen: Arc<Citizen>,
    errors: Vec<FieldMessage>,
    v: ProfileValues,
    communes: Vec<CommuneOption>,
    saved: bool,
}

/// A text input of the profile form: (name, label, value, type, autocomplete).
type TextInput<'a> = (&'static str, &'static str, &'a str, &'static str, &'static str);

impl ProfilePage {
    fn error(&self, key: &str) -> Option<&str> {
        self.errors.iter().find(|e| e.key == key).map(|e| e.message.as_str())
    }

    fn text_inputs(&self) -> Vec<TextInput<'_>> {
        let v = &self.v;
        vec![
            ("given_name", "Prénom", &v.given_name, "text", "given-name"),
            ("family_name", "Nom", &v.family_name, "text", "family-name"),
            ("birth_date", "Date de naissance (facultatif)", &v.birth_date, "date", "bday"),
            ("phone", "Téléphone mobile (facultatif)", &v.phone, "tel", "tel"),
            (
                "street",
                "Adresse : numéro et voie (facultatif)",
                &v.street,
                "text",
                "street-address",
            ),
            ("postcode", "Code postal (facultatif)", &v.postcode, "text", "postal-code"),
            ("city", "Commune (facultatif)", &v.city, "text", "address-level2"),
        ]
    }
}

/// The profile form's values as typed.
pub(crate) struct ProfileValues {
    civility: String,
    given_name: String,
    family_name: String,
    birth_date: String,
    phone: String,
    street: String,
    postcode: String,
    city: String,
    notify_email: bool,
    notify_sms: bool,
}

impl ProfileValues {
    fn of(p: &Profile) -> Self {
        Self {
            civility: p.civility.clone().unwrap_or_default(),
            given_name: p.given_name.clone(),
            family_name: p.family_name.clone(),
            birth_date: p.birth_date.map(|d| d.to_string()).unwrap_or_default(),
            phone: p.phone.as_ref().map(|x| x.display_national()).unwrap_or_default(),
            street: p.street.clone().unwrap_or_default(),
            postcode: p.postcode.clone().unwrap_or_default(),
            city: p.city.clone().unwrap_or_default(),
            notify_email: p.notify_email,
            notify_sms: p.notify_sms,
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct Saved {
    enregistre: Option<String>,
}

/// `GET /compte/profil`
pub(crate) async fn profile_form(
    State(state): State<AppState>,
    visitor: Visitor,
    Query(q): Query<Saved>,
) -> Result<Response, AppError> {
    let citizen = require_citizen(&state, &visitor, "/compte/profil").await?;
    let selected =
        citizen.profile.insee_code.as_ref().map(|c| c.as_str().to_owned()).unwrap_or_default();
    render(&ProfilePage {
        layout: Layout::platform("Mon profil", &state.config.platform_name),
        csrf: visitor.csrf(&state).await?,
        v: ProfileValues::of(&citizen.profile),
        communes: commune_options(&state, &selected).await?,
        citizen,
        errors: Vec::new(),
        saved: q.enregistre.is_some(),
    })
}

/// `POST /compte/profil`
pub(crate) async fn profile(
    State(state): State<AppState>,
    visitor: Visitor,
    form: FormFields,
) -> Result<Response, AppError> {
    visitor.check_csrf(form.get("_csrf"))?;
    let citizen = require_citizen(&state, &visitor, "/compte/profil").await?;
    let mut errors = Vec::new();
    let mut p = Profile {
        notify_email: form.get("notify_email") == "oui",
        notify_sms: form.get("notify_sms") == "oui",
        ..Profile::default()
    };
    p.civility = match form.get("civility") {
        "" => None,
        c @ ("mme" | "m") => Some(c.to_owned()),
        _ => {
            errors.push(field_error(
                "civility",
                "« Civilité » : choisissez Madame, Monsieur ou ne rien indiquer.",
            ));
            None
        }
    };
    for (key, label, target) in
        [("given_name", "Prénom", &mut p.given_name), ("family_name", "Nom", &mut p.family_name)]
    {
        let v = form.get(key);
        if v.is_empty() {
            errors.push(field_error(key, format!("« {label} » : ce champ est obligatoire.")));
        } else if v.chars().count() > 100 {
            errors.push(field_error(
                key,
                format!("« {label} » : ne doit pas dépasser 100 caractères."),
            ));
        }
        *target = v.to_owned();
    }
    p.birth_date = match form.get("birth_date") {
        "" => None,
        d => match time::Date::parse(d, &time::macros::format_description!("[year]-[month]-[day]"))
        {
            Ok(date) if date.year() >= 1900 && date <= OffsetDateTime::now_utc().date() => {
                Some(date)
            }
            _ => {
                errors.push(field_error(
                    "birth_date",
                    "« Date de naissance » : doit être une date valide, passée.",
                ));
                None
            }
        },
    };
    p.phone = match form.get("phone") {
        "" => None,
        x => match Phone::parse(x) {
            Ok(ph) => Some(ph),
            Err(e) => {
                errors.push(field_error("phone", format!("« Téléphone mobile » : {e}.")));
                None
            }
        },
    };
    let street = form.get("street");
    let postcode = form.get("postcode");
    let city = form.get("city");
    if !postcode.is_empty()
        && (postcode.len() != 5 || !postcode.bytes().all(|b| b.is_ascii_digit()))
    {
        errors.push(field_error("postcode", "« Code postal » : 5 chiffres."));
    }
    if street.chars().count() > 200 || city.chars().count() > 100 {
        errors.push(field_error("street", "« Adresse » : trop longue."));
    }
    p.street = (!street.is_empty()).then(|| street.to_owned());
    p.postcode = (!postcode.is_empty()).then(|| postcode.to_owned());
    p.city = (!city.is_empty()).then(|| city.to_owned());
    p.insee_code = match form.get("insee_code") {
        "" => None,
        code => match InseeCode::parse(code) {
            Ok(c) => Some(c),
            Err(_) => {
                errors.push(field_error(
                    "insee_code",
                    "« Commune de résidence » : choisissez une commune de la liste.",
                ));
                None
            }
        },
    };
    if p.notify_sms && p.phone.is_none() {
        errors.push(field_error(
            "notify_sms",
            "« Être prévenu par SMS » : indiquez d'abord un numéro de téléphone mobile.",
        ));
    }
    if errors.is_empty() {
        state.store.update_citizen_profile(citizen.id, &p).await?;
        return Ok(Redirect::to("/compte/profil?enregistre=1").into_response());
    }
    let v = ProfileValues {
        civility: form.get("civility").to_owned(),
        given_name: form.get("given_name").to_owned(),
        family_name: form.get("family_name").to_owned(),
        birth_date: form.get("birth_date").to_owned(),
        phone: form.get("phone").to_owned(),
        street: street.to_owned(),
        postcode: postcode.to_owned(),
        city: city.to_owned(),
        notify_email: p.notify_email,
        notify_sms: p.notify_sms,
    };
    let page = ProfilePage {
        layout: Layout::platform("Mon profil", &state.config.platform_name),
        csrf: visitor.csrf(&state).await?,
        communes: commune_options(&state, form.get("insee_code")).await?,
        citizen,
        errors,
        v,
        saved: false,
    };
    Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response())
}

// ---------------------------------------------------------------- export and deletion

/// `GET /compte/export`: everything Guichet holds about the citizen, as JSON (RGPD art. 15
/// and 20): profile, drafts, requests with their answers, timeline and acknowledgements.
pub(crate) async fn export(
    State(state): State<AppState>,
    visitor: Visitor,
) -> Result<Response, AppError> {
    let citizen = require_citizen(&state, &visitor, "/compte/export").await?;
    let mut requests = Vec::new();
    for summary in state.store.list_citizen_requests(citizen.id).await? {
        let Some(r) = state.store.get_citizen_request(summary.id, citizen.id).await? else {
            continue;
        };
        let events = state.store.list_request_events(r.id, true).await?;
        let documents = state.store.list_request_documents(r.id).await?;
        requests.push(serde_json::json!({
            "reference": r.reference,
            "service": summary.service_title,
            "collectivite": summary.tenant_name,
            "canal": r.channel.as_str(),
            "statut": r.status,
            "deposee_le": r.submitted_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
            "date_decision_implicite": r.deemed_decision_on.map(|d| d.to_string()),
            "reponses": r.answers,
            "historique": events.iter().map(|e| serde_json::json!({
                "date": e.event.at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
                "type": e.event.kind,
                "canal": e.event.channel.as_str(),
                "details": e.event.data,
            })).collect::<Vec<_>>(),
            "documents": documents.iter().map(|d| serde_json::json!({"titre": d.document.title, "texte": d.document.text})).collect::<Vec<_>>(),
        }));
    }
    let drafts: Vec<_> = state
        .store
        .list_drafts(citizen.id)
        .await?
        .into_iter()
        .map(|(d, title)| serde_json::json!({"service": title, "reponses": d.answers}))
        .collect();
    let body = serde_json::json!({
        "compte": &*citizen,
        "brouillons": drafts,
        "demandes": requests,
        "exporte_le": OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
    });
    let json = serde_json::to_string_pretty(&body).map_err(|e| AppError::Internal(e.into()))?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/json; charset=utf-8"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"mes-donnees-guichet.json\""),
        ],
        json,
    )
        .into_response())
}

#[derive(Template)]
#[template(path = "account/delete.html")]
struct DeletePage {
    layout: Layout,
    csrf: String,
    error: Option<String>,
}

/// `GET /compte/suppression`
pub(crate) async fn delete_form(
    State(state): State<AppState>,
    visitor: Visitor,
) -> Result<Response, AppError> {
    require_citizen(&state, &visitor, "/compte/suppression").await?;
    render(&DeletePage {
        layout: Layout::platform("Supprimer mon compte", &state.config.platform_name),
        csrf: visitor.csrf(&state).await?,
        error: None,
    })
}

/// `POST /compte/suppression`: needs the password again.
pub(crate) async fn delete(
    State(state): State<AppState>,
    visitor: Visitor,
    form: FormFields,
) -> Result<Response, AppError> {
    visitor.check_csrf(form.get("_csrf"))?;
    let citizen = require_citizen(&state, &visitor, "/compte/suppression").await?;
    let hash = state.store.find_citizen_login(&citizen.email).await?.and_then(|(_, h)| h);
    let password = form.raw("password").to_owned();
    let ok =
        tokio::task::spawn_blocking(move || hash.is_some_and(|h| verify_password(&password, &h)))
            .await
            .map_err(|e| AppError::Internal(e.into()))?;
    if !ok {
        let page = DeletePage {
            layout: Layout::platform("Supprimer mon compte", &state.config.platform_name),
            csrf: visitor.csrf(&state).await?,
            error: Some("« Mot de passe » : mot de passe incorrect.".into()),
        };
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response());
    }
    state.store.delete_citizen(citizen.id).await?;
    visitor.logout(&state).await?;
    tracing::info!(citizen.id = %citizen.id, "citizen account deleted");
    message(&state, "Compte supprimé", vec!["Votre compte et vos brouillons sont supprimés. Les demandes déjà envoyées restent archivées par les collectivités qui les traitent, comme la loi le leur impose.".into()], Some(("/", "Retour à l'accueil")))
}
