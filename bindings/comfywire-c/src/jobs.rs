//! Jobs: submit, run and wait (with every deadline), queue operations,
//! interrupt, the client's records and the server's history — each a call
//! of the host's job API made blocking with `block_on`.

use std::ffi::c_char;

use comfywire_host::{ErrorCode, HostError, HostOutcome, JobOptions, block_on, parse_json};
use serde_json::{Value, json};

use crate::client::{Client, client_arg, with_client, with_client_text};
use crate::options::JobSpec;
use crate::outcome::Outcome;
use crate::panic::ffi_status;
use crate::status::Status;
use crate::strings::{Out, str_arg};

/// Stores the outcome of a result in `out` — on success, and for a failed,
/// interrupted or lost prompt too — and passes the error on.
fn with_outcome(
    result: Result<HostOutcome, HostError>,
    out: Out<*mut Outcome>,
) -> Result<(), HostError> {
    match result {
        Ok(outcome) => {
            out.set(Outcome::into_raw(outcome));
            Ok(())
        }
        Err(mut error) => {
            if let Some(outcome) = error.outcome.take() {
                out.set(Outcome::into_raw(*outcome));
            }
            Err(error)
        }
    }
}

/// Runs a job call that names a prompt (or a workflow) and answers an
/// outcome.
///
/// # Safety
/// `client` is NULL or live; `text` is NULL or NUL-terminated; `options`
/// is NULL or initialised; `out` is NULL or writable.
unsafe fn outcome_call(
    client: *const Client,
    text: *const c_char,
    what: &str,
    options: *const JobSpec,
    out: *mut *mut Outcome,
    call: impl FnOnce(&Client, &str, JobOptions) -> Result<HostOutcome, HostError>,
) -> Status {
    ffi_status(|| {
        // SAFETY: forwarded from this function's contract.
        let out = unsafe { Out::new(out, std::ptr::null_mut(), "out_outcome") }?;
        // SAFETY: forwarded from this function's contract.
        let (client, text) = unsafe { (client_arg(client)?, str_arg(text, what)?) };
        // SAFETY: forwarded from this function's contract.
        let options = unsafe { JobSpec::read(options) }?;
        with_outcome(call(client, text, options), out)
    })
}

/// Submits a workflow (API-format JSON) and sets `*out_prompt_id`. A
/// refused prompt gives COMFYWIRE_VALIDATION, with the node errors in
/// comfywire_last_error_detail_json().
///
/// # Safety
/// `client` is NULL or a live client; `workflow_json` is NULL or
/// NUL-terminated; `out_prompt_id` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_submit(
    client: *const Client,
    workflow_json: *const c_char,
    out_prompt_id: *mut *mut c_char,
) -> Status {
    // SAFETY: forwarded from this function's contract.
    unsafe { comfywire_submit_with(client, workflow_json, std::ptr::null(), out_prompt_id) }
}

/// comfywire_submit() with options (prompt id, extra data, front of the
/// queue; NULL options are the defaults).
///
/// # Safety
/// As comfywire_submit(); `options` is NULL or initialised.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_submit_with(
    client: *const Client,
    workflow_json: *const c_char,
    options: *const JobSpec,
    out_prompt_id: *mut *mut c_char,
) -> Status {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        with_client_text(client, out_prompt_id, |c| {
            let workflow = parse_json(str_arg(workflow_json, "workflow_json")?, "workflow")?;
            let submitted = block_on(c.jobs().submit(workflow, JobSpec::read(options)?))?;
            Ok(Some(submitted.prompt_id))
        })
    }
}

/// Submits a workflow and blocks until it ends. `timeout_ms` is the total
/// deadline (0 keeps the client's configured deadlines). COMFYWIRE_OK when
/// it succeeded; COMFYWIRE_EXECUTION_FAILED, COMFYWIRE_INTERRUPTED or
/// COMFYWIRE_LOST when it ended otherwise; COMFYWIRE_DEADLINE when a
/// deadline expired; COMFYWIRE_VALIDATION when it was refused.
///
/// Ownership: `*out_outcome` is set whenever there is an outcome, on
/// success and for failed, interrupted and lost prompts too; the caller
/// frees it with comfywire_outcome_free() (NULL otherwise).
///
/// # Safety
/// `client` is NULL or a live client; `workflow_json` is NULL or
/// NUL-terminated; `out_outcome` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_run(
    client: *const Client,
    workflow_json: *const c_char,
    timeout_ms: u32,
    out_outcome: *mut *mut Outcome,
) -> Status {
    let mut options = crate::options::comfywire_job_options_default();
    options.timeout_ms = timeout_ms;
    // SAFETY: forwarded from this function's contract.
    unsafe { comfywire_run_with(client, workflow_json, &options, out_outcome) }
}

