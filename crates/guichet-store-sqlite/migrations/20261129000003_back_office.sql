-- Back-office: agent second factor, workflow state on requests (phase, assignee), full-text
-- search, reply templates, saved inbox views.

-- Agent sessions become usable only once the TOTP code is checked.
alter table sessions add column mfa_ok integer not null default 0;

-- A service's own workflow (JSON); null means the default workflow.
alter table services add column workflow text;

-- 'open', 'waiting' or 'closed': the phase of the current status, kept with it so that inbox
-- filters and deadline views do not need each service's workflow.
alter table requests add column phase text not null default 'open'
    check (phase in ('open', 'waiting', 'closed'));
alter table requests add column assignee_id blob references agents (id);
-- Folded text (lowercase, no accents) of the reference, the citizen's name and the answers.
alter table requests add column search_text text not null default '';
create index requests_tenant_phase_idx on requests (tenant_id, phase, submitted_at);
create index requests_assignee_idx on requests (assignee_id, submitted_at);
create index requests_deemed_idx on requests (deemed_decision_on);

-- Full-text index over search_text (external content: the text lives in requests).
create virtual table requests_fts using fts5 (
    search_text,
    content = 'requests',
    content_rowid = 'rowid',
    tokenize = 'unicode61 remove_diacritics 2'
);
create trigger requests_fts_insert after insert on requests begin
    insert into requests_fts (rowid, search_text) values (new.rowid, new.search_text);
end;
create trigger requests_fts_update after update of search_text on requests begin
    insert into requests_fts (requests_fts, rowid, search_text) values ('delete', old.rowid, old.search_text);
    insert into requests_fts (rowid, search_text) values (new.rowid, new.search_text);
end;
create trigger requests_fts_delete after delete on requests begin
    insert into requests_fts (requests_fts, rowid, search_text) values ('delete', old.rowid, old.search_text);
end;

-- Reply templates of a tenant.
create table reply_templates (
    id         blob primary key,
    tenant_id  blob not null references tenants (id),
    title      text not null,
    body       text not null,
    created_at integer not null
);
create index reply_templates_tenant_idx on reply_templates (tenant_id, title);

-- Inbox views an agent saved (their filters as a query string).
create table saved_views (
    id         blob primary key,
    agent_id   blob not null references agents (id) on delete cascade,
    name       text not null,
    query      text not null,
    created_at integer not null
);
create index saved_views_agent_idx on saved_views (agent_id, name);
