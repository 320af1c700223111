//! Runs the futures of async methods on the host's one runtime.
//!
//! uniffi polls an exported future from the foreign side's executor. The
//! work itself is spawned onto `comfywire_host::runtime()` — where the
//! client's driver, timers and HTTP already live — and only the join handle
//! is awaited, so no second tokio runtime is ever started (which uniffi's
//! `async_runtime = "tokio"` would do through async-compat). When the
//! foreign caller cancels (a Swift `Task` cancelled, a Kotlin coroutine
//! cancelled), uniffi drops the future and [`Spawned`] aborts the task, so
//! a cancelled `run` does not keep waiting in the background.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use comfywire_host::{ErrorCode, HostError};
use tokio::task::JoinHandle;

use crate::error::ComfyError;

/// A task on the host runtime, aborted when dropped before it finished.
pub(crate) struct Spawned<T>(JoinHandle<Result<T, HostError>>);

impl<T> Drop for Spawned<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T> Future for Spawned<T> {
    type Output = Result<T, ComfyError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map(|joined| match joined {
            Ok(result) => result.map_err(ComfyError::from),
            // A panic inside the task is caught by tokio; it must reach the
            // caller as an error with the host's panic code, never unwind
            // across the FFI.
            Err(e) if e.is_panic() => Err(ComfyError::new(
                ErrorCode::Panic,
                "comfywire panicked while running this call",
            )),
            Err(_) => Err(ComfyError::new(ErrorCode::Closed, "the call was cancelled")),
        })
    }
}

/// Spawns `work` on the host runtime.
pub(crate) async fn spawn<T, F>(work: F) -> Result<T, ComfyError>
where
    T: Send + 'static,
    F: Future<Output = Result<T, HostError>> + Send + 'static,
{
    let runtime = comfywire_host::runtime()?;
    Spawned(runtime.spawn(work)).await
}
