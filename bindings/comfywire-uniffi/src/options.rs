//! Options records: [`ClientOptions`] (what a client is built from) and
//! [`JobOptions`] (one submission or run). Absent fields keep the host's
//! defaults, so foreign callers only name what they change.

use std::collections::HashMap;
use std::time::Duration;

use comfywire_host::comfywire_client::{ClientConfig, Settings, SubmitOptions};

use crate::error::ComfyError;

/// How to build a [`crate::Client`]. Only `url` is required.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ClientOptions {
    /// Base URL, e.g. `http://127.0.0.1:8188`.
    pub url: String,
    /// Fixed client id (generated when absent).
    #[uniffi(default = None)]
    pub client_id: Option<String>,
    /// Bearer token for a proxy in front of ComfyUI.
    #[uniffi(default = None)]
    pub token: Option<String>,
    /// Extra headers on every request and the WebSocket upgrade.
    #[uniffi(default)]
    pub headers: HashMap<String, String>,
    /// Opening the socket may take this long.
    #[uniffi(default = None)]
    pub connect_timeout_ms: Option<u64>,
    /// One HTTP request may take this long.
    #[uniffi(default = None)]
    pub request_timeout_ms: Option<u64>,
    /// Default total deadline of `run`.
    #[uniffi(default = None)]
    pub run_timeout_ms: Option<u64>,
}

fn seconds(ms: Option<u64>) -> Option<f64> {
    ms.map(|ms| Duration::from_millis(ms).as_secs_f64())
}

impl ClientOptions {
    /// Goes through the shared settings format, so options and settings
    /// JSON are validated by the same code. No environment overrides here:
    /// explicit options mean what they say.
    pub(crate) fn to_config(&self) -> Result<ClientConfig, ComfyError> {
        let settings = Settings {
            url: Some(self.url.clone()),
            client_id: self.client_id.clone(),
            token: self.token.clone(),
            headers: self
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            connect_timeout_s: seconds(self.connect_timeout_ms),
            request_timeout_s: seconds(self.request_timeout_ms),
            timeout_s: seconds(self.run_timeout_ms),
            ..Settings::default()
        };
        Ok(settings.to_config()?)
    }
}

/// Options of one `submit` or `run`.
#[derive(Debug, Clone, PartialEq, Default, uniffi::Record)]
pub struct JobOptions {
    /// `run` only: total deadline, replacing the client's default.
    #[uniffi(default = None)]
    pub timeout_ms: Option<u64>,
    /// `extra_data` for the server and nodes, as a JSON object text.
    #[uniffi(default = None)]
    pub extra_data_json: Option<String>,
    /// Put the prompt at the front of the queue.
    #[uniffi(default = false)]
    pub front: bool,
    /// Use this prompt id instead of a fresh UUID.
    #[uniffi(default = None)]
    pub prompt_id: Option<String>,
}

impl JobOptions {
    pub(crate) fn submit_options(&self) -> Result<SubmitOptions, ComfyError> {
        let extra_data = match &self.extra_data_json {
            None => None,
            Some(text) => Some(crate::client::parse_json(text, "extra_data_json")?),
        };
        Ok(SubmitOptions {
            prompt_id: self.prompt_id.clone(),
            extra_data,
            front: self.front,
            partial_execution_targets: None,
        })
    }
}
