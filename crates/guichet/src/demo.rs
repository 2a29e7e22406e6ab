//! The demo territory: one EPCI with 32 member communes (fictional names, INSEE-shaped codes in
//! a fictional corner of department 45), agents in every tenant and a few citizens. Loaded once
//! through `TerritoryStore::import_territory`; later capabilities add their demo data here.

use guichet_domain::catalogue::{self, Competence};
use guichet_domain::{
    AgentId, Branding, CitizenId, Colour, Email, InseeCode, ParseError, Phone, Role, Siren, Slug,
    TenantContact, TenantId, TenantKind,
};
use guichet_store::{NewAgent, NewCitizen, NewTenant, Service, TerritoryImport};

/// The name under which the demo import is recorded.
pub const IMPORT_NAME: &str = "demo-v1";

/// The shared password of every demo account (printed by `guichet demo`).
pub const PASSWORD: &str = "demo-guichet-2026";

/// Slug of the demo EPCI.
pub const EPCI_SLUG: &str = "cc-val-de-lys";

/// The commune whose accounts are printed as examples.
pub const SAMPLE_COMMUNE: &str = "saint-aubin-sur-lys";

/// (name, INSEE code, postcode) of the 32 member communes.
const COMMUNES: [(&str, &str, &str); 32] = [
    ("Saint-Aubin-sur-Lys", "45601", "45130"),
    ("Bellecombe", "45602", "45130"),
    ("Montferrand-le-Lys", "45603", "45131"),
    ("Les Essarts-du-Val", "45604", "45131"),
    ("Villeneuve-sur-Lys", "45605", "45132"),
    ("Châteaubrun", "45606", "45132"),
    ("Fontaine-aux-Saules", "45607", "45133"),
    ("La Chapelle-Verte", "45608", "45133"),
    ("Brécy-le-Haut", "45609", "45134"),
    ("Sainte-Colombe-du-Val", "45610", "45134"),
    ("Mareuil-les-Prés", "45611", "45135"),
    ("Oussières", "45612", "45135"),
    ("Le Breuil-Doré", "45613", "45136"),
    ("Courvilliers", "45614", "45136"),
    ("Saint-Genès-la-Forêt", "45615", "45137"),
    ("Lanthenay", "45616", "45137"),
    ("Rouvray-sur-Lys", "45617", "45138"),
    ("Bois-Garnier", "45618", "45138"),
    ("Marcilly-en-Lys", "45619", "45139"),
    ("Vaudrey", "45620", "45139"),
    ("Pontchâtel", "45621", "45140"),
    ("La Ferté-aux-Bois", "45622", "45140"),
    ("Noyelles-le-Val", "45623", "45141"),
    ("Saint-Maurice-des-Champs", "45624", "45141"),
    ("Épinay-sur-Lys", "45625", "45142"),
    ("Corbelin", "45626", "45142"),
    ("Hautefeuille", "45627", "45143"),
    ("Les Granges-du-Lys", "45628", "45143"),
    ("Mézières-en-Val", "45629", "45144"),
    ("Tournefeuille-le-Haut", "45630", "45144"),
    ("Aubigny-la-Rivière", "45631", "45145"),
    ("Val-d'Oussière", "45632", "45145"),
];

/// Dark enough for white text at 4.5:1 (checked by a test).
const COLOURS: [&str; 6] = ["#1f3f77", "#7a1f3d", "#1d5c3a", "#5b2a86", "#8a3b00", "#0b5563"];

/// A slug from a French name: accents folded, apostrophes and spaces become hyphens.
pub fn slugify(name: &str) -> String {
    let folded: String = name
        .chars()
        .map(|c| match c {
            'à' | 'â' | 'ä' | 'À' | 'Â' => 'a',
            'é' | 'è' | 'ê' | 'ë' | 'É' | 'È' | 'Ê' => 'e',
            'î' | 'ï' | 'Î' => 'i',
            'ô' | 'ö' | 'Ô' => 'o',
            'ù' | 'û' | 'ü' | 'Û' => 'u',
            'ç' | 'Ç' => 'c',
            'œ' => 'o',
            c if c.is_ascii_alphanumeric() => c.to_ascii_lowercase(),
            _ => '-',
        })
        .collect();
    folded.split('-').filter(|p| !p.is_empty()).collect::<Vec<_>>().join("-")
}

fn contact(
    service: &str,
    street: &str,
    postcode: &str,
    city: &str,
    slug: &str,
    phone: &str,
) -> Result<TenantContact, ParseError> {
    Ok(TenantContact {
        service_name: service.to_owned(),
        street: street.to_owned(),
        postcode: postcode.to_owned(),
        city: city.to_uppercase(),
        email: Email::parse(&format!("accueil@{slug}.test"))?,
        phone: Phone::parse(phone)?,
    })
}

