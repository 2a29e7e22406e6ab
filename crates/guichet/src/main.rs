//! `guichet`: the one binary. It reads the configuration, chooses the storage backend from the
//! database URL, runs migrations, and serves the portals, the back-office and the job runner.
//! It is the only crate that names both backends.

#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use guichet::{config, run};

// glibc's allocator took a sixth of the form page's time under load, much of it in lock
// contention between the runtime's threads; mimalloc keeps per-thread free lists.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Guichet: guichet unique multicanal pour les communes et leur intercommunalité.
#[derive(Parser)]
#[command(name = "guichet", version, about)]
struct Cli {
    /// TOML configuration file (then GUICHET_* variables and flags override it).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone, Default)]
struct ServeArgs {
    /// Address and port to listen on (GUICHET_LISTEN; default 127.0.0.1:8080).
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Option<SocketAddr>,
    /// Data directory (GUICHET_DATA_DIR; default ./guichet-data).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the portals and the back-office, with the job runner in-process.
    Serve(ServeArgs),
    /// Create the data directory, load the demo territory once, and serve it.
    Demo(ServeArgs),
    /// Apply database migrations and exit.
    Migrate(ServeArgs),
    /// Run background jobs only (for deployments with dedicated workers).
    Worker(ServeArgs),
    /// Check the configuration, print it with secrets hidden, and exit.
    CheckConfig(ServeArgs),
    /// Generate a synthetic territory and requests for benchmarks.
    Generate(GenerateArgs),
    /// Audit trail tools.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Dashboard figures tools.
    #[command(subcommand)]
    Stats(StatsCommand),
}

#[derive(Subcommand)]
enum StatsCommand {
    /// Replay every request's events and report those whose dashboard figures drifted; exits 1
    /// if any did.
    Verify(ServeArgs),
    /// Same, and repair the drifted figures from the events.
    Rebuild(ServeArgs),
}

#[derive(Args, Clone)]
struct GenerateArgs {
    #[command(flatten)]
    serve: ServeArgs,
    /// Tenants in all (EPCIs are 1 in 28).
    #[arg(long, default_value_t = 35_000)]
    tenants: u32,
    /// Requests.
    #[arg(long, default_value_t = 1_000_000)]
    requests: u64,
    /// Seed of the generator (same seed, same data).
    #[arg(long, default_value_t = 2026)]
    seed: u64,
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check every tenant's event hash chain; exits 1 and names the first broken event.
    Verify(ServeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (mode, args) = match cli.command {
        Command::Serve(a) => (run::Mode::Serve, a),
        Command::Demo(a) => (run::Mode::Demo, a),
        Command::Migrate(a) => (run::Mode::Migrate, a),
        Command::Worker(a) => (run::Mode::Worker, a),
        Command::CheckConfig(a) => (run::Mode::CheckConfig, a),
        Command::Audit(AuditCommand::Verify(a)) => (run::Mode::AuditVerify, a),
        Command::Stats(StatsCommand::Verify(a)) => (run::Mode::StatsVerify, a),
        Command::Stats(StatsCommand::Rebuild(a)) => (run::Mode::StatsRebuild, a),
        Command::Generate(g) => (
            run::Mode::Generate(guichet::generate::Scale {
                tenants: g.tenants,
                requests: g.requests,
                seed: g.seed,
            }),
            g.serve,
        ),
    };
    let overrides = config::Overrides { listen: args.listen, data_dir: args.data_dir };
    match run::main(mode, cli.config.as_deref(), overrides) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line naming the cause, no backtrace: this is what an operator reads at 3 a.m.
            let message = format!("{e:#}").replace('\n', " ");
            eprintln!("guichet: error: {message}");
            ExitCode::FAILURE
        }
    }
}
