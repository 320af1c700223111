//! # comfywire-wasm
//!
//! `comfywire-proto`'s [`Session`](comfywire_proto::Session) compiled to
//! WebAssembly for a driver written in TypeScript (`js/`, the `comfywire`
//! npm package). The browser's own event loop drives it: its `WebSocket`,
//! `fetch` and timers perform the session's commands, and time comes in as
//! milliseconds from `performance.now()`.
//!
//! It is **not** a client: it opens no socket, makes no request and sets no
//! timer (no tokio, no reqwest). It converts between JavaScript values and
//! the core's types, and nothing else: the protocol's rules (backoff,
//! polling fallback, reconciliation, one terminal event per prompt, the
//! 16 ms progress throttle, the ring of 100) all live in `comfywire-proto`.
//! The job API (submit, wait, queue, upload) lives in the TypeScript
//! package, which performs the HTTP calls.
//!
//! ## The run loop, from JavaScript
//!
//! After any `handle_*` input or mutator, call
//! [`WasmSession::drain_commands`] and perform each command, then
//! [`WasmSession::drain_events`] and deliver each event, then arm one timer
//! for [`WasmSession::next_timeout`] and call
//! [`WasmSession::handle_timeout`] when it fires.
//!
//! Bad input (malformed options, non-JSON bodies where JSON is required)
//! comes back as a thrown `Error` whose `name` is `ComfywireCoreError` and
//! whose `code` is one of [`CoreError`]'s stable codes; nothing panics
//! across the boundary.
#![forbid(unsafe_code)]

mod clock;
pub mod dto;
mod error;
mod options;
mod session;

pub use error::CoreError;
pub use options::{BackoffOptions, SessionOptions};
pub use session::WasmSession;
