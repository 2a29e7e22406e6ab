//! Dashboards for decision makers: a tenant's, or its EPCI's consolidated one broken down by
//! member commune. Every figure is aggregated in the database from the request rows the inbox
//! reads, compared with the previous period of the same length, drawn as an accessible SVG
//! chart with its data table, linked to the inbox view behind it (for agents who may see those
//! requests), and exportable as CSV, ODS and XLSX. No JavaScript; printable.

use std::collections::{BTreeMap, HashSet};

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use guichet_domain::clock::{date_fr, date_short, paris};
use guichet_domain::request::Channel;
use guichet_domain::{ServiceId, TenantId, TenantKind};
use guichet_store::{
    Acknowledgements, Agent, DashboardQuery, Percentiles, Service, Tenant, VolumeCount,
};
use time::{Date, Duration, OffsetDateTime};

use crate::pages::agents::{layout, require_agent};
use crate::pages::backoffice::Choice;
use crate::pages::{Layout, render, url_encode};
use crate::session::AgentVisitor;
use crate::sheets::{self, Cell};
use crate::{AppError, AppState};

const DUE_SOON_DAYS: i64 = 7;
const CHANNELS: [Channel; 6] = [
    Channel::Web,
    Channel::Email,
    Channel::Sms,
    Channel::Courrier,
    Channel::Guichet,
    Channel::Telephone,
];

/// The filters, as in the query string.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub(crate) struct Filters {
    collectivite: Option<String>,
    du: Option<String>,
    au: Option<String>,
    demarche: Option<String>,
    canal: Option<String>,
    commune: Option<String>,
    table: Option<String>,
}

fn date(s: Option<&str>) -> Option<Date> {
    crate::pages::counter::parse_date(s?)
}

fn start_of(d: Date) -> OffsetDateTime {
    paris(d.midnight().assume_utc()).replace_date(d).replace_time(time::Time::MIDNIGHT)
}

/// What the dashboard covers, resolved and checked.
struct Scope {
    tenant: Tenant,
    /// The handling tenants counted: the tenant, plus its member communes for an EPCI.
    tenants: Vec<Tenant>,
    consolidated: bool,
    services: Vec<Service>,
    /// Tenants whose requests the agent may see in the inbox.
    visible: HashSet<TenantId>,
    from_day: Date,
    to_day: Date,
    query: DashboardQuery,
    previous: DashboardQuery,
    errors: Vec<String>,
}

