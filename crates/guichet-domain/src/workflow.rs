//! Workflows as data: a service's statuses (each open, waiting or closed, with what the agent
//! and the citizen read) and the transitions between them (who may trigger them, whether a
//! message is required, whether the citizen is told). A service without its own workflow uses
//! the default one, the journey of most démarches.

use serde::{Deserialize, Serialize};

use crate::Role;

/// Whether a status keeps the request in the service's hands, waits for the citizen, or ends it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// The service has to act.
    Open,
    /// The citizen has to act (legal delays may be suspended or restart).
    Waiting,
    /// Nothing left to do.
    Closed,
}

impl Phase {
    /// Reads the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(Self::Open),
            "waiting" => Some(Self::Waiting),
            "closed" => Some(Self::Closed),
            _ => None,
        }
    }

    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Waiting => "waiting",
            Self::Closed => "closed",
        }
    }
}

/// A status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// Stable key stored on requests.
    pub key: String,
    /// What agents read.
    pub label: String,
    /// What the citizen reads.
    pub citizen_label: String,
    /// Open, waiting or closed.
    pub phase: Phase,
}

/// A transition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    /// Stable key ("accept", "ask_completion"…).
    pub key: String,
    /// Button label.
    pub label: String,
    /// Statuses it leaves from.
    pub from: Vec<String>,
    /// Status it leads to.
    pub to: String,
    /// Lowest role allowed to trigger it.
    pub min_role: Role,
    /// Whether the agent must write a message to the citizen.
    #[serde(default)]
    pub message_required: bool,
    /// Whether the citizen is notified (e-mail or SMS per their preferences).
    #[serde(default)]
    pub notify: bool,
    /// Marks the request incomplete: the agent lists the missing items and sets a deadline,
    /// and the legal dates are recomputed (CRPA L114-5).
    #[serde(default)]
    pub incomplete: bool,
    /// Issues the acknowledgement of receipt (ARE) of a request that got an acknowledgement of
    /// registration (AEE) at submission.
    #[serde(default)]
    pub acknowledges: bool,
}

/// A workflow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workflow {
    /// Statuses, in their usual order.
    pub statuses: Vec<Status>,
    /// Transitions.
    pub transitions: Vec<Transition>,
}

/// Why a transition was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("cette action n'existe pas pour cette démarche")]
    Unknown,
    #[error("cette action n'est pas possible au statut « {0} »")]
    NotFromHere(String),
    #[error("cette action est réservée aux rôles « {0} » et supérieurs")]
    NotAllowed(&'static str),
    #[error("« Message à l'usager » : un message est obligatoire pour cette action")]
    MessageRequired,
}

fn status(key: &str, label: &str, citizen_label: &str, phase: Phase) -> Status {
    Status { key: key.into(), label: label.into(), citizen_label: citizen_label.into(), phase }
}

#[allow(clippy::too_many_arguments)]
fn transition(
    key: &str,
    label: &str,
    from: &[&str],
    to: &str,
    min_role: Role,
    message_required: bool,
    notify: bool,
) -> Transition {
    Transition {
        key: key.into(),
        label: label.into(),
        from: from.iter().map(|s| (*s).to_owned()).collect(),
        to: to.into(),
        min_role,
        message_required,
        notify,
        incomplete: false,
        acknowledges: false,
    }
}

impl Default for Workflow {
    /// submitted → received → in progress → awaiting the citizen → accepted / rejected → closed.
    fn default() -> Self {
        let open = ["received", "in_progress"];
        let mut t = vec![
            transition(
                "acknowledge",
                "Accuser réception",
                &["submitted"],
                "received",
                Role::Agent,
                false,
                true,
            ),
            transition(
                "start",
                "Prendre en charge",
                &["submitted", "received"],
                "in_progress",
                Role::Agent,
                false,
                true,
            ),
            transition(
                "ask_completion",
                "Demander des compléments",
                &open,
                "awaiting_citizen",
                Role::Agent,
                true,
                true,
            ),
            transition(
                "resume",
                "Reprendre l'instruction",
                &["awaiting_citizen"],
                "in_progress",
                Role::Agent,
                false,
                false,
            ),
            transition(
                "accept",
                "Accepter",
                &["received", "in_progress", "awaiting_citizen"],
                "accepted",
                Role::Agent,
                true,
                true,
            ),
            transition(
                "reject",
                "Refuser",
                &["received", "in_progress", "awaiting_citizen"],
                "rejected",
                Role::Agent,
                true,
                true,
            ),
            transition(
                "close",
                "Clôturer",
                &["accepted", "rejected", "received", "in_progress"],
                "closed",
                Role::Agent,
                false,
                false,
            ),
            transition(
                "reopen",
                "Rouvrir",
                &["closed", "accepted", "rejected"],
                "in_progress",
                Role::Supervisor,
                true,
                true,
            ),
        ];
        t[0].acknowledges = true;
        t[2].incomplete = true;
        Self {
            statuses: vec![
                status(
                    "submitted",
                    "Enregistrée (accusé de réception à envoyer)",
                    "Enregistrée",
                    Phase::Open,
                ),
                status("received", "Reçue", "Reçue", Phase::Open),
                status(
                    "in_progress",
                    "En cours d'instruction",
                    "En cours de traitement",
                    Phase::Open,
                ),
                status(
                    "awaiting_citizen",
                    "En attente de l'usager",
                    "En attente de votre part",
                    Phase::Waiting,
                ),
                status("accepted", "Acceptée", "Acceptée", Phase::Closed),
                status("rejected", "Refusée", "Refusée", Phase::Closed),
                status("closed", "Clôturée", "Clôturée", Phase::Closed),
            ],
            transitions: t,
        }
    }
}

