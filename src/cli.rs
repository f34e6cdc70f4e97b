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
    /// Migrate, then run the API, the Temporal worker, the outbox relay and the notifications
    /// consumer in one process.
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
    /// Run the notifications consumer (the event stream to users' notifications); any number
    /// of replicas share its durable consumer.
    Notifier,
    /// List the notifications consumer's dead letters (events it gave up on), oldest first, or
    /// handle them again with --retry; exits 1 when any retried one still fails.
    DeadLetters {
        /// Handle each again by the consumer's rules: one handled now (or before) is removed,
        /// one that fails again is kept with one attempt more and the new error.
        #[arg(long)]
        retry: bool,
        /// Only this dead letter (its id, as listed).
        #[arg(long, value_name = "ID")]
        id: Option<i64>,
        /// At most this many.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(i64).range(1..=10_000))]
        limit: i64,
    },
    /// Move the notifiers' durable consumer to a point in time: every event published since then
    /// is delivered again (after restoring the database from a backup). Stop the notifiers
    /// first; events the database records as handled are skipped, and so are events whose
    /// change the restore took away (their outbox row is gone), which tell nobody.
    NotifierRewind {
        /// Where to start: an RFC 3339 time, e.g. 2026-12-05T09:00:00Z (the backup's time, less
        /// a margin).
        #[arg(long, value_name = "TIME")]
        from: chrono::DateTime<chrono::Utc>,
        /// Rewind even though notifiers still seem to read (pull requests waiting).
        #[arg(long)]
        force: bool,
    },
    /// Create the database if missing and apply pending migrations (all or none).
    Migrate,
    /// Replay workflow histories against this build's workflow code; exits 1 when the code
    /// would not make the same decisions (nondeterminism) for any of them.
    #[command(group(clap::ArgGroup::new("source").required(true)))]
    Replay {
        /// A history as JSON: `temporal workflow show -w <id> --output json`, the Web UI's
        /// download (both proto3 JSON), or the SDK's own encoding (tests/histories/).
        #[arg(long, value_name = "FILE", group = "source")]
        file: Option<PathBuf>,
        /// Fetch the history of this workflow's latest run from Temporal instead.
        #[arg(long, value_name = "ID", group = "source")]
        workflow_id: Option<String>,
        /// Replay every failed saga of this deployment (workflow ids starting with
        /// `<temporal_task_queue_prefix>/`), one verdict line each.
        #[arg(long, group = "source")]
        all_failed: bool,
        /// Replay every execution a Temporal visibility query finds, e.g.
        /// 'WorkflowType = "CreatePostWorkflow" AND StartTime > "2026-11-01T00:00:00Z"'.
        #[arg(long, value_name = "QUERY", group = "source")]
        query: Option<String>,
        /// At most this many executions with --all-failed or --query.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Write a new Ed25519 key for signing ID tokens (PKCS#8 PEM, mode 0600; an existing file
    /// is never overwritten) and print its public key (SPKI PEM).
    Keygen {
        /// Where to write the private key.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Keep an existing key (and print its public key) instead of failing.
        #[arg(long)]
        if_missing: bool,
    },
    /// Print the GraphQL schema (SDL).
    Schema,
    /// Print the effective configuration as TOML, secrets redacted.
    Config,
}

/// Parses the command line, runs the subcommand, and maps the outcome to an exit code.
pub fn main() -> ExitCode {
    // First, before the allocator has touched many pages; logged once logging is set up.
    let huge_pages = without_transparent_huge_pages();
    let cli = Cli::parse();

    // Commands that need no configuration at all.
    match &cli.command {
        Command::Schema => {
            print!("{}", fishapp_api::graphql::sdl());
            return ExitCode::SUCCESS;
        }
        Command::Keygen { out, if_missing } => {
            return match app::keygen(out, *if_missing) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::from(EXIT_FAILURE)
                }
            };
        }
        _ => {}
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
    if let Err(e) = huge_pages {
        tracing::warn!(error = %e, "transparent huge pages stay on for this process");
    }
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

/// Turns transparent huge pages off for this process. The allocator (mimalloc) asks for them on
/// its arenas, and the kernel's khugepaged then collapses any 2 MiB region with one page in use
/// into a whole huge page, minutes after start: a long-running process's memory steps up by
/// megabytes it does not use (the soak in docs/benchmarks.md measured +12 MiB of huge pages, +6
/// MiB RSS, 10–15 minutes in). A heap of tens of MiB gains nothing measurable from fewer TLB
/// misses. A kernel that refuses is logged; the process runs as it is.
fn without_transparent_huge_pages() -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    rustix::thread::disable_transparent_huge_pages(true)?;
    Ok(())
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
        Command::Notifier => app::notifier(&config, shutdown).await,
        Command::NotifierRewind { from, force } => app::notifier_rewind(&config, from, force).await,
        Command::DeadLetters { retry, id, limit } => {
            app::dead_letters(&config, retry, id, limit).await
        }
        Command::Dev => app::dev(&config, shutdown).await,
        Command::Replay {
            file,
            workflow_id,
            all_failed,
            query,
            limit,
        } => {
            let source = match (file, workflow_id, query) {
                (Some(path), _, _) => app::ReplaySource::File(path),
                (None, Some(id), _) => app::ReplaySource::Workflow(id),
                (None, None, Some(query)) => app::ReplaySource::Query { query, limit },
                (None, None, None) if all_failed => app::ReplaySource::Query {
                    query: fishapp_temporal::replay::failed_query(
                        &config.temporal.temporal_task_queue_prefix,
                    ),
                    limit,
                },
                (None, None, None) => {
                    anyhow::bail!("give --file, --workflow-id, --all-failed or --query")
                }
            };
            app::replay(&config, source, shutdown).await
        }
        Command::Schema | Command::Config | Command::Keygen { .. } => {
            unreachable!("handled before the runtime starts")
        }
    }
}
