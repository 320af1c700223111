//! # comfywire-c
//!
//! The C ABI of comfywire (`libcomfywire.so` / `libcomfywire.a`, header
//! `include/comfywire.h`). It is a thin shell: every function maps C types
//! onto `comfywire-host`'s [`HostClient`](comfywire_host::HostClient), which
//! owns the runtime, the dispatcher thread, subscriptions and the error
//! codes. Nothing here talks to the network or keeps protocol state.
//!
//! What lives here is what only C needs: the panic boundary around every
//! `extern "C"` body ([`panic`](mod@panic)), status codes and the per-thread last error
//! ([`status`]), C strings ([`strings`]), the `user_data` / free-function
//! pair of callbacks ([`callback`]), and owned records with borrowed
//! accessors ([`event`], [`outcome`]).
#![deny(unsafe_op_in_unsafe_fn)]

pub mod callback;
pub mod client;
pub mod event;
pub mod options;
pub mod outcome;
pub mod panic;
pub mod status;
pub mod strings;