impl Workflow {
    /// A status by key.
    pub fn status(&self, key: &str) -> Option<&Status> {
        self.statuses.iter().find(|s| s.key == key)
    }

    /// The phase of a status (unknown statuses count as open: someone must look at them).
    pub fn phase(&self, key: &str) -> Phase {
        self.status(key).map_or(Phase::Open, |s| s.phase)
    }

    /// Transitions possible from `current` for someone with `role`.
    pub fn available(&self, current: &str, role: Role) -> Vec<&Transition> {
        self.transitions
            .iter()
            .filter(|t| t.from.iter().any(|f| f == current) && role >= t.min_role)
            .collect()
    }

    /// Checks a transition; returns it.
    pub fn check(
        &self,
        key: &str,
        current: &str,
        role: Role,
        message: &str,
    ) -> Result<&Transition, TransitionError> {
        let t = self.transitions.iter().find(|t| t.key == key).ok_or(TransitionError::Unknown)?;
        if !t.from.iter().any(|f| f == current) {
            let label = self.status(current).map_or(current.to_owned(), |s| s.label.clone());
            return Err(TransitionError::NotFromHere(label));
        }
        if role < t.min_role {
            return Err(TransitionError::NotAllowed(t.min_role.label()));
        }
        if t.message_required && message.trim().is_empty() {
            return Err(TransitionError::MessageRequired);
        }
        Ok(t)
    }

    /// Checks that every transition names known statuses.
    pub fn is_consistent(&self) -> bool {
        let known = |k: &String| self.status(k).is_some();
        self.transitions.iter().all(|t| known(&t.to) && t.from.iter().all(known))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_workflow_goes_from_submission_to_closure() {
        let w = Workflow::default();
        assert!(w.is_consistent());
        let path = [
            ("acknowledge", "submitted"),
            ("start", "received"),
            ("ask_completion", "in_progress"),
            ("resume", "awaiting_citizen"),
            ("accept", "in_progress"),
            ("close", "accepted"),
        ];
        for (key, from) in path {
            assert!(w.check(key, from, Role::Agent, "message").is_ok(), "{key} from {from}");
        }
        assert_eq!(w.phase("awaiting_citizen"), Phase::Waiting);
        assert_eq!(w.phase("closed"), Phase::Closed);
    }

    #[test]
    fn transitions_check_status_role_and_message() {
        let w = Workflow::default();
        assert_eq!(
            w.check("accept", "closed", Role::Agent, "ok").unwrap_err(),
            TransitionError::NotFromHere("Clôturée".into())
        );
        assert_eq!(
            w.check("reopen", "closed", Role::Agent, "ok").unwrap_err(),
            TransitionError::NotAllowed("Responsable")
        );
        assert!(w.check("reopen", "closed", Role::Supervisor, "ok").is_ok());
        assert_eq!(
            w.check("reject", "in_progress", Role::Agent, "  ").unwrap_err(),
            TransitionError::MessageRequired
        );
        assert_eq!(
            w.check("nope", "in_progress", Role::Agent, "").unwrap_err(),
            TransitionError::Unknown
        );
        let keys: Vec<_> =
            w.available("in_progress", Role::Agent).iter().map(|t| t.key.as_str()).collect();
        assert_eq!(keys, ["ask_completion", "accept", "reject", "close"]);
    }
}
