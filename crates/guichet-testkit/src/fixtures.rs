//! Builders for test data.

use guichet_domain::{
    Branding, Colour, Email, InseeCode, Phone, Siren, Slug, TenantContact, TenantId, TenantKind,
};
use guichet_store::NewTenant;

/// A valid tenant named after its slug; `n` makes the SIREN unique.
pub fn tenant(slug: &str, kind: TenantKind, parent: Option<TenantId>, n: u32) -> NewTenant {
    NewTenant {
        id: TenantId::new(),
        slug: Slug::parse(slug).expect("valid slug"),
        kind,
        name: format!("Collectivité {slug}"),
        parent_id: parent,
        siren: Siren::with_key(30_000_000 + n),
        insee_code: (kind == TenantKind::Commune)
            .then(|| InseeCode::parse(&format!("2A{:03}", n % 1000)).expect("valid code")),
        contact: TenantContact {
            service_name: format!("Accueil de {slug}"),
            street: "1 place de la Mairie".to_owned(),
            postcode: "20000".to_owned(),
            city: "AJACCIO".to_owned(),
            email: Email::parse(&format!("accueil@{slug}.test")).expect("valid e-mail"),
            phone: Phone::parse("04 95 00 00 00").expect("valid phone"),
        },
        branding: Branding {
            primary_colour: Colour::parse("#1f3f77").expect("colour"),
            logo_url: None,
        },
        custom_domain: None,
    }
}

/// A sign-up for `email` with a profile living in commune `insee`.
pub fn citizen_account(email: &str, insee: Option<&str>) -> guichet_store::NewCitizenAccount {
    guichet_store::NewCitizenAccount {
        id: guichet_domain::CitizenId::new(),
        email: Email::parse(email).expect("valid e-mail"),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA".to_owned(),
        profile: guichet_store::Profile {
            given_name: "Camille".to_owned(),
            family_name: "Martin".to_owned(),
            insee_code: insee.map(|i| InseeCode::parse(i).expect("valid code")),
            notify_email: true,
            ..Default::default()
        },
    }
}

/// A one-time token that expires in an hour.
pub fn token(hash: &str, purpose: guichet_store::TokenPurpose) -> guichet_store::NewToken {
    guichet_store::NewToken {
        token_hash: hash.to_owned(),
        purpose,
        expires_at: time::OffsetDateTime::now_utc() + time::Duration::hours(1),
    }
}

/// The tenant's service made from the shipped template `key`.
pub fn service(tenant: TenantId, key: &str) -> guichet_store::Service {
    let templates = guichet_domain::catalogue::templates().expect("templates parse");
    let t = templates.iter().find(|t| t.key == key).expect("known template");
    guichet_store::Service::from_template(t, tenant, time::OffsetDateTime::now_utc())
}
