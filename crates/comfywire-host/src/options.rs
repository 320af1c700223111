//! [`ClientOptions`], what a client is built from, and [`PoolServer`] /
//! [`PoolOptions`], what a pool is built from: the commonly set fields of
//! the settings (the settings file's format) with durations in
//! milliseconds, for front ends that take typed options (uniffi's records,
//! C's options struct), so options and settings JSON are validated by the
//! same code. Absent fields keep the defaults, so callers only name what
//! they change.

use std::collections::HashMap;

use comfywire_client::{ServerSettings, Settings};

/// How to build a client. Only `url` is required; any other
/// setting is reachable through settings JSON (`HostClient::from_settings_json`).
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct ClientOptions {
    /// Base URL, e.g. `http://127.0.0.1:8188`.
    pub url: String,
    /// Fixed client id (generated when absent).
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub client_id: Option<String>,
    /// Bearer token for a proxy in front of ComfyUI.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub token: Option<String>,
    /// Extra headers on every request and the WebSocket upgrade.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub headers: HashMap<String, String>,
    /// Opening the socket may take this long.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub connect_timeout_ms: Option<u64>,
    /// One HTTP request may take this long.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub request_timeout_ms: Option<u64>,
    /// Default total deadline of `run`.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub run_timeout_ms: Option<u64>,
    /// Default stall deadline of `run` and `wait` (no event while running).
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub stall_timeout_ms: Option<u64>,
    /// Default queue deadline of `run` and `wait` (not started yet).
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub queue_timeout_ms: Option<u64>,
    /// A journal file (none by default): every prompt is written to it
    /// before it is sent and marked when it ends, and a client started
    /// again with the same journal (after the app was killed) takes its
    /// client id and attaches every unfinished prompt (`resumed`). One
    /// client per journal at a time (`Config` otherwise, also for a
    /// corrupt journal; `Io` when it cannot be read or written).
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub journal_path: Option<String>,
}

fn seconds(ms: Option<u64>) -> Option<f64> {
    ms.map(|ms| ms as f64 / 1000.0)
}

impl ClientOptions {
    /// The settings these options stand for. No environment overrides
    /// here: explicit options mean what they say.
    pub fn settings(&self) -> Settings {
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

/// One server of a pool. Only `url` is required.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct PoolServer {
    /// Base URL, e.g. `http://gpu1:8188`.
    pub url: String,
    /// How the pool names it in events, outcomes and figures (default: the
    /// URL's `host:port`).
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub label: Option<String>,
    /// Its share of the work relative to the others, above zero (default
    /// 1: a server of weight 2 gets about twice the prompts).
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub weight: Option<f64>,
    /// Its own bearer token, over [`PoolOptions::token`].
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub token: Option<String>,
}

/// How a pool behaves, and the client settings of every server
/// that sets none of its own. Every field has a default; any other setting
/// is reachable through settings JSON (`HostPool::from_settings_json`).
#[derive(Debug, Clone, PartialEq, Default)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct PoolOptions {
    /// How long a server may be unreachable before its queued prompts move
    /// to another (settings `pool_grace_s`; default 10 s).
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub grace_ms: Option<u64>,
    /// Also move prompts that were *running* on a lost server (settings
    /// `pool_resubmit_running`; default false: they end `Lost`, naming the
    /// server).
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub resubmit_running: Option<bool>,
    /// Bearer token for every server that has none of its own.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub token: Option<String>,
    /// Extra headers on every server's requests and WebSocket upgrade.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub headers: HashMap<String, String>,
    /// Opening a server's socket may take this long.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub connect_timeout_ms: Option<u64>,
    /// One HTTP request may take this long.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub request_timeout_ms: Option<u64>,
}

impl PoolOptions {
    /// The settings of a pool over `servers` with these options: the
    /// options around the entries, which the host layers by its one rule
    /// (an entry's own token over the shared one). No environment
    /// overrides here: explicit options mean what they say.
    pub fn settings(&self, servers: &[PoolServer]) -> Settings {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milliseconds_become_the_settings_seconds_and_absent_stays_absent() {
        let options = ClientOptions {
            url: "http://gpu:8188".into(),
            client_id: None,
            token: Some("t".into()),
            headers: HashMap::from([("X-A".to_owned(), "1".to_owned())]),
            connect_timeout_ms: Some(1500),
            request_timeout_ms: None,
            run_timeout_ms: Some(60_000),
            stall_timeout_ms: None,
            queue_timeout_ms: Some(250),
            journal_path: Some("/tmp/j".into()),
        };
        let settings = options.settings();
        assert_eq!(settings.url.as_deref(), Some("http://gpu:8188"));
        assert_eq!(settings.connect_timeout_s, Some(1.5));
        assert_eq!(settings.request_timeout_s, None);
        assert_eq!(settings.timeout_s, Some(60.0));
        assert_eq!(settings.queue_timeout_s, Some(0.25));
        assert_eq!(settings.headers.get("X-A").map(String::as_str), Some("1"));
        assert_eq!(settings.journal.as_deref(), Some("/tmp/j"));
        // The one validation of every front end accepts it.
        let config = settings.to_config().map_err(|e| e.to_string());
        assert_eq!(
            config.map(|c| c.deadlines.queue),
            Ok(Some(std::time::Duration::from_millis(250)))
        );
    }

    #[test]
    fn a_pool_entry_keeps_its_own_token_over_the_shared_one() {
        let servers = [
            PoolServer {
                url: "http://a:1".into(),
                label: Some("a".into()),
                weight: Some(2.0),
                token: Some("own".into()),
            },
            PoolServer {
                url: "http://b:1".into(),
                label: None,
                weight: None,
                token: None,
            },
        ];
        let options = PoolOptions {
            grace_ms: Some(500),
            token: Some("shared".into()),
            ..PoolOptions::default()
        };
        let settings = options.settings(&servers);
        assert_eq!(settings.pool_grace_s, Some(0.5));
        assert_eq!(settings.token.as_deref(), Some("shared"));
        assert_eq!(settings.servers.len(), 2);
        assert_eq!(settings.servers[0].settings.token.as_deref(), Some("own"));
        assert_eq!(settings.servers[0].weight, Some(2.0));
        assert_eq!(settings.servers[1].settings.token, None);
        assert_eq!(
            settings.servers[1].settings.url.as_deref(),
            Some("http://b:1")
        );
    }
}
