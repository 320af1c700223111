//! The driver task: the only owner of the [`Session`] and the only code
//! that reads the clock. It reads the socket, performs the session's
//! commands, and hands events to the fan-out.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;

use parking_lot::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use comfywire_proto::websocket::{FrameError, Opcode, Received, sendable_close_code};
use comfywire_proto::{
    Command, ConnectionError, ConnectionStatus, Event, ExecutionRecord, Frame, HttpReply,
    HttpRequest, Session,
};
use futures_util::FutureExt;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tungstenite::client::IntoClientRequest;

use crate::config::ClientConfig;
use crate::endpoints::{redact, without_credentials};
use crate::fanout::Fanout;
use crate::http::HttpApi;
use crate::socket::{OpenError, ReadError, Socket};
use crate::tap::{ClosedBy, TapEvent, TapEventKind, TapSender};

/// Frames handled before the driver looks at controls and timers again.
const BATCH: usize = 256;

/// What other tasks tell the driver.
pub(crate) enum Control {
    Track {
        prompt_id: String,
        nodes: Option<usize>,
        ack: oneshot::Sender<()>,
    },
    Http(Box<HttpReply>),
    /// The answer to a tracked prompt's `POST /prompt` is unknown.
    Uncertain {
        prompt_id: String,
    },
    /// Answer once the session knows whether the server has the prompt.
    Confirm {
        prompt_id: String,
        reply: oneshot::Sender<Confirmation>,
    },
    /// The server answered a submission under another id.
    Adopt {
        requested: String,
        chosen: String,
    },
    /// Track a prompt this client did not submit.
    Attach {
        prompt_id: String,
        ack: oneshot::Sender<()>,
    },
    RetryNow,
    Pause,
    Resume,
    NetworkChanged,
    Query {
        prompt_id: String,
        reply: oneshot::Sender<Option<ExecutionRecord>>,
    },
    History {
        reply: oneshot::Sender<Vec<Arc<ExecutionRecord>>>,
    },
    Close {
        done: oneshot::Sender<()>,
    },
    Connected {
        generation: u64,
        ws: Box<Socket>,
    },
    ConnectFailed {
        generation: u64,
        error: ConnectionError,
    },
}

/// Whether the server has a prompt whose submission was uncertain.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Confirmation {
    /// It has it, under this id, with this queue number.
    Accepted {
        prompt_id: String,
        number: Option<u64>,
    },
    /// It never got there.
    Absent,
}

/// Counters shared with the client handles.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) frames: AtomicU64,
    pub(crate) events: AtomicU64,
    pub(crate) bad_frames: AtomicU64,
    pub(crate) reconnects: AtomicU64,
    pub(crate) coalesced_progress: AtomicU64,
    pub(crate) coalesced_previews: AtomicU64,
    pub(crate) last_frame: Mutex<Option<Instant>>,
}

/// State shared by the driver and every client handle.
pub(crate) struct Shared {
    pub(crate) fanout: Arc<Fanout>,
    pub(crate) state: watch::Sender<ConnectionStatus>,
    pub(crate) counters: Counters,
    pub(crate) client_id: Mutex<Option<String>>,
    /// The journal, when the config names one.
    pub(crate) journal: Option<crate::journal::Journal>,
}

/// Runs the driver task with a panic guard: if it panics, the connection
/// state becomes `Closed` with the panic as its error, subscribers get that
/// `Connection` event, and every subscription ends ([`crate::End::Closed`]),
/// so every wait ends with `Error::Closed` instead of hanging. Controls
/// sent to the dead driver fail the same way once its task is gone.
pub(crate) async fn guarded(shared: Arc<Shared>, run: impl std::future::Future<Output = ()>) {
    let Err(payload) = std::panic::AssertUnwindSafe(run).catch_unwind().await else {
        return;
    };
    let message = crate::panic_message(&*payload);
    tracing::error!(target: "comfywire::driver", %message, "the driver task panicked");
    let status = ConnectionStatus {
        state: comfywire_proto::ConnectionState::Closed,
        last_error: Some(ConnectionError::Lost {
            code: None,
            message: format!("the client's driver task panicked: {message}"),
        }),
    };
    shared.state.send_replace(status.clone());
    shared.fanout.deliver(vec![Event::Connection(status)]);
    shared.fanout.close_all();
}

