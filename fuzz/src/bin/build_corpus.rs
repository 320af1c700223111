//! Writes the seed corpora of the fuzz targets from the recorded traces:
//! `cargo run --bin build-corpus -- ../tests/data/traces corpus`.

use std::path::Path;

use comfywire_proto::trace::{Trace, TraceEventKind};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let traces = Path::new(args.first().map_or("../tests/data/traces", String::as_str));
    let out = Path::new(args.get(1).map_or("corpus", String::as_str));
    let parse_dir = out.join("parse_frame");
    let session_dir = out.join("session_events");
    std::fs::create_dir_all(&parse_dir).expect("corpus dir");
    std::fs::create_dir_all(&session_dir).expect("corpus dir");
    let frames_dir = out.join("ws_frames");
    std::fs::create_dir_all(&frames_dir).expect("corpus dir");
    let mut entries: Vec<_> = std::fs::read_dir(traces)
        .expect("traces dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    entries.sort();
    let mut count = 0usize;
    for path in entries {
        let text = std::fs::read_to_string(&path).expect("trace");
        let Ok(trace) = Trace::parse(&text) else {
            continue;
        };
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let ids = &trace.meta.prompt_ids;
        let mut session = Vec::new();
        // ws_frames: two bytes of settings, then the trace's messages as a
        // server frames them, cut into streams of about 64 KiB.
        let mut frames = vec![0u8, 0u8];
        let mut streams = 0;
        for (i, event) in trace.events.iter().enumerate() {
            let (kind, mut payload): (u8, Vec<u8>) = match &event.kind {
                TraceEventKind::Text {
                    received: true,
                    data,
                    ..
                } => (0, data.clone().into_bytes()),
                TraceEventKind::Binary { data, .. } => (1, data.to_vec()),
                TraceEventKind::WsClose { .. } => (3, Vec::new()),
                TraceEventKind::WsOpen { .. } => (4, Vec::new()),
                _ => continue,
            };
            // The fuzz target tracks "p1"/"p2": map the trace's ids onto them.
            if kind == 0 {
                let mut text = String::from_utf8(payload).unwrap_or_default();
                for (n, id) in ids.iter().take(2).enumerate() {
                    text = text.replace(id.as_str(), if n == 0 { "p1" } else { "p2" });
                }
                payload = text.into_bytes();
            }
            if kind <= 1 {
                let opcode = if kind == 0 { 0x81 } else { 0x82 };
                frames.push(opcode);
                match payload.len() {
                    n if n < 126 => frames.push(n as u8),
                    n if n <= 0xFFFF => {
                        frames.push(126);
                        frames.extend_from_slice(&(n as u16).to_be_bytes());
                    }
                    n => {
                        frames.push(127);
                        frames.extend_from_slice(&(n as u64).to_be_bytes());
                    }
                }
                frames.extend_from_slice(&payload);
                if frames.len() > 64 * 1024 {
                    let file = frames_dir.join(format!("{name}-{streams}"));
                    std::fs::write(file, &frames).expect("write");
                    streams += 1;
                    frames.truncate(2);
                }
            }
            if payload.len() <= 16 * 1024 {
                let mut one = vec![kind];
                one.extend_from_slice(&payload);
                std::fs::write(parse_dir.join(format!("{name}-{i}")), &one).expect("write");
                count += 1;
            }
            let len = payload.len().min(0xFFFF);
            let op = if kind == 1 { 2 } else { kind };
            session.push(op | 0x10);
            session.push((len >> 8) as u8);
            session.push(len as u8);
            session.extend_from_slice(&payload[..len]);
        }
        session.push(0x17);
        std::fs::write(frames_dir.join(format!("{name}-{streams}")), &frames).expect("write");
        std::fs::write(session_dir.join(&name), &session).expect("write");
    }
    println!(
        "wrote {count} parse_frame inputs and the session_events inputs to {}",
        out.display()
    );
}
