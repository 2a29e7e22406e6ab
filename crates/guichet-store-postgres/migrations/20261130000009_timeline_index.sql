-- A request's timeline leaves out the `viewed` events (one per agent view, kept for the
-- history export). Read through the index of all its events, a request viewed ten thousand
-- times cost ten thousand row reads per page: the request page slowed down as agents worked.
-- This index holds the timeline only. The queries repeat its condition (`kind <> 'viewed'`),
-- which is how both databases know they may use it.
create index events_timeline_idx on events (request_id, seq) where kind <> 'viewed';
