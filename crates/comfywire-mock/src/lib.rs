//! A mock ComfyUI server (0.3.64 wire behaviour) that replays real recorded
//! sessions, with faults a client test can inject.
//!
//! HTTP and the `/ws` WebSocket share one port, like the real server.
//! Submitted graphs are matched to a recorded prompt and that prompt's frames
//! are replayed with the new prompt id; see [`MockServer`].
//!
//! Besides ComfyUI's state, the server keeps its own [`Ledger`] of every
//! `POST /prompt` (what it enqueued under which id, how often it ran it, how
//! it ended), for tests that check a client's outcomes against the truth.
//! Faults come from [`MockServer::inject`] or `POST /mock/fault`; the
//! crate's `README.md` lists every control route and fault as JSON.
//!
//! It is not a ComfyUI: no graph is executed. The client under test lives in
//! `comfywire-client`; the fault schedules that drive both are
//! `comfywire-faults`.

mod binary;
mod fault;
mod firehose;
mod hostile;
mod ids;
mod ledger;
mod mix;
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

pub use fault::{CutAt, Fault};
pub use hostile::{Flood, HostileBody, HostileHttp};
pub use ledger::{DEFAULT_CAPACITY as LEDGER_CAPACITY, Ledger, LedgerEntry, ReplyFate, RunEnd};
pub use mix::{Mix, Snapshots};
pub use server::{MockConfig, MockServer, TraceSource};
pub use stats::MockStats;
