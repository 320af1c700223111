//! Firehose and soak benchmarks against the mock (a bench binary that
//! prints medians; run with `cargo bench -p comfywire-client --bench
//! firehose`).
//!
//! Firehose: the mock at speed 0 sends the real trace mix (`long_run`'s
//! progress_state / progress / preview frames, a fresh prompt id per cycle)
//! as fast as the socket takes it. Measured in the same run, alternating:
//! (a) a raw tokio-tungstenite read loop that parses nothing, and (b) a
//! `Client` with full parsing, tracking, throttling and one subscriber
//! draining every event. Prints frames/s medians, b/a, and peak RSS.
//! Every loop announces the same feature flags as the `Client`, so all of
//! them get the same frames (previews with their metadata header).
//!
//! Soak (`COMFYWIRE_SOAK=N`, default 10000 when `soak` is passed as an
//! argument): N prompts through one client, RSS and open fds sampled every
//! 1,000; they must stay flat once the history ring is full.
#![allow(missing_docs, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use comfywire_client::{Client, ClientConfig, Event};
use comfywire_mock::{MockConfig, MockServer, TraceSource};
use futures_util::StreamExt;

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

type RawWs =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Sends the feature flags the `Client` sends (preview metadata) and waits
/// for the server's answer, so every loop receives the same frames: type-4
/// previews carry a metadata header that type-1 ones do not.
async fn negotiate(ws: &mut RawWs) {
    use comfywire_client::proto::SessionConfig;
    use comfywire_client::proto::feature_flags_message;
    use futures_util::SinkExt;
    let flags = feature_flags_message(&SessionConfig::default().feature_flags);
    ws.send(tokio_tungstenite::tungstenite::Message::text(flags))
        .await
        .unwrap();
    loop {
        match ws.next().await {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t)))
                if t.contains("\"feature_flags\"") =>
            {
                return;
            }
            Some(Ok(_)) => {}
            other => panic!("no feature_flags answer: {other:?}"),
        }
    }
}

async fn raw_loop(server: &MockServer, frames: u64) -> (f64, u64) {
    let url = format!(
        "{}/ws?clientId=raw-bench",
        server.url().replace("http://", "ws://")
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    // The connect-time status frame.
    ws.next().await.unwrap().unwrap();
    negotiate(&mut ws).await;
    let started = Instant::now();
    let sender = server.firehose("raw-bench", frames, "long_run");
    let mut got = 0u64;
    let mut peak = rss_kib();
    while got < frames {
        match ws.next().await {
            Some(Ok(m)) if m.is_text() || m.is_binary() => {
                got += 1;
                if got % 65536 == 0 {
                    peak = peak.max(rss_kib());
                }
            }
            Some(Ok(_)) => {}
            other => panic!("raw loop ended early: {other:?}"),
        }
    }
    let secs = started.elapsed().as_secs_f64();
    sender.await.unwrap();
    (frames as f64 / secs, peak)
}

/// (c) the raw loop feeding a bare `Session` on the same task: what the
/// core costs without the driver, subscribers or channels.
async fn session_loop(server: &MockServer, frames: u64) -> f64 {
    use comfywire_client::proto::{Frame, Session, SessionConfig};
    let url = format!(
        "{}/ws?clientId=session-bench",
        server.url().replace("http://", "ws://")
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    ws.next().await.unwrap().unwrap();
    negotiate(&mut ws).await;
    let mut session = Session::new(SessionConfig {
        client_id: Some("session-bench".into()),
        ..SessionConfig::default()
    });
    session.connect(Instant::now());
    session.handle_connected(Instant::now());
    let started = Instant::now();
    let sender = server.firehose("session-bench", frames, "long_run");
    let mut got = 0u64;
    let mut now = Instant::now();
    while got < frames {
        // Like the driver: one clock read and one timer check per batch.
        if got % 64 == 0 {
            now = Instant::now();
            if session.poll_timeout().is_some_and(|t| t.at <= now) {
                session.handle_timeout(now);
            }
        }
        match ws.next().await {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t))) => {
                session.handle_text(t, now)
            }
            Some(Ok(tokio_tungstenite::tungstenite::Message::Binary(b))) => {
                session.handle_frame(Frame::Binary(b), now)
            }
            Some(Ok(_)) => continue,
            other => panic!("session loop ended early: {other:?}"),
        };
        got += 1;
        while session.poll_event().is_some() {}
        while session.poll_command().is_some() {}
    }
    let secs = started.elapsed().as_secs_f64();
    sender.await.unwrap();
    frames as f64 / secs
}

