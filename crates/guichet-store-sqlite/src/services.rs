//! Services on SQLite.

use std::sync::LazyLock;

use async_trait::async_trait;
use guichet_domain::{ServiceId, TenantId};
use guichet_store::{Service, ServiceStore, StoreError, StoreResult};
use sqlx::Connection as _;
use sqlx::types::Json;
use sqlx::{Sqlite, Transaction};

use crate::point::Columns;
use crate::{SqliteStore, map_err, to_us};

const COLUMNS: &str = "id, tenant_id, slug, template, title, category, summary, description, \
     requirements, delay_text, regime, delay, prior_check, reference_prefix, form, workflow, enabled, created_at";

fn corrupt(what: &'static str) -> impl Fn(serde_json::Error) -> StoreError {
    move |e| StoreError::Corrupt(format!("service {what}: {e}"))
}

fn read_service(row: &impl Columns) -> StoreResult<Service> {
    Ok(Service {
        id: ServiceId::from_uuid(row.get("id")?),
        tenant_id: TenantId::from_uuid(row.get("tenant_id")?),
        slug: row.get("slug")?,
        template: row.get("template")?,
        title: row.get("title")?,
        category: row.get("category")?,
        summary: row.get("summary")?,
        description: row.get("description")?,
        requirements: serde_json::from_str(&row.get::<String>("requirements")?)
            .map_err(corrupt("requirements"))?,
        delay_text: row.get("delay_text")?,
        regime: row.get("regime")?,
        delay: row.get("delay")?,
        prior_check: row.get("prior_check")?,
        reference_prefix: row.get("reference_prefix")?,
        form: serde_json::from_str(&row.get::<String>("form")?).map_err(corrupt("form"))?,
        workflow: row
            .get::<Option<String>>("workflow")?
            .map(|w| serde_json::from_str(&w).map_err(corrupt("workflow")))
            .transpose()?,
        enabled: row.get("enabled")?,
        created_at: row.instant("created_at")?,
    })
}

/// Point reads (`crate::point`): a service's page, its form, a submission read these.
static BY_ID: LazyLock<String> =
    LazyLock::new(|| format!("select {COLUMNS} from services where id = ?1"));
static BY_SLUG: LazyLock<String> =
    LazyLock::new(|| format!("select {COLUMNS} from services where tenant_id = ?1 and slug = ?2"));

/// Inserts a service inside a caller's transaction.
pub(crate) async fn insert_service(
    tx: &mut Transaction<'_, Sqlite>,
    s: &Service,
) -> StoreResult<()> {
    sqlx::query(
        "insert into services (id, tenant_id, slug, template, title, category, summary, description, \
         requirements, delay_text, regime, delay, prior_check, reference_prefix, form, workflow, enabled, created_at) \
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
    )
    .bind(s.id.as_uuid())
    .bind(s.tenant_id.as_uuid())
    .bind(&s.slug)
    .bind(&s.template)
    .bind(&s.title)
    .bind(&s.category)
    .bind(&s.summary)
    .bind(&s.description)
    .bind(Json(&s.requirements))
    .bind(&s.delay_text)
    .bind(&s.regime)
    .bind(&s.delay)
    .bind(s.prior_check)
    .bind(&s.reference_prefix)
    .bind(Json(&s.form))
    .bind(s.workflow.as_ref().map(Json))
    .bind(s.enabled)
    .bind(to_us(s.created_at))
    .execute(&mut **tx)
    .await
    .map_err(map_err)?;
    Ok(())
}

#[async_trait]
impl ServiceStore for SqliteStore {
    async fn add_service(&self, service: &Service) -> StoreResult<()> {
        let mut writer = self.write.lock().await?;
        let mut tx = writer.begin().await.map_err(map_err)?;
        insert_service(&mut tx, service).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn get_service(&self, id: ServiceId) -> StoreResult<Service> {
        self.point
            .optional(&BY_ID, [id.as_uuid()], |r| read_service(r))?
            .ok_or(StoreError::NotFound)
    }

    async fn find_service(&self, tenant: TenantId, slug: &str) -> StoreResult<Option<Service>> {
        self.point
            .optional(&BY_SLUG, rusqlite::params![tenant.as_uuid(), slug], |r| read_service(r))
    }

    async fn list_services(&self, tenants: &[TenantId]) -> StoreResult<Vec<Service>> {
        let mut all = Vec::new();
        // A commune's catalogue spans two tenants (itself and its EPCI): two indexed queries
        // are simpler than a dynamic `in (…)` list and as fast.
        for tenant in tenants {
            let sql = format!("select {COLUMNS} from services where tenant_id = $1 and enabled");
            let rows = sqlx::query(&sql)
                .bind(tenant.as_uuid())
                .fetch_all(&self.read)
                .await
                .map_err(map_err)?;
            for row in &rows {
                all.push(read_service(row)?);
            }
        }
        all.sort_by(|a, b| a.category.cmp(&b.category).then_with(|| a.title.cmp(&b.title)));
        Ok(all)
    }
}
