//! Firehose and soak benchmarks against the mock (a bench binary that
//! prints medians; run with `cargo bench -p comfywire-client --bench
//! firehose`).
//!
//! Firehose: the mock's synthetic stream ([`Mix`]): every prompt framed
//! once as WebSocket frames and written to the TCP stream with
//! `write_all`, so the server costs next to nothing per frame and the
//! readers, not the server, set the rate. The mock runs on a runtime and
//! thread of its own. Measured in the same run, loops interleaved, for
//! each mix:
//! * raw: a tokio-tungstenite read loop that parses nothing, on the
//!   `Client`'s transport (2 MiB reads, `READ_BUFFER_BYTES`);
//! * naive: tokio-tungstenite (its defaults) + serde_json into a typed
//!   enum, no tracking;
//! * naive_buffered: the same on the `Client`'s transport, so the parse is
//!   compared alone;
//! * session: the raw loop feeding a bare `Session` (no driver, no channels);
//! * client: a `Client` with full tracking and throttling and one
//!   subscriber draining every event.
//!
//! Every loop announces the `Client`'s feature flags, so all get the same
//! frames (type-4 previews with their metadata header). In the default
//! mix the prompts are the reader's own: the `Client` submits them to the
//! stalled mock first (the `Session` tracks them as submitted); in the
//! `foreign` mix none is. Prints frames/s medians, ratios of the medians,
//! peak RSS, and then the latency from a frame's arrival (the driver's
//! clock reading for its batch, seen through the frame tap) to a
//! subscriber receiving the `NodeStarted` it makes, under the firehose.
//!
//! Environment: `COMFYWIRE_FRAMES` (default 1,000,000), `COMFYWIRE_RUNS`
//! (3), `COMFYWIRE_MIXES` (`default,foreign`; also `per_step`, snapshots
//! on every step as ComfyUI 0.3.64 sends them), `COMFYWIRE_LOOPS` (any of
//! `raw,naive,naive_buffered,session,client,latency`), `COMFYWIRE_COUNT_ALLOCS=1` to
//! count allocations per frame, `COMFYWIRE_BREAKDOWN=1` for the bare
//! session's allocations and time by message type (it reads the clock per
//! frame, so that loop's rate is not comparable then).
//!
//! Soak (`COMFYWIRE_SOAK=N`, default 10000 when `soak` is passed as an
//! argument): N prompts through one client, RSS and open fds sampled every
//! 1,000; they must stay flat once the history ring is full.
#![allow(missing_docs, clippy::unwrap_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use comfywire_client::{Client, ClientConfig, Event, TapEventKind};
use comfywire_mock::{Fault, Mix, MockConfig, MockServer, Snapshots, TraceSource};
use futures_util::StreamExt;
use serde::Deserialize;

/// Counts allocations while `COUNTING` is on (one relaxed load otherwise).
struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

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

type RawWs = tokio_tungstenite::WebSocketStream<tokio::io::BufReader<tokio::net::TcpStream>>;

/// The mock, on a runtime and thread of its own so it does not share the
/// readers' scheduler.
struct Server {
    mock: MockServer,
    rt: tokio::runtime::Runtime,
}

impl Server {
    fn start() -> Server {
        let config = MockConfig {
            speed: 0.0,
            traces: TraceSource::Embedded,
            ..MockConfig::default()
        };
        let (rt, mock) = MockServer::start_on_own_runtime(config, 1).unwrap();
        Server { mock, rt }
    }

    fn pour(&self, client_id: &str, frames: u64, mix: Mix) -> tokio::task::JoinHandle<u64> {
        let _in = self.rt.enter();
        self.mock.firehose_mix(client_id, frames, mix)
    }
}

/// A named stream shape, and whether its prompts are the reader's own.
#[derive(Clone)]
struct Shape {
    name: &'static str,
    mix: Mix,
    own: bool,
}

