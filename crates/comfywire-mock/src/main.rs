//! `comfywire-mock [--port 8188] [--traces DIR] [--speed X] [--scenario NAME]`:
//! serves a mock ComfyUI until Ctrl-C.

use comfywire_mock::{MockConfig, MockServer, TraceSource};
use std::path::PathBuf;

const USAGE: &str =
    "usage: comfywire-mock [--port 8188] [--traces DIR] [--speed X] [--scenario NAME]";

fn parse_args(args: impl Iterator<Item = String>) -> Result<MockConfig, String> {
    let mut config = MockConfig {
        port: 8188,
        ..MockConfig::default()
    };
    let mut args = args;
    while let Some(flag) = args.next() {
        if flag == "-h" || flag == "--help" {
            return Err(USAGE.to_owned());
        }
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        match flag.as_str() {
            "--port" => config.port = value.parse().map_err(|e| format!("--port {value}: {e}"))?,
            "--traces" => config.traces = TraceSource::Dir(PathBuf::from(value)),
            "--speed" => {
                config.speed = value.parse().map_err(|e| format!("--speed {value}: {e}"))?;
            }
            "--scenario" => config.default_scenario = value,
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    Ok(config)
}

#[tokio::main]
async fn main() {
    let config = match parse_args(std::env::args().skip(1)) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
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
