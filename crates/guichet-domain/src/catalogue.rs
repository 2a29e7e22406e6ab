//! Service templates shipped with Guichet as data (the shared "bouquet" a tenant instantiates):
//! JSON files in `service-templates/`, compiled into the binary and checked by tests.

use serde::{Deserialize, Serialize};

use crate::form::FormDefinition;

/// Which level usually provides a service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Competence {
    /// Each commune provides it.
    Commune,
    /// The EPCI provides it for all its communes.
    Epci,
}

/// A service template.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceTemplate {
    /// Stable key, also the default slug of services made from it.
    pub key: String,
    /// Title.
    pub title: String,
    /// Category in the catalogue.
    pub category: String,
    /// Usual provider.
    pub competence: Competence,
    /// One sentence for the catalogue.
    pub summary: String,
    /// What the service is for, rules, who may ask.
    pub description: String,
    /// What the citizen needs to have at hand.
    pub requirements: Vec<String>,
    /// Expected delay, as told to citizens.
    pub delay_text: String,
    /// Legal regime: "sva", "svr" or "none".
    pub regime: String,
    /// Legal delay in `DelayLength`'s stored form: "months:2", "days:30", "working_days:10".
    pub delay: String,
    /// Whether submissions get an acknowledgement of registration (AEE) first and the
    /// acknowledgement of receipt (ARE) after an agent's check.
    pub prior_check: bool,
    /// Prefix of request references ("EC" → EC-2026-000123).
    pub reference_prefix: String,
    /// The form.
    pub form: FormDefinition,
}

const SOURCES: [&str; 5] = [
    include_str!("../service-templates/acte-etat-civil.json"),
    include_str!("../service-templates/signalement.json"),
    include_str!("../service-templates/question-mairie.json"),
    include_str!("../service-templates/reservation-salle.json"),
    include_str!("../service-templates/declaration-prealable.json"),
];

/// Every shipped template. The files are compiled in and a test parses them all, so a parse
/// failure here is a build defect; it is reported rather than panicking.
pub fn templates() -> Result<Vec<ServiceTemplate>, serde_json::Error> {
    SOURCES.iter().map(|s| serde_json::from_str(s)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_template_parses_and_its_form_is_consistent() {
        let all = templates().expect("templates parse");
        assert_eq!(all.len(), 5);
        for t in &all {
            t.form.check().unwrap_or_else(|e| panic!("{}: {e}", t.key));
            assert!(crate::deadline::Regime::parse(&t.regime).is_some(), "{}", t.key);
            crate::deadline::DelayLength::parse(&t.delay)
                .unwrap_or_else(|e| panic!("{}: {e}", t.key));
        }
        let regimes: Vec<&str> = all.iter().map(|t| t.regime.as_str()).collect();
        assert!(regimes.contains(&"sva") && regimes.contains(&"svr") && regimes.contains(&"none"));
    }
}