pub(crate) struct Driver {
    session: Session,
    shared: Arc<Shared>,
    rx: mpsc::UnboundedReceiver<Control>,
    tx: mpsc::WeakUnboundedSender<Control>,
    http: HttpApi,
    config: ClientConfig,
    ws: Option<Box<Socket>>,
    generation: u64,
    tasks: JoinSet<()>,
    batch: Vec<Event>,
    /// The raw-frame tap, if the config asked for one and its reader is
    /// still there.
    tap: Option<TapSender>,
    /// Sockets opened so far: the ordinal of the current one.
    conn: u32,
    /// The credential-free URL and client id of the latest connect
    /// attempt, kept for the tap's `Opened`.
    connecting: Option<(String, Option<String>)>,
    /// Submitters waiting to learn whether the server has their prompt.
    confirming: Vec<(String, oneshot::Sender<Confirmation>)>,
}

/// Ready when the socket has new bytes to decode, or has failed.
async fn readable(ws: &mut Option<Box<Socket>>) -> Result<(), ReadError> {
    match ws {
        Some(ws) => std::future::poll_fn(|cx| ws.poll_fill(cx)).await,
        None => std::future::pending().await,
    }
}

/// A frame's bytes, lent to the session: its fast paths read them in
/// place, and only a message it keeps is copied.
struct Lent<'a, T: ?Sized>(&'a T);

impl AsRef<str> for Lent<'_, str> {
    fn as_ref(&self) -> &str {
        self.0
    }
}

impl AsRef<[u8]> for Lent<'_, [u8]> {
    fn as_ref(&self) -> &[u8] {
        self.0
    }
}

impl<T: AsRef<[u8]> + ?Sized> From<Lent<'_, T>> for Bytes {
    fn from(lent: Lent<'_, T>) -> Bytes {
        Bytes::copy_from_slice(lent.0.as_ref())
    }
}

/// How long a close frame may take to go out before the socket is
/// dropped anyway: the server may be gone or slow.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// Sends a close frame on a socket the driver no longer reads, without
/// waiting for it: the server may be gone or slow.
fn retire(tasks: &mut JoinSet<()>, ws: Box<Socket>, code: Option<(u16, String)>) {
    tasks.spawn(async move {
        let close = ws.close(code.as_ref().map(|(c, r)| (*c, r.as_str())));
        let _ = tokio::time::timeout(CLOSE_WAIT, close).await;
    });
}

impl Driver {
    pub(crate) fn new(
        session: Session,
        shared: Arc<Shared>,
        rx: mpsc::UnboundedReceiver<Control>,
        tx: mpsc::WeakUnboundedSender<Control>,
        http: HttpApi,
        config: ClientConfig,
        tap: Option<TapSender>,
    ) -> Driver {
        Driver {
            session,
            shared,
            rx,
            tx,
            http,
            config,
            ws: None,
            generation: 0,
            tasks: JoinSet::new(),
            batch: Vec::with_capacity(BATCH),
            tap,
            conn: 0,
            connecting: None,
            confirming: Vec::new(),
        }
    }

    /// Copies an event to the raw-frame tap, if there is one (`kind` is
    /// built only then); a tap whose reader is gone is dropped.
    #[inline]
    fn tap(&mut self, at: Instant, kind: impl FnOnce() -> TapEventKind) {
        if let Some(tap) = &self.tap {
            let event = TapEvent {
                at,
                conn: self.conn,
                kind: kind(),
            };
            if !tap.offer(event) {
                self.tap = None;
            }
        }
    }

