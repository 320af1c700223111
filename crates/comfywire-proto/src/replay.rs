//! Replays a recorded [`Trace`] into a [`Session`] on the trace's own
//! clock: frames, socket opens and closes, and the recorded HTTP answers.
//! The golden tests, the driver's equivalence test and `comfywire replay`
//! all use it, so they agree on what a trace means.

use std::time::Duration;

use web_time::Instant;

use serde_json::Value;

use crate::event::Event;
use crate::frame::Frame;
use crate::reconcile::{HistoryEntry, HttpReply, QueueSnapshot};
use crate::session::{Session, SessionConfig};
use crate::state::ConnectionError;
use crate::trace::{Trace, TraceEventKind};

/// What to feed besides the frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayOptions {
    /// Feed the recorded `GET /history/{id}` answers.
    pub feed_history: bool,
    /// Feed the recorded `GET /queue` answers.
    pub feed_queue: bool,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            feed_history: true,
            feed_queue: true,
        }
    }
}

/// The result of a replay.
#[derive(Debug)]
pub struct Replay {
    /// The session after the last trace event.
    pub session: Session,
    /// Every event with the trace time (ms) it was emitted at.
    pub events: Vec<(f64, Event)>,
    /// Prompt ids reserved for `POST /prompt` calls the server refused.
    pub rejected: Vec<String>,
}

impl Replay {
    /// The events of one prompt, in order.
    pub fn events_of<'a>(&'a self, prompt_id: &'a str) -> impl Iterator<Item = &'a Event> + 'a {
        self.events
            .iter()
            .map(|(_, e)| e)
            .filter(move |e| e.prompt_id() == Some(prompt_id))
    }
}

/// Replays the primary client's side of `trace` from `base` on.
pub fn replay(
    trace: &Trace,
    config: SessionConfig,
    base: Instant,
    options: ReplayOptions,
) -> Replay {
    let mut session = Session::new(SessionConfig {
        client_id: config
            .client_id
            .clone()
            .or_else(|| trace.meta.client_id.clone()),
        ..config
    });
    let mut events = Vec::new();
    let mut rejected = Vec::new();
    session.connect(base);
    let at = |t_ms: f64| base + Duration::from_secs_f64(t_ms.max(0.0) / 1000.0);
    let drain = |session: &mut Session, events: &mut Vec<(f64, Event)>, t_ms: f64| {
        // The trace decides when sockets open and what HTTP returns, so the
        // session's commands are only observed, not performed.
        while session.poll_command().is_some() {}
        while let Some(event) = session.poll_event() {
            events.push((t_ms, event));
        }
    };
    for event in &trace.events {
        if event.client.as_deref().is_some_and(|c| c != "primary") {
            continue;
        }
        let now = at(event.t_ms);
        while let Some(timeout) = session.poll_timeout() {
            if timeout.at > now {
                break;
            }
            session.handle_timeout(timeout.at);
            let t = timeout.at.saturating_duration_since(base).as_secs_f64() * 1000.0;
            drain(&mut session, &mut events, t);
        }
        match &event.kind {
            TraceEventKind::WsOpen { .. } => session.handle_connected(now),
            TraceEventKind::WsClose { by, code, .. } => session.handle_disconnected(
                ConnectionError::Lost {
                    code: *code,
                    message: format!("closed by {by}"),
                },
                now,
            ),
            TraceEventKind::Text {
                received: true,
                data,
                ..
            } => session.handle_frame(Frame::text(data.clone()), now),
            TraceEventKind::Binary { data, .. } => {
                session.handle_frame(Frame::Binary(data.clone()), now)
            }
            TraceEventKind::Http(http) => {
                let path = http.path.split('?').next().unwrap_or_default();
                let path = path.strip_prefix("/api").unwrap_or(path);
                if http.method == "POST" && path == "/prompt" {
                    let accepted = http
                        .response
                        .as_ref()
                        .filter(|_| http.status == 200)
                        .and_then(|r| r.get("prompt_id"))
                        .and_then(Value::as_str);
                    let nodes = http
                        .request
                        .as_ref()
                        .and_then(|r| r.get("prompt"))
                        .and_then(Value::as_object)
                        .map(|g| g.len());
                    match accepted {
                        Some(prompt_id) => {
                            session.track_prompt(prompt_id, nodes, now);
                            let response = http.response.clone().unwrap_or(Value::Null);
                            session.handle_http(
                                HttpReply::PromptAccepted {
                                    prompt_id: prompt_id.to_owned(),
                                    number: response.get("number").and_then(Value::as_u64),
                                    node_errors: response
                                        .get("node_errors")
                                        .cloned()
                                        .unwrap_or(Value::Null),
                                },
                                now,
                            );
                        }
                        None => {
                            let prompt_id = format!("rejected-{}", rejected.len());
                            session.track_prompt(&prompt_id, nodes, now);
                            session.handle_http(
                                HttpReply::PromptRejected {
                                    prompt_id: prompt_id.clone(),
                                },
                                now,
                            );
                            rejected.push(prompt_id);
                        }
                    }
                } else if http.method == "GET" && path.starts_with("/history/") {
                    let prompt_id = &path["/history/".len()..];
                    if options.feed_history && http.status == 200 {
                        if let Some(body) = &http.response {
                            if let Ok(entry) = HistoryEntry::from_response(prompt_id, body) {
                                session.handle_http(
                                    HttpReply::History {
                                        prompt_id: prompt_id.to_owned(),
                                        entry,
                                    },
                                    now,
                                );
                            }
                        }
                    }
                } else if http.method == "GET" && path == "/queue" && options.feed_queue {
                    if let Some(Ok(snapshot)) = http.response.as_ref().map(QueueSnapshot::from_json)
                    {
                        session.handle_http(HttpReply::Queue(snapshot), now);
                    }
                }
            }
            TraceEventKind::Text { .. } | TraceEventKind::Marker { .. } => {}
        }
        drain(&mut session, &mut events, event.t_ms);
    }
    Replay {
        session,
        events,
        rejected,
    }
}
