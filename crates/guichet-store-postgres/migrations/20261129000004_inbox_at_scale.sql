-- The inbox at national scale; mirrors the SQLite migration of the same version:
--   * pages are chosen from an index holding the order columns and the id;
--   * open requests with a legal deadline have their own partial index;
--   * each request's search text carries a token of its tenant ("t" + the tenant id in hex),
--     kept identical on both backends (SQLite's search uses it; PostgreSQL filters by tenant).
create index requests_tenant_time_idx on requests (tenant_id, submitted_at, id);
create index requests_open_deadline_idx on requests (tenant_id, submitted_at, id, deemed_decision_on)
    where phase <> 'closed';
update requests set search_text = search_text || ' t' || replace(tenant_id::text, '-', '');
