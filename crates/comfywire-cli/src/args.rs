//! The command line, as clap derive structs.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// `comfywire`: a client for ComfyUI's real-time API.
#[derive(Debug, Parser)]
#[command(name = "comfywire", version, about, long_about = None, after_help = crate::exit::HELP)]
pub struct Cli {
    /// Debug logging of the client's traffic on stderr (same as
    /// `RUST_LOG=comfywire=debug`; `RUST_LOG` wins when set).
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start an embedded mock ComfyUI playing a real recorded session and
    /// run a workflow against it, with live progress.
    Demo(DemoArgs),
    /// Submit an API-format workflow, follow it and download its outputs.
    Run(RunArgs),
    /// Wait for a prompt submitted anywhere (another client, another
    /// machine) and print its outcome; exit codes as `run`.
    Wait(WaitArgs),
    /// Wait for every unfinished prompt of the journal (left by a `run`
    /// that was killed) and print each outcome; exit codes as `run`.
    Resume(ResumeArgs),
    /// Print a server's live event stream until Ctrl-C.
    Watch(WatchArgs),
    /// Run many prompts over a pool of servers (`--url` once per server),
    /// with one live line per server; downloads the outputs and exits
    /// non-zero if any prompt did not succeed.
    Batch(BatchArgs),
    /// Show or change the server's queue.
    Queue(QueueArgs),
    /// Show the server's history, or one entry of it.
    History(HistoryArgs),
    /// Record a live session in the trace format (JSON Lines).
    Record(RecordArgs),
    /// Replay a recorded trace through the protocol core and print the
    /// events and each prompt's outcome.
    Replay(ReplayArgs),
    /// Read or change the settings file.
    Config(ConfigArgs),
}

/// Options every command that talks to a server takes.
#[derive(Debug, Args, Clone, Default)]
pub struct ServerArgs {
    /// Server URL (default http://127.0.0.1:8188; overrides `COMFYWIRE_URL`
    /// and the settings file).
    #[arg(long, global = true)]
    pub url: Option<String>,
}

/// The server or servers of a command that can drive a pool.
#[derive(Debug, Args, Clone, Default)]
pub struct ServersArgs {
    /// Server URL; once per server for a pool. Without it: the settings'
    /// `servers` when they list some, else the one server `COMFYWIRE_URL`
    /// or the settings file name (default http://127.0.0.1:8188).
    #[arg(long = "url", value_name = "URL")]
    pub urls: Vec<String>,
}

impl ServersArgs {
    /// The one server when there is no pool (the first `--url`, if any).
    pub fn single(&self) -> ServerArgs {
        ServerArgs {
            url: self.urls.first().cloned(),
        }
    }
}

/// `comfywire demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Recorded session to play (e.g. long_run, success_single,
    /// preview_metadata, cached_rerun, execution_error).
    #[arg(long, default_value = "long_run")]
    pub scenario: String,
    /// Playback speed: 1 is recorded speed, 2 twice as fast, 0 no delays.
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// Print events as JSON lines instead of progress.
    #[arg(long)]
    pub json: bool,
}

/// `comfywire batch`.
#[derive(Debug, Args)]
pub struct BatchArgs {
    /// API-format workflow files (each is submitted `--repeat` times).
    #[arg(required = true)]
    pub workflows: Vec<PathBuf>,
    /// Submit each workflow this many times.
    #[arg(long, default_value_t = 1)]
    pub repeat: u32,
    /// Change an input of every workflow before submitting:
    /// `NODE.INPUT=VALUE` (VALUE is JSON, or else a string).
    #[arg(long = "set", value_name = "NODE.INPUT=VALUE")]
    pub set: Vec<String>,
    /// The servers of the pool.
    #[command(flatten)]
    pub servers: ServersArgs,
    /// Download every output into this folder.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Longest wait for each prompt, in seconds.
    #[arg(long, value_name = "S")]
    pub timeout: Option<f64>,
    /// Seconds a server may be unreachable before its queued prompts move
    /// to another server (default: the settings' `pool_grace_s`, else 10).
    #[arg(long, value_name = "S")]
    pub grace: Option<f64>,
    /// Print the pool's events and each outcome as JSON lines.
    #[arg(long)]
    pub json: bool,
}

