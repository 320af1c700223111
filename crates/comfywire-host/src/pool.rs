//! [`HostPool`]: the job API of a pool of servers (`comfywire-pool`),
//! written once for every binding: start from settings with `servers`,
//! submit / run / wait with a time limit, interrupt, per-server figures,
//! a pull queue of events tagged with their server, close. Outcomes are
//! the host's flat model ([`HostPoolOutcome`], which holds the
//! [`HostOutcome`] of the server's record when there is one).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use comfywire_client::Settings;
use comfywire_client::json::{NodeNames, event_json};
use comfywire_client::proto::Phase;
use comfywire_pool::{Move, Pool, PoolConfig, PoolError, PoolEvent, PoolOutcome, ServerStats};
use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::error::{ErrorCode, HostError};
use crate::model::{HostEvent, HostOutcome};
use crate::runtime::{block_on, on_runtime_thread, runtime};

/// A submission moving from one server to another.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record), uniffi(name = "PoolMove"))]
pub struct HostMove {
    /// The server it left.
    pub from: String,
    /// The server it went to.
    pub to: String,
    /// Why.
    pub reason: String,
}

impl From<&Move> for HostMove {
    fn from(m: &Move) -> HostMove {
        HostMove {
            from: m.from.clone(),
            to: m.to.clone(),
            reason: m.reason.clone(),
        }
    }
}

impl HostMove {
    /// The move as JSON: `{"from", "to", "reason"}`.
    pub fn to_json(&self) -> Value {
        json!({"from": self.from, "to": self.to, "reason": self.reason})
    }
}

/// The one outcome of a pool submission, flattened.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    feature = "uniffi",
    derive(uniffi::Record),
    uniffi(name = "PoolOutcome")
)]
pub struct HostPoolOutcome {
    /// The submission's id: its prompt id on every server it went to.
    pub prompt_id: String,
    /// How it ended: `succeeded`, `failed`, `interrupted` or `lost`.
    pub status: Phase,
    /// The server it ended on.
    pub server: String,
    /// Every server it went to, in order.
    pub servers: Vec<String>,
    /// Every move, in order.
    pub moves: Vec<HostMove>,
    /// Why it was lost, when it was.
    pub lost_reason: Option<String>,
    /// The server's record of it, when it has one (not when the pool gave
    /// it up with its server).
    pub outcome: Option<HostOutcome>,
}

impl HostPoolOutcome {
    /// Flattens a pool outcome.
    pub fn from_pool(o: &PoolOutcome) -> HostPoolOutcome {
        HostPoolOutcome {
            prompt_id: o.prompt_id.clone(),
            status: o.status,
            server: o.server.clone(),
            servers: o.servers.clone(),
            moves: o.moves.iter().map(HostMove::from).collect(),
            lost_reason: o.lost_reason.clone(),
            outcome: o.record.as_deref().map(HostOutcome::from_record),
        }
    }

    /// True when it succeeded.
    pub fn succeeded(&self) -> bool {
        self.status == Phase::Succeeded
    }

    /// The outcome as a single client's: the server's record, or, when
    /// the pool gave the submission up with its server, a `lost` outcome
    /// with the reason and nothing else (for front ends with one outcome
    /// type, such as C's).
    pub fn flat(&self) -> HostOutcome {
        match &self.outcome {
            Some(outcome) => outcome.clone(),
            None => HostOutcome {
                prompt_id: self.prompt_id.clone(),
                status: self.status,
                number: None,
                outputs: Value::Object(serde_json::Map::new()),
                nodes: Vec::new(),
                cached: Vec::new(),
                error: None,
                interrupted_at: None,
                lost_reason: self.lost_reason.clone(),
                duration_ms: None,
                progress: 0.0,
                had_gap: false,
                outputs_omitted: 0,
                skipped_outputs: None,
            },
        }
    }

