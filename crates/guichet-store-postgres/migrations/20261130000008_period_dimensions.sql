-- Each phase period carries what the dashboard filters and counts on (service, channel, the
-- citizen's commune, submission time, and the deemed-decision date in force during the period),
-- so that the backlog at a past moment reads one covering index and never joins the requests.
-- They are copied from the request when the period starts; the deemed-decision date of the
-- running period follows the request's.

alter table request_periods add column service_id uuid;
alter table request_periods add column channel text;
alter table request_periods add column commune_id uuid;
alter table request_periods add column submitted_at timestamptz;
alter table request_periods add column deemed_decision_on date;

update request_periods p set
    service_id = r.service_id,
    channel = r.channel,
    commune_id = coalesce(r.commune_tenant_id, r.tenant_id),
    submitted_at = r.submitted_at,
    deemed_decision_on = r.deemed_decision_on
from requests r where r.id = p.request_id;

drop index request_periods_ending_idx;
create index request_periods_ending_idx on request_periods (tenant_id, ended_at, started_at)
    include (submitted_at, deemed_decision_on, service_id, channel, commune_id)
    where phase <> 'closed';
