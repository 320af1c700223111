//! `comfywire_event`: an owned event with borrowed accessors, and the pull
//! API for hosts that run their own loop.

use std::ffi::{CString, c_char};
use std::sync::OnceLock;
use std::time::Duration;

use comfywire_host::{Delivered, HostError, HostEvent};

use crate::client::{Client, client_arg};
use crate::panic::{ffi_status, ffi_value, ffi_void};
use crate::status::Status;
use crate::strings::{Out, to_cstring};

/// One event. Owned by the caller when it came from comfywire_next_event()
/// or comfywire_event_clone() (free it with comfywire_event_free());
/// borrowed for the duration of the call when handed to a callback.
pub struct Event {
    source: Delivered,
    inner: HostEvent,
    kind: CString,
    prompt_id: Option<CString>,
    node: Option<CString>,
    display_node: Option<CString>,
    text: Option<CString>,
    json: Option<CString>,
    mime: Option<CString>,
    // Built on first request: most hosts never ask for the whole object.
    full_json: OnceLock<CString>,
}

impl Event {
    /// Wraps a delivered event and its flat record, preparing the C strings
    /// its accessors lend out.
    pub(crate) fn new(source: Delivered, inner: HostEvent) -> Event {
        let c = |s: &Option<String>| s.clone().map(to_cstring);
        // The payload: an output dict, the outcome of a finished prompt,
        // the status of a connection change, or the event's other data.
        let payload = match (&inner.outcome, &inner.status, &inner.data) {
            (Some(outcome), _, _) => Some(outcome.to_json()),
            (_, Some(status), _) => Some(status.to_json()),
            (_, _, data) => data.clone(),
        };
        Event {
            kind: to_cstring(inner.kind.name().to_owned()),
            prompt_id: c(&inner.prompt_id),
            node: c(&inner.node),
            display_node: c(&inner.display_node),
            text: c(&inner.text),
            json: payload.map(|v| to_cstring(v.to_string())),
            mime: c(&inner.mime),
            full_json: OnceLock::new(),
            source,
            inner,
        }
    }
}

fn opt_ptr(s: &Option<CString>) -> *const c_char {
    s.as_ref().map_or(std::ptr::null(), |s| s.as_ptr())
}

/// Reads a field of a possibly-NULL event.
///
/// # Safety
/// `event` is NULL or a live event.
unsafe fn with_event<T: Copy>(
    event: *const Event,
    fallback: T,
    read: impl FnOnce(&Event) -> T,
) -> T {
    ffi_value(fallback, || {
        // SAFETY: the caller guarantees NULL or a live event; NULL maps to
        // None and yields the fallback.
        match unsafe { event.as_ref() } {
            Some(event) => read(event),
            None => fallback,
        }
    })
}

/// Waits up to `timeout_ms` for the next event of `client` (0 polls).
/// Sets `*out_event` to the event, or to NULL when none arrived in time
/// (still COMFYWIRE_OK). Events are queued from the first call on; progress
/// and previews are coalesced when not pulled fast enough, lifecycle and
/// terminal events never. Returns COMFYWIRE_CLOSED once the client is closed.
///
/// Ownership: the caller owns `*out_event` and frees it with
/// comfywire_event_free().
///
/// # Safety
/// `client` is NULL or a live client; `out_event` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_next_event(
    client: *const Client,
    timeout_ms: u32,
    out_event: *mut *mut Event,
) -> Status {
    ffi_status(|| {
        // SAFETY: forwarded from this function's contract.
        let out = unsafe { Out::new(out_event, std::ptr::null_mut(), "out_event") }?;
        // SAFETY: forwarded from this function's contract.
        let client = unsafe { client_arg(client) }?;
        let timeout = Duration::from_millis(u64::from(timeout_ms));
        if let Some(delivered) = client.host.next_event(timeout)? {
            let flat = delivered.flat();
            out.set(Box::into_raw(Box::new(Event::new(delivered, flat))));
        }
        Ok(())
    })
}

