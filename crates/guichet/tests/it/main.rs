//! Integration tests of the `guichet` crate: the storage conformance suite (the same stories on
//! SQLite and, when configured, PostgreSQL) and the binary's behaviour as an operator sees it.

mod audit;
mod binary;
mod conformance_backoffice;
mod conformance_dashboards;
mod conformance_jobs;
mod conformance_portal;
mod conformance_tenants;
mod generate;
mod http;
mod migrations;