    /// The outcome as JSON: `prompt_id`, `status`, `server`, `servers`,
    /// `moves` (each `{"from", "to", "reason"}`), `lost_reason` and
    /// `outcome` (the record's JSON, as `HostOutcome::to_json`, or null).
    pub fn to_json(&self) -> Value {
        json!({
            "prompt_id": self.prompt_id,
            "status": self.status.name(),
            "server": self.server,
            "servers": self.servers,
            "moves": self.moves.iter().map(HostMove::to_json).collect::<Vec<_>>(),
            "lost_reason": self.lost_reason,
            "outcome": self.outcome.as_ref().map(HostOutcome::to_json),
        })
    }
}

/// Maps a pool outcome to `Ok` (succeeded) or the matching error (as
/// [`crate::outcome_result`] does for one client), whose detail adds
/// `server`, `servers` and `moves` and whose outcome is [`HostPoolOutcome::flat`].
pub fn pool_outcome_result(outcome: HostPoolOutcome) -> Result<HostPoolOutcome, HostError> {
    if outcome.succeeded() {
        return Ok(outcome);
    }
    let mut error = match crate::outcome_result(outcome.flat()) {
        Ok(_) => HostError::new(ErrorCode::Protocol, "an unfinished pool outcome"),
        Err(error) => error,
    };
    let mut detail = match error.detail.take() {
        Some(Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    let pool = outcome.to_json();
    for key in ["server", "servers", "moves"] {
        if let Some(value) = pool.get(key) {
            detail.insert(key.into(), value.clone());
        }
    }
    error.message = format!("{} (on {})", error.message, outcome.server);
    error.detail = Some(Value::Object(detail));
    Err(error)
}

/// One server's figures.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    feature = "uniffi",
    derive(uniffi::Record),
    uniffi(name = "ServerStats")
)]
pub struct HostServerStats {
    /// Its label.
    pub label: String,
    /// Taking work now (socket up, or polling over HTTP).
    pub healthy: bool,
    /// Its queue as its last `status` frame said.
    pub queue_remaining: u64,
    /// Pool submissions there now.
    pub in_flight: u64,
    /// Pool submissions that ended there.
    pub done: u64,
    /// Pool submissions that moved away from it.
    pub failed_over: u64,
}

impl From<&ServerStats> for HostServerStats {
    fn from(s: &ServerStats) -> HostServerStats {
        HostServerStats {
            label: s.label.clone(),
            healthy: s.healthy,
            queue_remaining: s.queue_remaining,
            in_flight: s.in_flight as u64,
            done: s.done,
            failed_over: s.failed_over,
        }
    }
}

impl HostServerStats {
    /// The figures as JSON: `{"label", "healthy", "queue_remaining",
    /// "in_flight", "done", "failed_over"}`.
    pub fn to_json(&self) -> Value {
        json!({
            "label": self.label,
            "healthy": self.healthy,
            "queue_remaining": self.queue_remaining,
            "in_flight": self.in_flight,
            "done": self.done,
            "failed_over": self.failed_over,
        })
    }
}

/// What a pool's pull queue hands out.
#[derive(Debug, Clone)]
pub enum HostPoolEvent {
    /// An event of one server's client (every kind but `finished`, which
    /// the pool reports once per submission as [`HostPoolEvent::Finished`]).
    Server {
        /// The server's label.
        server: String,
        /// The event.
        event: comfywire_client::Event,
    },
    /// A submission moved to another server.
    Moved {
        /// The submission.
        prompt_id: String,
        /// The move.
        moved: HostMove,
    },
    /// A submission's one outcome.
    Finished(Box<HostPoolOutcome>),
}

impl HostPoolEvent {
    fn from_pool(event: PoolEvent) -> HostPoolEvent {
        match event {
            PoolEvent::Server { server, event } => HostPoolEvent::Server { server, event },
            PoolEvent::Moved { prompt_id, moved } => HostPoolEvent::Moved {
                prompt_id,
                moved: HostMove::from(&moved),
            },
            PoolEvent::Finished(outcome) => {
                HostPoolEvent::Finished(Box::new(HostPoolOutcome::from_pool(&outcome)))
            }
        }
    }

