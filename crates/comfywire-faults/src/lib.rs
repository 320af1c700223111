//! # comfywire-faults
//!
//! Test-only proof that comfywire never loses a result. It drives the real
//! client against the mock server under random, seeded fault schedules
//! ([`schedule`], [`run`]), optionally through a byte-level fault
//! [`proxy`], and in a killable client [`process`]; feeds random
//! interleavings of recorded frames, disconnects, duplicates and HTTP
//! replies straight into the sans-IO `Session` ([`sansio`]); and answers
//! reconciliation requests with HTTP errors from a tiny hand-written server
//! ([`stub_http`]).
//!
//! Every schedule is checked against the server's truth, the mock's ledger
//! of what it enqueued and ran ([`accounting`]): each prompt the server
//! enqueued for a client reaches exactly one terminal event in it, none
//! ran twice, each "not submitted" is one the server never enqueued; and
//! against the other [`invariants`]: nothing after the end, no hang past
//! the deadline, bounded memory. There are no excused failures: a hang is
//! a failure.
//!
//! It is not part of the library: nothing depends on it. A failing seed
//! is printed and replays with `COMFYWIRE_SEED=<seed>`; `COMFYWIRE_SCHEDULES`
//! sets how many schedules the long mode runs; `COMFYWIRE_DEBUG=1` prints a
//! schedule's events, plan and ledger.
#![forbid(unsafe_code)]

pub mod accounting;
pub mod invariants;
pub mod journal;
pub mod memory;
pub mod prng;
pub mod process;
pub mod proxy;
pub mod run;
pub mod sansio;
pub mod schedule;
pub mod stub_http;
pub mod tally;
