//! The one place the schedules touch the client's journal, for the
//! `KilledAndResumed` kind: a client killed mid-run and started again from
//! its journal must still end every prompt its predecessor had the server
//! enqueue.
//!
//! The client keeps its journal at the path the schedule gives, and the
//! restarted client resumes from it with the same configuration.

use std::path::Path;

use comfywire_client::{Client, ClientConfig};

/// Whether the client under test keeps a journal.
pub const AVAILABLE: bool = true;

/// `config` with its journal at `path`.
pub fn with_journal(config: ClientConfig, path: &Path) -> ClientConfig {
    config.journal(path)
}

/// A client started again from the journal in `config` after its process
/// was killed; `Err` says why it could not be.
pub async fn resume(config: ClientConfig) -> Result<Client, String> {
    // The dead process's last references go with its runtime's threads,
    // which shut down in the background: its lock may outlive it briefly.
    let give_up = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match Client::connect(config.clone()).await {
            Ok(client) => return Ok(client),
            Err(e) if e.to_string().contains("in use") && tokio::time::Instant::now() < give_up => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}
