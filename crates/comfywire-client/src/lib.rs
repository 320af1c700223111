//! # comfywire-client
//!
//! The tokio driver of comfywire. It owns the WebSocket (TCP or rustls,
//! the upgrade through tungstenite, frames decoded in place from one read
//! buffer by `comfywire-proto`'s decoder, so a `progress` frame costs no
//! copy), the one HTTP client (reqwest) and the clock the
//! protocol core is driven by, and drives `comfywire-proto`'s `Session`
//! with them: reconnect on the backoff schedule, heartbeat, polling
//! fallback, silence probes and the deaf-socket watchdog, reconciliation
//! over `/history` and `/queue`, and confirmation of submissions whose
//! answer was lost, so that every prompt the server accepted reaches exactly
//! one terminal event. The job API every binding uses is written once above
//! it, in `comfywire-host`.
//!
//! Recorders and debugging tools can also see the wire itself: with
//! [`ClientConfig::frame_tap_capacity`] set, [`Client::frame_tap`] hands out
//! a bounded [`FrameTap`] of every frame the driver reads or sends, with
//! socket openings and closings (`comfywire record` writes it as a trace).
//! Without it the frame path does no extra work.
//!
//! An app that must not lose a prompt to its own crash names a journal
//! ([`ClientConfig::journal`]): prompt ids are written before they are
//! sent and marked when they end, and a client started again with the
//! same journal attaches the unfinished ones ([`Client::resumed`]).
//!
//! It is **not** the protocol logic (that is `comfywire-proto`, which this
//! crate re-exports as [`proto`]) and not a language binding (those share
//! `comfywire-host`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), comfywire_client::Error> {
//! use comfywire_client::{Client, ClientConfig};
//! let client = Client::connect(ClientConfig::new("http://127.0.0.1:8188")).await?;
//! let workflow = serde_json::json!({"1": {"class_type": "EmptyImage", "inputs": {}}});
//! let result = client.run(&workflow).await?;
//! for file in result.files() {
//!     let bytes = client.view(&file).await?;
//!     println!("{} ({} bytes)", file.filename, bytes.len());
//! }
//! client.close().await;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod client;
mod config;
mod driver;
mod endpoints;
mod error;
mod fanout;
mod handshake;
mod http;
mod job;
mod journal;
pub mod json;
mod lean;
mod panic;
mod settings;
mod socket;
mod tap;
#[cfg(feature = "tls")]
mod tls;

pub use client::{Client, ClientStats, Submission, SubmitOptions, UploadOptions};
pub use comfywire_proto as proto;
pub use comfywire_proto::{
    ConnectionError, ConnectionState, ConnectionStatus, Event, EventKind, ExecutionRecord,
    NodePhase, Outcome, Phase, QueueItem, QueueSnapshot,
};
pub use config::{
    Auth, BodyLimits, ClientConfig, DEFAULT_MAX_MESSAGE_SIZE, Deadlines, MAX_DURATION,
};
pub use endpoints::{new_client_id, new_uuid, redact, without_credentials};
pub use error::{DeadlineKind, Error, NodeValidationError, ValidationError};
pub use fanout::{End, Filter, FilterHandle, Subscription};
pub use job::{FileRef, RunResult, files, output_files};
pub use panic::panic_message;
pub use settings::{BasicAuth, ENV_VARS, ServerSettings, Settings};
pub use socket::READ_BUFFER_BYTES;
pub use tap::{ClosedBy, FrameTap, TapEvent, TapEventKind};
