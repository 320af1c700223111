//! Feeds the frames of `long_run` and `success_single` through a `Session`
//! N times (default 20) and prints messages per second. Deterministic
//! enough to compare under `valgrind --tool=callgrind` (instruction counts)
//! when the machine is too busy for wall-clock numbers.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::time::{Duration, Instant};

use comfywire_proto::trace::{Trace, TraceEventKind};
use comfywire_proto::{Frame, Session, SessionConfig};

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
                } => frames.push((e.t_ms, Frame::text(data))),
                TraceEventKind::Binary { data, .. } => frames.push((e.t_ms, Frame::Binary(data))),
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
        for (t, f) in &frames {
            let now = base + Duration::from_secs_f64((t + offset) / 1000.0);
            if s.poll_timeout().is_some_and(|x| x.at <= now) {
                s.handle_timeout(now);
            }
            s.handle_frame(f.clone(), now);
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
