//! Requests (demandes): channels, statuses, actors, references.

use serde::{Deserialize, Serialize};

/// Where a request or a message came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// The online form.
    Web,
    /// E-mail to a functional address.
    Email,
    /// Text message.
    Sms,
    /// Paper mail.
    Courrier,
    /// At the counter.
    Guichet,
    /// By phone.
    Telephone,
}

impl Channel {
    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Web => "web",
            Self::Email => "email",
            Self::Sms => "sms",
            Self::Courrier => "courrier",
            Self::Guichet => "guichet",
            Self::Telephone => "telephone",
        }
    }

    /// Reads the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "web" => Self::Web,
            "email" => Self::Email,
            "sms" => Self::Sms,
            "courrier" => Self::Courrier,
            "guichet" => Self::Guichet,
            "telephone" => Self::Telephone,
            _ => return None,
        })
    }

    /// French label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Web => "En ligne",
            Self::Email => "Courriel",
            Self::Sms => "SMS",
            Self::Courrier => "Courrier",
            Self::Guichet => "Accueil",
            Self::Telephone => "Téléphone",
        }
    }

    /// Whether a submission on this channel is an electronic submission (saisine par voie
    /// électronique, CRPA L112-8): those get an electronic acknowledgement.
    pub fn is_electronic(self) -> bool {
        matches!(self, Self::Web | Self::Email | Self::Sms)
    }
}

/// Who did something.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActorKind {
    /// A citizen.
    Citizen,
    /// An agent.
    Agent,
    /// Guichet itself (jobs, automatic acknowledgements).
    System,
}

impl ActorKind {
    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Citizen => "citizen",
            Self::Agent => "agent",
            Self::System => "system",
        }
    }

    /// Reads the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "citizen" => Self::Citizen,
            "agent" => Self::Agent,
            "system" => Self::System,
            _ => return None,
        })
    }
}

/// The statuses a request starts in; the back-office workflow adds the rest.
pub mod status {
    /// Registered; an acknowledgement of registration (AEE) was sent and the acknowledgement of
    /// receipt (ARE) will follow an agent's check.
    pub const SUBMITTED: &str = "submitted";
    /// Received: the acknowledgement of receipt (ARE) was sent.
    pub const RECEIVED: &str = "received";

    /// The citizen-facing label of a status.
    pub fn label(status: &str) -> &'static str {
        match status {
            SUBMITTED => "Enregistrée",
            RECEIVED => "Reçue",
            "in_progress" => "En cours de traitement",
            "awaiting_citizen" => "En attente de votre part",
            "accepted" => "Acceptée",
            "rejected" => "Refusée",
            "closed" => "Clôturée",
            _ => "En cours",
        }
    }
}

/// A request's human reference: `{PREFIX}-{YEAR}-{NUMBER:06}` ("EC-2026-000123"), unique per
/// tenant and year.
pub fn reference(prefix: &str, year: i32, number: i64) -> String {
    format!("{prefix}-{year}-{number:06}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_zero_padded_per_year() {
        assert_eq!(reference("EC", 2026, 123), "EC-2026-000123");
        assert_eq!(reference("SIG", 2027, 1_234_567), "SIG-2027-1234567");
    }

    #[test]
    fn channels_round_trip_and_know_if_they_are_electronic() {
        for c in [
            Channel::Web,
            Channel::Email,
            Channel::Sms,
            Channel::Courrier,
            Channel::Guichet,
            Channel::Telephone,
        ] {
            assert_eq!(Channel::parse(c.as_str()), Some(c));
        }
        assert!(Channel::Email.is_electronic());
        assert!(!Channel::Courrier.is_electronic());
    }
}
