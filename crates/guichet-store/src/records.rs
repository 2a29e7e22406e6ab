//! Backend-neutral records: the primitive columns both backends read, turned into domain values
//! in one place so that a malformed stored value is reported the same way on both.

use guichet_domain::{
    Branding, Colour, Email, InseeCode, Phone, Siren, Slug, TenantContact, TenantId, TenantKind,
};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{StoreError, Tenant};

/// The columns of a `tenants` row, as primitives.
#[derive(Debug)]
pub struct TenantRecord {
    pub id: Uuid,
    pub slug: String,
    pub kind: String,
    pub name: String,
    pub parent_id: Option<Uuid>,
    pub siren: String,
    pub insee_code: Option<String>,
    pub service_name: String,
    pub street: String,
    pub postcode: String,
    pub city: String,
    pub email: String,
    pub phone: String,
    pub primary_colour: String,
    pub logo_url: Option<String>,
    pub custom_domain: Option<String>,
    pub created_at: OffsetDateTime,
}

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("{what} {value:?}"))
}

impl TryFrom<TenantRecord> for Tenant {
    type Error = StoreError;

    fn try_from(r: TenantRecord) -> Result<Self, StoreError> {
        Ok(Tenant {
            id: TenantId::from_uuid(r.id),
            slug: Slug::parse(&r.slug).map_err(|_| corrupt("tenant slug", &r.slug))?,
            kind: TenantKind::parse(&r.kind).ok_or_else(|| corrupt("tenant kind", &r.kind))?,
            name: r.name,
            parent_id: r.parent_id.map(TenantId::from_uuid),
            siren: Siren::parse(&r.siren).map_err(|_| corrupt("SIREN", &r.siren))?,
            insee_code: r
                .insee_code
                .map(|c| InseeCode::parse(&c).map_err(|_| corrupt("INSEE code", &c)))
                .transpose()?,
            contact: TenantContact {
                service_name: r.service_name,
                street: r.street,
                postcode: r.postcode,
                city: r.city,
                email: Email::parse(&r.email).map_err(|_| corrupt("tenant e-mail", &r.email))?,
                phone: Phone::parse(&r.phone).map_err(|_| corrupt("tenant phone", &r.phone))?,
            },
            branding: Branding {
                primary_colour: Colour::parse(&r.primary_colour)
                    .map_err(|_| corrupt("colour", &r.primary_colour))?,
                logo_url: r.logo_url,
            },
            custom_domain: r.custom_domain,
            created_at: r.created_at,
        })
    }
}

/// The search token of a tenant, added to each request's search text so that full-text search
/// can be limited to an agent's tenants inside the index ("t" + the id in lowercase hex).
pub fn tenant_token(tenant: uuid::Uuid) -> String {
    format!("t{}", tenant.simple())
}

/// The full searchable text of a request: its folded reference, the given text, and the token
/// of its tenant.
pub fn search_document(reference: &str, tenant: uuid::Uuid, text: &str) -> String {
    format!("{} {} {}", guichet_domain::fold(reference), text, tenant_token(tenant))
}

/// Derives the `{table}_{columns}_key` constraint name from SQLite's unique-violation message
/// ("UNIQUE constraint failed: services.tenant_id, services.slug" → "services_tenant_id_slug_key"),
/// since SQLite does not report constraint names; PostgreSQL names them the same way.
pub fn sqlite_unique_constraint(message: &str) -> String {
    let Some((_, cols)) = message.rsplit_once(": ") else { return "unknown".to_owned() };
    let mut table = "";
    let mut names = Vec::new();
    for qualified in cols.split(',').map(str::trim) {
        let (t, c) = qualified.split_once('.').unwrap_or(("", qualified));
        table = t;
        names.push(c);
    }
    format!("{table}_{}_key", names.join("_"))
}

/// Folds into a request's timing what its own submission's events mean for it (its
/// acknowledgement of receipt, a response), before its row is written: the row is inserted
/// complete instead of inserted and at once updated (an update that touches a row with a dozen
/// indexes). `write_records` is then told to leave these events' timing alone.
pub fn fold_own_timings(
    timing: &mut guichet_domain::metrics::Timing,
    request: guichet_domain::RequestId,
    events: &[crate::NewEvent],
) {
    use guichet_domain::metrics::{TimingEvent, classify};
    use guichet_domain::request::ActorKind;
    for e in events.iter().filter(|e| e.request_id == Some(request)) {
        let by_agent = e.actor_kind == ActorKind::Agent;
        for what in classify(&e.kind, by_agent, e.citizen_visible, &e.data) {
            match what {
                TimingEvent::Acknowledged => timing.acknowledged(e.at),
                TimingEvent::Response => timing.responded(e.at),
                _ => {}
            }
        }
    }
}

/// An event with its place on lane 0 of its tenant's chain, its columns as stored.
#[derive(Debug)]
pub struct ChainedEvent<'a> {
    /// The event.
    pub event: &'a crate::NewEvent,
    /// Position in the chain.
    pub seq: i64,
    /// JSON data as stored (the bytes the hash covers).
    pub data: String,
    /// The previous event's hash.
    pub prev_hash: String,
    /// This event's hash.
    pub hash: String,
}

/// Chains `events`, in their order, onto lane 0 of their tenants' chains, for a bulk load that
/// is the only writer (the generator): `heads` holds each tenant's head (seq, hash), a tenant
/// missing from it starting from the genesis, and is left holding the new heads, to be written
/// back in the same transaction.
pub fn chain_on_lane_zero<'a>(
    events: &'a [crate::NewEvent],
    heads: &mut std::collections::HashMap<Uuid, (i64, String)>,
) -> Vec<ChainedEvent<'a>> {
    use guichet_domain::audit::{ChainedFields, GENESIS, chain_hash};
    events
        .iter()
        .map(|e| {
            let head =
                heads.entry(e.tenant_id.as_uuid()).or_insert_with(|| (0, GENESIS.to_owned()));
            let seq = head.0 + 1;
            let data = e.data.to_string();
            let (id, tenant) = (e.id.to_string(), e.tenant_id.to_string());
            let request = e.request_id.map(|r| r.to_string());
            let actor = e.actor_id.map(|a| a.to_string());
            let at_us = i64::try_from(e.at.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX);
            let hash = chain_hash(
                &head.1,
                &ChainedFields {
                    lane: 0,
                    seq,
                    id: &id,
                    tenant_id: &tenant,
                    request_id: request.as_deref(),
                    at_us,
                    actor_kind: e.actor_kind.as_str(),
                    actor_id: actor.as_deref(),
                    channel: e.channel.as_str(),
                    kind: &e.kind,
                    citizen_visible: e.citizen_visible,
                    data: &data,
                },
            );
            let prev_hash = std::mem::replace(&mut head.1, hash.clone());
            head.0 = seq;
            ChainedEvent { event: e, seq, data, prev_hash, hash }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn sqlite_messages_map_to_postgres_style_names() {
        assert_eq!(
            super::sqlite_unique_constraint("UNIQUE constraint failed: tenants.slug"),
            "tenants_slug_key"
        );
        assert_eq!(
            super::sqlite_unique_constraint("UNIQUE constraint failed: jobs.dedup_key"),
            "jobs_dedup_key_key"
        );
        assert_eq!(
            super::sqlite_unique_constraint(
                "UNIQUE constraint failed: services.tenant_id, services.slug"
            ),
            "services_tenant_id_slug_key"
        );
    }
}
