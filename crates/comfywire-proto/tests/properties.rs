//! Property tests against trivially correct models: the throttle, the
//! history ring, exactly-once terminal events, and a total parser.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod common;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use comfywire_proto::throttle::{Offer, Throttle};
use comfywire_proto::trace::TraceEventKind;
use comfywire_proto::{
    Event, ExecutionRecord, Frame, HistoryEntry, HistoryRing, HttpReply, Session, SessionConfig,
    parse_frame,
};
use proptest::prelude::*;
use serde_json::json;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn throttle_limits_rate_keeps_order_and_delivers_the_last_value(
        steps in prop::collection::vec((0usize..3, 0u64..40, any::<bool>()), 1..200),
    ) {
        let interval = Duration::from_millis(16);
        let mut throttle: Throttle<(usize, u32)> = Throttle::new(interval);
        let base = common::base();
        let mut now = base;
        let mut out: Vec<(Duration, usize, u32, bool)> = Vec::new();
        let mut last_offered: HashMap<usize, u32> = HashMap::new();
        for (seq, (key, dt, urgent)) in steps.iter().enumerate() {
            let next = now + Duration::from_millis(*dt);
            // Deliver whatever became due on the way, at its deadline.
            while let Some(at) = throttle.next_deadline() {
                if at > next { break; }
                for t in throttle.take_due(at) {
                    out.push((at - base, t.value.0, t.value.1, false));
                }
            }
            now = next;
            let value = (*key, seq as u32);
            last_offered.insert(*key, seq as u32);
            if let Offer::Now(v) = throttle.offer("p", &key.to_string(), None, value, *urgent, now) {
                out.push((now - base, v.0, v.1, *urgent));
            }
        }
        while let Some(at) = throttle.next_deadline() {
            for t in throttle.take_due(at) {
                out.push((at - base, t.value.0, t.value.1, false));
            }
        }
        for key in 0..3 {
            let mine: Vec<_> = out.iter().filter(|e| e.1 == key).collect();
            // Order kept: values only move forward.
            prop_assert!(mine.windows(2).all(|w| w[0].2 < w[1].2));
            // At most one non-urgent event per interval.
            let normal: Vec<_> = mine.iter().filter(|e| !e.3).collect();
            prop_assert!(normal.windows(2).all(|w| w[1].0 - w[0].0 >= interval));
            // The final value always arrives.
            prop_assert_eq!(mine.last().map(|e| e.2), last_offered.get(&key).copied());
        }
    }

    #[test]
    fn ring_matches_a_vecdeque(capacity in 1usize..12, ids in prop::collection::vec(0u8..40, 0..200)) {
        let mut ring = HistoryRing::new(capacity);
        let mut model: VecDeque<String> = VecDeque::new();
        let record = |id: &str| {
            let mut s = Session::new(SessionConfig::default());
            let now = common::base();
            s.track_prompt(id, None, now);
            Arc::new(s.execution(id).unwrap().clone())
        };
        for id in ids {
            let id = format!("p{id}");
            let pushed = ring.push(record(&id));
            let fresh = !model.contains(&id);
            prop_assert_eq!(pushed, fresh);
            if fresh {
                if model.len() == capacity { model.pop_front(); }
                model.push_back(id);
            }
            let got: Vec<&str> = ring.iter().map(|r| r.prompt_id.as_str()).collect();
            let want: Vec<&str> = model.iter().map(String::as_str).collect();
            prop_assert_eq!(got, want);
            for m in &model {
                prop_assert_eq!(ring.get(m).map(|r| r.prompt_id.clone()), Some(m.clone()));
            }
            prop_assert!(ring.len() <= capacity);
        }
    }

    /// `executing` and `executed` in any form the server or a proxy may
    /// write (ids with escapes, fields missing, null or reordered, extra
    /// keys, outputs of any shape): the borrowed hot path makes the same
    /// events as the owned parser, or declines to it.
    #[test]
    fn the_hot_path_reads_executing_and_executed_as_the_parser_does(
        frames in prop::collection::vec((any::<bool>(), 0usize..4, 0usize..4, 0usize..5, any::<bool>()), 1..24),
    ) {
        let ids = ["9", "1\\u00e9", "a\\\"b", "10"];
        let displays = ["", r#", "display_node": null"#, r#", "display_node": "9""#, r#", "display_node": "x\\ny""#];
        let outputs = ["", r#", "output": null"#, r#", "output": {"images": [{"filename": "a.png", "subfolder": "", "type": "output"}]}"#, r#", "output": {"text": ["\\u2603", 1.5e3, [true, null]]}"#, r#", "output": "odd""#];
        let base = common::base();
        let config = || SessionConfig { client_id: Some("c".into()), ..SessionConfig::default() };
        let (mut fast, mut owned) = (Session::new(config()), Session::new(config()));
        let start = Frame::text(r#"{"type": "execution_start", "data": {"prompt_id": "p", "timestamp": 1}}"#);
        for s in [&mut fast, &mut owned] {
            s.connect(base);
            s.handle_connected(base);
            s.handle_frame(start.clone(), base);
        }
        for (i, (executed, node, display, output, extra)) in frames.into_iter().enumerate() {
            let now = base + Duration::from_millis(i as u64);
            let id = ids[node];
            let extra = if extra { r#", "extra": {"k": [1]}"# } else { "" };
            let text = if executed {
                format!(r#"{{"type": "executed", "data": {{"node": "{id}"{}, "prompt_id": "p"{}{extra}}}}}"#, displays[display], outputs[output])
            } else if output == 0 {
                format!(r#"{{"type": "executing", "data": {{"node": null, "prompt_id": "p"{extra}}}}}"#)
            } else {
                format!(r#"{{"type": "executing", "data": {{"prompt_id": "p"{extra}, "node": "{id}"{}}}}}"#, displays[display])
            };
            fast.handle_text(text.clone(), now);
            owned.handle_message(parse_frame(&Frame::text(text)).unwrap(), now);
        }
        let a: Vec<Event> = std::iter::from_fn(|| fast.poll_event()).collect();
        let b: Vec<Event> = std::iter::from_fn(|| owned.poll_event()).collect();
        prop_assert_eq!(a, b);
        prop_assert_eq!(fast.execution("p"), owned.execution("p"));
    }

    #[test]
    fn exactly_one_terminal_event_per_prompt(
        signals in prop::collection::vec((0usize..4, 0usize..6), 1..60),
        gap in prop::collection::vec(any::<bool>(), 4),
    ) {
        let mut s = Session::new(SessionConfig { client_id: Some("me".into()), ..SessionConfig::default() });
        let mut now = common::base();
        s.connect(now);
        s.handle_connected(now);
        let ids: Vec<String> = (0..4).map(|i| format!("p{i}")).collect();
        for (i, id) in ids.iter().enumerate() {
            s.track_prompt(id, Some(2), now);
            s.handle_http(HttpReply::PromptAccepted { prompt_id: id.clone(), number: Some(i as u64), node_errors: json!({}) }, now);
            s.handle_frame(Frame::text(format!(r#"{{"type": "execution_start", "data": {{"prompt_id": "{id}", "timestamp": 1}}}}"#)), now);
            if gap[i] {
                s.handle_disconnected(comfywire_proto::ConnectionError::Lost { code: None, message: "x".into() }, now);
                s.handle_connected(now);
            }
        }
        let mut events: Vec<Event> = Vec::new();
        for (p, signal) in &signals {
            now += Duration::from_millis(3);
            let id = &ids[*p];
            match signal {
                0 => s.handle_frame(Frame::text(format!(r#"{{"type": "execution_success", "data": {{"prompt_id": "{id}", "timestamp": 2}}}}"#)), now),
                1 => s.handle_frame(Frame::text(format!(r#"{{"type": "executing", "data": {{"node": null, "prompt_id": "{id}"}}}}"#)), now),
                2 => s.handle_frame(Frame::text(format!(r#"{{"type": "execution_error", "data": {{"prompt_id": "{id}", "node_id": "2", "node_type": "X", "executed": [], "exception_message": "boom\n", "exception_type": "RuntimeError", "traceback": [], "current_inputs": {{}}, "current_outputs": [], "timestamp": 3}}}}"#)), now),
                3 => s.handle_frame(Frame::text(format!(r#"{{"type": "execution_interrupted", "data": {{"prompt_id": "{id}", "node_id": "2", "node_type": "X", "executed": [], "timestamp": 4}}}}"#)), now),
                4 => s.handle_http(HttpReply::History { prompt_id: id.clone(), entry: Some(HistoryEntry::from_json(&json!({"outputs": {}, "status": {"status_str": "success", "completed": true, "messages": []}})).unwrap()) }, now),
                _ => s.handle_frame(Frame::text(format!(r#"{{"type": "progress", "data": {{"value": 1, "max": 4, "prompt_id": "{id}", "node": "2"}}}}"#)), now),
            }
            while s.poll_command().is_some() {}
            events.extend(std::iter::from_fn(|| s.poll_event()));
        }
        for id in &ids {
            let mine: Vec<&Event> = events.iter().filter(|e| e.prompt_id() == Some(id)).collect();
            let terminals = mine.iter().filter(|e| e.is_terminal()).count();
            prop_assert!(terminals <= 1, "{} terminal events for {}", terminals, id);
            let after = mine.iter().skip_while(|e| !e.is_terminal()).skip(1).count();
            prop_assert_eq!(after, 0);
            let record: Option<&ExecutionRecord> = s.execution(id);
            prop_assert_eq!(terminals == 1, record.is_some_and(|r| r.is_terminal()));
            // A disconnect marks every prompt started before it. Without a
            // gap any done signal ends the prompt; after one only history
            // may (missed outputs live there).
            let index = ids.iter().position(|x| x == id).unwrap();
            let had_gap = gap[index..].iter().any(|g| *g);
            let ends = |limit: usize| signals.iter().any(|(p, sig)| ids[*p] == *id && *sig < limit);
            if had_gap {
                prop_assert_eq!(terminals == 1, signals.iter().any(|(p, sig)| ids[*p] == *id && *sig == 4));
            } else {
                prop_assert_eq!(terminals == 1, ends(5));
            }
        }
    }

    #[test]
    fn the_parser_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = parse_frame(&Frame::binary(bytes.clone()));
        let _ = parse_frame(&Frame::Text(bytes.into()));
    }

    #[test]
    fn the_parser_never_panics_on_mutated_real_frames(
        pick in any::<prop::sample::Index>(),
        cut in any::<prop::sample::Index>(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
    ) {
        let frames = real_frames();
        let frame = &frames[pick.index(frames.len())];
        let mut bytes = frame.payload().to_vec();
        for (at, byte) in flips {
            if !bytes.is_empty() {
                let i = at.index(bytes.len());
                bytes[i] = byte;
            }
        }
        bytes.truncate(cut.index(bytes.len() + 1));
        let mutated = if frame.is_text() { Frame::Text(bytes.into()) } else { Frame::binary(bytes) };
        let _ = parse_frame(&mutated);
    }
}

fn real_frames() -> &'static [Frame] {
    static FRAMES: OnceLock<Vec<Frame>> = OnceLock::new();
    FRAMES.get_or_init(|| {
        common::load_traces()
            .into_iter()
            .filter(|(name, _)| name != "big_output")
            .flat_map(|(_, t)| t.events)
            .filter_map(|e| match e.kind {
                TraceEventKind::Text {
                    received: true,
                    data,
                    ..
                } => Some(Frame::text(data)),
                TraceEventKind::Binary { data, .. } => Some(Frame::Binary(data)),
                _ => None,
            })
            .collect()
    })
}
