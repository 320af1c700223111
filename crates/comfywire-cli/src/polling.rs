//! Polling as a first-class state of the command line: a server whose
//! socket cannot be opened but whose HTTP answers is followed over HTTP
//! (the client does that by itself), and people are told once, clearly,
//! instead of on every retry of the socket. What polling cannot cure ends
//! the command: an authentication failure, or a server that answers
//! nothing at all.

use comfywire_client::{Client, ConnectionError, ConnectionState, ConnectionStatus, Error};

use crate::exit::{self, Failure};
use crate::output;

/// The one line that says the socket is out and polling is on.
pub fn polling_line(status: &ConnectionStatus) -> String {
    match &status.last_error {
        Some(ConnectionError::UpgradeRefused { status, message })
            if (400..500).contains(status) =>
        {
            let reason = if message.is_empty() {
                String::new()
            } else {
                format!(" {message}")
            };
            format!("WebSockets blocked (HTTP {status}{reason}): polling")
        }
        Some(e) => format!("no WebSocket ({e}): polling"),
        None => "polling".to_owned(),
    }
}

/// Asks the server over HTTP whether it answers this client, after its
/// socket failed: `Ok` when polling can take over, else why the command
/// must end (the exit code of the HTTP error: authentication failures are
/// HTTP errors; an unreachable server is a connection error).
pub async fn http_answers(client: &Client, socket_error: &str) -> Result<(), Failure> {
    let url = comfywire_client::redact(client.url());
    match client.queue().await {
        Ok(_) => Ok(()),
        Err(Error::Http { status, body }) if status == 401 || status == 403 => Err(Failure::new(
            u8::try_from(
                Error::Http {
                    status,
                    body: String::new(),
                }
                .code(),
            )
            .unwrap_or(exit::FAILURE),
            format!(
                "authentication failed at {url}: HTTP {status}{} (the socket: {socket_error})",
                if body.is_empty() {
                    String::new()
                } else {
                    format!(": {}", body.trim())
                }
            ),
        )),
        Err(e @ (Error::Request(_) | Error::Connect(_))) => Err(Failure::new(
            exit::CONNECTION,
            format!("cannot connect to {url}: {socket_error}; over HTTP: {e}"),
        )),
        Err(e) => {
            let mut failure = Failure::from(e);
            failure.message = format!(
                "cannot follow prompts at {url} over HTTP: {} (the socket: {socket_error})",
                failure.message
            );
            Err(failure)
        }
    }
}

/// Which connection changes are news to a person. Polling is announced
/// once, and the socket's retries while polling are not (they go on every
/// backoff step, up to 30 s apart, as long as WebSockets stay blocked);
/// the socket opening again is.
#[derive(Debug, Default)]
pub struct ConnectionNotes {
    polling: bool,
}

impl ConnectionNotes {
    /// Notes that start from `status`: polling that was already announced
    /// (by [`crate::connect_config`]) is not announced again.
    pub fn from_status(status: &ConnectionStatus) -> ConnectionNotes {
        ConnectionNotes {
            polling: matches!(status.state, ConnectionState::Polling { .. }),
        }
    }

    /// The line for a connection change, if it is news (the `connection`
    /// prefix of [`output::connection_line`] included).
    pub fn line(&mut self, status: &ConnectionStatus) -> Option<String> {
        match &status.state {
            ConnectionState::Polling { .. } => (!std::mem::replace(&mut self.polling, true))
                .then(|| format!("connection   {}", polling_line(status))),
            ConnectionState::Connecting { .. } if self.polling => None,
            ConnectionState::Connected if self.polling => {
                self.polling = false;
                Some("connection   connected: live events again".to_owned())
            }
            _ => Some(output::connection_line(status)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn status(state: ConnectionState, status: u16) -> ConnectionStatus {
        ConnectionStatus {
            state,
            last_error: Some(ConnectionError::UpgradeRefused {
                status,
                message: "Forbidden".into(),
            }),
        }
    }

    #[test]
    fn polling_is_announced_once_and_retries_are_quiet() {
        let mut notes = ConnectionNotes::default();
        let polling = || {
            status(
                ConnectionState::Polling {
                    attempt: 2,
                    next_attempt_at: Instant::now(),
                },
                403,
            )
        };
        let first = notes.line(&polling()).unwrap_or_default();
        assert!(
            first.contains("WebSockets blocked (HTTP 403 Forbidden): polling"),
            "{first}"
        );
        for attempt in 2..6 {
            assert_eq!(
                notes.line(&status(ConnectionState::Connecting { attempt }, 403)),
                None
            );
            assert_eq!(notes.line(&polling()), None);
        }
        let back = notes.line(&ConnectionStatus {
            state: ConnectionState::Connected,
            last_error: None,
        });
        assert!(back.unwrap_or_default().contains("live events again"));
        // Known already when the notes start: not said again.
        let mut notes = ConnectionNotes::from_status(&polling());
        assert_eq!(notes.line(&polling()), None);
    }
}
