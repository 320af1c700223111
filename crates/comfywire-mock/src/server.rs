//! Starting, steering and stopping a mock server.

use crate::fault::{self, Fault};
use crate::hostile::{Flood, HostileHttp};
use crate::ledger::Ledger;
use crate::scenario::Library;
use crate::state::Shared;
use crate::stats::MockStats;
use http_body_util::Either;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Where the recorded sessions come from.
#[derive(Clone, Debug)]
pub enum TraceSource {
    /// The traces compiled into the crate.
    Embedded,
    /// Every `*.jsonl` file in this folder.
    Dir(PathBuf),
}

/// How to start a [`MockServer`].
#[derive(Clone, Debug)]
pub struct MockConfig {
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Which traces to replay.
    pub traces: TraceSource,
    /// Playback speed: 1.0 is recorded speed, 0 means no delays at all.
    pub speed: f64,
    /// The scenario for graphs that match no recording.
    pub default_scenario: String,
}

impl Default for MockConfig {
    fn default() -> Self {
        MockConfig {
            port: 0,
            traces: TraceSource::Embedded,
            speed: 1.0,
            default_scenario: "success_single".to_owned(),
        }
    }
}

/// A running mock ComfyUI server on 127.0.0.1.
pub struct MockServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    accept: JoinHandle<()>,
    worker: JoinHandle<()>,
}

impl std::fmt::Debug for MockServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockServer")
            .field("addr", &self.addr)
            .finish()
    }
}

impl MockServer {
    /// Starts with [`MockConfig::default`] (embedded traces, free port).
    pub async fn start() -> std::io::Result<MockServer> {
        Self::start_with(MockConfig::default()).await
    }

