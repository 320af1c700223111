//! Connection preferences: the in-memory [`ClientConfig`], and the JSON
//! [`Settings`] file the CLI and every binding share, layered with the
//! environment and explicit arguments by [`Settings::layered`].
//!
//! Secrets (token, query token, password, header values, URL user info)
//! never appear in the `Debug` output of these types, and the settings
//! file is written readable by its owner only.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use comfywire_proto::{BackoffConfig, SessionConfig};
use serde::{Deserialize, Serialize};

use crate::endpoints::{Endpoints, redact};
use crate::error::Error;

/// The server when no layer names one.
pub(crate) const DEFAULT_URL: &str = "http://127.0.0.1:8188";

/// Stands for a secret in `Debug` output.
struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Header names with their values hidden (a value may be an API key).
struct HeaderNames<'a, I>(I)
where
    I: Iterator<Item = &'a str> + Clone;

impl<'a, I> fmt::Debug for HeaderNames<'a, I>
where
    I: Iterator<Item = &'a str> + Clone,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.clone().map(|name| (name, Redacted)))
            .finish()
    }
}

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

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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
    /// Longest time without any event while it runs, counted while the
    /// socket is open: without one, a running prompt is followed over
    /// HTTP, which shows no progress, so silence then is no stall.
    pub stall: Option<Duration>,
    /// Longest time from submission to the end.
    pub total: Option<Duration>,
}

/// Everything a [`crate::Client`] is built from. Its `Debug` output hides
/// the URL's user info, the query token, header values and passwords.
#[derive(Clone)]
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
    /// The journal file, if any (default none): see
    /// [`ClientConfig::journal`].
    pub journal: Option<PathBuf>,
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
            journal: None,
            body_limits: BodyLimits::default(),
            subscriber_max_bytes: 64 << 20,
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
            ("disconnected_poll", Some(s.disconnected_poll)),
            ("disconnected_poll_max", Some(s.disconnected_poll_max)),
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
            ("disconnected_poll", s.disconnected_poll),
            ("ping_interval", s.ping_interval),
            ("pong_timeout", s.pong_timeout),
            ("lost_recheck", s.lost_recheck),
        ];
        for (name, d) in nonzero {
            if d < Duration::from_millis(1) {
                return Err(Error::Config(format!("{name}: {d:?} is shorter than 1 ms")));
            }
        }
        if s.disconnected_poll_max < s.disconnected_poll {
            return Err(Error::Config(format!(
                "disconnected_poll_max: {:?} is shorter than disconnected_poll ({:?})",
                s.disconnected_poll_max, s.disconnected_poll
            )));
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

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Every field named, so a new one cannot slip past this impl.
        let ClientConfig {
            url,
            client_id,
            headers,
            auth,
            query_token,
            ca_file,
            connect_timeout,
            request_timeout,
            max_message_size,
            session,
            deadlines,
            subscriber_capacity,
            frame_tap_capacity,
            journal,
            body_limits,
            subscriber_max_bytes,
        } = self;
        f.debug_struct("ClientConfig")
            .field("url", &redact(url))
            .field("client_id", client_id)
            .field(
                "headers",
                &HeaderNames(headers.iter().map(|(name, _)| name.as_str())),
            )
            .field("auth", auth)
            .field("query_token", &query_token.as_ref().map(|_| Redacted))
            .field("ca_file", ca_file)
            .field("connect_timeout", connect_timeout)
            .field("request_timeout", request_timeout)
            .field("max_message_size", max_message_size)
            .field("session", session)
            .field("deadlines", deadlines)
            .field("subscriber_capacity", subscriber_capacity)
            .field("frame_tap_capacity", frame_tap_capacity)
            .field("journal", journal)
            .field("body_limits", body_limits)
            .field("subscriber_max_bytes", subscriber_max_bytes)
            .finish()
    }
}

/// Basic-auth credentials in the settings file (`Debug` hides the password).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct BasicAuth {
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
}

