-- A tenant's events may form several hash chains, its "lanes". Every write appending to a
-- chain holds its head until it commits, and a commit waits for the disk: with one chain per
-- tenant, the writes of a busy tenant (submissions, agents' views) committed one after the
-- other, each waiting for the previous one's disk flush (measured: 387 submissions/s against
-- 11,680 raw inserts/s, backends waiting on the head's row lock). A write now takes a lane no
-- other write holds (`for update skip locked`), opening one more, up to a bound, when all are
-- held; concurrent writes then share their disk flushes. Each lane is a chain of its own, from
-- the genesis hash, verified as such; an event's lane is part of its hash (lane 0's hashes are
-- those of before, so existing chains still verify).
alter table event_heads add column lane integer not null default 0;
alter table event_heads drop constraint event_heads_pkey;
alter table event_heads add primary key (tenant_id, lane);
alter table events add column lane integer not null default 0;
alter table events drop constraint events_tenant_id_seq_key;
alter table events add constraint events_tenant_id_lane_seq_key unique (tenant_id, lane, seq);

-- A request's events may now lie on several lanes, and their `at` does not give their order
-- (the events of one write are stamped one after the other, not in the order they are
-- written): `pos` numbers events in the order they are written, across lanes, and a request's
-- timeline is read in that order. The events written before it have none and come first, in
-- their one lane's order. Added without a default and given one after, so that no existing row
-- is rewritten.
create sequence events_pos_seq;
alter table events add column pos bigint;
alter table events alter column pos set default nextval('events_pos_seq');
alter sequence events_pos_seq owned by events.pos;

-- On a large database the new unique index over every event (views included) is built while
-- the migration holds the table; `guichet` migrates at start-up, before it serves.
