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
    /// Largest WebSocket message (and frame: the server never fragments)
    /// accepted; default [`DEFAULT_MAX_MESSAGE_SIZE`] (16 MiB), see there
    /// for why. A larger message costs the socket: it is closed, reopened,
    /// and the prompts in flight are reconciled over `/history`, whose own
    /// limit ([`BodyLimits::history`]) is larger.
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
    /// The largest HTTP answer read from each endpoint; a larger one ends
    /// the call with [`Error::TooLarge`] without being read further.
    pub body_limits: BodyLimits,
    /// Estimated bytes of events one subscriber may hold unread, counted
    /// twice over: once for the droppable ones (progress, previews,
    /// connection-wide events: dropped or coalesced past it) and once for
    /// per-prompt lifecycle and terminal events (never dropped: the
    /// subscription ends with [`crate::End::Overflow`] past it). Default
    /// 64 MiB.
    pub subscriber_max_bytes: usize,
}

/// The default of [`ClientConfig::max_message_size`]: 16 MiB.
///
/// Why: the largest messages in the recorded real sessions are a
/// 1,030,550-byte `executed` (a test node returning 1 MB of UI data) and
/// 7.4 KB previews (512 px JPEG, the server's default `--preview-size`).
/// A preview at that size is at most about 0.8 MB even as an
/// incompressible PNG (512 x 512 x 3 bytes), and a 2048 px JPEG at quality
/// 95 a few MB. 16 MiB is 16 times the largest `executed` seen and 20
/// times the largest 512 px preview possible, while one message at the
/// limit costs at most about 16 MiB of frame plus what parsing makes of it,
/// instead of 256 MiB plus that. An `executed` over it is not lost: the
/// socket is replaced and the output recovered from `/history`.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 16 << 20;

/// The longest duration any setting may hold: one year. Longer ones
/// (`1e19` seconds) would overflow clock arithmetic.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// The largest HTTP answer read per endpoint, in bytes. Defaults and why:
///
/// | endpoint | default | why |
/// |---|---|---|
/// | `/history/{id}`, `/history?max_items` | 64 MiB | an entry carries the outputs (a message over the 16 MiB WebSocket limit is recovered from here) plus the submitted graph and its UI workflow, a few MB |
/// | `/queue` | 64 MiB | every pending prompt carries its graph and workflow: 64 prompts of 1 MB |
/// | `/view` into memory ([`crate::Client::view`]) | 256 MiB | an image or a short video; use [`crate::Client::download`] for more |
/// | `/view` to a file ([`crate::Client::download`]) | 16 GiB | streamed to disk, never held: a long video |
/// | any other JSON (`/system_stats`, `/prompt`, `/upload/image`, ...) | 16 MiB | answers of a few KB; a validation error of a huge graph stays far below |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimits {
    /// `GET /history/...`.
    pub history: u64,
    /// `GET /queue` (and the answer of `POST /queue`).
    pub queue: u64,
    /// `GET /view` read into memory.
    pub view: u64,
    /// `GET /view` streamed to a file.
    pub download: u64,
    /// Every other answer.
    pub json: u64,
}

