-- The inbox at national scale (a million requests, thousands of tenants):
--   * pages are chosen from an index holding the order columns and the id, so the first page
--     of an agent's fifty thousand requests is read from the index alone;
--   * open requests with a legal deadline have their own partial index for the deadline views;
--   * each request's search text carries a token of its tenant ("t" + the tenant id in hex),
--     so that a full-text search is limited to the agent's tenants inside the index.
create index requests_tenant_time_idx on requests (tenant_id, submitted_at, id);
create index requests_open_deadline_idx on requests (tenant_id, submitted_at, id, deemed_decision_on)
    where phase <> 'closed';
update requests set search_text = search_text || ' t' || lower(hex(tenant_id));
