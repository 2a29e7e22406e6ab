-- Each phase period carries what the dashboard filters and counts on (service, channel, the
-- citizen's commune, submission time, and the deemed-decision date in force during the period),
-- so that the backlog at a past moment reads one covering index and never joins the requests.
-- They are copied from the request when the period starts; the deemed-decision date of the
-- running period follows the request's.

alter table request_periods add column service_id blob;
alter table request_periods add column channel text;
alter table request_periods add column commune_id blob;
alter table request_periods add column submitted_at integer;
alter table request_periods add column deemed_decision_on text;

update request_periods set
    service_id = (select r.service_id from requests r where r.id = request_periods.request_id),
    channel = (select r.channel from requests r where r.id = request_periods.request_id),
    commune_id = (select coalesce(r.commune_tenant_id, r.tenant_id) from requests r
                  where r.id = request_periods.request_id),
    submitted_at = (select r.submitted_at from requests r where r.id = request_periods.request_id),
    deemed_decision_on = (select r.deemed_decision_on from requests r
                          where r.id = request_periods.request_id);

drop index request_periods_ending_idx;
create index request_periods_ending_idx on request_periods (tenant_id, ended_at, started_at,
    submitted_at, deemed_decision_on, service_id, channel, commune_id) where phase <> 'closed';
