-- Foundation: the territory, accounts, background jobs.
-- Mirrors the SQLite migration of the same version; unique constraints are named
-- {table}_{column}_key on both backends so StoreError::Conflict reads the same.

-- Tenants: EPCI, communes and syndicates, in a tree (a commune's parent is its EPCI).
create table tenants (
    id             uuid primary key,
    slug           text not null constraint tenants_slug_key unique,
    kind           text not null check (kind in ('epci', 'commune', 'syndicate')),
    name           text not null,
    parent_id      uuid references tenants (id),
    siren          text not null constraint tenants_siren_key unique,
    insee_code     text,
    -- contact details printed on legal acknowledgements (CRPA R112-5, R112-11-1)
    service_name   text not null,
    street         text not null,
    postcode       text not null,
    city           text not null,
    email          text not null,
    phone          text not null,
    -- branding
    primary_colour text not null,
    logo_url       text,
    -- host name serving this tenant at its root, lowercase
    custom_domain  text constraint tenants_custom_domain_key unique,
    created_at     timestamptz not null
);
create index tenants_parent_name_idx on tenants (parent_id, name);

-- Citizens: one account for the whole platform.
create table citizens (
    id                uuid primary key,
    email             text not null constraint citizens_email_key unique,
    password_hash     text,
    given_name        text not null,
    family_name       text not null,
    phone             text,
    insee_code        text,
    email_verified_at timestamptz,
    created_at        timestamptz not null
);

-- Agents and the tenants they work for.
create table agents (
    id            uuid primary key,
    email         text not null constraint agents_email_key unique,
    password_hash text not null,
    display_name  text not null,
    totp_secret   text,
    created_at    timestamptz not null
);
create table memberships (
    agent_id  uuid not null references agents (id) on delete cascade,
    tenant_id uuid not null references tenants (id),
    role      text not null check (role in ('agent', 'supervisor', 'tenant_admin')),
    primary key (agent_id, tenant_id)
);
create index memberships_tenant_idx on memberships (tenant_id);

-- Territory imports already loaded (the demo is loaded once).
create table imports (
    name      text primary key,
    loaded_at timestamptz not null
);

-- Background jobs, enqueued in the same transaction as the write that causes them.
create table jobs (
    id           uuid primary key,
    kind         text not null,
    payload      jsonb not null,
    dedup_key    text,
    status       text not null default 'pending'
                 check (status in ('pending', 'running', 'done', 'failed')),
    attempts     integer not null default 0,
    max_attempts integer not null,
    run_at       timestamptz not null,
    locked_until timestamptz,
    last_error   text,
    created_at   timestamptz not null,
    finished_at  timestamptz
);
-- at most one live job per deduplication key
create unique index jobs_dedup_key_key on jobs (dedup_key) where status in ('pending', 'running');
create index jobs_status_run_at_idx on jobs (status, run_at);
