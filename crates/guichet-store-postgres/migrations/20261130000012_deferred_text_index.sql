-- Nothing to change here: SQLite's migration of the same version defers its FTS5 indexing to
-- the end of each transaction, while PostgreSQL's text index (a GIN index over a generated
-- `tsvector`) is maintained by the server and its pending-list already batches new entries.
select 1;
