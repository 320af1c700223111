//! The steady path allocates nothing: a counting global allocator watches
//! a session take `progress` frames (and the repeated `progress_state`
//! snapshots and previews between them) for a prompt of its own and for
//! another client's, as the server writes them, while the throttles hold
//! them. An update that goes out allocates nothing either: its event
//! shares the record's ids (`Arc<str>`) instead of copying them.
//!
//! Counting is per thread, so tests running beside this one do not count.
#![allow(missing_docs, clippy::unwrap_used, clippy::disallowed_methods)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use comfywire_proto::{Event, Frame, HttpReply, ProgressUpdate, Session, SessionConfig};

struct Counting;

thread_local! {
    static COUNT: Cell<Option<u64>> = const { Cell::new(None) };
}

fn note() {
    // `try_with`: the allocator runs during thread teardown too.
    let _ = COUNT.try_with(|c| {
        if let Some(n) = c.get() {
            c.set(Some(n + 1));
        }
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made on this thread while `f` runs.
fn allocations(f: impl FnOnce()) -> u64 {
    COUNT.with(|c| c.set(Some(0)));
    f();
    COUNT.with(|c| c.take()).unwrap_or(0)
}

const PROMPT: &str = "9f9d92e8-5a6b-4188-8563-40c1a5216a4f";

fn text(s: String) -> Frame {
    Frame::text(s)
}

fn snapshot(node: u32, step: u32, steps: u32) -> Frame {
    let mut nodes = String::new();
    for n in 1..=node {
        let (value, max, state) = if n < node {
            (1.0, 1.0, "finished")
        } else {
            (f64::from(step), f64::from(steps), "running")
        };
        if n > 1 {
            nodes.push_str(", ");
        }
        nodes.push_str(&format!(
            "\"{n}\": {{\"value\": {value:?}, \"max\": {max:?}, \"state\": \"{state}\", \"node_id\": \"{n}\", \"prompt_id\": \"{PROMPT}\", \"display_node_id\": \"{n}\", \"parent_node_id\": null, \"real_node_id\": \"{n}\"}}"
        ));
    }
    text(format!(
        "{{\"type\": \"progress_state\", \"data\": {{\"prompt_id\": \"{PROMPT}\", \"nodes\": {{{nodes}}}}}}}"
    ))
}

fn progress(node: u32, step: u32, steps: u32) -> Frame {
    text(format!(
        "{{\"type\": \"progress\", \"data\": {{\"value\": {step}, \"max\": {steps}, \"prompt_id\": \"{PROMPT}\", \"node\": \"{node}\"}}}}"
    ))
}

fn preview(node: u32) -> Frame {
    let header = format!(
        "{{\"node_id\": \"{node}\", \"prompt_id\": \"{PROMPT}\", \"display_node_id\": \"{node}\", \"parent_node_id\": null, \"real_node_id\": \"{node}\", \"image_type\": \"image/jpeg\"}}"
    );
    let mut out = Vec::new();
    out.extend_from_slice(&4u32.to_be_bytes());
    out.extend_from_slice(&(header.len() as u32).to_be_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&[0xFF, 0xD8, 0xFF, 0xE0]);
    out.extend_from_slice(&[7u8; 4096]);
    Frame::Binary(out.into())
}

/// A session in the middle of node 2 of a running prompt, its own or not.
fn running(ours: bool, now: Instant) -> Session {
    let mut session = Session::new(SessionConfig {
        client_id: Some("alloc-test".into()),
        ..SessionConfig::default()
    });
    session.connect(now);
    session.handle_connected(now);
    if ours {
        session.track_prompt(PROMPT, Some(3), now);
        session.handle_http(
            HttpReply::PromptAccepted {
                prompt_id: PROMPT.into(),
                number: Some(1),
                node_errors: serde_json::Value::Null,
            },
            now,
        );
    }
    for frame in [
        text(format!(
            "{{\"type\": \"execution_start\", \"data\": {{\"prompt_id\": \"{PROMPT}\", \"timestamp\": 1}}}}"
        )),
        snapshot(1, 0, 1),
        text(format!(
            "{{\"type\": \"executing\", \"data\": {{\"node\": \"1\", \"display_node\": \"1\", \"prompt_id\": \"{PROMPT}\"}}}}"
        )),
        snapshot(2, 0, 1000),
        text(format!(
            "{{\"type\": \"executing\", \"data\": {{\"node\": \"2\", \"display_node\": \"2\", \"prompt_id\": \"{PROMPT}\"}}}}"
        )),
    ] {
        session.handle_frame(frame, now);
    }
    drain(&mut session);
    session
}

fn drain(session: &mut Session) {
    while session.poll_event().is_some() {}
    while session.poll_command().is_some() {}
}

/// Steps through node 2 the way the server sends them (a snapshot, then
/// the `progress`, a preview every 10th step). The clock moves 1 ms a step
/// for the first 100 steps (the throttles let some out) and then stands
/// still, so every later step is one the throttles hold: the steady path
/// between two emitted updates. Events are drained and dropped as a driver
/// hands them on. Returns the allocations of the held steps and their
/// number.
fn steady(ours: bool) -> (u64, u64) {
    let start = Instant::now();
    let mut session = running(ours, start);
    let steps = 1000;
    let frames: Vec<(Frame, Frame, Option<Frame>)> = (1..steps)
        .map(|s| {
            (
                snapshot(2, s, steps),
                progress(2, s, steps),
                (s % 10 == 0).then(|| preview(2)),
            )
        })
        .collect();
    let warm = 100;
    let step = |session: &mut Session, now: Instant, frames: (Frame, Frame, Option<Frame>)| {
        let (snap, prog, prev) = frames;
        session.handle_frame(snap, now);
        session.handle_frame(prog, now);
        if let Some(p) = prev {
            session.handle_frame(p, now);
        }
        if session.poll_timeout().is_some_and(|t| t.at <= now) {
            session.handle_timeout(now);
        }
        drain(session);
    };
    let mut frames = frames.into_iter();
    let mut now = start;
    for i in 0..warm {
        now = start + Duration::from_millis(i);
        step(&mut session, now, frames.next().unwrap());
    }
    let rest: Vec<_> = frames.collect();
    let n = rest.len() as u64;
    let counted = allocations(|| {
        for f in rest {
            step(&mut session, now, f);
        }
    });
    (counted, n)
}

#[test]
fn held_progress_steps_of_our_own_prompt_allocate_nothing() {
    let (allocs, steps) = steady(true);
    assert_eq!(allocs, 0, "{allocs} allocations over {steps} steps");
}

#[test]
fn held_progress_steps_of_another_clients_prompt_allocate_nothing() {
    let (allocs, steps) = steady(false);
    assert_eq!(allocs, 0, "{allocs} allocations over {steps} steps");
}

/// One step of node 2 at `now`, the way the server sends it, with the
/// events it makes. Counts only what the session allocates: the frames
/// are built and the event list reserved before.
fn step_out(session: &mut Session, step: u32, now: Instant) -> (u64, Vec<Event>) {
    let frames = [snapshot(2, step, 1000), progress(2, step, 1000)];
    let mut events = Vec::with_capacity(16);
    let allocs = allocations(|| {
        for frame in frames {
            session.handle_frame(frame, now);
        }
        while let Some(event) = session.poll_event() {
            events.push(event);
        }
    });
    (allocs, events)
}

fn progress_of(events: &[Event]) -> &ProgressUpdate {
    match events {
        [Event::Progress(p)] => p,
        other => panic!("expected one progress update, got {other:?}"),
    }
}

/// Steps far enough apart that the throttle lets each one out: building
/// and handing out the update allocates nothing, and the ids of every
/// event of the node (progress, finish) are one allocation, the record's.
fn emitted(ours: bool) {
    let start = Instant::now();
    let mut session = running(ours, start);
    // The node's first step makes its throttle key (the table's entries,
    // not its strings); the steps after it are the steady case.
    let (_, first) = step_out(&mut session, 1, start + Duration::from_secs(1));
    let (second_allocs, second) = step_out(&mut session, 2, start + Duration::from_secs(2));
    let (third_allocs, _) = step_out(&mut session, 3, start + Duration::from_secs(3));
    let (a, b) = (progress_of(&first), progress_of(&second));
    assert_eq!((a.value, b.value), (1.0, 2.0));
    assert_eq!((&*b.prompt_id, &*b.node), (PROMPT, "2"));
    assert_eq!(
        (second_allocs, third_allocs),
        (0, 0),
        "an emitted progress update allocated"
    );
    assert!(Arc::ptr_eq(&a.prompt_id, &b.prompt_id));
    assert!(Arc::ptr_eq(&a.node, &b.node));
    // The display node is the node itself here: one allocation for both.
    assert!(Arc::ptr_eq(b.display_node.as_ref().unwrap(), &b.node));

    // Node 3 starts, so node 2 finishes: its lifecycle events carry the
    // same strings as its progress did.
    session.handle_frame(snapshot(3, 0, 1), start + Duration::from_secs(4));
    let mut finished = None;
    let mut started = None;
    while let Some(event) = session.poll_event() {
        match event {
            Event::NodeFinished { prompt_id, node } => finished = Some((prompt_id, node)),
            Event::NodeStarted { prompt_id, .. } => started = Some(prompt_id),
            _ => {}
        }
    }
    let (prompt_id, node) = finished.expect("node 2 finished");
    assert!(Arc::ptr_eq(&prompt_id, &a.prompt_id));
    assert!(Arc::ptr_eq(&node, &a.node));
    assert!(Arc::ptr_eq(&started.expect("node 3 started"), &a.prompt_id));
}

#[test]
fn emitted_updates_of_our_own_prompt_share_the_records_ids() {
    emitted(true);
}

#[test]
fn emitted_updates_of_another_clients_prompt_share_the_records_ids() {
    emitted(false);
}
