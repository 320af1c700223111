//! `comfywire_outcome`: how a prompt ended, with borrowed accessors.

use std::ffi::{CString, c_char};

use comfywire_host::event::Phase;
use comfywire_host::{HostOutcome, HostPoolOutcome};

use crate::panic::{ffi_free, ffi_read, ffi_text, into_raw};
use crate::strings::to_cstring;

/// How a prompt ended (or where it is). Owned by the caller; free it with
/// comfywire_outcome_free().
pub struct Outcome {
    inner: HostOutcome,
    // The C strings the accessors lend out; set for every outcome but the
    // error message.
    prompt_id: Option<CString>,
    status: Option<CString>,
    outputs_json: Option<CString>,
    json: Option<CString>,
    error_message: Option<CString>,
    // Set for the outcome of a pool submission only.
    server: Option<CString>,
    pool_json: Option<CString>,
}

impl Outcome {
    /// An outcome with the C strings its accessors lend.
    fn new(inner: HostOutcome) -> Outcome {
        let c = |text: String| Some(to_cstring(text));
        Outcome {
            prompt_id: c(inner.prompt_id.clone()),
            status: c(inner.status.name().to_owned()),
            outputs_json: c(inner.outputs.to_string()),
            json: c(inner.to_json().to_string()),
            error_message: inner.error_message().map(to_cstring),
            server: None,
            pool_json: None,
            inner,
        }
    }

    /// Hands a host outcome to C.
    pub(crate) fn into_raw(inner: HostOutcome) -> *mut Outcome {
        into_raw(Outcome::new(inner))
    }

    /// Hands a pool submission's outcome to C: the record's outcome (or a
    /// `lost` one without a record) with the server and the pool's JSON.
    pub(crate) fn from_pool(pool: &HostPoolOutcome) -> *mut Outcome {
        let mut outcome = Outcome::new(pool.flat());
        outcome.server = Some(to_cstring(pool.server.clone()));
        outcome.pool_json = Some(to_cstring(pool.to_json().to_string()));
        into_raw(outcome)
    }
}

/// The prompt id. NULL only for a NULL outcome.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_outcome_prompt_id(outcome: *const Outcome) -> *const c_char {
    // SAFETY: the general contract.
    unsafe { ffi_text(outcome, |o| &o.prompt_id) }
}

/// `succeeded`, `failed`, `interrupted` or `lost` (or `submitted`, `queued`,
/// `running` for an unfinished prompt). NULL only for a NULL outcome.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_outcome_status(outcome: *const Outcome) -> *const c_char {
    // SAFETY: the general contract.
    unsafe { ffi_text(outcome, |o| &o.status) }
}

/// True when the prompt succeeded (false for a NULL outcome).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_outcome_succeeded(outcome: *const Outcome) -> bool {
    // SAFETY: the general contract.
    unsafe { ffi_read(outcome, false, |o| o.inner.status == Phase::Succeeded) }
}

/// The UI outputs by node id, as a JSON object (`{}` when none).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_outcome_outputs_json(outcome: *const Outcome) -> *const c_char {
    // SAFETY: the general contract.
    unsafe { ffi_text(outcome, |o| &o.outputs_json) }
}

/// The exception message of a failed prompt or the reason of a lost one;
/// NULL otherwise.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_outcome_error_message(outcome: *const Outcome) -> *const c_char {
    // SAFETY: the general contract.
    unsafe { ffi_text(outcome, |o| &o.error_message) }
}

/// Run time in milliseconds, or a negative number when unknown (-1 for a
/// NULL outcome).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_outcome_duration_ms(outcome: *const Outcome) -> f64 {
    // SAFETY: the general contract.
    unsafe { ffi_read(outcome, -1.0, |o| o.inner.duration_ms.unwrap_or(-1.0)) }
}

/// The whole outcome as JSON: `prompt_id`, `status`, `number`, `outputs`,
/// `nodes` (with timings), `cached`, `error`, `interrupted_at`,
/// `lost_reason`, `duration_ms`, `progress`, `had_gap`, `outputs_omitted`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_outcome_json(outcome: *const Outcome) -> *const c_char {
    // SAFETY: the general contract.
    unsafe { ffi_text(outcome, |o| &o.json) }
}

/// The label of the server a pool submission ended on; NULL for an
/// outcome that is not a pool submission's.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_outcome_server(outcome: *const Outcome) -> *const c_char {
    // SAFETY: the general contract.
    unsafe { ffi_text(outcome, |o| &o.server) }
}

/// A pool submission's outcome as the pool sees it, as JSON: `prompt_id`,
/// `status`, `server`, `servers` (every server it went to, in order),
/// `moves` (each `{"from", "to", "reason"}`), `lost_reason`, and
/// `outcome` (the record, as comfywire_outcome_json(), or null when the
/// pool gave it up with its server). NULL for an outcome that is not a
/// pool submission's.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_outcome_pool_json(outcome: *const Outcome) -> *const c_char {
    // SAFETY: the general contract.
    unsafe { ffi_text(outcome, |o| &o.pool_json) }
}

/// Frees an outcome. NULL is ignored.
///
/// # Safety
/// `outcome` is NULL or an outcome from comfywire not freed yet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_outcome_free(outcome: *mut Outcome) {
    // SAFETY: per the contract it came from `Outcome::into_raw`, freed once.
    unsafe { ffi_free(outcome) }
}