async fn client_loop(server: &MockServer, frames: u64) -> (f64, u64, u64) {
    let client = Client::connect(ClientConfig::new(server.url()))
        .await
        .unwrap();
    client.wait_connected(Duration::from_secs(5)).await.unwrap();
    let mut events = client.events();
    let consumer = tokio::spawn(async move {
        let mut n = 0u64;
        while let Some(e) = events.recv().await {
            n += 1;
            std::hint::black_box(&e);
        }
        n
    });
    let base = client.stats().frames;
    let started = Instant::now();
    let sender = server.firehose(&client.client_id(), frames, "long_run");
    let mut peak = rss_kib();
    for tick in 0u64.. {
        let s = client.stats();
        if s.frames - base >= frames {
            break;
        }
        // Reading /proc costs far more than the counters: every 50 ms,
        // about as often as the raw loop samples it.
        if tick % 25 == 0 {
            peak = peak.max(rss_kib());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    sender.await.unwrap();
    client.close().await;
    let events = consumer.await.unwrap();
    (frames as f64 / secs, peak, events)
}

async fn firehose(frames: u64, runs: usize) {
    let server = MockServer::start_with(MockConfig {
        speed: 0.0,
        traces: TraceSource::Embedded,
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let (mut raw, mut ours, mut raw_rss, mut our_rss) = (Vec::new(), Vec::new(), 0, 0);
    let mut bare = Vec::new();
    let mut events = 0;
    // `COMFYWIRE_LOOPS=client` (or any comma list of raw, session,
    // client) runs only those loops, for profiling one of them.
    let loops = std::env::var("COMFYWIRE_LOOPS").unwrap_or_else(|_| "raw,session,client".into());
    let wants = |name: &str| loops.split(',').any(|l| l.trim() == name);
    for run in 0..runs {
        let (r, rss) = if wants("raw") {
            raw_loop(&server, frames).await
        } else {
            (f64::NAN, 0)
        };
        raw.push(r);
        raw_rss = raw_rss.max(rss);
        bare.push(if wants("session") {
            session_loop(&server, frames).await
        } else {
            f64::NAN
        });
        let (c, rss, e) = if wants("client") {
            client_loop(&server, frames).await
        } else {
            (f64::NAN, 0, 0)
        };
        ours.push(c);
        our_rss = our_rss.max(rss);
        events = e;
        println!(
            "run {}: raw {:>10.0} frames/s   client {:>10.0} frames/s   ({e} events delivered)",
            run + 1,
            r,
            c
        );
    }
    let (a, b) = (median(raw), median(ours));
    println!("firehose, {frames} frames x {runs} runs (median):");
    println!("  (a) raw tokio-tungstenite read loop : {a:>10.0} frames/s   peak RSS {raw_rss} KiB");
    println!(
        "  (b) comfywire Client, full tracking : {b:>10.0} frames/s   peak RSS {our_rss} KiB   ({events} events in the last run)"
    );
    let c = median(bare);
    println!(
        "  (c) raw loop + bare Session (no driver): {c:>10.0} frames/s   c/a = {:.2}",
        c / a
    );
    println!("  b/a = {:.2}", b / a);
    server.shutdown().await;
}

async fn soak(prompts: usize) {
    let server = MockServer::start_with(MockConfig {
        speed: 0.0,
        traces: TraceSource::Embedded,
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let client = Client::connect(ClientConfig::new(server.url()))
        .await
        .unwrap();
    client.wait_connected(Duration::from_secs(5)).await.unwrap();
    let mut events = client.on(&[comfywire_client::EventKind::Finished]);
    let workflow = server.sample_workflow();
    let started = Instant::now();
    println!("soak: {prompts} prompts, one client, RSS / fds every 1,000");
    println!(
        "{:>8} {:>10} {:>6} {:>8} {:>10}",
        "prompts", "RSS KiB", "fds", "ring", "secs"
    );
    for i in 1..=prompts {
        let result = client.run(&workflow).await.unwrap();
        assert_eq!(result.record.phase.name(), "succeeded");
        while let Some(e) = events.try_recv() {
            assert!(matches!(e, Event::Finished(_)));
        }
        if i % 1000 == 0 {
            let ring = client.history().await.unwrap().len();
            println!(
                "{i:>8} {:>10} {:>6} {ring:>8} {:>10.1}",
                rss_kib(),
                open_fds(),
                started.elapsed().as_secs_f64()
            );
        }
    }
    client.close().await;
    server.shutdown().await;
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // `cargo test --all-targets` runs bench binaries without `--bench`:
    // then a small smoke run checks that both loops still work.
    let smoke = !args.iter().any(|a| a == "--bench");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    if args.iter().any(|a| a == "soak") || std::env::var_os("COMFYWIRE_SOAK").is_some() {
        let n = std::env::var("COMFYWIRE_SOAK")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(10_000);
        rt.block_on(soak(n));
        return;
    }
    let frames = std::env::var("COMFYWIRE_FRAMES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if smoke { 20_000 } else { 1_000_000 });
    let runs = std::env::var("COMFYWIRE_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if smoke { 1 } else { 3 });
    rt.block_on(firehose(frames, runs));
}
