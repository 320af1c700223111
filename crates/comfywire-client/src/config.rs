//! Connection preferences: the in-memory [`ClientConfig`], built directly
//! or from the JSON [`crate::Settings`] file the CLI and every binding
//! share (in `settings.rs`).
//!
//! Secrets (token, query token, password, header values, URL user info)
//! never appear in the `Debug` output of these types, and the settings
//! file is written readable by its owner only.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use comfywire_proto::SessionConfig;

use crate::endpoints::redact;
use crate::error::Error;

/// The server when no layer names one.
pub(crate) const DEFAULT_URL: &str = "http://127.0.0.1:8188";

/// Stands for a secret in `Debug` output.
pub(crate) struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Header names with their values hidden (a value may be an API key).
pub(crate) struct HeaderNames<'a, I>(pub(crate) I)
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
    /// [`crate::Client::start`] and [`crate::Settings::to_config`] call it.
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::endpoints::Endpoints;
    use crate::settings::*;
    use std::path::Path;

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
