//! Shared by the host's tests: a mock ComfyUI on 127.0.0.1:0, on a runtime
//! of its own (the host's blocking calls must not run on it).
#![allow(dead_code, clippy::unwrap_used)]

use comfywire_mock::{MockConfig, MockServer, TraceSource};

/// A mock at `speed` times the recorded speed (0: as fast as it goes).
pub fn mock(speed: f64) -> (tokio::runtime::Runtime, MockServer) {
    let config = MockConfig {
        port: 0,
        traces: TraceSource::Embedded,
        speed,
        default_scenario: "success_single".into(),
    };
    MockServer::start_on_own_runtime(config, 1).unwrap()
}

/// A host client of `server`, connected.
pub fn client(server: &comfywire_mock::MockServer) -> comfywire_host::HostClient {
    let host = comfywire_host::HostClient::new(&comfywire_host::Settings {
        url: Some(server.url()),
        ..comfywire_host::Settings::default()
    })
    .unwrap();
    comfywire_host::block_on(
        host.jobs()
            .wait_connected(std::time::Duration::from_secs(5)),
    )
    .unwrap();
    host
}

/// Polls (bounded: 20 s) until `done`.
pub fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}