async fn scope(state: &AppState, agent: &Agent, f: &Filters) -> Result<Scope, AppError> {
    let mut errors = Vec::new();
    // The tenant: as asked, else the agent's EPCI if any, else their first tenant.
    let chosen: Option<TenantId> = f
        .collectivite
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| s.parse())
        .transpose()
        .map_err(|_| AppError::NotFound)?;
    let tenant_id = match chosen {
        Some(t) => t,
        None => {
            let mut first = None;
            for m in &agent.memberships {
                let t = state.store.get_tenant(m.tenant_id).await?;
                if t.kind == TenantKind::Epci {
                    first = Some(t.id);
                    break;
                }
                first.get_or_insert(t.id);
            }
            first.ok_or_else(|| {
                AppError::Forbidden("Vous n'êtes membre d'aucune collectivité.".into())
            })?
        }
    };
    if agent.role_in(tenant_id).is_none() {
        return Err(AppError::NotFound);
    }
    let tenant = state.store.get_tenant(tenant_id).await?;
    let consolidated = tenant.kind == TenantKind::Epci;
    let mut tenants = vec![tenant.clone()];
    if consolidated {
        tenants.extend(state.store.list_member_tenants(tenant.id).await?);
    }
    let ids: Vec<TenantId> = tenants.iter().map(|t| t.id).collect();
    let services = state.store.list_services(&ids).await?;
    let visible: HashSet<TenantId> = agent.memberships.iter().map(|m| m.tenant_id).collect();

    let today = paris(OffsetDateTime::now_utc()).date();
    let mut to_day = today;
    let mut from_day = today - Duration::days(29);
    match (f.au.as_deref().filter(|s| !s.is_empty()), date(f.au.as_deref())) {
        (Some(_), None) => errors.push(
            "« Au » : date invalide (jj/mm/aaaa) ; la période par défaut est affichée.".into(),
        ),
        (_, Some(d)) => to_day = d,
        _ => {}
    }
    match (f.du.as_deref().filter(|s| !s.is_empty()), date(f.du.as_deref())) {
        (Some(_), None) => errors.push(
            "« Du » : date invalide (jj/mm/aaaa) ; la période par défaut est affichée.".into(),
        ),
        (_, Some(d)) => from_day = d,
        _ => from_day = to_day - Duration::days(29),
    }
    if from_day > to_day {
        errors.push(
            "« Du » : la période commence après sa fin ; les 30 derniers jours sont affichés."
                .into(),
        );
        to_day = today;
        from_day = today - Duration::days(29);
    }
    if to_day - from_day > Duration::days(3 * 366) {
        errors.push("« Du » : trois ans au plus ; la période a été raccourcie.".into());
        from_day = to_day - Duration::days(3 * 366);
    }
    let service: Option<ServiceId> =
        f.demarche.as_deref().filter(|s| !s.is_empty()).and_then(|s| s.parse().ok());
    let service = service.filter(|s| services.iter().any(|x| x.id == *s));
    let channel = f.canal.as_deref().and_then(Channel::parse);
    let commune: Option<TenantId> =
        f.commune.as_deref().filter(|s| !s.is_empty()).and_then(|s| s.parse().ok());
    let commune = commune.filter(|c| ids.contains(c));
    let from = start_of(from_day);
    let to = start_of(to_day + Duration::days(1));
    let query = DashboardQuery { tenants: ids, commune, service, channel, from, to };
    let previous = DashboardQuery { from: from - (to - from), to: from, ..query.clone() };
    Ok(Scope {
        tenant,
        tenants,
        consolidated,
        services,
        visible,
        from_day,
        to_day,
        query,
        previous,
        errors,
    })
}

impl Scope {
    /// The inbox view behind a figure, when the agent may see every request it counts.
    fn inbox(&self, extra: &[(&str, String)], tenant: Option<TenantId>) -> Option<String> {
        let tenants: Vec<TenantId> = match tenant {
            Some(t) => vec![t],
            None => self.query.tenants.clone(),
        };
        if !tenants.iter().all(|t| self.visible.contains(t)) {
            return None;
        }
        let mut params: Vec<(String, String)> = Vec::new();
        if tenants.len() == 1 {
            params.push(("collectivite".into(), tenants[0].to_string()));
        }
        if let Some(s) = self.query.service {
            params.push(("demarche".into(), s.to_string()));
        }
        if let Some(c) = self.query.channel {
            params.push(("canal".into(), c.as_str().into()));
        }
        if let Some(c) = self.query.commune {
            params.push(("commune".into(), c.to_string()));
        }
        for (k, v) in extra {
            params.retain(|(pk, _)| pk != k);
            params.push(((*k).to_owned(), v.clone()));
        }
        Some(format!(
            "/agents/?{}",
            params
                .iter()
                .map(|(k, v)| format!("{k}={}", url_encode(v)))
                .collect::<Vec<_>>()
                .join("&")
        ))
    }

