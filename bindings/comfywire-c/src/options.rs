//! `comfywire_options`: the plain struct a client is built from when the
//! caller does not use a JSON settings string.

use std::ffi::c_char;

use comfywire_host::HostError;
use comfywire_host::comfywire_client::Settings;

use crate::strings::{opt_str_arg, str_arg};

/// What a client is built from. Start from comfywire_options_default() so
/// fields added later keep their defaults; 0 means "the default" for every
/// number. Strings are borrowed for the duration of comfywire_client_new()
/// only. Settings beyond these (auth, headers, backoff, throttles) are set
/// through comfywire_client_new_json().
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Base URL, `http(s)://host:port[/prefix]`. Required.
    pub url: *const c_char,
    /// The `clientId`; NULL generates one (kept across reconnects).
    pub client_id: *const c_char,
    /// Opening the socket may take this long (ms; default 10 s).
    pub connect_timeout_ms: u32,
    /// One HTTP request may take this long (ms; default 30 s).
    pub request_timeout_ms: u32,
    /// Default queue deadline of comfywire_run (ms; default none).
    pub queue_timeout_ms: u32,
    /// Default stall deadline of comfywire_run: no event for this long
    /// while running (ms; default none).
    pub stall_timeout_ms: u32,
    /// Default total deadline of comfywire_run (ms; default none).
    pub total_timeout_ms: u32,
}

impl Options {
    /// The settings these options stand for.
    ///
    /// # Safety
    /// The string fields are NULL or valid NUL-terminated strings.
    pub(crate) unsafe fn to_settings(self) -> Result<Settings, HostError> {
        let secs = |ms: u32| (ms > 0).then(|| f64::from(ms) / 1000.0);
        Ok(Settings {
            // SAFETY: forwarded from this function's contract.
            url: Some(unsafe { str_arg(self.url, "options.url") }?.to_owned()),
            // SAFETY: forwarded from this function's contract.
            client_id: unsafe { opt_str_arg(self.client_id, "options.client_id") }?
                .map(str::to_owned),
            connect_timeout_s: secs(self.connect_timeout_ms),
            request_timeout_s: secs(self.request_timeout_ms),
            queue_timeout_s: secs(self.queue_timeout_ms),
            stall_timeout_s: secs(self.stall_timeout_ms),
            timeout_s: secs(self.total_timeout_ms),
            ..Settings::default()
        })
    }
}

/// Options with every field at its default (NULL strings, zero numbers).
/// Set at least `url` before comfywire_client_new().
#[unsafe(no_mangle)]
pub extern "C" fn comfywire_options_default() -> Options {
    let empty = Options {
        url: std::ptr::null(),
        client_id: std::ptr::null(),
        connect_timeout_ms: 0,
        request_timeout_ms: 0,
        queue_timeout_ms: 0,
        stall_timeout_ms: 0,
        total_timeout_ms: 0,
    };
    crate::panic::ffi_value(empty, || empty)
}