/// comfywire_run() with options: the total, stall and queue deadlines
/// (COMFYWIRE_DEADLINE, with the kind in the last error's detail JSON),
/// prompt id, extra data, front of the queue. NULL options are the
/// defaults.
///
/// Ownership: as comfywire_run().
///
/// # Safety
/// As comfywire_run(); `options` is NULL or initialised.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_run_with(
    client: *const Client,
    workflow_json: *const c_char,
    options: *const JobSpec,
    out_outcome: *mut *mut Outcome,
) -> Status {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        outcome_call(
            client,
            workflow_json,
            "workflow_json",
            options,
            out_outcome,
            |c, text, o| block_on(c.jobs().run(parse_json(text, "workflow")?, o)),
        )
    }
}

/// Blocks up to `timeout_ms` for a prompt to end. Statuses and
/// `*out_outcome` as comfywire_run(); COMFYWIRE_TIMEOUT when the time ran
/// out (the prompt goes on; call again).
///
/// Ownership: the caller frees `*out_outcome` with comfywire_outcome_free().
///
/// # Safety
/// `client` is NULL or a live client; `prompt_id` is NULL or
/// NUL-terminated; `out_outcome` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_wait(
    client: *const Client,
    prompt_id: *const c_char,
    timeout_ms: u32,
    out_outcome: *mut *mut Outcome,
) -> Status {
    let mut options = crate::options::comfywire_job_options_default();
    options.timeout_ms = timeout_ms.max(1);
    // SAFETY: forwarded from this function's contract.
    unsafe { comfywire_wait_with(client, prompt_id, &options, out_outcome) }
}

/// comfywire_wait() with options: `timeout_ms` bounds the wait
/// (COMFYWIRE_TIMEOUT; 0 waits as long as it takes), the stall and queue
/// deadlines give COMFYWIRE_DEADLINE. NULL options wait without a bound.
///
/// Ownership: as comfywire_wait().
///
/// # Safety
/// As comfywire_wait(); `options` is NULL or initialised.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_wait_with(
    client: *const Client,
    prompt_id: *const c_char,
    options: *const JobSpec,
    out_outcome: *mut *mut Outcome,
) -> Status {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        outcome_call(
            client,
            prompt_id,
            "prompt_id",
            options,
            out_outcome,
            |c, id, o| block_on(c.jobs().wait(id, &o)),
        )
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
        with_client(client, |c| {
            block_on(c.jobs().attach(str_arg(prompt_id, "prompt_id")?))
        })
    }
}

/// The journal's prompts that were unfinished when this client started
/// (see `journal_path` in comfywire_options), as a JSON array of prompt
/// ids in submission order (`[]` without a journal). Each is attached
/// already: comfywire_wait() on it gives its outcome.
///
/// Ownership: the caller frees `*out_json` with comfywire_string_free().
///
/// # Safety
/// `client` is NULL or a live client; `out_json` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_resumed_json(
    client: *const Client,
    out_json: *mut *mut c_char,
) -> Status {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        with_client_text(client, out_json, |c| {
            Ok(Some(json!(c.host.resumed()).to_string()))
        })
    }
}

/// The client's record of a prompt it has seen, in any phase; `*out_outcome`
/// is NULL when it has none.
///
/// Ownership: the caller frees `*out_outcome` with comfywire_outcome_free().
///
/// # Safety
/// `client` is NULL or a live client; `prompt_id` is NULL or
/// NUL-terminated; `out_outcome` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_execution(
    client: *const Client,
    prompt_id: *const c_char,
    out_outcome: *mut *mut Outcome,
) -> Status {
    ffi_status(|| {
        // SAFETY: forwarded from this function's contract.
        let out = unsafe { Out::new(out_outcome, std::ptr::null_mut(), "out_outcome") }?;
        // SAFETY: forwarded from this function's contract.
        let (c, id) = unsafe { (client_arg(client)?, str_arg(prompt_id, "prompt_id")?) };
        if let Some(outcome) = block_on(c.jobs().execution(id))? {
            out.set(Outcome::into_raw(outcome));
        }
        Ok(())
    })
}

