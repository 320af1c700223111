//! # comfywire-client
//!
//! The tokio driver of comfywire. It owns the WebSocket
//! (tokio-tungstenite), the one HTTP client (reqwest) and the only clock,
//! and drives `comfywire-proto`'s `Session` with them: reconnect on the
//! backoff schedule, heartbeat, polling fallback, deaf-socket watchdog and
//! reconciliation over `/history` and `/queue`, so that every submitted
//! prompt reaches exactly one terminal event.
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
mod http;
mod job;
pub mod json;
#[cfg(feature = "tls")]
mod tls;

pub use client::{Client, ClientStats, Submission, SubmitOptions, UploadOptions};
pub use comfywire_proto as proto;
pub use comfywire_proto::{
    ConnectionError, ConnectionState, ConnectionStatus, Event, EventKind, ExecutionRecord,
    NodePhase, Outcome, Phase, QueueItem, QueueSnapshot,
};
pub use config::{Auth, BasicAuth, ClientConfig, Deadlines, ENV_VARS, Settings};
pub use endpoints::{new_client_id, new_uuid, redact};
pub use error::{DeadlineKind, Error, NodeValidationError, ValidationError};
pub use fanout::{Filter, FilterHandle, Subscription};
pub use job::{FileRef, RunResult, files, output_files};
