-- Citizen portal: profiles, sessions, one-time tokens, throttling, services, drafts, files,
-- requests with their hash-chained events and documents, the e-mail outbox.

alter table citizens add column civility text;
alter table citizens add column birth_date date;
alter table citizens add column street text;
alter table citizens add column postcode text;
alter table citizens add column city text;
alter table citizens add column notify_email boolean not null default true;
alter table citizens add column notify_sms boolean not null default false;

-- Server-side sessions; the cookie holds a random token, only its SHA-256 is stored.
create table sessions (
    token_hash   text primary key,
    citizen_id   uuid references citizens (id) on delete cascade,
    agent_id     uuid references agents (id) on delete cascade,
    csrf_token   text not null,
    created_at   timestamptz not null,
    expires_at   timestamptz not null,
    last_seen_at timestamptz not null
);
create index sessions_citizen_idx on sessions (citizen_id);
create index sessions_expires_idx on sessions (expires_at);

-- One-time tokens sent by e-mail (verification, password reset), stored hashed.
create table account_tokens (
    token_hash text primary key,
    citizen_id uuid not null references citizens (id) on delete cascade,
    purpose    text not null check (purpose in ('verify_email', 'reset_password')),
    expires_at timestamptz not null,
    used_at    timestamptz,
    created_at timestamptz not null
);

-- Fixed-window counters for login throttling (per account and per address).
create table throttle (
    key          text primary key,
    window_start timestamptz not null,
    hits         bigint not null
);

-- Services (démarches) of tenants; the form is JSON.
create table services (
    id               uuid primary key,
    tenant_id        uuid not null references tenants (id),
    slug             text not null,
    template         text,
    title            text not null,
    category         text not null,
    summary          text not null,
    description      text not null,
    requirements     jsonb not null,
    delay_text       text not null,
    regime           text not null check (regime in ('sva', 'svr', 'none')),
    delay            text not null,
    prior_check      boolean not null default false,
    reference_prefix text not null,
    form             jsonb not null,
    enabled          boolean not null default true,
    created_at       timestamptz not null,
    constraint services_tenant_id_slug_key unique (tenant_id, slug)
);

-- Forms in progress.
create table drafts (
    id               uuid primary key,
    citizen_id       uuid not null references citizens (id) on delete cascade,
    service_id       uuid not null references services (id),
    portal_tenant_id uuid not null references tenants (id),
    answers          jsonb not null,
    page             integer not null default 0,
    created_at       timestamptz not null,
    updated_at       timestamptz not null
);
create index drafts_citizen_idx on drafts (citizen_id, updated_at);

-- Uploaded files; bytes live in the file store under their SHA-256.
create table files (
    id            uuid primary key,
    sha256        text not null,
    size          bigint not null,
    content_type  text not null,
    original_name text not null,
    citizen_id    uuid references citizens (id) on delete set null,
    created_at    timestamptz not null
);

-- Reference numbers per tenant and year.
create table reference_counters (
    tenant_id uuid not null references tenants (id),
    year      integer not null,
    last      bigint not null,
    primary key (tenant_id, year)
);

-- Requests (demandes).
create table requests (
    id                 uuid primary key,
    tenant_id          uuid not null references tenants (id),
    commune_tenant_id  uuid references tenants (id),
    service_id         uuid not null references services (id),
    citizen_id         uuid references citizens (id) on delete set null,
    draft_id           uuid constraint requests_draft_id_key unique,
    reference          text not null,
    channel            text not null
                       check (channel in ('web', 'email', 'sms', 'courrier', 'guichet', 'telephone')),
    status             text not null,
    answers            jsonb not null,
    submitter          jsonb not null,
    submitted_at       timestamptz not null,
    deemed_decision_on date,
    created_at         timestamptz not null,
    updated_at         timestamptz not null,
    constraint requests_tenant_id_reference_key unique (tenant_id, reference)
);
create index requests_citizen_idx on requests (citizen_id, submitted_at);
create index requests_tenant_idx on requests (tenant_id, submitted_at);

-- Files referenced by requests (answers and messages), for access checks.
create table request_files (
    request_id uuid not null references requests (id) on delete cascade,
    file_id    uuid not null references files (id),
    primary key (request_id, file_id)
);
create index request_files_file_idx on request_files (file_id);

-- The audit trail: every event of a tenant, hash-chained in `seq` order.
create table events (
    id              uuid primary key,
    tenant_id       uuid not null references tenants (id),
    seq             bigint not null,
    request_id      uuid references requests (id),
    at              timestamptz not null,
    actor_kind      text not null check (actor_kind in ('citizen', 'agent', 'system')),
    actor_id        uuid,
    channel         text not null,
    kind            text not null,
    citizen_visible boolean not null,
    data            text not null, -- text, not jsonb: the hash covers these exact bytes
    prev_hash       text not null,
    hash            text not null,
    constraint events_tenant_id_seq_key unique (tenant_id, seq)
);
create index events_request_idx on events (request_id, seq);

-- The head of each tenant's chain (serialises appends per tenant).
create table event_heads (
    tenant_id uuid primary key references tenants (id),
    seq       bigint not null,
    hash      text not null
);

-- Documents kept on requests (acknowledgements, letters).
create table documents (
    id         uuid primary key,
    request_id uuid not null references requests (id) on delete cascade,
    kind       text not null,
    title      text not null,
    body_text  text not null,
    body_html  text not null,
    created_at timestamptz not null
);
create index documents_request_idx on documents (request_id, created_at);

-- Outgoing e-mail, sent by the `email.send` job.
create table outbox_emails (
    id          uuid primary key,
    to_address  text not null,
    subject     text not null,
    body_text   text not null,
    body_html   text not null,
    message_id  text not null,
    request_id  uuid references requests (id) on delete set null,
    status      text not null default 'pending' check (status in ('pending', 'sent', 'failed')),
    sent_at     timestamptz,
    last_error  text,
    created_at  timestamptz not null
);
create index outbox_emails_created_idx on outbox_emails (created_at);