    fn period(&self) -> [(&'static str, String); 2] {
        [("du", self.from_day.to_string()), ("au", self.to_day.to_string())]
    }

    fn service(&self, id: ServiceId) -> Option<&Service> {
        self.services.iter().find(|s| s.id == id)
    }

    fn tenant_name(&self, id: TenantId) -> String {
        self.tenants
            .iter()
            .find(|t| t.id == id)
            .map_or_else(|| "Autre collectivité".into(), |t| t.name.clone())
    }

    /// The query string of the current filters (for exports and links between views).
    fn query_string(&self) -> String {
        let mut p = vec![
            ("collectivite", self.tenant.id.to_string()),
            ("du", self.from_day.to_string()),
            ("au", self.to_day.to_string()),
        ];
        if let Some(s) = self.query.service {
            p.push(("demarche", s.to_string()));
        }
        if let Some(c) = self.query.channel {
            p.push(("canal", c.as_str().to_owned()));
        }
        if let Some(c) = self.query.commune {
            p.push(("commune", c.to_string()));
        }
        p.iter().map(|(k, v)| format!("{k}={}", url_encode(v))).collect::<Vec<_>>().join("&")
    }
}

// ---------------------------------------------------------------- figures

/// French number with a narrow no-break space between thousands.
pub(crate) fn number(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('\u{202f}');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

fn decimal(x: f64) -> String {
    format!("{x:.1}").replace('.', ",")
}

/// A duration in days (one decimal), from microseconds.
pub(crate) fn days(us: i64) -> f64 {
    (us as f64 / 86_400_000_000.0 * 10.0).round() / 10.0
}

fn hours(us: i64) -> f64 {
    (us as f64 / 3_600_000_000.0 * 10.0).round() / 10.0
}

fn trend(now: f64, before: f64) -> String {
    if before == 0.0 {
        return if now == 0.0 { "stable".into() } else { "nouveau".into() };
    }
    let pct = ((now - before) / before * 100.0).round() as i64;
    match pct {
        0 => "stable".into(),
        p if p > 0 => format!("+{p} %"),
        p => format!("{p} %").replace('-', "−"),
    }
}

/// A headline figure.
pub(crate) struct Kpi {
    pub label: &'static str,
    pub value: String,
    pub previous: String,
    pub trend: String,
    pub href: Option<String>,
}

/// A bar of a chart.
pub(crate) struct Bar {
    pub label: String,
    pub value: String,
    pub width: f64,
    pub y: i64,
}

/// A table, with its chart when it has one, its export key and the inbox links of its rows.
pub(crate) struct Table {
    pub key: &'static str,
    pub title: String,
    pub header: Vec<&'static str>,
    pub rows: Vec<Vec<Cell>>,
    pub links: Vec<Option<String>>,
    pub bars: Vec<Bar>,
    /// Chart summary for screen readers (the table holds the detail).
    pub summary: String,
}

impl Table {
    fn display(c: &Cell) -> String {
        match c {
            Cell::Text(t) => t.clone(),
            Cell::Number(n) if n.fract() == 0.0 => number(*n as i64),
            Cell::Number(n) => decimal(*n),
        }
    }

    /// Rows as displayed.
    pub fn shown(&self) -> Vec<(Vec<String>, Option<String>)> {
        self.rows
            .iter()
            .zip(self.links.iter())
            .map(|(r, l)| (r.iter().map(Self::display).collect(), l.clone()))
            .collect()
    }

    pub fn chart_height(&self) -> i64 {
        self.bars.len() as i64 * 38 + 8
    }
}

/// Bars scaled on the largest value, for the column `col` of rows labelled by column 0.
fn bars(rows: &[Vec<Cell>], col: usize) -> Vec<Bar> {
    let values: Vec<f64> = rows
        .iter()
        .map(|r| match r.get(col) {
            Some(Cell::Number(n)) => *n,
            _ => 0.0,
        })
        .collect();
    let max = values.iter().copied().fold(0.0f64, f64::max);
    rows.iter()
        .zip(values)
        .enumerate()
        .map(|(i, (r, v))| Bar {
            label: r.first().map(Table::display).unwrap_or_default(),
            value: Table::display(&Cell::Number(v)),
            width: if max > 0.0 { (v / max * 100.0 * 10.0).round() / 10.0 } else { 0.0 },
            y: i as i64 * 38 + 4,
        })
        .collect()
}

/// Everything the page shows.
pub(crate) struct Figures {
    pub kpis: Vec<Kpi>,
    pub tables: Vec<Table>,
}

fn sum(v: &[VolumeCount]) -> i64 {
    v.iter().map(|c| c.n).sum()
}

fn overall(p: &[Percentiles]) -> Option<&Percentiles> {
    p.iter().find(|x| x.service.is_none())
}

/// How many of a dashboard's queries run at the same time.
const QUERIES_AT_ONCE: usize = 3;

/// Runs `f` once one of `permits` is free.
async fn limited<T>(
    permits: &tokio::sync::Semaphore,
    f: impl std::future::Future<Output = T>,
) -> T {
    // The semaphore is never closed, so `acquire` cannot fail; without a permit it would
    // simply run unthrottled.
    let _permit = permits.acquire().await.ok();
    f.await
}

async fn figures(state: &AppState, s: &Scope) -> Result<Figures, AppError> {
    let store = &state.store;
    let now = OffsetDateTime::now_utc();
    let at = s.query.to.min(now);
    // The queries are independent and each reads its own index: run together, they use both
    // the database's connections and the machine's cores. At most a few at a time, so that one
    // dashboard never takes every pooled connection from the citizens' pages.
    let permits = tokio::sync::Semaphore::new(QUERIES_AT_ONCE);
    let p = &permits;
    let (
        volumes,
        before,
        processing,
        processing_before,
        first,
        first_before,
        backlog,
        backlog_before,
        acks,
        acks_before,
        hourly,
    ) = tokio::try_join!(
        limited(p, store.volume_counts(&s.query)),
        limited(p, store.volume_counts(&s.previous)),
        limited(p, store.processing_times(&s.query)),
        limited(p, store.processing_times(&s.previous)),
        limited(p, store.first_response_times(&s.query)),
        limited(p, store.first_response_times(&s.previous)),
        limited(p, store.backlog(&s.query, at, DUE_SOON_DAYS)),
        limited(p, store.backlog(&s.previous, s.previous.to, DUE_SOON_DAYS)),
        limited(p, store.acknowledgements(&s.query)),
        limited(p, store.acknowledgements(&s.previous)),
        limited(p, store.volume_by_hour(&s.query)),
    )?;

    let period = s.period();
    let total = sum(&volumes);
    let share = |a: &Acknowledgements| {
        if a.due == 0 { None } else { Some(a.in_time as f64 * 100.0 / a.due as f64) }
    };
    let pct = |x: Option<f64>| x.map_or_else(|| "—".to_owned(), |v| format!("{} %", decimal(v)));
    let median_days = |p: Option<&Percentiles>| {
        p.map_or_else(|| "—".to_owned(), |p| format!("{} j", decimal(days(p.median_us))))
    };
    let median_hours = |p: &Option<Percentiles>| {
        p.as_ref().map_or_else(|| "—".to_owned(), |p| format!("{} h", decimal(hours(p.median_us))))
    };
    let kpis = vec![
        Kpi {
            label: "Demandes reçues",
            value: number(total),
            previous: number(sum(&before)),
            trend: trend(total as f64, sum(&before) as f64),
            href: s.inbox(&period, None),
        },
        Kpi {
            label: "Délai de traitement médian",
            value: median_days(overall(&processing)),
            previous: median_days(overall(&processing_before)),
            trend: trend(
                overall(&processing).map_or(0.0, |p| days(p.median_us)),
                overall(&processing_before).map_or(0.0, |p| days(p.median_us)),
            ),
            href: s.inbox(&[("etat", "closed".into())], None),
        },
        Kpi {
            label: "Première réponse (médiane)",
            value: median_hours(&first.0),
            previous: median_hours(&first_before.0),
            trend: trend(
                first.0.as_ref().map_or(0.0, |p| hours(p.median_us)),
                first_before.0.as_ref().map_or(0.0, |p| hours(p.median_us)),
            ),
            href: s.inbox(&period, None),
        },
        Kpi {
            label: "Demandes en cours",
            value: number(backlog.open),
            previous: number(backlog_before.open),
            trend: trend(backlog.open as f64, backlog_before.open as f64),
            href: s.inbox(&[("etat", "open".into())], None),
        },
        Kpi {
            label: "Délai légal dépassé",
            value: number(backlog.overdue),
            previous: number(backlog_before.overdue),
            trend: trend(backlog.overdue as f64, backlog_before.overdue as f64),
            href: s.inbox(&[("delai", "depasse".into())], None),
        },
        Kpi {
            label: "Échéance dans 7 jours",
            value: number(backlog.due_soon),
            previous: number(backlog_before.due_soon),
            trend: trend(backlog.due_soon as f64, backlog_before.due_soon as f64),
            href: s.inbox(&[("delai", "bientot".into())], None),
        },
        Kpi {
            label: "Accusés de réception dans le délai légal",
            value: pct(share(&acks)),
            previous: pct(share(&acks_before)),
            trend: trend(share(&acks).unwrap_or(0.0), share(&acks_before).unwrap_or(0.0)),
            href: None,
        },
    ];

    let mut tables = Vec::new();

    // Volumes over time: days for two months or less, weeks up to a year, months beyond.
    let span = (s.to_day - s.from_day).whole_days() + 1;
    let mut buckets: BTreeMap<Date, i64> = BTreeMap::new();
    let bucket = |d: Date| -> Date {
        if span <= 62 {
            d
        } else if span <= 366 {
            d - Duration::days(i64::from(d.weekday().number_days_from_monday()))
        } else {
            d.replace_day(1).unwrap_or(d)
        }
    };
    let mut d = s.from_day;
    while d <= s.to_day {
        buckets.entry(bucket(d)).or_default();
        d += Duration::days(1);
    }
    for (hour, n) in hourly {
        if let Ok(t) = OffsetDateTime::from_unix_timestamp(hour * 3600) {
            *buckets.entry(bucket(paris(t).date())).or_default() += n;
        }
    }
    let unit = if span <= 62 {
        "Jour"
    } else if span <= 366 {
        "Semaine du"
    } else {
        "Mois"
    };
    let rows: Vec<Vec<Cell>> = buckets
        .iter()
        .map(|(d, n)| {
            vec![
                Cell::Text(if span > 366 {
                    format!("{:02}/{}", u8::from(d.month()), d.year())
                } else {
                    date_short(*d)
                }),
                Cell::from(*n),
            ]
        })
        .collect();
    tables.push(Table {
        key: "periode",
        title: "Demandes reçues dans le temps".into(),
        header: vec![unit, "Demandes"],
        links: vec![None; rows.len()],
        bars: bars(&rows, 1),
        summary: format!(
            "{} demandes reçues du {} au {}.",
            number(total),
            date_fr(s.from_day),
            date_fr(s.to_day)
        ),
        rows,
    });

    // By service, with the previous period.
    let mut by_service: BTreeMap<ServiceId, (i64, i64)> = BTreeMap::new();
    for v in &volumes {
        by_service.entry(v.service).or_default().0 += v.n;
    }
    for v in &before {
        by_service.entry(v.service).or_default().1 += v.n;
    }
    let mut rows_links: Vec<(Vec<Cell>, Option<String>)> = by_service
        .iter()
        .map(|(id, (n, b))| {
            let svc = s.service(*id);
            (
                vec![
                    Cell::Text(
                        svc.map_or_else(|| "Démarche supprimée".into(), |x| x.title.clone()),
                    ),
                    Cell::Text(svc.map_or_else(String::new, |x| s.tenant_name(x.tenant_id))),
                    Cell::from(*n),
                    Cell::from(*b),
                    Cell::Text(trend(*n as f64, *b as f64)),
                ],
                s.inbox(
                    &[
                        ("demarche", id.to_string()),
                        ("du", period[0].1.clone()),
                        ("au", period[1].1.clone()),
                    ],
                    svc.map(|x| x.tenant_id),
                ),
            )
        })
        .collect();
    rows_links.sort_by_key(|r| std::cmp::Reverse(count_of(&r.0, 2)));
    let (rows, links): (Vec<_>, Vec<_>) = rows_links.into_iter().unzip();
    tables.push(Table {
        key: "demarches",
        title: "Demandes par démarche".into(),
        header: vec!["Démarche", "Collectivité", "Demandes", "Période précédente", "Évolution"],
        bars: bars(&rows, 2),
        summary: format!(
            "{} démarches ont reçu des demandes.",
            rows.iter().filter(|r| count_of(r, 2) > 0).count()
        ),
        rows,
        links,
    });

    // By category.
    let mut by_category: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for (id, (n, b)) in &by_service {
        let cat = s.service(*id).map_or_else(|| "Autre".into(), |x| x.category.clone());
        let e = by_category.entry(cat).or_default();
        e.0 += n;
        e.1 += b;
    }
    let rows: Vec<Vec<Cell>> = by_category
        .iter()
        .map(|(c, (n, b))| {
            vec![
                Cell::Text(c.clone()),
                Cell::from(*n),
                Cell::from(*b),
                Cell::Text(trend(*n as f64, *b as f64)),
            ]
        })
        .collect();
    tables.push(Table {
        key: "categories",
        title: "Demandes par catégorie".into(),
        header: vec!["Catégorie", "Demandes", "Période précédente", "Évolution"],
        links: vec![None; rows.len()],
        bars: bars(&rows, 1),
        summary: format!("{} catégories.", rows.len()),
        rows,
    });

    // By channel.
    let rows_links: Vec<(Vec<Cell>, Option<String>)> = CHANNELS
        .iter()
        .map(|c| {
            let n: i64 = volumes.iter().filter(|v| v.channel == *c).map(|v| v.n).sum();
            let b: i64 = before.iter().filter(|v| v.channel == *c).map(|v| v.n).sum();
            (
                vec![
                    Cell::Text(c.label().into()),
                    Cell::from(n),
                    Cell::from(b),
                    Cell::Text(trend(n as f64, b as f64)),
                ],
                s.inbox(
                    &[
                        ("canal", c.as_str().into()),
                        ("du", period[0].1.clone()),
                        ("au", period[1].1.clone()),
                    ],
                    None,
                ),
            )
        })
        .collect();
    let (rows, links): (Vec<_>, Vec<_>) = rows_links.into_iter().unzip();
    tables.push(Table {
        key: "canaux",
        title: "Demandes par canal".into(),
        header: vec!["Canal", "Demandes", "Période précédente", "Évolution"],
        bars: bars(&rows, 1),
        summary: format!("Canaux d'arrivée des {} demandes.", number(total)),
        rows,
        links,
    });

    // By commune (consolidated).
    if s.consolidated {
        let rows_links: Vec<(Vec<Cell>, Option<String>)> = s
            .tenants
            .iter()
            .filter(|t| t.kind == TenantKind::Commune)
            .map(|t| {
                let n: i64 = volumes.iter().filter(|v| v.commune == t.id).map(|v| v.n).sum();
                let b: i64 = before.iter().filter(|v| v.commune == t.id).map(|v| v.n).sum();
                (
                    vec![
                        Cell::Text(t.name.clone()),
                        Cell::from(n),
                        Cell::from(b),
                        Cell::Text(trend(n as f64, b as f64)),
                    ],
                    // The inbox's commune filter counts the same requests (the commune's own
                    // and the EPCI's for its residents), all visible to members of both.
                    (s.visible.contains(&t.id) && s.visible.contains(&s.tenant.id)).then(|| {
                        format!("/agents/?commune={}&du={}&au={}", t.id, period[0].1, period[1].1)
                    }),
                )
            })
            .collect();
        let (rows, links): (Vec<_>, Vec<_>) = rows_links.into_iter().unzip();
        tables.push(Table {
            key: "communes",
            title: "Demandes par commune".into(),
            header: vec!["Commune", "Demandes", "Période précédente", "Évolution"],
            bars: bars(&rows, 1),
            summary: format!("Demandes des habitants des {} communes membres.", rows.len()),
            rows,
            links,
        });
    }

    // Processing times per service.
    let mut rows_links: Vec<(Vec<Cell>, Option<String>)> = processing
        .iter()
        .filter_map(|p| {
            let id = p.service?;
            let svc = s.service(id);
            let prev = processing_before.iter().find(|x| x.service == Some(id));
            Some((
                vec![
                    Cell::Text(
                        svc.map_or_else(|| "Démarche supprimée".into(), |x| x.title.clone()),
                    ),
                    Cell::from(p.n),
                    Cell::from(days(p.median_us)),
                    Cell::from(days(p.p90_us)),
                    prev.map_or(Cell::Text("—".into()), |x| Cell::from(days(x.median_us))),
                ],
                s.inbox(
                    &[("demarche", id.to_string()), ("etat", "closed".into())],
                    svc.map(|x| x.tenant_id),
                ),
            ))
        })
        .collect();
    rows_links.sort_by_key(|r| std::cmp::Reverse(count_of(&r.0, 1)));
    if let Some(o) = overall(&processing) {
        rows_links.push((
            vec![
                Cell::Text("Toutes les démarches".into()),
                Cell::from(o.n),
                Cell::from(days(o.median_us)),
                Cell::from(days(o.p90_us)),
                overall(&processing_before)
                    .map_or(Cell::Text("—".into()), |x| Cell::from(days(x.median_us))),
            ],
            s.inbox(&[("etat", "closed".into())], None),
        ));
    }
    let (rows, links): (Vec<_>, Vec<_>) = rows_links.into_iter().unzip();
    tables.push(Table {
        key: "delais",
        title: "Délais de traitement (demandes terminées dans la période, en jours, attente de l'usager déduite)".into(),
        header: vec!["Démarche", "Demandes terminées", "Médiane (jours)", "90ᵉ centile (jours)", "Médiane, période précédente"],
        bars: bars(&rows, 2),
        summary: "Délai médian de traitement par démarche, en jours.".into(),
        rows,
        links,
    });

    // First response and backlog by age.
    let rows = vec![
        vec![
            Cell::Text("Demandes ayant reçu une première réponse".into()),
            Cell::from(first.0.as_ref().map_or(0, |p| p.n)),
        ],
        vec![Cell::Text("Demandes encore sans réponse".into()), Cell::from(first.1)],
        vec![
            Cell::Text("Médiane (heures)".into()),
            Cell::from(first.0.as_ref().map_or(0.0, |p| hours(p.median_us))),
        ],
        vec![
            Cell::Text("90ᵉ centile (heures)".into()),
            Cell::from(first.0.as_ref().map_or(0.0, |p| hours(p.p90_us))),
        ],
    ];
    tables.push(Table {
        key: "premiere-reponse",
        title: "Première réponse aux demandes reçues dans la période".into(),
        header: vec!["Mesure", "Valeur"],
        links: vec![None; rows.len()],
        bars: Vec::new(),
        summary: String::new(),
        rows,
    });
    let ages = [
        ("Moins de 7 jours", backlog.under_7_days, backlog_before.under_7_days),
        ("7 à 30 jours", backlog.under_30_days, backlog_before.under_30_days),
        ("30 à 90 jours", backlog.under_90_days, backlog_before.under_90_days),
        ("90 jours et plus", backlog.over_90_days, backlog_before.over_90_days),
    ];
    let rows: Vec<Vec<Cell>> = ages
        .iter()
        .map(|(l, n, b)| vec![Cell::Text((*l).into()), Cell::from(*n), Cell::from(*b)])
        .collect();
    tables.push(Table {
        key: "stock",
        title: format!("Demandes en cours au {} par ancienneté", date_fr(paris(at).date())),
        header: vec!["Ancienneté", "Demandes", "Fin de la période précédente"],
        links: vec![s.inbox(&[("etat", "open".into())], None); rows.len()],
        bars: bars(&rows, 1),
        summary: format!(
            "{} demandes en cours, dont {} au-delà du délai légal.",
            number(backlog.open),
            number(backlog.overdue)
        ),
        rows,
    });
    Ok(Figures { kpis, tables })
}

fn count_of(row: &[Cell], col: usize) -> i64 {
    match row.get(col) {
        Some(Cell::Number(n)) => *n as i64,
        _ => 0,
    }
}

// ---------------------------------------------------------------- pages

#[derive(Template)]
#[template(path = "agents/dashboard.html")]
struct DashboardPage {
    layout: Layout,
    tenant: Tenant,
    consolidated: bool,
    tenants: Vec<Choice>,
    services: Vec<Choice>,
    channels: Vec<Choice>,
    communes: Vec<Choice>,
    du: String,
    au: String,
    period: String,
    errors: Vec<String>,
    figures: Figures,
    query: String,
}

/// `GET /agents/tableau-de-bord`
pub(crate) async fn show(
    State(state): State<AppState>,
    visitor: AgentVisitor,
    Query(f): Query<Filters>,
) -> Result<Response, AppError> {
    let agent = require_agent(&state, &visitor).await?;
    let s = scope(&state, &agent, &f).await?;
    let figures = figures(&state, &s).await?;
    let choice = |v: String, l: String, sel: bool| Choice { value: v, label: l, selected: sel };
    let mut tenants = Vec::new();
    for m in &agent.memberships {
        tenants.push(choice(
            m.tenant_id.to_string(),
            m.tenant_name.clone(),
            m.tenant_id == s.tenant.id,
        ));
    }
    let services = s
        .services
        .iter()
        .map(|x| {
            choice(
                x.id.to_string(),
                if s.consolidated {
                    format!("{} ({})", x.title, s.tenant_name(x.tenant_id))
                } else {
                    x.title.clone()
                },
                s.query.service == Some(x.id),
            )
        })
        .collect();
    let channels = CHANNELS
        .iter()
        .map(|c| choice(c.as_str().into(), c.label().into(), s.query.channel == Some(*c)))
        .collect();
    let communes = if s.consolidated {
        s.tenants
            .iter()
            .filter(|t| t.kind == TenantKind::Commune)
            .map(|t| choice(t.id.to_string(), t.name.clone(), s.query.commune == Some(t.id)))
            .collect()
    } else {
        Vec::new()
    };
    let title = format!("Tableau de bord – {}", s.tenant.name);
    let page = DashboardPage {
        layout: layout(
            &state,
            if s.errors.is_empty() { title } else { format!("Erreur – {title}") },
        ),
        consolidated: s.consolidated,
        tenants,
        services,
        channels,
        communes,
        du: s.from_day.to_string(),
        au: s.to_day.to_string(),
        period: format!("du {} au {}", date_fr(s.from_day), date_fr(s.to_day)),
        errors: s.errors.clone(),
        query: s.query_string(),
        tenant: s.tenant.clone(),
        figures,
    };
    let status =
        if page.errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    Ok((status, render(&page)?).into_response())
}

/// `GET /agents/tableau-de-bord/export.{csv,ods,xlsx}?table=…`: one table of the dashboard
/// with the same filters.
pub(crate) async fn export(
    State(state): State<AppState>,
    visitor: AgentVisitor,
    Path(file): Path<String>,
    Query(f): Query<Filters>,
) -> Result<Response, AppError> {
    let agent = require_agent(&state, &visitor).await?;
    let format = file.strip_prefix("export.").ok_or(AppError::NotFound)?;
    let s = scope(&state, &agent, &f).await?;
    let key = f.table.clone().unwrap_or_default();
    let figures = figures(&state, &s).await?;
    let table = figures
        .tables
        .into_iter()
        .find(|t| t.key == key)
        .ok_or_else(|| AppError::BadRequest("« table » : tableau inconnu.".into()))?;
    let name = format!("{}-{}-{}-{}", table.key, s.tenant.slug, s.from_day, s.to_day);
    let (content_type, bytes): (&str, Vec<u8>) = match format {
        "csv" => ("text/csv; charset=utf-8", sheets::csv(&table.header, &table.rows).into_bytes()),
        "ods" => (
            "application/vnd.oasis.opendocument.spreadsheet",
            sheets::ods(&table.title, &table.header, &table.rows),
        ),
        "xlsx" => (
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            sheets::xlsx(&table.title, &table.header, &table.rows),
        ),
        _ => return Err(AppError::NotFound),
    };
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}.{format}\"")),
            (header::CACHE_CONTROL, "private, no-store".to_owned()),
        ],
        bytes,
    )
        .into_response())
}
