//! `comfywire_client`: creation, connection, jobs, queue and shutdown, each
//! a thin mapping onto `HostClient`.

use std::ffi::c_char;
use std::time::Duration;

use comfywire_host::{ErrorCode, HostClient, HostError};

use crate::options::Options;
use crate::outcome::Outcome;
use crate::panic::{ffi_status, ffi_void};
use crate::status::Status;
use crate::strings::{Out, into_c, str_arg};

/// A comfywire client: one connection to one ComfyUI server, with its own
/// dispatcher thread for callbacks. Create it with comfywire_client_new()
/// or comfywire_client_new_json(); free it with comfywire_client_free().
pub struct Client {
    pub(crate) host: HostClient,
}

/// Borrows a required client argument.
///
/// # Safety
/// `client` is NULL or a live client that outlives `'a`.
pub(crate) unsafe fn client_arg<'a>(client: *const Client) -> Result<&'a Client, HostError> {
    // SAFETY: forwarded from this function's contract.
    unsafe { client.as_ref() }
        .ok_or_else(|| HostError::new(ErrorCode::InvalidArgument, "client is NULL"))
}

fn millis(ms: u32) -> Duration {
    Duration::from_millis(u64::from(ms))
}

fn start(host: Result<HostClient, HostError>, out: Out<*mut Client>) -> Result<(), HostError> {
    out.set(Box::into_raw(Box::new(Client { host: host? })));
    Ok(())
}

/// Creates a client from `options` and starts connecting in the background
/// (use comfywire_connect() to wait for it). Sets `*out_client`.
///
/// Ownership: the caller owns `*out_client` and frees it with
/// comfywire_client_free(). `options` and its strings are only read during
/// the call.
///
/// # Safety
/// `options` is NULL or points to an initialised comfywire_options whose
/// strings are NULL or NUL-terminated; `out_client` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_client_new(
    options: *const Options,
    out_client: *mut *mut Client,
) -> Status {
    ffi_status(|| {
        // SAFETY: forwarded from this function's contract.
        let out = unsafe { Out::new(out_client, std::ptr::null_mut(), "out_client") }?;
        // SAFETY: forwarded from this function's contract.
        let options = unsafe { options.as_ref() }
            .ok_or_else(|| HostError::new(ErrorCode::InvalidArgument, "options is NULL"))?;
        // SAFETY: forwarded from this function's contract.
        let settings = unsafe { (*options).to_settings() }?;
        start(HostClient::new(settings.to_config()?), out)
    })
}

/// Creates a client from a JSON settings string, the format of comfywire's
/// settings file (`{"url": "http://127.0.0.1:8188"}` is enough; every field
/// is optional). `COMFYWIRE_*` environment variables override it. Sets
/// `*out_client`; connects in the background.
///
/// Ownership: the caller owns `*out_client` and frees it with
/// comfywire_client_free(). `settings_json` is only read during the call.
///
/// # Safety
/// `settings_json` is NULL or NUL-terminated; `out_client` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_client_new_json(
    settings_json: *const c_char,
    out_client: *mut *mut Client,
) -> Status {
    ffi_status(|| {
        // SAFETY: forwarded from this function's contract.
        let out = unsafe { Out::new(out_client, std::ptr::null_mut(), "out_client") }?;
        // SAFETY: forwarded from this function's contract.
        let json = unsafe { str_arg(settings_json, "settings_json") }?;
        start(HostClient::from_settings_json(json), out)
    })
}

/// Closes the client (if not closed yet) and frees it. Blocks until the
/// socket is closed and the dispatcher thread has stopped; every remaining
/// subscription's `free_user_data` runs on the calling thread before this
/// returns. NULL is ignored. Must not be called from one of this client's
/// own callbacks.
///
/// # Safety
/// `client` is NULL or a client from comfywire_client_new*() not freed yet,
/// and no other thread uses it any more.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_client_free(client: *mut Client) {
    ffi_void(|| {
        if !client.is_null() {
            // SAFETY: per the contract it came from Box::into_raw in `start`
            // and is freed once; dropping HostClient closes it.
            drop(unsafe { Box::from_raw(client) });
        }
    });
}

/// Closes the client without freeing it: the socket closes, blocked calls
/// return COMFYWIRE_CLOSED, every subscription's `free_user_data` runs, and
/// later calls fail with COMFYWIRE_CLOSED. Idempotent. Must not be called
/// from one of this client's own callbacks.
///
/// # Safety
/// `client` is NULL or a live client.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_client_close(client: *const Client) -> Status {
    ffi_status(|| {
        // SAFETY: forwarded from this function's contract.
        unsafe { client_arg(client) }?.host.close();
        Ok(())
    })
}

