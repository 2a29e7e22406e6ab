//! Guichet's domain: the words of DESIGN.md §2 as Rust types, and the rules that need no I/O.
//!
//! Every validated value is a newtype whose `parse` is the only way in, so that a `Slug`, an
//! `InseeCode` or an `Email` seen anywhere else in the workspace is known to be well formed.
//! This crate never touches a database, a socket or the clock: callers pass the time in.

#![forbid(unsafe_code)]

pub mod audit;
pub mod calendar;
pub mod catalogue;
pub mod channel;
pub mod clock;
pub mod deadline;
pub mod form;
pub mod ids;
pub mod metrics;
pub mod request;
pub mod tenant;
pub mod values;
pub mod workflow;

pub use calendar::{HolidayArea, PublicHoliday};
pub use deadline::{
    DelayLength, HistoryError, Incompleteness, LegalDelay, Regime, RequestHistory,
    acknowledgement_deadlines, deemed_decision_date,
};
pub use ids::{
    AgentId, CitizenId, DocumentId, DraftId, EmailId, EventId, FileId, JobId, RequestId, ServiceId,
    TenantId,
};
pub use tenant::{Branding, Role, TenantContact, TenantKind};
pub use values::{Colour, Email, InseeCode, ParseError, Phone, Siren, Slug};

/// Folds text for search: lowercase, accents removed, punctuation as spaces ("Éclairage
/// public !" → "eclairage public"). Both databases index and query folded text, so searches
/// ignore case and accents the same way on each.
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().flat_map(char::to_lowercase) {
        let folded = match c {
            'à' | 'á' | 'â' | 'ä' | 'ã' | 'å' => 'a',
            'ç' => 'c',
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'ì' | 'í' | 'î' | 'ï' => 'i',
            'ñ' => 'n',
            'ò' | 'ó' | 'ô' | 'ö' | 'õ' => 'o',
            'ù' | 'ú' | 'û' | 'ü' => 'u',
            'ý' | 'ÿ' => 'y',
            'œ' => {
                out.push('o');
                'e'
            }
            'æ' => {
                out.push('a');
                'e'
            }
            c if c.is_alphanumeric() => c,
            _ => ' ',
        };
        out.push(folded);
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod fold_tests {
    #[test]
    fn folding_removes_case_accents_and_punctuation() {
        assert_eq!(
            super::fold("Éclairage  PUBLIC, rue de l'Œuvre !"),
            "eclairage public rue de l oeuvre"
        );
        assert_eq!(super::fold("EC-2026-000123"), "ec 2026 000123");
    }
}
