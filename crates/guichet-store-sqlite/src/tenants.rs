//! Tenants on SQLite.

use std::sync::LazyLock;

use async_trait::async_trait;
use guichet_domain::{Slug, TenantId};
use guichet_store::records::TenantRecord;
use guichet_store::{NewJob, NewTenant, StoreError, StoreResult, Tenant, TenantStore};
use sqlx::Connection as _;
use sqlx::{Sqlite, Transaction};
use time::OffsetDateTime;

use crate::point::Columns;
use crate::{SqliteStore, jobs::insert_jobs, map_err, to_us};

const COLUMNS: &str = "id, slug, kind, name, parent_id, siren, insee_code, service_name, street, \
     postcode, city, email, phone, primary_colour, logo_url, custom_domain, created_at";

fn read_tenant(row: &impl Columns) -> StoreResult<Tenant> {
    let record = TenantRecord {
        id: row.get("id")?,
        slug: row.get("slug")?,
        kind: row.get("kind")?,
        name: row.get("name")?,
        parent_id: row.get("parent_id")?,
        siren: row.get("siren")?,
        insee_code: row.get("insee_code")?,
        service_name: row.get("service_name")?,
        street: row.get("street")?,
        postcode: row.get("postcode")?,
        city: row.get("city")?,
        email: row.get("email")?,
        phone: row.get("phone")?,
        primary_colour: row.get("primary_colour")?,
        logo_url: row.get("logo_url")?,
        custom_domain: row.get("custom_domain")?,
        created_at: row.instant("created_at")?,
    };
    Tenant::try_from(record)
}

/// A point read (`crate::point`): a submission reads the tenant that will handle it.
static BY_ID: LazyLock<String> =
    LazyLock::new(|| format!("select {COLUMNS} from tenants where id = ?1"));

/// Inserts one tenant inside a caller's transaction.
pub(crate) async fn insert_tenant(
    tx: &mut Transaction<'_, Sqlite>,
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
    .bind(to_us(now))
    .execute(&mut **tx)
    .await
    .map_err(map_err)?;
    Ok(())
}

impl SqliteStore {
    async fn tenants_where(&self, clause: &str, arg: Option<&[u8]>) -> StoreResult<Vec<Tenant>> {
        let sql = format!("select {COLUMNS} from tenants where {clause} order by name");
        let mut q = sqlx::query(&sql);
        if let Some(a) = arg {
            q = q.bind(a);
        }
        q.fetch_all(&self.read).await.map_err(map_err)?.iter().map(read_tenant).collect()
    }

    async fn tenant_by(&self, column: &str, value: &str) -> StoreResult<Option<Tenant>> {
        let sql = format!("select {COLUMNS} from tenants where {column} = $1");
        let row =
            sqlx::query(&sql).bind(value).fetch_optional(&self.read).await.map_err(map_err)?;
        row.as_ref().map(read_tenant).transpose()
    }
}

#[async_trait]
impl TenantStore for SqliteStore {
    async fn add_tenant(&self, tenant: &NewTenant, jobs: &[NewJob]) -> StoreResult<Tenant> {
        let now = OffsetDateTime::now_utc();
        let mut writer = self.write.lock().await?;
        let mut tx = writer.begin().await.map_err(map_err)?;
        insert_tenant(&mut tx, tenant, now).await?;
        insert_jobs(&mut tx, jobs, now).await?;
        tx.commit().await.map_err(map_err)?;
        self.get_tenant(tenant.id).await
    }

    async fn get_tenant(&self, id: TenantId) -> StoreResult<Tenant> {
        self.point.optional(&BY_ID, [id.as_uuid()], |r| read_tenant(r))?.ok_or(StoreError::NotFound)
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
        self.tenants_where("parent_id = $1", Some(id.as_bytes())).await
    }

    async fn count_tenants(&self) -> StoreResult<i64> {
        sqlx::query_scalar("select count(*) from tenants")
            .fetch_one(&self.read)
            .await
            .map_err(map_err)
    }
}
