//! `comfywire-mock [--port 8188] [--traces DIR] [--speed X] [--scenario NAME]`:
//! serves a mock ComfyUI until Ctrl-C.

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
}

impl Args {
    fn config(self) -> MockConfig {
        let defaults = MockConfig::default();
        MockConfig {
            port: self.port,
            traces: self.traces.map_or(defaults.traces, TraceSource::Dir),
            speed: self.speed,
            default_scenario: self.scenario.unwrap_or(defaults.default_scenario),
        }
    }
}

#[tokio::main]
async fn main() {
    let config = Args::parse().config();
    let server = match MockServer::start_with(config).await {
        Ok(server) => server,
        Err(e) => {
            eprintln!("comfywire-mock: {e}");
            std::process::exit(1);
        }
    };
    println!("{}", server.url());
    if let Err(e) = tokio::signal::ctrl_c().await {
        eprintln!("comfywire-mock: waiting for Ctrl-C: {e}");
    }
    server.shutdown().await;
}
