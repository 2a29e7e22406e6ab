-- Back-office: agent second factor, workflow state on requests (phase, assignee), full-text
-- search, reply templates, saved inbox views. Mirrors the SQLite migration of the same version.

-- Agent sessions become usable only once the TOTP code is checked.
alter table sessions add column mfa_ok boolean not null default false;

-- A service's own workflow (JSON); null means the default workflow.
alter table services add column workflow jsonb;

-- 'open', 'waiting' or 'closed': the phase of the current status.
alter table requests add column phase text not null default 'open'
    check (phase in ('open', 'waiting', 'closed'));
alter table requests add column assignee_id uuid references agents (id);
-- Folded text (lowercase, no accents) of the reference, the citizen's name and the answers,
-- indexed with the French stemmer: "eclairages" finds "Éclairage".
alter table requests add column search_text text not null default '';
alter table requests add column search_vector tsvector
    generated always as (to_tsvector('french', search_text)) stored;
create index requests_tenant_phase_idx on requests (tenant_id, phase, submitted_at);
create index requests_assignee_idx on requests (assignee_id, submitted_at);
create index requests_deemed_idx on requests (deemed_decision_on);
create index requests_search_idx on requests using gin (search_vector);

-- Reply templates of a tenant.
create table reply_templates (
    id         uuid primary key,
    tenant_id  uuid not null references tenants (id),
    title      text not null,
    body       text not null,
    created_at timestamptz not null
);
create index reply_templates_tenant_idx on reply_templates (tenant_id, title);

-- Inbox views an agent saved (their filters as a query string).
create table saved_views (
    id         uuid primary key,
    agent_id   uuid not null references agents (id) on delete cascade,
    name       text not null,
    query      text not null,
    created_at timestamptz not null
);
create index saved_views_agent_idx on saved_views (agent_id, name);