    #[must_use = "the driver does nothing unless run"]
    pub(crate) async fn run(mut self) {
        self.session.connect(Instant::now());
        let mut closing: Option<oneshot::Sender<()>> = None;
        // One timer, re-armed only when the session's deadline moves: a
        // fresh `Sleep` per wake-up would register with the timer wheel on
        // every batch of frames.
        let timer = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(timer);
        let mut armed: Option<Instant> = None;
        let mut more_buffered = false;
        loop {
            self.perform().await;
            let woke = self.publish();
            if std::mem::take(&mut more_buffered) && woke {
                // A full batch was read and more is waiting: with its events
                // handed out, let the subscribers it woke run before the
                // next batch (on a current-thread runtime they run on this
                // very thread; on a multi-thread one the woken task sits in
                // this worker's next-task slot until the driver yields).
                // When the batch woke nobody (every step held by the
                // throttle), there is no one to let run: no task switch.
                tokio::task::yield_now().await;
            }
            if closing.is_some() || self.rx.is_closed() && self.rx.is_empty() {
                break;
            }
            let deadline = self.session.poll_timeout().map(|t| t.at);
            if deadline != armed {
                if let Some(at) = deadline {
                    timer.as_mut().reset(tokio::time::Instant::from_std(at));
                }
                armed = deadline;
            }
            tokio::select! {
                biased;
                control = self.rx.recv() => match control {
                    Some(Control::Close { done }) => {
                        self.session.close(Instant::now());
                        closing = Some(done);
                    }
                    Some(control) => self.on_control(control),
                    None => {
                        self.session.close(Instant::now());
                        closing = None;
                        self.perform().await;
                        break;
                    }
                },
                readable = readable(&mut self.ws) => {
                    more_buffered = self.read_frames(readable, Instant::now()).await;
                }
                () = &mut timer, if armed.is_some() => {
                    armed = None;
                    self.session.handle_timeout(Instant::now());
                }
                Some(_) = self.tasks.join_next(), if !self.tasks.is_empty() => {}
            }
        }
        self.perform().await;
        self.publish();
        if let Some(ws) = self.ws.take() {
            self.tap(Instant::now(), || TapEventKind::Closed {
                by: ClosedBy::Client,
                code: None,
            });
            let _ = tokio::time::timeout(CLOSE_WAIT, ws.close(None)).await;
        }
        self.tasks.shutdown().await;
        self.shared.fanout.close_all();
        if let Some(done) = closing {
            let _ = done.send(());
        }
    }

    /// Handles the frames the socket holds, up to a batch, reading more
    /// while the kernel has bytes ready, without a trip through the select.
    /// They share the clock reading taken when the batch began: a batch
    /// takes well under a millisecond, far finer than any timer of the
    /// session (16 ms throttle, seconds for the rest). True when the batch
    /// filled up (more may be waiting).
    async fn read_frames(&mut self, readable: Result<(), ReadError>, now: Instant) -> bool {
        let Some(mut ws) = self.ws.take() else {
            return false;
        };
        let mut failed = readable.err();
        let mut closed = None;
        let mut handled = 0;
        // Polled with the driver's own waker, so a read that would block
        // leaves it registered for the select's next round.
        let full = failed.is_none()
            && std::future::poll_fn(|cx| {
                while handled < BATCH {
                    match ws.next() {
                        Some(Ok(Received::Close(frame))) => {
                            closed = Some(frame.map(|(code, reason)| (code, reason.to_owned())));
                            return Poll::Ready(false);
                        }
                        Some(Ok(message)) => {
                            handled += 1;
                            self.on_received(message, now);
                        }
                        Some(Err(error)) => {
                            failed = Some(error.into());
                            return Poll::Ready(false);
                        }
                        // Each read, and each fragment that ends no message,
                        // counts as a step too: a server pouring empty
                        // fragments faster than they are decoded must not
                        // keep the driver from its controls.
                        None => match ws.poll_fill(cx) {
                            Poll::Ready(Ok(())) => handled += 1,
                            Poll::Ready(Err(error)) => {
                                failed = Some(error);
                                return Poll::Ready(false);
                            }
                            Poll::Pending => return Poll::Ready(false),
                        },
                    }
                }
                Poll::Ready(true)
            })
            .await;
        match (closed, failed) {
            (Some(frame), _) => self.on_server_close(ws, frame, now),
            (None, Some(error)) => self.on_read_error(ws, error, now),
            (None, None) => self.ws = Some(ws),
        }
        full
    }