impl fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicAuth")
            .field("username", &self.username)
            .field("password", &Redacted)
            .finish()
    }
}

/// The JSON settings file. Every field is optional; absent ones keep the
/// defaults of [`ClientConfig::new`]. Its `Debug` output hides the token,
/// the query token, the password, header values and the URL's user info.
///
/// Where a setting comes from, highest first: an explicit argument, the
/// `COMFYWIRE_*` environment, the settings file, the default; see
/// [`Settings::layered`].
#[derive(Clone, PartialEq, Serialize, Deserialize, Default)]
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
    /// While the socket is down, prompts of ours in flight are checked over
    /// HTTP this often at first, seconds (default 1; see
    /// `SessionConfig::disconnected_poll`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disconnected_poll_s: Option<f64>,
    /// The longest interval of those checks, seconds (default 5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disconnected_poll_max_s: Option<f64>,
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
    /// The servers of a pool (`comfywire-pool`): each an object with `url`
    /// and optionally `label`, `weight` and any client setting of its own
    /// (its `token`, `basic_auth`, `headers`, timeouts), layered over the
    /// settings around it; see [`ServerSettings`]. Unused by a single
    /// client.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<ServerSettings>,
    /// A pool's grace period, seconds (default 10): how long a server may
    /// be unreachable before its queued prompts move elsewhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pool_grace_s: Option<f64>,
    /// A pool also moves prompts that were *running* on a lost server
    /// (default false: they end as lost, naming the server).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pool_resubmit_running: Option<bool>,
}

/// One entry of the settings key `servers`: a server of a pool.
///
/// ```json
/// {"servers": [
///   {"url": "http://gpu1:8188", "label": "gpu1", "weight": 2},
///   {"url": "https://gpu2.example", "token": "..."}
/// ]}
/// ```
///
/// Its client settings are the entry's own over the settings around it,
/// by the rule of [`Settings::layered`]: credentials around it that name
/// another server (or the environment's `COMFYWIRE_URL` with its token)
/// never reach this one, while a token set without a URL goes to every
/// server. Its `Debug` output hides secrets like [`Settings`]'.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ServerSettings {
    /// How the pool names it (default: the URL's `host:port`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Its share of the work relative to the others (default 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<f64>,
    /// Its client settings; `url` is required, `servers` must be empty.
    #[serde(flatten)]
    pub settings: Settings,
}

