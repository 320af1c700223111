//! # comfywire-host
//!
//! The whole job API of comfywire, written once for every binding (Python,
//! C, Swift/Kotlin): [`Jobs`] (async: submit, run and wait with deadlines,
//! queue, interrupt, history, `/view`, downloads, uploads, lifecycle
//! hints), [`block_on`] for front ends that block and [`spawn`] for those
//! with an executor of their own, and [`HostClient`], which adds one
//! dispatcher thread per client that runs callbacks in order (never on a
//! runtime worker, never under a lock; callbacks may call back into their
//! client), callback handles that unregister on cancel or drop, a pull
//! queue and pull streams ([`EventStream`]). The process has one tokio
//! runtime ([`runtime()`]) that every binding uses; [`log`] hands the debug
//! log to a binding's logger.
//!
//! Bindings depend on this crate only and map its typed flat model
//! ([`HostEvent`], [`HostOutcome`], [`HostStatus`], ...) and its one error
//! ([`HostError`] with stable [`ErrorCode`]s) into their language; no job
//! rule lives in a binding. There is no pyo3 or libc in it, and uniffi
//! only behind the feature `uniffi`, which derives the model's records for
//! `comfywire-uniffi` (module `ffi` when it is on). The client itself is
//! `comfywire-client`; the protocol logic is `comfywire-proto`.
//!
//! [`HostPool`] is the same for a pool of servers (`comfywire-pool`):
//! submit, run and wait with a time limit, interrupt, per-server figures,
//! a pull queue of events tagged with their server (flat for Swift and
//! Kotlin: [`HostPoolEventRecord`]), and one flat outcome per submission
//! ([`HostPoolOutcome`]).
#![forbid(unsafe_code)]

mod client;
mod dispatch;
mod error;
mod forward;
mod jobs;
pub mod log;
mod model;
mod options;
mod pool;
mod runtime;
mod stream;

pub use client::{Delivered, HostClient};
pub use dispatch::{
    CallbackHandle, DispatchContext, EventCallback, Interest, LazyFlat, PlainContext, kind_list,
};
pub use error::{ErrorCode, HostError, validation_detail};
pub use jobs::{Cancelled, JobOptions, Jobs, UploadSpec, outcome_result, parse_json};
pub use model::{
    CALLBACK_ERROR, HostEvent, HostEventKind, HostExecutionError, HostFile, HostNode, HostOutcome,
    HostQueue, HostQueueItem, HostStats, HostStatus, HostSubmission,
};
pub use options::{ClientOptions, PoolOptions, PoolServer};
pub use pool::{
    HostMove, HostPool, HostPoolEvent, HostPoolEventRecord, HostPoolOutcome, HostServerStats,
    pool_outcome_result,
};
pub use runtime::{Spawned, block_on, blocking_runtime, on_runtime_thread, runtime, spawn};
pub use stream::EventStream;

// Feature `uniffi`: the model's records and custom types ([`model::ffi`])
// form the uniffi component `comfywire_host` of the Swift/Kotlin bindings.
#[cfg(feature = "uniffi")]
pub use model::ffi;
#[cfg(feature = "uniffi")]
uniffi::setup_scaffolding!("comfywire_host");

/// The client's own event model, for bindings that map events without the
/// flat record (Python builds its objects straight from these).
pub mod event {
    pub use comfywire_client::proto::{PreviewImage, ProgressUpdate, ServerMessage};
    pub use comfywire_client::{
        ConnectionState, Event, EventKind, ExecutionRecord, NodePhase, Outcome, Phase,
    };
}

pub use comfywire_client::{ClientConfig, ServerSettings, Settings, Subscription, panic_message};
