//! The one tokio runtime every client of a process shares: bindings never
//! start their own, and no callback ever runs on its workers.

use std::sync::OnceLock;

use tokio::runtime::Runtime;

static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();

/// The process-wide runtime (two workers, started on first use).
pub fn runtime() -> Result<&'static Runtime, crate::HostError> {
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
        .map_err(|e| {
            crate::HostError::new(
                crate::ErrorCode::Config,
                format!("cannot start the runtime: {e}"),
            )
        })
}

/// True on one of the runtime's own threads, where blocking calls would
/// stall the client they wait for.
pub fn on_runtime_thread() -> bool {
    tokio::runtime::Handle::try_current().is_ok()
}

/// Runs one call of the async API to the end on the shared runtime, for
/// front ends that block (C, blocking wrappers). Refuses to run on a
/// runtime thread, where waiting would stall the very client it waits for.
pub fn block_on<T>(
    future: impl std::future::Future<Output = Result<T, crate::HostError>>,
) -> Result<T, crate::HostError> {
    if on_runtime_thread() {
        return Err(crate::HostError::new(
            crate::ErrorCode::InvalidArgument,
            "a blocking comfywire call was made from an async context; use the async API there",
        ));
    }
    runtime()?.block_on(future)
}
