//! Territory imports on PostgreSQL: one transaction for the whole territory.

use async_trait::async_trait;
use guichet_store::{ImportOutcome, StoreResult, TerritoryImport, TerritoryStore};
use time::OffsetDateTime;

use crate::{PgStore, map_err, tenants::insert_tenant};

#[async_trait]
impl TerritoryStore for PgStore {
    async fn import_territory(&self, import: &TerritoryImport) -> StoreResult<ImportOutcome> {
        let now = OffsetDateTime::now_utc();
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        // The marker goes in first: a second import of the same name stops here, and a failed
        // import rolls the marker back with everything else.
        let marked = sqlx::query(
            "insert into imports (name, loaded_at) values ($1, $2) on conflict do nothing",
        )
        .bind(&import.name)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if marked.rows_affected() == 0 {
            return Ok(ImportOutcome::AlreadyLoaded);
        }
        for tenant in &import.tenants {
            insert_tenant(&mut tx, tenant, now).await?;
        }
        for agent in &import.agents {
            sqlx::query(
                "insert into agents (id, email, password_hash, display_name, created_at) \
                 values ($1, $2, $3, $4, $5)",
            )
            .bind(agent.id.as_uuid())
            .bind(agent.email.as_str())
            .bind(&agent.password_hash)
            .bind(&agent.display_name)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
            for (tenant, role) in &agent.memberships {
                sqlx::query(
                    "insert into memberships (agent_id, tenant_id, role) values ($1, $2, $3)",
                )
                .bind(agent.id.as_uuid())
                .bind(tenant.as_uuid())
                .bind(role.as_str())
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
            }
        }
        for c in &import.citizens {
            sqlx::query(
                "insert into citizens (id, email, password_hash, given_name, family_name, phone, \
                 insee_code, email_verified_at, created_at) \
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(c.id.as_uuid())
            .bind(c.email.as_str())
            .bind(&c.password_hash)
            .bind(&c.given_name)
            .bind(&c.family_name)
            .bind(c.phone.as_ref().map(|p| p.as_str()))
            .bind(c.insee_code.as_ref().map(|i| i.as_str()))
            .bind(c.email_verified.then_some(now))
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        }
        for service in &import.services {
            crate::services::insert_service(&mut tx, service).await?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(ImportOutcome::Loaded)
    }

    async fn has_import(&self, name: &str) -> StoreResult<bool> {
        let n: i64 = sqlx::query_scalar("select count(*) from imports where name = $1")
            .bind(name)
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(n > 0)
    }
}
