//! Jobs: submit, run and wait (with every deadline), queue operations,
//! interrupt, the client's records and the server's history — each a call
//! of the host's job API made blocking with `block_on`.

use std::ffi::c_char;

use comfywire_host::{HostError, HostOutcome, block_on, parse_json};
use serde_json::{Value, json};

use crate::call::{with, with_out, with_text};
use crate::client::Client;
use crate::options::{JobSpec, comfywire_job_options_default};
use crate::outcome::Outcome;
use crate::panic::ffi_status;
use crate::status::Status;
use crate::strings::{into_c, out_arg, ref_arg, slice_arg, str_arg};

/// The workflow argument (NULL or NUL-terminated), parsed.
unsafe fn workflow(json: *const c_char) -> Result<Value, HostError> {
    // SAFETY: forwarded from this function's contract.
    parse_json(unsafe { str_arg(json, "workflow_json") }?, "workflow")
}

/// [`client_out`] for a call that answers an outcome, set on success and
/// for a failed, interrupted or lost prompt too (its error carries it).
unsafe fn outcome_call(
    client: *const Client,
    out: *mut *mut Outcome,
    call: impl FnOnce(&Client) -> Result<Option<HostOutcome>, HostError>,
) -> Status {
    ffi_status(|| {
        // SAFETY: forwarded from this function's contract.
        let (out, client) = unsafe {
            let out = out_arg(out, std::ptr::null_mut(), "out_outcome")?;
            (out, ref_arg(client, "client")?)
        };
        let (outcome, result) = match call(client) {
            Ok(outcome) => (outcome, Ok(())),
            Err(mut error) => (error.outcome.take().map(|o| *o), Err(error)),
        };
        *out = outcome.map_or(std::ptr::null_mut(), Outcome::into_raw);
        result
    })
}

/// Submits a workflow (API-format JSON) and sets `*out_prompt_id`. A
/// refused prompt gives COMFYWIRE_VALIDATION, with the node errors in
/// comfywire_last_error_detail_json().
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_submit(
    client: *const Client,
    workflow_json: *const c_char,
    out_prompt_id: *mut *mut c_char,
) -> Status {
    // SAFETY: the general contract.
    unsafe { comfywire_submit_with(client, workflow_json, std::ptr::null(), out_prompt_id) }
}

/// comfywire_submit() with options (prompt id, extra data, front of the
/// queue; NULL options are the defaults).
///
/// # Safety
/// `options` is NULL or initialised.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_submit_with(
    client: *const Client,
    workflow_json: *const c_char,
    options: *const JobSpec,
    out_prompt_id: *mut *mut c_char,
) -> Status {
    // SAFETY: the general contract, and `options` is initialised.
    unsafe {
        with_text(client, out_prompt_id, |c| {
            let (workflow, options) = (workflow(workflow_json)?, JobSpec::read(options)?);
            Ok(block_on(c.jobs().submit(workflow, options))?.prompt_id)
        })
    }
}

/// Submits a workflow and blocks until it ends. `timeout_ms` is the total
/// deadline (0 keeps the client's configured deadlines). COMFYWIRE_OK when
/// it succeeded; COMFYWIRE_EXECUTION_FAILED, COMFYWIRE_INTERRUPTED or
/// COMFYWIRE_LOST when it ended otherwise; COMFYWIRE_DEADLINE when a
/// deadline expired; COMFYWIRE_VALIDATION when it was refused.
///
/// `*out_outcome` is set whenever there is an outcome: on success and for
/// failed, interrupted and lost prompts too (NULL otherwise).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_run(
    client: *const Client,
    workflow_json: *const c_char,
    timeout_ms: u32,
    out_outcome: *mut *mut Outcome,
) -> Status {
    let options = JobSpec {
        timeout_ms,
        ..comfywire_job_options_default()
    };
    // SAFETY: the general contract.
    unsafe { comfywire_run_with(client, workflow_json, &options, out_outcome) }
}

/// comfywire_run() with options: the total, stall and queue deadlines
/// (COMFYWIRE_DEADLINE, with the kind in the last error's detail JSON),
/// prompt id, extra data, front of the queue, detach. NULL options are the
/// defaults. `*out_outcome` as comfywire_run(). A run that ends without
/// its outcome (a deadline, the client closed) removes its prompt from the
/// server (comfywire_cancel()'s rule) unless `detach` is set.
///
/// # Safety
/// `options` is NULL or initialised.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_run_with(
    client: *const Client,
    workflow_json: *const c_char,
    options: *const JobSpec,
    out_outcome: *mut *mut Outcome,
) -> Status {
    // SAFETY: the general contract, and `options` is initialised.
    unsafe {
        outcome_call(client, out_outcome, |c| {
            let (workflow, options) = (workflow(workflow_json)?, JobSpec::read(options)?);
            block_on(c.jobs().run(workflow, options)).map(Some)
        })
    }
}

