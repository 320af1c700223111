//! Random sequences of frames, disconnects, reconnects, HTTP answers and
//! timer ticks into `Session`: never panics, at most one `Finished` per
//! prompt, and nothing about a prompt after its `Finished`.
#![no_main]

use std::collections::HashSet;
use std::time::{Duration, Instant};

use bytes::Bytes;
use comfywire_proto::{
    ConnectionError, Event, Frame, HttpReply, HttpRequest, QueueSnapshot, Session, SessionConfig,
};
use libfuzzer_sys::fuzz_target;

const PROMPTS: [&str; 2] = ["p1", "p2"];

fuzz_target!(|data: &[u8]| {
    let mut now = Instant::now();
    let mut session = Session::new(SessionConfig {
        client_id: Some("c1".into()),
        ..SessionConfig::default()
    });
    session.connect(now);
    session.handle_connected(now);
    for p in PROMPTS {
        session.track_prompt(p, Some(3), now);
        session.handle_http(
            HttpReply::PromptAccepted {
                prompt_id: p.into(),
                number: Some(0),
                node_errors: serde_json::json!({}),
            },
            now,
        );
    }
    let mut finished = HashSet::new();
    let mut check = |session: &mut Session| {
        while let Some(event) = session.poll_event() {
            if let Some(p) = event.prompt_id() {
                assert!(
                    !finished.contains(p),
                    "{:?} for {p} after its end",
                    event.kind()
                );
            }
            if let Event::Finished(r) = &event {
                finished.insert(r.prompt_id.clone());
            }
        }
        while session.poll_command().is_some() {}
    };
    // Records: [op, len_hi, len_lo, payload...]; the payload of a frame is
    // its bytes (the seed corpus holds real trace frames this way).
    let mut rest = data;
    for _ in 0..256 {
        let Some((&op, tail)) = rest.split_first() else {
            break;
        };
        let (len, tail) = match tail {
            [hi, lo, tail @ ..] => (
                (usize::from(*hi) << 8 | usize::from(*lo)).min(tail.len()),
                tail,
            ),
            _ => (0, &[][..]),
        };
        let (payload, tail) = tail.split_at(len);
        rest = tail;
        now += Duration::from_millis(u64::from(op >> 4) * 40);
        let prompt = PROMPTS[usize::from(op >> 3) & 1].to_owned();
        match op & 7 {
            0 | 1 => session.handle_frame(Frame::Text(Bytes::copy_from_slice(payload)), now),
            2 => session.handle_frame(Frame::Binary(Bytes::copy_from_slice(payload)), now),
            3 => session.handle_disconnected(
                ConnectionError::Lost {
                    code: None,
                    message: "fuzz".into(),
                },
                now,
            ),
            4 => session.handle_connected(now),
            5 => {
                let entry = serde_json::from_slice(payload)
                    .ok()
                    .and_then(|v| comfywire_proto::HistoryEntry::from_response(&prompt, &v).ok())
                    .flatten();
                session.handle_http(
                    HttpReply::History {
                        prompt_id: prompt,
                        entry,
                    },
                    now,
                );
            }
            6 => {
                let snapshot = serde_json::from_slice(payload)
                    .ok()
                    .and_then(|v| QueueSnapshot::from_json(&v).ok())
                    .unwrap_or_default();
                session.handle_http(HttpReply::Queue(snapshot), now);
            }
            _ => {
                if payload.first().is_some_and(|b| b & 1 == 1) {
                    session.handle_http(
                        HttpReply::Failed {
                            request: HttpRequest::History { prompt_id: prompt },
                            error: "fuzz".into(),
                        },
                        now,
                    );
                } else {
                    session.handle_timeout(now);
                }
            }
        }
        check(&mut session);
    }
});
