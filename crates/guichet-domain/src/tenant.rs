//! The territory: tenants (EPCI, communes, syndicates) and what agents may do in them.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::values::{Colour, Email, Phone};

/// What kind of local authority a tenant is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TenantKind {
    /// An intercommunality (communauté de communes, d'agglomération, urbaine, métropole).
    Epci,
    /// A commune, usually a member of one EPCI.
    Commune,
    /// A syndicate (syndicat intercommunal: water, schools, waste...).
    Syndicate,
}

impl TenantKind {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Epci => "epci",
            Self::Commune => "commune",
            Self::Syndicate => "syndicate",
        }
    }

    /// Reads the stored form back.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "epci" => Some(Self::Epci),
            "commune" => Some(Self::Commune),
            "syndicate" => Some(Self::Syndicate),
            _ => None,
        }
    }

    /// The French label shown to users.
    pub fn label(self) -> &'static str {
        match self {
            Self::Epci => "Intercommunalité",
            Self::Commune => "Commune",
            Self::Syndicate => "Syndicat intercommunal",
        }
    }
}

impl fmt::Display for TenantKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The contact details that legal acknowledgements must carry (CRPA R112-11-1 and R112-5):
/// the name of the handling service, its postal address, e-mail and phone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantContact {
    /// "Mairie de Saint-Aubin – service accueil".
    pub service_name: String,
    /// Street line of the postal address.
    pub street: String,
    /// Postcode ("45130").
    pub postcode: String,
    /// Town as written on envelopes ("SAINT-AUBIN-SUR-LYS").
    pub city: String,
    /// Functional e-mail address.
    pub email: Email,
    /// Switchboard number.
    pub phone: Phone,
}

/// A tenant's visual identity on its portal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Branding {
    /// Main colour (header, buttons); must keep 4.5:1 contrast with white text.
    pub primary_colour: Colour,
    /// Optional logo URL (served from the object store once uploads exist).
    pub logo_url: Option<String>,
}

/// An agent's role within one tenant. Ordered: each role can do what the previous ones can.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Processes requests.
    Agent,
    /// Processes, assigns and watches deadlines of a team.
    Supervisor,
    /// Configures the tenant: services, agents, branding, channels.
    TenantAdmin,
}

impl Role {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Agent => "agent",
            Self::Supervisor => "supervisor",
            Self::TenantAdmin => "tenant_admin",
        }
    }

    /// Reads the stored form back.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "agent" => Some(Self::Agent),
            "supervisor" => Some(Self::Supervisor),
            "tenant_admin" => Some(Self::TenantAdmin),
            _ => None,
        }
    }

    /// The French label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Agent => "Agent",
            Self::Supervisor => "Responsable",
            Self::TenantAdmin => "Administrateur",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_roles_round_trip_through_their_stored_form() {
        for k in [TenantKind::Epci, TenantKind::Commune, TenantKind::Syndicate] {
            assert_eq!(TenantKind::parse(k.as_str()), Some(k));
        }
        for r in [Role::Agent, Role::Supervisor, Role::TenantAdmin] {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert!(Role::TenantAdmin > Role::Agent);
        assert_eq!(TenantKind::parse("region"), None);
    }
}
