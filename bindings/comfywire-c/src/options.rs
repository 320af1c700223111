//! The plain structs a client and a job are built from: `comfywire_options`
//! and `comfywire_job_options`. Both map onto the host's own types.

use std::collections::HashMap;
use std::ffi::c_char;
use std::time::Duration;

use comfywire_host::{ClientOptions, HostError, JobOptions, Settings, parse_json};

use crate::panic::ffi_value;
use crate::strings::{opt_str, str_arg};

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
    /// A journal file (NULL: none). Every prompt is written to it before it
    /// is sent and marked when it ends; a client started again with the
    /// same journal (after a crash) takes its client id and attaches every
    /// unfinished prompt: comfywire_resumed_json() lists them. One client
    /// per journal at a time (COMFYWIRE_CONFIG otherwise, also for a
    /// corrupt journal; COMFYWIRE_IO when it cannot be read or written).
    pub journal_path: *const c_char,
}

impl Options {
    /// The settings these options stand for (the string fields NULL or
    /// NUL-terminated).
    pub(crate) unsafe fn to_settings(self) -> Result<Settings, HostError> {
        let ms = |ms: u32| (ms > 0).then_some(u64::from(ms));
        // SAFETY: forwarded from this function's contract.
        let (url, id, journal) = unsafe {
            (
                str_arg(self.url, "options.url")?,
                opt_str(self.client_id, "options.client_id")?,
                opt_str(self.journal_path, "options.journal_path")?,
            )
        };
        let options = ClientOptions {
            url: url.to_owned(),
            client_id: id.map(str::to_owned),
            token: None,
            headers: HashMap::new(),
            connect_timeout_ms: ms(self.connect_timeout_ms),
            request_timeout_ms: ms(self.request_timeout_ms),
            run_timeout_ms: ms(self.total_timeout_ms),
            stall_timeout_ms: ms(self.stall_timeout_ms),
            queue_timeout_ms: ms(self.queue_timeout_ms),
            journal_path: journal.map(str::to_owned),
        };
        Ok(options.settings())
    }
}

/// Options with every field at its default (NULL strings, zero numbers).
/// Set at least `url` before comfywire_client_new().
#[unsafe(no_mangle)]
pub extern "C" fn comfywire_options_default() -> Options {
    // SAFETY: every field is a pointer or a number, for which all-zero is
    // NULL or 0 (so fields added later start NULL or 0 too).
    let empty: Options = unsafe { std::mem::zeroed() };
    ffi_value(empty, || empty)
}

/// Options of one submission, run or wait. Start from
/// comfywire_job_options_default(); 0 and NULL keep the client's defaults.
/// Strings are borrowed for the duration of the call only.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct JobSpec {
    /// Use this prompt id instead of a fresh UUID (NULL: a fresh one).
    pub prompt_id: *const c_char,
    /// `extra_data` for the server and nodes, a JSON object (NULL: none).
    pub extra_data_json: *const c_char,
    /// Put the prompt at the front of the queue.
    pub front: bool,
    /// comfywire_run_with(): the total deadline (COMFYWIRE_DEADLINE).
    /// comfywire_wait_with(): how long to wait (COMFYWIRE_TIMEOUT; the
    /// prompt goes on). In ms.
    pub timeout_ms: u32,
    /// No event for this long while the prompt runs (ms).
    pub stall_timeout_ms: u32,
    /// The prompt did not start within this long (ms).
    pub queue_timeout_ms: u32,
    /// comfywire_run_with(): leave the prompt on the server when the run
    /// ends without its outcome (a deadline, a close). Without it such a
    /// run removes its own prompt, as comfywire_cancel() does.
    pub detach: bool,
}

impl JobSpec {
    /// The host's job options of `options` (NULL, all defaults, or
    /// initialised with strings NULL or NUL-terminated).
    pub(crate) unsafe fn read(options: *const JobSpec) -> Result<JobOptions, HostError> {
        // SAFETY: forwarded from this function's contract.
        let Some(o) = (unsafe { options.as_ref() }) else {
            return Ok(JobOptions::default());
        };
        let ms = |ms: u32| (ms > 0).then(|| Duration::from_millis(u64::from(ms)));
        // SAFETY: forwarded from this function's contract.
        let (id, extra) = unsafe {
            let extra = opt_str(o.extra_data_json, "options.extra_data_json")?;
            (opt_str(o.prompt_id, "options.prompt_id")?, extra)
        };
        Ok(JobOptions {
            prompt_id: id.map(str::to_owned),
            extra_data: extra
                .map(|t| parse_json(t, "extra_data_json"))
                .transpose()?,
            front: o.front,
            partial_execution_targets: None,
            timeout: ms(o.timeout_ms),
            stall_timeout: ms(o.stall_timeout_ms),
            queue_timeout: ms(o.queue_timeout_ms),
            // A run that runs out of time removes its prompt (the host's rule).
            detach: o.detach,
        })
    }
}

/// Job options with every field at its default (NULL, 0, false).
#[unsafe(no_mangle)]
pub extern "C" fn comfywire_job_options_default() -> JobSpec {
    // SAFETY: every field is a pointer, a number or a bool, for which
    // all-zero is NULL, 0 or false.
    let empty: JobSpec = unsafe { std::mem::zeroed() };
    ffi_value(empty, || empty)
}
