//! The back-office on SQLite.

use async_trait::async_trait;
use guichet_domain::request::Channel;
use guichet_domain::{AgentId, CitizenId, Email, RequestId, Role, Slug, TenantId};
use guichet_store::{
    Agent, AssigneeFilter, BackOfficeStore, ChainHead, Cursor, DeadlineFilter, Event, InboxFilter,
    InboxRow, InboxSort, Membership, ReplyTemplate, RequestRecord, SavedView, StatusChange,
    StoreError, StoreResult, SubmissionRecords,
};
use sqlx::Connection as _;
use sqlx::sqlite::SqliteRow;
use sqlx::types::Json;
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use crate::requests::{REQUEST_COLUMNS, read_event, read_request, write_records};
use crate::{SqliteStore, col, map_err, to_us, ts};

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_owned())
}

/// A bound parameter of a dynamically built query.
enum P {
    U(Uuid),
    S(String),
    T(i64),
    D(Date),
    I(i64),
}

/// Builds `where` clauses with numbered placeholders.
struct Query {
    clauses: Vec<String>,
    params: Vec<P>,
}

/// The tenants whose requests a search may return: the filter's tenant, or all the agent's.
async fn search_tenants(
    store: &SqliteStore,
    agent: AgentId,
    f: &InboxFilter,
) -> StoreResult<Vec<Uuid>> {
    if f.search.is_none() {
        return Ok(Vec::new());
    }
    if let Some(t) = f.tenant {
        return Ok(vec![t.as_uuid()]);
    }
    sqlx::query_scalar("select tenant_id from memberships where agent_id = $1")
        .bind(agent.as_uuid())
        .fetch_all(&store.read)
        .await
        .map_err(map_err)
}

impl Query {
    fn new(agent: AgentId) -> Self {
        Self {
            clauses: vec![
                "r.tenant_id in (select tenant_id from memberships where agent_id = $1)".to_owned(),
            ],
            params: vec![P::U(agent.as_uuid())],
        }
    }

    /// Adds a clause whose `?` is replaced by the next placeholder.
    fn push(&mut self, clause: &str, p: P) {
        self.params.push(p);
        self.clauses.push(clause.replace('?', &format!("${}", self.params.len())));
    }

    fn filter(&mut self, f: &InboxFilter, tenants: &[Uuid]) {
        if let Some(t) = f.tenant {
            self.push("r.tenant_id = ?", P::U(t.as_uuid()));
        }
        if let Some(s) = f.service {
            self.push("r.service_id = ?", P::U(s.as_uuid()));
        }
        if let Some(s) = &f.status {
            self.push("r.status = ?", P::S(s.clone()));
        }
        if let Some(p) = &f.phase {
            self.push("r.phase = ?", P::S(p.clone()));
        }
        if let Some(c) = f.channel {
            self.push("r.channel = ?", P::S(c.as_str().to_owned()));
        }
        match f.assignee {
            AssigneeFilter::Any => {}
            AssigneeFilter::Agent(a) => self.push("r.assignee_id = ?", P::U(a.as_uuid())),
            AssigneeFilter::Unassigned => self.clauses.push("r.assignee_id is null".to_owned()),
        }
        let today = f.today.unwrap_or_else(|| OffsetDateTime::now_utc().date());
        match f.deadline {
            DeadlineFilter::Any => {}
            DeadlineFilter::Overdue => {
                self.clauses.push("r.phase <> 'closed'".to_owned());
                self.push("r.deemed_decision_on < ?", P::D(today));
            }
            DeadlineFilter::DueWithin(days) => {
                self.clauses.push("r.phase <> 'closed'".to_owned());
                self.push("r.deemed_decision_on >= ?", P::D(today));
                self.push("r.deemed_decision_on <= ?", P::D(today + time::Duration::days(days)));
            }
        }
        if let Some(from) = f.from {
            self.push("r.submitted_at >= ?", P::T(to_us(from)));
        }
        if let Some(to) = f.to {
            self.push("r.submitted_at < ?", P::T(to_us(to)));
        }
        if let Some(c) = f.commune {
            self.push("coalesce(r.commune_tenant_id, r.tenant_id) = ?", P::U(c.as_uuid()));
        }
        if let Some(q) = f.search.as_deref().map(fts_query).filter(|q| !q.is_empty()) {
            // Limited to the agent's tenants inside the index, through their tokens: the
            // search never walks other tenants' matches.
            let tokens: Vec<String> = tenants
                .iter()
                .map(|t| format!("\"{}\"", guichet_store::records::tenant_token(*t)))
                .collect();
            let q =
                if tokens.is_empty() { q } else { format!("{q} AND ({})", tokens.join(" OR ")) };
            self.push(
                "r.rowid in (select rowid from requests_fts where requests_fts match ?)",
                P::S(q),
            );
        }
    }

