//! Shared by the driver tests: a mock server on 127.0.0.1:0 and a client
//! with timers short enough for tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;
use std::time::Duration;

use comfywire_client::proto::BackoffConfig;
use comfywire_client::{Client, ClientConfig, Event, Subscription};
use comfywire_mock::{MockConfig, MockServer, TraceSource};

pub async fn mock(speed: f64) -> MockServer {
    MockServer::start_with(MockConfig {
        port: 0,
        traces: TraceSource::Embedded,
        speed,
        default_scenario: "success_single".into(),
    })
    .await
    .unwrap()
}

pub fn config(url: &str) -> ClientConfig {
    let mut c = ClientConfig::new(url);
    c.session.backoff = BackoffConfig {
        initial: Duration::from_millis(50),
        multiplier: 2.0,
        max: Duration::from_millis(400),
        jitter: 0.0,
    };
    c.session.poll_interval = Duration::from_millis(100);
    c.session.lost_recheck = Duration::from_millis(100);
    c.request_timeout = Duration::from_secs(5);
    c.connect_timeout = Duration::from_secs(2);
    c
}

pub async fn client(server: &MockServer) -> Client {
    let c = Client::connect(config(&server.url())).await.unwrap();
    c.wait_connected(Duration::from_secs(5)).await.unwrap();
    c
}

/// Reads events until `done` says stop or 20 s pass.
pub async fn collect_until(
    sub: &mut Subscription,
    mut done: impl FnMut(&Event) -> bool,
) -> Vec<Event> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match tokio::time::timeout_at(deadline, sub.recv()).await {
            Ok(Some(e)) => {
                let stop = done(&e);
                out.push(e);
                if stop {
                    return out;
                }
            }
            Ok(None) => return out,
            Err(_) => panic!(
                "timed out; got {} events: {:?}",
                out.len(),
                out.iter().map(|e| e.kind()).collect::<Vec<_>>()
            ),
        }
    }
}

/// Every prompt in `events` has exactly one terminal event and nothing
/// after it.
pub fn assert_exactly_one_terminal(events: &[Event]) {
    let mut finished: HashMap<String, usize> = HashMap::new();
    for (i, e) in events.iter().enumerate() {
        if let Event::Finished(r) = e {
            assert!(
                finished.insert(r.prompt_id.clone(), i).is_none(),
                "two terminal events for {}",
                r.prompt_id
            );
        }
    }
    for (i, e) in events.iter().enumerate() {
        if let Some(p) = e.prompt_id() {
            if let Some(end) = finished.get(p) {
                assert!(
                    i <= *end,
                    "event {:?} after the terminal one of {p}",
                    e.kind()
                );
            }
        }
    }
}

/// The server's history entry of a prompt. The server writes it just after
/// the terminal message (protocol §6.3), so a read right after `Finished`
/// may find nothing yet: retry for up to 5 s.
pub async fn server_history(client: &Client, prompt_id: &str) -> serde_json::Value {
    for _ in 0..250 {
        if let Some(entry) = client.server_history(prompt_id).await.unwrap() {
            return entry;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no history entry for {prompt_id}");
}
