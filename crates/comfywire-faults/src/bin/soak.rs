//! `comfywire-soak`: 10,000+ prompts over one client against an in-process
//! mock at speed 0, with the sockets dropped periodically. Samples RSS and
//! open descriptors every 1,000 prompts; both must stay flat once the
//! client's history ring (100 records) is full.
//!
//! `COMFYWIRE_SOAK_PROMPTS` (default 10000), `COMFYWIRE_SOAK_DROP_EVERY`
//! (default 250 prompts). Run in release:
//! `cargo run --release -p comfywire-faults --bin comfywire-soak`.

use std::time::{Duration, Instant};

use comfywire_client::{Client, Deadlines, Outcome};
use comfywire_faults::memory::{open_fds, rss_kib};
use comfywire_faults::run::{RunOptions, client_config};
use comfywire_mock::{Fault, MockConfig, MockServer, TraceSource};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Empties the mock's `/history` so the server side does not grow (the
/// soak measures the client, and both live in this process).
async fn clear_server_history(addr: std::net::SocketAddr) -> std::io::Result<()> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let body = r#"{"clear": true}"#;
    let request = format!(
        "POST /history HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut sink = Vec::new();
    stream.read_to_end(&mut sink).await?;
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let prompts = env("COMFYWIRE_SOAK_PROMPTS", 10_000);
    let drop_every = env("COMFYWIRE_SOAK_DROP_EVERY", 250).max(1);
    let batch = 10u64;
    let server = MockServer::start_with(MockConfig {
        port: 0,
        traces: TraceSource::Embedded,
        speed: 0.0,
        default_scenario: "success_single".into(),
    })
    .await
    .unwrap_or_else(|e| panic!("mock: {e}"));
    let options = RunOptions::default();
    let client = Client::connect(client_config(&server.url(), &options))
        .await
        .unwrap_or_else(|e| panic!("client: {e}"));
    let _ = client.wait_connected(Duration::from_secs(5)).await;
    let workflow = server.sample_workflow();
    let deadlines = Deadlines {
        total: Some(Duration::from_secs(30)),
        ..Deadlines::default()
    };
    let started = Instant::now();
    let mut done = 0u64;
    let (mut succeeded, mut lost, mut other, mut errors) = (0u64, 0u64, 0u64, 0u64);
    let mut samples: Vec<(u64, u64, usize, usize, u64, f64)> = Vec::new();
    println!("| prompts | RSS (MiB) | open fds | ring | reconnects | elapsed (s) |");
    println!("|---|---|---|---|---|---|");
    while done < prompts {
        let mut ids = Vec::new();
        for _ in 0..batch.min(prompts - done) {
            match client.submit(&workflow).await {
                Ok(s) => ids.push(s.prompt_id),
                Err(_) => errors += 1,
            }
        }
        for id in &ids {
            match client.wait_record(id, deadlines).await {
                Ok(r) => match &r.outcome {
                    Some(Outcome::Succeeded) => succeeded += 1,
                    Some(Outcome::Lost { .. }) => lost += 1,
                    _ => other += 1,
                },
                Err(_) => errors += 1,
            }
        }
        let before = done;
        done += batch.min(prompts - done);
        if done / drop_every != before / drop_every {
            server.inject(Fault::DropSocketsNow);
        }
        if done % 1000 == 0 || done == prompts {
            let _ = clear_server_history(server.addr()).await;
            let ring = client.history().await.map(|h| h.len()).unwrap_or(0);
            let sample = (
                done,
                rss_kib().unwrap_or(0),
                open_fds().unwrap_or(0),
                ring,
                client.stats().reconnects,
                started.elapsed().as_secs_f64(),
            );
            println!(
                "| {} | {:.1} | {} | {} | {} | {:.1} |",
                sample.0,
                sample.1 as f64 / 1024.0,
                sample.2,
                sample.3,
                sample.4,
                sample.5
            );
            samples.push(sample);
        }
    }
    println!(
        "succeeded {succeeded}, lost {lost}, other {other}, errors (deadline/submit) {errors}"
    );
    client.close().await;
    server.shutdown().await;
    // Flat: compare the last sample with the one at 2,000 prompts (the
    // ring has been full since 100).
    if let (Some(early), Some(last)) = (samples.get(1), samples.last()) {
        let rss_growth = last.1 as f64 / early.1.max(1) as f64;
        let fd_growth = last.2 as i64 - early.2 as i64;
        println!(
            "RSS {:.2}x from {} to {} prompts, fds {:+}",
            rss_growth, early.0, last.0, fd_growth
        );
        if rss_growth > 1.5 || fd_growth > 8 || errors > 0 {
            eprintln!("soak: not flat or errors");
            std::process::exit(1);
        }
    }
}