    /// One message from the server (a close is the caller's).
    fn on_received(&mut self, message: Received<'_>, now: Instant) {
        match message {
            Received::Text(bytes) => {
                self.tap(now, || {
                    TapEventKind::Received(Frame::Text(Bytes::copy_from_slice(bytes)))
                });
                match std::str::from_utf8(bytes) {
                    Ok(text) => {
                        tracing::trace!(target: "comfywire::ws", text, "frame");
                        self.session.handle_text(Lent(text), now)
                    }
                    // The session reports it as a bad frame; the
                    // connection, whose framing is intact, goes on.
                    Err(_) => self
                        .session
                        .handle_frame(Frame::Text(Bytes::copy_from_slice(bytes)), now),
                }
            }
            Received::Binary(data) => {
                tracing::trace!(target: "comfywire::ws", bytes = data.len(), "binary frame");
                self.tap(now, || {
                    TapEventKind::Received(Frame::Binary(Bytes::copy_from_slice(data)))
                });
                self.session.handle_binary(Lent(data), now)
            }
            Received::Pong(_) => self.session.handle_pong(now),
            // The socket owes the pong; `perform` sends it.
            Received::Ping(_) | Received::Close(_) => {}
        }
    }

    /// The server closed the socket: echo its code and go on as lost.
    fn on_server_close(&mut self, ws: Box<Socket>, frame: Option<(u16, String)>, now: Instant) {
        let (code, reason) = frame.map_or((None, String::new()), |(c, r)| (Some(c), r));
        self.tap(now, || TapEventKind::Closed {
            by: ClosedBy::Server,
            code,
        });
        tracing::debug!(target: "comfywire::ws", ?code, %reason, "server closed the socket");
        // The echo carries the code only where an endpoint may send it.
        let echo = code.filter(|c| sendable_close_code(*c));
        retire(&mut self.tasks, ws, echo.map(|c| (c, String::new())));
        self.session.handle_disconnected(
            ConnectionError::Lost {
                code,
                message: format!("server closed the socket {reason}")
                    .trim_end()
                    .to_owned(),
            },
            now,
        );
    }

    /// Reading failed: the socket ended, broke, or sent a frame it may not.
    fn on_read_error(&mut self, ws: Box<Socket>, error: ReadError, now: Instant) {
        tracing::debug!(target: "comfywire::ws", %error, "socket failed");
        let code = match &error {
            ReadError::Frame(frame) => {
                if let FrameError::TooLarge { size, limit } = frame {
                    let size = usize::try_from(*size).unwrap_or(usize::MAX);
                    self.session.handle_oversize(size, *limit, now);
                }
                // The server is told why, then the socket is dropped.
                retire(
                    &mut self.tasks,
                    ws,
                    Some((frame.close_code(), frame.to_string())),
                );
                None
            }
            ReadError::Ended => Some(1006),
            ReadError::Io(_) => None,
        };
        self.lose_socket(code, error.to_string(), now);
    }

