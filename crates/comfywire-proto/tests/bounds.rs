//! A server that names prompt ids without end: the throttles stay bounded
//! by themselves (previews for prompts with no record, records evicted
//! without a flush), and so does the history ring.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use comfywire_proto::throttle::Throttle;
use comfywire_proto::{BINARY_PREVIEW_WITH_METADATA, Frame, Session, SessionConfig};

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
    assert!(most > 1000, "the flood did reach the throttles: {most}");
    assert!(s.history().len() <= s.history().capacity());
}