/// Copies an event, e.g. to keep one a callback was lent. NULL gives NULL.
///
/// Ownership: the caller owns the copy; free it with comfywire_event_free().
///
/// # Safety
/// `event` is NULL or a live event.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_event_clone(event: *const Event) -> *mut Event {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        with_event(event, std::ptr::null_mut(), |e| {
            Box::into_raw(Box::new(Event::new(e.source.clone(), e.inner.clone())))
        })
    }
}

/// Frees an event from comfywire_next_event() or comfywire_event_clone().
/// NULL is ignored. Never free an event lent to a callback.
///
/// # Safety
/// `event` is NULL or an owned event not freed yet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_event_free(event: *mut Event) {
    ffi_void(|| {
        if !event.is_null() {
            // SAFETY: per the contract it came from Box::into_raw here and
            // is freed once.
            drop(unsafe { Box::from_raw(event) });
        }
    });
}

/// The event kind: `connection`, `status`, `feature_flags`, `prompt_queued`,
/// `execution_started`, `nodes_cached`, `node_started`, `progress`,
/// `preview`, `progress_text`, `output`, `node_finished`, `blocked`,
/// `finished`, `message`, `bad_frame`, `http_failed`, or `callback_error`.
/// Never NULL for a non-NULL event.
///
/// # Safety
/// `event` is NULL or a live event.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_event_kind(event: *const Event) -> *const c_char {
    // SAFETY: forwarded from this function's contract.
    unsafe { with_event(event, std::ptr::null(), |e| e.kind.as_ptr()) }
}

/// The prompt the event belongs to, or NULL.
///
/// # Safety
/// `event` is NULL or a live event.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_event_prompt_id(event: *const Event) -> *const c_char {
    // SAFETY: forwarded from this function's contract.
    unsafe { with_event(event, std::ptr::null(), |e| opt_ptr(&e.prompt_id)) }
}

/// The node (node events, progress, previews, outputs, progress text), or NULL.
///
/// # Safety
/// `event` is NULL or a live event.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_event_node(event: *const Event) -> *const c_char {
    // SAFETY: forwarded from this function's contract.
    unsafe { with_event(event, std::ptr::null(), |e| opt_ptr(&e.node)) }
}

/// The node to show the event on (group nodes), or NULL.
///
/// # Safety
/// `event` is NULL or a live event.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_event_display_node(event: *const Event) -> *const c_char {
    // SAFETY: forwarded from this function's contract.
    unsafe { with_event(event, std::ptr::null(), |e| opt_ptr(&e.display_node)) }
}

/// Text: progress text, the connection state name, a terminal status
/// (`succeeded`, `failed`, ...), an error message; or NULL.
///
/// # Safety
/// `event` is NULL or a live event.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_event_text(event: *const Event) -> *const c_char {
    // SAFETY: forwarded from this function's contract.
    unsafe { with_event(event, std::ptr::null(), |e| opt_ptr(&e.text)) }
}

/// The JSON payload: an output dict (`output`), the outcome (`finished`),
/// the connection status (`connection`), feature flags, cached nodes, an
/// unknown message's data, a callback error's `{"failed_kind",
/// "subscription"}`; or NULL.
///
/// # Safety
/// `event` is NULL or a live event.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_event_json(event: *const Event) -> *const c_char {
    // SAFETY: forwarded from this function's contract.
    unsafe { with_event(event, std::ptr::null(), |e| opt_ptr(&e.json)) }
}

/// The whole event as one JSON object, the same object the `comfywire`
/// CLI prints with `--json` (`{"event": kind, "prompt_id": ..., ...}`, the
/// schema in the CLI's README), for logging or hosts that parse JSON anyway.
///
/// # Safety
/// `event` is NULL or a live event.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_event_to_json(event: *const Event) -> *const c_char {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        with_event(event, std::ptr::null(), |e| {
            e.full_json
                .get_or_init(|| to_cstring(e.source.to_json().to_string()))
                .as_ptr()
        })
    }
}

