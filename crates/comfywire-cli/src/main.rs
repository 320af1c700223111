//! # comfywire (the command-line tool)
//!
//! `comfywire demo | run | wait | resume | watch | batch | queue | history
//! | record | replay | config`: the comfywire client on the command line. It is a thin shell
//! over `comfywire-client` (connection, jobs, deadlines, and the frame tap
//! that `record` writes out), `comfywire-proto` (the trace format and
//! replay) and `comfywire-mock` (the embedded server of `demo`). Every
//! command that talks to a server builds its client from one config path:
//! `--url` beats `COMFYWIRE_*`, which beats the settings file
//! (`comfywire_client::Settings::layered`).
//! `run` keeps a journal (by default `journal.jsonl` next to the settings
//! file) so that `resume` can finish what a killed run left.
//!
//! Progress goes to stderr (a bar on a terminal, plain lines when piped);
//! results go to stdout; `--json` prints one JSON object per line on
//! stdout with the schema in the crate's README. The exit codes are in
//! [`exit`].

mod args;
mod batch;
mod config_cmd;
mod connect_config;
mod demo;
mod exit;
mod output;
mod polling;
mod progress;
mod queue;
mod record;
mod replay;
mod run;
mod wait;
mod watch;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};
use crate::exit::Failure;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let result = match cli.command {
        Command::Config(args) => config_cmd::command(args),
        Command::Replay(args) => replay::command(args),
        command => match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime.block_on(dispatch(command)),
            Err(e) => Err(Failure::new(
                exit::FAILURE,
                format!("cannot start tokio: {e}"),
            )),
        },
    };
    match result {
        Ok(()) => ExitCode::from(exit::OK),
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

async fn dispatch(command: Command) -> Result<(), Failure> {
    match command {
        Command::Demo(args) => demo::command(args).await,
        Command::Run(args) => run::command(args).await,
        Command::Wait(args) => wait::wait(args).await,
        Command::Resume(args) => wait::resume(args).await,
        Command::Watch(args) => watch::command(args).await,
        Command::Batch(args) => batch::command(args).await,
        Command::Queue(args) => queue::command(args).await,
        Command::History(args) => queue::history(args).await,
        Command::Record(args) => record::command(args).await,
        Command::Replay(args) => replay::command(args),
        Command::Config(args) => config_cmd::command(args),
    }
}

/// `RUST_LOG` when set; else `--verbose` turns on the client's debug logs
/// (its traffic); else warnings only.
fn init_logging(verbose: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.is_empty() => EnvFilter::new(spec),
        _ if verbose => {
            EnvFilter::new("warn,comfywire_client=debug,comfywire_proto=debug,comfywire_cli=debug")
        }
        _ => EnvFilter::new("warn,comfywire_mock=error"),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
