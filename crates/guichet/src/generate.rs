//! `guichet generate`: a synthetic territory at a chosen scale, up to the national one (35,000
//! communes in 1,250 EPCIs, millions of requests), for benchmarks. Deterministic for a seed,
//! loaded in large transactions so that a million requests take minutes, not hours.
//!
//! The first EPCI ("epci-0") and its communes get a larger share of the requests (a dense
//! urban intercommunality) and its agent `bench@generated.test` (password `generated-bench-2026`,
//! no second factor) is the one the benchmarks log in as.

use std::time::Instant;

use anyhow::Context;
use guichet_domain::catalogue::templates;
use guichet_domain::form::Answers;
use guichet_domain::request::Channel;
use guichet_domain::workflow::Workflow;
use guichet_domain::{
    AgentId, Branding, CitizenId, Colour, Email, InseeCode, Phone, RequestId, Role, Siren, Slug,
    TenantContact, TenantId, TenantKind,
};
use guichet_store::{
    ImportOutcome, NewAgent, NewCitizen, NewRequest, NewTenant, Service, Store, TerritoryImport,
};
use serde_json::json;
use time::{Duration, OffsetDateTime};

/// The benchmark agent's login.
pub const BENCH_AGENT: &str = "bench@generated.test";
/// Its password.
pub const BENCH_PASSWORD: &str = "generated-bench-2026";

/// Sizes.
#[derive(Clone, Copy, Debug)]
pub struct Scale {
    /// Tenants in all (EPCIs and communes).
    pub tenants: u32,
    /// Requests.
    pub requests: u64,
    /// PRNG seed.
    pub seed: u64,
}

/// xorshift64*: small, fast, deterministic; statistical quality is ample for test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

const WORDS: &[&str] = &[
    "éclairage",
    "lampadaire",
    "voirie",
    "trottoir",
    "nid-de-poule",
    "poubelle",
    "déchets",
    "école",
    "cantine",
    "horaires",
    "mairie",
    "salle",
    "mariage",
    "naissance",
    "acte",
    "urbanisme",
    "clôture",
    "piscine",
    "bruit",
    "stationnement",
    "arbre",
    "élagage",
    "inondation",
    "panneau",
    "marché",
    "associations",
    "bibliothèque",
    "crèche",
    "transport",
    "eau",
    "assainissement",
    "cimetière",
];
const GIVEN: &[&str] = &[
    "Camille", "Louis", "Inès", "Jules", "Léa", "Noah", "Emma", "Hugo", "Chloé", "Lucas", "Manon",
    "Arthur",
];
const FAMILY: &[&str] = &[
    "Martin", "Bernard", "Petit", "Moreau", "Garnier", "Faure", "Durand", "Lefèvre", "Roux",
    "Fournier", "Girard", "Bonnet",
];

fn insee(i: u32) -> String {
    // Departments 01–95 without 20, then a 3-digit number: unique for i < 94 × 999.
    let mut dept = 1 + (i / 999) % 94;
    if dept >= 20 {
        dept += 1;
    }
    format!("{dept:02}{:03}", 1 + i % 999)
}

fn contact(slug: &str, name: &str) -> anyhow::Result<TenantContact> {
    Ok(TenantContact {
        service_name: format!("{name} – accueil"),
        street: "1 place de la Mairie".into(),
        postcode: "45000".into(),
        city: name.to_uppercase(),
        email: Email::parse(&format!("accueil@{slug}.test")).map_err(|e| anyhow::anyhow!("{e}"))?,
        phone: Phone::parse("02 38 00 00 00").map_err(|e| anyhow::anyhow!("{e}"))?,
    })
}

