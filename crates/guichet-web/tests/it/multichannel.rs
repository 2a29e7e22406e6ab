//! Multichannel against real servers on the loopback: Dovecot (IMAP) behind an SMTP server
//! (scripts/harness/mailhost), Kannel with a fake SMSC (scripts/harness/smsgateway), and
//! pdftotext for the letters. Each story runs on every backend. Without the servers a story
//! says it is skipped; under CI=true that is a failure.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use axum::http::StatusCode;
use guichet_channels::imap::{self, ImapAccount};
use guichet_channels::sms::{Kannel, KannelConfig};
use guichet_channels::{Mailer, SmtpMailer};
use guichet_domain::Slug;
use guichet_jobs::{Registry, Runner, RunnerConfig, SendEmail, SendSms};
use guichet_store::{Endpoint, Store};
use guichet_testkit::TestDb;
use guichet_web::WebConfig;
use guichet_web::inbound;
use lettre::AsyncTransport;

use crate::TestApp;
use crate::backoffice::{agent_login, agents};
use crate::client::{Client, Part, location};
use crate::portal::world;

const TOKEN: &str = "jeton-des-passerelles-0123456789";
const PASSWORD: &str = "mot-de-passe-imap";

fn available(program: &str, what: &str) -> bool {
    // The mail harness also needs Python's aiosmtpd.
    let check = if program == "dovecot" {
        "command -v dovecot && python3 -c 'import aiosmtpd'".to_owned()
    } else {
        format!("command -v {program}")
    };
    let found = Command::new("sh")
        .arg("-c")
        .arg(check)
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but {program} is missing ({what})"
        );
        eprintln!("SKIPPED: {what} ({program} is not installed)");
    }
    found
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("guichet-{name}-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A launcher from scripts/harness, stopped (SIGTERM) when dropped.
struct Server(Child);

impl Server {
    fn start(script: &str, args: &[String]) -> Self {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/harness/");
        let mut child = Command::new(format!("{path}{script}"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {script}: {e}"));
        let out = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(out).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "READY", "{script} did not start");
        Self(child)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        let _ = self.0.wait();
    }
}

struct MailHost {
    _server: Server,
    smtp: u16,
    imap: u16,
}

fn mailhost(users: &[&str]) -> MailHost {
    let (smtp, imap) = (free_port(), free_port());
    let mut args = vec![
        "--dir".to_owned(),
        scratch("mailhost").display().to_string(),
        "--smtp-port".to_owned(),
        smtp.to_string(),
        "--imap-port".to_owned(),
        imap.to_string(),
    ];
    for u in users {
        args.push("--user".to_owned());
        args.push(format!("{u}:{PASSWORD}"));
    }
    MailHost { _server: Server::start("mailhost", &args), smtp, imap }
}

/// Sends raw bytes by SMTP, as a citizen's mail client would.
async fn send_raw(port: u16, from: &str, to: &str, raw: &[u8]) {
    let transport =
        lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::builder_dangerous("127.0.0.1")
            .port(port)
            .build();
    let envelope =
        lettre::address::Envelope::new(Some(from.parse().unwrap()), vec![to.parse().unwrap()])
            .unwrap();
    transport.send_raw(&envelope, raw).await.unwrap();
}

/// Every message of a mailbox, read over IMAP.
async fn mailbox(port: u16, user: &str) -> Vec<Vec<u8>> {
    let account =
        ImapAccount::from_url(&format!("imap://{user}@127.0.0.1:{port}/INBOX"), PASSWORD).unwrap();
    let mut session = imap::connect(&account).await.unwrap();
    let mut out = Vec::new();
    for uid in session.uids_after(0).await.unwrap() {
        out.push(session.fetch(uid, 50 * 1024 * 1024).await.unwrap().unwrap().bytes);
    }
    session.logout().await;
    out
}

fn header<'a>(raw: &'a str, name: &str) -> Option<&'a str> {
    raw.split("\r\n\r\n").next()?.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

async fn tenant_id(store: &Arc<dyn Store>, slug: &str) -> guichet_domain::TenantId {
    store.find_tenant_by_slug(&Slug::parse(slug).unwrap()).await.unwrap().unwrap().id
}

fn endpoint(
    tenant: guichet_domain::TenantId,
    kind: &str,
    address: &str,
    imap: Option<String>,
) -> Endpoint {
    Endpoint {
        id: uuid::Uuid::now_v7(),
        tenant_id: tenant,
        kind: kind.to_owned(),
        address: address.to_owned(),
        imap_password: imap.as_ref().map(|_| PASSWORD.to_owned()),
        imap_url: imap,
        uid_validity: None,
        last_uid: 0,
        last_fetch_at: None,
        last_error: None,
    }
}

fn runner(store: &Arc<dyn Store>, smtp: Option<u16>, kannel: Option<Kannel>) -> Runner {
    let mut registry = Registry::new().with(SendSms { gateway: kannel });
    if let Some(port) = smtp {
        let mailer: Arc<dyn Mailer> =
            Arc::new(SmtpMailer::from_url(&format!("smtp://127.0.0.1:{port}")).unwrap());
        registry = registry
            .with(SendEmail { mailer, from: "Guichet <ne-pas-repondre@guichet.test>".into() });
    }
    Runner::new(store.clone(), registry, RunnerConfig::default())
}

fn config() -> WebConfig {
    WebConfig {
        mail_domain: "guichet.test".into(),
        inbound_token: Some(TOKEN.into()),
        ..WebConfig::default()
    }
}

fn message(from: &str, to: &str, id: &str, subject: &str, extra: &str, body: &str) -> Vec<u8> {
    format!(
        "From: Camille Martin <{from}>\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\nDate: Mon, 30 Nov 2026 09:00:00 +0100\r\nMIME-Version: 1.0\r\n{extra}Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

async fn fetch(app: &TestApp, tenant: guichet_domain::TenantId) -> usize {
    let mut n = 0;
    for e in app.db.store.list_endpoints(Some(tenant)).await.unwrap() {
        n += inbound::fetch_mailbox(&app.state, &e).await.unwrap();
    }
    n
}

async fn inbound_states(app: &TestApp, agent: guichet_domain::AgentId) -> Vec<(String, String)> {
    let all = ["contact", "attached", "answered", "qualified", "closed", "set_aside", "ignored"];
    app.db
        .store
        .list_inbound(agent, &all, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.message.subject, m.message.state))
        .collect()
}

/// Acceptance 1: an e-mail to the mairie becomes a contact (acknowledged), the agent turns it
/// into a request, the citizen's reply joins that request, and the agent's answer reaches the
/// citizen's mailbox threaded under their own message.
#[tokio::test]
async fn an_email_conversation_is_fetched_threaded_and_answered_over_real_servers() {
    if !available("dovecot", "e-mail over IMAP") {
        return;
    }
    for db in TestDb::all().await {
        let backend = format!("{:?}", db.backend);
        let host = mailhost(&["mairie@alpha.test", "camille@exemple.test"]);
        world(&db.store).await;
        let app = TestApp::on(db, config());
        let who = agents(&app).await;
        let store = app.db.store.clone();
        let alpha = tenant_id(&store, "alpha").await;
        store
            .add_endpoint(&endpoint(
                alpha,
                "email",
                "mairie@alpha.test",
                Some(format!("imap://mairie%40alpha.test@127.0.0.1:{}/INBOX", host.imap)),
            ))
            .await
            .unwrap();

        // The citizen writes to the mairie.
        let first = message(
            "camille@exemple.test",
            "mairie@alpha.test",
            "m1@exemple.test",
            "Demande d'acte de naissance",
            "",
            "Bonjour,\nje voudrais un extrait d'acte de naissance.\nCamille Martin",
        );
        send_raw(host.smtp, "camille@exemple.test", "mairie@alpha.test", &first).await;
        assert_eq!(fetch(&app, alpha).await, 1, "{backend}");
        assert_eq!(fetch(&app, alpha).await, 0, "{backend}: the position is kept");

        let mut agent = agent_login(&app, &who.alpha).await;
        let list = agent.get_agent("/agents/contacts").await;
        assert_eq!(list.status, StatusCode::OK);
        assert_eq!(list.texts(".contact-list > li").len(), 1, "{backend}: {}", list.body);
        let contact_href = list.attrs(".contact-list a", "href").remove(0);
        let contact_id = contact_href.trim_start_matches("/agents/contacts/").to_owned();
        let page = agent.get_agent(&contact_href).await;
        assert!(page.text(".sender").contains("camille@exemple.test"));
        assert!(page.text("p.body").contains("extrait d'acte"));

        // The acknowledgement left by SMTP and threads under the citizen's message.
        runner(&store, Some(host.smtp), None).run_pending().await.unwrap();
        let received = mailbox(host.imap, "camille@exemple.test").await;
        assert_eq!(received.len(), 1, "{backend}: the acknowledgement");
        let ack = String::from_utf8_lossy(&received[0]).into_owned();
        assert_eq!(header(&ack, "In-Reply-To"), Some("<m1@exemple.test>"));
        assert_eq!(header(&ack, "Reply-To"), Some("mairie@alpha.test"));
        assert!(ack.contains("Accus"), "{ack}");
        assert_eq!(
            header(&ack, "Auto-Submitted"),
            Some("auto-generated"),
            "robots must not answer it"
        );

        // The agent qualifies it into a request (answers prefilled from the message).
        let service = store.find_service(alpha, "question-mairie").await.unwrap().unwrap();
        let form_path =
            format!("/agents/guichet/nouveau?contact={contact_id}&demarche={}", service.id);
        let form = agent.get_agent(&form_path).await;
        assert_eq!(form.status, StatusCode::OK, "{}", form.body);
        assert_eq!(form.attrs("#usager_courriel", "value"), vec!["camille@exemple.test"]);
        assert!(form.text("#question").contains("extrait d'acte"));
        let csrf = form.attrs("input[name=_csrf]", "value").remove(0);
        let action = form.attrs("#formulaire", "action").remove(0).replace("&amp;", "&");
        let today =
            guichet_domain::clock::paris(time::OffsetDateTime::now_utc()).date().to_string();
        let done = agent
            .post_multipart(
                &action,
                &[
                    Part::Text("_csrf", &csrf),
                    Part::Text("usager_prenom", "Camille"),
                    Part::Text("usager_nom", "Martin"),
                    Part::Text("usager_courriel", "camille@exemple.test"),
                    Part::Text("recu_le", &today),
                    Part::Text("sujet", "Acte de naissance"),
                    Part::Text("question", "je voudrais un extrait d'acte de naissance."),
                    Part::Text("rappel", "non"),
                ],
            )
            .await;
        let request_path = location(&done);
        let request_id = request_path
            .trim_start_matches("/agents/demandes/")
            .split('?')
            .next()
            .unwrap()
            .to_owned();
        let request = store.get_request(request_id.parse().unwrap()).await.unwrap();
        assert_eq!(request.channel, guichet_domain::request::Channel::Email, "{backend}");
        // Qualifying it twice is refused: the contact is no longer a contact.
        assert_eq!(agent.get_agent(&form_path).await.status, StatusCode::CONFLICT);

        // The citizen answers the acknowledgement: In-Reply-To our message, References theirs.
        let ack_id = header(&ack, "Message-ID").unwrap().to_owned();
        let reply = message(
            "camille@exemple.test",
            "mairie@alpha.test",
            "m2@exemple.test",
            "Re: Accusé de réception",
            &format!("In-Reply-To: {ack_id}\r\nReferences: <m1@exemple.test> {ack_id}\r\n"),
            "Voici une précision : c'est pour un mariage.\n\nLe lun. 30 nov. 2026 à 09:05, Mairie <mairie@alpha.test> a écrit :\n> Accusé de réception",
        );
        send_raw(host.smtp, "camille@exemple.test", "mairie@alpha.test", &reply).await;
        assert_eq!(fetch(&app, alpha).await, 1);
        let page = agent.get_agent(request_path.split('?').next().unwrap()).await;
        let bodies = page.texts(".agent-timeline li .body");
        assert!(
            bodies.iter().any(|b| b == "Voici une précision : c'est pour un mariage."),
            "{backend}: {bodies:?}"
        );
        assert!(
            page.texts(".agent-timeline details.quoted")
                .iter()
                .any(|q| q.contains("Accusé de réception")),
            "the quoted history is folded"
        );

        // The agent answers by e-mail: it reaches the citizen threaded under their reply.
        let csrf = page.attrs("#reponse-form input[name=_csrf]", "value").remove(0);
        let sent = agent
            .post_agent(
                &format!("/agents/demandes/{request_id}/reponse"),
                &[
                    ("_csrf", &csrf),
                    ("canal", "courriel"),
                    ("reponse", "L'extrait vous attend à l'accueil."),
                ],
            )
            .await;
        assert!(location(&sent).starts_with(&format!("/agents/demandes/{request_id}")));
        runner(&store, Some(host.smtp), None).run_pending().await.unwrap();
        let received = mailbox(host.imap, "camille@exemple.test").await;
        let answer = received
            .iter()
            .map(|m| String::from_utf8_lossy(m).into_owned())
            .find(|m| m.contains("extrait vous attend") || m.contains("Nouveau message"))
            .unwrap_or_else(|| panic!("{backend}: no answer among {} messages", received.len()));
        assert_eq!(header(&answer, "In-Reply-To"), Some("<m2@exemple.test>"), "{answer}");
        assert!(header(&answer, "References").unwrap().contains("<m1@exemple.test>"));
        assert_eq!(header(&answer, "Reply-To"), Some("mairie@alpha.test"));
        assert!(header(&answer, "Auto-Submitted").is_none(), "a person's answer is not automatic");

        // Someone in copy answers "to all": same thread, but not the requester: a contact to check.
        let cc = message(
            "voisin@exemple.test",
            "mairie@alpha.test",
            "m3@exemple.test",
            "Re: Re: Accusé de réception",
            "In-Reply-To: <m2@exemple.test>\r\nReferences: <m1@exemple.test> <m2@exemple.test>\r\n",
            "Moi aussi je veux un acte.",
        );
        send_raw(host.smtp, "voisin@exemple.test", "mairie@alpha.test", &cc).await;
        assert_eq!(fetch(&app, alpha).await, 1);
        let list = agent.get_agent("/agents/contacts").await;
        assert!(
            list.texts(".contact-list .hint")
                .iter()
                .any(|h| h.contains(&request.reference) && h.contains("pas le demandeur")),
            "{backend}: {}",
            list.body
        );

        // Tenant walls: bravo's agent sees none of it.
        let mut other = agent_login(&app, &who.bravo).await;
        assert_eq!(other.get_agent(&contact_href).await.status, StatusCode::NOT_FOUND);
        assert!(
            other
                .get_agent("/agents/contacts?etat=traites")
                .await
                .texts(".contact-list > li")
                .is_empty()
        );
        let csrf = other.agent_csrf("/agents/").await;
        for action in ["repondre", "rattacher", "classer"] {
            let page = other
                .post_agent(
                    &format!("{contact_href}/{action}"),
                    &[
                        ("_csrf", &csrf),
                        ("reponse", "x"),
                        ("reference", &request.reference),
                        ("motif", "x"),
                    ],
                )
                .await;
            assert_eq!(page.status, StatusCode::NOT_FOUND, "{action}");
        }
        assert_eq!(other.get_agent(&form_path).await.status, StatusCode::NOT_FOUND);
        assert_eq!(
            other.get_agent(&format!("/agents/demandes/{request_id}/accuse")).await.status,
            StatusCode::NOT_FOUND
        );
        app.db.finish().await;
    }
}

/// Acceptance 2: hostile and broken messages are stored safely or set aside with a reason,
/// none stops the loop, and a fetch interrupted in the middle neither loses nor duplicates.
#[tokio::test]
async fn hostile_messages_never_stop_the_fetch_and_an_interrupted_fetch_resumes_exactly() {
    if !available("dovecot", "e-mail over IMAP") {
        return;
    }
    for db in TestDb::all().await {
        let backend = format!("{:?}", db.backend);
        let host = mailhost(&["mairie@alpha.test"]);
        world(&db.store).await;
        let app = TestApp::on(db, config());
        let who = agents(&app).await;
        let store = app.db.store.clone();
        let alpha = tenant_id(&store, "alpha").await;
        store
            .add_endpoint(&endpoint(
                alpha,
                "email",
                "mairie@alpha.test",
                Some(format!("imap://mairie%40alpha.test@127.0.0.1:{}", host.imap)),
            ))
            .await
            .unwrap();
        let to = "mairie@alpha.test";
        let huge_attachment = {
            // 20 MB of PDF in base64: the message is about 27 MB, over the 25 MB limit.
            let mut pdf = b"%PDF-1.4\n".to_vec();
            pdf.resize(20 * 1024 * 1024, b'A');
            let b64 = base64_lines(&pdf);
            format!("From: x@exemple.test\r\nTo: {to}\r\nSubject: Dossier complet\r\nMessage-ID: <big@exemple.test>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"B\"\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nCi-joint.\r\n--B\r\nContent-Type: application/pdf; name=\"dossier.pdf\"\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"dossier.pdf\"\r\n\r\n{b64}--B--\r\n").into_bytes()
        };
        let mut wrong_charset = b"From: y@exemple.test\r\nTo: mairie@alpha.test\r\nSubject: Charset faux\r\nMessage-ID: <cs@exemple.test>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nD".to_vec();
        wrong_charset.extend_from_slice(&[0xe9, 0x70, 0xf4, 0x74]); // "Dépôt" in Latin-1, declared UTF-8
        wrong_charset.extend_from_slice(b"\r\n");
        let messages: Vec<(&str, Vec<u8>)> = vec![
            ("broken", b"From: z@exemple.test\r\nTo: mairie@alpha.test\r\nSubject: Casse\r\nContent-Type: multipart/mixed; boundary=\"\r\n\r\n--\r\n\x00\x01\x02--\r\n".to_vec()),
            ("big", huge_attachment),
            ("charset", wrong_charset),
            ("html", b"From: h@exemple.test\r\nTo: mairie@alpha.test\r\nSubject: HTML\r\nMessage-ID: <h@exemple.test>\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body><script>fetch('/agents/')</script><p onclick=\"x()\">Bonjour <img src=x onerror=alert(1)>la mairie</p></body></html>\r\n".to_vec()),
            ("vacation", message("v@exemple.test", to, "v@exemple.test", "Absence", "Auto-Submitted: auto-replied\r\n", "Je suis absent.")),
            ("bounce", b"From: MAILER-DAEMON@mx.exemple.test\r\nTo: mairie@alpha.test\r\nSubject: Undelivered Mail\r\nMessage-ID: <b@mx.exemple.test>\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"R\"\r\n\r\n--R\r\nContent-Type: text/plain\r\n\r\nNon remis.\r\n--R\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <nope@guichet.test>\r\n--R--\r\n".to_vec()),
            ("plain", message("p@exemple.test", to, "p@exemple.test", "Question", "", "Une question simple.")),
        ];
        for (_, raw) in &messages {
            send_raw(host.smtp, "expediteur@exemple.test", to, raw).await;
        }
        assert_eq!(
            fetch(&app, alpha).await,
            messages.len(),
            "{backend}: one fetch handles them all"
        );
        let agent = store
            .find_agent_login(&guichet_domain::Email::parse(&who.alpha).unwrap())
            .await
            .unwrap()
            .unwrap()
            .0;
        let states = inbound_states(&app, agent.id).await;
        let state_of = |subject: &str| {
            states
                .iter()
                .find(|(s, _)| s == subject)
                .map(|(_, st)| st.clone())
                .unwrap_or_else(|| panic!("{backend}: no {subject} in {states:?}"))
        };
        assert_eq!(state_of("Dossier complet"), "set_aside", "over the size limit");
        assert_eq!(state_of("Absence"), "ignored");
        assert_eq!(state_of("Undelivered Mail"), "ignored");
        assert_eq!(state_of("Question"), "contact");
        assert_eq!(state_of("HTML"), "contact");
        assert_eq!(state_of("Charset faux"), "contact");
        assert!(
            states.iter().any(|(_, st)| st == "set_aside" || st == "contact"),
            "the broken one is kept"
        );
        assert_eq!(states.len(), messages.len(), "{backend}: nothing lost: {states:?}");
        // Reasons are recorded; scripts never reach the page.
        let all =
            store.list_inbound(agent.id, &["set_aside", "ignored", "contact"], 100).await.unwrap();
        for m in &all {
            if m.message.state != "contact" {
                assert!(
                    m.message.reason.as_deref().is_some_and(|r| !r.is_empty()),
                    "{:?}",
                    m.message.subject
                );
            }
        }
        let html = all.iter().find(|m| m.message.subject == "HTML").unwrap();
        assert!(
            html.message.body.contains("Bonjour")
                && !html.message.body.contains("<script")
                && !html.message.body.contains("onerror"),
            "{}",
            html.message.body
        );
        let mut c = agent_login(&app, &who.alpha).await;
        let page = c.get_agent(&format!("/agents/contacts/{}", html.message.id)).await;
        assert!(!page.body.contains("<script>fetch"), "never rendered as HTML");
        let charset = all.iter().find(|m| m.message.subject == "Charset faux").unwrap();
        assert!(
            charset.message.body.starts_with('D'),
            "decoded without failing: {}",
            charset.message.body
        );

        // An interrupted fetch: five more messages, the fetch is killed after the first one
        // is stored, then a new fetch takes the rest. Nothing is lost, nothing doubled.
        for i in 0..5 {
            let raw = message(
                "n@exemple.test",
                to,
                &format!("n{i}@exemple.test"),
                &format!("Suite {i}"),
                "",
                "texte",
            );
            send_raw(host.smtp, "n@exemple.test", to, &raw).await;
        }
        let before = inbound_states(&app, agent.id).await.len();
        let e = store.list_endpoints(Some(alpha)).await.unwrap().remove(0);
        // The first run stops after two messages (as a worker killed mid-fetch would)…
        assert_eq!(inbound::fetch_mailbox_at_most(&app.state, &e, 2).await.unwrap(), 2);
        assert_eq!(inbound_states(&app, agent.id).await.len(), before + 2);
        // …and a task killed in the middle of its run loses nothing it had committed.
        let (state, e) =
            (app.state.clone(), store.list_endpoints(Some(alpha)).await.unwrap().remove(0));
        let task = tokio::spawn(async move { inbound::fetch_mailbox_at_most(&state, &e, 1).await });
        task.abort();
        let _ = task.await;
        fetch(&app, alpha).await;
        let after = inbound_states(&app, agent.id).await;
        assert_eq!(after.len(), before + 5, "{backend}: {after:?}");
        for i in 0..5 {
            assert_eq!(
                after.iter().filter(|(s, _)| *s == format!("Suite {i}")).count(),
                1,
                "{backend}: Suite {i}"
            );
        }
        // Reading the whole mailbox again (a lost position, a new UIDVALIDITY) stores nothing twice.
        let e = store.list_endpoints(Some(alpha)).await.unwrap().remove(0);
        store
            .set_endpoint_status(
                e.id,
                Some((e.uid_validity.unwrap(), 0)),
                None,
                time::OffsetDateTime::now_utc(),
            )
            .await
            .unwrap();
        let again = inbound::fetch_mailbox(
            &app.state,
            &store.list_endpoints(Some(alpha)).await.unwrap()[0],
        )
        .await
        .unwrap();
        assert_eq!(again, messages.len() + 5);
        assert_eq!(inbound_states(&app, agent.id).await.len(), before + 5, "{backend}: duplicates");

        // The same message piped by an MTA is recognised too; a wrong token is refused.
        let piped =
            message("p@exemple.test", to, "p@exemple.test", "Question", "", "Une question simple.");
        let raw_with_path = mailbox(host.imap, to)
            .await
            .into_iter()
            .find(|m| String::from_utf8_lossy(m).contains("Message-ID: <p@exemple.test>"))
            .expect("the message as the mailbox holds it");
        let response = app
            .request(
                axum::http::Request::post("/api/v1/inbound/email?adresse=mairie@alpha.test")
                    .header("authorization", format!("Bearer {TOKEN}"))
                    .header("host", "127.0.0.1:8080")
                    .body(axum::body::Body::from(raw_with_path))
                    .unwrap(),
            )
            .await;
        assert_eq!(response.status, StatusCode::ACCEPTED, "{}", response.body);
        assert!(response.body.contains("deja_recu"), "{}", response.body);
        let refused = app
            .request(
                axum::http::Request::post("/api/v1/inbound/email")
                    .header("authorization", "Bearer faux")
                    .header("host", "127.0.0.1:8080")
                    .body(axum::body::Body::from(piped.clone()))
                    .unwrap(),
            )
            .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        let new = message("q@exemple.test", to, "q@exemple.test", "Par le tuyau", "", "Bonjour.");
        let response = app
            .request(
                axum::http::Request::post("/api/v1/inbound/email")
                    .header("authorization", format!("Bearer {TOKEN}"))
                    .header("host", "127.0.0.1:8080")
                    .body(axum::body::Body::from(new))
                    .unwrap(),
            )
            .await;
        assert_eq!(response.status, StatusCode::ACCEPTED, "{}", response.body);
        assert!(response.body.contains("\"contact\""), "{}", response.body);
        app.db.finish().await;
    }
}

fn base64_lines(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len() * 4 / 3 + bytes.len() / 38);
    for (i, chunk) in bytes.chunks(3).enumerate() {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(A[(n >> 18) as usize & 63] as char);
        out.push(A[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 { A[(n >> 6) as usize & 63] as char } else { '=' });
        out.push(if chunk.len() > 2 { A[n as usize & 63] as char } else { '=' });
        if i % 19 == 18 {
            out.push_str("\r\n");
        }
    }
    out.push_str("\r\n");
    out
}

/// Serves the app on a loopback port, for servers that call it back (Kannel).
async fn serve(app: &TestApp) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let router = app.router.clone();
    tokio::spawn(async move {
        axum::serve(listener, router.into_make_service_with_connect_info::<std::net::SocketAddr>())
            .await
    });
    port
}

/// A plain HTTP/1.0 exchange with the SMS gateway's control API.
async fn control(port: u16, method: &str, path: &str, body: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let request = format!(
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default()
}

async fn wait_for<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..300 {
        if check().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

fn pdf_text(bytes: &[u8]) -> String {
    let dir = scratch("pdf");
    let path = dir.join("lettre.pdf");
    std::fs::write(&path, bytes).unwrap();
    let out = Command::new("pdftotext").arg("-layout").arg(&path).arg("-").output().unwrap();
    assert!(out.status.success(), "pdftotext: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Acceptances 3, 4 and 5: a counter visit becomes a request; the citizen's SMS reaches it
/// through Kannel; the agent answers by paper letter (PDF with the reference, the tenant's
/// address block and a code that brings the scanned answer back) and by SMS through Kannel
/// to the fake SMSC, with its delivery report; a letter received by post becomes a request;
/// and one timeline mixes every channel in order, the citizen's being the agent's minus notes.
#[tokio::test]
async fn counter_sms_and_paper_land_on_one_request_whose_timeline_mixes_every_channel() {
    if !available("bearerbox", "SMS through Kannel") || !available("pdftotext", "PDF letters") {
        return;
    }
    for db in TestDb::all().await {
        let backend = format!("{:?}", db.backend);
        world(&db.store).await;
        let app = TestApp::on(db, config());
        let who = agents(&app).await;
        let store = app.db.store.clone();
        let alpha = tenant_id(&store, "alpha").await;
        store.add_endpoint(&endpoint(alpha, "sms", "38100", None)).await.unwrap();
        let port = serve(&app).await;
        let (sendsms, control_port) = (free_port(), free_port());
        let _kannel = Server::start(
            "smsgateway",
            &[
                "--dir".into(),
                scratch("kannel").display().to_string(),
                "--sendsms-port".into(),
                sendsms.to_string(),
                "--control-port".into(),
                control_port.to_string(),
                "--username".into(),
                "guichet".into(),
                "--password".into(),
                "secret-kannel".into(),
                "--get-url".into(),
                format!(
                    "http://127.0.0.1:{port}/api/v1/sms/inbound?token={TOKEN}&from=%p&to=%P&text=%b&charset=%C&id=%I"
                ),
            ],
        );
        let kannel = Kannel::new(KannelConfig {
            sendsms_url: format!("http://127.0.0.1:{sendsms}/cgi-bin/sendsms"),
            username: "guichet".into(),
            password: "secret-kannel".into(),
            from: Some("38100".into()),
            dlr_url: Some(format!("http://127.0.0.1:{port}/api/v1/sms/dlr?token={TOKEN}")),
        });

        // The citizen has an account; they come to the counter.
        let mut citizen = Client::new(&app);
        crate::portal::sign_up(&mut citizen, "camille@exemple.test", "/alpha/").await;
        crate::portal::verify(&mut citizen, "camille@exemple.test").await;
        let mut agent = agent_login(&app, &who.alpha).await;
        let service = store.find_service(alpha, "question-mairie").await.unwrap().unwrap();
        let path = format!("/agents/guichet/nouveau?canal=guichet&demarche={}", service.id);
        let form = agent.get_agent(&path).await;
        assert_eq!(form.status, StatusCode::OK, "{}", form.body);
        let csrf = form.attrs("#formulaire input[name=_csrf]", "value").remove(0);
        let today =
            guichet_domain::clock::paris(time::OffsetDateTime::now_utc()).date().to_string();
        // A wrong phone number is refused with the field named, nothing is lost.
        let bad = agent
            .post_multipart(
                &path,
                &[
                    Part::Text("_csrf", &csrf),
                    Part::Text("usager_nom", "Martin"),
                    Part::Text("usager_telephone", "12"),
                    Part::Text("recu_le", &today),
                    Part::Text("sujet", "Rendez-vous"),
                ],
            )
            .await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(bad.text(".error-summary").contains("Téléphone de l'usager"), "{}", bad.body);
        assert_eq!(bad.attrs("#sujet", "value"), vec!["Rendez-vous"]);
        let done = agent
            .post_multipart(
                &path,
                &[
                    Part::Text("_csrf", &csrf),
                    Part::Text("usager_prenom", "Camille"),
                    Part::Text("usager_nom", "Martin"),
                    Part::Text("usager_courriel", "camille@exemple.test"),
                    Part::Text("usager_telephone", "06 12 34 56 78"),
                    Part::Text("usager_voie", "3 rue des Lilas"),
                    Part::Text("usager_code_postal", "20000"),
                    Part::Text("usager_commune", "Ajaccio"),
                    Part::Text("recu_le", &today),
                    Part::Text("sujet", "Rendez-vous"),
                    Part::Text("question", "Quand puis-je venir ?"),
                    Part::Text("rappel", "oui"),
                    Part::Text("telephone", "06 12 34 56 78"),
                ],
            )
            .await;
        let request_path = location(&done).split('?').next().unwrap().to_owned();
        let request_id: guichet_domain::RequestId =
            request_path.trim_start_matches("/agents/demandes/").parse().unwrap();
        let request = store.get_request(request_id).await.unwrap();
        assert_eq!(request.channel, guichet_domain::request::Channel::Guichet, "{backend}");
        assert!(request.citizen_id.is_some(), "{backend}: matched to the citizen's account");
        let ack = agent.get_agent(&format!("{request_path}/accuse")).await;
        assert_eq!(ack.status, StatusCode::OK);
        assert!(
            ack.text(".printable").contains("R112-5")
                && ack.text(".printable").contains(&request.reference),
            "{}",
            ack.body
        );

        // The citizen texts the mairie's number: Kannel calls Guichet, the SMS joins the request.
        let sent = control(control_port, "POST", "/inject", r#"{"from":"+33612345678","to":"38100","text":"Bonjour, ça marche pour jeudi ? Camille"}"#).await;
        assert!(sent.contains("\"ok\": true") || sent.contains("\"ok\":true"), "{sent}");
        wait_for("the SMS on the request", || {
            let store = store.clone();
            async move {
                store.list_request_events(request_id, false).await.unwrap().iter().any(|e| {
                    e.event.channel == guichet_domain::request::Channel::Sms
                        && e.event.kind == "message"
                })
            }
        })
        .await;
        let page = agent.get_agent(&request_path).await;
        assert!(
            page.texts(".agent-timeline .body")
                .iter()
                .any(|b| b == "Bonjour, ça marche pour jeudi ? Camille"),
            "{backend}: UCS-2 decoded: {:?}",
            page.texts(".agent-timeline .body")
        );

        // An internal note, then a paper letter.
        let csrf = page.attrs("#reponse-form input[name=_csrf]", "value").remove(0);
        location(
            &agent
                .post_agent(
                    &format!("{request_path}/note"),
                    &[("_csrf", &csrf), ("note", "Rappeler jeudi matin.")],
                )
                .await,
        );
        location(
            &agent
                .post_agent(
                    &format!("{request_path}/reponse"),
                    &[
                        ("_csrf", &csrf),
                        ("canal", "courrier"),
                        (
                            "reponse",
                            "Madame,\n\nNous vous recevrons jeudi à 10 h.\n\nCordialement.",
                        ),
                    ],
                )
                .await,
        );
        let page = agent.get_agent(&request_path).await;
        let pdf_href = page.attrs(".agent-timeline a[href*='/courriers/']", "href").remove(0);
        let pdf = app.get(&pdf_href).await;
        assert!(location(&pdf).starts_with("/agents/connexion"), "no session, no letter");
        let bytes = {
            use http_body_util::BodyExt;
            let request = axum::http::Request::get(&pdf_href)
                .header("host", "127.0.0.1:8080")
                .header("cookie", format!("guichet_agent={}", agent.agent_cookie.clone().unwrap()))
                .body(axum::body::Body::empty())
                .unwrap();
            let response = tower::ServiceExt::oneshot(app.router.clone(), request).await.unwrap();
            assert_eq!(response.headers()["content-type"], "application/pdf");
            response.into_body().collect().await.unwrap().to_bytes().to_vec()
        };
        let text = pdf_text(&bytes);
        for expected in [
            request.reference.as_str(),
            "Collectivité alpha",
            "1 place de la Mairie",
            "20000 AJACCIO",
            "Camille Martin",
            "3 rue des Lilas",
            "Nous vous recevrons jeudi à 10 h.",
        ] {
            assert!(text.contains(expected), "{backend}: {expected:?} not in the letter:\n{text}");
        }
        let code = text
            .split_whitespace()
            .find(|w| w.len() == 11 && w.as_bytes()[3] == b'-' && w.as_bytes()[7] == b'-')
            .unwrap_or_else(|| panic!("no code in {text}"))
            .to_owned();

        // The agent answers by SMS: it leaves through Kannel and reaches the fake SMSC.
        let csrf = page.attrs("#reponse-form input[name=_csrf]", "value").remove(0);
        let count = agent
            .post_agent(
                &format!("{request_path}/reponse"),
                &[
                    ("_csrf", &csrf),
                    ("canal", "sms"),
                    ("apercu", "1"),
                    ("reponse", "C’est noté : jeudi 10 h."),
                ],
            )
            .await;
        assert_eq!(count.status, StatusCode::OK);
        assert!(
            count.text("#info").contains("1 SMS") && count.text("#info").contains("UCS-2"),
            "{}",
            count.text("#info")
        );
        assert_eq!(count.text("#reponse"), "C’est noté : jeudi 10 h.", "the text is kept");
        let too_long = agent
            .post_agent(
                &format!("{request_path}/reponse"),
                &[("_csrf", &csrf), ("canal", "sms"), ("reponse", &"œ".repeat(700))],
            )
            .await;
        assert_eq!(too_long.status, StatusCode::UNPROCESSABLE_ENTITY);
        location(
            &agent
                .post_agent(
                    &format!("{request_path}/reponse"),
                    &[("_csrf", &csrf), ("canal", "sms"), ("reponse", "C’est noté : jeudi 10 h.")],
                )
                .await,
        );
        runner(&store, None, Some(kannel.clone())).run_pending().await.unwrap();
        let received = control(control_port, "GET", "/received?min=1&timeout=20", "").await;
        assert!(received.contains("C’est noté : jeudi 10 h."), "{backend}: {received}");
        assert!(received.contains("33612345678"), "{received}");
        wait_for("the delivery report", || {
            let store = store.clone();
            async move {
                store.request_sms(request_id).await.unwrap().iter().any(|m| m.status == "delivered")
            }
        })
        .await;

        // The citizen's scanned answer carries the code: it comes back to the request.
        let csrf = agent.agent_csrf("/agents/courrier/nouveau").await;
        let back = agent
            .post_multipart(
                "/agents/courrier/nouveau",
                &[
                    Part::Text("_csrf", &csrf),
                    Part::Text("collectivite", &alpha.to_string()),
                    Part::Text("expediteur", "Camille Martin"),
                    Part::Text("recu_le", &today),
                    Part::Text("objet", "Réponse au courrier"),
                    Part::Text("resume", "Confirme le rendez-vous."),
                    Part::Text("code", &code.to_lowercase().replace('-', " ")),
                    Part::File("scan", "reponse.pdf", b"%PDF-1.4\n% scan\n"),
                ],
            )
            .await;
        assert_eq!(
            location(&back),
            format!("{request_path}#historique"),
            "{backend}: {}",
            back.body
        );

        // The citizen writes from the portal too.
        let page = citizen.get(&format!("/compte/demandes/{request_id}")).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let csrf = page.attrs("form input[name=_csrf]", "value").remove(0);
        let posted = citizen
            .post_multipart(
                &format!("/compte/demandes/{request_id}/messages"),
                &[Part::Text("_csrf", &csrf), Part::Text("message", "Merci !")],
            )
            .await;
        location(&posted);

        // One timeline, every channel, in order; the citizen's is the agent's minus the note.
        let agent_view = agent.get_agent(&request_path).await;
        let channels: Vec<String> =
            agent_view.texts(".agent-timeline > li:not(.internal) .channel");
        for c in ["Accueil", "SMS", "Courrier", "En ligne"] {
            assert!(channels.iter().any(|x| x == c), "{backend}: {c} missing from {channels:?}");
        }
        assert_eq!(
            agent_view.texts(".agent-timeline > li.internal .body"),
            vec!["Rappeler jeudi matin."]
        );
        let citizen_view = citizen.get(&format!("/compte/demandes/{request_id}")).await;
        let citizen_channels: Vec<String> = citizen_view
            .texts(".timeline > li .when")
            .iter()
            .map(|w| w.rsplit(" – ").next().unwrap().to_owned())
            .collect();
        assert_eq!(
            citizen_channels, channels,
            "{backend}: the citizen sees the same exchanges in the same order"
        );
        let agent_bodies = agent_view.texts(".agent-timeline > li:not(.internal) > .body");
        let citizen_bodies = citizen_view.texts(".timeline > li > .body");
        assert_eq!(citizen_bodies, agent_bodies);
        assert!(!citizen_view.body.contains("Rappeler jeudi matin"));

        // A letter received by post becomes a request of its own, with the paper mentions.
        let path = format!("/agents/guichet/nouveau?canal=courrier&demarche={}", service.id);
        let csrf = agent.agent_csrf(&path).await;
        let missing_scan = agent
            .post_multipart(
                &path,
                &[
                    Part::Text("_csrf", &csrf),
                    Part::Text("usager_nom", "Durand"),
                    Part::Text("recu_le", &today),
                    Part::Text("sujet", "Courrier"),
                    Part::Text("question", "Voir lettre"),
                    Part::Text("rappel", "non"),
                ],
            )
            .await;
        assert_eq!(missing_scan.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(missing_scan.text(".error-summary").contains("Courrier numérisé"));
        let done = agent
            .post_multipart(
                &path,
                &[
                    Part::Text("_csrf", &csrf),
                    Part::Text("usager_prenom", "Jean"),
                    Part::Text("usager_nom", "Durand"),
                    Part::Text("recu_le", &today),
                    Part::Text("sujet", "Courrier"),
                    Part::Text("question", "Voir lettre"),
                    Part::Text("rappel", "non"),
                    Part::File("courrier_numerise", "lettre.pdf", b"%PDF-1.4\n% lettre\n"),
                ],
            )
            .await;
        let paper_path = location(&done).split('?').next().unwrap().to_owned();
        let paper: guichet_domain::RequestId =
            paper_path.trim_start_matches("/agents/demandes/").parse().unwrap();
        let paper = store.get_request(paper).await.unwrap();
        assert_eq!(paper.channel, guichet_domain::request::Channel::Courrier, "{backend}");
        assert!(paper.citizen_id.is_none(), "no address: the identity stays on the request");
        let page = agent.get_agent(&paper_path).await;
        assert!(page.texts(".files a").iter().any(|f| f == "lettre.pdf"), "{}", page.body);
        assert!(
            agent
                .get_agent(&format!("{paper_path}/accuse"))
                .await
                .text(".printable")
                .contains("R112-5")
        );

        // Walls: bravo's agent reaches none of it.
        let mut other = agent_login(&app, &who.bravo).await;
        assert_eq!(other.get_agent(&pdf_href).await.status, StatusCode::NOT_FOUND);
        assert_eq!(other.get_agent(&path).await.status, StatusCode::NOT_FOUND);
        let csrf = other.agent_csrf("/agents/courrier/nouveau").await;
        let foreign = other
            .post_multipart(
                "/agents/courrier/nouveau",
                &[
                    Part::Text("_csrf", &csrf),
                    Part::Text("collectivite", &alpha.to_string()),
                    Part::Text("expediteur", "X"),
                    Part::Text("recu_le", &today),
                    Part::Text("code", &code),
                    Part::File("scan", "x.pdf", b"%PDF-1.4\n"),
                ],
            )
            .await;
        assert_eq!(
            foreign.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "neither alpha nor its letter codes"
        );
        app.db.finish().await;
    }
}

/// Functional addresses and SMS numbers are managed by the tenant's administrators only.
#[tokio::test]
async fn administrators_manage_their_addresses_and_numbers() {
    for db in TestDb::all().await {
        world(&db.store).await;
        let app = TestApp::on(db, config());
        let who = agents(&app).await;
        let store = app.db.store.clone();
        let epci = tenant_id(&store, "cc-test").await;
        let mut admin = agent_login(&app, &who.admin).await;
        let csrf = admin.agent_csrf("/agents/admin/").await;
        let path = format!("/agents/admin/{epci}/canaux");
        let bad = admin
            .post_agent(
                &path,
                &[("_csrf", &csrf), ("type", "email"), ("adresse", "pas-une-adresse")],
            )
            .await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(bad.text("#erreurs").contains("Adresse fonctionnelle"), "{}", bad.body);
        let bad = admin
            .post_agent(
                &path,
                &[
                    ("_csrf", &csrf),
                    ("type", "email"),
                    ("adresse", "accueil@cc.test"),
                    ("imap", "http://x"),
                    ("imap_mot_de_passe", "p"),
                ],
            )
            .await;
        assert!(bad.text("#erreurs").contains("Serveur IMAP"));
        location(
            &admin
                .post_agent(
                    &path,
                    &[
                        ("_csrf", &csrf),
                        ("type", "email"),
                        ("adresse", "Accueil@CC.test"),
                        ("imap", "imaps://accueil%40cc.test@mail.cc.test/INBOX"),
                        ("imap_mot_de_passe", "secret-imap"),
                    ],
                )
                .await,
        );
        location(
            &admin
                .post_agent(&path, &[("_csrf", &csrf), ("type", "sms"), ("adresse", "38200")])
                .await,
        );
        let taken = admin
            .post_agent(&path, &[("_csrf", &csrf), ("type", "sms"), ("adresse", "38200")])
            .await;
        assert!(taken.text("#erreurs").contains("déjà utilisé"));
        let page = admin.get_agent("/agents/admin/").await;
        let listed = page.texts(".endpoints li");
        assert_eq!(listed.len(), 2, "{listed:?}");
        assert!(listed.iter().any(|l| l.contains("accueil@cc.test")));
        assert!(!page.body.contains("secret-imap"), "the password is never shown");
        // Another tenant's agent cannot touch them.
        let mut agent = agent_login(&app, &who.alpha).await;
        let csrf2 = agent.agent_csrf("/agents/").await;
        assert_eq!(
            agent
                .post_agent(&path, &[("_csrf", &csrf2), ("type", "sms"), ("adresse", "38300")])
                .await
                .status,
            StatusCode::NOT_FOUND
        );
        let id = store.list_endpoints(Some(epci)).await.unwrap()[0].id;
        assert_eq!(
            agent.post_agent(&format!("{path}/{id}/supprimer"), &[("_csrf", &csrf2)]).await.status,
            StatusCode::NOT_FOUND
        );
        location(&admin.post_agent(&format!("{path}/{id}/supprimer"), &[("_csrf", &csrf)]).await);
        assert_eq!(store.list_endpoints(Some(epci)).await.unwrap().len(), 1);
        app.db.finish().await;
    }
}
