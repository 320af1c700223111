//! `comfywire watch`: a server's live event stream, for people or as JSON
//! lines, with connection changes and a live reconnect countdown. Without
//! a socket (WebSockets blocked, say) it goes on by polling: the client
//! reads the queue and history and reports queue changes and prompts
//! queued, started and finished, in the same lines and JSON objects.
//! Given several servers (`--url` more than once, or the settings'
//! `servers`), it watches them all through a pool, each line and JSON
//! object naming its server.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use comfywire_client::{ConnectionState, Event};
use comfywire_pool::{Pool, PoolEvent};
use tokio::sync::broadcast::error::RecvError;

use crate::args::WatchArgs;
use crate::connect_config;
use crate::exit::Failure;
use crate::output::{self, NodeNames};
use crate::polling::{self, ConnectionNotes};

/// `comfywire watch`.
pub async fn command(args: WatchArgs) -> Result<(), Failure> {
    if connect_config::uses_pool(&args.servers)? {
        return watch_pool(&args).await;
    }
    let config = connect_config::client_config(&args.servers.single())?;
    let client = connect_config::start(config).await?;
    let mut events = client.events();
    let names = NodeNames::default();
    let live = !args.json && std::io::stderr().is_terminal();
    if !args.json {
        eprintln!(
            "watching {} as client {} (Ctrl-C to stop)",
            client.url(),
            client.client_id()
        );
    }
    let mut countdown: Option<(Instant, u32, bool)> = None;
    let mut notes = ConnectionNotes::default();
    let mut http_checked = false;
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            _ = &mut ctrl_c => break,
            event = events.recv() => {
                let Some(event) = event else { break };
                if live && countdown.take().is_some() {
                    eprint!("\r\x1b[2K");
                }
                if let Event::Connection(status) = &event {
                    if let (Some(at), ConnectionState::Reconnecting { attempt, .. } | ConnectionState::Polling { attempt, .. }) = (status.state.next_attempt_at(), &status.state) {
                        let polling = matches!(status.state, ConnectionState::Polling { .. });
                        countdown = Some((at, *attempt, polling));
                    }
                    // Polling cannot cure what HTTP refuses too (an
                    // authentication failure): asked once, when the
                    // socket is found blocked.
                    let blocked = status.last_error.as_ref().filter(|e| e.websockets_blocked());
                    if let (Some(error), false) = (blocked, http_checked) {
                        http_checked = true;
                        if let Err(failure) = polling::http_answers(&client, &error.to_string()).await {
                            client.close().await;
                            return Err(failure);
                        }
                    }
                }
                if args.json {
                    output::emit(&output::event_json(&event, &names, None));
                } else if let Event::Connection(status) = &event {
                    if let Some(line) = notes.line(status) {
                        println!("{line}");
                    }
                } else if let Some(line) = output::event_line(&event, &names) {
                    println!("{line}");
                }
            }
            _ = tick.tick(), if live && countdown.is_some() => {
                if let Some((at, attempt, polling)) = countdown {
                    let left = at.saturating_duration_since(Instant::now()).as_secs_f64();
                    let doing = if polling { "polling; socket retried" } else { "reconnecting" };
                    let mut err = std::io::stderr().lock();
                    let _ = write!(err, "\r\x1b[2K  {doing} in {left:.1}s (attempt {attempt})");
                    let _ = err.flush();
                }
            }
        }
    }
    if live && countdown.is_some() {
        eprint!("\r\x1b[2K");
    }
    client.close().await;
    Ok(())
}

/// `watch` over several servers: every server's events, each line prefixed
/// with its server's label (JSON objects carry `server`), until Ctrl-C.
async fn watch_pool(args: &WatchArgs) -> Result<(), Failure> {
    let config = connect_config::pool_config(&args.servers, None)?;
    let pool = Pool::start(config).map_err(|e| Failure::usage(e.to_string()))?;
    let labels: Vec<String> = pool.stats().into_iter().map(|s| s.label).collect();
    let width = labels.iter().map(String::len).max().unwrap_or(0);
    if !args.json {
        eprintln!(
            "watching {} servers: {} (Ctrl-C to stop)",
            labels.len(),
            labels.join(", ")
        );
    }
    let names = NodeNames::default();
    let mut notes: HashMap<String, ConnectionNotes> = HashMap::new();
    let mut events = pool.events();
    // The clients started connecting before this subscription: each
    // server's state now comes first, then every change.
    for label in &labels {
        if let Some(client) = pool.client(label) {
            let now = PoolEvent::Server {
                server: label.clone(),
                event: Event::Connection(client.status()),
            };
            show_pool_event(&now, args.json, width, &names, &mut notes);
        }
    }
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let event = tokio::select! {
            _ = &mut ctrl_c => break,
            event = events.recv() => match event {
                Ok(event) => event,
                Err(RecvError::Lagged(skipped)) => {
                    eprintln!("({skipped} events skipped: the output could not keep up)");
                    continue;
                }
                Err(RecvError::Closed) => break,
            },
        };
        show_pool_event(&event, args.json, width, &names, &mut notes);
    }
    pool.close().await;
    Ok(())
}

/// Prints one event of `watch` over several servers: a JSON line, or a
/// text line prefixed with the server's label (padded to `width`).
fn show_pool_event(
    event: &PoolEvent,
    json: bool,
    width: usize,
    names: &NodeNames,
    notes: &mut HashMap<String, ConnectionNotes>,
) {
    if json {
        crate::batch::emit_json(event, names);
        return;
    }
    let (server, line) = match event {
        PoolEvent::Server {
            server,
            event: Event::Connection(status),
        } => (
            server.as_str(),
            notes.entry(server.clone()).or_default().line(status),
        ),
        PoolEvent::Server { server, event } => (server.as_str(), output::event_line(event, names)),
        PoolEvent::Moved { prompt_id, moved } => (
            moved.from.as_str(),
            Some(format!(
                "moved        {} -> {}: {}",
                output::short(prompt_id),
                moved.to,
                moved.reason
            )),
        ),
        PoolEvent::Finished(o) => (
            o.server.as_str(),
            Some(format!(
                "finished     {} {}",
                output::short(&o.prompt_id),
                o.status.name()
            )),
        ),
    };
    if let Some(line) = line {
        println!("{server:<width$}  {line}");
    }
}
