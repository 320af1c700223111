//! `comfywire-mock [--port 8188] [--count N] [--traces DIR] [--speed X]
//! [--scenario NAME]`: serves one mock ComfyUI (or N, for a pool) until
//! Ctrl-C.

use clap::Parser;
use comfywire_mock::{MockConfig, MockServer, TraceSource};
use std::path::PathBuf;

/// A mock ComfyUI that replays recorded sessions (HTTP and WebSocket on
/// one port) until Ctrl-C; prints its URL first.
#[derive(Debug, Parser)]
#[command(name = "comfywire-mock", version)]
struct Args {
    /// The port on 127.0.0.1 (0: any free one).
    #[arg(long, default_value_t = 8188)]
    port: u16,
    /// A folder of recorded traces to replay instead of the embedded ones.
    #[arg(long, value_name = "DIR")]
    traces: Option<PathBuf>,
    /// Replay speed: 1 is as recorded, 2 twice as fast, 0 as fast as it goes.
    #[arg(long, default_value_t = 1.0, value_name = "X")]
    speed: f64,
    /// The scenario replayed for workflows that match no recording.
    #[arg(long, value_name = "NAME")]
    scenario: Option<String>,
    /// How many servers to start (a pool to try `comfywire batch` on):
    /// ports PORT, PORT+1, ... (any free ones with port 0), one URL per
    /// line, each server with its own queue, history and faults.
    #[arg(long, default_value_t = 1, value_name = "N")]
    count: u16,
}

impl Args {
    /// The configuration of server `index` (0-based).
    fn config(&self, index: u16) -> MockConfig {
        let defaults = MockConfig::default();
        MockConfig {
            port: if self.port == 0 {
                0
            } else {
                self.port.saturating_add(index)
            },
            traces: self
                .traces
                .clone()
                .map_or(defaults.traces, TraceSource::Dir),
            speed: self.speed,
            default_scenario: self.scenario.clone().unwrap_or(defaults.default_scenario),
        }
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if args.count == 0 {
        eprintln!("comfywire-mock: --count 0: nothing to serve");
        std::process::exit(2);
    }
    let mut servers = Vec::new();
    for index in 0..args.count {
        match MockServer::start_with(args.config(index)).await {
            Ok(server) => {
                println!("{}", server.url());
                servers.push(server);
            }
            Err(e) => {
                eprintln!("comfywire-mock: {e}");
                std::process::exit(1);
            }
        }
    }
    if let Err(e) = tokio::signal::ctrl_c().await {
        eprintln!("comfywire-mock: waiting for Ctrl-C: {e}");
    }
    for server in servers {
        server.shutdown().await;
    }
}
