//! Status codes and the per-thread last error.
//!
//! The numbers are `comfywire-host`'s [`ErrorCode`]s, so C, Python and
//! Swift report the same code for the same failure; `0` is success.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{CString, c_char};
use std::sync::LazyLock;

use comfywire_host::{ErrorCode, HostError};

use crate::panic::ffi_ptr;
use crate::strings::{c_ptr, to_cstring};

/// The result of every fallible function: `COMFYWIRE_OK` or an error code.
pub type Status = i32;

/// Success.
pub const COMFYWIRE_OK: Status = 0;
/// An argument is NULL, not valid UTF-8, not valid JSON, or otherwise unusable.
pub const COMFYWIRE_INVALID_ARGUMENT: Status = 1;
/// The configuration is unusable (bad URL, bad settings value).
pub const COMFYWIRE_CONFIG: Status = 2;
/// A request got no answer (network).
pub const COMFYWIRE_REQUEST: Status = 3;
/// The server answered an unexpected HTTP status.
pub const COMFYWIRE_HTTP: Status = 4;
/// The server answered something unexpected.
pub const COMFYWIRE_PROTOCOL: Status = 5;
/// An answer was larger than its limit (the last error's JSON has `limit`
/// and `setting`).
pub const COMFYWIRE_TOO_LARGE: Status = 6;
/// The pull stream (`comfywire_next_event`) was not read and passed its
/// bound; it stopped, and the next call goes on from now.
pub const COMFYWIRE_OVERFLOW: Status = 7;
/// The prompt was refused by validation (details in the last error's JSON).
pub const COMFYWIRE_VALIDATION: Status = 10;
/// A node raised while the prompt ran.
pub const COMFYWIRE_EXECUTION_FAILED: Status = 11;
/// The prompt was interrupted.
pub const COMFYWIRE_INTERRUPTED: Status = 12;
/// The server no longer knows the prompt.
pub const COMFYWIRE_LOST: Status = 13;
/// A deadline of a run (queue, stall, total) expired.
pub const COMFYWIRE_DEADLINE: Status = 14;
/// A blocking call's own timeout expired; the prompt goes on.
pub const COMFYWIRE_TIMEOUT: Status = 15;
/// The client is closed.
pub const COMFYWIRE_CLOSED: Status = 20;
/// A local file error.
pub const COMFYWIRE_IO: Status = 21;
/// A panic inside the library was caught at the boundary.
pub const COMFYWIRE_PANIC: Status = 30;

/// The C status of a host error code.
pub(crate) fn status_of(code: ErrorCode) -> Status {
    // The host's codes are small and stable; the conversion cannot wrap.
    code.as_u32() as Status
}

struct LastError {
    message: CString,
    detail_json: Option<CString>,
}

thread_local! {
    // Per thread, so concurrent callers never read each other's errors;
    // replaced only by the next failure, so a pointer handed out stays
    // valid while the thread makes successful calls.
    static LAST_ERROR: RefCell<Option<LastError>> = const { RefCell::new(None) };
}

/// Records `error` as this thread's last error and returns its status.
pub(crate) fn fail(error: &HostError) -> Status {
    let last = LastError {
        message: to_cstring(error.message.as_str()),
        detail_json: error.detail.as_ref().map(|d| to_cstring(d.to_string())),
    };
    LAST_ERROR.set(Some(last));
    status_of(error.code)
}

fn last_error(read: impl FnOnce(&LastError) -> *const c_char) -> *const c_char {
    ffi_ptr(|| LAST_ERROR.with_borrow(|e| e.as_ref().map_or(std::ptr::null(), read)))
}

/// The message of the last failed call on this thread, or NULL when no
/// call on this thread has failed yet. Borrowed from a thread-local slot:
/// valid until the next failing comfywire call on the same thread.
#[unsafe(no_mangle)]
pub extern "C" fn comfywire_last_error_message() -> *const c_char {
    last_error(|e| e.message.as_ptr())
}

/// Structured details of the last failed call on this thread as JSON
/// (validation node errors, the HTTP status, the deadline kind), or NULL
/// when it had none. Borrowed as comfywire_last_error_message().
#[unsafe(no_mangle)]
pub extern "C" fn comfywire_last_error_detail_json() -> *const c_char {
    last_error(|e| c_ptr(&e.detail_json))
}

/// A stable snake_case name for a status (`"ok"`, `"invalid_argument"`,
/// `"execution_failed"`, ...; the host's `ErrorCode` names), or
/// `"unknown"`. A static string.
#[unsafe(no_mangle)]
pub extern "C" fn comfywire_status_name(status: Status) -> *const c_char {
    static NAMES: LazyLock<HashMap<ErrorCode, CString>> =
        LazyLock::new(|| ErrorCode::ALL.map(|c| (c, to_cstring(c.name()))).into());
    let code = u32::try_from(status).ok().and_then(ErrorCode::from_u32);
    ffi_ptr(|| match code {
        Some(code) => NAMES[&code].as_ptr(),
        None if status == COMFYWIRE_OK => c"ok".as_ptr(),
        None => c"unknown".as_ptr(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn constants_match_the_host_codes() {
        for (status, code) in [
            (COMFYWIRE_INVALID_ARGUMENT, ErrorCode::InvalidArgument),
            (COMFYWIRE_CONFIG, ErrorCode::Config),
            (COMFYWIRE_REQUEST, ErrorCode::Request),
            (COMFYWIRE_HTTP, ErrorCode::Http),
            (COMFYWIRE_PROTOCOL, ErrorCode::Protocol),
            (COMFYWIRE_TOO_LARGE, ErrorCode::TooLarge),
            (COMFYWIRE_OVERFLOW, ErrorCode::Overflow),
            (COMFYWIRE_VALIDATION, ErrorCode::Validation),
            (COMFYWIRE_EXECUTION_FAILED, ErrorCode::ExecutionFailed),
            (COMFYWIRE_INTERRUPTED, ErrorCode::Interrupted),
            (COMFYWIRE_LOST, ErrorCode::Lost),
            (COMFYWIRE_DEADLINE, ErrorCode::Deadline),
            (COMFYWIRE_TIMEOUT, ErrorCode::Timeout),
            (COMFYWIRE_CLOSED, ErrorCode::Closed),
            (COMFYWIRE_IO, ErrorCode::Io),
            (COMFYWIRE_PANIC, ErrorCode::Panic),
        ] {
            assert_eq!(status, status_of(code));
            // SAFETY: comfywire_status_name returns a static NUL-terminated string.
            let name = unsafe { std::ffi::CStr::from_ptr(comfywire_status_name(status)) };
            assert_eq!(name.to_str().unwrap(), code.name());
        }
        for (status, name) in [(COMFYWIRE_OK, "ok"), (8, "unknown"), (-1, "unknown")] {
            // SAFETY: comfywire_status_name returns a static NUL-terminated string.
            let text = unsafe { std::ffi::CStr::from_ptr(comfywire_status_name(status)) };
            assert_eq!(text.to_str().unwrap(), name);
        }
    }

    #[test]
    fn last_error_is_per_thread() {
        fail(&HostError::new(ErrorCode::Http, "here"));
        let other = std::thread::spawn(|| comfywire_last_error_message().is_null())
            .join()
            .unwrap();
        assert!(other);
        // SAFETY: non-null and NUL-terminated, set just above on this thread.
        let text = unsafe { std::ffi::CStr::from_ptr(comfywire_last_error_message()) };
        assert_eq!(text.to_str().unwrap(), "here");
    }
}