/// `comfywire run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// API-format workflow file (a JSON object of nodes, or `{"prompt": {...}}`).
    pub workflow: PathBuf,
    /// The server, or the servers of a pool (then `run` is a `batch` of
    /// one prompt: no journal, no queue or stall deadline).
    #[command(flatten)]
    pub servers: ServersArgs,
    /// With a pool: seconds a server may be unreachable before a queued
    /// prompt moves (default: the settings' `pool_grace_s`, else 10).
    #[arg(long, value_name = "S")]
    pub grace: Option<f64>,
    /// Change an input before submitting: `NODE.INPUT=VALUE` (VALUE is JSON
    /// when it parses, else a string). Repeatable.
    #[arg(long = "set", value_name = "NODE.INPUT=VALUE")]
    pub set: Vec<String>,
    /// Download the output files into this folder.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Give up if the prompt has not started after this many seconds.
    #[arg(long, value_name = "S")]
    pub queue_timeout: Option<f64>,
    /// Give up if the running prompt shows no activity for this many seconds.
    #[arg(long, value_name = "S")]
    pub stall_timeout: Option<f64>,
    /// Give up after this many seconds in all.
    #[arg(long, value_name = "S")]
    pub timeout: Option<f64>,
    /// One JSON object per line on stdout (events, then a `result` line).
    #[arg(long)]
    pub json: bool,
    /// Journal file (default: `journal.jsonl` next to the settings file,
    /// or the settings key `journal`); `comfywire resume` finishes what a
    /// killed run left.
    #[arg(long, value_name = "PATH", conflicts_with = "no_journal")]
    pub journal: Option<PathBuf>,
    /// Keep no journal.
    #[arg(long)]
    pub no_journal: bool,
}

/// `comfywire wait`.
#[derive(Debug, Args)]
pub struct WaitArgs {
    /// The prompt id.
    pub id: String,
    /// Server.
    #[command(flatten)]
    pub server: ServerArgs,
    /// Download the output files into this folder.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Give up after this many seconds (the prompt goes on).
    #[arg(long, value_name = "S")]
    pub timeout: Option<f64>,
    /// One JSON object per line on stdout (events, then a `result` line).
    #[arg(long)]
    pub json: bool,
}

/// `comfywire resume`.
#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// Server.
    #[command(flatten)]
    pub server: ServerArgs,
    /// Journal file (default as `run`).
    #[arg(long, value_name = "PATH")]
    pub journal: Option<PathBuf>,
    /// Give up waiting for each prompt after this many seconds.
    #[arg(long, value_name = "S")]
    pub timeout: Option<f64>,
    /// One `result` JSON object per prompt on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `comfywire watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The server, or several (each line then names its server).
    #[command(flatten)]
    pub servers: ServersArgs,
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
}

/// `comfywire queue`.
#[derive(Debug, Args)]
pub struct QueueArgs {
    /// Server.
    #[command(flatten)]
    pub server: ServerArgs,
    /// Print JSON.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do (default: list).
    #[command(subcommand)]
    pub action: Option<QueueAction>,
}

/// Queue operations.
#[derive(Debug, Subcommand)]
pub enum QueueAction {
    /// List the running and pending prompts.
    List,
    /// Remove pending prompts.
    Delete {
        /// Prompt ids.
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Remove every pending prompt.
    Clear,
    /// Interrupt a prompt, only if it is the one running now.
    Interrupt {
        /// Prompt id.
        id: String,
    },
}

/// `comfywire history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// One prompt's entry (default: the latest entries).
    pub id: Option<String>,
    /// Server.
    #[command(flatten)]
    pub server: ServerArgs,
    /// How many entries to list.
    #[arg(long, default_value_t = 20)]
    pub max: usize,
    /// Print the server's JSON.
    #[arg(long)]
    pub json: bool,
}

/// `comfywire record`.
#[derive(Debug, Args)]
pub struct RecordArgs {
    /// Where to write the trace.
    pub out: PathBuf,
    /// Server.
    #[command(flatten)]
    pub server: ServerArgs,
    /// Stop after this many seconds (default: at Ctrl-C).
    #[arg(long, value_name = "S")]
    pub duration: Option<f64>,
    /// The socket's clientId (default: a fresh one). Prompts submitted with
    /// this client id are recorded with all their frames.
    #[arg(long)]
    pub client_id: Option<String>,
}

/// `comfywire replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// A trace file.
    pub trace: PathBuf,
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
}

/// `comfywire config`.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: ConfigAction,
}

/// Settings operations.
#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Print the settings file, or one key of it.
    Get {
        /// A key (e.g. `url`, `timeout_s`).
        key: Option<String>,
    },
    /// Set a key (VALUE is JSON when it parses, else a string; `null` removes it).
    Set {
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
    /// Remove a key.
    Unset {
        /// The key.
        key: String,
    },
    /// Print the settings file's path.
    Path,
}

/// A flag's seconds as a duration (absent stays absent), or a usage error
/// naming the flag.
pub fn seconds(value: Option<f64>, flag: &str) -> Result<Option<Duration>, crate::exit::Failure> {
    value
        .map(|s| {
            Duration::try_from_secs_f64(s).map_err(|_| {
                crate::exit::Failure::usage(format!("{flag} {s}: not a number of seconds"))
            })
        })
        .transpose()
}
