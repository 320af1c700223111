//! The panic boundary: every `extern "C"` body runs inside one of these.
//!
//! Unwinding into C is undefined behaviour, and aborting would take the host
//! application down with us; so a panic becomes `COMFYWIRE_PANIC` (or a NULL
//! / zero result for accessors) plus a last-error message, and the process
//! goes on. The accessors and `_free` functions of owned objects are built
//! here too, on the same boundary.

use std::ffi::{CString, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};

use comfywire_host::{ErrorCode, HostError};

use crate::status::{COMFYWIRE_OK, Status, fail};
use crate::strings::c_ptr;

fn panic_error(payload: &(dyn std::any::Any + Send)) -> HostError {
    let text = comfywire_host::panic_message(payload);
    let message = format!("comfywire panicked (this is a bug): {text}");
    HostError::new(ErrorCode::Panic, message)
}

/// Runs a fallible body: `Ok` is `COMFYWIRE_OK`, an error or a panic
/// becomes its status and this thread's last error.
pub(crate) fn ffi_status(body: impl FnOnce() -> Result<(), HostError>) -> Status {
    // AssertUnwindSafe: after a panic we only report it; no state the body
    // touched is observed again by this call.
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => COMFYWIRE_OK,
        Ok(Err(error)) => fail(&error),
        Err(payload) => fail(&panic_error(payload.as_ref())),
    }
}

/// Runs an infallible body (an accessor, a `_free`); a panic gives
/// `fallback` and sets this thread's last error.
pub(crate) fn ffi_value<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|payload| {
        fail(&panic_error(payload.as_ref()));
        fallback
    })
}

/// [`ffi_value`] for pointer results: NULL on panic.
pub(crate) fn ffi_ptr<T>(body: impl FnOnce() -> *const T) -> *const T {
    ffi_value(std::ptr::null(), body)
}

/// Reads from `object`, which must be NULL or live: NULL (or a panic)
/// gives `fallback`.
pub(crate) unsafe fn ffi_read<T, R: Copy>(
    object: *const T,
    fallback: R,
    read: impl FnOnce(&T) -> R,
) -> R {
    // SAFETY: forwarded from this function's contract.
    ffi_value(fallback, || {
        unsafe { object.as_ref() }.map_or(fallback, read)
    })
}

/// [`ffi_read`] of a borrowed string field: NULL when it is absent.
pub(crate) unsafe fn ffi_text<T>(
    object: *const T,
    field: impl FnOnce(&T) -> &Option<CString>,
) -> *const c_char {
    // SAFETY: forwarded from this function's contract.
    unsafe { ffi_read(object, std::ptr::null(), |o| c_ptr(field(o))) }
}

/// Hands an owned object to C, which gives it back to [`ffi_free`].
pub(crate) fn into_raw<T>(object: T) -> *mut T {
    Box::into_raw(Box::new(object))
}

/// Drops `object`, which must be NULL (ignored) or from [`into_raw`] with
/// this `T` and not freed yet.
pub(crate) unsafe fn ffi_free<T>(object: *mut T) {
    ffi_value((), || {
        if !object.is_null() {
            // SAFETY: per this function's contract, a Box handed out once.
            drop(unsafe { Box::from_raw(object) });
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::COMFYWIRE_PANIC;

    #[test]
    fn a_panic_becomes_a_status() {
        let status = ffi_status(|| panic!("boom"));
        assert_eq!(status, COMFYWIRE_PANIC);
        assert!(ffi_ptr::<u8>(|| panic!("boom")).is_null());
    }
}
