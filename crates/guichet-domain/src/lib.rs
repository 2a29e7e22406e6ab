//! Guichet's domain: the words of DESIGN.md §2 as Rust types, and the rules that need no I/O.
//!
//! Every validated value is a newtype whose `parse` is the only way in, so that a `Slug`, an
//! `InseeCode` or an `Email` seen anywhere else in the workspace is known to be well formed.
//! This crate never touches a database, a socket or the clock: callers pass the time in.

#![forbid(unsafe_code)]

pub mod audit;
pub mod calendar;
pub mod catalogue;
pub mod clock;
pub mod deadline;
pub mod form;
pub mod ids;
pub mod request;
pub mod tenant;
pub mod values;

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
