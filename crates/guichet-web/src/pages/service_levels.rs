//! A tenant's public page of service levels: the median and 90th-percentile processing time of
//! each of its services over the last twelve months (the same figures as its dashboard). A
//! tenant administrator can switch it off, with a reason that is kept and shown.

use askama::Template;
use axum::Extension;
use axum::extract::{Path, State};
use axum::response::Response;
use guichet_domain::clock::{date_fr, paris};
use guichet_store::{DashboardQuery, Tenant};
use time::{Duration, OffsetDateTime};

use crate::host::DomainTenant;
use crate::pages::dashboard::{days, number};
use crate::pages::tenant::load_tenant;
use crate::pages::{Layout, render, tenant_base};
use crate::{AppError, AppState};

/// Fewer closed requests than this and a service's times are not published: too few to mean
/// anything, and close to identifying the people concerned.
pub const MIN_PUBLISHED: i64 = 5;

pub(crate) struct Line {
    pub title: String,
    pub n: String,
    pub median: Option<String>,
    pub p90: Option<String>,
}

#[derive(Template)]
#[template(path = "service_levels.html")]
struct LevelsPage {
    layout: Layout,
    tenant: std::sync::Arc<Tenant>,
    published: bool,
    reason: Option<String>,
    lines: Vec<Line>,
    period: String,
    min: i64,
}

/// `GET /{tenant}/delais-de-traitement`
pub(crate) async fn show(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    domain: Option<Extension<DomainTenant>>,
) -> Result<Response, AppError> {
    let tenant = load_tenant(&state, &slug).await?;
    let base = tenant_base(&tenant, domain.as_deref());
    let setting = state.store.public_stats(tenant.id).await?;
    let published = setting.as_ref().is_none_or(|s| s.enabled);
    let today = paris(OffsetDateTime::now_utc()).date();
    let from_day = today.replace_year(today.year() - 1).unwrap_or(today - Duration::days(365));
    let start = |d: time::Date| {
        paris(d.midnight().assume_utc()).replace_date(d).replace_time(time::Time::MIDNIGHT)
    };
    let mut lines = Vec::new();
    if published {
        let q = DashboardQuery {
            tenants: vec![tenant.id],
            commune: None,
            service: None,
            channel: None,
            from: start(from_day),
            to: start(today + Duration::days(1)),
        };
        let times = state.store.processing_times(&q).await?;
        let mut services = state.store.list_services(&[tenant.id]).await?;
        services.retain(|s| s.enabled && s.tenant_id == tenant.id);
        services.sort_by_key(|s| crate::pages::collation_key(&s.title));
        for s in services {
            let p = times.iter().find(|p| p.service == Some(s.id));
            let n = p.map_or(0, |p| p.n);
            let shown = n >= MIN_PUBLISHED;
            lines.push(Line {
                title: s.title,
                n: number(n),
                median: p
                    .filter(|_| shown)
                    .map(|p| format!("{} jours", decimal(days(p.median_us)))),
                p90: p.filter(|_| shown).map(|p| format!("{} jours", decimal(days(p.p90_us)))),
            });
        }
    }
    let layout = Layout::tenant("Délais de traitement", &tenant, &base);
    render(&LevelsPage {
        layout,
        published,
        reason: setting.and_then(|s| (!s.enabled).then_some(s.reason).flatten()),
        lines,
        period: format!("du {} au {}", date_fr(from_day), date_fr(today)),
        min: MIN_PUBLISHED,
        tenant,
    })
}

fn decimal(x: f64) -> String {
    format!("{x:.1}").replace('.', ",")
}
