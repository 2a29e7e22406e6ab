//! `guichet generate`: a synthetic territory at a chosen scale, up to the national one (35,000
//! communes in 1,250 EPCIs, millions of requests), for benchmarks. Each request comes with its
//! history, the events the portal and the back-office would have written (submission,
//! acknowledgement, status changes, messages, notes), on its tenant's hash chain, and with the
//! timing those events give. Deterministic for a seed (but for ids), loaded in large
//! transactions so that a million requests take minutes, not hours.
//!
//! The first EPCI ("epci-0") and its communes get a larger share of the requests (a dense
//! urban intercommunality) and its agent `bench@generated.test` (password `generated-bench-2026`,
//! no second factor) is the one the benchmarks log in as.

use std::time::Instant;

use anyhow::Context;
use guichet_domain::catalogue::templates;
use guichet_domain::form::Answers;
use guichet_domain::request::{ActorKind, Channel};
use guichet_domain::workflow::Workflow;
use guichet_domain::{
    AgentId, Branding, CitizenId, Colour, Email, EventId, InseeCode, Phone, RequestId, Role, Siren,
    Slug, TenantContact, TenantId, TenantKind,
};
use guichet_store::{
    ImportOutcome, NewAgent, NewCitizen, NewEvent, NewRequest, NewTenant, Service, Store,
    TerritoryImport,
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
    // The territory is one transaction and the requests many: a second marker, written after
    // the last batch, tells a complete generation from one that stopped halfway (or one made
    // with another number of requests, or before the requests had their histories), which a
    // benchmark must not take for the territory it asked for.
    let complete = format!("{name}-{}-requests", scale.requests);
    if store.has_import(&complete).await? {
        println!("territoire déjà généré ({name}, {} demandes) : rien à faire", scale.requests);
        return Ok(());
    }
    if store.has_import(&name).await? {
        anyhow::bail!(
            "le territoire {name} est déjà chargé dans cette base, mais pas ses {} demandes \
             (génération interrompue, faite avec un autre nombre de demandes ou par une version \
             antérieure) : recommencez sur une base vide",
            scale.requests
        );
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
    let epci_agents: Vec<(uuid::Uuid, &str)> =
        import.agents.iter().map(|a| (a.id.as_uuid(), a.display_name.as_str())).collect();
    let mut batch = Vec::with_capacity(10_000);
    let mut events = Vec::with_capacity(60_000);
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
        let (tenant, service, prefix, commune_tenant, title) = if epci_service {
            (epci_ids[epci], epci_services[epci], "SIG", Some(commune), &report.title)
        } else {
            (commune, commune_service, "QM", None, &question.title)
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
        let (history, steps) = history(&mut rng, submitted, status, workflow.phase(status), now);
        let counter = counters.entry((tenant, submitted.year())).or_default();
        *counter += 1;
        let reference = guichet_domain::request::reference(prefix, submitted.year(), *counter);
        let id = RequestId::new();
        let channel = *rng.pick(&channels);
        let trail = Trail {
            tenant,
            request: id,
            citizen: citizen.as_uuid(),
            agent: epci_agents.get(epci).map(|a| a.0),
            agent_name: epci_agents.get(epci).map_or("", |a| a.1),
            channel,
        };
        trail.events(&mut events, &workflow, submitted, &steps, &reference, title, status);
        batch.push((
            NewRequest {
                id,
                tenant_id: tenant,
                commune_tenant_id: commune_tenant,
                service_id: service,
                citizen_id: Some(citizen),
                draft_id: None,
                reference_prefix: prefix.into(),
                channel,
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
            store
                .bulk_insert_requests(&batch, &events)
                .await
                .context("cannot insert generated requests")?;
            batch.clear();
            events.clear();
            let done = n + 1;
            if done % 100_000 == 0 || done == scale.requests {
                let rate = done as f64 / loading.elapsed().as_secs_f64().max(0.001);
                println!("demandes : {done} / {} ({rate:.0} par seconde)", scale.requests);
            }
        }
    }
    store
        .import_territory(&TerritoryImport { name: complete, ..Default::default() })
        .await
        .context("cannot record the end of the generation")?;
    println!("terminé en {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// What happens to a generated request after its submission, each step an event of its
/// history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// The acknowledgement of receipt.
    Acknowledged,
    /// An agent takes it in hand (status "in_progress").
    Started,
    /// An agent answers the citizen without changing its status.
    Answered,
    /// An agent asks for missing items (status "awaiting_citizen").
    AskedCompletion,
    /// The citizen sends them.
    CitizenReplied,
    /// The agent resumes (status "in_progress").
    Resumed,
    /// An agent's internal note.
    Noted,
    /// The decision or closing (the request's final status).
    Decided,
}

/// A plausible history for a generated request whose status is `status` (in `phase`), as the
/// timing its row holds and the steps its events show, in time order: acknowledged within the
/// hour (one in fifty late), answered within days, closed after days or weeks with, sometimes,
/// a wait for missing items, never in the future. The timing is what the steps' events would
/// give (`metrics::classify`): the first response is the first step an agent makes visible.
fn history(
    rng: &mut Rng,
    submitted: time::OffsetDateTime,
    status: &str,
    phase: guichet_domain::workflow::Phase,
    now: time::OffsetDateTime,
) -> (guichet_domain::metrics::Timing, Vec<(OffsetDateTime, Step)>) {
    use guichet_domain::workflow::Phase;
    let mut t = guichet_domain::metrics::Timing::new(submitted, Phase::Open);
    let mut steps = Vec::with_capacity(8);
    let at = |d: Duration| (submitted + d).min(now);
    let late = rng.below(50) == 0;
    let ack = at(Duration::minutes(if late { 20 * 1440 } else { rng.below(60) as i64 + 1 }));
    t.acknowledged(ack);
    steps.push((ack, Step::Acknowledged));
    // A request still "received" was never taken in hand, so it never waited either.
    let waits = phase == Phase::Waiting || (status != "received" && rng.below(5) == 0);
    let mut clock = Duration::hours(rng.below(96) as i64 + 1);
    if phase != Phase::Open || waits || status == "in_progress" || rng.below(10) < 7 {
        t.responded(at(clock));
        steps.push((at(clock), if status == "received" { Step::Answered } else { Step::Started }));
    }
    if waits {
        clock += Duration::hours(rng.below(48) as i64 + 2);
        t.transition(Phase::Waiting, at(clock));
        steps.push((at(clock), Step::AskedCompletion));
        if phase != Phase::Waiting {
            clock += Duration::days(rng.below(20) as i64 + 1);
            t.transition(Phase::Open, at(clock));
            steps.push((at(clock), Step::CitizenReplied));
            steps.push((at(clock), Step::Resumed));
        }
    }
    if steps.len() > 1 && rng.below(10) < 3 {
        clock += Duration::hours(rng.below(72) as i64 + 1);
        steps.push((at(clock), Step::Answered));
    }
    if steps.len() > 1 && rng.below(10) == 0 {
        clock += Duration::hours(rng.below(24) as i64 + 1);
        steps.push((at(clock), Step::Noted));
    }
    if phase == Phase::Closed {
        clock += Duration::hours(rng.below(60 * 24) as i64 + 1);
        t.transition(Phase::Closed, at(clock));
        steps.push((at(clock), Step::Decided));
    }
    // A late acknowledgement comes after the first steps; the rest are in order already.
    steps.sort_by_key(|(at, _)| *at);
    (t, steps)
}

/// Who and what a generated request's events are about.
struct Trail<'a> {
    tenant: TenantId,
    request: RequestId,
    citizen: uuid::Uuid,
    agent: Option<uuid::Uuid>,
    agent_name: &'a str,
    channel: Channel,
}

impl Trail<'_> {
    /// The request's events, in time order, as the portal and the back-office would have
    /// written them: its submission, its acknowledgement, then its steps.
    #[allow(clippy::too_many_arguments)]
    fn events(
        &self,
        out: &mut Vec<NewEvent>,
        workflow: &Workflow,
        submitted: OffsetDateTime,
        steps: &[(OffsetDateTime, Step)],
        reference: &str,
        service: &str,
        status: &str,
    ) {
        let event = |at, actor_kind, kind: &str, citizen_visible, data| NewEvent {
            id: EventId::new(),
            tenant_id: self.tenant,
            request_id: Some(self.request),
            at,
            actor_kind,
            actor_id: match actor_kind {
                ActorKind::Citizen => Some(self.citizen),
                ActorKind::Agent => self.agent,
                ActorKind::System => None,
            },
            // Agents act in the back-office; the rest comes by the request's channel.
            channel: if actor_kind == ActorKind::Agent { Channel::Web } else { self.channel },
            kind: kind.to_owned(),
            citizen_visible,
            data,
        };
        // A letter, a visit or a call is registered by an agent on the citizen's behalf.
        out.push(match self.channel {
            Channel::Courrier | Channel::Guichet | Channel::Telephone => NewEvent {
                channel: self.channel,
                ..event(
                    submitted,
                    ActorKind::Agent,
                    "submitted",
                    true,
                    json!({"reference": reference, "service": service, "on_behalf": true, "agent": self.agent_name}),
                )
            },
            _ => event(
                submitted,
                ActorKind::Citizen,
                "submitted",
                true,
                json!({"reference": reference, "service": service}),
            ),
        });
        let mut current = "received";
        for &(at, step) in steps {
            let mut change = |to: &'static str, transition: &str, body: &str| {
                let label = workflow.status(to).map_or(to, |s| s.citizen_label.as_str());
                let data = json!({"from": current, "to": to, "citizen_label": label, "body": body, "transition": transition});
                current = to;
                event(at, ActorKind::Agent, "status_changed", true, data)
            };
            let e = match step {
                Step::Acknowledged => {
                    // On paper or at the counter, the acknowledgement is handed or posted.
                    let kind = if matches!(self.channel, Channel::Web | Channel::Email) {
                        "are"
                    } else {
                        "ar"
                    };
                    event(at, ActorKind::System, "acknowledged", true, json!({"kind": kind}))
                }
                Step::Started => change("in_progress", "start", ""),
                Step::AskedCompletion => change(
                    "awaiting_citizen",
                    "ask_completion",
                    "Merci de nous transmettre un justificatif de domicile de moins de trois mois.",
                ),
                Step::Resumed => change("in_progress", "resume", ""),
                Step::Decided => {
                    let (to, transition, body) = match status {
                        "accepted" => ("accepted", "accept", "Votre demande est acceptée."),
                        "rejected" => (
                            "rejected",
                            "reject",
                            "Votre demande ne peut pas être acceptée : elle ne relève pas de nos compétences.",
                        ),
                        _ => ("closed", "close", ""),
                    };
                    change(to, transition, body)
                }
                Step::Answered => event(
                    at,
                    ActorKind::Agent,
                    "message",
                    true,
                    json!({"body": "Bonjour, votre demande est bien prise en compte ; nous revenons vers vous rapidement."}),
                ),
                Step::CitizenReplied => event(
                    at,
                    ActorKind::Citizen,
                    "message",
                    true,
                    json!({"body": "Bonjour, voici le justificatif demandé."}),
                ),
                Step::Noted => event(
                    at,
                    ActorKind::Agent,
                    "note",
                    false,
                    json!({"body": "Vu avec le service technique : intervention à planifier."}),
                ),
            };
            out.push(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use guichet_domain::metrics::{classify, replay};
    use guichet_domain::request::{ActorKind, Channel};
    use guichet_domain::workflow::{Phase, Workflow};
    use guichet_domain::{RequestId, TenantId};
    use time::{Duration, OffsetDateTime};

    /// The timing a generated request's row holds is the one its own events give, replayed as
    /// the back-office replays them; every status change is a transition the workflow allows,
    /// in time order, ending on the request's status.
    #[test]
    fn a_generated_history_is_what_its_events_say() {
        let mut rng = super::Rng(7);
        let workflow = Workflow::default();
        let now = OffsetDateTime::now_utc();
        let statuses =
            ["received", "in_progress", "awaiting_citizen", "accepted", "rejected", "closed"];
        let channels = [Channel::Web, Channel::Email, Channel::Courrier, Channel::Telephone];
        let mut kinds = std::collections::BTreeSet::new();
        for i in 0..6_000 {
            let status = statuses[i % statuses.len()];
            let submitted = now - Duration::seconds(rng.below(2 * 365 * 86_400) as i64);
            let (timing, steps) =
                super::history(&mut rng, submitted, status, workflow.phase(status), now);
            let trail = super::Trail {
                tenant: TenantId::new(),
                request: RequestId::new(),
                citizen: uuid::Uuid::now_v7(),
                agent: Some(uuid::Uuid::now_v7()),
                agent_name: "Agent de l'EPCI 0",
                channel: channels[i % channels.len()],
            };
            let mut events = Vec::new();
            trail.events(
                &mut events,
                &workflow,
                submitted,
                &steps,
                "QM-2026-000001",
                "Question",
                status,
            );
            assert_eq!(events[0].kind, "submitted");
            assert!(events.windows(2).all(|w| w[0].at <= w[1].at), "in time order: {events:#?}");
            let replayed = replay(
                submitted,
                Phase::Open,
                events.iter().map(|e| {
                    (
                        e.at,
                        classify(
                            &e.kind,
                            e.actor_kind == ActorKind::Agent,
                            e.citizen_visible,
                            &e.data,
                        ),
                    )
                }),
                |s| workflow.phase(s),
            );
            assert_eq!(replayed, timing, "{status}: {events:#?}");
            let mut current = "received";
            for e in events.iter().filter(|e| e.kind == "status_changed") {
                let (from, to) = (e.data["from"].as_str().unwrap(), e.data["to"].as_str().unwrap());
                let key = e.data["transition"].as_str().unwrap();
                let t = workflow.transitions.iter().find(|t| t.key == key).unwrap();
                assert!(
                    from == current && t.from.iter().any(|f| f == from) && t.to == to,
                    "{key}: {from} → {to}"
                );
                assert!(
                    !t.message_required || !e.data["body"].as_str().unwrap().is_empty(),
                    "{key}"
                );
                current = to;
            }
            assert_eq!(current, status);
            kinds.extend(events.iter().map(|e| e.kind.clone()));
        }
        assert_eq!(
            kinds.into_iter().collect::<Vec<_>>(),
            ["acknowledged", "message", "note", "status_changed", "submitted"]
        );
    }

    #[test]
    fn generated_insee_codes_are_valid_and_unique() {
        let codes: std::collections::HashSet<String> = (0..40_000).map(super::insee).collect();
        assert_eq!(codes.len(), 40_000);
        for c in codes.iter().take(1000) {
            assert!(guichet_domain::InseeCode::parse(c).is_ok(), "{c}");
        }
    }
}