/// What comfywire_cancel() did.
pub type Cancelled = i32;
/// The prompt had ended, or the server did not know it: nothing to do.
pub const COMFYWIRE_CANCEL_NOT_ACTIVE: Cancelled = 0;
/// It was pending: deleted from the queue.
pub const COMFYWIRE_CANCEL_DELETED: Cancelled = 1;
/// It was running: interrupted.
pub const COMFYWIRE_CANCEL_INTERRUPTED: Cancelled = 2;

/// Removes a prompt from the server, whichever client submitted it:
/// deletes it while it is pending, interrupts it while it runs (never
/// another prompt). Sets `*out_done` (may be NULL; cleared to
/// COMFYWIRE_CANCEL_NOT_ACTIVE first) to what it did. The
/// rule a run that ends without its outcome applies to its own prompt
/// (see `detach` in comfywire_job_options).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_cancel(
    client: *const Client,
    prompt_id: *const c_char,
    out_done: *mut Cancelled,
) -> Status {
    ffi_status(|| {
        // SAFETY: the general contract (`out_done` NULL or writable).
        let mut out = unsafe { out_done.as_mut() };
        if let Some(out) = out.as_deref_mut() {
            *out = COMFYWIRE_CANCEL_NOT_ACTIVE;
        }
        // SAFETY: the general contract.
        let (c, id) = unsafe { (ref_arg(client, "client")?, str_arg(prompt_id, "prompt_id")?) };
        let done = block_on(c.jobs().cancel(id))?;
        if let Some(out) = out {
            *out = match done {
                comfywire_host::Cancelled::NotActive => COMFYWIRE_CANCEL_NOT_ACTIVE,
                comfywire_host::Cancelled::Deleted => COMFYWIRE_CANCEL_DELETED,
                comfywire_host::Cancelled::Interrupted => COMFYWIRE_CANCEL_INTERRUPTED,
            };
        }
        Ok(())
    })
}

/// Blocks up to `timeout_ms` for a prompt to end. Statuses and
/// `*out_outcome` as comfywire_run(); COMFYWIRE_TIMEOUT when the time ran
/// out (the prompt goes on; call again).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_wait(
    client: *const Client,
    prompt_id: *const c_char,
    timeout_ms: u32,
    out_outcome: *mut *mut Outcome,
) -> Status {
    let options = JobSpec {
        timeout_ms: timeout_ms.max(1),
        ..comfywire_job_options_default()
    };
    // SAFETY: the general contract.
    unsafe { comfywire_wait_with(client, prompt_id, &options, out_outcome) }
}

/// comfywire_wait() with options: `timeout_ms` bounds the wait
/// (COMFYWIRE_TIMEOUT; 0 waits as long as it takes), the stall and queue
/// deadlines give COMFYWIRE_DEADLINE. NULL options wait without a bound.
/// `*out_outcome` as comfywire_run().
///
/// # Safety
/// `options` is NULL or initialised.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_wait_with(
    client: *const Client,
    prompt_id: *const c_char,
    options: *const JobSpec,
    out_outcome: *mut *mut Outcome,
) -> Status {
    // SAFETY: the general contract, and `options` is initialised.
    unsafe {
        outcome_call(client, out_outcome, |c| {
            let (id, options) = (str_arg(prompt_id, "prompt_id")?, JobSpec::read(options)?);
            block_on(c.jobs().wait(id, &options)).map(Some)
        })
    }
}

/// Tracks a prompt this client did not submit (another process, another
/// client id, an earlier run) until its one terminal event, which then
/// reaches callbacks and comfywire_wait() like any other; a prompt of
/// another client id is followed through the server's queue and history,
/// and one the server does not know ends as lost. comfywire_wait() on an
/// unknown id attaches it by itself. Attaching a prompt already tracked
/// does nothing.
///
/// # Safety
/// `client` is NULL or a live client; `prompt_id` is NULL or
/// NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_attach(
    client: *const Client,
    prompt_id: *const c_char,
) -> Status {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        with(client, |c| {
            block_on(c.jobs().attach(str_arg(prompt_id, "prompt_id")?))
        })
    }
}

