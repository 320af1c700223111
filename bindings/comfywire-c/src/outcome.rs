//! `comfywire_outcome`: how a prompt ended, with borrowed accessors.

use std::ffi::{CString, c_char};

use comfywire_host::HostOutcome;

use crate::panic::{ffi_value, ffi_void};
use crate::strings::to_cstring;

/// How a prompt ended (or where it is). Owned by the caller; free it with
/// comfywire_outcome_free().
pub struct Outcome {
    inner: HostOutcome,
    prompt_id: CString,
    status: CString,
    outputs_json: CString,
    json: CString,
    error_message: Option<CString>,
}

impl Outcome {
    /// Wraps a host outcome, preparing the C strings its accessors lend out.
    pub(crate) fn new(inner: HostOutcome) -> Outcome {
        let error_message = inner
            .error
            .as_ref()
            .map(|e| e.exception_message.clone())
            .or_else(|| inner.lost_reason.clone())
            .map(to_cstring);
        Outcome {
            prompt_id: to_cstring(inner.prompt_id.clone()),
            status: to_cstring(inner.status.name().to_owned()),
            outputs_json: to_cstring(inner.outputs.to_string()),
            json: to_cstring(inner.to_json().to_string()),
            error_message,
            inner,
        }
    }

    /// Hands the outcome to C.
    pub(crate) fn into_raw(inner: HostOutcome) -> *mut Outcome {
        Box::into_raw(Box::new(Outcome::new(inner)))
    }
}

/// Reads a field of a possibly-NULL outcome.
///
/// # Safety
/// `outcome` is NULL or a live outcome.
unsafe fn with_outcome<T: Copy>(
    outcome: *const Outcome,
    fallback: T,
    read: impl FnOnce(&Outcome) -> T,
) -> T {
    ffi_value(fallback, || {
        // SAFETY: the caller guarantees NULL or a live outcome; NULL maps to
        // None and yields the fallback.
        match unsafe { outcome.as_ref() } {
            Some(outcome) => read(outcome),
            None => fallback,
        }
    })
}

/// The prompt id. NULL only for a NULL outcome.
///
/// # Safety
/// `outcome` is NULL or a live outcome.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_outcome_prompt_id(outcome: *const Outcome) -> *const c_char {
    // SAFETY: forwarded from this function's contract.
    unsafe { with_outcome(outcome, std::ptr::null(), |o| o.prompt_id.as_ptr()) }
}

/// `succeeded`, `failed`, `interrupted` or `lost` (or `submitted`, `queued`,
/// `running` for an unfinished prompt). NULL only for a NULL outcome.
///
/// # Safety
/// `outcome` is NULL or a live outcome.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_outcome_status(outcome: *const Outcome) -> *const c_char {
    // SAFETY: forwarded from this function's contract.
    unsafe { with_outcome(outcome, std::ptr::null(), |o| o.status.as_ptr()) }
}

/// True when the prompt succeeded.
///
/// # Safety
/// `outcome` is NULL (gives false) or a live outcome.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_outcome_succeeded(outcome: *const Outcome) -> bool {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        with_outcome(outcome, false, |o| {
            o.inner.status == comfywire_host::event::Phase::Succeeded
        })
    }
}

/// The UI outputs by node id, as a JSON object (`{}` when none).
///
/// # Safety
/// `outcome` is NULL or a live outcome.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_outcome_outputs_json(outcome: *const Outcome) -> *const c_char {
    // SAFETY: forwarded from this function's contract.
    unsafe { with_outcome(outcome, std::ptr::null(), |o| o.outputs_json.as_ptr()) }
}

/// The exception message of a failed prompt or the reason of a lost one;
/// NULL otherwise.
///
/// # Safety
/// `outcome` is NULL or a live outcome.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_outcome_error_message(outcome: *const Outcome) -> *const c_char {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        with_outcome(outcome, std::ptr::null(), |o| {
            o.error_message
                .as_ref()
                .map_or(std::ptr::null(), |m| m.as_ptr())
        })
    }
}

/// Run time in milliseconds, or a negative number when unknown.
///
/// # Safety
/// `outcome` is NULL (gives -1) or a live outcome.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_outcome_duration_ms(outcome: *const Outcome) -> f64 {
    // SAFETY: forwarded from this function's contract.
    unsafe { with_outcome(outcome, -1.0, |o| o.inner.duration_ms.unwrap_or(-1.0)) }
}

/// The whole outcome as JSON: `prompt_id`, `status`, `number`, `outputs`,
/// `nodes` (with timings), `cached`, `error`, `interrupted_at`,
/// `lost_reason`, `duration_ms`, `progress`, `had_gap`.
///
/// # Safety
/// `outcome` is NULL or a live outcome.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_outcome_json(outcome: *const Outcome) -> *const c_char {
    // SAFETY: forwarded from this function's contract.
    unsafe { with_outcome(outcome, std::ptr::null(), |o| o.json.as_ptr()) }
}

/// Frees an outcome. NULL is ignored.
///
/// # Safety
/// `outcome` is NULL or an outcome returned by comfywire and not freed yet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_outcome_free(outcome: *mut Outcome) {
    ffi_void(|| {
        if !outcome.is_null() {
            // SAFETY: per the contract it came from Outcome::into_raw and is
            // freed once.
            drop(unsafe { Box::from_raw(outcome) });
        }
    });
}
