//! Citizen accounts, one-time tokens, login throttling and sessions.

use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use guichet_domain::{AgentId, CitizenId, Email, InseeCode, Phone};
use time::{Date, OffsetDateTime};

use crate::{NewEmail, NewJob, StoreResult};

/// A citizen's profile as stored.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Citizen {
    /// Identifier.
    pub id: CitizenId,
    /// Login and contact e-mail.
    pub email: Email,
    /// When the e-mail was verified.
    #[serde(with = "time::serde::rfc3339::option")]
    pub email_verified_at: Option<OffsetDateTime>,
    /// Profile.
    pub profile: Profile,
    /// When the account was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// What a citizen can edit about themselves.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Profile {
    /// "mme", "m" or none.
    pub civility: Option<String>,
    /// Given names.
    pub given_name: String,
    /// Family name.
    pub family_name: String,
    /// Birth date.
    pub birth_date: Option<Date>,
    /// Mobile phone.
    pub phone: Option<Phone>,
    /// Street line.
    pub street: Option<String>,
    /// Postcode.
    pub postcode: Option<String>,
    /// Town.
    pub city: Option<String>,
    /// INSEE code of the commune of residence (routes EPCI services to the right commune).
    pub insee_code: Option<InseeCode>,
    /// Notifications by e-mail.
    pub notify_email: bool,
    /// Notifications by SMS.
    pub notify_sms: bool,
}

/// A sign-up.
#[derive(Clone, Debug)]
pub struct NewCitizenAccount {
    /// Identifier.
    pub id: CitizenId,
    /// E-mail (unverified until the link is followed).
    pub email: Email,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// Profile.
    pub profile: Profile,
}

/// What one-time tokens are for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenPurpose {
    /// Verifying the e-mail address.
    VerifyEmail,
    /// Resetting the password.
    ResetPassword,
}

impl TokenPurpose {
    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
            Self::ResetPassword => "reset_password",
        }
    }
}

/// A one-time token to store (only its hash is kept).
#[derive(Clone, Debug)]
pub struct NewToken {
    /// SHA-256 hex of the token sent by e-mail.
    pub token_hash: String,
    /// Purpose.
    pub purpose: TokenPurpose,
    /// Expiry.
    pub expires_at: OffsetDateTime,
}

/// A server-side session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// SHA-256 hex of the cookie value (the cookie itself is never stored).
    pub token_hash: String,
    /// Logged-in citizen, if any.
    pub citizen_id: Option<CitizenId>,
    /// Logged-in agent, if any (back-office sessions are separate cookies).
    pub agent_id: Option<AgentId>,
    /// Anti-CSRF token embedded in forms.
    pub csrf_token: String,
    /// For agent sessions: whether the second factor (TOTP) was checked.
    pub mfa_ok: bool,
    /// Expiry (sliding).
    pub expires_at: OffsetDateTime,
    /// Last activity.
    pub last_seen_at: OffsetDateTime,
}

/// Citizen accounts.
#[async_trait]
pub trait AccountStore {
    /// Creates an account with its e-mail verification token, the e-mail carrying it and the
    /// job sending it, atomically. `Conflict { constraint: "citizens_email_key" }` if taken.
    async fn create_citizen(
        &self,
        account: &NewCitizenAccount,
        token: &NewToken,
        emails: &[NewEmail],
        jobs: &[NewJob],
    ) -> StoreResult<Citizen>;

    /// A citizen by id.
    async fn get_citizen(&self, id: CitizenId) -> StoreResult<Citizen>;

    /// A citizen and their password hash, by e-mail.
    async fn find_citizen_login(
        &self,
        email: &Email,
    ) -> StoreResult<Option<(Citizen, Option<String>)>>;

    /// Stores a one-time token with the e-mail carrying it.
    async fn add_citizen_token(
        &self,
        citizen: CitizenId,
        token: &NewToken,
        emails: &[NewEmail],
        jobs: &[NewJob],
    ) -> StoreResult<()>;

    /// Uses a one-time token: returns its citizen if it exists, has this purpose, is unused and
    /// unexpired, and marks it used. Using a verification token verifies the e-mail.
    async fn consume_citizen_token(
        &self,
        token_hash: &str,
        purpose: TokenPurpose,
        now: OffsetDateTime,
    ) -> StoreResult<Option<CitizenId>>;

    /// Sets a new password and ends every session of the citizen.
    async fn set_citizen_password(&self, id: CitizenId, password_hash: &str) -> StoreResult<()>;

    /// Replaces the profile.
    async fn update_citizen_profile(&self, id: CitizenId, profile: &Profile) -> StoreResult<()>;

    /// Deletes the account, its sessions, drafts and tokens. Requests stay with the
    /// administration (it must keep its records) but lose the link to the account.
    async fn delete_citizen(&self, id: CitizenId) -> StoreResult<()>;

    /// Counts a hit on a throttling key within a fixed window; returns the hits in the
    /// current window, this one included.
    async fn hit_throttle(
        &self,
        key: &str,
        window: time::Duration,
        now: OffsetDateTime,
    ) -> StoreResult<i64>;

    /// Hits so far in the current window, without counting one.
    async fn throttle_hits(
        &self,
        key: &str,
        window: time::Duration,
        now: OffsetDateTime,
    ) -> StoreResult<i64>;

    /// Forgets a throttling key (after a successful login).
    async fn clear_throttle(&self, key: &str) -> StoreResult<()>;
}

/// Counts the writes that can change a live session or its citizen's account: a session
/// ended, a password or profile changed, an address verified, an account deleted. A cache of
/// sessions reads it *before* it reads a session, and keeps that session only while the count
/// is unchanged; backends add one *after* such a write is committed, so a session read before
/// the write is never kept past it. Creating or extending a session does not count: no copy of
/// it can be stale in a way that matters (an expiry is checked on every use).
///
/// It counts the writes made through this process's store only: another process or instance
/// does not reach it, which is why such caches also keep a session only briefly.
#[derive(Debug, Default)]
pub struct AccountsVersion(AtomicU64);

impl AccountsVersion {
    /// The current count.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    /// Records a committed write (see the type's documentation).
    pub fn bump(&self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }

    /// Runs a write, then counts it, whatever its outcome: a write that failed after its
    /// commit (or that changed nothing) costs the caches one read each, never a stale session.
    pub async fn after<T>(&self, write: impl Future<Output = T>) -> T {
        let out = write.await;
        self.bump();
        out
    }
}

/// Server-side sessions.
#[async_trait]
pub trait SessionStore {
    /// The count of committed writes that can change a live session or its account (see
    /// [`AccountsVersion`]).
    fn accounts_version(&self) -> u64;

    /// Stores a new session.
    async fn create_session(&self, session: &Session) -> StoreResult<()>;

    /// A live session by token hash.
    async fn get_session(
        &self,
        token_hash: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Option<Session>>;

    /// A live session with its citizen's account, in one read: every page of a logged-in
    /// citizen needs both. The account is `None` for a session without a citizen, or whose
    /// account was deleted.
    async fn get_citizen_session(
        &self,
        token_hash: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Option<(Session, Option<Citizen>)>>;

    /// Extends a session.
    async fn touch_session(
        &self,
        token_hash: &str,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> StoreResult<()>;

    /// Ends a session.
    async fn delete_session(&self, token_hash: &str) -> StoreResult<()>;

    /// Ends every session of a citizen ("log out everywhere").
    async fn delete_citizen_sessions(&self, id: CitizenId) -> StoreResult<()>;

    /// Deletes expired sessions; returns how many.
    async fn purge_expired_sessions(&self, now: OffsetDateTime) -> StoreResult<u64>;
}