/// Builds the demo territory. `password_hash` is the argon2id hash of [`PASSWORD`], computed
/// once by the caller and shared by every demo account: hashing each of ~70 accounts would
/// cost seconds at every first start for no security gain on public demo credentials.
pub fn territory(password_hash: &str) -> Result<TerritoryImport, ParseError> {
    let epci_id = TenantId::new();
    let mut tenants = vec![NewTenant {
        id: epci_id,
        slug: Slug::parse(EPCI_SLUG)?,
        kind: TenantKind::Epci,
        name: "Communauté de communes du Val de Lys".to_owned(),
        parent_id: None,
        siren: Siren::with_key(24_450_100),
        insee_code: None,
        contact: contact(
            "Communauté de communes du Val de Lys – accueil",
            "2 place de l'Hôtel de Communauté",
            "45130",
            "Saint-Aubin-sur-Lys",
            EPCI_SLUG,
            "02 38 00 10 00",
        )?,
        branding: Branding { primary_colour: Colour::parse(COLOURS[0])?, logo_url: None },
        custom_domain: None,
    }];
    let mut agents = vec![
        agent(
            "agent",
            EPCI_SLUG,
            "Alexis Roussel (EPCI)",
            password_hash,
            vec![(epci_id, Role::Agent)],
        )?,
        agent(
            "responsable",
            EPCI_SLUG,
            "Nadia Benali (EPCI)",
            password_hash,
            vec![(epci_id, Role::Supervisor)],
        )?,
        agent(
            "admin",
            EPCI_SLUG,
            "Hugo Lefèvre (EPCI)",
            password_hash,
            vec![(epci_id, Role::TenantAdmin)],
        )?,
    ];
    let mut granted = Vec::new();
    for (i, (name, insee, postcode)) in COMMUNES.iter().enumerate() {
        let slug = slugify(name);
        let id = TenantId::new();
        let n = u32::try_from(i).unwrap_or(0);
        tenants.push(NewTenant {
            id,
            slug: Slug::parse(&slug)?,
            kind: TenantKind::Commune,
            name: (*name).to_owned(),
            parent_id: Some(epci_id),
            siren: Siren::with_key(21_450_600 + n),
            insee_code: Some(InseeCode::parse(insee)?),
            contact: contact(
                &format!("Mairie de {name} – accueil"),
                &format!("{} place de la Mairie", 1 + i % 9),
                postcode,
                name,
                &slug,
                &format!("02 38 00 {:02} {:02}", 20 + i / 10, 10 + i),
            )?,
            branding: Branding {
                primary_colour: Colour::parse(COLOURS[i % COLOURS.len()])?,
                logo_url: None,
            },
            custom_domain: None,
        });
        agents.push(agent(
            "agent",
            &slug,
            &format!("Secrétariat de {name}"),
            password_hash,
            vec![(id, Role::Agent)],
        )?);
        agents.push(agent(
            "admin",
            &slug,
            &format!("Administration de {name}"),
            password_hash,
            vec![(id, Role::TenantAdmin)],
        )?);
        // The EPCI's agent is also granted the first three communes (shared service desk).
        if i < 3 {
            granted.push((id, Role::Agent));
        }
    }
    agents[0].memberships.extend(granted);

    let citizens = [
        ("Camille", "Martin", "camille.martin", 0, "06 12 34 56 78"),
        ("Louis", "Bernard", "louis.bernard", 0, "06 23 45 67 89"),
        ("Inès", "Petit", "ines.petit", 1, "07 12 34 56 78"),
        ("Jules", "Moreau", "jules.moreau", 4, "06 34 56 78 90"),
        ("Léa", "Garnier", "lea.garnier", 9, "06 45 67 89 01"),
        ("Noah", "Faure", "noah.faure", 20, "07 23 45 67 89"),
    ]
    .into_iter()
    .map(|(given, family, local, commune, phone)| {
        Ok(NewCitizen {
            id: CitizenId::new(),
            email: Email::parse(&format!("{local}@exemple.test"))?,
            password_hash: password_hash.to_owned(),
            given_name: given.to_owned(),
            family_name: family.to_owned(),
            phone: Some(Phone::parse(phone)?),
            insee_code: Some(InseeCode::parse(COMMUNES[commune].1)?),
            email_verified: true,
        })
    })
    .collect::<Result<Vec<_>, ParseError>>()?;

    // Every tenant offers the shipped templates of its level: communes their own services, the
    // EPCI those of its competence (shown in every member commune's catalogue).
    let templates = catalogue::templates()
        .map_err(|_| ParseError::Invalid("modèles de démarches illisibles"))?;
    let now = time::OffsetDateTime::now_utc();
    let mut services = Vec::new();
    for t in &tenants {
        let level = if t.kind == TenantKind::Epci { Competence::Epci } else { Competence::Commune };
        for template in templates.iter().filter(|tpl| tpl.competence == level) {
            services.push(Service::from_template(template, t.id, now));
        }
    }

    Ok(TerritoryImport { name: IMPORT_NAME.to_owned(), tenants, agents, citizens, services })
}

