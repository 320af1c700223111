//! Messages per second through the parser and the whole `Session`, beside
//! `serde_json::from_str::<Value>` over the same text frames (the in-run
//! baseline). Frames come from the `long_run` and `success_single` traces.
#![allow(missing_docs, clippy::unwrap_used, clippy::disallowed_methods)]

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use comfywire_proto::trace::{Trace, TraceEventKind};
use comfywire_proto::{Frame, HttpReply, Session, SessionConfig, parse_frame};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn traces_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("COMFYWIRE_TRACES") {
        return PathBuf::from(dir);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/traces")
}

/// (t_ms, frame) of the primary client's received frames, and prompt ids.
fn frames(name: &str) -> (Vec<(f64, Frame)>, Vec<String>) {
    let text = std::fs::read_to_string(traces_dir().join(format!("{name}.jsonl"))).unwrap();
    let trace = Trace::parse(&text).unwrap();
    let frames = trace
        .events
        .into_iter()
        .filter_map(|e| match e.kind {
            TraceEventKind::Text {
                received: true,
                data,
                ..
            } => Some((e.t_ms, Frame::text(data))),
            TraceEventKind::Binary { data, .. } => Some((e.t_ms, Frame::Binary(data))),
            _ => None,
        })
        .collect();
    (frames, trace.meta.prompt_ids)
}

/// A connected session that submitted `ids` and heard each accepted, one
/// answer at a time as a batch tool hears them (what each answer makes is
/// taken before the next).
fn submitted(ids: &[String], base: Instant) -> Session {
    let mut s = Session::new(SessionConfig {
        client_id: Some("bench".into()),
        ..SessionConfig::default()
    });
    s.connect(base);
    s.handle_connected(base);
    for id in ids {
        s.track_prompt(id, Some(4), base);
        s.handle_http(
            HttpReply::PromptAccepted {
                prompt_id: id.clone(),
                number: Some(0),
                node_errors: serde_json::Value::Null,
            },
            base,
        );
        while s.poll_event().is_some() {}
        while s.poll_command().is_some() {}
    }
    s
}

fn bench(c: &mut Criterion) {
    let (mut all, mut prompts) = frames("long_run");
    let (single, single_prompts) = frames("success_single");
    let offset = all.last().map_or(0.0, |(t, _)| *t) + 10.0;
    all.extend(single.into_iter().map(|(t, f)| (t + offset, f)));
    prompts.extend(single_prompts);
    let texts: Vec<&str> = all
        .iter()
        .filter_map(|(_, f)| match f {
            Frame::Text(b) => std::str::from_utf8(b).ok(),
            Frame::Binary(_) => None,
        })
        .collect();
    let text_frames: Vec<Frame> = all
        .iter()
        .filter(|(_, f)| f.is_text())
        .map(|(_, f)| f.clone())
        .collect();

    let mut group = c.benchmark_group("text_frames");
    group.throughput(Throughput::Elements(texts.len() as u64));
    group.bench_function("baseline_serde_json_value", |b| {
        b.iter(|| {
            for t in &texts {
                black_box(serde_json::from_str::<serde_json::Value>(t).unwrap());
            }
        })
    });
    group.bench_function("typed_parse", |b| {
        b.iter(|| {
            for f in &text_frames {
                black_box(parse_frame(f).unwrap());
            }
        })
    });
    group.finish();

    let mut group = c.benchmark_group("all_frames");
    group.throughput(Throughput::Elements(all.len() as u64));
    group.bench_function("typed_parse", |b| {
        b.iter(|| {
            for (_, f) in &all {
                black_box(parse_frame(f).unwrap());
            }
        })
    });
    // As the driver feeds it: text whose UTF-8 the socket library checked.
    let checked: Vec<(f64, Result<&'static str, Frame>)> = all
        .iter()
        .map(|(t, f)| match f {
            Frame::Text(b) => (
                *t,
                Ok(&*String::leak(String::from_utf8(b.to_vec()).unwrap())),
            ),
            Frame::Binary(_) => (*t, Err(f.clone())),
        })
        .collect();
    for (name, driver_like) in [
        ("session_track_throttle", false),
        ("session_checked_text", true),
    ] {
        group.bench_function(name, |b| {
            let base = Instant::now();
            b.iter(|| {
                let mut s = submitted(&prompts, base);
                let mut events = 0usize;
                for (i, (t, f)) in all.iter().enumerate() {
                    let now = base + Duration::from_secs_f64(t / 1000.0);
                    if s.poll_timeout().is_some_and(|x| x.at <= now) {
                        s.handle_timeout(now);
                    }
                    match (&checked[i].1, driver_like) {
                        (Ok(text), true) => s.handle_text(*text, now),
                        _ => s.handle_frame(f.clone(), now),
                    }
                    while s.poll_event().is_some() {
                        events += 1;
                    }
                    while s.poll_command().is_some() {}
                }
                black_box(events)
            })
        });
    }
    group.finish();

    // A batch tool's pattern: many prompts submitted before any ends. Each
    // answer used to scan every tracked record, so a batch cost O(n^2).
    let mut group = c.benchmark_group("batch_submissions");
    for n in [1_000usize, 10_000] {
        let ids: Vec<String> = (0..n).map(|i| format!("batch-{i:08}")).collect();
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(format!("track_and_answer_{n}"), |b| {
            let base = Instant::now();
            b.iter(|| black_box(submitted(&ids, base)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
