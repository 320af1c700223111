//! The exported [`Pool`]: one job API over several ComfyUI servers, each
//! call one call of the host's [`HostPool`] (dispatch, failover, the one
//! outcome per submission and its server all live in the host and
//! `comfywire-pool`). Construction, figures, labels, the pull queue and
//! `shutdown` are synchronous; submit, run, wait, outcome, interrupt and
//! `wait_healthy` are `async`, spawned on the host runtime like
//! [`crate::Client`]'s job calls.

use std::sync::Arc;
use std::time::Duration;

use comfywire_host::{
    HostPool, HostPoolEventRecord, HostPoolOutcome, HostServerStats, PoolOptions, PoolServer,
    parse_json, pool_outcome_result,
};

use crate::error::ComfyError;

/// A pool of ComfyUI servers: each submission goes to the healthy server
/// with the least work (its queue plus the pool's there, over its weight)
/// that has every node class the workflow uses; a prompt still queued on
/// a server that is lost moves to another. Every submission has exactly
/// one outcome, which names the server(s) it went to and its moves.
/// Released (Swift `deinit`, Kotlin `close()`), it shuts down.
#[derive(Debug, uniffi::Object)]
pub struct Pool {
    host: HostPool,
}

impl Pool {
    /// The handle of [`crate::async_calls`].
    fn handle(&self) -> HostPool {
        self.host.clone()
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.host.close_blocking();
    }
}

#[uniffi::export]
impl Pool {
    /// Starts a pool over `servers` (at least one; labels unique, weights
    /// above zero: `Config` otherwise); each server's client connects in
    /// the background (see [`Pool::wait_healthy`]).
    #[uniffi::constructor]
    pub fn new(servers: Vec<PoolServer>, options: PoolOptions) -> Result<Arc<Pool>, ComfyError> {
        let host = HostPool::new(&options.settings(&servers))?;
        Ok(Arc::new(Pool { host }))
    }

    /// Starts a pool from settings JSON with `servers`, the settings
    /// file's format (`{"servers": [{"url": "http://gpu1:8188", "label":
    /// "gpu1", "weight": 2}, {"url": "http://gpu2:8188", "token": "..."}],
    /// "pool_grace_s": 10, "pool_resubmit_running": false}`; each entry's
    /// own settings over the rest), with the `COMFYWIRE_*` environment
    /// overrides applied.
    #[uniffi::constructor]
    pub fn from_settings_json(json: String) -> Result<Arc<Pool>, ComfyError> {
        let host = HostPool::from_settings_json(&json, None)?;
        Ok(Arc::new(Pool { host }))
    }

    /// The servers' labels, in configuration order.
    pub fn labels(&self) -> Vec<String> {
        self.host.labels()
    }

    /// Figures per server, in configuration order.
    pub fn stats(&self) -> Vec<HostServerStats> {
        self.host.stats()
    }

    /// Pull-queue events skipped because they were not pulled fast enough
    /// (outcomes stay available through [`Pool::outcome`]).
    pub fn skipped_events(&self) -> u64 {
        self.host.skipped_events()
    }

    /// The next event, waiting up to `timeout_ms`; `None` when none came.
    /// Events are queued from the first call on: every server's events
    /// tagged with its label, a `moved` event when a submission moves, and
    /// one `finished` event per submission. Blocks the calling thread
    /// (call it from a background thread or `Dispatchers.IO`).
    pub fn next_event(&self, timeout_ms: u64) -> Result<Option<HostPoolEventRecord>, ComfyError> {
        let event = self.host.next_event(Duration::from_millis(timeout_ms))?;
        Ok(event.map(|e| e.to_record()))
    }

    /// Closes every server's client: waits in progress end with `Closed`,
    /// and so does every later call. Idempotent; also done when the object
    /// is released. Not named `close`: Kotlin objects already have
    /// `close()` (AutoCloseable), which releases the object and so ends in
    /// the same place.
    pub fn shutdown(&self) {
        self.host.close_blocking();
    }
}

crate::async_calls! { Pool, pool;
    /// Waits until at least `count` servers take work (socket up, or
    /// polling over HTTP), at most `timeout_ms`; answers how many do
    /// (fewer when the time ran out, which is not an error).
    fn wait_healthy(count: u32, timeout_ms: u64) -> u32 => async move {
        let healthy = pool.wait_healthy(count as usize, Duration::from_millis(timeout_ms));
        Ok(u32::try_from(healthy.await?).unwrap_or(u32::MAX))
    };
    /// Submits a workflow (API-format JSON) to the server with the least
    /// work that can run it; answers the submission's id (its prompt id on
    /// every server it goes to). `Validation` when no server has every node
    /// class it uses (`detail`'s `missing` names them, `server` the one
    /// that lacks them), `Request` when no server is reachable.
    fn submit(workflow_json: String) -> String
        => async move { pool.submit(parse_json(&workflow_json, "workflow")?).await };
    /// Submits and waits up to `timeout` (`None`: no limit) for the one
    /// outcome: the outcome of a submission that succeeded, or
    /// `ExecutionFailed` / `Interrupted` / `Lost` (with the server's
    /// outcome; `detail` adds `server`, `servers` and `moves`), `Timeout`
    /// when the time ran out (it goes on: [`Pool::wait`] again).
    #[uniffi::method(default(timeout = None))]
    fn run(workflow_json: String, timeout: Option<Duration>) -> HostPoolOutcome => async move {
        let workflow = parse_json(&workflow_json, "workflow")?;
        pool_outcome_result(pool.run(workflow, timeout).await?)
    };
    /// Waits up to `timeout` (`None`: no limit) for a submission's one
    /// outcome, with the errors of [`Pool::run`]; an id the pool does not
    /// know is `InvalidArgument`.
    #[uniffi::method(default(timeout = None))]
    fn wait(prompt_id: String, timeout: Option<Duration>) -> HostPoolOutcome
        => pool.wait(&prompt_id, timeout);
    /// Waits like [`Pool::wait`] but returns the one outcome however the
    /// submission ended (look at `status`).
    #[uniffi::method(default(timeout = None))]
    fn outcome(prompt_id: String, timeout: Option<Duration>) -> HostPoolOutcome
        => pool.outcome(&prompt_id, timeout);
    /// Interrupts a submission on the server that has it now; false when
    /// it is not running there.
    fn interrupt(prompt_id: String) -> bool => pool.interrupt(&prompt_id);
}
