//! [`SessionConfig`]: every knob of a session, with its documented
//! defaults.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::backoff::BackoffConfig;
use crate::record::ExecutionRecord;

/// Everything a session can be tuned with. `Default` gives the documented
/// values.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionConfig {
    /// The `clientId`; `None` adopts the sid the server assigns.
    pub client_id: Option<String>,
    /// Reconnect backoff.
    pub backoff: BackoffConfig,
    /// Seed of the jitter generator.
    pub seed: u64,
    /// A connection up this long resets the backoff (default 10 s).
    pub stable_after: Duration,
    /// Consecutive failed connects before polling over HTTP (default 5).
    pub polling_after_failures: u32,
    /// HTTP poll interval while polling with no prompt of ours in flight,
    /// and of attached prompts (default 2 s).
    pub poll_interval: Duration,
    /// While the socket is not open and prompts of ours are in flight,
    /// their state is learned over HTTP this often at first (default 1 s),
    /// independent of the reconnect backoff. The interval grows to a tenth
    /// of the time the server's queue has stayed unchanged, up to
    /// [`SessionConfig::disconnected_poll_max`].
    pub disconnected_poll: Duration,
    /// The longest interval of the disconnected poll (default 5 s): a
    /// prompt the server finishes while the socket is down is settled at
    /// most this long (plus two HTTP round trips) after its end.
    pub disconnected_poll_max: Duration,
    /// Ping interval while connected (default 30 s).
    pub ping_interval: Duration,
    /// How long a ping may go unanswered, with no frame either (default 10 s).
    pub pong_timeout: Duration,
    /// Silence that, while one of our prompts runs, triggers reconciliation
    /// and a fresh socket (default 30 s; `None` disables the watchdog).
    pub deaf_timeout: Option<Duration>,
    /// At most one progress event per (prompt, node) per interval (16 ms).
    pub progress_interval: Duration,
    /// At most one preview per (prompt, node) per interval (50 ms).
    pub preview_interval: Duration,
    /// Finished executions kept (default 100).
    pub history_capacity: usize,
    /// In-flight records of other clients' prompts kept (default 256).
    pub max_foreign_prompts: usize,
    /// Outputs one record keeps inline, estimated bytes (default
    /// [`crate::ExecutionRecord::MAX_OUTPUT_BYTES`], 16 MiB); outputs past
    /// it are still delivered as events and counted in the record's
    /// `outputs_omitted`.
    pub max_record_output_bytes: usize,
    /// Delay before re-checking a prompt found in neither queue nor
    /// history (the terminal race, default 1 s).
    pub lost_recheck: Duration,
    /// Silence after which, while a prompt of ours is queued or running,
    /// the queue is asked whether it is still there (default 3 s; `None`
    /// disables the probe). A prompt gone from the queue ended unheard: it
    /// is settled from history and the socket is replaced.
    pub silence_probe: Option<Duration>,
    /// How long a submission whose answer was lost is looked for before it
    /// counts as never received by the server (default 3 s, and at least
    /// two checks).
    pub confirm_window: Duration,
    /// Failed HTTP checks of one prompt in a row before it ends with the
    /// outcome its socket reported, or as `Lost` (default 10).
    pub max_check_failures: u8,
    /// The flags sent as the first message of every socket.
    pub feature_flags: Map<String, Value>,
}

impl Default for SessionConfig {
    fn default() -> Self {
        let mut feature_flags = Map::new();
        feature_flags.insert("supports_preview_metadata".into(), Value::Bool(true));
        SessionConfig {
            client_id: None,
            backoff: BackoffConfig::default(),
            seed: 0x00C0_FFEE,
            stable_after: Duration::from_secs(10),
            polling_after_failures: 5,
            poll_interval: Duration::from_secs(2),
            disconnected_poll: Duration::from_secs(1),
            disconnected_poll_max: Duration::from_secs(5),
            ping_interval: Duration::from_secs(30),
            pong_timeout: Duration::from_secs(10),
            deaf_timeout: Some(Duration::from_secs(30)),
            progress_interval: Duration::from_millis(16),
            preview_interval: Duration::from_millis(50),
            history_capacity: 100,
            max_foreign_prompts: 256,
            max_record_output_bytes: ExecutionRecord::MAX_OUTPUT_BYTES,
            lost_recheck: Duration::from_secs(1),
            silence_probe: Some(Duration::from_secs(3)),
            confirm_window: Duration::from_secs(3),
            max_check_failures: 10,
            feature_flags,
        }
    }
}
