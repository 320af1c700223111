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

pub use config::{PoolConfig, ServerSpec};
pub use error::PoolError;
pub use pool::{Move, Pool, PoolEvent, PoolOutcome, ServerStats};