fn shapes() -> Vec<Shape> {
    let wanted = std::env::var("COMFYWIRE_MIXES").unwrap_or_else(|_| "default,foreign".into());
    let mut out = Vec::new();
    for name in wanted.split(',').map(str::trim) {
        let shape = match name {
            "default" => Shape {
                name: "default",
                mix: Mix::default(),
                own: true,
            },
            "foreign" => Shape {
                name: "foreign",
                mix: Mix {
                    own: 0,
                    foreign: 1,
                    ..Mix::default()
                },
                own: false,
            },
            "per_step" => Shape {
                name: "per_step",
                mix: Mix {
                    snapshots: Snapshots::PerStep,
                    ..Mix::default()
                },
                own: true,
            },
            _ => continue,
        };
        out.push(shape);
    }
    out
}

/// Prompts it takes to make `frames` frames of `mix` (rounded up, plus one).
fn prompts_for(mix: &Mix, frames: u64) -> u64 {
    let per_step = if mix.snapshots == Snapshots::PerStep {
        2
    } else {
        1
    };
    let per_prompt = 5 + u64::from(mix.nodes) * (3 + u64::from(mix.steps) * per_step);
    frames / per_prompt + 2
}

/// Sends the feature flags the `Client` sends (preview metadata) and waits
/// for the server's answer, so every loop receives the same frames.
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

/// How a loop reads the socket.
#[derive(Clone, Copy, PartialEq)]
enum Transport {
    /// tokio-tungstenite's defaults (`connect_async`), as a client written
    /// in an afternoon has them.
    Default,
    /// A buffer of `READ_BUFFER_BYTES` under tokio-tungstenite: the reads
    /// the `Client` makes, through tokio-tungstenite's frame reader (the
    /// `Client` decodes frames in place with comfywire-proto's decoder).
    Buffered,
}

async fn open(server: &Server, client_id: &str, transport: Transport) -> RawWs {
    use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
    let url = format!(
        "{}/ws?clientId={client_id}",
        server.mock.url().replace("http://", "ws://")
    );
    let socket = tokio::net::TcpStream::connect(server.mock.url().trim_start_matches("http://"))
        .await
        .unwrap();
    socket.set_nodelay(true).unwrap();
    let (capacity, config) = match transport {
        Transport::Default => (1, WebSocketConfig::default()),
        Transport::Buffered => (
            comfywire_client::READ_BUFFER_BYTES,
            WebSocketConfig::default().read_buffer_size(32 << 10),
        ),
    };
    // A one-byte buffer passes every read straight to the socket.
    let socket = tokio::io::BufReader::with_capacity(capacity, socket);
    let (mut ws, _) = tokio_tungstenite::client_async_with_config(url, socket, Some(config))
        .await
        .unwrap();
    // The connect-time status frame.
    ws.next().await.unwrap().unwrap();
    negotiate(&mut ws).await;
    ws
}

/// What one loop measured.
#[derive(Default, Clone, Copy)]
struct Measured {
    rate: f64,
    peak_rss: u64,
    allocs_per_frame: f64,
}

fn counting() -> bool {
    std::env::var_os("COMFYWIRE_COUNT_ALLOCS").is_some()
}

fn start_counting() -> u64 {
    if counting() {
        COUNTING.store(true, Ordering::Relaxed);
    }
    ALLOCS.load(Ordering::Relaxed)
}

fn stop_counting(base: u64, frames: u64) -> f64 {
    COUNTING.store(false, Ordering::Relaxed);
    (ALLOCS.load(Ordering::Relaxed) - base) as f64 / frames as f64
}

/// The `type` of a text frame in the server's form, for the allocation
/// breakdown (the allocation counts include the events the frame made).
fn frame_kind(text: &str) -> &'static str {
    const KINDS: [&str; 9] = [
        "progress_state",
        "progress",
        "executing",
        "executed",
        "execution_start",
        "execution_cached",
        "execution_success",
        "status",
        "feature_flags",
    ];
    let kind = text
        .strip_prefix("{\"type\": \"")
        .and_then(|rest| rest.split('"').next())
        .unwrap_or("");
    KINDS.into_iter().find(|k| *k == kind).unwrap_or("other")
}

/// (a) Reads every frame and parses nothing.
async fn raw_loop(server: &Server, shape: &Shape, frames: u64) -> Measured {
    let mut ws = open(server, "raw-bench", Transport::Buffered).await;
    let mut mix = shape.mix.clone();
    mix.own_ids.clear();
    let base = start_counting();
    let started = Instant::now();
    let sender = server.pour("raw-bench", frames, mix);
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
    let allocs = stop_counting(base, frames);
    sender.await.unwrap();
    Measured {
        rate: frames as f64 / secs,
        peak_rss: peak,
        allocs_per_frame: allocs,
    }
}

