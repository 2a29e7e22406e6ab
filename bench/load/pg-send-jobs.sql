-- The job runner's part of the "send" scenario (see pg-send.sql), for pgbench: the previous
-- job marked done with the next claim, the claimed e-mail read, marked sent (the e-mail itself
-- is not sent: Guichet's delivery to its SMTP server is not PostgreSQL's work).
--
--   pgbench -n -M prepared -f pg-send-jobs.sql -D jid=none -D eid=none -c RUNNERS …
--
-- A claim that finds no job leaves jid and eid at "none", the other two statements do nothing
-- and the client sleeps 10 ms (Guichet's runners wait for a wake-up then).
with done as (update jobs set status = 'done', locked_until = null, finished_at = now() where id = nullif(:jid, 'none')::uuid),
  pending as (select id, run_at from jobs where status = 'pending' and run_at <= now() order by run_at limit 1 for update skip locked),
  expired as (select id, run_at from jobs where status = 'running' and locked_until < now() and id is distinct from nullif(:jid, 'none')::uuid order by locked_until limit 1 for update skip locked),
  claimed as (update jobs set status = 'running', attempts = attempts + 1, locked_until = now() + interval '5 minutes' where id = (select id from (select * from pending union all select * from expired) c order by run_at limit 1) returning id, kind, payload, attempts, max_attempts, dedup_key)
select coalesce((select id::text from claimed), 'none') as jid, coalesce((select payload->>'email_id' from claimed), 'none') as eid,
  (select count(*) from claimed) as claimed \gset
select id, to_address, subject, body_text, body_html, message_id, request_id, status, sent_at, last_error, created_at, reply_to, refs, automatic from outbox_emails where id = nullif(:eid, 'none')::uuid;
update outbox_emails set status = 'sent', sent_at = now(), last_error = null where id = nullif(:eid, 'none')::uuid;
\if :claimed = 0
\sleep 10 ms
\endif
