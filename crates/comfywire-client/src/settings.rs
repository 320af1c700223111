//! [`Settings`]: the JSON settings file shared by every front end, its
//! layering (explicit, `COMFYWIRE_*` environment, file) and the pool's
//! `servers`; [`Settings::to_config`] makes a [`ClientConfig`] of it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use comfywire_proto::BackoffConfig;

use crate::config::{Auth, ClientConfig, DEFAULT_URL, Deadlines, HeaderNames, Redacted};
use crate::endpoints::{Endpoints, redact};
use crate::error::Error;

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