    /// Its kind: a client event's name, `moved` or `finished`.
    pub fn kind(&self) -> &'static str {
        match self {
            HostPoolEvent::Server { event, .. } => event.kind().name(),
            HostPoolEvent::Moved { .. } => "moved",
            HostPoolEvent::Finished(_) => "finished",
        }
    }

    /// The server it is about: the one that sent it, the one the
    /// submission moved to, the one it ended on.
    pub fn server(&self) -> &str {
        match self {
            HostPoolEvent::Server { server, .. } => server,
            HostPoolEvent::Moved { moved, .. } => &moved.to,
            HostPoolEvent::Finished(outcome) => &outcome.server,
        }
    }

    /// The submission it is about, when there is one.
    pub fn prompt_id(&self) -> Option<&str> {
        match self {
            HostPoolEvent::Server { event, .. } => event.prompt_id(),
            HostPoolEvent::Moved { prompt_id, .. } => Some(prompt_id),
            HostPoolEvent::Finished(outcome) => Some(&outcome.prompt_id),
        }
    }

    /// A server event flattened as a client's ([`HostEvent`]); `None` for
    /// moves and outcomes.
    pub fn flat(&self) -> Option<HostEvent> {
        match self {
            HostPoolEvent::Server { event, .. } => Some(HostEvent::from_event(event)),
            _ => None,
        }
    }

    /// The event as JSON: a server event's object (the CLI's `--json`
    /// schema) with `server` added; `{"event": "moved", "prompt_id",
    /// "server", "from", "to", "reason"}`; or `{"event": "finished",
    /// "prompt_id", "server", "outcome": <HostPoolOutcome::to_json>}`.
    pub fn to_json(&self) -> Value {
        let mut object = match self {
            HostPoolEvent::Server { event, .. } => event_json(event, &NodeNames::default(), None),
            HostPoolEvent::Moved { prompt_id, moved } => json!({
                "event": "moved", "prompt_id": prompt_id,
                "from": moved.from, "to": moved.to, "reason": moved.reason,
            }),
            HostPoolEvent::Finished(outcome) => json!({
                "event": "finished", "prompt_id": outcome.prompt_id,
                "outcome": outcome.to_json(),
            }),
        };
        if let Some(map) = object.as_object_mut() {
            map.insert("server".into(), json!(self.server()));
        }
        object
    }
}

/// A pool event, flattened like a client's [`HostEvent`]: every one
/// carries its kind and its server; which of `event`, `moved` and
/// `outcome` is set depends on the kind (for front ends whose records
/// cannot be enums of payloads: Swift and Kotlin).
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record), uniffi(name = "PoolEvent"))]
pub struct HostPoolEventRecord {
    /// Its kind ([`HostPoolEvent::kind`]): a server event's name (`event`
    /// is set), `moved` (`moved` is set) or `finished`, a submission's one
    /// outcome (`outcome` is set). Tell the pool's `finished` by its
    /// `outcome`, not by the name alone.
    pub kind: String,
    /// The server it is about ([`HostPoolEvent::server`]): the one that
    /// sent it, the one the submission moved to, the one it ended on.
    pub server: String,
    /// The submission it is about, when there is one.
    pub prompt_id: Option<String>,
    /// The server's event, flattened (every kind but `moved` and
    /// `finished`).
    pub event: Option<HostEvent>,
    /// The move (`moved`).
    pub moved: Option<HostMove>,
    /// The submission's one outcome (`finished`).
    pub outcome: Option<HostPoolOutcome>,
}

impl HostPoolEvent {
    /// The event as a flat record.
    pub fn to_record(&self) -> HostPoolEventRecord {
        let (moved, outcome) = match self {
            HostPoolEvent::Server { .. } => (None, None),
            HostPoolEvent::Moved { moved, .. } => (Some(moved.clone()), None),
            HostPoolEvent::Finished(outcome) => (None, Some(outcome.as_ref().clone())),
        };
        HostPoolEventRecord {
            kind: self.kind().to_owned(),
            server: self.server().to_owned(),
            prompt_id: self.prompt_id().map(str::to_owned),
            event: self.flat(),
            moved,
            outcome,
        }
    }
}

