//! `comfywire_event`: an owned event with borrowed accessors, and the pull
//! API for hosts that run their own loop.

use std::ffi::{CString, c_char};
use std::sync::OnceLock;
use std::time::Duration;

use comfywire_host::{Delivered, HostEvent};

use crate::call::with_out;
use crate::client::Client;
use crate::panic::{ffi_free, ffi_read, ffi_status, ffi_text, into_raw};
use crate::status::Status;
use crate::strings::{out_arg, ref_arg, to_cstring};

/// One event. Owned by the caller when it came from comfywire_next_event()
/// or comfywire_event_clone() (free it with comfywire_event_free());
/// borrowed for the duration of the call when handed to a callback.
#[derive(Clone)]
pub struct Event {
    source: Delivered,
    inner: HostEvent,
    // The C strings the accessors lend out.
    kind: Option<CString>,
    prompt_id: Option<CString>,
    node: Option<CString>,
    display_node: Option<CString>,
    text: Option<CString>,
    json: Option<CString>,
    mime: Option<CString>,
    // Built on first request: most hosts never ask for the whole object.
    full_json: OnceLock<Option<CString>>,
}

impl Event {
    /// Wraps a flat record and the event it was delivered as.
    pub(crate) fn new(inner: HostEvent, source: Delivered) -> Event {
        let c = |s: &Option<String>| s.as_deref().map(to_cstring);
        Event {
            kind: Some(to_cstring(inner.kind.name())),
            prompt_id: c(&inner.prompt_id),
            node: c(&inner.node),
            display_node: c(&inner.display_node),
            text: c(&inner.text),
            json: inner.payload().map(|v| to_cstring(v.to_string())),
            mime: c(&inner.mime),
            full_json: OnceLock::new(),
            source,
            inner,
        }
    }
}

/// Waits up to `timeout_ms` for the next event of `client` (0 polls).
/// Sets `*out_event` to the event, or to NULL when none arrived in time
/// (still COMFYWIRE_OK). Events are queued from the first call on; progress
/// and previews are coalesced when not pulled fast enough, lifecycle and
/// terminal events never. Returns COMFYWIRE_CLOSED once the client is closed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_next_event(
    client: *const Client,
    timeout_ms: u32,
    out_event: *mut *mut Event,
) -> Status {
    let timeout = Duration::from_millis(u64::from(timeout_ms));
    let next = |c: &Client| {
        Ok(c.host
            .next_event(timeout)?
            .map(|d| into_raw(Event::new(d.flat(), d))))
    };
    // SAFETY: the general contract.
    unsafe { with_out(client, out_event, std::ptr::null_mut(), "out_event", next) }
}

/// Copies an event, e.g. to keep one a callback was lent. NULL gives NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_event_clone(event: *const Event) -> *mut Event {
    // SAFETY: the general contract.
    unsafe { ffi_read(event, std::ptr::null_mut(), |e| into_raw(e.clone())) }
}

/// Frees an event from comfywire_next_event() or comfywire_event_clone().
/// NULL is ignored. Never free an event lent to a callback.
///
/// # Safety
/// `event` is NULL or an owned event not freed yet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_event_free(event: *mut Event) {
    // SAFETY: per the contract it came from `into_raw` and is freed once.
    unsafe { ffi_free(event) }
}

/// The event kind: `connection`, `status`, `feature_flags`, `prompt_queued`,
/// `execution_started`, `nodes_cached`, `node_started`, `progress`,
/// `preview`, `progress_text`, `output`, `node_finished`, `blocked`,
/// `finished`, `message`, `bad_frame`, `http_failed`, or `callback_error`.
/// Never NULL for a non-NULL event.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_event_kind(event: *const Event) -> *const c_char {
    // SAFETY: the general contract.
    unsafe { ffi_text(event, |e| &e.kind) }
}

/// The prompt the event belongs to, or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_event_prompt_id(event: *const Event) -> *const c_char {
    // SAFETY: the general contract.
    unsafe { ffi_text(event, |e| &e.prompt_id) }
}

