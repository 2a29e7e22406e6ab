-- Dashboards: each request's timing figures, kept as its events happen (guichet-domain's
-- metrics module defines them; `guichet stats verify` replays the events to check them), the
-- date its acknowledgement of receipt was due, and each tenant's choice about its public page.

alter table requests add column ack_due_at timestamptz;
alter table requests add column acknowledged_at timestamptz;
alter table requests add column first_response_at timestamptz;
alter table requests add column closed_at timestamptz;
alter table requests add column waiting_us bigint not null default 0;
alter table requests add column waiting_since timestamptz;
alter table requests add column reopened integer not null default 0;
alter table requests add column processing_us bigint;

-- Covering indexes: each dashboard query reads one of them only, never the table.
create index requests_submitted_dash_idx on requests (tenant_id, submitted_at, service_id, channel,
    commune_tenant_id, first_response_at, acknowledged_at, ack_due_at);
create index requests_closed_idx on requests (tenant_id, closed_at, service_id, channel,
    commune_tenant_id, processing_us);
create index requests_pending_idx on requests (tenant_id, submitted_at, deemed_decision_on,
    service_id, channel, commune_tenant_id) where phase <> 'closed';

create table public_stats (
    tenant_id  uuid primary key references tenants (id),
    enabled    boolean not null,
    reason     text,
    changed_by uuid references agents (id),
    changed_at timestamptz not null
);

-- Each request's phases over time (open, waiting, closed), so that the backlog at any past
-- moment is exact even when requests were reopened.
create table request_periods (
    request_id uuid not null references requests (id) on delete cascade,
    seq        integer not null,
    tenant_id  uuid not null references tenants (id),
    phase      text not null check (phase in ('open', 'waiting', 'closed')),
    started_at timestamptz not null,
    ended_at   timestamptz,
    primary key (request_id, seq)
);
-- The pending periods still running at a moment: those ending after it, or not ended.
create index request_periods_ending_idx on request_periods (tenant_id, ended_at, started_at,
    request_id) where phase <> 'closed';
