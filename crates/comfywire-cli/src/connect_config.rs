//! Building a client from the settings file, the environment and flags.

use std::time::Duration;

use comfywire_client::{Client, ClientConfig, ConnectionState, Settings};

use crate::args::ServerArgs;
use crate::exit::{self, Failure};

/// The settings file, then `COMFYWIRE_*`, then `--url`.
pub fn client_config(server: &ServerArgs) -> Result<ClientConfig, Failure> {
    let path = Settings::default_path();
    let mut settings = Settings::load(&path).map_err(|e| Failure::usage(e.to_string()))?;
    settings.apply_env();
    if let Some(url) = &server.url {
        settings.url = Some(url.clone());
    }
    settings
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
            let url = client.url().to_owned();
            client.close().await;
            Err(Failure::new(
                exit::CONNECTION,
                format!("cannot connect to {url}: {why}"),
            ))
        }
    }
}
