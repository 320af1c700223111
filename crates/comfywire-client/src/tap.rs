//! The raw-frame tap: an opt-in, bounded copy of every frame the driver
//! reads or sends, with the socket openings and closings between them, for
//! recorders and debugging tools (`comfywire record` writes it as a trace).
//!
//! A client has a tap only when [`ClientConfig::frame_tap_capacity`] is not
//! zero; without one the driver's frame path does no extra work (one
//! branch on an empty `Option`). The tap is a queue of at most that many
//! [`TapEvent`]s: when it is full, new events are dropped and counted
//! ([`FrameTap::dropped`]), so a tap nobody reads never grows past its
//! capacity. Dropping the [`FrameTap`] stops the copying.
//!
//! [`ClientConfig::frame_tap_capacity`]: crate::ClientConfig::frame_tap_capacity

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use comfywire_proto::Frame;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

/// One thing the driver saw on a socket, in the order it saw them.
#[derive(Debug, Clone, PartialEq)]
pub struct TapEvent {
    /// When the driver read it (the clock reading it handed the protocol
    /// core with it; frames read in one batch share it) or did it.
    pub at: Instant,
    /// Which socket: 1 for the client's first connection, one more for
    /// each later one.
    pub conn: u32,
    /// What happened.
    pub kind: TapEventKind,
}

/// What a [`TapEvent`] records.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum TapEventKind {
    /// Socket `conn` finished opening; every frame until its
    /// [`TapEventKind::Closed`] came on it.
    Opened {
        /// The socket URL as requested, without credentials (no user,
        /// password or `token` query parameter; see
        /// [`crate::without_credentials`]).
        url: String,
        /// The `clientId` in that URL, if any.
        client_id: Option<String>,
    },
    /// A text or binary frame from the server, byte for byte (text frames
    /// are valid UTF-8: the socket checked them).
    Received(Frame),
    /// A frame the client sent (the `feature_flags` message after each
    /// connect).
    Sent(Frame),
    /// Socket `conn` is gone.
    Closed {
        /// Who ended it.
        by: ClosedBy,
        /// The close code, when a close frame carried one.
        code: Option<u16>,
    },
}

/// Who ended a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClosedBy {
    /// The client closed it (close, pause, a dead heartbeat, a reconnect
    /// after a network change).
    Client,
    /// The server sent a close frame.
    Server,
    /// The socket failed or ended without a close frame.
    Error,
}

impl ClosedBy {
    /// `client`, `server` or `error`: the `by` of a trace's `ws_close`.
    pub fn as_str(self) -> &'static str {
        match self {
            ClosedBy::Client => "client",
            ClosedBy::Server => "server",
            ClosedBy::Error => "error",
        }
    }
}

impl std::fmt::Display for ClosedBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The reading end of a client's raw-frame tap (see
/// [`crate::Client::frame_tap`]). Events come in the order the driver saw
/// them; when the queue is full, new events are dropped and counted.
#[derive(Debug)]
pub struct FrameTap {
    rx: mpsc::Receiver<TapEvent>,
    dropped: Arc<AtomicU64>,
}

impl FrameTap {
    /// The next event; `None` once the client is closed (its driver has
    /// ended) and every queued event was read.
    pub async fn recv(&mut self) -> Option<TapEvent> {
        self.rx.recv().await
    }

    /// An event if one is waiting.
    pub fn try_recv(&mut self) -> Option<TapEvent> {
        self.rx.try_recv().ok()
    }

    /// Events waiting.
    pub fn pending(&self) -> usize {
        self.rx.len()
    }

    /// Events dropped so far because the queue was full. Any drop leaves
    /// a gap: a recording with drops is incomplete.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// The driver's end of the tap.
#[derive(Debug)]
pub(crate) struct TapSender {
    tx: mpsc::Sender<TapEvent>,
    dropped: Arc<AtomicU64>,
}

impl TapSender {
    /// Queues an event, or counts it when the queue is full. False when
    /// the [`FrameTap`] is gone: the driver then drops the tap.
    pub(crate) fn offer(&self, event: TapEvent) -> bool {
        match self.tx.try_send(event) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(TrySendError::Closed(_)) => false,
        }
    }
}

/// A tap holding at most `capacity` events (at least one).
pub(crate) fn channel(capacity: usize) -> (TapSender, FrameTap) {
    let capacity = capacity.clamp(1, tokio::sync::Semaphore::MAX_PERMITS);
    let (tx, rx) = mpsc::channel(capacity);
    let dropped = Arc::new(AtomicU64::new(0));
    (
        TapSender {
            tx,
            dropped: dropped.clone(),
        },
        FrameTap { rx, dropped },
    )
}