impl From<PoolError> for HostError {
    fn from(error: PoolError) -> HostError {
        let message = error.to_string();
        match error {
            PoolError::Config(_) => HostError::new(ErrorCode::Config, message),
            PoolError::MissingNodeClasses { missing, server } => HostError {
                code: ErrorCode::Validation,
                detail: Some(json!({
                    "type": "missing_node_classes",
                    "message": message,
                    "details": missing.join(", "),
                    "node_errors": [],
                    "missing": missing,
                    "server": server,
                })),
                message,
                outcome: None,
            },
            PoolError::NoServer(_) => HostError::new(ErrorCode::Request, message),
            PoolError::Unknown(_) => HostError::new(ErrorCode::InvalidArgument, message),
            PoolError::Timeout(_) => HostError::new(ErrorCode::Timeout, message),
            PoolError::Closed => HostError::new(ErrorCode::Closed, "the pool is closed"),
            PoolError::Client { server, error } => {
                let mut host = HostError::from(error);
                host.message = format!("{server}: {}", host.message);
                let mut detail = match host.detail.take() {
                    Some(Value::Object(map)) => map,
                    _ => serde_json::Map::new(),
                };
                detail.insert("server".into(), json!(server));
                host.detail = Some(Value::Object(detail));
                host
            }
        }
    }
}

/// What a pool's clones share beside the pool.
struct Shared {
    /// Set by the first close: every call fails from then on.
    closed: AtomicBool,
    /// The pull queue, subscribed on the first pull.
    pull: tokio::sync::Mutex<Option<broadcast::Receiver<PoolEvent>>>,
    /// Events the pull queue skipped because it was not read fast enough
    /// (outcomes stay available through `wait`).
    skipped: std::sync::atomic::AtomicU64,
}

/// A pool of servers as every binding sees it. Cheap to clone (every
/// clone drives the same pool); each async call borrows nothing from the
/// caller, so a binding can move a clone into a task or a foreign future.
/// Closing is idempotent; dropping the last clone without closing leaves
/// the clients to the runtime, so front ends close explicitly (or on their
/// own drop, as C's free does).
#[derive(Clone)]
pub struct HostPool {
    pool: Pool,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for HostPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostPool")
            .field("servers", &self.labels())
            .finish()
    }
}

impl HostPool {
    /// Starts a pool from settings with `servers` (see
    /// [`PoolConfig::from_settings`]); each client connects in the
    /// background.
    pub fn new(settings: &Settings) -> Result<HostPool, HostError> {
        HostPool::from_config(PoolConfig::from_settings(settings)?)
    }

    /// Starts a pool from a full pool configuration.
    pub fn from_config(config: PoolConfig) -> Result<HostPool, HostError> {
        let rt = runtime()?;
        let pool = {
            let _guard = rt.enter();
            Pool::start(config)?
        };
        Ok(HostPool {
            pool,
            shared: Arc::new(Shared {
                closed: AtomicBool::new(false),
                pull: tokio::sync::Mutex::new(None),
                skipped: std::sync::atomic::AtomicU64::new(0),
            }),
        })
    }

    /// Starts a pool from settings JSON with `servers` (C's
    /// `comfywire_pool_new`), layered by the one precedence rule: the JSON
    /// beats the `COMFYWIRE_*` environment, which beats the settings
    /// `file` when one is given (see [`crate::HostClient::layered_settings`]).
    pub fn from_settings_json(
        json: &str,
        file: Option<&std::path::Path>,
    ) -> Result<HostPool, HostError> {
        HostPool::new(&crate::HostClient::layered_settings(json, file)?)
    }

    /// The pool (for Rust callers that need what the host does not wrap).
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The servers' labels, in configuration order.
    pub fn labels(&self) -> Vec<String> {
        self.pool.stats().into_iter().map(|s| s.label).collect()
    }

