//! Everything the HTTP routes, the sockets and the worker share, behind one
//! small mutex that is never held across an await.

use crate::fault::CutAt;
use crate::ledger::{Book, RunEnd};
use crate::scenario::{Library, RecordedPrompt};
use crate::stats::MockStats;
use bytes::Bytes;
use parking_lot::{Mutex, MutexGuard};
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

/// What a socket task is asked to do.
pub(crate) enum Outgoing {
    /// Send one frame.
    Frame(Message),
    /// Close the TCP connection without a close frame.
    Drop,
    /// Send `frames` frames built from `prompt` as fast as possible.
    Firehose {
        prompt: Arc<RecordedPrompt>,
        frames: u64,
        done: oneshot::Sender<u64>,
    },
    /// Send `frames` frames of a synthetic stream, pre-encoded.
    Mix {
        mix: Box<crate::mix::Mix>,
        frames: u64,
        done: oneshot::Sender<u64>,
    },
    /// Send these frames as fast as the socket takes them (hostile mode).
    Pour {
        frames: Box<dyn Iterator<Item = Message> + Send>,
        done: oneshot::Sender<u64>,
    },
}

/// One open socket.
pub(crate) struct SocketEntry {
    pub tx: mpsc::UnboundedSender<Outgoing>,
    pub client_id: String,
    pub preview_metadata: bool,
    /// Deaf sockets stay open but get nothing.
    pub deaf: bool,
}

/// A prompt waiting in or taken from the queue.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    /// Its entry in the ledger.
    pub seq: u64,
    pub prompt_id: String,
    pub number: u64,
    pub graph: Value,
    pub extra_data: Value,
    pub client_id: Option<String>,
    pub scenario: String,
    pub prompt_index: usize,
    pub outputs_to_execute: Value,
}

impl Job {
    /// The 5-array of `/queue` and of history entries.
    pub fn queue_item(&self) -> Value {
        Value::Array(vec![
            self.number.into(),
            self.prompt_id.clone().into(),
            self.graph.clone(),
            self.extra_data.clone(),
            self.outputs_to_execute.clone(),
        ])
    }
}

/// The prompt the worker is playing.
pub(crate) struct Running {
    pub job: Job,
    pub current_node: Option<String>,
    pub interrupt: bool,
}

/// The mutable part of the server.
pub(crate) struct Inner {
    pub sockets: HashMap<u64, SocketEntry>,
    /// clientId → the socket that receives that client's frames.
    pub registry: HashMap<String, u64>,
    pub next_socket: u64,
    pub queue: VecDeque<Job>,
    pub running: Option<Running>,
    pub history: Map<String, Value>,
    pub counter: u64,
    /// Bumped by a restart so the worker abandons what it plays.
    pub epoch: u64,
    pub speed: f64,
    pub refuse_connects: u32,
    /// [`crate::Fault::BlockWebSockets`]: the status every upgrade gets,
    /// until when (`None`: for good).
    pub block_websockets: Option<(u16, Option<Instant>)>,
    pub drop_after_frames: Option<u32>,
    pub stall_until: Option<Instant>,
    pub fail_next_prompt: bool,
    pub validation_error_next_prompt: bool,
    /// [`crate::Fault::CutPromptReply`] armed for the next enqueued prompt.
    pub cut_next_prompt_reply: Option<CutAt>,
    /// [`crate::Fault::DelayPromptReply`] armed for the next enqueued prompt.
    pub delay_next_prompt_reply: Option<u64>,
    /// [`crate::Fault::IgnoreClientPromptId`]: every prompt gets the
    /// server's own id.
    pub ignore_client_prompt_id: bool,
    /// [`crate::Fault::CorruptTerminalFrame`] armed.
    pub corrupt_next_terminal: bool,
    /// Prompts whose `/history/{id}` answers 500.
    pub history_unreadable: HashSet<String>,
    /// Node classes this server does not have (left out of `/object_info`,
    /// refused in a `POST /prompt`): a server without a custom node.
    pub hidden_node_classes: HashSet<String>,
    /// How many of the next enqueued prompts join `history_unreadable`.
    pub history_unreadable_next: u32,
    /// The server's own record of every `POST /prompt`.
    pub ledger: Book,
    /// (type, subfolder, name) → file bytes.
    pub uploads: HashMap<(String, String, String), Bytes>,
    /// Outputs of the running prompt sent so far: a real server has them on
    /// disk (and serves them from `/view`) before its history is written.
    pub running_outputs: Vec<Value>,
    pub stats: MockStats,
}

impl Inner {
    fn new(speed: f64) -> Inner {
        Inner {
            sockets: HashMap::new(),
            registry: HashMap::new(),
            next_socket: 1,
            queue: VecDeque::new(),
            running: None,
            history: Map::new(),
            counter: 0,
            epoch: 0,
            speed,
            refuse_connects: 0,
            block_websockets: None,
            drop_after_frames: None,
            stall_until: None,
            fail_next_prompt: false,
            validation_error_next_prompt: false,
            cut_next_prompt_reply: None,
            delay_next_prompt_reply: None,
            ignore_client_prompt_id: false,
            corrupt_next_terminal: false,
            history_unreadable: HashSet::new(),
            hidden_node_classes: HashSet::new(),
            history_unreadable_next: 0,
            ledger: Book::new(),
            uploads: HashMap::new(),
            running_outputs: Vec::new(),
            stats: MockStats::default(),
        }
    }