/// The client's ring of finished executions, oldest first, as a JSON array
/// of outcome objects (see comfywire_outcome_json()).
///
/// # Safety
/// `client` is NULL or a live client; `out_json` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_history(
    client: *const Client,
    out_json: *mut *mut c_char,
) -> Status {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        with_client_text(client, out_json, |c| {
            let ring = block_on(c.jobs().history())?;
            let list: Vec<Value> = ring.iter().map(HostOutcome::to_json).collect();
            Ok(Some(Value::Array(list).to_string()))
        })
    }
}

/// Interrupts the prompt if it is the one running now (never someone
/// else's). Sets `*out_sent` to whether an interrupt was sent; `out_sent`
/// may be NULL.
///
/// # Safety
/// `client` is NULL or a live client; `prompt_id` is NULL or
/// NUL-terminated; `out_sent` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_interrupt(
    client: *const Client,
    prompt_id: *const c_char,
    out_sent: *mut bool,
) -> Status {
    ffi_status(|| {
        // SAFETY: forwarded from this function's contract.
        let (c, id) = unsafe { (client_arg(client)?, str_arg(prompt_id, "prompt_id")?) };
        let sent = block_on(c.jobs().interrupt(id))?;
        if !out_sent.is_null() {
            // SAFETY: non-null, and the caller guarantees it is writable.
            unsafe { out_sent.write(sent) };
        }
        Ok(())
    })
}

/// The server's queue as JSON: `{"running": [ids], "pending": [ids],
/// "items": {"running": [...], "pending": [...]}}`, pending in run order;
/// each item is `{"prompt_id", "number", "client_id"}`.
///
/// # Safety
/// `client` is NULL or a live client; `out_json` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_queue(
    client: *const Client,
    out_json: *mut *mut c_char,
) -> Status {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        with_client_text(client, out_json, |c| {
            let q = block_on(c.jobs().queue())?;
            Ok(Some(q.to_json().to_string()))
        })
    }
}

/// Deletes pending prompts: `prompt_ids` is an array of `count` ids
/// (`count` 0 with a NULL array does nothing).
///
/// # Safety
/// `client` is NULL or a live client; `prompt_ids` is NULL or points to
/// `count` pointers, each NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_delete(
    client: *const Client,
    prompt_ids: *const *const c_char,
    count: usize,
) -> Status {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        with_client(client, |c| {
            if count == 0 {
                return Ok(());
            }
            if prompt_ids.is_null() {
                return Err(HostError::new(
                    ErrorCode::InvalidArgument,
                    "prompt_ids is NULL",
                ));
            }
            let ids = std::slice::from_raw_parts(prompt_ids, count)
                .iter()
                .map(|p| str_arg(*p, "prompt_ids[i]").map(str::to_owned))
                .collect::<Result<Vec<_>, _>>()?;
            block_on(c.jobs().delete(&ids))
        })
    }
}

/// Deletes every pending prompt (the running one goes on; see
/// comfywire_interrupt()).
///
/// # Safety
/// `client` is NULL or a live client.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_clear_queue(client: *const Client) -> Status {
    // SAFETY: forwarded from this function's contract.
    unsafe { with_client(client, |c| block_on(c.jobs().clear_queue())) }
}

/// The server's `/history` entry of a prompt as JSON; `*out_json` is NULL
/// when the server has none.
///
/// # Safety
/// `client` is NULL or a live client; `prompt_id` is NULL or
/// NUL-terminated; `out_json` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_server_history(
    client: *const Client,
    prompt_id: *const c_char,
    out_json: *mut *mut c_char,
) -> Status {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        with_client_text(client, out_json, |c| {
            let entry = block_on(c.jobs().server_history(str_arg(prompt_id, "prompt_id")?))?;
            Ok(entry.map(|v| v.to_string()))
        })
    }
}

/// The server's `GET /system_stats` as JSON.
///
/// # Safety
/// `client` is NULL or a live client; `out_json` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_system_stats(
    client: *const Client,
    out_json: *mut *mut c_char,
) -> Status {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        with_client_text(client, out_json, |c| {
            Ok(Some(block_on(c.jobs().system_stats())?.to_string()))
        })
    }
}
