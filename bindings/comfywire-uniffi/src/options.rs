//! [`ClientOptions`], what a client is built from: the commonly set fields
//! of the host's settings (the settings file's format), so options and
//! settings JSON are validated by the same code. Absent fields keep the
//! defaults, so foreign callers only name what they change.

use std::collections::HashMap;

use comfywire_host::Settings;

/// How to build a [`crate::Client`]. Only `url` is required; any other
/// setting is reachable through [`crate::Client::from_settings_json`].
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ClientOptions {
    /// Base URL, e.g. `http://127.0.0.1:8188`.
    pub url: String,
    /// Fixed client id (generated when absent).
    #[uniffi(default)]
    pub client_id: Option<String>,
    /// Bearer token for a proxy in front of ComfyUI.
    #[uniffi(default)]
    pub token: Option<String>,
    /// Extra headers on every request and the WebSocket upgrade.
    #[uniffi(default)]
    pub headers: HashMap<String, String>,
    /// Opening the socket may take this long.
    #[uniffi(default)]
    pub connect_timeout_ms: Option<u64>,
    /// One HTTP request may take this long.
    #[uniffi(default)]
    pub request_timeout_ms: Option<u64>,
    /// Default total deadline of `run`.
    #[uniffi(default)]
    pub run_timeout_ms: Option<u64>,
    /// Default stall deadline of `run` and `wait` (no event while running).
    #[uniffi(default)]
    pub stall_timeout_ms: Option<u64>,
    /// Default queue deadline of `run` and `wait` (not started yet).
    #[uniffi(default)]
    pub queue_timeout_ms: Option<u64>,
    /// A journal file (none by default): every prompt is written to it
    /// before it is sent and marked when it ends, and a client started
    /// again with the same journal (after the app was killed) takes its
    /// client id and attaches every unfinished prompt (`resumed`). One
    /// client per journal at a time (`Config` otherwise, also for a
    /// corrupt journal; `Io` when it cannot be read or written).
    #[uniffi(default)]
    pub journal_path: Option<String>,
}

fn seconds(ms: Option<u64>) -> Option<f64> {
    ms.map(|ms| ms as f64 / 1000.0)
}

impl ClientOptions {
    /// The settings these options stand for. No environment overrides
    /// here: explicit options mean what they say.
    pub(crate) fn settings(&self) -> Settings {
        Settings {
            url: Some(self.url.clone()),
            client_id: self.client_id.clone(),
            token: self.token.clone(),
            headers: self.headers.clone().into_iter().collect(),
            connect_timeout_s: seconds(self.connect_timeout_ms),
            request_timeout_s: seconds(self.request_timeout_ms),
            timeout_s: seconds(self.run_timeout_ms),
            stall_timeout_s: seconds(self.stall_timeout_ms),
            queue_timeout_s: seconds(self.queue_timeout_ms),
            journal: self.journal_path.clone(),
            ..Settings::default()
        }
    }
}