    fn on_control(&mut self, control: Control) {
        let now = Instant::now();
        match control {
            Control::Track {
                prompt_id,
                nodes,
                ack,
            } => {
                self.session.track_prompt(&prompt_id, nodes, now);
                let _ = ack.send(());
            }
            Control::Http(reply) => self.session.handle_http(*reply, now),
            Control::Uncertain { prompt_id } => self.session.prompt_uncertain(&prompt_id, now),
            Control::Confirm { prompt_id, reply } => self.confirming.push((prompt_id, reply)),
            Control::Adopt { requested, chosen } => {
                self.session.adopt_prompt_id(&requested, &chosen, now)
            }
            Control::Attach { prompt_id, ack } => {
                self.session.attach_prompt(&prompt_id, now);
                let _ = ack.send(());
            }
            Control::RetryNow => self.session.retry_now(now),
            Control::Pause => {
                self.session.pause(now);
            }
            Control::Resume => self.session.resume(now),
            Control::NetworkChanged => self.session.network_changed(now),
            Control::Query { prompt_id, reply } => {
                let _ = reply.send(self.session.execution(&prompt_id).cloned());
            }
            Control::History { reply } => {
                let _ = reply.send(self.session.history().iter().cloned().collect());
            }
            Control::Close { done } => {
                let _ = done.send(());
            }
            Control::Connected { generation, ws } => {
                if generation == self.generation
                    && matches!(
                        self.session.state(),
                        comfywire_proto::ConnectionState::Connecting { .. }
                    )
                {
                    self.ws = Some(ws);
                    self.conn += 1;
                    let (url, client_id) = self.connecting.take().unwrap_or_default();
                    self.tap(now, || TapEventKind::Opened { url, client_id });
                    self.session.handle_connected(now);
                } else {
                    retire(&mut self.tasks, ws, None);
                }
            }
            Control::ConnectFailed { generation, error } => {
                if generation == self.generation {
                    self.session.handle_connect_failed(error, now);
                }
            }
        }
    }

    /// Performs every command the session has queued.
    async fn perform(&mut self) {
        if let Some(ws) = self.ws.as_mut() {
            if let Err(error) = ws.answer_ping().await {
                self.lose_socket(None, format!("send failed: {error}"), Instant::now());
            }
        }
        while let Some(command) = self.session.poll_command() {
            match command {
                Command::Connect { client_id } => self.spawn_connect(client_id),
                Command::SendText(text) => {
                    tracing::trace!(target: "comfywire::ws", %text, "send");
                    let copy = self.tap.is_some().then(|| text.clone());
                    if self.send(Opcode::Text, text.as_bytes()).await {
                        if let Some(text) = copy {
                            self.tap(Instant::now(), || TapEventKind::Sent(Frame::text(text)));
                        }
                    }
                }
                Command::Ping(payload) => {
                    self.send(Opcode::Ping, &payload).await;
                }
                Command::Close { code, reason } => {
                    if let Some(ws) = self.ws.take() {
                        self.tap(Instant::now(), || TapEventKind::Closed {
                            by: ClosedBy::Client,
                            code: Some(code),
                        });
                        retire(&mut self.tasks, ws, Some((code, reason)));
                    }
                }
                Command::Http(request) => self.spawn_http(request),
            }
        }
    }

    /// Sends on the open socket; true when it went out.
    async fn send(&mut self, opcode: Opcode, payload: &[u8]) -> bool {
        let Some(ws) = self.ws.as_mut() else {
            return false;
        };
        match ws.send(opcode, payload).await {
            Ok(()) => true,
            Err(error) => {
                self.lose_socket(None, format!("send failed: {error}"), Instant::now());
                false
            }
        }
    }

    /// Reading or writing failed: the socket is gone.
    fn lose_socket(&mut self, code: Option<u16>, message: String, now: Instant) {
        self.ws = None;
        self.tap(now, || TapEventKind::Closed {
            by: ClosedBy::Error,
            code: None,
        });
        self.session
            .handle_disconnected(ConnectionError::Lost { code, message }, now);
    }

