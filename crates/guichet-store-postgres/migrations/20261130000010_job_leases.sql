-- The job runner's claim looks for an expired lease on every claim. Through the
-- (status, run_at) index it visited every 'running' entry, and on PostgreSQL the entries of jobs
-- long finished stay there until vacuum (a job's status changes twice): 427 entries and 17 heap
-- pages for no row, 0.3 ms per claim after a few hundred e-mails. This index holds the running
-- jobs by lease end; an expired lease is its first entry, and the entries of finished jobs are
-- past `now` or soon marked dead.
create index jobs_leases_idx on jobs (locked_until) where status = 'running';
