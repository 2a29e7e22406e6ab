//! Citizen accounts, tokens, throttling and sessions on PostgreSQL.

use async_trait::async_trait;
use guichet_domain::{AgentId, CitizenId, Email, InseeCode, Phone};
use guichet_store::{
    AccountStore, Citizen, NewCitizenAccount, NewEmail, NewJob, NewToken, Profile, Session,
    SessionStore, StoreError, StoreResult, TokenPurpose,
};
use sqlx::Connection as _;
use sqlx::postgres::PgRow;
use sqlx::{Postgres, Transaction};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::jobs::insert_jobs;
use crate::outbox::insert_emails;
use crate::{PgStore, col, map_err, ts, ts_opt};

const CITIZEN_COLUMNS: &str = "id, email, email_verified_at, civility, given_name, family_name, \
     birth_date, phone, street, postcode, city, insee_code, notify_email, notify_sms, created_at";

/// A live session with its citizen's account (read on every page of a logged-in citizen, so
/// built once). The session's and the account's column names do not overlap.
static CITIZEN_SESSION_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let citizen: Vec<String> = CITIZEN_COLUMNS.split(", ").map(|c| format!("c.{c}")).collect();
    format!(
        "select s.token_hash, s.citizen_id, s.agent_id, s.csrf_token, s.expires_at, \
         s.last_seen_at, s.mfa_ok, {} from sessions s left join citizens c on c.id = s.citizen_id \
         where s.token_hash = $1 and s.expires_at > $2",
        citizen.join(", ")
    )
});

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_owned())
}

fn read_citizen(row: &PgRow) -> StoreResult<Citizen> {
    let email: String = col(row, "email")?;
    let phone: Option<String> = col(row, "phone")?;
    let insee: Option<String> = col(row, "insee_code")?;
    Ok(Citizen {
        id: CitizenId::from_uuid(col(row, "id")?),
        email: Email::parse(&email).map_err(|_| corrupt("citizen e-mail"))?,
        email_verified_at: ts_opt(row, "email_verified_at")?,
        profile: Profile {
            civility: col(row, "civility")?,
            given_name: col(row, "given_name")?,
            family_name: col(row, "family_name")?,
            birth_date: col(row, "birth_date")?,
            phone: phone
                .map(|p| Phone::parse(&p).map_err(|_| corrupt("citizen phone")))
                .transpose()?,
            street: col(row, "street")?,
            postcode: col(row, "postcode")?,
            city: col(row, "city")?,
            insee_code: insee
                .map(|c| InseeCode::parse(&c).map_err(|_| corrupt("citizen INSEE code")))
                .transpose()?,
            notify_email: col(row, "notify_email")?,
            notify_sms: col(row, "notify_sms")?,
        },
        created_at: ts(row, "created_at")?,
    })
}

async fn insert_token(
    tx: &mut Transaction<'_, Postgres>,
    citizen: CitizenId,
    token: &NewToken,
    now: OffsetDateTime,
) -> StoreResult<()> {
    sqlx::query(
        "insert into account_tokens (token_hash, citizen_id, purpose, expires_at, created_at) \
         values ($1, $2, $3, $4, $5)",
    )
    .bind(&token.token_hash)
    .bind(citizen.as_uuid())
    .bind(token.purpose.as_str())
    .bind(token.expires_at)
    .bind(now)
    .execute(&mut **tx)
    .await
    .map_err(map_err)?;
    Ok(())
}

