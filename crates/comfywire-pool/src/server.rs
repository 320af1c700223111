//! One server of a pool: its client, what the pool knows of its health and
//! load, and the prompts it must give up when it comes back.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use comfywire_client::{Client, ConnectionState, Event};
use parking_lot::Mutex;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use crate::pool::PoolEvent;
use crate::submitted::Submitted;

/// A server, its client and its counters.
pub(crate) struct Server {
    pub(crate) label: String,
    pub(crate) weight: f64,
    pub(crate) client: Client,
    /// Since when its socket has been down (`None` while connected or
    /// polling: either way its HTTP API answers).
    down_since: Mutex<Option<Instant>>,
    /// `queue_remaining` of its last `status` frame.
    queue_remaining: AtomicU64,
    /// Its node classes, read once per connection.
    classes: tokio::sync::Mutex<Option<Arc<BTreeSet<String>>>>,
    /// Prompts moved away from it while it was unreachable: deleted (or
    /// interrupted) there when it answers again.
    given_up: Mutex<Vec<String>>,
    /// Prompts its queue still held after its socket last went down (read
    /// over HTTP while down): one of them that it later forgets may have
    /// run meanwhile, unseen.
    held_while_down: Mutex<std::collections::HashSet<String>>,
    pub(crate) in_flight: AtomicUsize,
    pub(crate) done: AtomicU64,
    pub(crate) failed_over: AtomicU64,
}

impl Server {
    pub(crate) fn new(label: String, weight: f64, client: Client) -> Server {
        Server {
            label,
            weight,
            client,
            down_since: Mutex::new(Some(Instant::now())),
            queue_remaining: AtomicU64::new(0),
            classes: tokio::sync::Mutex::new(None),
            given_up: Mutex::new(Vec::new()),
            held_while_down: Mutex::new(std::collections::HashSet::new()),
            in_flight: AtomicUsize::new(0),
            done: AtomicU64::new(0),
            failed_over: AtomicU64::new(0),
        }
    }

    /// Takes new work: its socket is up, or it is polling over HTTP.
    pub(crate) fn healthy(&self) -> bool {
        matches!(
            self.client.status().state,
            ConnectionState::Connected | ConnectionState::Polling { .. }
        )
    }

    /// Unreachable for longer than `grace`.
    pub(crate) fn lost_for(&self, grace: Duration) -> bool {
        self.down_since
            .lock()
            .is_some_and(|since| since.elapsed() >= grace)
    }

    /// Its work in prompts over its weight: its queue as its last `status`
    /// said, plus the pool's prompts there (newer than that frame).
    pub(crate) fn load(&self) -> f64 {
        let queued = self.queue_remaining.load(Ordering::Relaxed) as f64;
        let ours = self.in_flight.load(Ordering::Relaxed) as f64;
        (queued + ours) / self.weight
    }

    pub(crate) fn queue_remaining(&self) -> u64 {
        self.queue_remaining.load(Ordering::Relaxed)
    }

    /// Its node classes (read on first use after each connect); `None`
    /// when it cannot say right now.
    pub(crate) async fn classes(&self) -> Option<Arc<BTreeSet<String>>> {
        let mut cached = self.classes.lock().await;
        if cached.is_none() {
            match self.client.node_classes().await {
                Ok(classes) => *cached = Some(Arc::new(classes)),
                Err(e) => {
                    tracing::debug!(target: "comfywire::pool", server = %self.label, error = %e, "node classes unknown");
                }
            }
        }
        cached.clone()
    }

    /// True when the server's queue still held `prompt_id` after its
    /// socket last went down: it may have run it while the client could
    /// not see, so losing it later says nothing about whether it ran.
    pub(crate) fn held_while_down(&self, prompt_id: &str) -> bool {
        self.held_while_down.lock().contains(prompt_id)
    }

    /// While the socket is down, reads the queue every `every`: what it
    /// still holds then may run unseen (see [`Server::held_while_down`]).
    pub(crate) fn probe_while_down(self: &Arc<Server>, every: Duration) -> JoinHandle<()> {
        let server = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                if server.down_since.lock().is_none() {
                    continue;
                }
                if let Ok(Ok(queue)) = tokio::time::timeout(every * 4, server.client.queue()).await
                {
                    let mut held = server.held_while_down.lock();
                    for item in queue.running.iter().chain(&queue.pending) {
                        held.insert(item.prompt_id.clone());
                    }
                }
            }
        })
    }

    /// Remembers a prompt moved away from this server, to remove it here
    /// should the server come back holding it.
    pub(crate) fn give_up(&self, prompt_id: &str) {
        self.given_up.lock().push(prompt_id.to_owned());
    }

    /// Follows the client's connection state and `status` frames, and
    /// forwards its events tagged with the server: all but the terminal
    /// ones of the pool's own submissions, which its job tasks report once.
    pub(crate) fn watch(
        self: &Arc<Server>,
        events: broadcast::Sender<PoolEvent>,
        submitted: Arc<Submitted>,
    ) -> JoinHandle<()> {
        let server = self.clone();
        // Subscribed here, not in the task: the client is already
        // connecting, and an event it delivers before the task first runs
        // would otherwise never reach the pool's subscribers.
        let mut subscription = server.client.events();
        tokio::spawn(async move {
            server.note_state(&server.client.status().state);
            while let Some(event) = subscription.recv().await {
                match &event {
                    Event::Connection(status) => server.note_state(&status.state),
                    Event::Status {
                        queue_remaining: Some(n),
                        ..
                    } => server.queue_remaining.store(*n, Ordering::Relaxed),
                    Event::Finished(record) if submitted.contains(&record.prompt_id) => continue,
                    _ => {}
                }
                let _ = events.send(PoolEvent::Server {
                    server: server.label.clone(),
                    event,
                });
            }
        })
    }

    fn note_state(self: &Arc<Server>, state: &ConnectionState) {
        let up = matches!(
            state,
            ConnectionState::Connected | ConnectionState::Polling { .. }
        );
        let mut down = self.down_since.lock();
        match (up, down.is_some()) {
            (true, true) => {
                *down = None;
                drop(down);
                self.came_back();
            }
            (false, false) => {
                *down = Some(Instant::now());
                // A new outage: what the last one saw no longer counts.
                self.held_while_down.lock().clear();
            }
            _ => {}
        }
    }

    /// Back after being unreachable: its node classes are read again, and
    /// prompts moved away meanwhile are deleted (pending) or interrupted
    /// (running) here, so they do not run twice.
    fn came_back(self: &Arc<Server>) {
        let given_up = std::mem::take(&mut *self.given_up.lock());
        let server = self.clone();
        tokio::spawn(async move {
            *server.classes.lock().await = None;
            if given_up.is_empty() {
                return;
            }
            let queue = match server.client.queue().await {
                Ok(queue) => queue,
                Err(e) => {
                    tracing::warn!(target: "comfywire::pool", server = %server.label, error = %e, "cannot read the queue of a server that came back");
                    server.given_up.lock().extend(given_up);
                    return;
                }
            };
            let pending: Vec<String> = given_up
                .iter()
                .filter(|id| queue.is_pending(id))
                .cloned()
                .collect();
            if !pending.is_empty() {
                tracing::info!(target: "comfywire::pool", server = %server.label, prompts = ?pending, "deleting prompts that moved elsewhere");
                let _ = server.client.delete(&pending).await;
            }
            for id in given_up.iter().filter(|id| queue.is_running(id)) {
                tracing::info!(target: "comfywire::pool", server = %server.label, prompt = %id, "interrupting a prompt that moved elsewhere");
                let _ = server.client.interrupt(id).await;
            }
        });
    }
}
