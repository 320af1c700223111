//! The pool: its servers, the submissions it follows, and its job API.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use comfywire_client::proto::Phase;
use comfywire_client::{Client, Event, ExecutionRecord};
use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

use crate::server::Server;
use crate::submitted::Submitted;
use crate::{PoolConfig, PoolError};

/// A submission moving from one server to another.
#[derive(Debug, Clone, PartialEq)]
pub struct Move {
    /// The server it left.
    pub from: String,
    /// The server it went to.
    pub to: String,
    /// Why.
    pub reason: String,
}

/// The one outcome of a pool submission.
#[derive(Debug, Clone)]
pub struct PoolOutcome {
    /// The submission's id: the prompt id on every server it went to.
    pub prompt_id: String,
    /// How it ended.
    pub status: Phase,
    /// The server it ended on.
    pub server: String,
    /// That server's record of it, when it has one (not when the pool
    /// gave it up with the server).
    pub record: Option<Arc<ExecutionRecord>>,
    /// Why it was lost, when it was.
    pub lost_reason: Option<String>,
    /// Every server it went to, in order.
    pub servers: Vec<String>,
    /// Every move, in order.
    pub moves: Vec<Move>,
}

impl PoolOutcome {
    /// True when it succeeded.
    pub fn succeeded(&self) -> bool {
        self.status == Phase::Succeeded
    }
}

/// What a pool's event stream carries.
#[derive(Debug, Clone)]
pub enum PoolEvent {
    /// An event of one server's client: every kind, except the server's
    /// `Finished` of the pool's own submissions (the pool reports each
    /// submission's end once, as `Finished` below). A prompt submitted
    /// by someone else with the same client id keeps its `Finished`.
    Server {
        /// The server's label.
        server: String,
        /// The event.
        event: Event,
    },
    /// A submission moved to another server.
    Moved {
        /// The submission.
        prompt_id: String,
        /// The move.
        moved: Move,
    },
    /// A submission's one outcome.
    Finished(Arc<PoolOutcome>),
}

/// One server's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerStats {
    /// Its label.
    pub label: String,
    /// Taking work now (socket up, or polling over HTTP).
    pub healthy: bool,
    /// Its queue as its last `status` frame said.
    pub queue_remaining: u64,
    /// Pool submissions there now.
    pub in_flight: usize,
    /// Pool submissions that ended there.
    pub done: u64,
    /// Pool submissions that moved away from it.
    pub failed_over: u64,
}

/// A pool submission being followed.
pub(crate) struct Job {
    pub(crate) workflow: Value,
    /// Index of the server it is on.
    pub(crate) server: AtomicUsize,
    pub(crate) moves: Mutex<Vec<Move>>,
    pub(crate) servers: Mutex<Vec<String>>,
    pub(crate) outcome: watch::Sender<Option<Arc<PoolOutcome>>>,
}

pub(crate) struct Inner {
    pub(crate) servers: Vec<Arc<Server>>,
    pub(crate) config: PoolConfig,
    pub(crate) jobs: Mutex<HashMap<String, Arc<Job>>>,
    /// Every prompt id the pool posted (see [`Submitted`]).
    pub(crate) submitted: Arc<Submitted>,
    pub(crate) turn: AtomicUsize,
    pub(crate) events: broadcast::Sender<PoolEvent>,
    pub(crate) tasks: Mutex<Vec<JoinHandle<()>>>,
    pub(crate) closed: AtomicBool,
}

/// One client over many ComfyUI servers; see the crate documentation.
/// Cheap to clone (all clones share the pool).
#[derive(Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

/// Pool events held for a reader that falls behind (older ones are then
/// skipped; outcomes are always there through [`Pool::wait`]).
const EVENT_BACKLOG: usize = 4096;

/// Finished submissions whose outcome is kept for [`Pool::wait`].
pub(crate) const KEPT_OUTCOMES: usize = 4096;

impl Pool {
    /// Starts a client per server (each connects in the background).
    /// Needs a tokio runtime.
    pub fn start(config: PoolConfig) -> Result<Pool, PoolError> {
        config.validate()?;
        let (events, _) = broadcast::channel(EVENT_BACKLOG);
        let mut servers = Vec::with_capacity(config.servers.len());
        for spec in &config.servers {
            let client = Client::start(spec.config.clone()).map_err(|error| PoolError::Client {
                server: spec.label.clone(),
                error,
            })?;
            servers.push(Arc::new(Server::new(
                spec.label.clone(),
                spec.weight,
                client,
            )));
        }
        let submitted = Arc::new(Submitted::default());
        let tasks = servers
            .iter()
            .flat_map(|s| {
                [
                    s.watch(events.clone(), submitted.clone()),
                    s.probe_while_down(config.check_interval),
                ]
            })
            .collect();
        Ok(Pool {
            inner: Arc::new(Inner {
                servers,
                config,
                jobs: Mutex::new(HashMap::new()),
                submitted,
                turn: AtomicUsize::new(0),
                events,
                tasks: Mutex::new(tasks),
                closed: AtomicBool::new(false),
            }),
        })
    }

