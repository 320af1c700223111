//! Arguments and results at the edge: C strings in and out, pointer and
//! array arguments, out-parameters. Each `unsafe fn` here requires what the
//! crate's contract promises of the pointer it takes, for the lifetime `'a`
//! it lends out.
//!
//! Incoming `const char *` are borrowed for the call only and must be
//! UTF-8. Outgoing `char *` are allocated here and must come back through
//! [`comfywire_string_free`], because C's `free` does not own Rust's heap.

use std::ffi::{CStr, CString, c_char};

use comfywire_host::{ErrorCode, HostError};

use crate::panic::{ffi_ptr, ffi_value};

/// A Rust string as a C string; interior NULs (which C could not see past)
/// are dropped rather than failing the call.
pub(crate) fn to_cstring(text: impl Into<Vec<u8>>) -> CString {
    let mut bytes = text.into();
    bytes.retain(|b| *b != 0);
    CString::new(bytes).unwrap_or_default()
}

/// Hands a string to C; the caller frees it with [`comfywire_string_free`].
pub(crate) fn into_c(text: impl ToString) -> *mut c_char {
    to_cstring(text.to_string()).into_raw()
}

/// A borrowed C string of an optional field, NULL when absent.
pub(crate) fn c_ptr(text: &Option<CString>) -> *const c_char {
    text.as_ref().map_or(std::ptr::null(), |t| t.as_ptr())
}

/// An `InvalidArgument` error.
pub(crate) fn invalid(message: impl Into<String>) -> HostError {
    HostError::new(ErrorCode::InvalidArgument, message)
}

fn null(what: &str) -> HostError {
    invalid(format!("{what} is NULL"))
}

/// Borrows a required pointer argument.
pub(crate) unsafe fn ref_arg<'a, T>(ptr: *const T, what: &str) -> Result<&'a T, HostError> {
    // SAFETY: NULL or valid for reads for 'a, per this function's contract.
    unsafe { ptr.as_ref() }.ok_or_else(|| null(what))
}

/// Borrows an optional C string argument (NULL is `None`).
pub(crate) unsafe fn opt_str<'a>(
    ptr: *const c_char,
    what: &str,
) -> Result<Option<&'a str>, HostError> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: non-null; NUL-terminated and valid for 'a per the contract.
    let text = unsafe { CStr::from_ptr(ptr) }.to_str();
    text.map(Some)
        .map_err(|_| invalid(format!("{what} is not valid UTF-8")))
}

/// Borrows a required C string argument.
pub(crate) unsafe fn str_arg<'a>(ptr: *const c_char, what: &str) -> Result<&'a str, HostError> {
    // SAFETY: forwarded from this function's contract.
    unsafe { opt_str(ptr, what) }?.ok_or_else(|| null(what))
}

/// Borrows an array argument of `len` elements; NULL only with `len` 0.
pub(crate) unsafe fn slice_arg<'a, T>(
    ptr: *const T,
    len: usize,
    what: &str,
) -> Result<&'a [T], HostError> {
    match (len, ptr.is_null()) {
        (0, _) => Ok(&[]),
        (_, true) => Err(null(what)),
        // SAFETY: non-null and readable for `len` elements per the contract.
        _ => Ok(unsafe { std::slice::from_raw_parts(ptr, len) }),
    }
}

/// Borrows an out-parameter, cleared to `empty` at once so that a failing
/// call leaves no stale value behind.
pub(crate) unsafe fn out_arg<'a, T: Copy>(
    ptr: *mut T,
    empty: T,
    what: &str,
) -> Result<&'a mut T, HostError> {
    if ptr.is_null() {
        return Err(null(what));
    }
    // SAFETY: non-null and writable for 'a per the contract; initialised
    // before it is borrowed.
    unsafe {
        ptr.write(empty);
        Ok(&mut *ptr)
    }
}

/// Frees a string returned by comfywire (a `char *` out-parameter). NULL is
/// ignored.
///
/// # Safety
/// `text` is NULL or a `char *` from comfywire not freed yet; never a
/// `const char *` accessor result or a string from `malloc`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_string_free(text: *mut c_char) {
    ffi_value((), || {
        if !text.is_null() {
            // SAFETY: per the contract it came from `into_c` and is freed once.
            drop(unsafe { CString::from_raw(text) });
        }
    });
}

/// The library version (`"0.1.0"`), a static string.
#[unsafe(no_mangle)]
pub extern "C" fn comfywire_version() -> *const c_char {
    const VERSION: &CStr =
        match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
            Ok(v) => v,
            Err(_) => c"unknown",
        };
    ffi_ptr(|| VERSION.as_ptr())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn interior_nuls_are_dropped() {
        assert_eq!(to_cstring("a\0b").to_str().unwrap(), "ab");
    }

    #[test]
    fn null_arguments_are_errors() {
        // SAFETY: NULL is allowed by the contract.
        let err = unsafe { str_arg(std::ptr::null(), "url") }.unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidArgument);
        // SAFETY: NULL is allowed by the contract.
        assert!(unsafe { opt_str(std::ptr::null(), "x") }.unwrap().is_none());
        // SAFETY: NULL with length 0 is allowed by the contract.
        assert!(
            unsafe { slice_arg::<u8>(std::ptr::null(), 0, "d") }
                .unwrap()
                .is_empty()
        );
    }
}
