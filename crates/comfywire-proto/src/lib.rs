//! comfywire-proto: the sans-IO core of comfywire.
#![forbid(unsafe_code)]

pub mod trace;
