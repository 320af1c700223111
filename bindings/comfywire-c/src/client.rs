//! `comfywire_client`: creation, connection state, counters, lifecycle
//! hints and shutdown, each a mapping onto `HostClient`.

use std::ffi::c_char;
use std::time::Duration;

use comfywire_host::{HostClient, Jobs, block_on};

use crate::call::{Object, start, with, with_text};
use crate::options::Options;
use crate::panic::ffi_free;
use crate::status::Status;
use crate::strings::{ref_arg, str_arg};

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

impl Object for Client {
    const NAME: &'static str = "client";
}

/// Creates a client from `options` (read during the call only) and starts
/// connecting in the background (comfywire_connect() waits for it). Sets
/// `*out_client`.
///
/// # Safety
/// `options` is NULL or initialised.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_client_new(
    options: *const Options,
    out_client: *mut *mut Client,
) -> Status {
    // SAFETY: the general contract, and `options` is initialised.
    unsafe {
        start(out_client, "out_client", || {
            let settings = ref_arg(options, "options")?.to_settings()?;
            Ok(Client {
                host: HostClient::new(&settings)?,
            })
        })
    }
}

/// Creates a client from a JSON settings string, the format of comfywire's
/// settings file (`{"url": "http://127.0.0.1:8188"}` is enough; every field
/// is optional). `COMFYWIRE_*` environment variables override it. Sets
/// `*out_client`; connects in the background.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_client_new_json(
    settings_json: *const c_char,
    out_client: *mut *mut Client,
) -> Status {
    // SAFETY: the general contract.
    unsafe {
        start(out_client, "out_client", || {
            let json = str_arg(settings_json, "settings_json")?;
            Ok(Client {
                host: HostClient::from_settings_json(json)?,
            })
        })
    }
}

/// Closes the client (if not closed yet) and frees it. Blocks until the
/// socket is closed and the dispatcher thread has stopped (a callback
/// running now is waited for); every remaining subscription's
/// `free_user_data` runs before this returns. NULL is ignored. Called from
/// one of this client's own callbacks, it returns at once: the close
/// completes after that callback returns, and the running subscription's
/// `free_user_data` runs then, on the dispatcher thread.
///
/// # Safety
/// `client` is NULL or a client not freed yet, which no other thread uses
/// any more.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_client_free(client: *mut Client) {
    // SAFETY: it came from `start` and is freed once; dropping closes it.
    unsafe { ffi_free(client) }
}

/// Closes the client without freeing it: the socket closes, blocked calls
/// return COMFYWIRE_CLOSED, no callback starts any more, every
/// subscription's `free_user_data` runs, and later calls fail with
/// COMFYWIRE_CLOSED. Idempotent. Blocks like comfywire_client_free();
/// called from one of this client's own callbacks, it returns at once
/// (later calls fail with COMFYWIRE_CLOSED already) and the close completes
/// after that callback returns.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_client_close(client: *const Client) -> Status {
    // SAFETY: the general contract.
    unsafe {
        with(client, |c| {
            c.host.close();
            Ok(())
        })
    }
}

/// The client id sent to the server.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_client_id(
    client: *const Client,
    out_id: *mut *mut c_char,
) -> Status {
    // SAFETY: the general contract.
    unsafe { with_text(client, out_id, |c| Ok(c.host.client_id())) }
}

/// Blocks until the socket is connected, up to `timeout_ms`
/// (COMFYWIRE_TIMEOUT or the connect error otherwise; the client keeps
/// retrying in the background either way).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_connect(client: *const Client, timeout_ms: u32) -> Status {
    let timeout = Duration::from_millis(u64::from(timeout_ms));
    // SAFETY: the general contract.
    unsafe { with(client, |c| block_on(c.jobs().wait_connected(timeout))) }
}

/// The connection state now: `idle`, `connecting`, `connected`,
/// `reconnecting`, `polling`, `paused` or `closed`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_connection_state(
    client: *const Client,
    out_state: *mut *mut c_char,
) -> Status {
    // SAFETY: the general contract.
    unsafe { with_text(client, out_state, |c| Ok(c.host.status().state)) }
}

/// The connection status as JSON: `state`, `attempt`, `next_retry_ms`,
/// `last_error`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_connection_status_json(
    client: *const Client,
    out_json: *mut *mut c_char,
) -> Status {
    // SAFETY: the general contract.
    unsafe { with_text(client, out_json, |c| Ok(c.host.status().to_json())) }
}

/// The client's counters as JSON: `frames`, `events`, `bad_frames`,
/// `reconnects`, `coalesced`, `dropped`, `callback_failures`, `callbacks`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_stats_json(
    client: *const Client,
    out_json: *mut *mut c_char,
) -> Status {
    // SAFETY: the general contract.
    unsafe { with_text(client, out_json, |c| Ok(c.host.stats().to_json())) }
}

/// The app went to the background: disconnect and stop retrying until
/// comfywire_resume().
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_pause(client: *const Client) -> Status {
    // SAFETY: the general contract.
    unsafe { with(client, |c| c.jobs().pause()) }
}

/// The app is back: reconnect now.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_resume(client: *const Client) -> Status {
    // SAFETY: the general contract.
    unsafe { with(client, |c| c.jobs().resume()) }
}

/// The network changed (e.g. Wi-Fi to cellular): check or reconnect now.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_network_changed(client: *const Client) -> Status {
    // SAFETY: the general contract.
    unsafe { with(client, |c| c.jobs().network_changed()) }
}

/// Skips the current backoff wait and reconnects now.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_retry_now(client: *const Client) -> Status {
    // SAFETY: the general contract.
    unsafe { with(client, |c| c.jobs().retry_now()) }
}
