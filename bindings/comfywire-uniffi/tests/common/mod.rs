//! Shared by the crate's tests against the mock: a mock ComfyUI on
//! 127.0.0.1:0 on a runtime of its own, client options for it, and a plain
//! executor standing in for a foreign one. Each test file uses a part
//! (hence `dead_code`).
#![allow(dead_code, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use comfywire_mock::{MockConfig, MockServer, TraceSource};
use comfywire_uniffi::ClientOptions;

/// A mock playing without delays (`set_speed` slows it for a test that
/// acts while a prompt runs), on a runtime of its own: the client's
/// blocking calls must not run on it.
pub fn mock() -> (tokio::runtime::Runtime, MockServer) {
    let config = MockConfig {
        port: 0,
        traces: TraceSource::Embedded,
        speed: 0.0,
        default_scenario: "success_single".into(),
    };
    MockServer::start_on_own_runtime(config, 1).unwrap()
}

/// Options for a client of `server`, with a run timeout so a broken test
/// fails instead of hanging.
pub fn options(server: &MockServer) -> ClientOptions {
    ClientOptions {
        url: server.url(),
        client_id: None,
        token: None,
        headers: Default::default(),
        connect_timeout_ms: None,
        request_timeout_ms: None,
        run_timeout_ms: Some(20_000),
        stall_timeout_ms: None,
        queue_timeout_ms: None,
        journal_path: None,
    }
}

/// A plain executor, unrelated to the host runtime, like a foreign one.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(future)
}

/// True once `done` holds, checking until `limit` ran out.
pub fn eventually(limit: Duration, done: impl Fn() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    done()
}
