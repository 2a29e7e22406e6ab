-- Every inbox filter but full-text search is answered from one covering index: the agent's
-- tenants, the page order (submitted_at, id) and the filtered columns, so a filtered page over
-- fifty thousand requests never reads the table. It replaces the narrower indexes it covers.
create index requests_inbox_idx on requests
    (tenant_id, submitted_at, id, phase, channel, status, assignee_id, deemed_decision_on, service_id);
drop index requests_tenant_time_idx;
drop index requests_tenant_phase_idx;
drop index requests_tenant_idx;
