//! Feeds the frames of `long_run` and `success_single` through a `Session`
//! N times (default 20) and prints messages per second. Deterministic
//! enough to compare under `valgrind --tool=callgrind` (instruction counts)
//! when the machine is too busy for wall-clock numbers.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::time::{Duration, Instant};

use comfywire_proto::trace::{Trace, TraceEventKind};
use comfywire_proto::{Frame, Session, SessionConfig};

enum Input {
    Text(&'static str),
    Frame(Frame),
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/traces");
    let mut frames = Vec::new();
    for name in ["long_run", "success_single"] {
        let trace =
            Trace::parse(&std::fs::read_to_string(dir.join(format!("{name}.jsonl"))).unwrap())
                .unwrap();
        for e in trace.events {
            match e.kind {
                TraceEventKind::Text {
                    received: true,
                    data,
                    ..
                } => frames.push((e.t_ms, Input::Text(String::leak(data)))),
                TraceEventKind::Binary { data, .. } => {
                    frames.push((e.t_ms, Input::Frame(Frame::Binary(data))))
                }
                _ => {}
            }
        }
    }
    let base = Instant::now();
    let started = Instant::now();
    let mut events = 0usize;
    for round in 0..rounds {
        let mut s = Session::new(SessionConfig {
            client_id: Some("bench".into()),
            ..SessionConfig::default()
        });
        s.connect(base);
        s.handle_connected(base);
        let offset = round as f64 * 10_000.0;
        for (i, (t, f)) in frames.iter().enumerate() {
            let now = base + Duration::from_secs_f64((t + offset) / 1000.0);
            // The driver looks at timers once per batch of frames.
            if i % 64 == 0 && s.poll_timeout().is_some_and(|x| x.at <= now) {
                s.handle_timeout(now);
            }
            match f {
                // Text as a WebSocket library hands it over: UTF-8 checked.
                Input::Text(text) => s.handle_text(*text, now),
                Input::Frame(frame) => s.handle_frame(frame.clone(), now),
            }
            while s.poll_event().is_some() {
                events += 1;
            }
            while s.poll_command().is_some() {}
        }
    }
    let n = frames.len() * rounds;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{n} frames, {events} events, {:.0} frames/s",
        n as f64 / secs
    );
}
