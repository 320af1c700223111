//! A client "process": a client and everything it spawns (driver, socket,
//! HTTP connections, the caller's own tasks) in a tokio runtime of its own,
//! so a schedule can kill it the way a crash would: every task stops at
//! once, sockets close without a close frame, nothing is flushed.

use std::future::Future;

use tokio::runtime::{Builder, Runtime};
use tokio::task::JoinHandle;

/// A runtime standing in for a client process.
#[derive(Debug)]
pub struct Process {
    runtime: Option<Runtime>,
}

impl Process {
    /// Starts an empty process (one worker thread).
    pub fn start() -> std::io::Result<Process> {
        let runtime = Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("faults-process")
            .enable_all()
            .build()?;
        Ok(Process {
            runtime: Some(runtime),
        })
    }

    /// Runs `task` inside the process; a kill ends it (its handle then
    /// answers a cancelled `JoinError`). `None` once killed.
    pub fn spawn<F>(&self, task: F) -> Option<JoinHandle<F::Output>>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.runtime.as_ref().map(|r| r.spawn(task))
    }

    /// Kills the process: every task is dropped where it stands.
    pub fn kill(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            // Allowed inside another runtime, unlike dropping it.
            runtime.shutdown_background();
        }
    }

    /// True once killed.
    pub fn killed(&self) -> bool {
        self.runtime.is_none()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}