/// What a client written in an afternoon parses: the text into a typed
/// enum, previews' headers by hand. No tracking.
#[derive(Deserialize)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
#[allow(dead_code)]
enum Naive {
    Status {
        status: serde_json::Value,
    },
    ExecutionStart {
        prompt_id: String,
        timestamp: u64,
    },
    ExecutionCached {
        nodes: Vec<String>,
        prompt_id: String,
    },
    Executing {
        node: Option<String>,
        display_node: Option<String>,
        prompt_id: String,
    },
    Progress {
        value: f64,
        max: f64,
        prompt_id: String,
        node: String,
    },
    ProgressState {
        prompt_id: String,
        nodes: HashMap<String, NaiveNode>,
    },
    Executed {
        node: String,
        display_node: Option<String>,
        output: serde_json::Value,
        prompt_id: String,
    },
    ExecutionSuccess {
        prompt_id: String,
    },
    FeatureFlags(serde_json::Value),
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct NaiveNode {
    value: f64,
    max: f64,
    state: String,
    node_id: String,
    display_node_id: Option<String>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct NaivePreviewMeta {
    node_id: String,
    prompt_id: String,
    image_type: String,
}

/// (n) tokio-tungstenite + serde_json typed enum, on tokio-tungstenite's
/// defaults or on the `Client`'s transport (the parse compared alone).
async fn naive_loop(server: &Server, shape: &Shape, frames: u64, transport: Transport) -> Measured {
    use tokio_tungstenite::tungstenite::Message;
    let mut ws = open(server, "naive-bench", transport).await;
    let mut mix = shape.mix.clone();
    mix.own_ids.clear();
    let base = start_counting();
    let started = Instant::now();
    let sender = server.pour("naive-bench", frames, mix);
    let mut got = 0u64;
    let (mut parsed, mut image_bytes) = (0u64, 0usize);
    while got < frames {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => {
                got += 1;
                if let Ok(m) = serde_json::from_str::<Naive>(&t) {
                    std::hint::black_box(&m);
                    parsed += 1;
                }
            }
            Some(Ok(Message::Binary(b))) => {
                got += 1;
                let word = |at: usize| {
                    b.get(at..at + 4)
                        .map(|w| u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
                };
                match word(0) {
                    Some(1) => image_bytes += b.len() - 8,
                    Some(4) => {
                        let len = word(4).unwrap_or(0) as usize;
                        if let Some(header) = b.get(8..8 + len) {
                            if let Ok(m) = serde_json::from_slice::<NaivePreviewMeta>(header) {
                                std::hint::black_box(&m);
                                image_bytes += b.len() - 8 - len;
                            }
                        }
                    }
                    _ => {}
                }
            }
            Some(Ok(_)) => {}
            other => panic!("naive loop ended early: {other:?}"),
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let allocs = stop_counting(base, frames);
    std::hint::black_box((parsed, image_bytes));
    sender.await.unwrap();
    Measured {
        rate: frames as f64 / secs,
        peak_rss: 0,
        allocs_per_frame: allocs,
    }
}

/// (s) The raw loop feeding a bare `Session` on the same task: what the
/// core costs without the driver, subscribers or channels, on the raw
/// loop's tokio-tungstenite transport (not the `Client`'s in-place reader).
async fn session_loop(server: &Server, shape: &Shape, frames: u64) -> Measured {
    use comfywire_client::proto::{Frame, HttpReply, Session, SessionConfig};
    let mut ws = open(server, "session-bench", Transport::Buffered).await;
    let mut session = Session::new(SessionConfig {
        client_id: Some("session-bench".into()),
        ..SessionConfig::default()
    });
    let now = Instant::now();
    session.connect(now);
    session.handle_connected(now);
    let mut mix = shape.mix.clone();
    mix.own_ids.clear();
    if shape.own {
        for _ in 0..prompts_for(&mix, frames) {
            let id = uuid::Uuid::new_v4().hyphenated().to_string();
            session.track_prompt(&id, Some(mix.nodes as usize), now);
            session.handle_http(
                HttpReply::PromptAccepted {
                    prompt_id: id.clone(),
                    number: None,
                    node_errors: serde_json::Value::Null,
                },
                now,
            );
            mix.own_ids.push(id);
        }
        while session.poll_event().is_some() {}
        while session.poll_command().is_some() {}
    }
    let mut by_kind: HashMap<&'static str, (u64, u64, u64)> = HashMap::new();
    let breakdown = std::env::var_os("COMFYWIRE_BREAKDOWN").is_some();
    let base = start_counting();
    let started = Instant::now();
    let sender = server.pour("session-bench", frames, mix);
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
        let message = match ws.next().await {
            Some(Ok(m)) if m.is_text() || m.is_binary() => m,
            Some(Ok(_)) => continue,
            other => panic!("session loop ended early: {other:?}"),
        };
        // The breakdown reads the clock and the counter around the
        // session's own work only (not the socket read).
        let (before, t0) = if breakdown {
            (ALLOCS.load(Ordering::Relaxed), Some(Instant::now()))
        } else {
            (0, None)
        };
        let kind = match message {
            tokio_tungstenite::tungstenite::Message::Text(t) => {
                let kind = if breakdown {
                    frame_kind(t.as_str())
                } else {
                    ""
                };
                session.handle_text(t, now);
                kind
            }
            tokio_tungstenite::tungstenite::Message::Binary(b) => {
                session.handle_frame(Frame::Binary(b), now);
                "preview"
            }
            _ => continue,
        };
        got += 1;
        while let Some(e) = session.poll_event() {
            std::hint::black_box(&e);
        }
        while session.poll_command().is_some() {}
        if let Some(t0) = t0 {
            let ns = t0.elapsed().as_nanos() as u64;
            let entry = by_kind.entry(kind).or_insert((0u64, 0u64, 0u64));
            entry.0 += 1;
            entry.1 += ALLOCS.load(Ordering::Relaxed) - before;
            entry.2 += ns;
        }
    }
    if breakdown {
        let mut kinds: Vec<_> = by_kind.into_iter().collect();
        kinds.sort_by_key(|(_, (n, _, ns))| std::cmp::Reverse(*ns / n.max(&1) * n));
        let total: u64 = kinds.iter().map(|(_, (_, _, ns))| ns).sum();
        println!(
            "  [{}] bare Session by message type (frames, allocations/frame, ns/frame, share of the session's time):",
            shape.name
        );
        for (k, (n, a, ns)) in kinds {
            println!(
                "      {k:<18} {n:>8} {:>8.2} {:>8.0} {:>6.1}%",
                a as f64 / n as f64,
                ns as f64 / n as f64,
                100.0 * ns as f64 / total as f64
            );
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let allocs = stop_counting(base, frames);
    sender.await.unwrap();
    Measured {
        rate: frames as f64 / secs,
        peak_rss: 0,
        allocs_per_frame: allocs,
    }
}

/// A connected client whose own prompts, when the shape wants them, are
/// submitted to the stalled mock: queued there, never played, so their
/// frames come only from the firehose.
async fn client_for(server: &Server, shape: &Shape, frames: u64, tap: usize) -> (Client, Mix) {
    let mut config = ClientConfig::new(server.mock.url());
    config.frame_tap_capacity = tap;
    let client = Client::connect(config).await.unwrap();
    client.wait_connected(Duration::from_secs(5)).await.unwrap();
    let mut mix = shape.mix.clone();
    mix.own_ids.clear();
    if shape.own {
        server.mock.inject(Fault::Stall { millis: 3_600_000 });
        let workflow = server.mock.sample_workflow();
        let n = prompts_for(&mix, frames);
        let mut left = n;
        while left > 0 {
            let chunk = left.min(64);
            left -= chunk;
            let submitted =
                futures_util::future::join_all((0..chunk).map(|_| client.submit(&workflow))).await;
            mix.own_ids
                .extend(submitted.into_iter().map(|s| s.unwrap().prompt_id));
        }
    }
    (client, mix)
}

async fn end_client(server: &Server, client: Client) {
    client.close().await;
    // Forgets the queued prompts and lifts the stall.
    server.mock.inject(Fault::Restart);
}

/// (c) A `Client`, one subscriber draining every event.
async fn client_loop(server: &Server, shape: &Shape, frames: u64) -> (Measured, u64) {
    let (client, mix) = client_for(server, shape, frames, 0).await;
    let mut events = client.events();
    let consumer = tokio::spawn(async move {
        let mut n = 0u64;
        while let Some(e) = events.recv().await {
            n += 1;
            std::hint::black_box(&e);
        }
        n
    });
    // Let the submissions' own events pass first.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let base_frames = client.stats().frames;
    let base = start_counting();
    let started = Instant::now();
    let sender = server.pour(&client.client_id(), frames, mix);
    let mut peak = rss_kib();
    for tick in 0u64.. {
        let s = client.stats();
        if s.frames - base_frames >= frames {
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
    let allocs = stop_counting(base, frames);
    sender.await.unwrap();
    end_client(server, client).await;
    let events = consumer.await.unwrap();
    (
        Measured {
            rate: frames as f64 / secs,
            peak_rss: peak,
            allocs_per_frame: allocs,
        },
        events,
    )
}

/// Latency from a frame's arrival (the driver's clock reading for its
/// batch, through the frame tap) to one subscriber receiving the
/// `NodeStarted` that frame makes, for every `executing` frame of the
/// stream. Returns (p50, p99, max) in microseconds.
async fn latency_loop(server: &Server, shape: &Shape, frames: u64) -> (f64, f64, f64, usize) {
    let (client, mix) = client_for(server, shape, frames, 1 << 20).await;
    let mut tap = client.frame_tap().unwrap();
    let arrivals = tokio::spawn(async move {
        let mut at: HashMap<(std::sync::Arc<str>, std::sync::Arc<str>), _> = HashMap::new();
        let head = b"{\"type\": \"executing\", \"data\": {\"node\": \"";
        while let Some(e) = tap.recv().await {
            if let TapEventKind::Received(comfywire_client::proto::Frame::Text(t)) = &e.kind {
                if t.starts_with(head) {
                    let rest = &t[head.len()..];
                    let node_end = rest.iter().position(|b| *b == b'"').unwrap_or(0);
                    let node = String::from_utf8_lossy(&rest[..node_end]).into_owned();
                    let pid = t.len() - 39;
                    let prompt = String::from_utf8_lossy(&t[pid..pid + 36]).into_owned();
                    at.insert((prompt.into(), node.into()), e.at);
                }
            }
        }
        at
    });
    let mut events = client.on(&[comfywire_client::EventKind::NodeStarted]);
    let consumer = tokio::spawn(async move {
        let mut got = Vec::new();
        while let Some(e) = events.recv().await {
            if let Event::NodeStarted {
                prompt_id, node, ..
            } = e
            {
                got.push(((prompt_id, node), Instant::now()));
            }
        }
        got
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let base_frames = client.stats().frames;
    let sender = server.pour(&client.client_id(), frames, mix);
    while client.stats().frames - base_frames < frames {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    sender.await.unwrap();
    end_client(server, client).await;
    let got = consumer.await.unwrap();
    let at = arrivals.await.unwrap();
    let mut lat: Vec<f64> = got
        .iter()
        .filter_map(|(key, seen)| {
            at.get(key)
                .map(|a| seen.saturating_duration_since(*a).as_secs_f64() * 1e6)
        })
        .collect();
    lat.sort_by(f64::total_cmp);
    if lat.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN, 0);
    }
    let pick = |q: f64| lat[((lat.len() - 1) as f64 * q) as usize];
    (pick(0.5), pick(0.99), lat[lat.len() - 1], lat.len())
}

async fn firehose(server: &Server, frames: u64, runs: usize) {
    let loops = std::env::var("COMFYWIRE_LOOPS")
        .unwrap_or_else(|_| "raw,naive,naive_buffered,session,client,latency".into());
    let wants = |name: &str| loops.split(',').any(|l| l.trim() == name);
    let names = ["raw", "naive", "naive_buffered", "session", "client"];
    println!(
        "firehose: {frames} frames x {runs} interleaved runs per mix; the mock writes pre-encoded frames with write_all on a thread of its own"
    );
    for shape in shapes() {
        let mut results: HashMap<&str, Vec<Measured>> = HashMap::new();
        let mut events = 0;
        for run in 0..runs {
            let mut line = format!("[{}] run {}:", shape.name, run + 1);
            for name in names {
                if !wants(name) {
                    continue;
                }
                let m = match name {
                    "raw" => raw_loop(server, &shape, frames).await,
                    "naive" => naive_loop(server, &shape, frames, Transport::Default).await,
                    "naive_buffered" => {
                        naive_loop(server, &shape, frames, Transport::Buffered).await
                    }
                    "session" => session_loop(server, &shape, frames).await,
                    _ => {
                        let (m, e) = client_loop(server, &shape, frames).await;
                        events = e;
                        m
                    }
                };
                line.push_str(&format!(" {name} {:.0}", m.rate));
                results.entry(name).or_default().push(m);
            }
            println!("{line}");
        }
        let med = |name: &str| {
            results
                .get(name)
                .map(|v| median(v.iter().map(|m| m.rate).collect()))
                .unwrap_or(f64::NAN)
        };
        let raw = med("raw");
        println!(
            "mix {}: {:?} (median of {runs}; the client's last run delivered {events} events)",
            shape.name,
            Mix {
                own_ids: Vec::new(),
                ..shape.mix.clone()
            }
        );
        println!(
            "  {:<44} {:>12} {:>8} {:>10} {:>12}",
            "loop", "frames/s", "x raw", "x naive", "allocs/frame"
        );
        let label = |name: &str| match name {
            "raw" => "raw tokio-tungstenite read loop, no parsing",
            "naive" => "naive tokio-tungstenite + serde typed enum",
            "naive_buffered" => "the same with 2 MiB reads",
            "session" => "raw loop + bare Session (tokio-tungstenite)",
            _ => "Client, one subscriber draining every event",
        };
        for name in names {
            let Some(v) = results.get(name) else {
                continue;
            };
            let rate = med(name);
            let allocs = if counting() {
                format!(
                    "{:.3}",
                    median(v.iter().map(|m| m.allocs_per_frame).collect())
                )
            } else {
                "-".into()
            };
            println!(
                "  {:<44} {:>12.0} {:>8.3} {:>10.2} {:>12}",
                label(name),
                rate,
                rate / raw,
                rate / med("naive"),
                allocs
            );
        }
        let rss = |name: &str| {
            results
                .get(name)
                .map(|v| v.iter().map(|m| m.peak_rss).max().unwrap_or(0))
                .unwrap_or(0)
        };
        println!(
            "  peak RSS: raw {} KiB, client {} KiB",
            rss("raw"),
            rss("client")
        );
        if wants("latency") {
            let (p50, p99, max, n) = latency_loop(server, &shape, frames).await;
            println!(
                "  latency frame arrival -> subscriber (NodeStarted, {n} samples): p50 {p50:.0} us, p99 {p99:.0} us, max {max:.0} us"
            );
        }
    }
}

async fn soak(server: &Server, prompts: usize) {
    let client = Client::connect(ClientConfig::new(server.mock.url()))
        .await
        .unwrap();
    client.wait_connected(Duration::from_secs(5)).await.unwrap();
    let mut events = client.on(&[comfywire_client::EventKind::Finished]);
    let workflow = server.mock.sample_workflow();
    // The mock shares the process: it keeps every prompt's history entry
    // (as ComfyUI does) and a ledger of 10,000. Both are kept small, and
    // its history cleared every 1,000, so the RSS is the client's.
    server.mock.set_ledger_capacity(100);
    let http = reqwest::Client::new();
    let clear = format!("{}/history", server.mock.url());
    let started = Instant::now();
    println!(
        "soak: {prompts} prompts, one client, RSS / fds every 1,000 (the mock's history cleared as often)"
    );
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
            http.post(&clear)
                .header("content-type", "application/json")
                .body(r#"{"clear": true}"#)
                .send()
                .await
                .unwrap()
                .error_for_status()
                .unwrap();
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
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // `cargo test --all-targets` runs bench binaries without `--bench`:
    // then a small smoke run checks that every loop still works.
    let smoke = !args.iter().any(|a| a == "--bench");
    let server = Server::start();
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
        rt.block_on(soak(&server, n));
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
    rt.block_on(firehose(&server, frames, runs));
}
