//! Connection preferences: the in-memory [`ClientConfig`], and the JSON
//! [`Settings`] file the CLI and every binding share, with environment
//! overrides.

use std::path::{Path, PathBuf};
use std::time::Duration;

use comfywire_proto::{BackoffConfig, SessionConfig};
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// How to authenticate to a proxy in front of ComfyUI (core has none).
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    /// `Authorization: Bearer <token>`.
    Bearer(String),
    /// `Authorization: Basic …`.
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: String,
    },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets never reach logs.
        match self {
            Auth::Bearer(_) => f.write_str("Bearer(<redacted>)"),
            Auth::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
        }
    }
}

/// Deadlines of `run` and `wait`; `None` waits forever (HTTP
/// reconciliation still guarantees an end when the server loses a prompt).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Deadlines {
    /// Longest wait for the prompt to start.
    pub queue: Option<Duration>,
    /// Longest time without any event while it runs.
    pub stall: Option<Duration>,
    /// Longest time from submission to the end.
    pub total: Option<Duration>,
}

/// Everything a [`crate::Client`] is built from.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Base URL: `http(s)://host:port[/prefix]`.
    pub url: String,
    /// The `clientId`; generated (and kept across reconnects) when `None`.
    pub client_id: Option<String>,
    /// Extra headers on every request and the WebSocket upgrade.
    pub headers: Vec<(String, String)>,
    /// Proxy authentication.
    pub auth: Option<Auth>,
    /// A `token` query parameter on the socket URL (cloud proxies).
    pub query_token: Option<String>,
    /// Extra CA certificates (PEM) trusted besides the system's, for
    /// self-signed servers and private proxies (needs the `tls` feature).
    pub ca_file: Option<std::path::PathBuf>,
    /// Opening the socket may take this long.
    pub connect_timeout: Duration,
    /// One HTTP request may take this long.
    pub request_timeout: Duration,
    /// Largest WebSocket message accepted (default 256 MiB; the server's
    /// previews are at most a few MiB, its `executed` outputs unbounded).
    pub max_message_size: usize,
    /// Backoff, heartbeat, throttles, history: the core's settings.
    pub session: SessionConfig,
    /// Default deadlines of `run`.
    pub deadlines: Deadlines,
    /// Events a subscriber may hold before progress and previews are
    /// coalesced (lifecycle and terminal events are never dropped).
    pub subscriber_capacity: usize,
    /// Events the raw-frame tap may hold; 0 (the default) means no tap.
    /// See [`crate::Client::frame_tap`]: every frame the driver reads or
    /// sends, with socket openings and closings, for recorders. When the
    /// queue is full, new events are dropped and counted.
    pub frame_tap_capacity: usize,
    /// The journal file, if any (default none): see
    /// [`ClientConfig::journal`].
    pub journal: Option<PathBuf>,
}

impl ClientConfig {
    /// Defaults for a server at `url`.
    pub fn new(url: impl Into<String>) -> ClientConfig {
        ClientConfig {
            url: url.into(),
            client_id: None,
            headers: Vec::new(),
            auth: None,
            query_token: None,
            ca_file: None,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_message_size: 256 << 20,
            session: SessionConfig::default(),
            deadlines: Deadlines::default(),
            subscriber_capacity: 1024,
            frame_tap_capacity: 0,
            journal: None,
        }
    }

    /// Keeps a journal at `path` so that an app killed mid-run gets, when
    /// started again with the same journal, the one terminal event of every
    /// prompt it had in flight: each prompt id is written (and synced)
    /// before its `POST /prompt` leaves and marked done once its terminal
    /// event is handed to subscribers. At start the client takes the
    /// journal's client id (unless [`ClientConfig::client_id`] is set, which
    /// wins), attaches every unfinished prompt ([`crate::Client::resumed`])
    /// and rewrites the file with only those. One client per journal: a
    /// second one fails to start with [`Error::Config`]; a corrupt journal
    /// is [`Error::Config`], an unreadable one [`Error::Io`].
    pub fn journal(mut self, path: impl Into<PathBuf>) -> ClientConfig {
        self.journal = Some(path.into());
        self
    }
}

