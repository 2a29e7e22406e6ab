//! What each subcommand does.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use guichet_channels::sms::{Kannel, KannelConfig};
use guichet_channels::{FileMailer, Mailer, SmtpMailer};
use guichet_jobs::{PurgeJobs, PurgeSessions, Registry, Runner, RunnerConfig, SendEmail, SendSms};
use guichet_store::{ImportOutcome, Store};
use guichet_store_postgres::{PgOptions, PgStore};
use guichet_store_sqlite::{SqliteOptions, SqliteStore};
use guichet_web::inbound::FetchMail;
use guichet_web::{AppState, WebConfig};
use tokio::sync::watch;

use crate::config::{Backend, EmailTransport, LogFormat, Overrides, Settings};
use crate::demo;

/// The subcommand.
#[derive(Clone, Copy)]
pub enum Mode {
    Serve,
    Demo,
    Migrate,
    Worker,
    CheckConfig,
    AuditVerify,
    StatsVerify,
    StatsRebuild,
    Generate(crate::generate::Scale),
}

/// Entry point after argument parsing.
impl PartialEq for Mode {
    fn eq(&self, other: &Self) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }
}

pub fn main(mode: Mode, config_file: Option<&Path>, overrides: Overrides) -> anyhow::Result<()> {
    let settings = Settings::load(config_file, &|k| std::env::var(k).ok(), overrides)?;
    if mode == Mode::CheckConfig {
        println!("{settings:#?}");
        println!("database: {} ({:?})", settings.database_url_redacted(), settings.backend()?);
        println!("configuration valide");
        return Ok(());
    }
    let mut settings = settings;
    if matches!(mode, Mode::Generate(_)) && settings.log.level == "info" {
        // Bulk inserts are long statements: sqlx would log each one as slow, in full.
        settings.log.level = "info,sqlx=error".to_owned();
    }
    init_logging(&settings)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async_main(mode, settings))
}

fn init_logging(settings: &Settings) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(&settings.log.level)
        .with_context(|| format!("invalid log level {:?}", settings.log.level))?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match settings.log.format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Pretty => builder.compact().init(),
    }
    Ok(())
}

