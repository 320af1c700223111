//! Building a client from the settings file, the environment and flags.

use std::path::PathBuf;
use std::time::Duration;

use comfywire_client::{Client, ClientConfig, ConnectionState, Error, ServerSettings, Settings};
use comfywire_pool::PoolConfig;

use crate::args::{ServerArgs, ServersArgs};
use crate::exit::{self, Failure};

/// The client configuration of a command: `--url` beats `COMFYWIRE_*`,
/// which beats the settings file, which beats the defaults
/// ([`Settings::layered`]: credentials stay with the server they were
/// given for). A settings file others can read is warned about on stderr.
/// Without a journal (commands that submit nothing keep none).
pub fn client_config(server: &ServerArgs) -> Result<ClientConfig, Failure> {
    Ok(settings(server)?.1)
}

fn settings(server: &ServerArgs) -> Result<(Settings, ClientConfig), Failure> {
    let settings = layered(Settings {
        url: server.url.clone(),
        ..Settings::default()
    })?;
    let mut config = settings
        .to_config()
        .map_err(|e| Failure::usage(e.to_string()))?;
    config.journal = None;
    Ok((settings, config))
}

/// `explicit` (the flags) over the environment over the settings file.
fn layered(explicit: Settings) -> Result<Settings, Failure> {
    let file =
        Settings::load(&Settings::default_path()).map_err(|e| Failure::usage(e.to_string()))?;
    Ok(Settings::layered(&explicit, Some(file)))
}

/// Whether a command that can drive a pool does: `--url` more than once,
/// or none and the settings list `servers`.
pub fn uses_pool(servers: &ServersArgs) -> Result<bool, Failure> {
    Ok(match servers.urls.len() {
        0 => !layered(Settings::default())?.servers.is_empty(),
        1 => false,
        _ => true,
    })
}

/// The pool of a command: one server per `--url`, each layered as
/// [`client_config`] layers one (a token stays with the server it was
/// given for); without any, the settings' `servers`, else the one server
/// the environment or the settings file name. `grace` (`--grace`) beats
/// the settings' `pool_grace_s`; the rest is the one rule of
/// [`PoolConfig::from_settings`].
pub fn pool_config(servers: &ServersArgs, grace: Option<f64>) -> Result<PoolConfig, Failure> {
    let entry = |url: Option<String>| ServerSettings {
        settings: Settings {
            url,
            ..Settings::default()
        },
        ..ServerSettings::default()
    };
    let mut settings = layered(Settings {
        servers: servers.urls.iter().cloned().map(Some).map(entry).collect(),
        pool_grace_s: grace,
        ..Settings::default()
    })?;
    if settings.servers.is_empty() {
        let url = settings
            .to_config()
            .map_err(|e| Failure::usage(e.to_string()))?
            .url;
        settings.servers.push(entry(Some(url)));
    }
    PoolConfig::from_settings(&settings).map_err(|e| Failure::usage(e.to_string()))
}

/// Where the command line keeps its journal unless told otherwise:
/// `journal.jsonl` in the settings file's folder. One settings file is one
/// profile (server, client id), and the journal's prompts belong to that
/// server; a sandbox with its own `COMFYWIRE_CONFIG` gets its own journal.
pub fn default_journal() -> PathBuf {
    Settings::default_path().with_file_name("journal.jsonl")
}

/// [`client_config`] with the journal on: `flag` (`--journal`), else the
/// settings key `journal` (`""` turns it off), else [`default_journal`];
/// `off` (`--no-journal`) wins.
pub fn journaled_config(
    server: &ServerArgs,
    flag: Option<PathBuf>,
    off: bool,
) -> Result<ClientConfig, Failure> {
    let (settings, mut config) = settings(server)?;
    config.journal = match (off, flag, settings.journal.as_deref()) {
        (true, _, _) => None,
        (false, Some(path), _) => Some(path),
        (false, None, Some("")) => None,
        (false, None, Some(path)) => Some(PathBuf::from(path)),
        (false, None, None) => Some(default_journal()),
    };
    Ok(config)
}

/// Starts a client without waiting for its socket (enough for HTTP calls).
pub async fn start(config: ClientConfig) -> Result<Client, Failure> {
    Client::connect(config)
        .await
        .map_err(|e| Failure::usage(e.to_string()))
}

/// Starts a client and waits for its socket, for commands that need one
/// (`record` writes the socket's frames). Gives up at the first failed
/// attempt: a command line user wants to hear at once that the server is
/// not there, not after the backoff schedule.
pub async fn connect(config: ClientConfig) -> Result<Client, Failure> {
    let timeout = config.connect_timeout + Duration::from_secs(1);
    let client = start(config).await?;
    settle(client, timeout, Socket::Required).await
}

/// [`connect`] for commands that follow prompts (`wait`): when the socket
/// fails at once but the server answers HTTP (WebSockets blocked by a
/// proxy, say), the client polls, and this is said once on stderr.
pub async fn connect_or_poll(config: ClientConfig) -> Result<Client, Failure> {
    let timeout = config.connect_timeout + Duration::from_secs(1);
    let client = start(config).await?;
    settle(client, timeout, Socket::OrPolling).await
}

/// Whether a command can do without a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Socket {
    /// Without one the command cannot work.
    Required,
    /// Polling over HTTP serves.
    OrPolling,
}

/// [`connect_or_poll`], except that a journal another process holds is
/// dropped with a warning unless `required` (two `run`s at once share the
/// default journal; only the first keeps it).
pub async fn connect_journaled(config: ClientConfig, required: bool) -> Result<Client, Failure> {
    let timeout = config.connect_timeout + Duration::from_secs(1);
    let client = match Client::connect(config.clone()).await {
        Ok(client) => client,
        Err(Error::Config(m)) if !required && config.journal.is_some() && m.contains("in use") => {
            eprintln!("warning: {m}; going on without a journal");
            start(ClientConfig {
                journal: None,
                ..config
            })
            .await?
        }
        Err(e) => return Err(Failure::usage(e.to_string())),
    };
    settle(client, timeout, Socket::OrPolling).await
}

/// Waits for a started client's socket (see [`connect`] and
/// [`connect_or_poll`]).
async fn settle(client: Client, timeout: Duration, socket: Socket) -> Result<Client, Failure> {
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
    let open = client.status().state != ConnectionState::Closed;
    match outcome {
        Ok(()) => Ok(client),
        Err(why) if socket == Socket::OrPolling && open => {
            match crate::polling::http_answers(&client, &why).await {
                Ok(()) => {
                    // Said once here; later retries of the socket are quiet
                    // (`polling::ConnectionNotes`).
                    eprintln!("{}", crate::polling::polling_line(&client.status()));
                    Ok(client)
                }
                Err(failure) => {
                    client.close().await;
                    Err(failure)
                }
            }
        }
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
