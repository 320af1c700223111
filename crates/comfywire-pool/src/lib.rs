//! # comfywire-pool
//!
//! One client over many ComfyUI servers. A ComfyUI server runs one prompt
//! at a time; a [`Pool`] keeps one [`comfywire_client::Client`] per server
//! and gives each submission to the healthy server with the least work
//! (its queue from `status` frames plus the pool's own prompts there, over
//! its weight; ties in turn) that has every node class the workflow uses.
//!
//! **Failover.** A server that is unreachable (its socket down longer than
//! [`PoolConfig::grace`] and its HTTP not answering either: a server whose
//! HTTP answers is followed over HTTP by its client, and moving its
//! prompts would run them twice), or that answers it no longer has a
//! prompt (a restart), gives up its prompts: those still *queued* there are
//! submitted again, under the same prompt id, to another server; those
//! that were *running* end as `Lost`, naming the server, unless
//! [`PoolConfig::resubmit_running`] moves them too. Whatever happens, a
//! pool submission has exactly one terminal outcome ([`Pool::wait`],
//! [`PoolEvent::Finished`]), with the servers it went to and why it moved.
//!
//! A prompt counts as never started only when the pool knows it: its
//! client never saw it start, and the server's queue (read over HTTP while
//! the socket was down) did not hold it during that outage. One the server
//! held while its socket was down may have run unseen before the server
//! forgot it or went away, so it is treated like a running one.
//!
//! **Never twice where it can be known.** When a server that lost a prompt
//! comes back still holding it queued, the pool deletes it there, and
//! interrupts it if it already started there; only a true partition (both
//! servers running it before either can tell) runs a prompt twice, and the
//! caller still sees one outcome.
//!
//! The proto core knows nothing of pools: this crate sits above
//! `comfywire-client` and uses only its public API.

mod config;
mod error;
mod job;
mod pool;
mod server;
mod submitted;

pub use config::{PoolConfig, ServerSpec};
pub use error::PoolError;
pub use pool::{Move, Pool, PoolEvent, PoolOutcome, ServerStats};