    fn bind<'q>(
        &'q self,
        sql: &'q str,
    ) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
        let mut q = sqlx::query(sql);
        for p in &self.params {
            q = match p {
                P::U(u) => q.bind(*u),
                P::S(s) => q.bind(s.as_str()),
                P::T(t) => q.bind(*t),
                P::D(d) => q.bind(*d),
                P::I(i) => q.bind(*i),
            };
        }
        q
    }
}

/// An FTS5 query from folded text: every word must match, as a prefix, with a trailing plural
/// mark dropped ("lampadaires" finds "lampadaire"), each word quoted so that user input can
/// never be read as FTS syntax. SQLite has no French stemmer; this covers plurals and the
/// suffixes a word gains, PostgreSQL's `french` configuration does the rest there.
fn fts_query(folded: &str) -> String {
    folded
        .split_whitespace()
        .map(|w| {
            let w: String = w.chars().filter(|c| c.is_alphanumeric()).collect();
            // Numbers (reference parts, years) match exactly: "000001" must not find "0000017".
            if !w.is_empty() && w.bytes().all(|b| b.is_ascii_digit()) {
                return format!("\"{w}\"");
            }
            let stem = if w.chars().count() > 3 && (w.ends_with('s') || w.ends_with('x')) {
                w[..w.len() - 1].to_owned()
            } else {
                w
            };
            format!("\"{stem}\"*")
        })
        .filter(|t| t != "\"\"*")
        .collect::<Vec<_>>()
        .join(" ")
}

/// Refuses to remove or demote a tenant's only administrator (a tenant nobody can administer
/// would need a developer).
async fn ensure_not_last_admin(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    agent: AgentId,
    tenant: TenantId,
) -> StoreResult<()> {
    let current: Option<String> =
        sqlx::query_scalar("select role from memberships where agent_id = $1 and tenant_id = $2")
            .bind(agent.as_uuid())
            .bind(tenant.as_uuid())
            .fetch_optional(&mut **tx)
            .await
            .map_err(map_err)?;
    if current.as_deref() != Some("tenant_admin") {
        return Ok(());
    }
    let admins: i64 = sqlx::query_scalar(
        "select count(*) from memberships where tenant_id = $1 and role = 'tenant_admin'",
    )
    .bind(tenant.as_uuid())
    .fetch_one(&mut **tx)
    .await
    .map_err(map_err)?;
    if admins <= 1 {
        return Err(StoreError::Conflict { constraint: "last_admin".into() });
    }
    Ok(())
}

const INBOX_SELECT: &str = "select r.id, r.reference, r.status, r.phase, r.channel, r.submitted_at, \
     r.deemed_decision_on, r.submitter, t.name as tenant_name, s.title as service_title, \
     a.display_name as assignee_name from requests r join tenants t on t.id = r.tenant_id \
     join services s on s.id = r.service_id left join agents a on a.id = r.assignee_id";

fn citizen_name(submitter: &serde_json::Value) -> String {
    let part = |k: &str| submitter.get(k).and_then(|v| v.as_str()).unwrap_or("").to_owned();
    format!("{} {}", part("prenom"), part("nom")).trim().to_owned()
}