/// Basic-auth credentials in the settings file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct BasicAuth {
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
}

/// The JSON settings file. Every field is optional; absent ones keep the
/// defaults of [`ClientConfig::new`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Settings {
    /// Base URL (default `http://127.0.0.1:8188`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Fixed client id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Bearer token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Basic auth.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    /// Socket query token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query_token: Option<String>,
    /// Extra CA certificates (PEM file path).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// Extra headers.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub headers: std::collections::BTreeMap<String, String>,
    /// Connect timeout, seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_timeout_s: Option<f64>,
    /// HTTP request timeout, seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_timeout_s: Option<f64>,
    /// Largest WebSocket message, MiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_message_mib: Option<u64>,
    /// First reconnect delay, seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backoff_initial_s: Option<f64>,
    /// Reconnect delay cap, seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backoff_max_s: Option<f64>,
    /// Reconnect jitter fraction (0–1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backoff_jitter: Option<f64>,
    /// Failed connects before HTTP polling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub polling_after_failures: Option<u32>,
    /// Ping interval, seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ping_interval_s: Option<f64>,
    /// Deaf-socket watchdog, seconds (0 disables).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deaf_timeout_s: Option<f64>,
    /// Progress throttle, milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress_interval_ms: Option<u64>,
    /// Preview rate limit, milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preview_interval_ms: Option<u64>,
    /// Finished executions kept in memory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history_capacity: Option<usize>,
    /// Default queue deadline, seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_timeout_s: Option<f64>,
    /// Default stall deadline, seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stall_timeout_s: Option<f64>,
    /// Default total deadline, seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_s: Option<f64>,
    /// Journal file (see [`ClientConfig::journal`]); `""` turns off a
    /// front end's default one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub journal: Option<String>,
}

/// The environment variables [`Settings::apply_env`] reads.
pub const ENV_VARS: [&str; 6] = [
    "COMFYWIRE_URL",
    "COMFYWIRE_CLIENT_ID",
    "COMFYWIRE_TOKEN",
    "COMFYWIRE_QUERY_TOKEN",
    "COMFYWIRE_USERNAME",
    "COMFYWIRE_PASSWORD",
];

fn secs(value: f64, what: &str) -> Result<Duration, Error> {
    Duration::try_from_secs_f64(value)
        .map_err(|_| Error::Config(format!("{what}: {value} is not a duration")))
}

impl Settings {
    /// `$COMFYWIRE_CONFIG`, else `$XDG_CONFIG_HOME/comfywire/config.json`,
    /// else `~/.config/comfywire/config.json`.
    pub fn default_path() -> PathBuf {
        if let Some(p) = std::env::var_os("COMFYWIRE_CONFIG") {
            return PathBuf::from(p);
        }
        let base = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
            .unwrap_or_else(|| PathBuf::from("."));
        base.join("comfywire").join("config.json")
    }

