//! A mock ComfyUI server (0.3.64 wire behaviour) that replays real recorded
//! sessions, with faults a client test can inject.
//!
//! HTTP and the `/ws` WebSocket share one port, like the real server.
//! Submitted graphs are matched to a recorded prompt and that prompt's frames
//! are replayed with the new prompt id; see [`MockServer`].

mod binary;
mod fault;
mod firehose;
mod hostile;
mod ids;
mod multipart;
mod playback;
mod png;
mod pyjson;
mod rewrite;
mod routes;
mod scenario;
mod server;
mod state;
mod stats;
mod ws;

pub use fault::Fault;
pub use hostile::{Flood, HostileBody, HostileHttp};
pub use server::{MockConfig, MockServer, TraceSource};
pub use stats::MockStats;
