//! # comfywire-c
//!
//! The C ABI of comfywire (`libcomfywire.so` / `libcomfywire.a`, header
//! `include/comfywire.h`). It is a thin shell: every function maps C types
//! onto `comfywire-host` — its job API ([`Jobs`](comfywire_host::Jobs),
//! made blocking with [`block_on`](comfywire_host::block_on)) and its
//! [`HostClient`](comfywire_host::HostClient), which owns the runtime, the
//! dispatcher thread, subscriptions and the error codes. Nothing here talks
//! to the network, keeps protocol state or decides a job rule.
//!
//! What lives here is what only C needs: the panic boundary around every
//! `extern "C"` body ([`panic`](mod@panic)) and the few shapes a call takes
//! on it (an object argument, an out-parameter, an object handed out: the
//! private `call` module), status codes and the per-thread
//! last error ([`status`]), pointer and string arguments, out-parameters and
//! owned results ([`strings`]), the `user_data` / free-function pair of
//! callbacks ([`callback`]), owned records with borrowed accessors
//! ([`event`], [`outcome`]), and one `extern "C"` function per call of the
//! job API ([`client`], [`jobs`], [`job_events`], [`files`]), and of the pool's
//! ([`pool`](mod@pool), over the host's `HostPool`).
//!
//! # Safety
//!
//! One contract holds for every function: each pointer argument is NULL or
//! valid for the access its name implies (a live object, a readable array
//! of the given length, a writable out-parameter) for the duration of the
//! call, and strings are NUL-terminated UTF-8. A function has a
//! `# Safety` section of its own only for what it adds to this contract
//! (the header's preamble says the same once for C readers).
#![deny(unsafe_op_in_unsafe_fn)]
// The contract above is every function's; a per-function copy of it (47 of
// them) said nothing more.
#![allow(clippy::missing_safety_doc)]

mod call;
pub mod callback;
pub mod client;
pub mod event;
pub mod files;
pub mod job_events;
pub mod jobs;
pub mod options;
pub mod outcome;
pub mod panic;
pub mod pool;
pub mod status;
pub mod strings;