/// Step (progress), queue size (status), queue number (prompt_queued), 1 for a
/// recovered output; otherwise 0.
///
/// # Safety
/// `event` is NULL (gives 0) or a live event.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_event_value(event: *const Event) -> f64 {
    // SAFETY: forwarded from this function's contract.
    unsafe { with_event(event, 0.0, |e| e.inner.value) }
}

/// Total steps (progress); otherwise 0.
///
/// # Safety
/// `event` is NULL (gives 0) or a live event.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_event_max(event: *const Event) -> f64 {
    // SAFETY: forwarded from this function's contract.
    unsafe { with_event(event, 0.0, |e| e.inner.max) }
}

/// Whole-prompt progress in [0, 1] (progress, finished); otherwise 0.
///
/// # Safety
/// `event` is NULL (gives 0) or a live event.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_event_overall(event: *const Event) -> f64 {
    // SAFETY: forwarded from this function's contract.
    unsafe { with_event(event, 0.0, |e| e.inner.overall) }
}

/// The preview image of a `preview` event: sets `*out_data` and `*out_len`
/// (NULL and 0 for other events; still COMFYWIRE_OK).
///
/// Ownership: the bytes are borrowed from the event; valid until it is freed.
///
/// # Safety
/// `event` is NULL or a live event; the out pointers are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_event_preview(
    event: *const Event,
    out_data: *mut *const u8,
    out_len: *mut usize,
) -> Status {
    ffi_status(|| {
        // SAFETY: forwarded from this function's contract.
        let data = unsafe { Out::new(out_data, std::ptr::null(), "out_data") }?;
        // SAFETY: forwarded from this function's contract.
        let len = unsafe { Out::new(out_len, 0, "out_len") }?;
        // SAFETY: forwarded from this function's contract.
        let event = unsafe { event_arg(event) }?;
        if let Some(image) = &event.inner.image {
            data.set(image.as_ptr());
            len.set(image.len());
        }
        Ok(())
    })
}

/// The preview's MIME type (`image/jpeg`, `image/png`), or NULL.
///
/// # Safety
/// `event` is NULL or a live event.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_event_mime(event: *const Event) -> *const c_char {
    // SAFETY: forwarded from this function's contract.
    unsafe { with_event(event, std::ptr::null(), |e| opt_ptr(&e.mime)) }
}

/// Borrows a required event argument.
///
/// # Safety
/// `event` is NULL or a live event that outlives `'a`.
unsafe fn event_arg<'a>(event: *const Event) -> Result<&'a Event, HostError> {
    // SAFETY: forwarded from this function's contract.
    unsafe { event.as_ref() }.ok_or_else(|| crate::strings::null_error("event"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use comfywire_host::HostEventKind;

    #[test]
    fn accessors_lend_the_fields() {
        let report = HostEvent::callback_error(
            Some("p1".into()),
            HostEventKind::CallbackError,
            7,
            "boom".into(),
        );
        let event = Event::new(Delivered::Report(report.clone()), report);
        let ptr: *const Event = &event;
        // SAFETY: `ptr` points to a live event; the strings are NUL-terminated.
        unsafe {
            let text = |p: *const c_char| std::ffi::CStr::from_ptr(p).to_str().unwrap();
            assert_eq!(text(comfywire_event_kind(ptr)), "callback_error");
            assert_eq!(text(comfywire_event_prompt_id(ptr)), "p1");
            assert!(comfywire_event_node(ptr).is_null());
            assert_eq!(comfywire_event_value(std::ptr::null()), 0.0);
            assert!(text(comfywire_event_json(ptr)).contains("\"subscription\":7"));
            let whole = text(comfywire_event_to_json(ptr));
            assert!(whole.contains("\"event\":\"callback_error\""), "{whole}");
            assert!(whole.contains("\"error\":\"boom\""), "{whole}");
        }
    }
}