    /// Running plus pending prompts.
    pub fn queue_remaining(&self) -> usize {
        self.queue.len() + usize::from(self.running.is_some())
    }

    /// The `status` frame every socket gets when the queue changes.
    pub fn status_message(&self) -> Message {
        let value = serde_json::json!({
            "type": "status",
            "data": {"status": {"exec_info": {"queue_remaining": self.queue_remaining()}}}
        });
        text_message(crate::pyjson::to_string(&value))
    }

    /// Sends `message` to every socket that is not deaf.
    pub fn broadcast(&mut self, message: Message) {
        let ids: Vec<u64> = self
            .sockets
            .iter()
            .filter(|(_, s)| !s.deaf)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.send_to_socket(id, message.clone());
        }
    }

    /// Broadcasts the current queue size.
    pub fn broadcast_status(&mut self) {
        let message = self.status_message();
        self.broadcast(message);
    }

    /// The socket registered for `client_id`, with its preview flag.
    pub fn target(&self, client_id: Option<&str>) -> Option<(u64, bool)> {
        let id = *self.registry.get(client_id?)?;
        let socket = self.sockets.get(&id)?;
        (!socket.deaf).then_some((id, socket.preview_metadata))
    }

    /// Queues one frame on one socket, counting it against the drop fault.
    pub fn send_to_socket(&mut self, id: u64, message: Message) {
        let Some(socket) = self.sockets.get(&id) else {
            return;
        };
        if socket.tx.send(Outgoing::Frame(message)).is_err() {
            return;
        }
        self.stats.frames_sent += 1;
        if let Some(left) = self.drop_after_frames.as_mut() {
            *left = left.saturating_sub(1);
            if *left == 0 {
                self.drop_after_frames = None;
                self.drop_all_sockets();
            }
        }
    }

    /// Cuts every socket without a close frame.
    pub fn drop_all_sockets(&mut self) {
        for (_, socket) in self.sockets.drain() {
            let _ = socket.tx.send(Outgoing::Drop);
        }
        self.registry.clear();
        self.stats.open_sockets = 0;
    }

    /// Forgets a socket that has closed.
    pub fn remove_socket(&mut self, id: u64) {
        if let Some(socket) = self.sockets.remove(&id) {
            if self.registry.get(&socket.client_id) == Some(&id) {
                self.registry.remove(&socket.client_id);
            }
            self.stats.open_sockets = self.stats.open_sockets.saturating_sub(1);
        }
    }
}

/// A text frame from a string.
pub(crate) fn text_message(text: String) -> Message {
    Message::Text(text.into())
}

/// State shared by every task of one server.
pub(crate) struct Shared {
    pub library: Library,
    pub default_scenario: String,
    inner: Mutex<Inner>,
    /// Signalled when a prompt is queued.
    pub work: Notify,
    /// Signalled on interrupt, restart and stalls so sleeping playback re-checks.
    pub wake: Notify,
    pub shutdown: watch::Sender<bool>,
    pub tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Which HTTP answers are hostile (`hostile.rs`).
    pub hostile: Mutex<crate::hostile::HostileHttp>,
}

/// See [`Shared::socket_of`].
const SOCKET_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

impl Shared {
    pub fn new(library: Library, default_scenario: String, speed: f64) -> Arc<Shared> {
        let (shutdown, _) = watch::channel(false);
        Arc::new(Shared {
            library,
            default_scenario,
            inner: Mutex::new(Inner::new(speed)),
            work: Notify::new(),
            wake: Notify::new(),
            shutdown,
            tasks: Mutex::new(Vec::new()),
            hostile: Mutex::default(),
        })
    }

    /// Locks the state (a panic elsewhere does not poison it, so it cannot
    /// wedge the mock).
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock()
    }

    /// The sender of `client_id`'s live socket. A client sees its
    /// handshake complete a moment before the socket is filed here, so a
    /// caller that just saw it connect waits for it (at most
    /// [`SOCKET_WAIT`]); `None` when it does not come.
    pub async fn socket_of(&self, client_id: &str) -> Option<mpsc::UnboundedSender<Outgoing>> {
        let until = Instant::now() + SOCKET_WAIT;
        loop {
            let found = {
                let inner = self.lock();
                inner
                    .target(Some(client_id))
                    .and_then(|(id, _)| inner.sockets.get(&id).map(|s| s.tx.clone()))
            };
            if found.is_some() || Instant::now() >= until {
                return found;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// Keeps a task so shutdown can join it.
    pub fn track(&self, handle: JoinHandle<()>) {
        let mut tasks = self.tasks.lock();
        tasks.retain(|t| !t.is_finished());
        tasks.push(handle);
    }

    /// Forgets queue, history and the running prompt and drops every socket.
    pub fn restart(&self) {
        {
            let mut inner = self.lock();
            inner.epoch += 1;
            let forgotten: Vec<u64> = inner
                .queue
                .iter()
                .map(|job| job.seq)
                .chain(inner.running.as_ref().map(|r| r.job.seq))
                .collect();
            for seq in forgotten {
                inner.ledger.ended(seq, RunEnd::Restarted);
            }
            inner.queue.clear();
            inner.history.clear();
            inner.running = None;
            inner.running_outputs.clear();
            inner.counter = 0;
            inner.stall_until = None;
            inner.drop_all_sockets();
        }
        self.wake.notify_waiters();
    }
}
