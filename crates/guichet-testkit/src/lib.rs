//! Test support, used only as a dev-dependency: throwaway databases on every backend, so that
//! the same story runs on SQLite and on PostgreSQL.
//!
//! PostgreSQL is used when `GUICHET_TEST_POSTGRES_URL` names a server (an admin URL such as
//! `postgres://postgres@127.0.0.1:5432/test`); each test gets its own database, dropped at the
//! end. Without the variable, PostgreSQL stories are skipped with a message, except under
//! `CI=true`, where a missing PostgreSQL fails the test: CI must never skip a backend.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::sync::Arc;

use guichet_store::Store;
use guichet_store_postgres::{PgOptions, PgStore};
use guichet_store_sqlite::{SqliteOptions, SqliteStore};

/// A backend under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A migrated, empty database that disappears when dropped.
pub struct TestDb {
    /// The store on it.
    pub store: Arc<dyn Store>,
    /// Its URL (to start the binary against it).
    pub url: String,
    /// Which backend.
    pub backend: Backend,
    cleanup: Cleanup,
}

enum Cleanup {
    Dir(PathBuf),
    Database { admin_url: String, name: String },
}

fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

/// The PostgreSQL admin URL, or `None` to skip (panics under CI=true).
pub fn postgres_admin_url() -> Option<String> {
    match std::env::var("GUICHET_TEST_POSTGRES_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!(
                    "CI=true but GUICHET_TEST_POSTGRES_URL is not set: PostgreSQL may not be skipped in CI"
                );
            }
            eprintln!("SKIPPED postgres: GUICHET_TEST_POSTGRES_URL is not set");
            None
        }
    }
}

/// Replaces the database name (the URL path) of `url`.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..].find('/').map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{name}", &base[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

impl TestDb {
    /// A fresh SQLite database in a temporary directory.
    pub async fn sqlite() -> Self {
        let dir = std::env::temp_dir().join(unique("guichet_test"));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        let url = format!("sqlite://{}", dir.join("guichet.sqlite3").display());
        let store = SqliteStore::connect(
            &url,
            &SqliteOptions { synchronous_full: false, ..Default::default() },
        )
        .await
        .expect("open SQLite");
        store.migrate().await.expect("migrate SQLite");
        Self { store: Arc::new(store), url, backend: Backend::Sqlite, cleanup: Cleanup::Dir(dir) }
    }

    /// A fresh PostgreSQL database, or `None` when PostgreSQL is not configured.
    pub async fn postgres() -> Option<Self> {
        Self::postgres_with_connections(8).await
    }

    /// A fresh PostgreSQL database whose store has at most `max_connections` connections.
    pub async fn postgres_with_connections(max_connections: u32) -> Option<Self> {
        let admin_url = postgres_admin_url()?;
        let name = unique("guichet_test");
        guichet_store_postgres::scratch::create_database(&admin_url, &name)
            .await
            .expect("create PostgreSQL test database");
        let url = with_database(&admin_url, &name);
        let store = PgStore::connect(&url, &PgOptions { max_connections, ..Default::default() })
            .await
            .expect("connect to PostgreSQL");
        store.migrate().await.expect("migrate PostgreSQL");
        Some(Self {
            store: Arc::new(store),
            url,
            backend: Backend::Postgres,
            cleanup: Cleanup::Database { admin_url, name },
        })
    }

    /// Another store on the same database, as a second instance of Guichet sharing it would
    /// have: its own connections and in-process state. Close it before `finish`.
    pub async fn another_instance(&self) -> Arc<dyn Store> {
        match self.backend {
            Backend::Sqlite => Arc::new(
                SqliteStore::connect(
                    &self.url,
                    &SqliteOptions { synchronous_full: false, ..Default::default() },
                )
                .await
                .expect("open SQLite again"),
            ),
            Backend::Postgres => Arc::new(
                PgStore::connect(&self.url, &PgOptions::default())
                    .await
                    .expect("connect to PostgreSQL again"),
            ),
        }
    }

    /// Every configured backend: SQLite always, PostgreSQL when configured.
    pub async fn all() -> Vec<Self> {
        let mut dbs = vec![Self::sqlite().await];
        dbs.extend(Self::postgres().await);
        dbs
    }

    /// Closes the store and removes the database. Call at the end of a test; a test that
    /// panics leaves its database behind for inspection.
    pub async fn finish(self) {
        self.store.close().await;
        match self.cleanup {
            Cleanup::Dir(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Database { admin_url, name } => {
                let _ = guichet_store_postgres::scratch::drop_database(&admin_url, &name).await;
            }
        }
    }
}

pub mod fixtures;