    /// Reads a settings file; a missing file gives the defaults.
    pub fn load(path: &Path) -> Result<Settings, Error> {
        match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text)
                .map_err(|e| Error::Config(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Settings::default()),
            Err(e) => Err(Error::Io(format!("{}: {e}", path.display()))),
        }
    }

    /// Writes the settings file (creating its folder).
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let text = serde_json::to_string_pretty(self).map_err(|e| Error::Config(e.to_string()))?;
        std::fs::write(path, text + "\n")?;
        Ok(())
    }

    /// Applies the `COMFYWIRE_*` environment variables over the file.
    pub fn apply_env(&mut self) {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        if let Some(v) = var("COMFYWIRE_URL") {
            self.url = Some(v);
        }
        if let Some(v) = var("COMFYWIRE_CLIENT_ID") {
            self.client_id = Some(v);
        }
        if let Some(v) = var("COMFYWIRE_TOKEN") {
            self.token = Some(v);
        }
        if let Some(v) = var("COMFYWIRE_QUERY_TOKEN") {
            self.query_token = Some(v);
        }
        if let (Some(username), Some(password)) =
            (var("COMFYWIRE_USERNAME"), var("COMFYWIRE_PASSWORD"))
        {
            self.basic_auth = Some(BasicAuth { username, password });
        }
    }

    /// The settings as a JSON object (for `config get`).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    /// Sets one key from its text form (JSON if it parses, else a string).
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), Error> {
        let mut object = match self.to_json() {
            serde_json::Value::Object(m) => m,
            _ => serde_json::Map::new(),
        };
        let parsed = serde_json::from_str(value)
            .unwrap_or_else(|_| serde_json::Value::String(value.to_owned()));
        if parsed.is_null() {
            object.remove(key);
        } else {
            object.insert(key.to_owned(), parsed);
        }
        let updated: Settings = serde_json::from_value(serde_json::Value::Object(object.clone()))
            .map_err(|e| Error::Config(format!("{key}: {e}")))?;
        let known = updated.to_json();
        if !object.contains_key(key) || known.get(key).is_some() {
            *self = updated;
            Ok(())
        } else {
            Err(Error::Config(format!("unknown setting `{key}`")))
        }
    }

    /// The client configuration these settings describe.
    pub fn to_config(&self) -> Result<ClientConfig, Error> {
        let mut c = ClientConfig::new(
            self.url
                .clone()
                .unwrap_or_else(|| "http://127.0.0.1:8188".into()),
        );
        c.client_id = self.client_id.clone();
        c.headers = self
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        c.auth = match (&self.token, &self.basic_auth) {
            (Some(t), _) => Some(Auth::Bearer(t.clone())),
            (None, Some(b)) => Some(Auth::Basic {
                username: b.username.clone(),
                password: b.password.clone(),
            }),
            (None, None) => None,
        };
        c.query_token = self.query_token.clone();
        c.ca_file = self.ca_file.as_ref().map(std::path::PathBuf::from);
        c.journal = self
            .journal
            .as_ref()
            .filter(|p| !p.is_empty())
            .map(PathBuf::from);
        if let Some(v) = self.connect_timeout_s {
            c.connect_timeout = secs(v, "connect_timeout_s")?;
        }
        if let Some(v) = self.request_timeout_s {
            c.request_timeout = secs(v, "request_timeout_s")?;
        }
        if let Some(v) = self.max_message_mib {
            c.max_message_size = usize::try_from(v.saturating_mul(1 << 20)).unwrap_or(usize::MAX);
        }
        let s = &mut c.session;
        s.client_id = c.client_id.clone();
        s.backoff = BackoffConfig {
            initial: self
                .backoff_initial_s
                .map(|v| secs(v, "backoff_initial_s"))
                .transpose()?
                .unwrap_or(s.backoff.initial),
            max: self
                .backoff_max_s
                .map(|v| secs(v, "backoff_max_s"))
                .transpose()?
                .unwrap_or(s.backoff.max),
            jitter: self.backoff_jitter.unwrap_or(s.backoff.jitter),
            multiplier: s.backoff.multiplier,
        };
        if let Some(v) = self.polling_after_failures {
            s.polling_after_failures = v;
        }
        if let Some(v) = self.ping_interval_s {
            s.ping_interval = secs(v, "ping_interval_s")?;
        }
        if let Some(v) = self.deaf_timeout_s {
            s.deaf_timeout = (v > 0.0).then(|| secs(v, "deaf_timeout_s")).transpose()?;
        }
        if let Some(v) = self.progress_interval_ms {
            s.progress_interval = Duration::from_millis(v);
        }
        if let Some(v) = self.preview_interval_ms {
            s.preview_interval = Duration::from_millis(v);
        }
        if let Some(v) = self.history_capacity {
            s.history_capacity = v;
        }
        c.deadlines = Deadlines {
            queue: self
                .queue_timeout_s
                .map(|v| secs(v, "queue_timeout_s"))
                .transpose()?,
            stall: self
                .stall_timeout_s
                .map(|v| secs(v, "stall_timeout_s"))
                .transpose()?,
            total: self.timeout_s.map(|v| secs(v, "timeout_s")).transpose()?,
        };
        Ok(c)
    }
}
