-- Multichannel: functional addresses and SMS numbers, messages received on every channel
-- (contacts until they are tied to a request), text messages out, threading headers on
-- e-mails out, and the short codes printed on paper letters.

create table endpoints (
    id            uuid primary key,
    tenant_id     uuid not null references tenants (id),
    kind          text not null check (kind in ('email', 'sms')),
    address       text not null constraint endpoints_address_key unique,
    imap_url      text,
    imap_password text,
    uid_validity  bigint,
    last_uid      bigint not null default 0,
    last_fetch_at timestamptz,
    last_error    text,
    created_at    timestamptz not null
);
create index endpoints_tenant_idx on endpoints (tenant_id);

create table inbound_messages (
    id          uuid primary key,
    tenant_id   uuid not null references tenants (id),
    endpoint_id uuid references endpoints (id) on delete set null,
    channel     text not null
                check (channel in ('email', 'sms', 'courrier', 'guichet', 'telephone')),
    dedup_key   text not null,
    sender      text not null,
    sender_name text not null default '',
    subject     text not null default '',
    body        text not null default '',
    quoted      text not null default '',
    message_id  text,
    state       text not null
                check (state in ('contact', 'attached', 'answered', 'qualified', 'closed', 'set_aside', 'ignored')),
    reason      text,
    request_id  uuid references requests (id),
    citizen_id  uuid references citizens (id) on delete set null,
    raw_file_id uuid references files (id),
    files       jsonb not null default '[]',
    received_at timestamptz not null,
    created_at  timestamptz not null,
    handled_by  uuid references agents (id),
    handled_at  timestamptz,
    constraint inbound_messages_dedup_key unique (tenant_id, dedup_key)
);
create index inbound_messages_tenant_state_idx on inbound_messages (tenant_id, state, received_at);
create index inbound_messages_message_id_idx on inbound_messages (message_id);
create index inbound_messages_request_idx on inbound_messages (request_id);

create table inbound_files (
    message_id uuid not null references inbound_messages (id) on delete cascade,
    file_id    uuid not null references files (id),
    primary key (message_id, file_id)
);
create index inbound_files_file_idx on inbound_files (file_id);

alter table outbox_emails add column reply_to text;
alter table outbox_emails add column refs text not null default '';
alter table outbox_emails add column automatic boolean not null default true;
create index outbox_emails_message_id_idx on outbox_emails (message_id);

create table outbox_sms (
    id           uuid primary key,
    tenant_id    uuid not null references tenants (id),
    request_id   uuid references requests (id) on delete set null,
    to_phone     text not null,
    body         text not null,
    segments     integer not null,
    status       text not null default 'pending'
                 check (status in ('pending', 'sent', 'delivered', 'failed')),
    last_error   text,
    sent_at      timestamptz,
    delivered_at timestamptz,
    created_at   timestamptz not null
);
create index outbox_sms_request_idx on outbox_sms (request_id);

alter table documents add column code text;
create unique index documents_code_key on documents (code);
