//! [`ClientOptions`], what a client is built from, and [`PoolServer`] /
//! [`PoolOptions`], what a pool is built from: the commonly set fields of
//! the host's settings (the settings file's format), so options and
//! settings JSON are validated by the same code. Absent fields keep the
//! defaults, so foreign callers only name what they change.

use std::collections::HashMap;

use comfywire_host::{ServerSettings, Settings};

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

/// One server of a [`crate::Pool`]. Only `url` is required.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct PoolServer {
    /// Base URL, e.g. `http://gpu1:8188`.
    pub url: String,
    /// How the pool names it in events, outcomes and figures (default: the
    /// URL's `host:port`).
    #[uniffi(default)]
    pub label: Option<String>,
    /// Its share of the work relative to the others, above zero (default
    /// 1: a server of weight 2 gets about twice the prompts).
    #[uniffi(default)]
    pub weight: Option<f64>,
    /// Its own bearer token, over [`PoolOptions::token`].
    #[uniffi(default)]
    pub token: Option<String>,
}

/// How a [`crate::Pool`] behaves, and the client settings of every server
/// that sets none of its own. Every field has a default; any other setting
/// is reachable through [`crate::Pool::from_settings_json`].
#[derive(Debug, Clone, PartialEq, Default, uniffi::Record)]
pub struct PoolOptions {
    /// How long a server may be unreachable before its queued prompts move
    /// to another (settings `pool_grace_s`; default 10 s).
    #[uniffi(default)]
    pub grace_ms: Option<u64>,
    /// Also move prompts that were *running* on a lost server (settings
    /// `pool_resubmit_running`; default false: they end `Lost`, naming the
    /// server).
    #[uniffi(default)]
    pub resubmit_running: Option<bool>,
    /// Bearer token for every server that has none of its own.
    #[uniffi(default)]
    pub token: Option<String>,
    /// Extra headers on every server's requests and WebSocket upgrade.
    #[uniffi(default)]
    pub headers: HashMap<String, String>,
    /// Opening a server's socket may take this long.
    #[uniffi(default)]
    pub connect_timeout_ms: Option<u64>,
    /// One HTTP request may take this long.
    #[uniffi(default)]
    pub request_timeout_ms: Option<u64>,
}

impl PoolOptions {
    /// The settings of a pool over `servers` with these options: the
    /// options around the entries, which the host layers by its one rule
    /// (an entry's own token over the shared one). No environment
    /// overrides here: explicit options mean what they say.
    pub(crate) fn settings(&self, servers: &[PoolServer]) -> Settings {
        let servers = servers
            .iter()
            .map(|server| ServerSettings {
                label: server.label.clone(),
                weight: server.weight,
                settings: Settings {
                    url: Some(server.url.clone()),
                    token: server.token.clone(),
                    ..Settings::default()
                },
            })
            .collect();
        Settings {
            token: self.token.clone(),
            headers: self.headers.clone().into_iter().collect(),
            connect_timeout_s: seconds(self.connect_timeout_ms),
            request_timeout_s: seconds(self.request_timeout_ms),
            servers,
            pool_grace_s: seconds(self.grace_ms),
            pool_resubmit_running: self.resubmit_running,
            ..Settings::default()
        }
    }
}
