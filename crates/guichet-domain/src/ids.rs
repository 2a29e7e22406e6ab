//! Identifiers: UUIDv7 newtypes, time-ordered so that B-tree indexes stay append-friendly.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh time-ordered identifier.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
            /// Wraps an identifier read back from storage.
            pub fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }
            /// The underlying UUID, for the storage layer.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

uuid_id!(
    /// A tenant: an EPCI, a commune or a syndicate.
    TenantId
);
uuid_id!(
    /// A citizen account, global to the platform.
    CitizenId
);
uuid_id!(
    /// An agent account (staff of one or more tenants).
    AgentId
);
uuid_id!(
    /// A background job.
    JobId
);
uuid_id!(
    /// A service (démarche) of a tenant.
    ServiceId
);
uuid_id!(
    /// A request (demande, dossier).
    RequestId
);
uuid_id!(
    /// A draft of a request, saved between form steps.
    DraftId
);
uuid_id!(
    /// An uploaded file.
    FileId
);
uuid_id!(
    /// An event of the audit trail.
    EventId
);
uuid_id!(
    /// An e-mail in the outbox.
    EmailId
);
uuid_id!(
    /// A document kept on a request (acknowledgements, letters).
    DocumentId
);
