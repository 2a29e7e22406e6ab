-- A tenant's events may form several hash chains, its "lanes" (see the PostgreSQL migration of
-- the same version: there, concurrent writes of one tenant each take a lane of their own, so
-- that they share their disk flushes). SQLite's one writer appends one write after the other,
-- so every chain here stays on lane 0, and the keys on (tenant_id) and (tenant_id, seq) still
-- hold, and a request's events are read in `seq` order, the order they were written (PostgreSQL
-- adds a `pos` for that); the column is there so that both databases store and verify the same
-- events.
alter table event_heads add column lane integer not null default 0;
alter table events add column lane integer not null default 0;