impl ServerSettings {
    /// This server's client settings: the entry's own over `around` (the
    /// settings that listed it), credentials kept with their server.
    /// Refuses an entry without a URL or with servers of its own.
    pub fn resolve(&self, around: &Settings) -> Result<Settings, Error> {
        let Some(url) = self.settings.url.as_deref().filter(|u| !u.is_empty()) else {
            return Err(Error::Config(
                "every entry of `servers` needs a `url`".into(),
            ));
        };
        if !self.settings.servers.is_empty() {
            return Err(Error::Config(format!(
                "server {}: an entry of `servers` cannot list servers",
                redact(url)
            )));
        }
        let around = Settings {
            servers: Vec::new(),
            ..around.clone()
        };
        Ok(Settings::stack(&[&self.settings, &around]))
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Every field named, so a new one cannot slip past this impl.
        let Settings {
            url,
            client_id,
            token,
            basic_auth,
            query_token,
            ca_file,
            headers,
            connect_timeout_s,
            request_timeout_s,
            max_message_mib,
            backoff_initial_s,
            backoff_max_s,
            backoff_jitter,
            polling_after_failures,
            disconnected_poll_s,
            disconnected_poll_max_s,
            ping_interval_s,
            deaf_timeout_s,
            progress_interval_ms,
            preview_interval_ms,
            history_capacity,
            queue_timeout_s,
            stall_timeout_s,
            timeout_s,
            journal,
            max_history_mib,
            max_queue_mib,
            max_view_mib,
            max_download_mib,
            max_json_mib,
            subscriber_max_mib,
            servers,
            pool_grace_s,
            pool_resubmit_running,
        } = self;
        f.debug_struct("Settings")
            .field("url", &url.as_deref().map(redact))
            .field("client_id", client_id)
            .field("token", &token.as_ref().map(|_| Redacted))
            .field("basic_auth", basic_auth)
            .field("query_token", &query_token.as_ref().map(|_| Redacted))
            .field("ca_file", ca_file)
            .field("headers", &HeaderNames(headers.keys().map(String::as_str)))
            .field("connect_timeout_s", connect_timeout_s)
            .field("request_timeout_s", request_timeout_s)
            .field("max_message_mib", max_message_mib)
            .field("backoff_initial_s", backoff_initial_s)
            .field("backoff_max_s", backoff_max_s)
            .field("backoff_jitter", backoff_jitter)
            .field("polling_after_failures", polling_after_failures)
            .field("disconnected_poll_s", disconnected_poll_s)
            .field("disconnected_poll_max_s", disconnected_poll_max_s)
            .field("ping_interval_s", ping_interval_s)
            .field("deaf_timeout_s", deaf_timeout_s)
            .field("progress_interval_ms", progress_interval_ms)
            .field("preview_interval_ms", preview_interval_ms)
            .field("history_capacity", history_capacity)
            .field("queue_timeout_s", queue_timeout_s)
            .field("stall_timeout_s", stall_timeout_s)
            .field("timeout_s", timeout_s)
            .field("journal", journal)
            .field("max_history_mib", max_history_mib)
            .field("max_queue_mib", max_queue_mib)
            .field("max_view_mib", max_view_mib)
            .field("max_download_mib", max_download_mib)
            .field("max_json_mib", max_json_mib)
            .field("subscriber_max_mib", subscriber_max_mib)
            .field("servers", servers)
            .field("pool_grace_s", pool_grace_s)
            .field("pool_resubmit_running", pool_resubmit_running)
            .finish()
    }
}

/// The environment variables [`Settings::from_env`] reads.
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

/// Settings keys whose values are secrets: their values never reach an
/// error message.
const SECRET_KEYS: [&str; 4] = ["token", "query_token", "basic_auth", "headers"];

/// Checks the shape of the secret-bearing keys of a settings object, so a
/// value of the wrong type is reported without being quoted (serde's own
/// message would quote it).
fn check_secret_shapes(object: &serde_json::Map<String, serde_json::Value>) -> Result<(), String> {
    use serde_json::Value;
    let text_or_null = |v: &Value| v.is_string() || v.is_null();
    for key in SECRET_KEYS {
        let Some(value) = object.get(key) else {
            continue;
        };
        let ok = match key {
            "basic_auth" => match value {
                Value::Null => true,
                Value::Object(m) => ["username", "password"]
                    .iter()
                    .all(|k| m.get(*k).is_some_and(Value::is_string)),
                _ => false,
            },
            "headers" => match value {
                Value::Null => true,
                Value::Object(m) => m.values().all(Value::is_string),
                _ => false,
            },
            _ => text_or_null(value),
        };
        if !ok {
            let shape = match key {
                "basic_auth" => "an object with the strings `username` and `password`",
                "headers" => "an object of strings",
                _ => "a string",
            };
            return Err(format!("`{key}` must be {shape} (value not shown)"));
        }
    }
    // A pool's servers carry credentials of their own.
    if let Some(Value::Array(servers)) = object.get("servers") {
        for (i, server) in servers.iter().enumerate() {
            if let Value::Object(entry) = server {
                check_secret_shapes(entry).map_err(|e| format!("servers[{i}]: {e}"))?;
            }
        }
    }
    Ok(())
}

