//! `comfywire_job_events`: one prompt's events, pulled one at a time, from
//! its submission to its `finished` (the host's job stream: replayed from
//! the client's record, then live, so it never misses the end).

use std::ffi::c_char;
use std::time::Duration;

use comfywire_host::EventStream;

use crate::call::{Object, with_out};
use crate::client::Client;
use crate::event::Event;
use crate::panic::{ffi_free, into_raw};
use crate::status::Status;
use crate::strings::str_arg;

/// The events of one prompt. Make it with comfywire_job_events_new(), read it
/// with comfywire_job_events_next(), free it with comfywire_job_events_free().
pub struct JobEvents {
    stream: EventStream,
}

impl Object for JobEvents {
    const NAME: &'static str = "events";
}

/// The events of `prompt_id` from its submission on: the first reads
/// replay what the client already knows of it (queued, started, cached
/// nodes, outputs, its end; a prompt the client does not track is
/// attached), then live events follow, and the stream ends after the
/// prompt's `finished` event, however late it was made. Sets `*out_events`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_job_events_new(
    client: *const Client,
    prompt_id: *const c_char,
    out_events: *mut *mut JobEvents,
) -> Status {
    let make = |c: &Client| {
        // SAFETY: the general contract.
        let stream = c
            .jobs()
            .job_stream(unsafe { str_arg(prompt_id, "prompt_id") }?)?;
        Ok(Some(into_raw(JobEvents { stream })))
    };
    // SAFETY: the general contract.
    unsafe { with_out(client, out_events, std::ptr::null_mut(), "out_events", make) }
}

/// Waits up to `timeout_ms` for the prompt's next event (0 polls). Sets
/// `*out_event` to an event owned by the caller (free it with
/// comfywire_event_free()), or to NULL when none came in time (still
/// COMFYWIRE_OK). Returns COMFYWIRE_CLOSED once the stream ended: after its
/// `finished` event was read, or when the client closed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_job_events_next(
    events: *const JobEvents,
    timeout_ms: u32,
    out_event: *mut *mut Event,
) -> Status {
    let timeout = Duration::from_millis(u64::from(timeout_ms));
    // SAFETY: the general contract.
    unsafe {
        with_out(events, out_event, std::ptr::null_mut(), "out_event", |e| {
            let next = e.stream.next_event(timeout)?;
            Ok(next.map(|d| into_raw(Event::new(d.flat(), d))))
        })
    }
}

/// Frees the stream (its subscription ends). NULL is ignored.
///
/// # Safety
/// `events` is NULL or a stream not freed yet, which no other thread uses
/// any more.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_job_events_free(events: *mut JobEvents) {
    // SAFETY: it came from `into_raw` and is freed once.
    unsafe { ffi_free(events) }
}