fn read_row(row: &SqliteRow) -> StoreResult<InboxRow> {
    let channel: String = col(row, "channel")?;
    Ok(InboxRow {
        id: RequestId::from_uuid(col(row, "id")?),
        reference: col(row, "reference")?,
        tenant_name: col(row, "tenant_name")?,
        service_title: col(row, "service_title")?,
        citizen_name: citizen_name(&col::<Json<serde_json::Value>>(row, "submitter")?.0),
        status: col(row, "status")?,
        phase: col(row, "phase")?,
        channel: Channel::parse(&channel).ok_or_else(|| corrupt("channel"))?,
        submitted_at: ts(row, "submitted_at")?,
        deemed_decision_on: col(row, "deemed_decision_on")?,
        assignee_name: col(row, "assignee_name")?,
    })
}

#[async_trait]
impl BackOfficeStore for SqliteStore {
    async fn find_agent_login(&self, email: &Email) -> StoreResult<Option<(Agent, String)>> {
        let row = sqlx::query("select id, password_hash from agents where email = $1")
            .bind(email.as_str())
            .fetch_optional(&self.read)
            .await
            .map_err(map_err)?;
        let Some(row) = row else { return Ok(None) };
        let agent = self.get_agent(AgentId::from_uuid(col(&row, "id")?)).await?;
        Ok(Some((agent, col(&row, "password_hash")?)))
    }