    fn spawn_connect(&mut self, client_id: Option<String>) {
        self.generation += 1;
        let generation = self.generation;
        let url = self.http.endpoints.websocket(client_id.as_deref());
        if self.tap.is_some() {
            self.connecting = Some((without_credentials(&url), client_id));
        }
        let Some(tx) = self.tx.upgrade() else { return };
        let headers = crate::http::headers(&self.config);
        let timeout = self.config.connect_timeout;
        let size = self.config.max_message_size;
        #[cfg(feature = "tls")]
        let connector = crate::tls::client_config(self.config.ca_file.as_deref()).map(Some);
        #[cfg(not(feature = "tls"))]
        let connector: Result<Option<crate::socket::Connector>, crate::Error> = Ok(None);
        self.tasks.spawn(async move {
            tracing::debug!(target: "comfywire::ws", url = %redact(&url), "connecting");
            let failed = |message: String| ConnectionError::ConnectFailed { message };
            let result = async {
                let mut request = url.as_str().into_client_request().map_err(|e| failed(e.to_string()))?;
                for (name, value) in headers.map_err(|e| failed(e.to_string()))?.iter() {
                    request.headers_mut().insert(name.clone(), value.clone());
                }
                // Every read is bounded: one limit serves frames and
                // messages (see `DEFAULT_MAX_MESSAGE_SIZE`).
                let connector = connector.map_err(|e| failed(e.to_string()))?;
                let connect = crate::socket::open(request, size, connector);
                match tokio::time::timeout(timeout, connect).await {
                    Ok(Ok(ws)) => Ok(ws),
                    // An HTTP answer instead of the upgrade: the status
                    // decides whether polling is the way on.
                    Ok(Err(OpenError::Refused { status, reason })) => Err(ConnectionError::UpgradeRefused {
                        status,
                        message: reason,
                    }),
                    Ok(Err(e)) => Err(failed(e.to_string())),
                    Err(_) => Err(failed(format!("no answer within {timeout:?}"))),
                }
            }
            .await;
            let control = match result {
                Ok(ws) => Control::Connected {
                    generation,
                    ws: Box::new(ws),
                },
                Err(error) => {
                    tracing::debug!(target: "comfywire::ws", url = %redact(&url), %error, "connect failed");
                    Control::ConnectFailed { generation, error }
                }
            };
            let _ = tx.send(control);
        });
    }

    fn spawn_http(&mut self, request: HttpRequest) {
        let Some(tx) = self.tx.upgrade() else { return };
        let http = self.http.clone();
        self.tasks.spawn(async move {
            // Both answers are read under their size limits and without
            // the submitted graphs they carry (see `lean.rs`).
            let reply = match &request {
                HttpRequest::History { prompt_id } => match http.history_entry(prompt_id).await {
                    Ok(entry) => HttpReply::History {
                        prompt_id: prompt_id.clone(),
                        entry,
                    },
                    Err(e) => HttpReply::Failed {
                        request,
                        error: e.to_string(),
                    },
                },
                HttpRequest::Queue => match http.queue().await {
                    Ok(snapshot) => HttpReply::Queue(snapshot),
                    Err(e) => HttpReply::Failed {
                        request,
                        error: e.to_string(),
                    },
                },
            };
            let _ = tx.send(Control::Http(Box::new(reply)));
        });
    }

