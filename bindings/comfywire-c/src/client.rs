//! `comfywire_client`: creation, connection state, counters, lifecycle
//! hints and shutdown, each a mapping onto `HostClient`.

use std::ffi::c_char;
use std::time::Duration;

use comfywire_host::{ErrorCode, HostClient, HostError, Jobs, block_on};

use crate::options::Options;
use crate::panic::{ffi_status, ffi_void};
use crate::status::Status;
use crate::strings::{Out, into_c, str_arg};

/// A comfywire client: one connection to one ComfyUI server, with its own
/// dispatcher thread for callbacks. Create it with comfywire_client_new()
/// or comfywire_client_new_json(); free it with comfywire_client_free().
pub struct Client {
    pub(crate) host: HostClient,
}

impl Client {
    pub(crate) fn jobs(&self) -> &Jobs {
        self.host.jobs()
    }
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

/// Runs `body` with a required client argument inside the panic boundary.
///
/// # Safety
/// `client` is NULL or a live client.
pub(crate) unsafe fn with_client(
    client: *const Client,
    body: impl FnOnce(&Client) -> Result<(), HostError>,
) -> Status {
    // SAFETY: forwarded from this function's contract.
    ffi_status(|| body(unsafe { client_arg(client) }?))
}

/// Runs `body` with a client and a `char *` out-parameter it may set
/// (NULL first, so a failure leaves nothing behind).
///
/// # Safety
/// `client` is NULL or a live client; `out` is NULL or writable.
pub(crate) unsafe fn with_client_text(
    client: *const Client,
    out: *mut *mut c_char,
    body: impl FnOnce(&Client) -> Result<Option<String>, HostError>,
) -> Status {
    ffi_status(|| {
        // SAFETY: forwarded from this function's contract.
        let out = unsafe { Out::new(out, std::ptr::null_mut(), "out") }?;
        // SAFETY: forwarded from this function's contract.
        if let Some(text) = body(unsafe { client_arg(client) }?)? {
            out.set(into_c(text));
        }
        Ok(())
    })
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
        start(HostClient::new(&settings), out)
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
    // SAFETY: forwarded from this function's contract.
    unsafe {
        with_client(client, |c| {
            c.host.close();
            Ok(())
        })
    }
}

/// The client id sent to the server.
///
/// # Safety
/// `client` is NULL or a live client; `out_id` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_client_id(
    client: *const Client,
    out_id: *mut *mut c_char,
) -> Status {
    // SAFETY: forwarded from this function's contract.
    unsafe { with_client_text(client, out_id, |c| Ok(Some(c.host.client_id()))) }
}

/// Blocks until the socket is connected, up to `timeout_ms`
/// (COMFYWIRE_TIMEOUT or the connect error otherwise; the client keeps
/// retrying in the background either way).
///
/// # Safety
/// `client` is NULL or a live client.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_connect(client: *const Client, timeout_ms: u32) -> Status {
    let timeout = Duration::from_millis(u64::from(timeout_ms));
    // SAFETY: forwarded from this function's contract.
    unsafe { with_client(client, |c| block_on(c.jobs().wait_connected(timeout))) }
}

/// The connection state now: `idle`, `connecting`, `connected`,
/// `reconnecting`, `polling`, `paused` or `closed`.
///
/// # Safety
/// `client` is NULL or a live client; `out_state` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_connection_state(
    client: *const Client,
    out_state: *mut *mut c_char,
) -> Status {
    // SAFETY: forwarded from this function's contract.
    unsafe { with_client_text(client, out_state, |c| Ok(Some(c.host.status().state))) }
}

/// The connection status as JSON: `state`, `attempt`, `next_retry_ms`,
/// `last_error`.
///
/// # Safety
/// `client` is NULL or a live client; `out_json` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_connection_status_json(
    client: *const Client,
    out_json: *mut *mut c_char,
) -> Status {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        with_client_text(client, out_json, |c| {
            Ok(Some(c.host.status().to_json().to_string()))
        })
    }
}

/// The client's counters as JSON: `frames`, `events`, `bad_frames`,
/// `reconnects`, `coalesced`, `dropped`, `callback_failures`, `callbacks`.
///
/// # Safety
/// `client` is NULL or a live client; `out_json` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_stats_json(
    client: *const Client,
    out_json: *mut *mut c_char,
) -> Status {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        with_client_text(client, out_json, |c| {
            Ok(Some(c.host.stats().to_json().to_string()))
        })
    }
}

/// The app went to the background: disconnect and stop retrying until
/// comfywire_resume().
///
/// # Safety
/// `client` is NULL or a live client.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_pause(client: *const Client) -> Status {
    // SAFETY: forwarded from this function's contract.
    unsafe { with_client(client, |c| c.jobs().pause()) }
}

/// The app is back: reconnect now.
///
/// # Safety
/// `client` is NULL or a live client.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_resume(client: *const Client) -> Status {
    // SAFETY: forwarded from this function's contract.
    unsafe { with_client(client, |c| c.jobs().resume()) }
}

/// The network changed (e.g. Wi-Fi to cellular): check or reconnect now.
///
/// # Safety
/// `client` is NULL or a live client.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_network_changed(client: *const Client) -> Status {
    // SAFETY: forwarded from this function's contract.
    unsafe { with_client(client, |c| c.jobs().network_changed()) }
}

/// Skips the current backoff wait and reconnects now.
///
/// # Safety
/// `client` is NULL or a live client.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_retry_now(client: *const Client) -> Status {
    // SAFETY: forwarded from this function's contract.
    unsafe { with_client(client, |c| c.jobs().retry_now()) }
}