impl Default for BodyLimits {
    fn default() -> BodyLimits {
        BodyLimits {
            history: 64 << 20,
            queue: 64 << 20,
            view: 256 << 20,
            download: 16 << 30,
            json: 16 << 20,
        }
    }
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
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            session: SessionConfig::default(),
            deadlines: Deadlines::default(),
            subscriber_capacity: 1024,
            frame_tap_capacity: 0,
            body_limits: BodyLimits::default(),
            subscriber_max_bytes: 64 << 20,
        }
    }

    /// Checks every setting that could otherwise fail later, inside the
    /// driver: durations beyond [`MAX_DURATION`], zero intervals that would
    /// spin, backoff factors that are not numbers, zero size limits.
    /// [`crate::Client::start`] and [`Settings::to_config`] call it.
    pub fn validate(&self) -> Result<(), Error> {
        let s = &self.session;
        let durations = [
            ("connect_timeout", Some(self.connect_timeout)),
            ("request_timeout", Some(self.request_timeout)),
            ("backoff.initial", Some(s.backoff.initial)),
            ("backoff.max", Some(s.backoff.max)),
            ("stable_after", Some(s.stable_after)),
            ("poll_interval", Some(s.poll_interval)),
            ("ping_interval", Some(s.ping_interval)),
            ("pong_timeout", Some(s.pong_timeout)),
            ("deaf_timeout", s.deaf_timeout),
            ("progress_interval", Some(s.progress_interval)),
            ("preview_interval", Some(s.preview_interval)),
            ("lost_recheck", Some(s.lost_recheck)),
            ("deadlines.queue", self.deadlines.queue),
            ("deadlines.stall", self.deadlines.stall),
            ("deadlines.total", self.deadlines.total),
        ];
        for (name, value) in durations {
            if let Some(d) = value.filter(|d| *d > MAX_DURATION) {
                return Err(Error::Config(format!(
                    "{name}: {d:?} is longer than the longest allowed duration ({} days)",
                    MAX_DURATION.as_secs() / 86_400
                )));
            }
        }
        // Zero would make a timer fire again at once, forever.
        let nonzero = [
            ("connect_timeout", self.connect_timeout),
            ("request_timeout", self.request_timeout),
            ("backoff.initial", s.backoff.initial),
            ("poll_interval", s.poll_interval),
            ("ping_interval", s.ping_interval),
            ("pong_timeout", s.pong_timeout),
            ("lost_recheck", s.lost_recheck),
        ];
        for (name, d) in nonzero {
            if d < Duration::from_millis(1) {
                return Err(Error::Config(format!("{name}: {d:?} is shorter than 1 ms")));
            }
        }
        if !(s.backoff.multiplier.is_finite() && s.backoff.multiplier >= 1.0) {
            return Err(Error::Config(format!(
                "backoff multiplier {} is not a number >= 1",
                s.backoff.multiplier
            )));
        }
        if !(0.0..=1.0).contains(&s.backoff.jitter) {
            return Err(Error::Config(format!(
                "backoff jitter {} is not between 0 and 1",
                s.backoff.jitter
            )));
        }
        let b = &self.body_limits;
        let sizes = [
            ("max_message_size", self.max_message_size as u64),
            ("subscriber_max_bytes", self.subscriber_max_bytes as u64),
            ("body_limits.history", b.history),
            ("body_limits.queue", b.queue),
            ("body_limits.view", b.view),
            ("body_limits.download", b.download),
            ("body_limits.json", b.json),
        ];
        for (name, size) in sizes {
            if size == 0 {
                return Err(Error::Config(format!("{name} is 0")));
            }
        }
        Ok(())
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
    /// Largest WebSocket message, MiB (default 16).
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
    /// Largest `/history` answer, MiB (default 64).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_history_mib: Option<u64>,
    /// Largest `/queue` answer, MiB (default 64).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_queue_mib: Option<u64>,
    /// Largest `/view` answer read into memory, MiB (default 256).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_view_mib: Option<u64>,
    /// Largest `/view` download streamed to a file, MiB (default 16384).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_download_mib: Option<u64>,
    /// Largest other JSON answer (`/system_stats`, `/prompt`, ...), MiB
    /// (default 16).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_json_mib: Option<u64>,
    /// Events a subscriber may hold unread, MiB (default 64).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscriber_max_mib: Option<u64>,
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
        self.apply_limits(&mut c);
        c.validate()?;
        Ok(c)
    }

    /// The size limits of these settings over `c`'s.
    fn apply_limits(&self, c: &mut ClientConfig) {
        let mib = |v: u64| v.saturating_mul(1 << 20);
        let b = &mut c.body_limits;
        for (setting, limit) in [
            (self.max_history_mib, &mut b.history),
            (self.max_queue_mib, &mut b.queue),
            (self.max_view_mib, &mut b.view),
            (self.max_download_mib, &mut b.download),
            (self.max_json_mib, &mut b.json),
        ] {
            if let Some(v) = setting {
                *limit = mib(v);
            }
        }
        if let Some(v) = self.subscriber_max_mib {
            c.subscriber_max_bytes = usize::try_from(mib(v)).unwrap_or(usize::MAX);
        }
    }
}
