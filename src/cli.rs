//! The `fishapp` command line: one binary, one subcommand per role.

use crate::app;
use crate::config::{CONFIG_FILE_ENV, Config};
use crate::{shutdown, telemetry};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;

/// Exit code for a bad configuration or command line (clap uses 2 for usage errors too).
const EXIT_CONFIG: u8 = 2;
/// Exit code for a failure while running.
const EXIT_FAILURE: u8 = 1;

#[derive(Debug, Parser)]
#[command(
    name = "fishapp",
    version,
    about = "Fishapp: anglers find companions for a fishing trip",
    long_about = "Fishapp: anglers find companions for a fishing trip.\n\n\
        Configuration comes from defaults that point at the local stack, an optional TOML file \
        (--config or FISHAPP_CONFIG) and FISHAPP_<KEY> environment variables, in that order. \
        `fishapp config` prints the effective values; docs/operations.md lists every key."
)]
pub struct Cli {
    /// TOML configuration file (optional).
    #[arg(long, global = true, env = CONFIG_FILE_ENV, value_name = "FILE")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Migrate, then run the API, the Temporal worker and the outbox relay in one process.
    Dev,
    /// Run the GraphQL API (HTTP).
    Serve,
    /// Run the Temporal worker: the workflow task queue and every context's activity queue, or
    /// the ones `--queues` names (e.g. `--queues post,chat` on a host of their own).
    Worker {
        #[arg(long, value_delimiter = ',', default_values_t = crate::worker::Queue::ALL.to_vec(), value_enum)]
        queues: Vec<crate::worker::Queue>,
    },
    /// Run the outbox relay (Postgres outbox to NATS JetStream).
    Relay,
    /// Create the database if missing and apply pending migrations (all or none).
    Migrate,
    /// Replay a workflow's history against this build's workflow code; exits 1 when the code
    /// would not make the same decisions (nondeterminism) or the history fails.
    Replay {
        /// A history as JSON (`temporal workflow show -w <id> --output json`, or the Web UI's
        /// download).
        #[arg(
            long,
            value_name = "FILE",
            required_unless_present = "workflow_id",
            conflicts_with = "workflow_id"
        )]
        file: Option<PathBuf>,
        /// Fetch the history of this workflow's latest run from Temporal instead.
        #[arg(long, value_name = "ID")]
        workflow_id: Option<String>,
    },
    /// Print the GraphQL schema (SDL).
    Schema,
    /// Print the effective configuration as TOML, secrets redacted.
    Config,
}

/// Parses the command line, runs the subcommand, and maps the outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();

    // Commands that need no configuration at all.
    if let Command::Schema = cli.command {
        print!("{}", fishapp_api::graphql::sdl());
        return ExitCode::SUCCESS;
    }

    let config = match Config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if let Command::Config = cli.command {
        print!("{}", config.to_redacted_toml());
        return ExitCode::SUCCESS;
    }

    telemetry::init(&config);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    match runtime.block_on(run(cli.command, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "fishapp stopped with an error");
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    shutdown::cancel_on_signal(shutdown.clone());
    match command {
        Command::Migrate => {
            let report = app::migrate(&config).await?;
            println!(
                "migrations applied: {:?}; database at version {}",
                report.applied,
                report
                    .current
                    .map_or_else(|| "none".to_owned(), |v| v.to_string())
            );
            Ok(())
        }
        Command::Serve => app::serve(&config, shutdown).await,
        Command::Worker { queues } => app::worker(&config, &queues, shutdown).await,
        Command::Relay => app::relay(&config, shutdown).await,
        Command::Dev => app::dev(&config, shutdown).await,
        Command::Replay { file, workflow_id } => {
            app::replay(&config, file.as_deref(), workflow_id.as_deref(), shutdown).await
        }
        Command::Schema | Command::Config => unreachable!("handled before the runtime starts"),
    }
}
