//! The panic boundary: every `extern "C"` body runs inside one of these.
//!
//! Unwinding into C is undefined behaviour, and aborting would take the host
//! application down with us; so a panic becomes `COMFYWIRE_PANIC` (or a NULL
//! / zero result for accessors) plus a last-error message, and the process
//! goes on.

use std::panic::{AssertUnwindSafe, catch_unwind};

use comfywire_host::{ErrorCode, HostError};

use crate::status::{COMFYWIRE_OK, Status, fail};

fn panic_error(payload: &(dyn std::any::Any + Send)) -> HostError {
    let text = comfywire_host::panic_message(payload);
    HostError::new(
        ErrorCode::Panic,
        format!("comfywire panicked (this is a bug): {text}"),
    )
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

/// Runs an infallible body that returns a plain value (an accessor); a
/// panic gives `fallback` and sets this thread's last error.
pub(crate) fn ffi_value<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(value) => value,
        Err(payload) => {
            fail(&panic_error(payload.as_ref()));
            fallback
        }
    }
}

/// [`ffi_value`] for pointer results: NULL on panic.
pub(crate) fn ffi_ptr<T>(body: impl FnOnce() -> *const T) -> *const T {
    ffi_value(std::ptr::null(), body)
}

/// [`ffi_value`] for functions without a result (the `_free` family).
pub(crate) fn ffi_void(body: impl FnOnce()) {
    ffi_value((), body);
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
