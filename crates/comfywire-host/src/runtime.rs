//! The one tokio runtime every client of a process shares: bindings never
//! start their own, and no callback ever runs on its workers.

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};

use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

use crate::{ErrorCode, HostError};

static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();

/// The process-wide runtime (two workers, started on first use).
pub fn runtime() -> Result<&'static Runtime, HostError> {
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("comfywire-rt")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| HostError::new(ErrorCode::Config, format!("cannot start the runtime: {e}")))
}

/// True on one of the runtime's own threads, where blocking calls would
/// stall the client they wait for.
pub fn on_runtime_thread() -> bool {
    tokio::runtime::Handle::try_current().is_ok()
}

/// The runtime, for a caller about to block on it: refused on a runtime
/// thread, where waiting would stall the very client it waits for. The one
/// check of every blocking front end ([`block_on`], Python's waits).
pub fn blocking_runtime() -> Result<&'static Runtime, HostError> {
    if on_runtime_thread() {
        return Err(HostError::new(
            ErrorCode::InvalidArgument,
            "a blocking comfywire call was made from an async context; use the async API there",
        ));
    }
    runtime()
}

/// Runs one call of the async API to the end on the shared runtime, for
/// front ends that block (C, blocking wrappers); refused on a runtime
/// thread (see [`blocking_runtime`]).
pub fn block_on<T>(future: impl Future<Output = Result<T, HostError>>) -> Result<T, HostError> {
    blocking_runtime()?.block_on(future)
}

/// Runs `work` on the shared runtime, for front ends whose own executor
/// polls the answer (uniffi's foreign futures): the work never runs on the
/// foreign executor, dropping the answer before it is ready aborts the work
/// (a cancelled caller leaves nothing running), and a panic in the work is
/// a `Panic` error, never an unwind into the caller.
pub fn spawn<T: Send + 'static>(
    work: impl Future<Output = Result<T, HostError>> + Send + 'static,
) -> Spawned<T> {
    Spawned(runtime().map(|rt| rt.spawn(work)))
}

/// The answer of [`spawn`]; aborts the work when dropped early.
#[must_use = "dropping it aborts the work"]
#[derive(Debug)]
pub struct Spawned<T>(Result<JoinHandle<Result<T, HostError>>, HostError>);

impl<T> Drop for Spawned<T> {
    fn drop(&mut self) {
        if let Ok(task) = &self.0 {
            task.abort();
        }
    }
}

impl<T> Future for Spawned<T> {
    type Output = Result<T, HostError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let task = match &mut self.0 {
            Ok(task) => task,
            Err(e) => return Poll::Ready(Err(e.clone())),
        };
        Pin::new(task).poll(cx).map(|joined| match joined {
            Ok(result) => result,
            Err(e) if e.is_panic() => Err(HostError::new(
                ErrorCode::Panic,
                "comfywire panicked while running this call",
            )),
            Err(_) => Err(HostError::new(ErrorCode::Closed, "the call was cancelled")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    /// A plain executor unrelated to the runtime, like a foreign one.
    fn foreign<F: Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap_or_else(|e| panic!("executor: {e}"))
            .block_on(future)
    }

    #[test]
    fn spawned_work_answers_aborts_when_dropped_and_turns_a_panic_into_an_error() {
        assert_eq!(foreign(spawn(async { Ok(7) })), Ok(7));
        let failed = foreign(spawn(async {
            panic!("boom");
            #[allow(unreachable_code)]
            Ok(())
        }));
        assert_eq!(failed.map_err(|e| e.code), Err(ErrorCode::Panic));
        // Dropped before it finished: the work never reaches its end.
        let finished = Arc::new(AtomicBool::new(false));
        let done = finished.clone();
        let work = spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            done.store(true, Ordering::SeqCst);
            Ok(())
        });
        foreign(async { tokio::time::timeout(Duration::from_millis(20), work).await })
            .expect_err("still running after 20 ms");
        std::thread::sleep(Duration::from_millis(400));
        assert!(!finished.load(Ordering::SeqCst), "aborted when dropped");
    }
}
