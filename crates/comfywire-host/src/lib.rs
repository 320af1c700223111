//! # comfywire-host
//!
//! What the Python, C and Swift/Kotlin bindings share, so they have one set
//! of semantics instead of three that drift apart: the process's one tokio
//! runtime ([`runtime()`]), one dispatcher thread per client that runs
//! callbacks in order (never on a runtime worker, never under a lock),
//! callback handles that unregister on cancel or drop, a blocking facade
//! ([`HostClient`]), flat records ([`HostEvent`], [`HostOutcome`],
//! [`HostStatus`]) and one error type with stable codes ([`HostError`],
//! [`ErrorCode`]).
//!
//! It has no pyo3, uniffi or libc in it; the bindings are thin shells over
//! it. The client itself is `comfywire-client`; the protocol logic is
//! `comfywire-proto`.
#![forbid(unsafe_code)]

mod client;
mod dispatch;
mod error;
mod record;
mod runtime;

pub use client::{HostClient, HostFile, HostQueue, HostStats, HostSubmission, outcome_result};
pub use comfywire_client;
pub use dispatch::{CallbackHandle, DispatchContext, EventCallback, LazyFlat};
pub use error::{ErrorCode, HostError};
pub use record::{
    CALLBACK_ERROR, HostEvent, HostExecutionError, HostNode, HostOutcome, HostStatus,
};
pub use runtime::{on_runtime_thread, runtime};
