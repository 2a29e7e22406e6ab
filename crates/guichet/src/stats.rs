//! `guichet stats verify` and `guichet stats rebuild`: the dashboards read each request's
//! timing columns, which the store keeps as events happen; these commands replay every
//! request's events through the same definitions (guichet-domain's `metrics`) and report, or
//! repair, any request whose columns drifted from its events, and any phase period whose
//! copy of its request's dimensions drifted from the request.

use std::collections::HashMap;

use guichet_domain::metrics::{Timing, classify, replay};
use guichet_domain::request::ActorKind;
use guichet_domain::workflow::{Phase, Workflow};
use guichet_domain::{RequestId, ServiceId};
use guichet_store::Store;

/// A request whose stored timing differs from its events.
#[derive(Debug, PartialEq, Eq)]
pub struct Drift {
    /// The request.
    pub request: RequestId,
    /// What the columns say.
    pub stored: Timing,
    /// What the events say.
    pub replayed: Timing,
}

/// The outcome of a verification.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Requests checked against their events.
    pub checked: u64,
    /// Requests without any event (imported or generated history): not checkable, skipped.
    pub without_events: u64,
    /// Drifted requests (repaired when `rebuild` was asked).
    pub drifted: Vec<Drift>,
    /// Phase periods whose copy of their request's dimensions drifted (repaired when
    /// `rebuild` was asked).
    pub periods_drifted: u64,
}

/// Replays every request's events; with `rebuild`, overwrites drifted timings.
pub async fn verify(store: &dyn Store, rebuild: bool) -> anyhow::Result<Report> {
    let mut report = Report::default();
    let mut workflows: HashMap<ServiceId, Workflow> = HashMap::new();
    let mut after = None;
    loop {
        let batch = store.timings(after, 500).await?;
        let (Some(first), Some(last)) = (batch.first(), batch.last()) else { break };
        after = Some(last.0);
        // One read for the whole batch's events (ids are consecutive in id order), grouped
        // by request.
        let mut by_request: HashMap<RequestId, Vec<guichet_store::Event>> = HashMap::new();
        for e in store.timeline_events_between(first.0, last.0).await? {
            if let Some(r) = e.event.request_id {
                by_request.entry(r).or_default().push(e);
            }
        }
        for (id, service, stored) in batch {
            let events = by_request.remove(&id).unwrap_or_default();
            if events.is_empty() {
                report.without_events += 1;
                continue;
            }
            if let std::collections::hash_map::Entry::Vacant(e) = workflows.entry(service) {
                e.insert(store.get_service(service).await?.workflow());
            }
            let workflow = &workflows[&service];
            let replayed = replay(
                stored.submitted_at,
                Phase::Open,
                events.iter().map(|e| {
                    (
                        e.event.at,
                        classify(
                            &e.event.kind,
                            e.event.actor_kind == ActorKind::Agent,
                            e.event.citizen_visible,
                            &e.event.data,
                        ),
                    )
                }),
                |status| workflow.phase(status),
            );
            report.checked += 1;
            if replayed != stored {
                if rebuild {
                    store.set_timing(id, &replayed).await?;
                }
                report.drifted.push(Drift { request: id, stored, replayed });
            }
        }
    }
    report.periods_drifted = store.period_drift(rebuild).await?;
    Ok(report)
}