/// The client id sent to the server.
///
/// Ownership: the caller frees `*out_id` with comfywire_string_free().
///
/// # Safety
/// `client` is NULL or a live client; `out_id` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_client_id(
    client: *const Client,
    out_id: *mut *mut c_char,
) -> Status {
    ffi_status(|| {
        // SAFETY: forwarded from this function's contract.
        let out = unsafe { Out::new(out_id, std::ptr::null_mut(), "out_id") }?;
        // SAFETY: forwarded from this function's contract.
        let client = unsafe { client_arg(client) }?;
        out.set(into_c(client.host.client_id()));
        Ok(())
    })
}

/// Blocks until the socket is connected, up to `timeout_ms`
/// (COMFYWIRE_TIMEOUT or the connect error otherwise; the client keeps
/// retrying in the background either way).
///
/// # Safety
/// `client` is NULL or a live client.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_connect(client: *const Client, timeout_ms: u32) -> Status {
    ffi_status(|| {
        // SAFETY: forwarded from this function's contract.
        let client = unsafe { client_arg(client) }?;
        client.host.wait_connected(millis(timeout_ms))
    })
}

/// The connection state now: `idle`, `connecting`, `connected`,
/// `reconnecting`, `polling`, `paused` or `closed`.
///
/// Ownership: the caller frees `*out_state` with comfywire_string_free().
///
/// # Safety
/// `client` is NULL or a live client; `out_state` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_connection_state(
    client: *const Client,
    out_state: *mut *mut c_char,
) -> Status {
    ffi_status(|| {
        // SAFETY: forwarded from this function's contract.
        let out = unsafe { Out::new(out_state, std::ptr::null_mut(), "out_state") }?;
        // SAFETY: forwarded from this function's contract.
        let client = unsafe { client_arg(client) }?;
        out.set(into_c(client.host.status().state));
        Ok(())
    })
}

/// The connection status as JSON: `state`, `attempt`, `next_retry_ms`,
/// `last_error`.
///
/// Ownership: the caller frees `*out_json` with comfywire_string_free().
///
/// # Safety
/// `client` is NULL or a live client; `out_json` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_connection_status_json(
    client: *const Client,
    out_json: *mut *mut c_char,
) -> Status {
    ffi_status(|| {
        // SAFETY: forwarded from this function's contract.
        let out = unsafe { Out::new(out_json, std::ptr::null_mut(), "out_json") }?;
        // SAFETY: forwarded from this function's contract.
        let client = unsafe { client_arg(client) }?;
        out.set(into_c(client.host.status().to_json().to_string()));
        Ok(())
    })
}

/// Submits a workflow (API-format JSON) and sets `*out_prompt_id`. A
/// refused prompt gives COMFYWIRE_VALIDATION, with the node errors in
/// comfywire_last_error_detail_json().
///
/// Ownership: the caller frees `*out_prompt_id` with comfywire_string_free().
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
    ffi_status(|| {
        // SAFETY: forwarded from this function's contract.
        let out = unsafe { Out::new(out_prompt_id, std::ptr::null_mut(), "out_prompt_id") }?;
        // SAFETY: forwarded from this function's contract.
        let client = unsafe { client_arg(client) }?;
        // SAFETY: forwarded from this function's contract.
        let workflow = unsafe { str_arg(workflow_json, "workflow_json") }?;
        out.set(into_c(client.host.submit(workflow)?.prompt_id));
        Ok(())
    })
}

/// Stores an error's outcome (failed, interrupted, lost) in `out` and
/// passes the error on.
fn with_outcome(
    result: Result<comfywire_host::HostOutcome, HostError>,
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
    ffi_status(|| {
        // SAFETY: forwarded from this function's contract.
        let out = unsafe { Out::new(out_outcome, std::ptr::null_mut(), "out_outcome") }?;
        // SAFETY: forwarded from this function's contract.
        let client = unsafe { client_arg(client) }?;
        // SAFETY: forwarded from this function's contract.
        let workflow = unsafe { str_arg(workflow_json, "workflow_json") }?;
        let timeout = (timeout_ms > 0).then(|| millis(timeout_ms));
        let result = client
            .host
            .run(workflow, timeout)
            .and_then(comfywire_host::outcome_result);
        with_outcome(result, out)
    })
}

/// Blocks up to `timeout_ms` for a submitted prompt to end. Statuses and
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
    ffi_status(|| {
        // SAFETY: forwarded from this function's contract.
        let out = unsafe { Out::new(out_outcome, std::ptr::null_mut(), "out_outcome") }?;
        // SAFETY: forwarded from this function's contract.
        let client = unsafe { client_arg(client) }?;
        // SAFETY: forwarded from this function's contract.
        let prompt_id = unsafe { str_arg(prompt_id, "prompt_id") }?;
        with_outcome(client.host.wait(prompt_id, millis(timeout_ms)), out)
    })
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
        let out = if out_sent.is_null() {
            None
        } else {
            // SAFETY: non-null, and the caller guarantees it is writable.
            Some(unsafe { Out::new(out_sent, false, "out_sent") }?)
        };
        // SAFETY: forwarded from this function's contract.
        let client = unsafe { client_arg(client) }?;
        // SAFETY: forwarded from this function's contract.
        let prompt_id = unsafe { str_arg(prompt_id, "prompt_id") }?;
        let sent = client.host.interrupt(prompt_id)?;
        if let Some(out) = out {
            out.set(sent);
        }
        Ok(())
    })
}