    fn open(&self) -> Result<&Pool, HostError> {
        if self.is_closed() {
            return Err(HostError::new(ErrorCode::Closed, "the pool is closed"));
        }
        Ok(&self.pool)
    }

    /// True once closing began.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }

    /// Waits until at least `count` servers take work (at most
    /// `timeout`); answers how many do.
    pub async fn wait_healthy(&self, count: usize, timeout: Duration) -> Result<usize, HostError> {
        Ok(self.open()?.wait_healthy(count, timeout).await)
    }

    /// Submits a workflow to the server with the least work that can run
    /// it; answers the submission's id (its prompt id on any server). A
    /// workflow no server can run is a `Validation` error whose detail
    /// names the `missing` node classes.
    pub async fn submit(&self, workflow: Value) -> Result<String, HostError> {
        Ok(self.open()?.submit(&workflow).await?)
    }

    /// Waits up to `timeout` (`None`: no limit) for a submission's one
    /// outcome, whatever it is (a `Timeout` error when the limit expires;
    /// the submission goes on).
    pub async fn outcome(
        &self,
        prompt_id: &str,
        timeout: Option<Duration>,
    ) -> Result<HostPoolOutcome, HostError> {
        let outcome = self.open()?.wait(prompt_id, timeout).await?;
        Ok(HostPoolOutcome::from_pool(&outcome))
    }

    /// Waits like [`HostPool::outcome`], then maps the outcome as
    /// [`pool_outcome_result`] does: a failure is its error.
    pub async fn wait(
        &self,
        prompt_id: &str,
        timeout: Option<Duration>,
    ) -> Result<HostPoolOutcome, HostError> {
        pool_outcome_result(self.outcome(prompt_id, timeout).await?)
    }

    /// Submits and waits up to `timeout` for the one outcome, whatever it
    /// is.
    pub async fn run(
        &self,
        workflow: Value,
        timeout: Option<Duration>,
    ) -> Result<HostPoolOutcome, HostError> {
        let prompt_id = self.submit(workflow).await?;
        self.outcome(&prompt_id, timeout).await
    }

    /// Interrupts a submission on the server that has it now; false when
    /// it is not running there.
    pub async fn interrupt(&self, prompt_id: &str) -> Result<bool, HostError> {
        Ok(self.open()?.interrupt(prompt_id).await?)
    }

    /// Figures per server, in configuration order.
    pub fn stats(&self) -> Vec<HostServerStats> {
        self.pool
            .stats()
            .iter()
            .map(HostServerStats::from)
            .collect()
    }

    /// The figures as a JSON array of [`HostServerStats::to_json`].
    pub fn stats_json(&self) -> Value {
        Value::Array(self.stats().iter().map(HostServerStats::to_json).collect())
    }

    /// Pull-queue events skipped because they were not pulled fast enough.
    pub fn skipped_events(&self) -> u64 {
        self.shared.skipped.load(Ordering::Relaxed)
    }

