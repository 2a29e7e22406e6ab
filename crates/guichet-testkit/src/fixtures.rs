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