/// The server's queue as JSON: `{"running": [ids], "pending": [ids]}`,
/// pending in run order.
///
/// Ownership: the caller frees `*out_json` with comfywire_string_free().
///
/// # Safety
/// `client` is NULL or a live client; `out_json` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_queue(
    client: *const Client,
    out_json: *mut *mut c_char,
) -> Status {
    ffi_status(|| {
        // SAFETY: forwarded from this function's contract.
        let out = unsafe { Out::new(out_json, std::ptr::null_mut(), "out_json") }?;
        // SAFETY: forwarded from this function's contract.
        let client = unsafe { client_arg(client) }?;
        let queue = client.host.queue()?;
        let json = serde_json::json!({"running": queue.running, "pending": queue.pending});
        out.set(into_c(json.to_string()));
        Ok(())
    })
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
    ffi_status(|| {
        // SAFETY: forwarded from this function's contract.
        let client = unsafe { client_arg(client) }?;
        if count == 0 {
            return Ok(());
        }
        if prompt_ids.is_null() {
            return Err(HostError::new(
                ErrorCode::InvalidArgument,
                "prompt_ids is NULL",
            ));
        }
        // SAFETY: non-null and, per the contract, `count` readable pointers.
        let raw = unsafe { std::slice::from_raw_parts(prompt_ids, count) };
        let ids = raw
            .iter()
            // SAFETY: each element is NULL or NUL-terminated per the contract.
            .map(|p| unsafe { str_arg(*p, "prompt_ids[i]") }.map(str::to_owned))
            .collect::<Result<Vec<_>, _>>()?;
        client.host.delete(&ids)
    })
}

/// Deletes every pending prompt (the running one goes on; see
/// comfywire_interrupt()).
///
/// # Safety
/// `client` is NULL or a live client.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_clear_queue(client: *const Client) -> Status {
    ffi_status(|| {
        // SAFETY: forwarded from this function's contract.
        unsafe { client_arg(client) }?.host.clear_queue()
    })
}

/// The server's `/history` entry of a prompt as JSON; `*out_json` is NULL
/// when the server has none.
///
/// Ownership: the caller frees `*out_json` with comfywire_string_free().
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
    ffi_status(|| {
        // SAFETY: forwarded from this function's contract.
        let out = unsafe { Out::new(out_json, std::ptr::null_mut(), "out_json") }?;
        // SAFETY: forwarded from this function's contract.
        let client = unsafe { client_arg(client) }?;
        // SAFETY: forwarded from this function's contract.
        let prompt_id = unsafe { str_arg(prompt_id, "prompt_id") }?;
        if let Some(json) = client.host.server_history(prompt_id)? {
            out.set(into_c(json));
        }
        Ok(())
    })
}

/// The client's counters as JSON: `frames`, `events`, `bad_frames`,
/// `reconnects`, `coalesced`, `dropped`, `callback_failures`, `callbacks`.
///
/// Ownership: the caller frees `*out_json` with comfywire_string_free().
///
/// # Safety
/// `client` is NULL or a live client; `out_json` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_stats_json(
    client: *const Client,
    out_json: *mut *mut c_char,
) -> Status {
    ffi_status(|| {
        // SAFETY: forwarded from this function's contract.
        let out = unsafe { Out::new(out_json, std::ptr::null_mut(), "out_json") }?;
        // SAFETY: forwarded from this function's contract.
        let s = unsafe { client_arg(client) }?.host.stats();
        let json = serde_json::json!({
            "frames": s.frames, "events": s.events, "bad_frames": s.bad_frames,
            "reconnects": s.reconnects, "coalesced": s.coalesced, "dropped": s.dropped,
            "callback_failures": s.callback_failures, "callbacks": s.callbacks,
        });
        out.set(into_c(json.to_string()));
        Ok(())
    })
}

/// The app went to the background: disconnect and stop retrying until
/// comfywire_resume().
///
/// # Safety
/// `client` is NULL or a live client.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_pause(client: *const Client) -> Status {
    // SAFETY: forwarded from this function's contract.
    ffi_status(|| unsafe { client_arg(client) }?.host.pause())
}

/// The app is back: reconnect now.
///
/// # Safety
/// `client` is NULL or a live client.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_resume(client: *const Client) -> Status {
    // SAFETY: forwarded from this function's contract.
    ffi_status(|| unsafe { client_arg(client) }?.host.resume())
}

/// The network changed (e.g. Wi-Fi to cellular): check or reconnect now.
///
/// # Safety
/// `client` is NULL or a live client.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_network_changed(client: *const Client) -> Status {
    // SAFETY: forwarded from this function's contract.
    ffi_status(|| unsafe { client_arg(client) }?.host.network_changed())
}