    /// Starts with `config` on a multi-thread runtime of its own with
    /// `workers` threads, for tests and benches whose clients block their
    /// own threads or must not share the mock's scheduler. The runtime
    /// must outlive the server: keep both.
    pub fn start_on_own_runtime(
        config: MockConfig,
        workers: usize,
    ) -> std::io::Result<(tokio::runtime::Runtime, MockServer)> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers.max(1))
            .enable_all()
            .build()?;
        let server = rt.block_on(MockServer::start_with(config))?;
        Ok((rt, server))
    }

    /// Starts with `config`.
    pub async fn start_with(config: MockConfig) -> std::io::Result<MockServer> {
        let library = match &config.traces {
            TraceSource::Embedded => Library::embedded()?,
            TraceSource::Dir(dir) => Library::from_dir(dir)?,
        };
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, config.port)).await?;
        let addr = listener.local_addr()?;
        let shared = Shared::new(library, config.default_scenario, config.speed);
        let worker = tokio::spawn(crate::playback::worker(shared.clone()));
        let accept = tokio::spawn(accept_loop(shared.clone(), listener));
        Ok(MockServer {
            shared,
            addr,
            accept,
            worker,
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Names of the loaded traces.
    pub fn scenarios(&self) -> Vec<String> {
        self.shared
            .library
            .scenarios
            .iter()
            .map(|s| s.name.clone())
            .collect()
    }

    /// The API-format graph that replays `scenario`: the `prompt` of its first
    /// recorded 200 `POST /prompt`, or of its first 400 one.
    pub fn workflow(&self, scenario: &str) -> Option<Value> {
        self.shared.library.get(scenario)?.workflow().cloned()
    }

    /// `workflow("success_single")`, or `null` if that trace is not loaded.
    pub fn sample_workflow(&self) -> Value {
        self.workflow("success_single").unwrap_or(Value::Null)
    }

    /// 1.0 is recorded speed, 10 is ten times faster, 0 plays without delays.
    pub fn set_speed(&self, speed: f64) {
        self.shared.lock().speed = speed.max(0.0);
        self.shared.wake.notify_waiters();
    }

    /// True while `prompt_id` is pending or running here (the server's
    /// own queue, read without HTTP).
    pub fn queue_holds(&self, prompt_id: &str) -> bool {
        let inner = self.shared.lock();
        inner.queue.iter().any(|j| j.prompt_id == prompt_id)
            || inner
                .running
                .as_ref()
                .is_some_and(|r| r.job.prompt_id == prompt_id)
    }

    /// Makes this server lack the node class `class`: `/object_info` leaves
    /// it out and a prompt using it is refused (400 `invalid_prompt`), as on
    /// a ComfyUI without that custom node.
    pub fn hide_node_class(&self, class: &str) {
        self.shared
            .lock()
            .hidden_node_classes
            .insert(class.to_owned());
    }

    /// Injects `fault`.
    pub fn inject(&self, fault: Fault) {
        fault::apply(&self.shared, fault);
    }

    /// Same as injecting [`Fault::Restart`].
    pub fn restart(&self) {
        self.shared.restart();
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> MockStats {
        self.shared.lock().stats.clone()
    }

    /// A snapshot of the server's own record of every `POST /prompt`
    /// (also `GET /mock/ledger`): what it enqueued under which id, for
    /// which client, how often it started it and how it ended. Restarts do
    /// not clear it; it keeps the last [`LEDGER_CAPACITY`] entries
    /// unless [`MockServer::set_ledger_capacity`] says otherwise.
    ///
    /// [`LEDGER_CAPACITY`]: crate::LEDGER_CAPACITY
    pub fn ledger(&self) -> Ledger {
        self.shared.lock().ledger.snapshot()
    }

    /// Keeps at most `capacity` ledger entries (at least 1), evicting the
    /// oldest and counting them in [`Ledger::evicted`].
    pub fn set_ledger_capacity(&self, capacity: usize) {
        self.shared.lock().ledger.set_capacity(capacity);
    }

    /// The server's history entry of `prompt_id` as it holds it, past any
    /// fault ([`Fault::HistoryUnreadable`] does not apply): `None` when it
    /// has none (unknown, pending, running, or forgotten by a restart).
    pub fn history_entry(&self, prompt_id: &str) -> Option<Value> {
        self.shared.lock().history.get(prompt_id).cloned()
    }

    /// True when `/history/{prompt_id}` answers its entry, false when
    /// [`crate::Fault::HistoryUnreadable`] makes it fail for that prompt.
    pub fn history_readable(&self, prompt_id: &str) -> bool {
        !self.shared.lock().history_unreadable.contains(prompt_id)
    }

    /// Sends `frames` frames from `scenario`'s first prompt (a new prompt id
    /// per cycle) to `client_id`'s socket as fast as it takes them; resolves
    /// to the number sent (0 if the client has no socket within 5 s).
    pub fn firehose(&self, client_id: &str, frames: u64, scenario: &str) -> JoinHandle<u64> {
        crate::firehose::start(&self.shared, client_id, frames, scenario)
    }

    /// Sends `frames` frames of the synthetic stream `mix`, encoded once
    /// and written straight to the TCP stream, to `client_id`'s socket as
    /// fast as it takes them; resolves to the number sent (0 if the client
    /// has no socket within 5 s). The server's cost per frame is near zero, so a
    /// reader's rate is its own.
    pub fn firehose_mix(&self, client_id: &str, frames: u64, mix: crate::Mix) -> JoinHandle<u64> {
        crate::mix::start(&self.shared, client_id, frames, mix)
    }

    /// Hostile mode: sends `flood` to `client_id`'s socket as fast as it
    /// reads; resolves to the frames sent (0 if the client has no socket within 5 s).
    pub fn flood(&self, client_id: &str, flood: Flood) -> JoinHandle<u64> {
        let (shared, client_id) = (self.shared.clone(), client_id.to_owned());
        tokio::spawn(async move {
            let Some(tx) = shared.socket_of(&client_id).await else {
                return 0;
            };
            let (done, finished) = tokio::sync::oneshot::channel();
            let frames = flood.messages();
            if tx
                .send(crate::state::Outgoing::Pour { frames, done })
                .is_err()
            {
                return 0;
            }
            finished.await.unwrap_or(0)
        })
    }

    /// Hostile mode: answers these HTTP routes with hostile bodies from now
    /// on (`HostileHttp::default()` turns it off).
    pub fn set_hostile_http(&self, hostile: HostileHttp) {
        *self.shared.hostile.lock() = hostile;
    }

    /// Stops listening, closes every socket and waits for the tasks.
    pub async fn shutdown(self) {
        self.shared.shutdown.send_replace(true);
        let _ = self.accept.await;
        let _ = self.worker.await;
        let tasks = std::mem::take(&mut *self.shared.tasks.lock());
        for task in tasks {
            let _ = task.await;
        }
    }
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    let mut shutdown = shared.shutdown.subscribe();
    loop {
        // A shutdown sent before this task first ran is not a change.
        if *shutdown.borrow() {
            return;
        }
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let conn_shared = shared.clone();
        let mut conn_shutdown = shared.shutdown.subscribe();
        let task = tokio::spawn(async move {
            // An `Err` (a cut answer) makes hyper drop the connection;
            // hostile mode answers some routes with streamed bodies.
            let service = service_fn(move |req| {
                let shared = conn_shared.clone();
                async move {
                    let hostile = *shared.hostile.lock();
                    match crate::hostile::route(&hostile, &req) {
                        Some(streamed) => Ok(streamed.map(Either::Right)),
                        None => crate::routes::handle(shared, req)
                            .await
                            .map(|r| r.map(Either::Left)),
                    }
                }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::select! {
                result = conn => {
                    if let Err(e) = result {
                        tracing::debug!("http connection ended: {e}");
                    }
                }
                _ = conn_shutdown.changed() => {}
            }
        });
        shared.track(task);
    }
}
