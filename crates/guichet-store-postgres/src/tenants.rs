//! Tenants on PostgreSQL.

use async_trait::async_trait;
use guichet_domain::{Slug, TenantId};
use guichet_store::records::TenantRecord;
use guichet_store::{NewJob, NewTenant, StoreResult, Tenant, TenantStore};
use sqlx::Connection as _;
use sqlx::postgres::PgRow;
use sqlx::{Postgres, Row, Transaction};
use time::OffsetDateTime;

use crate::{PgStore, jobs::insert_jobs, map_err};

const COLUMNS: &str = "id, slug, kind, name, parent_id, siren, insee_code, service_name, street, \
     postcode, city, email, phone, primary_colour, logo_url, custom_domain, created_at";

fn read_tenant(row: &PgRow) -> StoreResult<Tenant> {
    let record = TenantRecord {
        id: row.try_get("id").map_err(map_err)?,
        slug: row.try_get("slug").map_err(map_err)?,
        kind: row.try_get("kind").map_err(map_err)?,
        name: row.try_get("name").map_err(map_err)?,
        parent_id: row.try_get("parent_id").map_err(map_err)?,
        siren: row.try_get("siren").map_err(map_err)?,
        insee_code: row.try_get("insee_code").map_err(map_err)?,
        service_name: row.try_get("service_name").map_err(map_err)?,
        street: row.try_get("street").map_err(map_err)?,
        postcode: row.try_get("postcode").map_err(map_err)?,
        city: row.try_get("city").map_err(map_err)?,
        email: row.try_get("email").map_err(map_err)?,
        phone: row.try_get("phone").map_err(map_err)?,
        primary_colour: row.try_get("primary_colour").map_err(map_err)?,
        logo_url: row.try_get("logo_url").map_err(map_err)?,
        custom_domain: row.try_get("custom_domain").map_err(map_err)?,
        created_at: row.try_get("created_at").map_err(map_err)?,
    };
    Tenant::try_from(record)
}

/// Inserts one tenant inside a caller's transaction.
pub(crate) async fn insert_tenant(
    tx: &mut Transaction<'_, Postgres>,
    t: &NewTenant,
    now: OffsetDateTime,
) -> StoreResult<()> {
    sqlx::query(
        "insert into tenants (id, slug, kind, name, parent_id, siren, insee_code, service_name, \
         street, postcode, city, email, phone, primary_colour, logo_url, custom_domain, created_at) \
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
    )
    .bind(t.id.as_uuid())
    .bind(t.slug.as_str())
    .bind(t.kind.as_str())
    .bind(&t.name)
    .bind(t.parent_id.map(|p| p.as_uuid()))
    .bind(t.siren.as_str())
    .bind(t.insee_code.as_ref().map(|c| c.as_str()))
    .bind(&t.contact.service_name)
    .bind(&t.contact.street)
    .bind(&t.contact.postcode)
    .bind(&t.contact.city)
    .bind(t.contact.email.as_str())
    .bind(t.contact.phone.as_str())
    .bind(t.branding.primary_colour.as_str())
    .bind(&t.branding.logo_url)
    .bind(t.custom_domain.as_ref().map(|d| d.to_lowercase()))
    .bind(now)
    .execute(&mut **tx)
    .await
    .map_err(map_err)?;
    Ok(())
}

impl PgStore {
    async fn tenants_where(
        &self,
        clause: &str,
        arg: Option<uuid::Uuid>,
    ) -> StoreResult<Vec<Tenant>> {
        let sql = format!("select {COLUMNS} from tenants where {clause} order by name");
        let mut q = sqlx::query(&sql);
        if let Some(a) = arg {
            q = q.bind(a);
        }
        q.fetch_all(&mut *self.pool.get().await?)
            .await
            .map_err(map_err)?
            .iter()
            .map(read_tenant)
            .collect()
    }

    async fn tenant_by(&self, column: &str, value: &str) -> StoreResult<Option<Tenant>> {
        let sql = format!("select {COLUMNS} from tenants where {column} = $1");
        let row = sqlx::query(&sql)
            .bind(value)
            .fetch_optional(&mut *self.pool.get().await?)
            .await
            .map_err(map_err)?;
        row.as_ref().map(read_tenant).transpose()
    }
}

#[async_trait]
impl TenantStore for PgStore {
    async fn add_tenant(&self, tenant: &NewTenant, jobs: &[NewJob]) -> StoreResult<Tenant> {
        let now = OffsetDateTime::now_utc();
        let mut conn = self.pool.get().await?;
        let mut tx = conn.begin().await.map_err(map_err)?;
        insert_tenant(&mut tx, tenant, now).await?;
        insert_jobs(&mut tx, jobs, now).await?;
        tx.commit().await.map_err(map_err)?;
        // Given back before the read below takes a connection of its own.
        drop(conn);
        self.get_tenant(tenant.id).await
    }

    async fn get_tenant(&self, id: TenantId) -> StoreResult<Tenant> {
        let sql = format!("select {COLUMNS} from tenants where id = $1");
        let row = sqlx::query(&sql)
            .bind(id.as_uuid())
            .fetch_one(&mut *self.pool.get().await?)
            .await
            .map_err(map_err)?;
        read_tenant(&row)
    }

    async fn find_tenant_by_slug(&self, slug: &Slug) -> StoreResult<Option<Tenant>> {
        self.tenant_by("slug", slug.as_str()).await
    }

    async fn find_tenant_by_domain(&self, host: &str) -> StoreResult<Option<Tenant>> {
        self.tenant_by("custom_domain", &host.to_lowercase()).await
    }

    async fn list_root_tenants(&self) -> StoreResult<Vec<Tenant>> {
        self.tenants_where("parent_id is null", None).await
    }

    async fn list_member_tenants(&self, parent: TenantId) -> StoreResult<Vec<Tenant>> {
        let id = parent.as_uuid();
        self.tenants_where("parent_id = $1", Some(id)).await
    }

    async fn count_tenants(&self) -> StoreResult<i64> {
        sqlx::query_scalar("select count(*) from tenants")
            .fetch_one(&mut *self.pool.get().await?)
            .await
            .map_err(map_err)
    }
}
