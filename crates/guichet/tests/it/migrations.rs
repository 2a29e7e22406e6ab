//! Both backends must carry the same migrations, version for version and name for name.

use std::collections::BTreeSet;
use std::path::Path;

use guichet_store_postgres::PgStore;
use guichet_store_sqlite::SqliteStore;

fn files(dir: &str) -> BTreeSet<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(dir).join("migrations");
    std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.expect("dir entry").file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn both_backends_have_the_same_migration_versions_and_names() {
    assert_eq!(SqliteStore::migration_names(), PgStore::migration_names());
    assert_eq!(files("guichet-store-sqlite"), files("guichet-store-postgres"));
    assert!(!SqliteStore::migration_names().is_empty());
}
