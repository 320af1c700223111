//! Connection state as the session sees it, with the last error.

use std::time::Duration;

use web_time::Instant;

/// Where the connection is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionState {
    /// Not started.
    Idle,
    /// A socket is being opened.
    Connecting {
        /// 1 for the first try, counting consecutive tries.
        attempt: u32,
    },
    /// The socket is open.
    Connected,
    /// Waiting to try again.
    Reconnecting {
        /// The attempt that will be made next.
        attempt: u32,
        /// When it will be made.
        next_attempt_at: Instant,
    },
    /// Too many failures in a row: following prompts over HTTP while the
    /// socket keeps being retried on the backoff schedule.
    Polling {
        /// The attempt that will be made next.
        attempt: u32,
        /// When it will be made.
        next_attempt_at: Instant,
    },
    /// Disconnected on request (app in background); `resume` reconnects.
    Paused,
    /// Closed for good.
    Closed,
}

impl ConnectionState {
    /// A stable lower-case name.
    pub fn name(&self) -> &'static str {
        match self {
            ConnectionState::Idle => "idle",
            ConnectionState::Connecting { .. } => "connecting",
            ConnectionState::Connected => "connected",
            ConnectionState::Reconnecting { .. } => "reconnecting",
            ConnectionState::Polling { .. } => "polling",
            ConnectionState::Paused => "paused",
            ConnectionState::Closed => "closed",
        }
    }

    /// The next connect attempt time, when one is scheduled.
    pub fn next_attempt_at(&self) -> Option<Instant> {
        match self {
            ConnectionState::Reconnecting {
                next_attempt_at, ..
            }
            | ConnectionState::Polling {
                next_attempt_at, ..
            } => Some(*next_attempt_at),
            _ => None,
        }
    }
}

/// Why the last connection attempt or connection ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectionError {
    /// The socket could not be opened (refused, DNS, TLS, HTTP error on
    /// upgrade). Retried on the backoff schedule.
    #[error("connect failed: {message}")]
    ConnectFailed {
        /// The driver's description.
        message: String,
    },
    /// The server (or a proxy or gateway in front of it) answered the
    /// WebSocket upgrade with an HTTP status instead of `101 Switching
    /// Protocols`. A 4xx answer means WebSockets are blocked: the session
    /// polls over HTTP at once (state [`ConnectionState::Polling`]) and
    /// keeps retrying the socket on the backoff schedule; a 5xx answer is
    /// retried like any other failed connect.
    #[error("WebSocket upgrade refused: HTTP {status}{}", if message.is_empty() { String::new() } else { format!(" ({message})") })]
    UpgradeRefused {
        /// The HTTP status of the answer.
        status: u16,
        /// The driver's description (the status text, or nothing).
        message: String,
    },
    /// An open socket closed or failed. Retried on the backoff schedule.
    #[error("connection lost: {message}")]
    Lost {
        /// The close code, if the peer sent one.
        code: Option<u16>,
        /// The driver's description.
        message: String,
    },
    /// No pong and no frame arrived in time after a ping. Retried.
    #[error("no pong within {waited:?} of a ping")]
    HeartbeatTimeout {
        /// How long the session waited.
        waited: Duration,
    },
    /// A prompt was running but nothing arrived for too long; the socket
    /// was replaced and the prompt reconciled over HTTP.
    #[error("no frame for {silent_for:?} while a prompt was running")]
    Deaf {
        /// How long the socket was silent.
        silent_for: Duration,
    },
}

impl ConnectionError {
    /// True when the last connect got a 4xx answer to its upgrade: the
    /// server speaks HTTP but will not open a WebSocket for this client
    /// (a proxy that blocks them, a gateway without WebSocket support).
    pub fn websockets_blocked(&self) -> bool {
        matches!(self, ConnectionError::UpgradeRefused { status, .. } if (400..500).contains(status))
    }
}

/// State plus the last error, as published to users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionStatus {
    /// The state.
    pub state: ConnectionState,
    /// The error that ended the last connection or attempt, if any.
    pub last_error: Option<ConnectionError>,
}
