//! [`JobEvents`]: one prompt's own events, pulled one at a time.
//!
//! The host's job stream (`Jobs::job_stream`) does the work: it is
//! subscribed when made, its first read replays what the client's record
//! already says happened, and it ends after the prompt's `finished` event.
//! This object only maps its blocking pull and its close.

use std::time::Duration;

use comfywire_host::{EventStream, HostEvent};

use crate::error::ComfyError;

/// The events of one prompt from its submission to its `finished` event,
/// made by [`crate::Client::job_events`]. Nothing is missed however late it
/// is made: the first [`JobEvents::next_event`] replays what already
/// happened (queued, started, cached nodes, outputs, the end), then live
/// events follow. Releasing the object (Swift `deinit`, Kotlin `close()`)
/// releases its queue.
#[derive(uniffi::Object)]
pub struct JobEvents(EventStream);

impl JobEvents {
    pub(crate) fn new(stream: EventStream) -> JobEvents {
        JobEvents(stream)
    }
}

#[uniffi::export]
impl JobEvents {
    /// The prompt's next event, waiting up to `timeout_ms`: `None` (Kotlin
    /// `null`, Swift `nil`) when the time ran out. Throws `Closed` once the
    /// stream ended, for good: after its `finished` event was read, after
    /// [`JobEvents::shutdown`], or when the client shut down. Blocks the
    /// calling thread (call it from a background thread or
    /// `Dispatchers.IO`).
    pub fn next_event(&self, timeout_ms: u64) -> Result<Option<HostEvent>, ComfyError> {
        let event = self.0.next_event(Duration::from_millis(timeout_ms))?;
        Ok(event.map(|e| e.flat()))
    }

    /// Ends the stream now: a `next_event` waiting on another thread
    /// returns `Closed`, as does every later one. Idempotent. Not named
    /// `close`: Kotlin objects already have `close()` (AutoCloseable),
    /// which releases the object, and a wait in progress would hold it.
    pub fn shutdown(&self) {
        let closed = self.0.close();
        // `block_on` refuses only a runtime thread, where foreign code never
        // runs; a wait was told to end before this, and the queue goes
        // with the object anyway.
        let _ = comfywire_host::block_on(async {
            closed.await;
            Ok(())
        });
    }
}