    async fn get_agent(&self, id: AgentId) -> StoreResult<Agent> {
        let row =
            sqlx::query("select id, email, display_name, totp_secret from agents where id = $1")
                .bind(id.as_uuid())
                .fetch_one(&self.read)
                .await
                .map_err(map_err)?;
        let email: String = col(&row, "email")?;
        let rows = sqlx::query(
            "select m.tenant_id, m.role, t.slug, t.name from memberships m join tenants t on t.id = m.tenant_id \
             where m.agent_id = $1 order by t.name",
        )
        .bind(id.as_uuid())
        .fetch_all(&self.read)
        .await
        .map_err(map_err)?;
        let memberships = rows
            .iter()
            .map(|r| {
                let role: String = col(r, "role")?;
                let slug: String = col(r, "slug")?;
                Ok(Membership {
                    tenant_id: TenantId::from_uuid(col(r, "tenant_id")?),
                    tenant_slug: Slug::parse(&slug).map_err(|_| corrupt("slug"))?,
                    tenant_name: col(r, "name")?,
                    role: Role::parse(&role).ok_or_else(|| corrupt("role"))?,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Agent {
            id,
            email: Email::parse(&email).map_err(|_| corrupt("agent e-mail"))?,
            display_name: col(&row, "display_name")?,
            totp_secret: col(&row, "totp_secret")?,
            memberships,
        })
    }

    async fn set_agent_totp(&self, id: AgentId, secret: Option<&str>) -> StoreResult<()> {
        sqlx::query("update agents set totp_secret = $2 where id = $1")
            .bind(id.as_uuid())
            .bind(secret)
            .execute(&mut *self.write.lock().await?)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn set_session_mfa(&self, token_hash: &str) -> StoreResult<()> {
        sqlx::query("update sessions set mfa_ok = true where token_hash = $1")
            .bind(token_hash)
            .execute(&mut *self.write.lock().await?)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn delete_agent_sessions(&self, id: AgentId) -> StoreResult<()> {
        sqlx::query("delete from sessions where agent_id = $1")
            .bind(id.as_uuid())
            .execute(&mut *self.write.lock().await?)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn list_tenant_agents(
        &self,
        tenant: TenantId,
    ) -> StoreResult<Vec<(AgentId, String, Role)>> {
        let rows = sqlx::query(
            "select a.id, a.display_name, m.role from agents a join memberships m on m.agent_id = a.id \
             where m.tenant_id = $1 order by a.display_name",
        )
        .bind(tenant.as_uuid())
        .fetch_all(&self.read)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                let role: String = col(r, "role")?;
                Ok((
                    AgentId::from_uuid(col(r, "id")?),
                    col(r, "display_name")?,
                    Role::parse(&role).ok_or_else(|| corrupt("role"))?,
                ))
            })
            .collect()
    }

    async fn inbox(
        &self,
        agent: AgentId,
        filter: &InboxFilter,
        after: Option<Cursor>,
        limit: i64,
    ) -> StoreResult<Vec<InboxRow>> {
        let tenants = search_tenants(self, agent, filter).await?;
        let mut q = Query::new(agent);
        q.filter(filter, &tenants);
        let (cmp, dir) = match filter.sort {
            InboxSort::Newest => ("<", "desc"),
            InboxSort::Oldest => (">", "asc"),
        };
        if let Some(c) = after {
            q.params.push(P::T(to_us(c.submitted_at)));
            q.params.push(P::U(c.id.as_uuid()));
            let n = q.params.len();
            q.clauses.push(format!("(r.submitted_at, r.id) {cmp} (${}, ${n})", n - 1));
        }
        q.params.push(P::I(limit));
        // The page's ids come from requests alone (an index scan); the joins for display
        // then touch only those rows.
        let sql = format!(
            "{INBOX_SELECT} where r.id in (select r.id from requests r where {} \
             order by r.submitted_at {dir}, r.id {dir} limit ${}) \
             order by r.submitted_at {dir}, r.id {dir}",
            q.clauses.join(" and "),
            q.params.len()
        );
        let rows = q.bind(&sql).fetch_all(&self.read).await.map_err(map_err)?;
        rows.iter().map(read_row).collect()
    }

    async fn inbox_page(
        &self,
        agent: AgentId,
        filter: &InboxFilter,
        after: Option<Cursor>,
        limit: i64,
    ) -> StoreResult<(Vec<InboxRow>, i64)> {
        if filter.search.is_none() {
            return guichet_store::page_and_count(self, agent, filter, after, limit).await;
        }
        // A search: the full-text match is the expensive part, so it runs once, into a
        // materialized set that gives both the count and the page.
        let tenants = search_tenants(self, agent, filter).await?;
        let mut q = Query::new(agent);
        q.filter(filter, &tenants);
        let (cmp, dir) = match filter.sort {
            InboxSort::Newest => ("<", "desc"),
            InboxSort::Oldest => (">", "asc"),
        };
        let matched = q.clauses.join(" and ");
        let matched_params = q.params.len();
        let cursor = match after {
            Some(c) => {
                q.params.push(P::T(to_us(c.submitted_at)));
                q.params.push(P::U(c.id.as_uuid()));
                let n = q.params.len();
                format!("where (m.submitted_at, m.id) {cmp} (${}, ${n})", n - 1)
            }
            None => String::new(),
        };
        q.params.push(P::I(limit));
        let ctes = format!(
            "with m as materialized (select r.submitted_at, r.id from requests r where {matched})"
        );
        let sql = format!(
            "{ctes} select x.*, (select count(*) from m) as total from (\
             {INBOX_SELECT} where r.id in (select m.id from m {cursor} \
             order by m.submitted_at {dir}, m.id {dir} limit ${})) x \
             order by x.submitted_at {dir}, x.id {dir}",
            q.params.len()
        );
        let rows = q.bind(&sql).fetch_all(&self.read).await.map_err(map_err)?;
        let Some(first) = rows.first() else {
            // An empty page (nothing found, or past the last page) carries no total: the same
            // match, counted alone.
            q.params.truncate(matched_params);
            let row = q
                .bind(&format!("{ctes} select count(*) as n from m"))
                .fetch_one(&self.read)
                .await
                .map_err(map_err)?;
            return Ok((Vec::new(), col(&row, "n")?));
        };
        let total = col(first, "total")?;
        Ok((rows.iter().map(read_row).collect::<StoreResult<_>>()?, total))
    }

    async fn count_inbox(&self, agent: AgentId, filter: &InboxFilter) -> StoreResult<i64> {
        let tenants = search_tenants(self, agent, filter).await?;
        let mut q = Query::new(agent);
        q.filter(filter, &tenants);
        let sql = format!("select count(*) as n from requests r where {}", q.clauses.join(" and "));
        let row = q.bind(&sql).fetch_one(&self.read).await.map_err(map_err)?;
        col(&row, "n")
    }

    async fn get_agent_request(
        &self,
        agent: AgentId,
        id: RequestId,
    ) -> StoreResult<Option<RequestRecord>> {
        let sql = format!(
            "select {REQUEST_COLUMNS} from requests where id = $2 and \
             tenant_id in (select tenant_id from memberships where agent_id = $1)"
        );
        let row = sqlx::query(&sql)
            .bind(agent.as_uuid())
            .bind(id.as_uuid())
            .fetch_optional(&self.read)
            .await
            .map_err(map_err)?;
        row.as_ref().map(read_request).transpose()
    }

    async fn citizen_requests_for_agent(
        &self,
        agent: AgentId,
        citizen: CitizenId,
    ) -> StoreResult<Vec<InboxRow>> {
        let sql = format!(
            "{INBOX_SELECT} where r.citizen_id = $2 and \
             r.tenant_id in (select tenant_id from memberships where agent_id = $1) \
             order by r.submitted_at desc limit 50"
        );
        let rows = sqlx::query(&sql)
            .bind(agent.as_uuid())
            .bind(citizen.as_uuid())
            .fetch_all(&self.read)
            .await
            .map_err(map_err)?;
        rows.iter().map(read_row).collect()
    }

    async fn change_status(
        &self,
        change: &StatusChange,
        records: &SubmissionRecords,
    ) -> StoreResult<()> {
        let now = OffsetDateTime::now_utc();
        let mut writer = self.write.lock().await?;
        let mut tx = writer.begin().await.map_err(map_err)?;
        // The timing as it was before the change (the update below rewrites the phase).
        let mut timing = crate::dashboards::load_timing(&mut tx, change.request_id).await?;
        let done = sqlx::query(
            "update requests set status = $3, phase = $4, deemed_decision_on = $5, updated_at = $6 \
             where id = $1 and status = $2",
        )
        .bind(change.request_id.as_uuid())
        .bind(&change.expected_status)
        .bind(&change.status)
        .bind(&change.phase)
        .bind(change.deemed_decision_on)
        .bind(to_us(now))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict { constraint: "requests_status_changed".to_owned() });
        }
        // The timing follows the phase, at the time of the status event.
        let at = records
            .events
            .iter()
            .find(|e| e.kind == "status_changed" && e.request_id == Some(change.request_id))
            .map_or(now, |e| e.at);
        if let Some(phase) = guichet_domain::workflow::Phase::parse(&change.phase) {
            crate::dashboards::change_period(&mut tx, change.request_id, timing.phase, phase, at)
                .await?;
            timing.transition(phase, at);
        }
        crate::dashboards::store_timing(&mut tx, change.request_id, &timing).await?;
        write_records(&mut tx, Some(change.request_id), records, now, None).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn assign(
        &self,
        agent: AgentId,
        requests: &[RequestId],
        assignee: Option<AgentId>,
        records: &SubmissionRecords,
    ) -> StoreResult<u64> {
        let now = OffsetDateTime::now_utc();
        let mut writer = self.write.lock().await?;
        let mut tx = writer.begin().await.map_err(map_err)?;
        let mut n = 0;
        for id in requests {
            // Only the agent's tenants' requests, and only to a member of the request's tenant.
            let done = sqlx::query(
                "update requests set assignee_id = $3, updated_at = $4 where id = $2 \
                 and tenant_id in (select tenant_id from memberships where agent_id = $1) \
                 and ($3 is null or exists (select 1 from memberships m where m.agent_id = $3 and m.tenant_id = requests.tenant_id))",
            )
            .bind(agent.as_uuid())
            .bind(id.as_uuid())
            .bind(assignee.map(|a| a.as_uuid()))
            .bind(to_us(now))
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
            n += done.rows_affected();
        }
        if n != requests.len() as u64 {
            // All or nothing: a bulk action never applies to half a selection.
            return Err(StoreError::NotFound);
        }
        write_records(&mut tx, None, records, now, None).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(n)
    }

    async fn list_reply_templates(&self, tenant: TenantId) -> StoreResult<Vec<ReplyTemplate>> {
        let rows = sqlx::query("select id, tenant_id, title, body from reply_templates where tenant_id = $1 order by title")
            .bind(tenant.as_uuid())
            .fetch_all(&self.read)
            .await
            .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok(ReplyTemplate {
                    id: col(r, "id")?,
                    tenant_id: TenantId::from_uuid(col(r, "tenant_id")?),
                    title: col(r, "title")?,
                    body: col(r, "body")?,
                })
            })
            .collect()
    }

    async fn add_reply_template(&self, t: &ReplyTemplate) -> StoreResult<()> {
        sqlx::query("insert into reply_templates (id, tenant_id, title, body, created_at) values ($1, $2, $3, $4, $5)")
            .bind(t.id)
            .bind(t.tenant_id.as_uuid())
            .bind(&t.title)
            .bind(&t.body)
            .bind(to_us(OffsetDateTime::now_utc()))
            .execute(&mut *self.write.lock().await?)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn list_saved_views(&self, agent: AgentId) -> StoreResult<Vec<SavedView>> {
        let rows = sqlx::query(
            "select id, agent_id, name, query from saved_views where agent_id = $1 order by name",
        )
        .bind(agent.as_uuid())
        .fetch_all(&self.read)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok(SavedView {
                    id: col(r, "id")?,
                    agent_id: AgentId::from_uuid(col(r, "agent_id")?),
                    name: col(r, "name")?,
                    query: col(r, "query")?,
                })
            })
            .collect()
    }