fn agent(
    local: &str,
    slug: &str,
    display_name: &str,
    password_hash: &str,
    memberships: Vec<(TenantId, Role)>,
) -> Result<NewAgent, ParseError> {
    Ok(NewAgent {
        id: AgentId::new(),
        email: Email::parse(&format!("{local}@{slug}.test"))?,
        password_hash: password_hash.to_owned(),
        display_name: display_name.to_owned(),
        memberships,
    })
}

/// The demo logins printed at start-up: (who, e-mail).
pub fn logins() -> Vec<(&'static str, String)> {
    vec![
        ("Usager (habitant de Saint-Aubin-sur-Lys)", "camille.martin@exemple.test".to_owned()),
        ("Agent de la commune de Saint-Aubin-sur-Lys", format!("agent@{SAMPLE_COMMUNE}.test")),
        ("Agent de l'intercommunalité", format!("agent@{EPCI_SLUG}.test")),
        ("Administrateur de la commune", format!("admin@{SAMPLE_COMMUNE}.test")),
        ("Administrateur de l'intercommunalité", format!("admin@{EPCI_SLUG}.test")),
    ]
}

/// Demo requests, so that the citizen's space and the back-office have something to show: a
/// few requests of Saint-Aubin-sur-Lys and of the EPCI in various statuses, with their
/// acknowledgements, submitted over the past weeks.
pub async fn load_requests(
    store: &dyn guichet_store::Store,
    territory: &TerritoryImport,
) -> anyhow::Result<usize> {
    use guichet_domain::form::Answers;
    use guichet_domain::request::{ActorKind, Channel};
    use guichet_domain::workflow::Workflow;
    use guichet_domain::{EventId, RequestId};
    use guichet_store::{NewEvent, NewRequest, SubmissionRecords};
    use guichet_web::ack::{self, Ack, AckKind};
    use serde_json::json;

    let tenant = |slug: &str| territory.tenants.iter().find(|t| t.slug.as_str() == slug);
    let (Some(commune), Some(epci)) = (tenant(SAMPLE_COMMUNE), tenant(EPCI_SLUG)) else {
        return Ok(0);
    };
    let commune = store.get_tenant(commune.id).await?;
    let epci = store.get_tenant(epci.id).await?;
    let service = |owner: &guichet_store::Tenant, key: &str| {
        territory
            .services
            .iter()
            .find(|s| s.tenant_id == owner.id && s.template.as_deref() == Some(key))
            .cloned()
    };
    let answers = |pairs: &[(&str, serde_json::Value)]| -> Answers {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
    };
    let now = time::OffsetDateTime::now_utc();
    let plans = [
        (
            "camille.martin",
            &commune,
            "acte-etat-civil",
            12,
            "received",
            answers(&[
                ("type_acte", json!("naissance")),
                ("type_document", json!("copie_integrale")),
                ("nombre", json!(1)),
                ("nom", json!("Martin")),
                ("prenoms", json!("Camille")),
                ("date_evenement", json!("1988-03-14")),
                ("pere_nom", json!("Martin")),
                ("pere_prenoms", json!("Paul")),
                ("mere_nom", json!("Durand")),
                ("mere_prenoms", json!("Anne")),
                ("qualite", json!("interesse")),
                ("remise", json!("mairie")),
            ]),
        ),
        (
            "camille.martin",
            &commune,
            "reservation-salle",
            5,
            "in_progress",
            answers(&[
                ("salle", json!("fetes")),
                ("date", json!("2027-06-20")),
                ("creneau", json!("journee")),
                ("objet", json!("Fête des voisins")),
                ("participants", json!(120)),
                ("association", json!("non")),
            ]),
        ),
        (
            "louis.bernard",
            &commune,
            "question-mairie",
            20,
            "closed",
            answers(&[
                ("sujet", json!("Horaires d'été")),
                ("question", json!("La mairie est-elle ouverte le samedi en août ?")),
                ("rappel", json!("non")),
            ]),
        ),
        (
            "louis.bernard",
            &commune,
            "declaration-prealable",
            2,
            "submitted",
            answers(&[
                (
                    "adresse_terrain",
                    json!({"street": "4 chemin des Vignes", "postcode": "45130", "city": "Saint-Aubin-sur-Lys"}),
                ),
                ("cadastre", json!("AB 112")),
                ("superficie", json!(850)),
                ("nature", json!("cloture")),
                ("description", json!("Clôture en bois de 1,50 m côté rue.")),
            ]),
        ),
        (
            "camille.martin",
            &epci,
            "signalement",
            3,
            "received",
            answers(&[
                ("categorie", json!("eclairage")),
                (
                    "description",
                    json!("Éclairage public en panne rue des Écoles depuis une semaine."),
                ),
                (
                    "adresse",
                    json!({"street": "rue des Écoles", "postcode": "45130", "city": "Saint-Aubin-sur-Lys"}),
                ),
            ]),
        ),
        (
            "ines.petit",
            &epci,
            "signalement",
            1,
            "received",
            answers(&[
                ("categorie", json!("voirie")),
                ("description", json!("Nid-de-poule dangereux devant l'école.")),
                (
                    "adresse",
                    json!({"street": "2 place de l'Église", "postcode": "45130", "city": "Bellecombe"}),
                ),
            ]),
        ),
    ];
    let workflow = Workflow::default();
    let mut n = 0;
    for (who, handler, key, days_ago, status, answers) in plans {
        let (Some(svc), Some(citizen)) = (
            service(handler, key),
            territory.citizens.iter().find(|c| c.email.as_str().starts_with(who)),
        ) else {
            continue;
        };
        let received = now - time::Duration::days(days_ago);
        let area = ack::area_of(&[&commune]);
        let dates = ack::legal_dates(&svc, received, area);
        let id = RequestId::new();
        let name = format!("{} {}", citizen.given_name, citizen.family_name);
        let kind = if svc.prior_check { AckKind::Aee } else { AckKind::Are };
        let request = NewRequest {
            id,
            tenant_id: handler.id,
            commune_tenant_id: (handler.id != commune.id).then_some(commune.id),
            service_id: svc.id,
            citizen_id: Some(citizen.id),
            draft_id: None,
            reference_prefix: svc.reference_prefix.clone(),
            channel: Channel::Web,
            status: status.to_owned(),
            answers: answers.clone(),
            submitter: json!({"prenom": citizen.given_name, "nom": citizen.family_name, "courriel": citizen.email}),
            submitted_at: received,
            deemed_decision_on: dates.deemed,
            ack_due_at: Some(ack::ack_due_at(received, area)),
            history: None,
            phase: workflow.phase(status).as_str().to_owned(),
            search_text: guichet_domain::fold(&format!(
                "{name} {} {}",
                citizen.email,
                guichet_domain::form::searchable_text(&answers)
            )),
        };
        let build = |reference: &str| {
            let a = Ack {
                kind,
                reference,
                subject: &svc.title,
                received_at: received,
                handler,
                citizen_name: &name,
                dates: &dates,
                area,
                what: "votre demande",
            };
            let event = |kind: &str, actor: ActorKind, data: serde_json::Value| NewEvent {
                id: EventId::new(),
                tenant_id: handler.id,
                request_id: Some(id),
                at: received,
                actor_kind: actor,
                actor_id: (actor == ActorKind::Citizen).then(|| citizen.id.as_uuid()),
                channel: Channel::Web,
                kind: kind.to_owned(),
                citizen_visible: true,
                data,
            };
            let document = ack::document(&a).map_err(|e| format!("demo acknowledgement: {e}"))?;
            let mut events = vec![
                event(
                    "submitted",
                    ActorKind::Citizen,
                    json!({"reference": reference, "service": svc.title}),
                ),
                event(
                    "acknowledged",
                    ActorKind::System,
                    json!({"document": document.id, "kind": kind.as_str()}),
                ),
            ];
            if !matches!(status, "received" | "submitted") {
                let label =
                    workflow.status(status).map_or(status.to_owned(), |s| s.citizen_label.clone());
                events.push(event(
                    "status_changed",
                    ActorKind::System,
                    json!({"from": "received", "to": status, "citizen_label": label, "body": ""}),
                ));
            }
            Ok(SubmissionRecords { events, documents: vec![document], ..Default::default() })
        };
        store.submit_request(&request, &build).await?;
        n += 1;
    }
    load_channels(store, &commune).await?;
    Ok(n)
}

