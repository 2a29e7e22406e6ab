-- A new request's words enter the full-text index at the end of its transaction, not at its
-- insert. FTS5 writes its pending words to disk at every savepoint and statement journal of a
-- transaction it is part of: with the insert trigger below indexing at once, every write of
-- a commit group that followed a submission (each runs in a savepoint of its own) made FTS5
-- write a new index segment for that one request, then merge them; under a submission load
-- that was a tenth of the writer's time. Now the trigger only notes the row; the writer
-- indexes every noted row just before each commit (`INDEX_PENDING_REQUESTS`), once per group.
-- A noted row rolled back with its write leaves no note, so only committed requests are
-- indexed, and they are searchable from their commit on.
create table requests_fts_pending (request_rowid integer primary key);

drop trigger requests_fts_insert;
create trigger requests_fts_insert after insert on requests begin
    insert into requests_fts_pending (request_rowid) values (new.rowid);
end;

-- A row still only noted is not in the index yet: removing its old words from it would
-- corrupt the index (an external-content FTS5 table trusts the words it is told to delete).
drop trigger requests_fts_update;
create trigger requests_fts_update after update of search_text on requests begin
    insert into requests_fts (requests_fts, rowid, search_text)
        select 'delete', old.rowid, old.search_text
        where not exists (select 1 from requests_fts_pending where request_rowid = old.rowid);
    insert or ignore into requests_fts_pending (request_rowid) values (new.rowid);
end;

drop trigger requests_fts_delete;
create trigger requests_fts_delete after delete on requests begin
    insert into requests_fts (requests_fts, rowid, search_text)
        select 'delete', old.rowid, old.search_text
        where not exists (select 1 from requests_fts_pending where request_rowid = old.rowid);
    delete from requests_fts_pending where request_rowid = old.rowid;
end;
