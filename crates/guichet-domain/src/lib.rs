//! Guichet's domain: the words of DESIGN.md §2 as Rust types, and the rules that need no I/O.
//!
//! Every validated value is a newtype whose `parse` is the only way in, so that a `Slug`, an
//! `InseeCode` or an `Email` seen anywhere else in the workspace is known to be well formed.
//! This crate never touches a database, a socket or the clock: callers pass the time in.

#![forbid(unsafe_code)]

pub mod catalogue;
pub mod form;
pub mod ids;
pub mod tenant;
pub mod values;

pub use ids::{AgentId, CitizenId, JobId, TenantId};
pub use tenant::{Branding, Role, TenantContact, TenantKind};
pub use values::{Colour, Email, InseeCode, ParseError, Phone, Siren, Slug};
