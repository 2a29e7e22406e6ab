//! `guichet audit verify`: walks every tenant's event chains (one per lane, see
//! `guichet_domain::audit`), recomputes each hash, and names the first event that does not match
//! (an edited, inserted, deleted or moved row breaks the chain there).

use guichet_domain::TenantId;
use guichet_domain::audit::{ChainedFields, GENESIS, chain_hash};
use guichet_store::{ChainHead, Event, Store};

/// What is wrong with a chain.
#[derive(Debug, PartialEq, Eq)]
pub struct Broken {
    /// Tenant.
    pub tenant: TenantId,
    /// Which of its chains.
    pub lane: i32,
    /// The first event that does not verify.
    pub event: String,
    /// Its position.
    pub seq: i64,
    /// What does not match.
    pub reason: &'static str,
}

/// The outcome of a verification.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Chains checked (a tenant has one per lane).
    pub chains: usize,
    /// Events checked.
    pub events: u64,
    /// Broken chains (first break of each).
    pub broken: Vec<Broken>,
}

fn expected_hash(prev: &str, e: &Event) -> String {
    let (id, tenant) = (e.event.id.to_string(), e.event.tenant_id.to_string());
    let request = e.event.request_id.map(|r| r.to_string());
    let actor = e.event.actor_id.map(|a| a.to_string());
    let data = e.event.data.to_string();
    chain_hash(
        prev,
        &ChainedFields {
            lane: e.lane,
            seq: e.seq,
            id: &id,
            tenant_id: &tenant,
            request_id: request.as_deref(),
            at_us: i64::try_from(e.event.at.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX),
            actor_kind: e.event.actor_kind.as_str(),
            actor_id: actor.as_deref(),
            channel: e.event.channel.as_str(),
            kind: &e.event.kind,
            citizen_visible: e.event.citizen_visible,
            data: &data,
        },
    )
}

/// Verifies every chain, and that each ends where its head says: the heads are read first, so
/// events written during the verification only make a chain longer than its head.
pub async fn verify(store: &dyn Store) -> anyhow::Result<Report> {
    let mut report = Report::default();
    for chain in store.list_chains().await? {
        report.chains += 1;
        let (tenant, lane) = (chain.tenant, chain.lane);
        if let Some(found) = verify_chain(store, &chain, &mut report.events).await? {
            let (event, seq, reason) = found;
            report.broken.push(Broken { tenant, lane, event, seq, reason });
        }
    }
    Ok(report)
}

/// The first break of one chain (event id, seq, reason), if any; counts the events read.
async fn verify_chain(
    store: &dyn Store,
    chain: &ChainHead,
    events: &mut u64,
) -> anyhow::Result<Option<(String, i64, &'static str)>> {
    let (tenant, lane) = (chain.tenant, chain.lane);
    let Some((head_seq, head_hash)) = &chain.head else {
        let first = store.list_chain_events(tenant, lane, 0, 1).await?;
        let (event, seq) =
            first.first().map_or((String::new(), 0), |e| (e.event.id.to_string(), e.seq));
        return Ok(Some((
            event,
            seq,
            "event on a chain that has no head (a row added to the table)",
        )));
    };
    let mut prev = GENESIS.to_owned();
    let mut expected_seq = 1;
    let mut last = String::new();
    loop {
        let page = store.list_chain_events(tenant, lane, expected_seq - 1, 1000).await?;
        if page.is_empty() {
            break;
        }
        for e in page {
            *events += 1;
            let reason = if e.seq != expected_seq {
                Some("missing event before this one (sequence gap)")
            } else if e.prev_hash != prev {
                Some("its link to the previous event does not match")
            } else if e.hash != expected_hash(&prev, &e) {
                Some("its content does not match its hash (the row was changed)")
            } else if e.seq == *head_seq && e.hash != *head_hash {
                Some("it is not the event the chain's head records")
            } else {
                None
            };
            if let Some(reason) = reason {
                return Ok(Some((e.event.id.to_string(), e.seq, reason)));
            }
            prev = e.hash;
            last = e.event.id.to_string();
            expected_seq += 1;
        }
    }
    if expected_seq <= *head_seq {
        // Every event verifies, but the chain stops short of its head.
        return Ok(Some((
            last,
            expected_seq,
            "the chain ends before its head: the events after this one were deleted",
        )));
    }
    Ok(None)
}
