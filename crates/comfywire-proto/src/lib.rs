//! # comfywire-proto
//!
//! The sans-IO core of comfywire, a client for ComfyUI's real-time API.
//! It holds everything the client *knows* about the protocol — the typed
//! parser of every text and binary message, the connection state machine
//! with backoff, heartbeat, polling fallback and the deaf-socket watchdog,
//! the per-prompt execution tracker, the progress and preview throttles,
//! the history ring and reconciliation over HTTP answers — as pure logic.
//!
//! It is **not** a client: it opens no socket, spawns no task and never
//! reads a clock. Time comes in as `now`, frames come in as [`Frame`]
//! values, and what must happen on the wire goes out as [`Command`]s.
//! `comfywire-client` drives it with tokio; any other runtime (a Swift app
//! with its own WebSocket, a test with fake time) can drive it the same way.
//!
//! ## Where things are
//!
//! Every public type is re-exported at the crate root; the only public
//! modules are [`trace`] (the recorded-session format), [`throttle`]
//! (the per-(prompt, node) rate limiter) and [`websocket`] (RFC 6455
//! framing as a client reads and writes it, which `comfywire-client`'s
//! driver reads the socket with), whose types are not. Inside, one
//! concept per module: `session/` ([`Session`]; `disconnected.rs` follows
//! prompts over HTTP while the socket is down), `state.rs` (connection
//! states and errors), `backoff.rs` and `rng.rs` (reconnect delays, jitter
//! from a seeded SplitMix64), `frame.rs` ([`Frame`] and the binary event
//! types), `message.rs` (typed messages), `parse.rs` (the total parser),
//! `hot/` (the allocation-free readers of `progress`, `progress_state`,
//! `executing`, `executed` and previews, which the session calls through
//! one entry point before the parser), `tracker.rs` (one handler per
//! message kind), `record.rs` (the [`ExecutionRecord`] it keeps per
//! prompt), `output.rs` (a node's UI output as the server's JSON text,
//! [`NodeOutput`], shared by the event and the record; the tree is built
//! on request), `outbox.rs` (the events going
//! out, through the throttles), `event.rs`, `history.rs` (the ring of
//! finished records), `reconcile.rs` (the HTTP requests and answers of
//! reconciliation), `replay.rs` (a trace replayed into a session),
//! `hash.rs` (the fast hasher of the tracker's maps) and `error.rs`.
//!
//! ## The run loop
//!
//! [`Session`] methods come in four kinds:
//! getters (`state`, `execution`, `history`), `handle_*(…, now)` inputs,
//! mutators (`connect`, `track_prompt`, `retry_now`, `pause`, `close`) and
//! `poll_*` outputs. After any input or mutation, drain
//! [`Session::poll_command`] (perform each), then [`Session::poll_event`]
//! (deliver each), then sleep until [`Session::poll_timeout`] or the next
//! input, and call [`Session::handle_timeout`] when the deadline passes.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use comfywire_proto::{Command, Event, Frame, HttpReply, Session, SessionConfig};
//!
//! let mut now = Instant::now();
//! let mut session = Session::new(SessionConfig {
//!     client_id: Some("c1".into()),
//!     ..SessionConfig::default()
//! });
//! session.connect(now);
//! assert_eq!(session.poll_command(), Some(Command::Connect { client_id: Some("c1".into()) }));
//! session.handle_connected(now);
//! assert!(matches!(session.poll_command(), Some(Command::SendText(t)) if t.contains("feature_flags")));
//!
//! session.track_prompt("p1", Some(1), now);
//! session.handle_http(HttpReply::PromptAccepted {
//!     prompt_id: "p1".into(), number: Some(0), node_errors: serde_json::json!({}),
//! }, now);
//! for text in [
//!     r#"{"type": "execution_start", "data": {"prompt_id": "p1", "timestamp": 1}}"#,
//!     r#"{"type": "execution_cached", "data": {"nodes": [], "prompt_id": "p1", "timestamp": 2}}"#,
//!     r#"{"type": "executing", "data": {"node": "9", "display_node": "9", "prompt_id": "p1"}}"#,
//!     r#"{"type": "executed", "data": {"node": "9", "display_node": "9", "prompt_id": "p1", "output": {"images": [{"filename": "a.png", "subfolder": "", "type": "output"}]}}}"#,
//!     r#"{"type": "execution_success", "data": {"prompt_id": "p1", "timestamp": 3}}"#,
//!     r#"{"type": "executing", "data": {"node": null, "prompt_id": "p1"}}"#,
//! ] {
//!     now += Duration::from_millis(5);
//!     session.handle_frame(Frame::text(text), now);
//! }
//! let finished: Vec<_> = std::iter::from_fn(|| session.poll_event())
//!     .filter(Event::is_terminal)
//!     .collect();
//! assert_eq!(finished.len(), 1);
//! let record = session.execution("p1").unwrap();
//! assert_eq!(record.phase.name(), "succeeded");
//! // The output is the server's JSON text; the tree is built on request.
//! let output = record.outputs.get("9").unwrap();
//! assert_eq!(output.to_value()["images"][0]["filename"], "a.png");
//! ```
//!
//! Siblings: `comfywire-client` (the tokio driver and HTTP API),
//! `comfywire-mock` (a ComfyUI stand-in replaying recorded sessions),
//! `comfywire-host` (what every language binding shares).
#![forbid(unsafe_code)]

mod backoff;
mod error;
mod event;
mod frame;
mod hash;
mod history;
mod hot;
mod message;
mod outbox;
mod output;
mod parse;
mod reconcile;
mod record;
mod replay;
mod rng;
mod session;
mod state;
pub mod throttle;
pub mod trace;
mod tracker;
pub mod websocket;

pub use backoff::BackoffConfig;
pub use error::ParseError;
pub use event::{Event, EventKind, PreviewImage, ProgressUpdate};
pub use frame::{BINARY_PREVIEW, BINARY_PREVIEW_WITH_METADATA, BINARY_PROGRESS_TEXT, Frame};
pub use history::{HistoryRing, approx_json_bytes};
pub use message::{
    DisplayComponent, Executed, Executing, ExecutionCached, ExecutionError, ExecutionInterrupted,
    ExecutionStart, ExecutionSuccess, ImageFormat, LogEntry, Logs, NodeProgress, NodeRunState,
    Preview, PreviewMetadata, PreviewWithMetadata, Progress, ProgressState, ProgressText,
    ServerMessage, Status, Unknown, feature_flags_message,
};
pub use outbox::OutboxStats;
pub use output::{NodeOutput, Outputs};
pub use parse::{parse_frame, parse_text};
pub use reconcile::{
    HistoryEntry, HistoryOutcome, HttpReply, HttpRequest, QueueItem, QueueSnapshot,
};
pub use record::{ExecutionRecord, NodePhase, NodeRecord, Outcome, Phase};
pub use replay::{Replay, ReplayOptions, replay};
pub use rng::Rng;
pub use session::{Command, Session, SessionConfig, SessionStats, Timeout, TimerReason};
pub use state::{ConnectionError, ConnectionState, ConnectionStatus};
pub use tracker::Tracker;