    /// Hands the session's events to subscribers and updates shared state;
    /// true when a subscriber was woken.
    fn publish(&mut self) -> bool {
        if !self.confirming.is_empty() {
            let mut still = Vec::with_capacity(self.confirming.len());
            for (prompt_id, reply) in self.confirming.drain(..) {
                match self.session.execution(&prompt_id) {
                    Some(r) if r.phase == comfywire_proto::Phase::Submitted => {
                        still.push((prompt_id, reply));
                    }
                    Some(r) => {
                        let _ = reply.send(Confirmation::Accepted {
                            prompt_id: r.prompt_id.clone(),
                            number: r.number,
                        });
                    }
                    None => {
                        let _ = reply.send(Confirmation::Absent);
                    }
                }
            }
            self.confirming = still;
        }
        while let Some(event) = self.session.poll_event() {
            match &event {
                Event::Connection(status) => {
                    self.shared.state.send_replace(status.clone());
                }
                Event::Status { sid: Some(_), .. } => {
                    if let Some(id) = self.session.client_id() {
                        let mut current = self.shared.client_id.lock();
                        if current.as_deref() != Some(id) {
                            *current = Some(id.to_owned());
                            if let Some(journal) = &self.shared.journal {
                                journal.client_id(id);
                            }
                        }
                    }
                }
                _ => {}
            }
            self.batch.push(event);
        }
        let counters = &self.shared.counters;
        let stats = self.session.stats();
        counters.frames.store(stats.frames, Ordering::Relaxed);
        counters
            .bad_frames
            .store(stats.bad_frames, Ordering::Relaxed);
        counters
            .reconnects
            .store(stats.reconnects, Ordering::Relaxed);
        counters
            .coalesced_progress
            .store(stats.emitted.coalesced_progress, Ordering::Relaxed);
        counters
            .coalesced_previews
            .store(stats.emitted.coalesced_previews, Ordering::Relaxed);
        counters
            .events
            .fetch_add(self.batch.len() as u64, Ordering::Relaxed);
        *counters.last_frame.lock() = self.session.last_frame_at();
        if self.batch.is_empty() {
            return false;
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
        let finished: Vec<String> = match &self.shared.journal {
            Some(_) => batch
                .iter()
                .filter_map(|e| match e {
                    Event::Finished(r) => Some(r.prompt_id.clone()),
                    _ => None,
                })
                .collect(),
            None => Vec::new(),
        };
        let woke = self.shared.fanout.deliver(batch);
        // Done once every subscriber's queue holds the terminal event.
        if let Some(journal) = &self.shared.journal {
            for prompt_id in &finished {
                journal.done(prompt_id);
            }
        }
        woke
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::End;
    use crate::endpoints::Endpoints;
    use crate::fanout::Filter;

    #[tokio::test]
    async fn a_panic_in_the_driver_ends_every_subscription_and_query_with_an_error() {
        let server = comfywire_mock::MockServer::start().await.unwrap();
        let mut config = ClientConfig::new(server.url());
        config.session.client_id = Some("guarded".into());
        // `now + ping_interval` overflows once the socket opens. Settings
        // and `Client::start` refuse this; built by hand, it reaches the
        // driver and panics there.
        config.session.ping_interval = Duration::MAX;
        let http = HttpApi::new(&config, Endpoints::new(&config.url, None).unwrap()).unwrap();
        let session = Session::new(config.session.clone());
        let (state, _) = watch::channel(session.status());
        let shared = Arc::new(Shared {
            fanout: Arc::new(Fanout::default()),
            state,
            counters: Counters::default(),
            client_id: Mutex::new(None),
            journal: None,
        });
        let mut events = shared.fanout.subscribe(Filter::all(), 64);
        let (tx, rx) = mpsc::unbounded_channel();
        let driver = Driver::new(
            session,
            shared.clone(),
            rx,
            tx.downgrade(),
            http,
            config,
            None,
        );
        let task = tokio::spawn(guarded(shared.clone(), driver.run()));
        let mut last = None;
        let end = loop {
            match tokio::time::timeout(Duration::from_secs(20), events.next_event())
                .await
                .expect("the subscription ends instead of hanging")
            {
                Ok(event) => last = Some(event),
                Err(end) => break end,
            }
        };
        assert_eq!(end, End::Closed);
        match last {
            Some(Event::Connection(status)) => {
                assert_eq!(status.state, comfywire_proto::ConnectionState::Closed);
                let error = status.last_error.unwrap().to_string();
                assert!(error.contains("panicked"), "{error}");
            }
            other => panic!("the last event is not the closed connection: {other:?}"),
        }
        task.await.expect("the guard caught the panic");
        assert_eq!(
            shared.state.borrow().state,
            comfywire_proto::ConnectionState::Closed
        );
        // What a wait does next: a query to the driver, and a subscription.
        let (reply, answer) = oneshot::channel();
        let sent = tx.send(Control::Query {
            prompt_id: "p".into(),
            reply,
        });
        assert!(sent.is_err() || answer.await.is_err());
        let mut late = shared.fanout.subscribe(Filter::all(), 8);
        assert_eq!(late.next_event().await, Err(End::Closed));
        server.shutdown().await;
    }
}