    /// The next event, waiting up to `timeout` (`None` when none came).
    /// Events are queued from the first call on, every server's tagged
    /// with it; a reader that falls far behind skips the oldest (counted
    /// in [`HostPool::skipped_events`]), while outcomes stay available
    /// through [`HostPool::outcome`].
    pub async fn next_event_async(
        &self,
        timeout: Duration,
    ) -> Result<Option<HostPoolEvent>, HostError> {
        let pool = self.open()?;
        let mut pull = self.shared.pull.lock().await;
        let events = pull.get_or_insert_with(|| pool.events());
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, events.recv()).await {
                Err(_) => return Ok(None),
                Ok(Ok(event)) => return Ok(Some(HostPoolEvent::from_pool(event))),
                Ok(Err(broadcast::error::RecvError::Lagged(n))) => {
                    self.shared.skipped.fetch_add(n, Ordering::Relaxed);
                }
                Ok(Err(broadcast::error::RecvError::Closed)) => {
                    return Err(HostError::new(ErrorCode::Closed, "the pool is closed"));
                }
            }
        }
    }

    /// [`HostPool::next_event_async`], blocking (refused on a runtime
    /// thread).
    pub fn next_event(&self, timeout: Duration) -> Result<Option<HostPoolEvent>, HostError> {
        block_on(self.next_event_async(timeout))
    }

    /// Closes every client: every call fails with `Closed` from now on and
    /// waits in progress end with `Closed`. Idempotent.
    pub async fn close(&self) {
        if !self.shared.closed.swap(true, Ordering::AcqRel) {
            self.pool.close().await;
        }
    }

    /// [`HostPool::close`] for front ends that block, and for drops:
    /// returns when every client is closed, except on a runtime thread,
    /// where waiting would stall the clients it waits for, so the close
    /// goes on in the background (every call fails with `Closed` at once
    /// either way). Idempotent.
    pub fn close_blocking(&self) {
        if on_runtime_thread() {
            if !self.shared.closed.swap(true, Ordering::AcqRel) {
                let pool = self.pool.clone();
                // The runtime exists: this pool was started on it.
                if let Ok(rt) = runtime() {
                    drop(rt.spawn(async move { pool.close().await }));
                }
            }
            return;
        }
        let host = self.clone();
        // `block_on` refuses only a runtime thread, handled above.
        if let Err(error) = block_on(async move {
            host.close().await;
            Ok(())
        }) {
            tracing::warn!("closing a pool: {error}");
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_pool_outcome_without_a_record_is_a_lost_error_naming_its_server() {
        let lost = HostPoolOutcome {
            prompt_id: "p".into(),
            status: Phase::Lost,
            server: "gpu1".into(),
            servers: vec!["gpu0".into(), "gpu1".into()],
            moves: vec![HostMove {
                from: "gpu0".into(),
                to: "gpu1".into(),
                reason: "gpu0 unreachable".into(),
            }],
            lost_reason: Some("gpu1 unreachable while it was running there".into()),
            outcome: None,
        };
        assert_eq!(lost.flat().status, Phase::Lost);
        assert_eq!(lost.flat().lost_reason, lost.lost_reason);
        let error = pool_outcome_result(lost.clone()).unwrap_err();
        assert_eq!(error.code, ErrorCode::Lost);
        let detail = error.detail.unwrap();
        assert_eq!(detail["server"], "gpu1");
        assert_eq!(detail["moves"][0]["from"], "gpu0");
        assert!(detail["reason"].as_str().unwrap().contains("running there"));
        let json = lost.to_json();
        assert_eq!(json["status"], "lost");
        assert!(json["outcome"].is_null());

        // The flat records: each names its kind and server, and carries
        // only its own payload.
        let moved = HostPoolEvent::Moved {
            prompt_id: "p".into(),
            moved: lost.moves[0].clone(),
        }
        .to_record();
        assert_eq!(
            (moved.kind.as_str(), moved.server.as_str()),
            ("moved", "gpu1")
        );
        assert_eq!(moved.prompt_id.as_deref(), Some("p"));
        assert_eq!(moved.moved.as_ref(), Some(&lost.moves[0]));
        assert!(moved.event.is_none() && moved.outcome.is_none());
        let finished = HostPoolEvent::Finished(Box::new(lost.clone())).to_record();
        assert_eq!(finished.kind, "finished");
        assert_eq!(finished.server, "gpu1");
        assert_eq!(finished.outcome.as_ref(), Some(&lost));
        assert!(finished.event.is_none() && finished.moved.is_none());
    }

    #[test]
    fn pool_errors_keep_their_meaning() {
        let missing: HostError = PoolError::MissingNodeClasses {
            missing: vec!["Upscale".into()],
            server: "gpu0".into(),
        }
        .into();
        assert_eq!(missing.code, ErrorCode::Validation);
        assert_eq!(missing.detail.unwrap()["missing"][0], "Upscale");
        let closed: HostError = PoolError::Closed.into();
        assert_eq!(closed.code, ErrorCode::Closed);
        let timeout: HostError = PoolError::Timeout("p".into()).into();
        assert_eq!(timeout.code, ErrorCode::Timeout);
    }
}