    async fn add_saved_view(&self, v: &SavedView) -> StoreResult<()> {
        sqlx::query("insert into saved_views (id, agent_id, name, query, created_at) values ($1, $2, $3, $4, $5)")
            .bind(v.id)
            .bind(v.agent_id.as_uuid())
            .bind(&v.name)
            .bind(&v.query)
            .bind(to_us(OffsetDateTime::now_utc()))
            .execute(&mut *self.write.lock().await?)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn delete_saved_view(&self, agent: AgentId, id: Uuid) -> StoreResult<()> {
        sqlx::query("delete from saved_views where id = $1 and agent_id = $2")
            .bind(id)
            .bind(agent.as_uuid())
            .execute(&mut *self.write.lock().await?)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn agent_can_read_file(
        &self,
        agent: AgentId,
        file: guichet_domain::FileId,
    ) -> StoreResult<bool> {
        let n: i64 = sqlx::query_scalar(
            "select (select count(*) from request_files rf join requests r on r.id = rf.request_id \
             where rf.file_id = $2 and r.tenant_id in (select tenant_id from memberships where agent_id = $1)) \
             + (select count(*) from inbound_files f join inbound_messages m on m.id = f.message_id \
             where f.file_id = $2 and m.tenant_id in (select tenant_id from memberships where agent_id = $1))",
        )
        .bind(agent.as_uuid())
        .bind(file.as_uuid())
        .fetch_one(&self.read)
        .await
        .map_err(map_err)?;
        Ok(n > 0)
    }

    async fn add_agent(&self, agent: &guichet_store::NewAgent) -> StoreResult<()> {
        let mut writer = self.write.lock().await?;
        let mut tx = writer.begin().await.map_err(map_err)?;
        sqlx::query("insert into agents (id, email, password_hash, display_name, created_at) values ($1, $2, $3, $4, $5)")
            .bind(agent.id.as_uuid())
            .bind(agent.email.as_str())
            .bind(&agent.password_hash)
            .bind(&agent.display_name)
            .bind(to_us(OffsetDateTime::now_utc()))
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        for (tenant, role) in &agent.memberships {
            sqlx::query("insert into memberships (agent_id, tenant_id, role) values ($1, $2, $3)")
                .bind(agent.id.as_uuid())
                .bind(tenant.as_uuid())
                .bind(role.as_str())
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)
    }

    async fn set_membership(
        &self,
        agent: AgentId,
        tenant: TenantId,
        role: Role,
    ) -> StoreResult<()> {
        let mut writer = self.write.lock().await?;
        let mut tx = writer.begin().await.map_err(map_err)?;
        if role != Role::TenantAdmin {
            ensure_not_last_admin(&mut tx, agent, tenant).await?;
        }
        sqlx::query(
            "insert into memberships (agent_id, tenant_id, role) values ($1, $2, $3) \
             on conflict (agent_id, tenant_id) do update set role = excluded.role",
        )
        .bind(agent.as_uuid())
        .bind(tenant.as_uuid())
        .bind(role.as_str())
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }

    async fn remove_membership(&self, agent: AgentId, tenant: TenantId) -> StoreResult<()> {
        let mut writer = self.write.lock().await?;
        let mut tx = writer.begin().await.map_err(map_err)?;
        ensure_not_last_admin(&mut tx, agent, tenant).await?;
        sqlx::query("delete from memberships where agent_id = $1 and tenant_id = $2")
            .bind(agent.as_uuid())
            .bind(tenant.as_uuid())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        // Requests of that tenant assigned to them go back to the pool.
        sqlx::query(
            "update requests set assignee_id = null where assignee_id = $1 and tenant_id = $2",
        )
        .bind(agent.as_uuid())
        .bind(tenant.as_uuid())
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }

    async fn count_tenant_admins(&self, tenant: TenantId) -> StoreResult<i64> {
        sqlx::query_scalar(
            "select count(*) from memberships where tenant_id = $1 and role = 'tenant_admin'",
        )
        .bind(tenant.as_uuid())
        .fetch_one(&self.read)
        .await
        .map_err(map_err)
    }

    async fn set_agent_password(&self, agent: AgentId, password_hash: &str) -> StoreResult<()> {
        let mut writer = self.write.lock().await?;
        let mut tx = writer.begin().await.map_err(map_err)?;
        sqlx::query("update agents set password_hash = $2 where id = $1")
            .bind(agent.as_uuid())
            .bind(password_hash)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        sqlx::query("delete from sessions where agent_id = $1")
            .bind(agent.as_uuid())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }

    async fn delete_reply_template(&self, tenant: TenantId, id: Uuid) -> StoreResult<()> {
        sqlx::query("delete from reply_templates where id = $1 and tenant_id = $2")
            .bind(id)
            .bind(tenant.as_uuid())
            .execute(&mut *self.write.lock().await?)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn list_chains(&self) -> StoreResult<Vec<ChainHead>> {
        // Lanes are listed from the events too: a row added on a lane that has no head would
        // otherwise never be verified.
        let rows = sqlx::query(
            "select coalesce(h.tenant_id, e.tenant_id) as tenant_id, \
             coalesce(h.lane, e.lane) as lane, h.seq, h.hash \
             from event_heads h full outer join (select distinct tenant_id, lane from events) e \
             on e.tenant_id = h.tenant_id and e.lane = h.lane order by 1, 2",
        )
        .fetch_all(&self.read)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|row| {
                let seq: Option<i64> = col(row, "seq")?;
                let hash: Option<String> = col(row, "hash")?;
                Ok(ChainHead {
                    tenant: TenantId::from_uuid(col(row, "tenant_id")?),
                    lane: col(row, "lane")?,
                    head: seq.zip(hash),
                })
            })
            .collect()
    }

    async fn list_chain_events(
        &self,
        tenant: TenantId,
        lane: i32,
        after_seq: i64,
        limit: i64,
    ) -> StoreResult<Vec<Event>> {
        let rows = sqlx::query(
            "select id, tenant_id, lane, seq, request_id, at, actor_kind, actor_id, channel, kind, \
             citizen_visible, data, prev_hash, hash from events \
             where tenant_id = $1 and lane = $2 and seq > $3 order by seq limit $4",
        )
        .bind(tenant.as_uuid())
        .bind(lane)
        .bind(after_seq)
        .bind(limit)
        .fetch_all(&self.read)
        .await
        .map_err(map_err)?;
        rows.iter().map(read_event).collect()
    }
}
