//! The library half of the `guichet` binary: configuration, the demo territory and the
//! subcommands, kept in a library so that integration tests can reach them. This is the only
//! crate that depends on both storage backends; everything above it sees `Arc<dyn Store>`.

#![forbid(unsafe_code)]

pub mod audit;
pub mod config;
pub mod demo;
pub mod generate;
pub mod run;
pub mod stats;