    /// Waits until at least `count` servers are connected (or polling),
    /// at most `timeout`; how many are.
    pub async fn wait_healthy(&self, count: usize, timeout: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let healthy = self.inner.servers.iter().filter(|s| s.healthy()).count();
            if healthy >= count || tokio::time::Instant::now() >= deadline {
                return healthy;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Submits a workflow to the server with the least work that can run
    /// it; returns the submission's id (its prompt id on any server).
    pub async fn submit(&self, workflow: &Value) -> Result<String, PoolError> {
        self.open()?;
        let prompt_id = comfywire_client::new_uuid();
        self.inner.submitted.insert(&prompt_id);
        let index = self.inner.dispatch(workflow, &prompt_id, &[]).await?;
        let (outcome, _) = watch::channel(None);
        let job = Arc::new(Job {
            workflow: workflow.clone(),
            server: AtomicUsize::new(index),
            moves: Mutex::new(Vec::new()),
            servers: Mutex::new(vec![self.inner.servers[index].label.clone()]),
            outcome,
        });
        self.inner.remember(&prompt_id, job.clone());
        let inner = self.inner.clone();
        let id = prompt_id.clone();
        let task = tokio::spawn(async move { inner.follow(id, job).await });
        let mut tasks = self.inner.tasks.lock();
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
        Ok(prompt_id)
    }

    /// Waits for a submission's one outcome, at most `timeout` (`None`:
    /// no limit). An outcome that is not a success is still `Ok`: look at
    /// [`PoolOutcome::status`].
    pub async fn wait(
        &self,
        prompt_id: &str,
        timeout: Option<Duration>,
    ) -> Result<Arc<PoolOutcome>, PoolError> {
        let job = self
            .inner
            .jobs
            .lock()
            .get(prompt_id)
            .cloned()
            .ok_or_else(|| PoolError::Unknown(prompt_id.to_owned()))?;
        let mut outcome = job.outcome.subscribe();
        let ended = async {
            loop {
                if let Some(done) = outcome.borrow_and_update().clone() {
                    return Ok(done);
                }
                if outcome.changed().await.is_err() {
                    return Err(PoolError::Closed);
                }
            }
        };
        match timeout {
            Some(limit) => tokio::time::timeout(limit, ended)
                .await
                .map_err(|_| PoolError::Timeout(prompt_id.to_owned()))?,
            None => ended.await,
        }
    }

    /// Submits and waits.
    pub async fn run(
        &self,
        workflow: &Value,
        timeout: Option<Duration>,
    ) -> Result<Arc<PoolOutcome>, PoolError> {
        let id = self.submit(workflow).await?;
        self.wait(&id, timeout).await
    }

    /// Interrupts a submission on the server that has it now; `false` when
    /// it is not running there.
    pub async fn interrupt(&self, prompt_id: &str) -> Result<bool, PoolError> {
        let server = self.server_of(prompt_id)?;
        server
            .client
            .interrupt(prompt_id)
            .await
            .map_err(|error| PoolError::Client {
                server: server.label.clone(),
                error,
            })
    }

    /// Every server's events (tagged) and every submission's moves and one
    /// outcome, from now on.
    pub fn events(&self) -> broadcast::Receiver<PoolEvent> {
        self.inner.events.subscribe()
    }

    /// Figures per server, in configuration order.
    pub fn stats(&self) -> Vec<ServerStats> {
        self.inner
            .servers
            .iter()
            .map(|s| ServerStats {
                label: s.label.clone(),
                healthy: s.healthy(),
                queue_remaining: s.queue_remaining(),
                in_flight: s.in_flight.load(Ordering::Relaxed),
                done: s.done.load(Ordering::Relaxed),
                failed_over: s.failed_over.load(Ordering::Relaxed),
            })
            .collect()
    }

    /// The client of a server, by label (for what the pool does not wrap:
    /// queue, history, files).
    pub fn client(&self, label: &str) -> Option<&Client> {
        self.inner
            .servers
            .iter()
            .find(|s| s.label == label)
            .map(|s| &s.client)
    }

    /// Closes every client; submissions still in flight end their waits
    /// with [`PoolError::Closed`].
    pub async fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
        for task in self.inner.tasks.lock().drain(..) {
            task.abort();
        }
        self.inner.jobs.lock().clear();
        for server in &self.inner.servers {
            server.client.close().await;
        }
    }

    fn open(&self) -> Result<(), PoolError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(PoolError::Closed);
        }
        Ok(())
    }

    fn server_of(&self, prompt_id: &str) -> Result<&Arc<Server>, PoolError> {
        let index = self
            .inner
            .jobs
            .lock()
            .get(prompt_id)
            .map(|j| j.server.load(Ordering::Acquire))
            .ok_or_else(|| PoolError::Unknown(prompt_id.to_owned()))?;
        Ok(&self.inner.servers[index])
    }
}
