//! A server that names prompt ids, nodes or outputs without end: the
//! throttles stay bounded (an LRU for previews of prompts with no record;
//! an evicted foreign record releases its slots), and so do each record
//! (nodes by count, outputs by bytes) and the history ring.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use comfywire_proto::throttle::Throttle;
use comfywire_proto::{
    BINARY_PREVIEW_WITH_METADATA, Event, ExecutionRecord, Frame, HistoryRing, Session,
    SessionConfig,
};

fn preview(prompt_id: &str) -> Frame {
    let metadata = format!(
        r#"{{"node_id": "3", "prompt_id": "{prompt_id}", "display_node_id": "3", "parent_node_id": null, "real_node_id": "3", "image_type": "image/jpeg"}}"#
    );
    let mut frame = BytesMut::new();
    frame.put_u32(BINARY_PREVIEW_WITH_METADATA);
    frame.put_u32(metadata.len() as u32);
    frame.put_slice(metadata.as_bytes());
    frame.put_slice(b"\xff\xd8 image \xff\xd9");
    Frame::Binary(frame.freeze())
}

#[test]
fn distinct_prompt_ids_without_end_hold_a_bounded_number_of_throttle_keys() {
    let mut s = Session::new(SessionConfig {
        client_id: Some("me".into()),
        ..SessionConfig::default()
    });
    let t0 = Instant::now();
    s.connect(t0);
    s.handle_connected(t0);
    let bound = 2 * Throttle::<()>::DEFAULT_CAPACITY;
    let mut most = 0;
    for i in 0..50_000u64 {
        let now = t0 + Duration::from_micros(i * 10);
        let id = format!("{i:08x}-dead-4bad-8bad-000000000000");
        // A preview for a prompt with no record, then a progress that
        // makes a foreign record (evicted past `max_foreign_prompts`,
        // without a flush), twice each so that values are held.
        for _ in 0..2 {
            s.handle_frame(preview(&id), now);
            s.handle_frame(
                Frame::text(format!(
                    r#"{{"type": "progress", "data": {{"value": 1, "max": 4, "prompt_id": "{id}", "node": "3"}}}}"#
                )),
                now,
            );
        }
        while s.poll_event().is_some() {}
        if s.poll_timeout().is_some_and(|t| t.at <= now) {
            s.handle_timeout(now);
        }
        most = most.max(s.held_updates());
        assert!(s.held_updates() <= bound, "{} at {i}", s.held_updates());
    }
    // Evicted records release their slots: about two per tracked record.
    assert!(most >= 256, "the flood did reach the throttles: {most}");
    assert!(s.history().len() <= s.history().capacity());
}

/// A session that submitted `p` and saw it start.
fn running() -> (Session, Instant) {
    let mut s = Session::new(SessionConfig {
        client_id: Some("me".into()),
        ..SessionConfig::default()
    });
    let t0 = Instant::now();
    s.connect(t0);
    s.handle_connected(t0);
    s.track_prompt("p", None, t0);
    s.handle_frame(
        Frame::text(r#"{"type": "execution_start", "data": {"prompt_id": "p"}}"#),
        t0,
    );
    (s, t0)
}

#[test]
fn one_prompt_with_nodes_without_end_keeps_a_bounded_record() {
    let (mut s, t0) = running();
    let flood = ExecutionRecord::MAX_NODES + 2_000;
    for i in 0..flood {
        s.handle_frame(
            Frame::text(format!(
                r#"{{"type": "executing", "data": {{"node": "n{i}", "prompt_id": "p"}}}}"#
            )),
            t0,
        );
        while s.poll_event().is_some() {}
    }
    let record = s.execution("p").unwrap();
    assert_eq!(record.nodes.len(), ExecutionRecord::MAX_NODES);
    assert_eq!(
        record.nodes_omitted as usize,
        flood - ExecutionRecord::MAX_NODES
    );
}

#[test]
fn outputs_past_the_record_budget_are_delivered_but_not_kept() {
    let (mut s, t0) = running();
    // 40 outputs of 1 MiB each: more than the 16 MiB a record keeps.
    let text = "x".repeat(1 << 20);
    let mut delivered = 0;
    for i in 0..40 {
        s.handle_frame(
            Frame::text(format!(
                r#"{{"type": "executed", "data": {{"node": "n{i}", "prompt_id": "p", "output": {{"text": ["{text}"]}}}}}}"#
            )),
            t0,
        );
        while let Some(e) = s.poll_event() {
            delivered += usize::from(matches!(e, Event::Output { .. }));
        }
    }
    assert_eq!(delivered, 40, "every output still reaches subscribers");
    let record = s.execution("p").unwrap();
    let kept = record.outputs.len();
    assert!((10..=16).contains(&kept), "{kept} kept");
    assert_eq!(record.outputs_omitted as usize, 40 - kept);
    let held = HistoryRing::approx_bytes(record);
    assert!(
        held <= ExecutionRecord::MAX_OUTPUT_BYTES + (1 << 20),
        "{held} bytes"
    );
}

#[test]
fn an_evicted_foreign_record_releases_its_throttle_slots() {
    let mut s = Session::new(SessionConfig {
        client_id: Some("me".into()),
        max_foreign_prompts: 4,
        ..SessionConfig::default()
    });
    let t0 = Instant::now();
    s.connect(t0);
    s.handle_connected(t0);
    for i in 0..10 {
        let id = format!("{i:08x}-dead-4bad-8bad-000000000000");
        // The first step goes out; the second, within the interval, is held.
        for step in 1..=2 {
            s.handle_frame(
                Frame::text(format!(
                    r#"{{"type": "progress", "data": {{"value": {step}, "max": 4, "prompt_id": "{id}", "node": "3"}}}}"#
                )),
                t0,
            );
        }
        while s.poll_event().is_some() {}
    }
    // One held step per foreign record still tracked, none for the evicted.
    assert!(s.held_updates() <= 5, "{} held", s.held_updates());
    assert!(s.held_updates() >= 1, "the flood did reach the throttle");
}