#[async_trait]
impl AccountStore for PgStore {
    async fn create_citizen(
        &self,
        account: &NewCitizenAccount,
        token: &NewToken,
        emails: &[NewEmail],
        jobs: &[NewJob],
    ) -> StoreResult<Citizen> {
        let now = OffsetDateTime::now_utc();
        let p = &account.profile;
        let mut conn = self.pool.get().await?;
        let mut tx = conn.begin().await.map_err(map_err)?;
        sqlx::query(
            "insert into citizens (id, email, password_hash, civility, given_name, family_name, \
             birth_date, phone, street, postcode, city, insee_code, notify_email, notify_sms, created_at) \
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .bind(account.id.as_uuid())
        .bind(account.email.as_str())
        .bind(&account.password_hash)
        .bind(&p.civility)
        .bind(&p.given_name)
        .bind(&p.family_name)
        .bind(p.birth_date)
        .bind(p.phone.as_ref().map(|x| x.as_str()))
        .bind(&p.street)
        .bind(&p.postcode)
        .bind(&p.city)
        .bind(p.insee_code.as_ref().map(|x| x.as_str()))
        .bind(p.notify_email)
        .bind(p.notify_sms)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        insert_token(&mut tx, account.id, token, now).await?;
        insert_emails(&mut tx, emails, now).await?;
        insert_jobs(&mut tx, jobs, now).await?;
        tx.commit().await.map_err(map_err)?;
        // Given back before the read below takes a connection of its own.
        drop(conn);
        self.get_citizen(account.id).await
    }

    async fn get_citizen(&self, id: CitizenId) -> StoreResult<Citizen> {
        let sql = format!("select {CITIZEN_COLUMNS} from citizens where id = $1");
        let row = sqlx::query(&sql)
            .bind(id.as_uuid())
            .fetch_one(&mut *self.pool.get().await?)
            .await
            .map_err(map_err)?;
        read_citizen(&row)
    }

    async fn find_citizen_login(
        &self,
        email: &Email,
    ) -> StoreResult<Option<(Citizen, Option<String>)>> {
        let sql = format!("select {CITIZEN_COLUMNS}, password_hash from citizens where email = $1");
        let row = sqlx::query(&sql)
            .bind(email.as_str())
            .fetch_optional(&mut *self.pool.get().await?)
            .await
            .map_err(map_err)?;
        match row {
            Some(row) => Ok(Some((read_citizen(&row)?, col(&row, "password_hash")?))),
            None => Ok(None),
        }
    }

    async fn add_citizen_token(
        &self,
        citizen: CitizenId,
        token: &NewToken,
        emails: &[NewEmail],
        jobs: &[NewJob],
    ) -> StoreResult<()> {
        let now = OffsetDateTime::now_utc();
        let mut conn = self.pool.get().await?;
        let mut tx = conn.begin().await.map_err(map_err)?;
        insert_token(&mut tx, citizen, token, now).await?;
        insert_emails(&mut tx, emails, now).await?;
        insert_jobs(&mut tx, jobs, now).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn consume_citizen_token(
        &self,
        token_hash: &str,
        purpose: TokenPurpose,
        now: OffsetDateTime,
    ) -> StoreResult<Option<CitizenId>> {
        self.accounts
            .after(async {
            let mut conn = self.pool.get().await?;
            let mut tx = conn.begin().await.map_err(map_err)?;
            let row = sqlx::query(
                "update account_tokens set used_at = $3 \
                 where token_hash = $1 and purpose = $2 and used_at is null and expires_at > $3 \
                 returning citizen_id",
            )
            .bind(token_hash)
            .bind(purpose.as_str())
            .bind(now)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
            let Some(row) = row else { return Ok(None) };
            let id = CitizenId::from_uuid(col::<Uuid>(&row, "citizen_id")?);
            if purpose == TokenPurpose::VerifyEmail {
                sqlx::query(
                    "update citizens set email_verified_at = coalesce(email_verified_at, $2) where id = $1",
                )
                .bind(id.as_uuid())
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
            }
            tx.commit().await.map_err(map_err)?;
            Ok(Some(id))
            })
            .await
    }

    async fn set_citizen_password(&self, id: CitizenId, password_hash: &str) -> StoreResult<()> {
        self.accounts
            .after(async {
                let mut conn = self.pool.get().await?;
                let mut tx = conn.begin().await.map_err(map_err)?;
                let done = sqlx::query("update citizens set password_hash = $2 where id = $1")
                    .bind(id.as_uuid())
                    .bind(password_hash)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                sqlx::query("delete from sessions where citizen_id = $1")
                    .bind(id.as_uuid())
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                tx.commit().await.map_err(map_err)
            })
            .await
    }

    async fn update_citizen_profile(&self, id: CitizenId, p: &Profile) -> StoreResult<()> {
        self.accounts
            .after(async {
            let done = sqlx::query(
                "update citizens set civility = $2, given_name = $3, family_name = $4, birth_date = $5, \
                 phone = $6, street = $7, postcode = $8, city = $9, insee_code = $10, \
                 notify_email = $11, notify_sms = $12 where id = $1",
            )
            .bind(id.as_uuid())
            .bind(&p.civility)
            .bind(&p.given_name)
            .bind(&p.family_name)
            .bind(p.birth_date)
            .bind(p.phone.as_ref().map(|x| x.as_str()))
            .bind(&p.street)
            .bind(&p.postcode)
            .bind(&p.city)
            .bind(p.insee_code.as_ref().map(|x| x.as_str()))
            .bind(p.notify_email)
            .bind(p.notify_sms)
            .execute(&mut *self.pool.get().await?)
            .await
            .map_err(map_err)?;
            if done.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
            })
            .await
    }

    async fn delete_citizen(&self, id: CitizenId) -> StoreResult<()> {
        self.accounts
            .after(async {
                let mut conn = self.pool.get().await?;
                let mut tx = conn.begin().await.map_err(map_err)?;
                for sql in [
                    "delete from drafts where citizen_id = $1",
                    "delete from sessions where citizen_id = $1",
                    "delete from account_tokens where citizen_id = $1",
                    "update requests set citizen_id = null where citizen_id = $1",
                    "update files set citizen_id = null where citizen_id = $1",
                    "delete from citizens where id = $1",
                ] {
                    sqlx::query(sql).bind(id.as_uuid()).execute(&mut *tx).await.map_err(map_err)?;
                }
                tx.commit().await.map_err(map_err)
            })
            .await
    }

    async fn hit_throttle(
        &self,
        key: &str,
        window: Duration,
        now: OffsetDateTime,
    ) -> StoreResult<i64> {
        // A window that has ended restarts at 1.
        let row = sqlx::query(
            "insert into throttle (key, window_start, hits) values ($1, $2, 1) \
             on conflict (key) do update set \
               hits = case when throttle.window_start < $3 then 1 else throttle.hits + 1 end, \
               window_start = case when throttle.window_start < $3 then $2 else throttle.window_start end \
             returning hits",
        )
        .bind(key)
        .bind(now)
        .bind(now - window)
        .fetch_one(&mut *self.pool.get().await?)
        .await
        .map_err(map_err)?;
        col::<i64>(&row, "hits")
    }

    async fn throttle_hits(
        &self,
        key: &str,
        window: Duration,
        now: OffsetDateTime,
    ) -> StoreResult<i64> {
        let hits: Option<i64> =
            sqlx::query_scalar("select hits from throttle where key = $1 and window_start >= $2")
                .bind(key)
                .bind(now - window)
                .fetch_optional(&mut *self.pool.get().await?)
                .await
                .map_err(map_err)?;
        Ok(hits.unwrap_or(0))
    }

    async fn clear_throttle(&self, key: &str) -> StoreResult<()> {
        sqlx::query("delete from throttle where key = $1")
            .bind(key)
            .execute(&mut *self.pool.get().await?)
            .await
            .map_err(map_err)?;
        Ok(())
    }
}

fn read_session(row: &PgRow) -> StoreResult<Session> {
    Ok(Session {
        token_hash: col(row, "token_hash")?,
        citizen_id: col::<Option<Uuid>>(row, "citizen_id")?.map(CitizenId::from_uuid),
        agent_id: col::<Option<Uuid>>(row, "agent_id")?.map(AgentId::from_uuid),
        csrf_token: col(row, "csrf_token")?,
        mfa_ok: col(row, "mfa_ok")?,
        expires_at: ts(row, "expires_at")?,
        last_seen_at: ts(row, "last_seen_at")?,
    })
}

#[async_trait]
impl SessionStore for PgStore {
    fn accounts_version(&self) -> u64 {
        self.accounts.get()
    }

    async fn create_session(&self, s: &Session) -> StoreResult<()> {
        sqlx::query(
            "insert into sessions (token_hash, citizen_id, agent_id, csrf_token, created_at, \
             expires_at, last_seen_at, mfa_ok) values ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&s.token_hash)
        .bind(s.citizen_id.map(|c| c.as_uuid()))
        .bind(s.agent_id.map(|a| a.as_uuid()))
        .bind(&s.csrf_token)
        .bind(s.last_seen_at)
        .bind(s.expires_at)
        .bind(s.last_seen_at)
        .bind(s.mfa_ok)
        .execute(&mut *self.pool.get().await?)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn get_session(
        &self,
        token_hash: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Option<Session>> {
        let row = sqlx::query(
            "select token_hash, citizen_id, agent_id, csrf_token, expires_at, last_seen_at, mfa_ok \
             from sessions where token_hash = $1 and expires_at > $2",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&mut *self.pool.get().await?)
        .await
        .map_err(map_err)?;
        row.as_ref().map(read_session).transpose()
    }

    async fn get_citizen_session(
        &self,
        token_hash: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Option<(Session, Option<Citizen>)>> {
        let row = sqlx::query(&CITIZEN_SESSION_SQL)
            .bind(token_hash)
            .bind(now)
            .fetch_optional(&mut *self.pool.get().await?)
            .await
            .map_err(map_err)?;
        let Some(row) = row else { return Ok(None) };
        let citizen = match col::<Option<Uuid>>(&row, "id")? {
            Some(_) => Some(read_citizen(&row)?),
            None => None,
        };
        Ok(Some((read_session(&row)?, citizen)))
    }

    async fn touch_session(
        &self,
        token_hash: &str,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        sqlx::query("update sessions set expires_at = $2, last_seen_at = $3 where token_hash = $1")
            .bind(token_hash)
            .bind(expires_at)
            .bind(now)
            .execute(&mut *self.pool.get().await?)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn delete_session(&self, token_hash: &str) -> StoreResult<()> {
        self.accounts
            .after(async {
                sqlx::query("delete from sessions where token_hash = $1")
                    .bind(token_hash)
                    .execute(&mut *self.pool.get().await?)
                    .await
                    .map_err(map_err)?;
                Ok(())
            })
            .await
    }

    async fn delete_citizen_sessions(&self, id: CitizenId) -> StoreResult<()> {
        self.accounts
            .after(async {
                sqlx::query("delete from sessions where citizen_id = $1")
                    .bind(id.as_uuid())
                    .execute(&mut *self.pool.get().await?)
                    .await
                    .map_err(map_err)?;
                Ok(())
            })
            .await
    }

    async fn purge_expired_sessions(&self, now: OffsetDateTime) -> StoreResult<u64> {
        let done = sqlx::query("delete from sessions where expires_at <= $1")
            .bind(now)
            .execute(&mut *self.pool.get().await?)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected())
    }
}
