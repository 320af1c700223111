//! The client against the mock's hostile mode, each scenario in a fresh
//! client process so that its peak RSS (`VmHWM`) is the client's alone:
//! the mock runs in a process of its own. Run with `cargo bench -p
//! comfywire-client --bench hostile` (prints medians over
//! `COMFYWIRE_RUNS`, default 3; `COMFYWIRE_SCENARIOS=a,b` picks some);
//! without `--bench` (as `cargo test --all-targets` runs it) a small smoke
//! run checks that every scenario still works.
//!
//! Per scenario: peak RSS of the client process, the time to process the
//! flood or to the first typed error, and what unread subscriptions
//! dropped, by kind. Figures go to `docs/bad-input.md`.
#![allow(missing_docs, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use comfywire_client::{Client, ClientConfig, Error, EventKind, FileRef};
use comfywire_mock::{Flood, HostileBody, HostileHttp, MockConfig, MockServer, TraceSource};
use serde_json::{Value, json};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

fn status_kib(key: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// One scenario: what the server is told, and the sizes of a bench and of
/// a smoke run.
#[derive(Clone, Copy)]
struct Scenario {
    name: &'static str,
    what: &'static str,
    bench: u64,
    smoke: u64,
}

const SCENARIOS: [Scenario; 10] = [
    Scenario {
        name: "idle",
        what: "connected, nothing sent (the baseline)",
        bench: 0,
        smoke: 0,
    },
    Scenario {
        name: "distinct-prompts",
        what: "N distinct prompt ids (execution_start, progress, preview each)",
        bench: 1_000_000,
        smoke: 2_000,
    },
    Scenario {
        name: "unknown-types",
        what: "N crystools.monitor messages",
        bench: 1_000_000,
        smoke: 2_000,
    },
    Scenario {
        name: "bad-frames",
        what: "N frames that do not parse",
        bench: 1_000_000,
        smoke: 2_000,
    },
    Scenario {
        name: "previews-at-limit",
        what: "N previews of exactly 16 MiB, then one of 16 MiB + 1",
        bench: 100,
        smoke: 2,
    },
    Scenario {
        name: "history-fast",
        what: "GET /history/{id}: N bytes chunked, as fast as read",
        bench: 4 * GIB,
        smoke: 128 * MIB,
    },
    Scenario {
        name: "history-declared",
        what: "GET /history/{id}: N bytes with Content-Length",
        bench: 4 * GIB,
        smoke: 128 * MIB,
    },
    Scenario {
        name: "history-slow",
        what: "GET /history/{id}: N bytes at 16 MiB/s",
        bench: 4 * GIB,
        smoke: 128 * MIB,
    },
    Scenario {
        name: "queue-endless",
        what: "GET /queue that never ends",
        bench: u64::MAX,
        smoke: u64::MAX,
    },
    Scenario {
        name: "view-endless",
        what: "GET /view that never ends: into memory, then to a file (limit 1 GiB)",
        bench: u64::MAX,
        smoke: u64::MAX,
    },
];

// ---- the mock's process ----

fn serve() {
    let config = MockConfig {
        speed: 0.0,
        traces: TraceSource::Embedded,
        ..MockConfig::default()
    };
    let (rt, server) = MockServer::start_on_own_runtime(config, 1).unwrap();
    println!("url {}", server.url());
    let mut out = std::io::stdout();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let words: Vec<&str> = line.split_whitespace().collect();
        let n = |i: usize| {
            words
                .get(i)
                .and_then(|w| w.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let reply = match words.first().copied() {
            Some("flood") => {
                let count = n(3);
                let flood = match words[2] {
                    "distinct" => Flood::DistinctPrompts { count },
                    "unknown" => Flood::UnknownTypes { count },
                    "bad" => Flood::BadFrames { count },
                    _ => Flood::Previews {
                        count,
                        frame_bytes: n(4) as usize,
                    },
                };
                // The client may see its socket open a moment before the
                // mock has registered it: retry an unknown client a while.
                let mut sent = 0;
                for _ in 0..250 {
                    sent = rt
                        .block_on(async { server.flood(words[1], flood.clone()).await })
                        .unwrap();
                    if sent > 0 {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                format!("sent {sent}")
            }
            Some("http") => {
                let body = match words[2] {
                    "fast" => HostileBody::fast(n(3)),
                    "declared" => HostileBody::fast(n(3)).declared(),
                    _ => HostileBody::slow(n(3), n(4)),
                };
                let mut hostile = HostileHttp::default();
                match words[1] {
                    "history" => hostile.history = Some(body),
                    "queue" => hostile.queue = Some(body),
                    _ => hostile.view = Some(body),
                }
                server.set_hostile_http(hostile);
                "ok".to_owned()
            }
            Some("reset") => {
                server.set_hostile_http(HostileHttp::default());
                "ok".to_owned()
            }
            _ => "?".to_owned(),
        };
        writeln!(out, "{reply}").unwrap();
        out.flush().unwrap();
    }
    rt.block_on(server.shutdown());
}

// ---- a client's process ----

fn read_line(lines: &mut impl Iterator<Item = std::io::Result<String>>) -> String {
    lines.next().and_then(Result::ok).unwrap_or_default()
}

fn first_error_ms<T>(started: Instant, result: Result<T, Error>) -> (f64, String) {
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    match result {
        Ok(_) => (ms, "no error".to_owned()),
        Err(e @ Error::TooLarge { .. }) => (ms, format!("TooLarge ({})", setting(&e))),
        Err(e) => (ms, format!("{e}")),
    }
}

fn setting(e: &Error) -> &'static str {
    match e {
        Error::TooLarge { setting, .. } => setting,
        _ => "",
    }
}

fn client(url: &str, scenario: &str, size: u64) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut stdin = std::io::stdin().lock().lines();
    let mut config = ClientConfig::new(url);
    config.body_limits.download = GIB;
    let client = rt.block_on(Client::connect(config)).unwrap();
    rt.block_on(client.wait_connected(Duration::from_secs(10)))
        .unwrap();
    // Never read: one for every event (the host's pull subscription before
    // anyone pulls), one for the connection-wide kinds.
    let everything = client.events();
    let noise = client.on(&[
        EventKind::Connection,
        EventKind::Status,
        EventKind::Message,
        EventKind::BadFrame,
        EventKind::HttpFailed,
    ]);
    // Read at once.
    let mut reader = client.events();
    let read = rt.spawn(async move {
        let mut n = 0u64;
        while reader.recv().await.is_some() {
            n += 1;
        }
        n
    });
    println!("ready {}", client.client_id());
    let _ = read_line(&mut stdin); // "go"
    let started = Instant::now();
    let base = client.stats().frames;
    let mut result = json!({"scenario": scenario});
    let flood = matches!(
        scenario,
        "distinct-prompts" | "unknown-types" | "bad-frames" | "previews-at-limit"
    );
    if flood {
        let sent: u64 = read_line(&mut stdin)
            .strip_prefix("sent ")
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        // Every frame processed (bounded: 10 minutes).
        let mut seen = 0;
        for _ in 0..60_000 {
            seen = client.stats().frames - base;
            if seen >= sent {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let secs = started.elapsed().as_secs_f64();
        result["frames"] = json!(seen);
        result["secs"] = json!(secs);
        result["frames_per_s"] = json!(seen as f64 / secs);
        if scenario == "previews-at-limit" {
            // One byte over: the typed report, then the new socket.
            let mut bad = client.on(&[EventKind::BadFrame]);
            let t = Instant::now();
            println!("over");
            let e = rt.block_on(async {
                tokio::time::timeout(Duration::from_secs(60), bad.recv()).await
            });
            result["first_error_ms"] = json!(t.elapsed().as_secs_f64() * 1000.0);
            let _ = read_line(&mut stdin); // "sent"
            result["error"] = json!(format!("{e:?}").chars().take(120).collect::<String>());
            rt.block_on(client.wait_connected(Duration::from_secs(10)))
                .unwrap();
        }
    } else if scenario != "idle" {
        let _ = size;
        let (ms, error) = match scenario {
            "queue-endless" => first_error_ms(started, rt.block_on(client.queue())),
            "view-endless" => {
                let file = FileRef {
                    filename: "x.png".into(),
                    subfolder: String::new(),
                    kind: "output".into(),
                };
                let (ms, memory) = first_error_ms(started, rt.block_on(client.view(&file)));
                let dest = std::env::temp_dir()
                    .join(format!("comfywire-hostile-{}.png", std::process::id()));
                let t = Instant::now();
                let (file_ms, disk) = first_error_ms(t, rt.block_on(client.download(&file, &dest)));
                result["download_error_ms"] = json!(file_ms);
                result["download_error"] = json!(disk);
                result["download_left_a_file"] = json!(dest.exists());
                (ms, memory)
            }
            _ => first_error_ms(started, rt.block_on(client.server_history("abc"))),
        };
        result["first_error_ms"] = json!(ms);
        result["error"] = json!(error);
    }
    // Still working: the server answers and the socket is up.
    result["still_works"] = json!(
        rt.block_on(client.wait_connected(Duration::from_secs(10)))
            .is_ok()
    );
    let mut dropped = BTreeMap::new();
    for kind in EventKind::ALL {
        let n = noise.dropped(kind) + everything.dropped(kind);
        if n > 0 {
            dropped.insert(kind.name(), n);
        }
    }
    let mut coalesced = BTreeMap::new();
    for kind in EventKind::ALL {
        let n = noise.coalesced(kind) + everything.coalesced(kind);
        if n > 0 {
            coalesced.insert(kind.name(), n);
        }
    }
    let stats = client.stats();
    result["dropped_unread"] = json!(dropped);
    result["coalesced_unread"] = json!(coalesced);
    result["unread_end"] = json!(everything.end().map(|e| e.to_string()));
    result["unread_pending_kib"] = json!(everything.pending_bytes() / 1024);
    result["noise_pending"] = json!(noise.pending());
    result["bad_frames"] = json!(stats.bad_frames);
    result["peak_rss_kib"] = json!(status_kib("VmHWM:"));
    result["rss_kib"] = json!(status_kib("VmRSS:"));
    rt.block_on(client.close());
    result["read_events"] = json!(rt.block_on(read).unwrap());
    println!("result {result}");
}

// ---- the orchestrator ----

struct Proc {
    child: Child,
    stdin: ChildStdin,
    stdout: std::io::Lines<BufReader<ChildStdout>>,
}

impl Proc {
    fn start(args: &[&str]) -> Proc {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        Proc {
            child,
            stdin,
            stdout,
        }
    }

    fn say(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
    }

    fn hear(&mut self) -> String {
        self.stdout.next().and_then(Result::ok).unwrap_or_default()
    }

    fn ask(&mut self, line: &str) -> String {
        self.say(line);
        self.hear()
    }
}

fn run_one(server: &mut Proc, url: &str, s: &Scenario, size: u64) -> Value {
    let mut c = Proc::start(&["--client", url, s.name, &size.to_string()]);
    let ready = c.hear();
    let id = ready.strip_prefix("ready ").unwrap_or_default().to_owned();
    match s.name {
        "distinct-prompts" | "unknown-types" | "bad-frames" => {
            let kind = match s.name {
                "distinct-prompts" => "distinct",
                "unknown-types" => "unknown",
                _ => "bad",
            };
            c.say("go");
            let sent = server.ask(&format!("flood {id} {kind} {size}"));
            c.say(&sent);
        }
        "previews-at-limit" => {
            let limit = comfywire_client::DEFAULT_MAX_MESSAGE_SIZE;
            c.say("go");
            let sent = server.ask(&format!("flood {id} preview {size} {limit}"));
            c.say(&sent);
            assert_eq!(c.hear(), "over");
            server.ask(&format!("flood {id} preview 1 {}", limit + 1));
            c.say("sent");
        }
        "history-fast" => {
            server.ask(&format!("http history fast {size}"));
            c.say("go");
        }
        "history-declared" => {
            server.ask(&format!("http history declared {size}"));
            c.say("go");
        }
        "history-slow" => {
            server.ask(&format!("http history slow {size} {}", 16 * MIB));
            c.say("go");
        }
        "queue-endless" => {
            server.ask(&format!("http queue fast {size}"));
            c.say("go");
        }
        "view-endless" => {
            server.ask(&format!("http view fast {size}"));
            c.say("go");
        }
        _ => c.say("go"),
    }
    let mut result = Value::Null;
    loop {
        let line = c.hear();
        if let Some(json) = line.strip_prefix("result ") {
            result = serde_json::from_str(json).unwrap();
            break;
        }
        if line.is_empty() {
            break;
        }
    }
    drop(c.stdin);
    let _ = c.child.wait();
    server.ask("reset");
    result
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--serve") {
        return serve();
    }
    if let Some(i) = args.iter().position(|a| a == "--client") {
        let size = args[i + 3].parse().unwrap();
        return client(&args[i + 1], &args[i + 2], size);
    }
    let smoke = !args.iter().any(|a| a == "--bench");
    let runs: usize = std::env::var("COMFYWIRE_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if smoke { 1 } else { 3 });
    let picked = std::env::var("COMFYWIRE_SCENARIOS").unwrap_or_default();
    let wanted = |name: &str| picked.is_empty() || picked.split(',').any(|p| p.trim() == name);
    let mut server = Proc::start(&["--serve"]);
    let url = server
        .hear()
        .strip_prefix("url ")
        .unwrap_or_default()
        .to_owned();
    println!(
        "hostile mode, {} run(s) per scenario, fresh client process each (peak RSS = its VmHWM)",
        runs
    );
    for s in SCENARIOS.iter().filter(|s| wanted(s.name)) {
        let size = if smoke { s.smoke } else { s.bench };
        let results: Vec<Value> = (0..runs)
            .map(|_| run_one(&mut server, &url, s, size))
            .collect();
        let num =
            |key: &str| -> Vec<f64> { results.iter().filter_map(|r| r[key].as_f64()).collect() };
        let peak = num("peak_rss_kib").into_iter().fold(0.0, f64::max);
        println!("\n{} — {} (N = {size})", s.name, s.what);
        println!(
            "  peak RSS {:.1} MiB (max of {} runs)",
            peak / 1024.0,
            results.len()
        );
        if !num("secs").is_empty() {
            println!(
                "  {:.0} frames in {:.2} s (median), {:.0} frames/s",
                median(num("frames")),
                median(num("secs")),
                median(num("frames_per_s"))
            );
        }
        if !num("first_error_ms").is_empty() {
            println!(
                "  first typed error after {:.0} ms (median): {}",
                median(num("first_error_ms")),
                results[0]["error"]
            );
        }
        if !num("download_error_ms").is_empty() {
            println!(
                "  download: error after {:.0} ms (median): {}, partial file left: {}",
                median(num("download_error_ms")),
                results[0]["download_error"],
                results[0]["download_left_a_file"]
            );
        }
        let last = results.last().cloned().unwrap_or_default();
        println!(
            "  unread subscriptions: dropped {}, coalesced {}, pull-style one ended: {}, holds {} KiB",
            last["dropped_unread"],
            last["coalesced_unread"],
            last["unread_end"],
            last["unread_pending_kib"]
        );
        println!(
            "  bad frames {}, events read by the reading subscriber {}, still works: {}",
            last["bad_frames"], last["read_events"], last["still_works"]
        );
        assert!(
            results.iter().all(|r| r["still_works"] == json!(true)),
            "{} broke the client",
            s.name
        );
    }
    drop(server.stdin);
    let _ = server.child.wait();
}
