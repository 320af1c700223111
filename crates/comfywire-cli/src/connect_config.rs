//! Building a client from the settings file, the environment and flags.

use std::time::Duration;

use comfywire_client::{Client, ClientConfig, ConnectionState, Settings};

use crate::args::ServerArgs;
use crate::exit::{self, Failure};

/// The client configuration of a command: `--url` beats `COMFYWIRE_*`,
/// which beats the settings file, which beats the defaults
/// ([`Settings::layered`]: credentials stay with the server they were
/// given for). A settings file others can read is warned about on stderr.
pub fn client_config(server: &ServerArgs) -> Result<ClientConfig, Failure> {
    let path = Settings::default_path();
    let file = Settings::load(&path).map_err(|e| Failure::usage(e.to_string()))?;
    let explicit = Settings {
        url: server.url.clone(),
        ..Settings::default()
    };
    Settings::layered(&explicit, Some(file))
        .to_config()
        .map_err(|e| Failure::usage(e.to_string()))
}

/// Starts a client without waiting for its socket (enough for HTTP calls).
pub async fn start(config: ClientConfig) -> Result<Client, Failure> {
    Client::connect(config)
        .await
        .map_err(|e| Failure::usage(e.to_string()))
}

/// Starts a client and waits for its socket. Gives up at the first failed
/// attempt: a command line user wants to hear at once that the server is
/// not there, not after the backoff schedule.
pub async fn connect(config: ClientConfig) -> Result<Client, Failure> {
    let timeout = config.connect_timeout + Duration::from_secs(1);
    let client = start(config).await?;
    let mut status = client.watch_status();
    let settled = tokio::time::timeout(
        timeout,
        status.wait_for(|s| {
            s.state == ConnectionState::Connected
                || s.state == ConnectionState::Closed
                || (s.last_error.is_some()
                    && matches!(
                        s.state,
                        ConnectionState::Reconnecting { .. } | ConnectionState::Polling { .. }
                    ))
        }),
    )
    .await;
    let outcome = match settled {
        Ok(Ok(s)) if s.state == ConnectionState::Connected => Ok(()),
        Ok(Ok(s)) => Err(s
            .last_error
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_else(|| "closed".into())),
        Ok(Err(_)) => Err("client closed".into()),
        Err(_) => Err(format!("no answer within {timeout:?}")),
    };
    match outcome {
        Ok(()) => Ok(client),
        Err(why) => {
            let url = comfywire_client::redact(client.url());
            client.close().await;
            Err(Failure::new(
                exit::CONNECTION,
                format!("cannot connect to {url}: {why}"),
            ))
        }
    }
}
