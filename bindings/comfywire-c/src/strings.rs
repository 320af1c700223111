//! C strings in and out.
//!
//! Incoming `const char *` are borrowed for the call only and must be
//! UTF-8. Outgoing `char *` are allocated here and must come back through
//! [`comfywire_string_free`], because C's `free` does not own Rust's heap.

use std::ffi::{CStr, CString, c_char};

use comfywire_host::{ErrorCode, HostError};

/// A Rust string as a C string; interior NULs (which C could not see past)
/// are dropped rather than failing the call.
pub(crate) fn to_cstring(text: String) -> CString {
    CString::new(text).unwrap_or_else(|e| {
        let mut bytes = e.into_vec();
        bytes.retain(|b| *b != 0);
        CString::new(bytes).unwrap_or_default()
    })
}

/// The error of a required pointer argument that is NULL.
pub(crate) fn null_error(what: &str) -> HostError {
    HostError::new(ErrorCode::InvalidArgument, format!("{what} is NULL"))
}

/// Borrows a required C string argument.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string that stays valid and
/// unchanged for `'a`.
pub(crate) unsafe fn str_arg<'a>(ptr: *const c_char, what: &str) -> Result<&'a str, HostError> {
    if ptr.is_null() {
        return Err(null_error(what));
    }
    // SAFETY: non-null, and the caller guarantees NUL termination and
    // validity for 'a.
    let text = unsafe { CStr::from_ptr(ptr) };
    text.to_str().map_err(|_| {
        HostError::new(
            ErrorCode::InvalidArgument,
            format!("{what} is not valid UTF-8"),
        )
    })
}

/// Borrows an optional C string argument (NULL means absent).
///
/// # Safety
/// As [`str_arg`].
pub(crate) unsafe fn opt_str_arg<'a>(
    ptr: *const c_char,
    what: &str,
) -> Result<Option<&'a str>, HostError> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: forwarded from this function's own contract.
    unsafe { str_arg(ptr, what) }.map(Some)
}

/// An out-parameter: checked for NULL, cleared at once, written on success.
pub(crate) struct Out<T> {
    ptr: *mut T,
}

impl<T> Out<T> {
    /// Checks `ptr` and writes `empty` into it, so a failing call leaves no
    /// stale value behind.
    ///
    /// # Safety
    /// `ptr` is NULL or valid for writes of a `T` for the whole call.
    pub(crate) unsafe fn new(ptr: *mut T, empty: T, what: &str) -> Result<Out<T>, HostError> {
        if ptr.is_null() {
            return Err(null_error(what));
        }
        // SAFETY: non-null, and the caller guarantees it is writable.
        unsafe { ptr.write(empty) };
        Ok(Out { ptr })
    }

    /// Stores the result.
    pub(crate) fn set(self, value: T) {
        // SAFETY: checked non-null and writable in `new`, for the call's
        // duration, which this value does not outlive.
        unsafe { self.ptr.write(value) };
    }
}

/// Hands a string to C; the caller frees it with [`comfywire_string_free`].
pub(crate) fn into_c(text: String) -> *mut c_char {
    to_cstring(text).into_raw()
}

/// Frees a string returned by comfywire (a `char *` out-parameter). NULL is
/// ignored.
///
/// # Safety
/// `text` is NULL or a string returned by comfywire that was not freed yet.
/// Never pass a `const char *` accessor result or a string from `malloc`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_string_free(text: *mut c_char) {
    crate::panic::ffi_void(|| {
        if !text.is_null() {
            // SAFETY: per the contract it came from `CString::into_raw` in
            // `into_c` and is freed once.
            drop(unsafe { CString::from_raw(text) });
        }
    });
}

/// The library version (`"0.1.0"`).
///
/// Ownership: a static string; never free it.
#[unsafe(no_mangle)]
pub extern "C" fn comfywire_version() -> *const c_char {
    crate::panic::ffi_ptr(|| {
        const VERSION: &CStr =
            match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
                Ok(v) => v,
                Err(_) => c"unknown",
            };
        VERSION.as_ptr()
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn interior_nuls_are_dropped() {
        assert_eq!(to_cstring("a\0b".into()).to_str().unwrap(), "ab");
    }

    #[test]
    fn null_arguments_are_errors() {
        // SAFETY: NULL is allowed by the contract.
        let err = unsafe { str_arg(std::ptr::null(), "url") }.unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidArgument);
        // SAFETY: NULL is allowed by the contract.
        assert!(
            unsafe { opt_str_arg(std::ptr::null(), "x") }
                .unwrap()
                .is_none()
        );
    }
}