/// The journal's prompts that were unfinished when this client started
/// (see `journal_path` in comfywire_options), as a JSON array of prompt
/// ids in submission order (`[]` without a journal). Each is attached
/// already: comfywire_wait() on it gives its outcome.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_resumed_json(
    client: *const Client,
    out_json: *mut *mut c_char,
) -> Status {
    // SAFETY: the general contract.
    unsafe { with_text(client, out_json, |c| Ok(json!(c.host.resumed()))) }
}

/// The client's record of a prompt it has seen, in any phase; `*out_outcome`
/// is NULL when it has none.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_execution(
    client: *const Client,
    prompt_id: *const c_char,
    out_outcome: *mut *mut Outcome,
) -> Status {
    // SAFETY: the general contract.
    unsafe {
        outcome_call(client, out_outcome, |c| {
            block_on(c.jobs().execution(str_arg(prompt_id, "prompt_id")?))
        })
    }
}

/// The client's ring of finished executions, oldest first, as a JSON array
/// of outcome objects (see comfywire_outcome_json()).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_history(
    client: *const Client,
    out_json: *mut *mut c_char,
) -> Status {
    // SAFETY: the general contract.
    unsafe {
        with_text(client, out_json, |c| {
            let ring = block_on(c.jobs().history())?;
            Ok(Value::from_iter(ring.iter().map(HostOutcome::to_json)))
        })
    }
}

/// Interrupts the prompt if it is the one running now (never someone
/// else's). Sets `*out_sent` to whether an interrupt was sent; `out_sent`
/// may be NULL (cleared to false first).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_interrupt(
    client: *const Client,
    prompt_id: *const c_char,
    out_sent: *mut bool,
) -> Status {
    // SAFETY: the general contract (`out_sent` NULL or writable).
    unsafe {
        if let Some(out) = out_sent.as_mut() {
            *out = false;
        }
        with(client, |c| {
            let sent = block_on(c.jobs().interrupt(str_arg(prompt_id, "prompt_id")?))?;
            if let Some(out) = out_sent.as_mut() {
                *out = sent;
            }
            Ok(())
        })
    }
}

/// The server's queue as JSON: `{"running": [ids], "pending": [ids],
/// "items": {"running": [...], "pending": [...]}}`, pending in run order;
/// each item is `{"prompt_id", "number", "client_id"}`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_queue(
    client: *const Client,
    out_json: *mut *mut c_char,
) -> Status {
    // SAFETY: the general contract.
    unsafe {
        with_text(client, out_json, |c| {
            Ok(block_on(c.jobs().queue())?.to_json())
        })
    }
}

/// Deletes pending prompts: `prompt_ids` is an array of `count` ids
/// (`count` 0 with a NULL array does nothing).
///
/// # Safety
/// `prompt_ids` is NULL or points to `count` pointers, each NULL or
/// NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_delete(
    client: *const Client,
    prompt_ids: *const *const c_char,
    count: usize,
) -> Status {
    // SAFETY: the general contract, for the array and each id.
    unsafe {
        with(client, |c| {
            let ids = slice_arg(prompt_ids, count, "prompt_ids")?.iter();
            let ids = ids.map(|p| str_arg(*p, "prompt_ids[i]").map(str::to_owned));
            block_on(c.jobs().delete(&ids.collect::<Result<Vec<_>, _>>()?))
        })
    }
}

/// Deletes every pending prompt (the running one goes on; see
/// comfywire_interrupt()).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_clear_queue(client: *const Client) -> Status {
    // SAFETY: the general contract.
    unsafe { with(client, |c| block_on(c.jobs().clear_queue())) }
}

/// The server's `/history` entry of a prompt as JSON; `*out_json` is NULL
/// when the server has none.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_server_history(
    client: *const Client,
    prompt_id: *const c_char,
    out_json: *mut *mut c_char,
) -> Status {
    // SAFETY: the general contract.
    unsafe {
        with_out(client, out_json, std::ptr::null_mut(), "out", |c| {
            let entry = block_on(c.jobs().server_history(str_arg(prompt_id, "prompt_id")?))?;
            Ok(entry.map(into_c))
        })
    }
}

/// The server's `GET /system_stats` as JSON.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_system_stats(
    client: *const Client,
    out_json: *mut *mut c_char,
) -> Status {
    // SAFETY: the general contract.
    unsafe { with_text(client, out_json, |c| block_on(c.jobs().system_stats())) }
}
