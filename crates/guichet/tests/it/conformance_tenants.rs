//! Storage stories about the territory, run on every backend.

use guichet::demo;
use guichet_domain::{InseeCode, Slug, TenantKind};
use guichet_store::{ImportOutcome, NewJob, StoreError};
use guichet_testkit::{TestDb, fixtures::tenant};
use time::OffsetDateTime;

#[tokio::test]
async fn tenants_form_a_tree_found_by_slug_and_listed_by_name() {
    for db in TestDb::all().await {
        let s = &db.store;
        let epci = s.add_tenant(&tenant("cc-test", TenantKind::Epci, None, 1), &[]).await.unwrap();
        let mut b = tenant("bravo", TenantKind::Commune, Some(epci.id), 2);
        b.name = "Bravo".into();
        b.insee_code = Some(InseeCode::parse("2A004").unwrap());
        let mut a = tenant("alpha", TenantKind::Commune, Some(epci.id), 3);
        a.name = "Alpha".into();
        s.add_tenant(&b, &[]).await.unwrap();
        s.add_tenant(&a, &[]).await.unwrap();

        let roots = s.list_root_tenants().await.unwrap();
        assert_eq!(
            roots.iter().map(|t| t.slug.as_str()).collect::<Vec<_>>(),
            ["cc-test"],
            "{:?}",
            db.backend
        );
        let members = s.list_member_tenants(epci.id).await.unwrap();
        assert_eq!(members.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["Alpha", "Bravo"]);
        let found = s.find_tenant_by_slug(&Slug::parse("bravo").unwrap()).await.unwrap().unwrap();
        assert_eq!(found.insee_code.unwrap().as_str(), "2A004", "{:?}", db.backend);
        assert_eq!(found.parent_id, Some(epci.id));
        assert_eq!(found.contact, b.contact);
        assert!(s.find_tenant_by_slug(&Slug::parse("nope").unwrap()).await.unwrap().is_none());
        assert_eq!(s.count_tenants().await.unwrap(), 3);
        db.finish().await;
    }
}

#[tokio::test]
async fn duplicate_slugs_and_sirens_are_named_conflicts() {
    for db in TestDb::all().await {
        let s = &db.store;
        s.add_tenant(&tenant("alpha", TenantKind::Commune, None, 1), &[]).await.unwrap();
        let err =
            s.add_tenant(&tenant("alpha", TenantKind::Commune, None, 2), &[]).await.unwrap_err();
        assert!(
            matches!(&err, StoreError::Conflict { constraint } if constraint == "tenants_slug_key"),
            "{:?}: {err:?}",
            db.backend
        );
        let err =
            s.add_tenant(&tenant("beta", TenantKind::Commune, None, 1), &[]).await.unwrap_err();
        assert!(
            matches!(&err, StoreError::Conflict { constraint } if constraint == "tenants_siren_key"),
            "{:?}: {err:?}",
            db.backend
        );
        db.finish().await;
    }
}

#[tokio::test]
async fn custom_domains_are_found_case_insensitively() {
    for db in TestDb::all().await {
        let mut t = tenant("alpha", TenantKind::Commune, None, 1);
        t.custom_domain = Some("Demarches.Alpha.test".into());
        db.store.add_tenant(&t, &[]).await.unwrap();
        let found = db.store.find_tenant_by_domain("DEMARCHES.alpha.test").await.unwrap();
        assert_eq!(
            found.map(|t| t.slug.into_inner()),
            Some("alpha".to_owned()),
            "{:?}",
            db.backend
        );
        assert!(db.store.find_tenant_by_domain("other.test").await.unwrap().is_none());
        db.finish().await;
    }
}

#[tokio::test]
async fn a_job_commits_and_rolls_back_with_the_write_that_causes_it() {
    for db in TestDb::all().await {
        let s = &db.store;
        let now = OffsetDateTime::now_utc();
        let job = NewJob::now("tenant.welcome", serde_json::json!({"slug": "alpha"}), now);
        s.add_tenant(&tenant("alpha", TenantKind::Commune, None, 1), std::slice::from_ref(&job))
            .await
            .unwrap();
        assert_eq!(s.job_counts().await.unwrap().pending, 1, "{:?}", db.backend);

        // The tenant insert fails (same slug): its job must not be enqueued either.
        let again = NewJob::now("tenant.welcome", serde_json::json!({"slug": "again"}), now);
        assert!(
            s.add_tenant(&tenant("alpha", TenantKind::Commune, None, 2), &[again]).await.is_err()
        );
        assert_eq!(s.job_counts().await.unwrap().pending, 1, "{:?}", db.backend);
        let claimed = s.claim_job(now, time::Duration::minutes(1)).await.unwrap().unwrap();
        assert_eq!(claimed.payload, serde_json::json!({"slug": "alpha"}));
        db.finish().await;
    }
}

#[tokio::test]
async fn the_demo_territory_loads_once_with_32_communes() {
    let territory = demo::territory("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA").unwrap();
    for db in TestDb::all().await {
        let s = &db.store;
        assert!(!s.has_import(demo::IMPORT_NAME).await.unwrap());
        assert_eq!(s.import_territory(&territory).await.unwrap(), ImportOutcome::Loaded);
        assert_eq!(
            s.import_territory(&territory).await.unwrap(),
            ImportOutcome::AlreadyLoaded,
            "{:?}",
            db.backend
        );
        assert!(s.has_import(demo::IMPORT_NAME).await.unwrap());
        assert_eq!(s.count_tenants().await.unwrap(), 33);
        let epci =
            s.find_tenant_by_slug(&Slug::parse(demo::EPCI_SLUG).unwrap()).await.unwrap().unwrap();
        assert_eq!(s.list_member_tenants(epci.id).await.unwrap().len(), 32, "{:?}", db.backend);
        db.finish().await;
    }
}

#[tokio::test]
async fn a_failing_import_leaves_nothing_behind() {
    for db in TestDb::all().await {
        let mut territory = demo::territory("hash").unwrap();
        // Two tenants with the same slug: the import must fail as a whole, marker included.
        let dup = territory.tenants[1].clone();
        territory
            .tenants
            .push(guichet_store::NewTenant { id: guichet_domain::TenantId::new(), ..dup });
        assert!(db.store.import_territory(&territory).await.is_err());
        assert_eq!(db.store.count_tenants().await.unwrap(), 0, "{:?}", db.backend);
        assert!(!db.store.has_import(demo::IMPORT_NAME).await.unwrap());
        db.finish().await;
    }
}