/// The node (node events, progress, previews, outputs, progress text), or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_event_node(event: *const Event) -> *const c_char {
    // SAFETY: the general contract.
    unsafe { ffi_text(event, |e| &e.node) }
}

/// The node to show the event on (group nodes), or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_event_display_node(event: *const Event) -> *const c_char {
    // SAFETY: the general contract.
    unsafe { ffi_text(event, |e| &e.display_node) }
}

/// Text: progress text, the connection state name, a terminal status
/// (`succeeded`, `failed`, ...), an error message; or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_event_text(event: *const Event) -> *const c_char {
    // SAFETY: the general contract.
    unsafe { ffi_text(event, |e| &e.text) }
}

/// The JSON payload: an output dict (`output`), the outcome (`finished`),
/// the connection status (`connection`), feature flags, cached nodes, an
/// unknown message's data, a callback error's `{"failed_kind",
/// "subscription"}`; or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_event_json(event: *const Event) -> *const c_char {
    // SAFETY: the general contract.
    unsafe { ffi_text(event, |e| &e.json) }
}

/// The whole event as one JSON object, the same object the `comfywire`
/// CLI prints with `--json` (`{"event": kind, "prompt_id": ..., ...}`, the
/// schema in the CLI's README), for logging or hosts that parse JSON anyway.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_event_to_json(event: *const Event) -> *const c_char {
    let json = |e: &Event| Some(to_cstring(e.source.to_json().to_string()));
    // SAFETY: the general contract.
    unsafe { ffi_text(event, |e| e.full_json.get_or_init(|| json(e))) }
}

/// Step (progress), queue size (status), queue number (prompt_queued), 1 for a
/// recovered output; otherwise (and for a NULL event) 0.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_event_value(event: *const Event) -> f64 {
    // SAFETY: the general contract.
    unsafe { ffi_read(event, 0.0, |e| e.inner.value) }
}

/// Total steps (progress); otherwise (and for a NULL event) 0.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_event_max(event: *const Event) -> f64 {
    // SAFETY: the general contract.
    unsafe { ffi_read(event, 0.0, |e| e.inner.max) }
}

/// Whole-prompt progress in [0, 1] (progress, finished); otherwise (and for
/// a NULL event) 0.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_event_overall(event: *const Event) -> f64 {
    // SAFETY: the general contract.
    unsafe { ffi_read(event, 0.0, |e| e.inner.overall) }
}

/// Seconds until the node of a `progress` event should finish at its pace
/// so far; a negative value when there is no estimate (before the node's
/// first step, after its last, any other kind, a NULL event).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_event_eta_s(event: *const Event) -> f64 {
    // SAFETY: the general contract.
    unsafe { ffi_read(event, -1.0, |e| e.inner.eta_s.unwrap_or(-1.0)) }
}

/// The preview image of a `preview` event: sets `*out_data` and `*out_len`
/// (NULL and 0 for other events; still COMFYWIRE_OK). The bytes are
/// borrowed from the event.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_event_preview(
    event: *const Event,
    out_data: *mut *const u8,
    out_len: *mut usize,
) -> Status {
    ffi_status(|| {
        // SAFETY: the general contract.
        let (data, len, event) = unsafe {
            let data = out_arg(out_data, std::ptr::null(), "out_data")?;
            let len = out_arg(out_len, 0, "out_len")?;
            (data, len, ref_arg(event, "event")?)
        };
        if let Some(image) = &event.inner.image {
            (*data, *len) = (image.as_ptr(), image.len());
        }
        Ok(())
    })
}

/// The preview's MIME type (`image/jpeg`, `image/png`), or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_event_mime(event: *const Event) -> *const c_char {
    // SAFETY: the general contract.
    unsafe { ffi_text(event, |e| &e.mime) }
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
        let event = Event::new(report.clone(), Delivered::Report(Box::new(report)));
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
