//! A mock ComfyUI server (0.3.64 wire behaviour) that replays real recorded
//! sessions, with faults a client test can inject.
//!
//! HTTP and the `/ws` WebSocket share one port, like the real server.
//! Submitted graphs are matched to a recorded prompt and that prompt's frames
//! are replayed with the new prompt id; see [`MockServer`].

mod binary;
mod fault;
mod ids;
mod multipart;
mod playback;
mod png;
mod pyjson;
mod rewrite;
mod routes;
mod scenario;
mod server;
mod state;
mod stats;
mod ws;

pub use fault::Fault;
pub use server::{MockConfig, MockServer, TraceSource};
pub use stats::MockStats;

use state::{Outgoing, Shared};
use std::sync::Arc;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Sends `frames` frames from `scenario`'s first prompt to `client_id`'s socket.
pub(crate) fn firehose(
    shared: &Arc<Shared>,
    client_id: &str,
    frames: u64,
    scenario: &str,
) -> JoinHandle<u64> {
    let prompt = shared
        .library
        .get(scenario)
        .or_else(|| shared.library.get("long_run"))
        .and_then(|s| s.prompts.first())
        .cloned()
        .map(Arc::new);
    let target = {
        let inner = shared.lock();
        inner
            .target(Some(client_id))
            .and_then(|(id, _)| inner.sockets.get(&id).map(|s| s.tx.clone()))
    };
    tokio::spawn(async move {
        let (Some(prompt), Some(tx)) = (prompt, target) else {
            return 0;
        };
        let (done, finished) = oneshot::channel();
        if tx
            .send(Outgoing::Firehose {
                prompt,
                frames,
                done,
            })
            .is_err()
        {
            return 0;
        }
        finished.await.unwrap_or(0)
    })
}
