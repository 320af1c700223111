//! The shapes every `extern "C"` call takes: an object argument, an
//! out-parameter set from the body's answer, an object handed out. Each
//! runs on the panic boundary, so a function only maps its arguments onto
//! the host.

use std::ffi::c_char;

use comfywire_host::HostError;

use crate::panic::{ffi_status, into_raw};
use crate::status::Status;
use crate::strings::{into_c, out_arg, ref_arg};

/// An object C holds a pointer to.
pub(crate) trait Object {
    /// Its argument's name in the error a NULL pointer gets.
    const NAME: &'static str;
}

/// Runs `body` with `object` (NULL or live).
pub(crate) unsafe fn with<O: Object>(
    object: *const O,
    body: impl FnOnce(&O) -> Result<(), HostError>,
) -> Status {
    // SAFETY: forwarded from this function's contract.
    ffi_status(|| body(unsafe { ref_arg(object, O::NAME) }?))
}

/// [`with`] and an out-parameter (named `what` in errors), cleared to
/// `empty` first and then set to what the body answers, if anything.
pub(crate) unsafe fn with_out<O: Object, T: Copy>(
    object: *const O,
    out: *mut T,
    empty: T,
    what: &str,
    body: impl FnOnce(&O) -> Result<Option<T>, HostError>,
) -> Status {
    ffi_status(|| {
        // SAFETY: forwarded from this function's contract.
        let (out, object) = unsafe { (out_arg(out, empty, what)?, ref_arg(object, O::NAME)?) };
        *out = body(object)?.unwrap_or(empty);
        Ok(())
    })
}

/// [`with_out`] for a `char *` result: the text of the body's answer.
pub(crate) unsafe fn with_text<O: Object, T: ToString>(
    object: *const O,
    out: *mut *mut c_char,
    body: impl FnOnce(&O) -> Result<T, HostError>,
) -> Status {
    let text = |o: &O| Ok(Some(into_c(body(o)?)));
    // SAFETY: forwarded from this function's contract.
    unsafe { with_out(object, out, std::ptr::null_mut(), "out", text) }
}

/// Stores the object `make` makes in `*out` (NULL or writable, named
/// `what`), for C to free.
pub(crate) unsafe fn start<O>(
    out: *mut *mut O,
    what: &str,
    make: impl FnOnce() -> Result<O, HostError>,
) -> Status {
    ffi_status(|| {
        // SAFETY: forwarded from this function's contract.
        let out = unsafe { out_arg(out, std::ptr::null_mut(), what) }?;
        *out = into_raw(make()?);
        Ok(())
    })
}
