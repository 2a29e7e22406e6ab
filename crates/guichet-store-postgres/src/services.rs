//! Services on PostgreSQL.

use async_trait::async_trait;
use guichet_domain::{ServiceId, TenantId};
use guichet_store::{Service, ServiceStore, StoreResult};
use sqlx::Connection as _;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{Postgres, Transaction};

use crate::{PgStore, col, map_err, ts};

const COLUMNS: &str = "id, tenant_id, slug, template, title, category, summary, description, \
     requirements, delay_text, regime, delay, prior_check, reference_prefix, form, workflow, enabled, created_at";

fn read_service(row: &PgRow) -> StoreResult<Service> {
    Ok(Service {
        id: ServiceId::from_uuid(col(row, "id")?),
        tenant_id: TenantId::from_uuid(col(row, "tenant_id")?),
        slug: col(row, "slug")?,
        template: col(row, "template")?,
        title: col(row, "title")?,
        category: col(row, "category")?,
        summary: col(row, "summary")?,
        description: col(row, "description")?,
        requirements: col::<Json<Vec<String>>>(row, "requirements")?.0,
        delay_text: col(row, "delay_text")?,
        regime: col(row, "regime")?,
        delay: col(row, "delay")?,
        prior_check: col(row, "prior_check")?,
        reference_prefix: col(row, "reference_prefix")?,
        form: col::<Json<_>>(row, "form")?.0,
        workflow: col::<Option<Json<_>>>(row, "workflow")?.map(|w| w.0),
        enabled: col(row, "enabled")?,
        created_at: ts(row, "created_at")?,
    })
}

/// Inserts a service inside a caller's transaction.
pub(crate) async fn insert_service(
    tx: &mut Transaction<'_, Postgres>,
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
    .bind(s.created_at)
    .execute(&mut **tx)
    .await
    .map_err(map_err)?;
    Ok(())
}

#[async_trait]
impl ServiceStore for PgStore {
    async fn add_service(&self, service: &Service) -> StoreResult<()> {
        let mut conn = self.pool.get().await?;
        let mut tx = conn.begin().await.map_err(map_err)?;
        insert_service(&mut tx, service).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn get_service(&self, id: ServiceId) -> StoreResult<Service> {
        let sql = format!("select {COLUMNS} from services where id = $1");
        let row = sqlx::query(&sql)
            .bind(id.as_uuid())
            .fetch_one(&mut *self.pool.get().await?)
            .await
            .map_err(map_err)?;
        read_service(&row)
    }

    async fn find_service(&self, tenant: TenantId, slug: &str) -> StoreResult<Option<Service>> {
        let sql = format!("select {COLUMNS} from services where tenant_id = $1 and slug = $2");
        let row = sqlx::query(&sql)
            .bind(tenant.as_uuid())
            .bind(slug)
            .fetch_optional(&mut *self.pool.get().await?)
            .await
            .map_err(map_err)?;
        row.as_ref().map(read_service).transpose()
    }

    async fn list_services(&self, tenants: &[TenantId]) -> StoreResult<Vec<Service>> {
        let mut all = Vec::new();
        // A commune's catalogue spans two tenants (itself and its EPCI): two indexed queries
        // are simpler than a dynamic `in (…)` list and as fast.
        for tenant in tenants {
            let sql = format!("select {COLUMNS} from services where tenant_id = $1 and enabled");
            let rows = sqlx::query(&sql)
                .bind(tenant.as_uuid())
                .fetch_all(&mut *self.pool.get().await?)
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
