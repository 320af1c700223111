//! `comfywire watch`: a server's live event stream, for people or as JSON
//! lines, with connection changes and a live reconnect countdown. Without
//! a socket (WebSockets blocked, say) it goes on by polling: the client
//! reads the queue and history and reports queue changes and prompts
//! queued, started and finished, in the same lines and JSON objects.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use comfywire_client::{ConnectionState, Event};

use crate::args::WatchArgs;
use crate::connect_config;
use crate::exit::Failure;
use crate::output::{self, NodeNames};
use crate::polling::{self, ConnectionNotes};

/// `comfywire watch`.
pub async fn command(args: WatchArgs) -> Result<(), Failure> {
    let config = connect_config::client_config(&args.server)?;
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