async fn async_main(mode: Mode, settings: Settings) -> anyhow::Result<()> {
    let store = open_store(&settings, mode == Mode::Demo).await?;
    if mode == Mode::Migrate {
        println!("migrations appliquées ({})", settings.database_url_redacted());
        store.close().await;
        return Ok(());
    }
    if let Mode::Generate(scale) = mode {
        let hash = tokio::task::spawn_blocking(|| {
            guichet_web::password::hash_password(crate::generate::BENCH_PASSWORD)
        })
        .await
        .context("password hashing task failed")??;
        crate::generate::run(store.as_ref(), scale, &hash).await?;
        store.close().await;
        return Ok(());
    }
    if mode == Mode::AuditVerify {
        let report = crate::audit::verify(store.as_ref()).await?;
        store.close().await;
        println!("{} chaînes vérifiées, {} événements", report.chains, report.events);
        if let Some(first) = report.broken.first() {
            for b in &report.broken {
                println!(
                    "chaîne rompue : collectivité {}, chaîne {}, événement {} (n° {}) : {}",
                    b.tenant,
                    b.lane,
                    if b.event.is_empty() { "(aucun)" } else { &b.event },
                    b.seq,
                    b.reason
                );
            }
            anyhow::bail!(
                "audit chain broken at event {} (tenant {}, lane {}, seq {}): {}",
                first.event,
                first.tenant,
                first.lane,
                first.seq,
                first.reason
            );
        }
        println!("toutes les chaînes sont intactes");
        return Ok(());
    }
    if matches!(mode, Mode::StatsVerify | Mode::StatsRebuild) {
        let rebuild = mode == Mode::StatsRebuild;
        let report = crate::stats::verify(store.as_ref(), rebuild).await?;
        store.close().await;
        println!(
            "{} demandes vérifiées d'après leurs événements ; {} sans événements (historique importé), ignorées",
            report.checked, report.without_events
        );
        for d in report.drifted.iter().take(20) {
            println!(
                "écart : demande {} ({:?} enregistré, {:?} d'après les événements)",
                d.request, d.stored, d.replayed
            );
        }
        if report.periods_drifted > 0 {
            println!(
                "{} périodes de traitement ne reprennent plus les données de leur demande{}",
                report.periods_drifted,
                if rebuild { " : recopiées" } else { "" }
            );
        }
        if report.drifted.is_empty() && report.periods_drifted == 0 {
            println!("les chiffres des tableaux de bord sont conformes aux événements");
        } else if rebuild {
            println!("{} demandes recalculées d'après leurs événements", report.drifted.len());
        } else {
            anyhow::bail!(
                "{} requests' dashboard figures differ from their events and {} phase periods \
                 from their requests (run `guichet stats rebuild`)",
                report.drifted.len(),
                report.periods_drifted
            );
        }
        return Ok(());
    }
    if mode == Mode::Demo {
        load_demo(store.as_ref()).await?;
    }

    let (stop_tx, stop_rx) = watch::channel(false);
    let mailer: Arc<dyn Mailer> = match settings.email.transport {
        EmailTransport::File => {
            let dir = settings.data_dir.join("mails");
            Arc::new(
                FileMailer::new(&dir)
                    .with_context(|| format!("cannot create mail directory {}", dir.display()))?,
            )
        }
        EmailTransport::Smtp => {
            let url =
                settings.email.smtp_url.as_ref().map(|s| s.expose().to_owned()).unwrap_or_default();
            Arc::new(
                SmtpMailer::from_url(&url).map_err(|e| anyhow::anyhow!("email.smtp_url: {e}"))?,
            )
        }
    };
    if mode == Mode::Serve && settings.email.transport == EmailTransport::File {
        tracing::warn!(dir = %settings.data_dir.join("mails").display(), "e-mails are written to files, not sent: set email.transport = \"smtp\" in production");
    }
    // The listening address is only known once bound; jobs build links from the public URL,
    // or from the configured address until then.
    let listener = match mode {
        Mode::Worker => None,
        _ => Some(
            tokio::net::TcpListener::bind(settings.http.listen)
                .await
                .with_context(|| format!("cannot listen on {}", settings.http.listen))?,
        ),
    };
    let address = match &listener {
        Some(l) => l.local_addr().context("cannot read the listening address")?,
        None => settings.http.listen,
    };
    let web = WebConfig {
        public_url: settings.http.public_url.clone(),
        platform_name: settings.http.platform_name.clone(),
        platform_hosts: settings.platform_hosts(),
        metrics_token: settings.http.metrics_token.as_ref().map(|s| s.expose().to_owned()),
        demo: mode == Mode::Demo,
        base_url: settings
            .http
            .public_url
            .clone()
            .map_or_else(|| format!("http://{address}"), |u| u.trim_end_matches('/').to_owned()),
        files_dir: settings.data_dir.join("files"),
        mail_domain: settings.public_host().unwrap_or_else(|| "guichet.localhost".to_owned()),
        mail_from: settings.email.from.clone(),
        inbound_token: settings.channels.inbound_token.as_ref().map(|s| s.expose().to_owned()),
        page_cache: std::time::Duration::from_secs(settings.http.page_cache_seconds),
        session_cache: std::time::Duration::from_secs(settings.http.session_cache_seconds),
    };
    let gateway = settings.channels.kannel_sendsms_url.as_ref().map(|url| {
        Kannel::new(KannelConfig {
            sendsms_url: url.clone(),
            username: settings.channels.kannel_username.clone(),
            password: settings
                .channels
                .kannel_password
                .as_ref()
                .map(|p| p.expose().to_owned())
                .unwrap_or_default(),
            from: settings.channels.sms_sender.clone(),
            dlr_url: web.inbound_token.as_ref().map(|t| {
                format!(
                    "{}/api/v1/sms/dlr?token={}",
                    web.base_url,
                    guichet_channels::sms::query_encode(t)
                )
            }),
        })
    });
    // The mail fetcher works with its own view of the application (store, files, settings).
    let fetch_state = AppState::new(store.clone(), web.clone(), Arc::new(Default::default()));
    let registry = Registry::new()
        .every(
            time::Duration::hours(1),
            PurgeJobs { retention: time::Duration::days(settings.jobs.retention_days) },
        )
        .every(time::Duration::hours(1), PurgeSessions)
        .every(
            time::Duration::seconds(
                i64::try_from(settings.channels.imap_poll_seconds).unwrap_or(60),
            ),
            FetchMail { state: fetch_state },
        )
        .with(SendEmail { mailer, from: settings.email.from.clone() })
        .with(SendSms { gateway });
    let runner_config = RunnerConfig {
        poll_interval: Duration::from_millis(settings.jobs.poll_interval_ms.max(10)),
        ..RunnerConfig::default()
    };
    let runner = Runner::new(store.clone(), registry, runner_config);

    if mode == Mode::Worker {
        tracing::info!(database = %store.backend(), "job worker started");
        tokio::spawn(forward_signals(stop_tx));
        join_runners(spawn_runners(&runner, settings.jobs.concurrency, &stop_rx)).await;
        store.close().await;
        return Ok(());
    }

    let Some(listener) = listener else { return Ok(()) };

    let runner_tasks = if settings.jobs.in_process {
        spawn_runners(&runner, settings.jobs.concurrency, &stop_rx)
    } else {
        Vec::new()
    };

    let state = AppState::new(store.clone(), web, runner.stats());
    let app = guichet_web::router(state);

    let url = format!("http://{address}/");
    tracing::info!(%url, database = %store.backend(), "serving");
    if mode == Mode::Demo {
        print_demo_banner(&url, &settings, store.backend());
    }

    tokio::spawn(forward_signals(stop_tx));
    axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(stopped(stop_rx))
        .await
        .context("the HTTP server stopped unexpectedly")?;
    tracing::info!("HTTP server drained");
    // The runners finish the jobs in progress; bounded so a stuck job cannot hang shutdown.
    let drained = join_runners(runner_tasks);
    if tokio::time::timeout(Duration::from_secs(20), drained).await.is_err() {
        tracing::warn!("job runners did not stop within 20 s; their jobs will be retried");
    }
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Opens the configured store and migrates it.
async fn open_store(settings: &Settings, create_data_dir: bool) -> anyhow::Result<Arc<dyn Store>> {
    let url = settings.database_url();
    let shown = settings.database_url_redacted();
    match settings.backend()? {
        Backend::Sqlite => {
            // The embedded default lives in the data directory: create it rather than fail.
            if settings.database.url.is_none() || create_data_dir {
                std::fs::create_dir_all(&settings.data_dir).with_context(|| {
                    format!("cannot create data directory {}", settings.data_dir.display())
                })?;
            }
            let options = SqliteOptions {
                readers: settings.database.max_connections.clamp(1, 8),
                synchronous_full: settings.database.sqlite_synchronous_full,
                busy_timeout: Duration::from_secs(settings.database.connect_timeout_secs.max(1)),
            };
            let store = SqliteStore::connect(&url, &options)
                .await
                .with_context(|| format!("cannot open SQLite database {shown}"))?;
            store.migrate().await.with_context(|| format!("cannot migrate {shown}"))?;
            Ok(Arc::new(store))
        }
        Backend::Postgres => {
            let options = PgOptions {
                max_connections: settings.database.max_connections,
                acquire_timeout: Duration::from_secs(settings.database.connect_timeout_secs.max(1)),
                schema: None,
            };
            let store = PgStore::connect(&url, &options)
                .await
                .with_context(|| format!("cannot connect to PostgreSQL at {shown}"))?;
            store.migrate().await.with_context(|| format!("cannot migrate {shown}"))?;
            Ok(Arc::new(store))
        }
    }
}

async fn load_demo(store: &dyn Store) -> anyhow::Result<()> {
    if store.has_import(demo::IMPORT_NAME).await? {
        tracing::info!("demo territory already loaded; keeping existing data");
        return Ok(());
    }
    let hash = tokio::task::spawn_blocking(|| guichet_web::password::hash_password(demo::PASSWORD))
        .await
        .context("password hashing task failed")??;
    let territory = demo::territory(&hash).map_err(|e| anyhow::anyhow!("demo data: {e}"))?;
    match store.import_territory(&territory).await.context("cannot load the demo territory")? {
        ImportOutcome::Loaded => {
            let requests = demo::load_requests(store, &territory)
                .await
                .context("cannot load the demo requests")?;
            tracing::info!(tenants = territory.tenants.len(), requests, "demo territory loaded");
        }
        ImportOutcome::AlreadyLoaded => tracing::info!("demo territory already loaded"),
    }
    Ok(())
}

fn print_demo_banner(url: &str, settings: &Settings, backend: &str) {
    println!();
    println!("Guichet (démonstration) : {url}");
    println!("  base de données : {backend} ({})", settings.database_url_redacted());
    println!("  intercommunalité : {url}{}/", demo::EPCI_SLUG);
    println!("  commune          : {url}{}/", demo::SAMPLE_COMMUNE);
    println!(
        "  espace agents    : {url}agents/ (les administrateurs activent la double authentification à la première connexion)"
    );
    println!("Comptes de démonstration (mot de passe : {}) :", demo::PASSWORD);
    for (who, email) in demo::logins() {
        println!("  {who:<42} {email}");
    }
    println!(
        "Courriels (écrits dans {}) : {url}demo/courriels",
        settings.data_dir.join("mails").display()
    );
    println!("Arrêt : Ctrl+C");
    println!();
}

/// Turns SIGTERM and Ctrl+C into the stop signal.
async fn forward_signals(stop: watch::Sender<bool>) {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("stop signal received; finishing requests in progress");
    let _ = stop.send(true);
}

/// Starts `n` job loops on the same runner: claims are atomic, so they never run a job twice.
fn spawn_runners(
    runner: &Runner,
    n: usize,
    stop: &watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..n.max(1))
        .map(|_| {
            let runner = runner.clone();
            let stop = stop.clone();
            tokio::spawn(async move { runner.run_until(stopped(stop)).await })
        })
        .collect()
}

/// Waits for every task, whatever order they end in.
async fn join_runners(tasks: Vec<tokio::task::JoinHandle<()>>) {
    for task in tasks {
        if let Err(e) = task.await {
            tracing::error!(error = %e, "a job runner task ended abnormally");
        }
    }
}

/// Completes when the stop flag is raised.
async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}