/// Builds and loads the territory, then the requests in batches; prints progress.
pub async fn run(store: &dyn Store, scale: Scale, password_hash: &str) -> anyhow::Result<()> {
    let name = format!("generated-{}-{}", scale.tenants, scale.seed);
    if store.has_import(&name).await? {
        println!("territoire déjà généré ({name}) : rien à faire");
        return Ok(());
    }
    let started = Instant::now();
    let mut rng = Rng(scale.seed.max(1));
    let epcis = (scale.tenants / 28).max(1);
    let communes = scale.tenants.saturating_sub(epcis).max(1);
    let all = templates().context("service templates")?;
    let question = all.iter().find(|t| t.key == "question-mairie").context("template")?;
    let report = all.iter().find(|t| t.key == "signalement").context("template")?;
    let now = OffsetDateTime::now_utc();
    let branding = Branding {
        primary_colour: Colour::parse("#1f3f77").map_err(|e| anyhow::anyhow!("{e}"))?,
        logo_url: None,
    };

    let mut import = TerritoryImport { name: name.clone(), ..Default::default() };
    let mut epci_ids = Vec::new();
    for e in 0..epcis {
        let slug = format!("epci-{e}");
        let id = TenantId::new();
        let tenant_name = format!("Communauté de communes n° {e}");
        import.tenants.push(NewTenant {
            id,
            slug: Slug::parse(&slug).map_err(|x| anyhow::anyhow!("{x}"))?,
            kind: TenantKind::Epci,
            contact: contact(&slug, &tenant_name)?,
            name: tenant_name,
            parent_id: None,
            siren: Siren::with_key(40_000_000 + e),
            insee_code: None,
            branding: branding.clone(),
            custom_domain: None,
        });
        import.services.push(Service::from_template(report, id, now));
        epci_ids.push(id);
    }
    // Communes, each with its EPCI; (commune id, service id, epci index, epci service id).
    let mut commune_rows = Vec::new();
    for c in 0..communes {
        let epci = (c % epcis) as usize;
        let slug = format!("commune-{c}");
        let id = TenantId::new();
        let tenant_name = format!("Commune n° {c}");
        import.tenants.push(NewTenant {
            id,
            slug: Slug::parse(&slug).map_err(|x| anyhow::anyhow!("{x}"))?,
            kind: TenantKind::Commune,
            contact: contact(&slug, &tenant_name)?,
            name: tenant_name,
            parent_id: Some(epci_ids[epci]),
            siren: Siren::with_key(50_000_000 + c),
            insee_code: Some(InseeCode::parse(&insee(c)).map_err(|x| anyhow::anyhow!("{x}"))?),
            branding: branding.clone(),
            custom_domain: None,
        });
        let svc = Service::from_template(question, id, now);
        commune_rows.push((id, svc.id, epci));
        import.services.push(svc);
    }
    let epci_services: Vec<_> = import.services.iter().take(epcis as usize).map(|s| s.id).collect();
    // One agent per EPCI, member of the EPCI and all its communes; the benchmark agent on epci-0.
    for (e, epci) in epci_ids.iter().enumerate() {
        let mut memberships = vec![(*epci, Role::Agent)];
        memberships.extend(
            commune_rows.iter().filter(|(_, _, x)| *x == e).map(|(id, _, _)| (*id, Role::Agent)),
        );
        let email = if e == 0 { BENCH_AGENT.to_owned() } else { format!("agent@epci-{e}.test") };
        import.agents.push(NewAgent {
            id: AgentId::new(),
            email: Email::parse(&email).map_err(|x| anyhow::anyhow!("{x}"))?,
            password_hash: password_hash.to_owned(),
            display_name: format!("Agent de l'EPCI {e}"),
            memberships,
        });
    }
    let citizens = (scale.requests / 10).clamp(10, 200_000);
    for i in 0..citizens {
        import.citizens.push(NewCitizen {
            id: CitizenId::new(),
            email: Email::parse(&format!("usager{i}@generated.test"))
                .map_err(|x| anyhow::anyhow!("{x}"))?,
            password_hash: password_hash.to_owned(),
            given_name: rng.pick(GIVEN).to_string(),
            family_name: rng.pick(FAMILY).to_string(),
            phone: None,
            insee_code: None,
            email_verified: true,
        });
    }
    let citizen_ids: Vec<(CitizenId, String)> = import
        .citizens
        .iter()
        .map(|c| (c.id, format!("{} {}", c.given_name, c.family_name)))
        .collect();
    match store.import_territory(&import).await.context("cannot load the generated territory")? {
        ImportOutcome::Loaded => println!(
            "territoire : {} EPCI, {} communes, {} usagers ({:.1} s)",
            epcis,
            communes,
            citizens,
            started.elapsed().as_secs_f64()
        ),
        ImportOutcome::AlreadyLoaded => return Ok(()),
    }

    let workflow = Workflow::default();
    let statuses = [
        "received",
        "received",
        "in_progress",
        "in_progress",
        "awaiting_citizen",
        "accepted",
        "rejected",
        "closed",
        "closed",
        "closed",
    ];
    let channels = [
        Channel::Web,
        Channel::Web,
        Channel::Web,
        Channel::Web,
        Channel::Web,
        Channel::Web,
        Channel::Web,
        Channel::Email,
        Channel::Email,
        Channel::Sms,
        Channel::Courrier,
        Channel::Guichet,
        Channel::Telephone,
    ];
    let dense: Vec<usize> =
        commune_rows.iter().enumerate().filter(|(_, (_, _, e))| *e == 0).map(|(i, _)| i).collect();
    let mut counters: std::collections::HashMap<(TenantId, i32), i64> =
        std::collections::HashMap::new();
    let mut batch = Vec::with_capacity(10_000);
    let loading = Instant::now();
    for n in 0..scale.requests {
        // 5 % of the requests go to the dense EPCI's communes.
        let c = if rng.below(100) < 5 && !dense.is_empty() {
            *rng.pick(&dense)
        } else {
            rng.below(commune_rows.len() as u64) as usize
        };
        let (commune, commune_service, epci) = commune_rows[c];
        let epci_service = rng.below(4) == 0;
        let (tenant, service, prefix, commune_tenant) = if epci_service {
            (epci_ids[epci], epci_services[epci], "SIG", Some(commune))
        } else {
            (commune, commune_service, "QM", None)
        };
        let submitted = now - Duration::seconds(rng.below(2 * 365 * 86_400) as i64);
        // Old requests are mostly decided: a real backlog is weeks of work, not years.
        let status = if (now - submitted).whole_days() > 90 && rng.below(100) < 96 {
            *rng.pick(&["accepted", "rejected", "closed", "closed"])
        } else {
            *rng.pick(&statuses)
        };
        let (citizen, citizen_name) = rng.pick(&citizen_ids).clone();
        let text = format!("{} {} {}", rng.pick(WORDS), rng.pick(WORDS), rng.pick(WORDS));
        let mut answers = Answers::new();
        answers.insert("sujet".into(), json!(format!("Question {n}")));
        answers.insert("question".into(), json!(text));
        let history = history(&mut rng, submitted, workflow.phase(status), now);
        let counter = counters.entry((tenant, submitted.year())).or_default();
        *counter += 1;
        let reference = guichet_domain::request::reference(prefix, submitted.year(), *counter);
        batch.push((
            NewRequest {
                id: RequestId::new(),
                tenant_id: tenant,
                commune_tenant_id: commune_tenant,
                service_id: service,
                citizen_id: Some(citizen),
                draft_id: None,
                reference_prefix: prefix.into(),
                channel: *rng.pick(&channels),
                status: status.into(),
                answers,
                submitter: json!({"prenom": citizen_name.split(' ').next(), "nom": citizen_name.split(' ').nth(1)}),
                submitted_at: submitted,
                deemed_decision_on: (rng.below(3) == 0).then(|| (submitted + Duration::days(61)).date()),
                ack_due_at: Some(submitted + Duration::days(14)),
                history: Some(history),
                phase: workflow.phase(status).as_str().into(),
                search_text: guichet_domain::fold(&format!("{citizen_name} {text}")),
            },
            reference,
        ));
        if batch.len() == 10_000 || n + 1 == scale.requests {
            store.bulk_insert_requests(&batch).await.context("cannot insert generated requests")?;
            batch.clear();
            let done = n + 1;
            if done % 100_000 == 0 || done == scale.requests {
                let rate = done as f64 / loading.elapsed().as_secs_f64().max(0.001);
                println!("demandes : {done} / {} ({rate:.0} par seconde)", scale.requests);
            }
        }
    }
    println!("terminé en {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// A plausible history for a generated request in `phase`: acknowledged within the hour
/// (one in fifty late), answered within days, closed after days or weeks with, sometimes, a
/// wait for missing items, never in the future.
fn history(
    rng: &mut Rng,
    submitted: time::OffsetDateTime,
    phase: guichet_domain::workflow::Phase,
    now: time::OffsetDateTime,
) -> guichet_domain::metrics::Timing {
    use guichet_domain::workflow::Phase;
    let mut t = guichet_domain::metrics::Timing::new(submitted, Phase::Open);
    let at = |d: Duration| (submitted + d).min(now);
    let late = rng.below(50) == 0;
    t.acknowledged(at(Duration::minutes(if late { 20 * 1440 } else { rng.below(60) as i64 + 1 })));
    if phase != Phase::Open || rng.below(10) < 7 {
        t.responded(at(Duration::hours(rng.below(96) as i64 + 1)));
    }
    let mut clock = Duration::hours(rng.below(48) as i64 + 2);
    if phase == Phase::Waiting || rng.below(5) == 0 {
        t.transition(Phase::Waiting, at(clock));
        clock += Duration::days(rng.below(20) as i64 + 1);
        if phase != Phase::Waiting {
            t.transition(Phase::Open, at(clock));
        }
    }
    if phase == Phase::Closed {
        clock += Duration::hours(rng.below(60 * 24) as i64 + 1);
        t.transition(Phase::Closed, at(clock));
    }
    t
}

#[cfg(test)]
mod tests {
    #[test]
    fn generated_insee_codes_are_valid_and_unique() {
        let codes: std::collections::HashSet<String> = (0..40_000).map(super::insee).collect();
        assert_eq!(codes.len(), 40_000);
        for c in codes.iter().take(1000) {
            assert!(guichet_domain::InseeCode::parse(c).is_ok(), "{c}");
        }
    }
}
