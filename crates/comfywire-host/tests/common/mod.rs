//! Shared by the host's tests: a mock ComfyUI on 127.0.0.1:0, on a runtime
//! of its own (the host's blocking calls must not run on it).
#![allow(dead_code, clippy::unwrap_used)]

use comfywire_mock::{MockConfig, MockServer, TraceSource};

/// A mock at `speed` times the recorded speed (0: as fast as it goes).
pub fn mock(speed: f64) -> (tokio::runtime::Runtime, MockServer) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let server = rt
        .block_on(MockServer::start_with(MockConfig {
            port: 0,
            traces: TraceSource::Embedded,
            speed,
            default_scenario: "success_single".into(),
        }))
        .unwrap();
    (rt, server)
}