/// The server a URL names, for comparing URLs: scheme (`ws` as `http`),
/// host, port and path, without user info, query or trailing slash.
fn server_of(url: &str) -> String {
    match Endpoints::new(url, None) {
        Ok(e) => crate::endpoints::without_credentials(e.base()),
        Err(_) => url.trim_end_matches('/').to_owned(),
    }
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

    /// Settings from JSON text in the settings file's format. A value of
    /// the wrong type under a secret key (`token`, `query_token`,
    /// `basic_auth`, `headers`) is reported without quoting it.
    pub fn from_json(text: &str) -> Result<Settings, Error> {
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| Error::Config(format!("settings are not JSON: {e}")))?;
        let serde_json::Value::Object(object) = value else {
            return Err(Error::Config("settings must be a JSON object".into()));
        };
        check_secret_shapes(&object).map_err(|e| Error::Config(format!("settings: {e}")))?;
        serde_json::from_value(serde_json::Value::Object(object))
            .map_err(|e| Error::Config(format!("settings: {e}")))
    }

    /// Reads a settings file; a missing file gives the defaults. A file
    /// that others may read logs a warning (target `comfywire::settings`;
    /// see [`Settings::exposure`]).
    pub fn load(path: &Path) -> Result<Settings, Error> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                if let Some(warning) = Settings::exposure(path) {
                    tracing::warn!(target: "comfywire::settings", "{warning}");
                }
                Settings::from_json(&text)
                    .map_err(|e| Error::Config(format!("{}: {e}", path.display())))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Settings::default()),
            Err(e) => Err(Error::Io(format!("{}: {e}", path.display()))),
        }
    }

    /// Why the settings file at `path` is exposed, if it is: on Unix, a
    /// file that its group or others may read or write (it may hold a token
    /// and a password). `None` when it is private or missing, and always
    /// on other systems.
    pub fn exposure(path: &Path) -> Option<String> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
            (mode & 0o077 != 0).then(|| {
                format!(
                    "settings file {} is accessible to others (mode {mode:04o}); it may hold \
                     secrets: chmod 600 it (comfywire writes it 0600)",
                    path.display()
                )
            })
        }
        #[cfg(not(unix))]
        {
            let _ = path;
            None
        }
    }

    /// Writes the settings file (creating its folder, 0700 on Unix),
    /// atomically: a new file readable by its owner only (0600 on Unix)
    /// replaces the old one, so neither a crash nor a concurrent reader
    /// ever sees half a file, and an old 0644 file becomes private. A
    /// symbolic link is followed: its target is replaced.
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        let io = |e: std::io::Error, p: &Path| Error::Io(format!("{}: {e}", p.display()));
        let path = match std::fs::canonicalize(path) {
            Ok(real) => real,
            Err(_) => path.to_path_buf(),
        };
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&dir).map_err(|e| io(e, &dir))?;
        let text = serde_json::to_string_pretty(self).map_err(|e| Error::Config(e.to_string()))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "config.json".into());
        let temp = dir.join(format!(".{name}.{}.tmp", crate::endpoints::new_client_id()));
        let written = write_private(&temp, (text + "\n").as_bytes())
            .and_then(|()| std::fs::rename(&temp, &path));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&temp);
            return Err(io(e, &path));
        }
        Ok(())
    }

    /// The `COMFYWIRE_*` variables as a settings layer: `COMFYWIRE_URL`,
    /// `COMFYWIRE_CLIENT_ID`, `COMFYWIRE_TOKEN`, `COMFYWIRE_QUERY_TOKEN`,
    /// and `COMFYWIRE_USERNAME` with `COMFYWIRE_PASSWORD` (both or
    /// neither). Empty variables count as unset.
    pub fn from_env() -> Settings {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let basic_auth = match (var("COMFYWIRE_USERNAME"), var("COMFYWIRE_PASSWORD")) {
            (Some(username), Some(password)) => Some(BasicAuth { username, password }),
            _ => None,
        };
        Settings {
            url: var("COMFYWIRE_URL"),
            client_id: var("COMFYWIRE_CLIENT_ID"),
            token: var("COMFYWIRE_TOKEN"),
            query_token: var("COMFYWIRE_QUERY_TOKEN"),
            basic_auth,
            ..Settings::default()
        }
    }

    /// Applies the `COMFYWIRE_*` environment variables over these settings
    /// (the environment wins). Prefer [`Settings::layered`], which puts
    /// explicit arguments above the environment.
    pub fn apply_env(&mut self) {
        *self = Settings::stack(&[&Settings::from_env(), self]);
    }

    /// The one precedence rule of every comfywire front end (the CLI, the
    /// host's settings JSON for C and uniffi, Python): field by field, an
    /// explicit argument beats the `COMFYWIRE_*` environment
    /// ([`Settings::from_env`]), which beats the settings `file`, which
    /// beats the default.
    ///
    /// Credentials stay with their server: a layer's `token`,
    /// `basic_auth`, `query_token` and `headers` are used only when that
    /// layer names no URL or names the server the settings end up with
    /// (compared without user info, query or trailing slash). So
    /// `COMFYWIRE_URL` with `COMFYWIRE_TOKEN` never sends the token to a
    /// server an application named explicitly, while a token set without a
    /// URL goes to whichever server is used. The token and basic auth are
    /// one choice: the highest layer that sets either supplies both. Header
    /// maps merge key by key.
    pub fn layered(explicit: &Settings, file: Option<Settings>) -> Settings {
        let file = file.unwrap_or_default();
        Settings::stack(&[explicit, &Settings::from_env(), &file])
    }

    /// Layers settings, highest first, by the rule of [`Settings::layered`]
    /// (which is this over explicit, environment and file).
    pub fn stack(layers: &[&Settings]) -> Settings {
        macro_rules! first {
            ($field:ident) => {
                layers.iter().find_map(|l| l.$field.clone())
            };
        }
        let url = first!(url);
        let server = server_of(url.as_deref().unwrap_or(DEFAULT_URL));
        let trusted: Vec<&Settings> = layers
            .iter()
            .copied()
            .filter(|l| l.url.as_deref().is_none_or(|u| server_of(u) == server))
            .collect();
        let auth = trusted
            .iter()
            .find(|l| l.token.is_some() || l.basic_auth.is_some());
        let mut headers = std::collections::BTreeMap::new();
        for layer in trusted.iter().rev() {
            headers.extend(layer.headers.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        // A struct literal without `..`: a new field must be layered here.
        Settings {
            url,
            client_id: first!(client_id),
            token: auth.and_then(|l| l.token.clone()),
            basic_auth: auth.and_then(|l| l.basic_auth.clone()),
            query_token: trusted.iter().find_map(|l| l.query_token.clone()),
            ca_file: first!(ca_file),
            headers,
            connect_timeout_s: first!(connect_timeout_s),
            request_timeout_s: first!(request_timeout_s),
            max_message_mib: first!(max_message_mib),
            backoff_initial_s: first!(backoff_initial_s),
            backoff_max_s: first!(backoff_max_s),
            backoff_jitter: first!(backoff_jitter),
            polling_after_failures: first!(polling_after_failures),
            disconnected_poll_s: first!(disconnected_poll_s),
            disconnected_poll_max_s: first!(disconnected_poll_max_s),
            ping_interval_s: first!(ping_interval_s),
            deaf_timeout_s: first!(deaf_timeout_s),
            progress_interval_ms: first!(progress_interval_ms),
            preview_interval_ms: first!(preview_interval_ms),
            history_capacity: first!(history_capacity),
            queue_timeout_s: first!(queue_timeout_s),
            stall_timeout_s: first!(stall_timeout_s),
            timeout_s: first!(timeout_s),
            journal: first!(journal),
            max_history_mib: first!(max_history_mib),
            max_queue_mib: first!(max_queue_mib),
            max_view_mib: first!(max_view_mib),
            max_download_mib: first!(max_download_mib),
            max_json_mib: first!(max_json_mib),
            subscriber_max_mib: first!(subscriber_max_mib),
            // The whole list of the highest layer that has one.
            servers: layers
                .iter()
                .find(|l| !l.servers.is_empty())
                .map(|l| l.servers.clone())
                .unwrap_or_default(),
            pool_grace_s: first!(pool_grace_s),
            pool_resubmit_running: first!(pool_resubmit_running),
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
        check_secret_shapes(&object).map_err(Error::Config)?;
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
        let mut c = ClientConfig::new(self.url.clone().unwrap_or_else(|| DEFAULT_URL.into()));
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
        if let Some(v) = self.disconnected_poll_s {
            s.disconnected_poll = secs(v, "disconnected_poll_s")?;
        }
        if let Some(v) = self.disconnected_poll_max_s {
            s.disconnected_poll_max = secs(v, "disconnected_poll_max_s")?;
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

/// Writes `bytes` to a new file at `path` that only its owner may read
/// (0600 on Unix), flushed to disk.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const SECRETS: [&str; 5] = [
        "tok-SECRET",
        "qt-SECRET",
        "pw-SECRET",
        "hdr-SECRET",
        "url-PW",
    ];

    fn secret_settings() -> Settings {
        Settings {
            url: Some("https://alice:url-PW@example.org/comfy".into()),
            token: Some("tok-SECRET".into()),
            query_token: Some("qt-SECRET".into()),
            basic_auth: Some(BasicAuth {
                username: "alice".into(),
                password: "pw-SECRET".into(),
            }),
            headers: [("X-Api-Key".to_owned(), "hdr-SECRET".to_owned())].into(),
            ..Settings::default()
        }
    }

    fn assert_hidden(text: &str) {
        for secret in SECRETS {
            assert!(!text.contains(secret), "{secret} shown in {text}");
        }
    }

    #[test]
    fn debug_shows_no_secret() {
        let settings = secret_settings();
        let shown = format!("{settings:?} {settings:#?}");
        assert_hidden(&shown);
        assert!(shown.contains("X-Api-Key"), "{shown}");
        assert!(shown.contains("example.org"), "{shown}");

        let mut config = settings.to_config().unwrap();
        assert_hidden(&format!("{config:?} {config:#?}"));
        config.auth = Some(Auth::Basic {
            username: "alice".into(),
            password: "pw-SECRET".into(),
        });
        let shown = format!("{config:?}");
        assert_hidden(&shown);
        assert!(shown.contains("<redacted>"), "{shown}");
        let endpoints = Endpoints::new(&config.url, config.query_token.clone()).unwrap();
        assert_hidden(&format!("{endpoints:?}"));
    }

    #[test]
    fn a_pools_servers_keep_their_secrets_hidden_and_round_trip() {
        let settings = Settings {
            servers: vec![ServerSettings {
                label: Some("gpu1".into()),
                weight: Some(2.0),
                settings: secret_settings(),
            }],
            pool_grace_s: Some(3.0),
            ..Settings::default()
        };
        let shown = format!("{settings:?} {settings:#?}");
        assert_hidden(&shown);
        assert!(
            shown.contains("gpu1") && shown.contains("example.org"),
            "{shown}"
        );
        let text = settings.to_json().to_string();
        assert_eq!(Settings::from_json(&text).unwrap(), settings);
        // The highest layer with a list supplies the whole list.
        let other = Settings {
            servers: vec![ServerSettings::default()],
            ..Settings::default()
        };
        assert_eq!(
            Settings::stack(&[&Settings::default(), &settings, &other]).servers,
            settings.servers
        );
        for text in [
            r#"{"servers": [{"url": "http://a:1", "token": ["tok-SECRET"]}]}"#,
            r#"{"servers": [{"url": "http://a:1", "basic_auth": "alice:pw-SECRET"}]}"#,
        ] {
            let e = Settings::from_json(text).unwrap_err().to_string();
            assert_hidden(&e);
            assert!(
                e.contains("servers[0]") && e.contains("value not shown"),
                "{e}"
            );
        }
    }

    #[test]
    fn bad_secret_values_are_not_quoted() {
        for text in [
            r#"{"basic_auth": "alice:pw-SECRET"}"#,
            r#"{"token": ["tok-SECRET"]}"#,
            r#"{"headers": {"X-Api-Key": ["hdr-SECRET"]}}"#,
        ] {
            let e = Settings::from_json(text).unwrap_err().to_string();
            assert_hidden(&e);
            assert!(e.contains("value not shown"), "{e}");
        }
        let mut s = Settings::default();
        let e = s.set("basic_auth", "pw-SECRET").unwrap_err().to_string();
        assert_hidden(&e);
        // Other keys keep serde's helpful message.
        let e = Settings::from_json(r#"{"history_capacity": "many"}"#).unwrap_err();
        assert!(e.to_string().contains("many"), "{e}");
    }

    fn layer(url: Option<&str>) -> Settings {
        Settings {
            url: url.map(str::to_owned),
            ..Settings::default()
        }
    }

    #[test]
    fn the_disconnected_poll_is_a_setting_checked_like_the_others() {
        let defaults = ClientConfig::new("x").session;
        assert_eq!(defaults.disconnected_poll, Duration::from_secs(1));
        assert_eq!(defaults.disconnected_poll_max, Duration::from_secs(5));
        let s =
            Settings::from_json(r#"{"disconnected_poll_s": 0.5, "disconnected_poll_max_s": 2}"#)
                .unwrap();
        let c = s.to_config().unwrap();
        assert_eq!(c.session.disconnected_poll, Duration::from_millis(500));
        assert_eq!(c.session.disconnected_poll_max, Duration::from_secs(2));
        // One key alone keeps the other's default.
        let c = Settings::from_json(r#"{"disconnected_poll_s": 2}"#)
            .unwrap()
            .to_config()
            .unwrap();
        assert_eq!(c.session.disconnected_poll_max, Duration::from_secs(5));
        for (text, named) in [
            (r#"{"disconnected_poll_s": 0}"#, "disconnected_poll"),
            (r#"{"disconnected_poll_s": -1}"#, "disconnected_poll_s"),
            (r#"{"disconnected_poll_s": 1e19}"#, "disconnected_poll"),
            (
                r#"{"disconnected_poll_s": 3, "disconnected_poll_max_s": 1}"#,
                "disconnected_poll_max",
            ),
        ] {
            let e = Settings::from_json(text)
                .unwrap()
                .to_config()
                .unwrap_err()
                .to_string();
            assert!(e.contains(named), "{text}: {e}");
        }
        let mut s = Settings::default();
        s.set("disconnected_poll_max_s", "10").unwrap();
        assert_eq!(s.to_json()["disconnected_poll_max_s"], 10.0);
    }

    #[test]
    fn explicit_beats_environment_beats_file_beats_default() {
        let mut explicit = layer(Some("http://explicit:1"));
        explicit.timeout_s = Some(1.0);
        let mut env = layer(Some("http://env:2"));
        env.client_id = Some("env-id".into());
        env.timeout_s = Some(2.0);
        let mut file = layer(Some("http://file:3"));
        file.client_id = Some("file-id".into());
        file.history_capacity = Some(7);
        file.timeout_s = Some(3.0);
        let s = Settings::stack(&[&explicit, &env, &file]);
        assert_eq!(s.url.as_deref(), Some("http://explicit:1"));
        assert_eq!(s.timeout_s, Some(1.0));
        assert_eq!(s.client_id.as_deref(), Some("env-id"));
        assert_eq!(s.history_capacity, Some(7));
        assert_eq!(s.queue_timeout_s, None);
        let s = Settings::stack(&[&Settings::default(), &env, &file]);
        assert_eq!(s.url.as_deref(), Some("http://env:2"));
        let s = Settings::stack(&[&Settings::default(), &Settings::default(), &file]);
        assert_eq!(s.url.as_deref(), Some("http://file:3"));
        let config = Settings::stack(&[&Settings::default(); 3])
            .to_config()
            .unwrap();
        assert_eq!(config.url, DEFAULT_URL);
    }

    #[test]
    fn credentials_stay_with_their_server() {
        // The environment names a server and its token; the application
        // names another server: the token is not sent there.
        let mut env = layer(Some("https://proxy.example/"));
        env.token = Some("env-token".into());
        env.query_token = Some("env-qt".into());
        let mut file = layer(Some("http://file.example"));
        file.basic_auth = Some(BasicAuth {
            username: "u".into(),
            password: "p".into(),
        });
        file.headers = [("X-Key".to_owned(), "file".to_owned())].into();
        let app = layer(Some("http://app.example:8188"));
        let s = Settings::stack(&[&app, &env, &file]);
        assert_eq!(s.url.as_deref(), Some("http://app.example:8188"));
        assert_eq!((s.token, s.query_token, s.basic_auth), (None, None, None));
        assert!(s.headers.is_empty());

        // The same server, spelled differently: the credentials apply.
        let app = layer(Some("wss://PROXY.example:443"));
        let s = Settings::stack(&[&app, &env, &file]);
        assert_eq!(s.token.as_deref(), Some("env-token"));
        assert_eq!(s.query_token.as_deref(), Some("env-qt"));

        // No explicit URL: the environment's server with its token; the
        // file's credentials belong to another server.
        let s = Settings::stack(&[&Settings::default(), &env, &file]);
        assert_eq!(s.token.as_deref(), Some("env-token"));
        assert_eq!(s.basic_auth, None);

        // Credentials given without a URL go to whichever server is used.
        let bare = Settings {
            token: Some("bare".into()),
            ..Settings::default()
        };
        let s = Settings::stack(&[&app, &Settings::default(), &bare]);
        assert_eq!(s.token.as_deref(), Some("bare"));
    }

    #[test]
    fn token_and_basic_auth_are_one_choice() {
        let explicit = Settings {
            basic_auth: Some(BasicAuth {
                username: "u".into(),
                password: "p".into(),
            }),
            headers: [("A".to_owned(), "explicit".to_owned())].into(),
            ..Settings::default()
        };
        let env = Settings {
            token: Some("env".into()),
            headers: [
                ("A".to_owned(), "env".to_owned()),
                ("B".to_owned(), "env".to_owned()),
            ]
            .into(),
            ..Settings::default()
        };
        let s = Settings::stack(&[&explicit, &env]);
        assert_eq!(s.token, None);
        assert!(matches!(
            s.to_config().unwrap().auth,
            Some(Auth::Basic { .. })
        ));
        assert_eq!(s.headers["A"], "explicit");
        assert_eq!(s.headers["B"], "env");
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "comfywire-config-{name}-{}",
            crate::endpoints::new_client_id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[cfg(unix)]
    #[test]
    fn saved_file_is_private_and_an_exposed_one_is_reported() {
        use std::os::unix::fs::PermissionsExt;
        let dir = temp_dir("mode");
        let path = dir.join("sub").join("config.json");
        secret_settings().save(&path).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        assert_eq!(Settings::exposure(&path), None);
        assert_eq!(Settings::load(&path).unwrap(), secret_settings());

        // An old world-readable file is reported, and saving makes it private.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let warning = Settings::exposure(&path).unwrap();
        assert!(warning.contains("0644"), "{warning}");
        Settings::default().save(&path).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(Settings::load(&path).unwrap(), Settings::default());
        // Nothing but the file is left behind (no temporary files).
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["config.json"]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[cfg(unix)]
    #[test]
    fn saving_through_a_link_replaces_its_target() {
        let dir = temp_dir("link");
        let real = dir.join("real.json");
        let link = dir.join("config.json");
        Settings::default().save(&real).unwrap();
        std::os::unix::fs::symlink(&real, &link).unwrap();
        secret_settings().save(&link).unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(Settings::load(&real).unwrap(), secret_settings());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