/// The sample commune's functional address and SMS number, and two contacts waiting in the
/// back-office (an e-mail and a letter), so that `/agents/contacts` shows something.
async fn load_channels(
    store: &dyn guichet_store::Store,
    commune: &guichet_store::Tenant,
) -> anyhow::Result<()> {
    use guichet_domain::request::{ActorKind, Channel};
    use guichet_store::{Endpoint, NewEvent, NewInbound, SubmissionRecords};
    let email = Endpoint {
        id: uuid::Uuid::now_v7(),
        tenant_id: commune.id,
        kind: "email".to_owned(),
        address: format!("accueil@{}.demo", commune.slug),
        imap_url: None,
        imap_password: None,
        uid_validity: None,
        last_uid: 0,
        last_fetch_at: None,
        last_error: None,
    };
    store.add_endpoint(&email).await?;
    store
        .add_endpoint(&Endpoint {
            id: uuid::Uuid::now_v7(),
            kind: "sms".to_owned(),
            address: "38100".to_owned(),
            ..email.clone()
        })
        .await?;
    let now = time::OffsetDateTime::now_utc();
    let samples = [
        (
            Channel::Email,
            Some(email.id),
            "lea.bernard@exemple.fr",
            "Léa Bernard",
            "Bruit la nuit rue des Tilleuls",
            "Bonjour,\ndepuis une semaine, un chantier démarre à 5 h du matin rue des Tilleuls. Est-ce autorisé ?\nMerci,\nLéa Bernard",
            Some("demo-contact-1@exemple.fr"),
        ),
        (
            Channel::Courrier,
            None,
            "M. Paul Roux, 4 chemin du Moulin, Saint-Aubin-sur-Lys",
            "M. Paul Roux",
            "Demande de banc public",
            "Courrier manuscrit demandant l'installation d'un banc près de l'arrêt de bus de l'école.",
            None,
        ),
    ];
    for (i, (channel, endpoint, sender, name, subject, body, message_id)) in
        samples.into_iter().enumerate()
    {
        let m = NewInbound {
            id: uuid::Uuid::now_v7(),
            tenant_id: commune.id,
            endpoint_id: endpoint,
            channel,
            dedup_key: format!("demo:{i}"),
            sender: sender.to_owned(),
            sender_name: name.to_owned(),
            subject: subject.to_owned(),
            body: body.to_owned(),
            quoted: String::new(),
            message_id: message_id.map(str::to_owned),
            state: "contact".to_owned(),
            reason: None,
            request_id: None,
            citizen_id: None,
            raw_file_id: None,
            files: Vec::new(),
            received_at: now - time::Duration::hours(2 + i as i64),
        };
        let records = SubmissionRecords {
            events: vec![NewEvent {
                id: guichet_domain::EventId::new(),
                tenant_id: commune.id,
                request_id: None,
                at: m.received_at,
                actor_kind: ActorKind::Citizen,
                actor_id: None,
                channel,
                kind: "contact_received".to_owned(),
                citizen_visible: false,
                data: serde_json::json!({"inbound": m.id, "sender": sender, "subject": subject}),
            }],
            ..Default::default()
        };
        store.ingest(&m, None, &records).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_territory_has_one_epci_and_32_communes_with_distinct_slugs() {
        let t = territory("$argon2id$fake").unwrap();
        assert_eq!(t.tenants.len(), 33);
        let communes = t.tenants.iter().filter(|t| t.kind == TenantKind::Commune).count();
        assert_eq!(communes, 32);
        let mut slugs: Vec<_> = t.tenants.iter().map(|t| t.slug.as_str()).collect();
        slugs.sort_unstable();
        slugs.dedup();
        assert_eq!(slugs.len(), 33);
        assert!(slugs.contains(&SAMPLE_COMMUNE));
        assert!(slugs.contains(&"val-d-oussiere"));
        for (_, login) in logins() {
            let known = t.agents.iter().any(|a| a.email.as_str() == login)
                || t.citizens.iter().any(|c| c.email.as_str() == login);
            assert!(known, "{login} is printed but not created");
        }
    }

    #[test]
    fn demo_colours_keep_white_text_readable() {
        for c in COLOURS {
            assert!(Colour::parse(c).unwrap().contrast_with_white() >= 4.5, "{c}");
        }
    }

    #[test]
    fn slugs_fold_french_accents_and_apostrophes() {
        assert_eq!(slugify("Épinay-sur-Lys"), "epinay-sur-lys");
        assert_eq!(slugify("Val-d'Oussière"), "val-d-oussiere");
        assert_eq!(slugify("Les Granges-du-Lys"), "les-granges-du-lys");
    }
}
