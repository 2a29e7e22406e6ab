//! Tamper-evident traceability: each tenant's events form hash chains. An event's hash covers
//! its content and the previous event's hash, so changing, inserting or deleting a stored event
//! breaks every later link, which `guichet audit verify` detects; each chain's head records its
//! last event, so a chain cut short is detected too.
//!
//! A tenant has one chain, lane 0, unless its writes ran side by side: each write holds the
//! chain it appends to until it commits, so concurrent writes of one tenant take lanes of their
//! own instead of waiting for each other's disk flush (PostgreSQL; SQLite's one writer never
//! needs a second lane).

use sha2::{Digest, Sha256};

/// The hash before a tenant's first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The fields of an event that its hash covers, in their stored form.
#[derive(Clone, Debug)]
pub struct ChainedFields<'a> {
    /// Which of the tenant's chains (0 for the first).
    pub lane: i32,
    /// Position in that chain (1 for the first event).
    pub seq: i64,
    /// Event id.
    pub id: &'a str,
    /// Tenant id.
    pub tenant_id: &'a str,
    /// Request id, if the event concerns a request.
    pub request_id: Option<&'a str>,
    /// Instant in microseconds since the epoch.
    pub at_us: i64,
    /// "citizen", "agent" or "system".
    pub actor_kind: &'a str,
    /// Actor id.
    pub actor_id: Option<&'a str>,
    /// Channel.
    pub channel: &'a str,
    /// Event kind.
    pub kind: &'a str,
    /// Whether the citizen sees it.
    pub citizen_visible: bool,
    /// JSON data as stored.
    pub data: &'a str,
}

/// Hex SHA-256 of the previous hash and the fields, each length-prefixed so that no two
/// different field lists serialise to the same bytes.
pub fn chain_hash(prev: &str, f: &ChainedFields<'_>) -> String {
    let mut h = Sha256::new();
    let mut put = |s: &str| {
        h.update((s.len() as u64).to_be_bytes());
        h.update(s.as_bytes());
    };
    put(prev);
    put(&f.seq.to_string());
    // Lane 0 adds nothing, so that the hashes stored before lanes existed still verify; another
    // lane adds one field, and since every field is length-prefixed, no two field lists give
    // the same bytes.
    if f.lane != 0 {
        put(&f.lane.to_string());
    }
    put(f.id);
    put(f.tenant_id);
    put(f.request_id.unwrap_or(""));
    put(&f.at_us.to_string());
    put(f.actor_kind);
    put(f.actor_id.unwrap_or(""));
    put(f.channel);
    put(f.kind);
    put(if f.citizen_visible { "1" } else { "0" });
    put(f.data);
    hex(&h.finalize())
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// Hex SHA-256 of bytes (session tokens are stored hashed, files are addressed by content).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(data: &str) -> ChainedFields<'_> {
        ChainedFields {
            lane: 0,
            seq: 1,
            id: "e1",
            tenant_id: "t1",
            request_id: None,
            at_us: 1,
            actor_kind: "system",
            actor_id: None,
            channel: "web",
            kind: "submitted",
            citizen_visible: true,
            data,
        }
    }

    #[test]
    fn any_change_in_content_or_previous_hash_changes_the_hash() {
        let a = chain_hash(GENESIS, &fields("{}"));
        assert_eq!(a.len(), 64);
        assert_ne!(a, chain_hash(GENESIS, &fields("{ }")));
        assert_ne!(a, chain_hash(&a, &fields("{}")));
        assert_eq!(a, chain_hash(GENESIS, &fields("{}")));
        assert_ne!(a, chain_hash(GENESIS, &ChainedFields { lane: 1, ..fields("{}") }));
    }

    #[test]
    fn sha256_matches_a_known_vector() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
