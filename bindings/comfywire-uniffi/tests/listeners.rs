//! The Rust side of the bindings against the mock, without a foreign
//! runtime: listener failures are contained and reported, a released
//! `Subscription` unregisters, async methods work from any executor, and
//! errors keep their host code; `attach` follows another client's prompt
//! and a journal resumes a prompt its last client left unfinished.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use comfywire_mock::{MockConfig, MockServer, TraceSource};
use comfywire_uniffi::{
    Client, ClientOptions, ComfyError, EventListener, HostEvent, JobOptions, ListenerError,
};

fn mock() -> (tokio::runtime::Runtime, MockServer) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let server = rt
        .block_on(MockServer::start_with(MockConfig {
            port: 0,
            traces: TraceSource::Embedded,
            speed: 0.0,
            default_scenario: "success_single".into(),
        }))
        .unwrap();
    (rt, server)
}

fn options(server: &MockServer) -> ClientOptions {
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

#[derive(Default)]
struct Recorder {
    kinds: Mutex<Vec<String>>,
    refuse: Option<&'static str>,
}

impl EventListener for Recorder {
    fn on_event(&self, event: HostEvent) -> Result<(), ListenerError> {
        let name = event.kind.name();
        self.kinds.lock().unwrap().push(name.to_owned());
        match self.refuse {
            Some(kind) if kind == name => Err(ListenerError::Failed {
                reason: format!("refused {kind}"),
            }),
            _ => Ok(()),
        }
    }
}

/// A plain executor, unrelated to the host runtime, like a foreign one.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(future)
}

#[test]
fn failing_listener_is_reported_and_released_subscription_unregisters() {
    let (_rt, server) = mock();
    let client = Client::new(options(&server)).unwrap();
    // Connected first: a prompt that finishes before the socket is up is
    // not settled by the client today (see the report of issue 7).
    block_on(client.wait_connected(10_000)).unwrap();
    let refusing = Arc::new(Recorder {
        refuse: Some("finished"),
        ..Recorder::default()
    });
    let reports = Arc::new(Recorder::default());
    let dropped = Arc::new(Recorder::default());
    let _a = client
        .subscribe(vec!["finished".into()], None, refusing.clone())
        .unwrap();
    let _b = client
        .subscribe(vec!["callback_error".into()], None, reports.clone())
        .unwrap();
    drop(client.subscribe(vec![], None, dropped.clone()).unwrap());
    assert_eq!(client.stats().callbacks, 2);

    let workflow = server.sample_workflow().to_string();
    let outcome = block_on(client.run(workflow, JobOptions::default())).unwrap();
    assert_eq!(outcome.status.name(), "succeeded");
    for _ in 0..250 {
        if !reports.kinds.lock().unwrap().is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(*reports.kinds.lock().unwrap(), ["callback_error"]);
    assert!(dropped.kinds.lock().unwrap().is_empty());
    client.shutdown();
}

#[test]
fn errors_keep_their_host_code() {
    let (_rt, server) = mock();
    assert!(matches!(
        Client::from_settings_json("[".into()),
        Err(ComfyError::InvalidArgument { .. })
    ));
    let client = Client::new(options(&server)).unwrap();
    let bad = block_on(client.submit("{".into(), JobOptions::default()));
    assert!(matches!(bad, Err(ComfyError::InvalidArgument { .. })));
    assert!(matches!(
        client.subscribe(vec!["nope".into()], None, Arc::new(Recorder::default())),
        Err(ComfyError::InvalidArgument { .. })
    ));
    client.shutdown();
}

#[test]
fn attach_follows_another_clients_prompt_and_a_journal_resumes() {
    let (_rt, server) = mock();
    let workflow = server.sample_workflow().to_string();
    let connected = |options: ClientOptions| {
        let client = Client::new(options).unwrap();
        block_on(client.wait_connected(10_000)).unwrap();
        client
    };
    let history_outputs = |client: &Client, id: &str| {
        let entry = block_on(client.server_history(id.to_owned())).unwrap();
        entry.unwrap()["outputs"].clone()
    };
    // Attach: another client id's prompt, settled from the server.
    let other = connected(options(&server));
    let client = connected(options(&server));
    let theirs = block_on(other.submit(workflow.clone(), JobOptions::default()))
        .unwrap()
        .prompt_id;
    block_on(client.attach(theirs.clone())).unwrap();
    let outcome = block_on(client.wait(theirs.clone(), JobOptions::default())).unwrap();
    assert_eq!(outcome.status.name(), "succeeded");
    assert_eq!(outcome.outputs, history_outputs(&client, &theirs));
    assert!(client.resumed().is_empty());

    // The journal: a client shut down while its prompt waits (the mock
    // slowed down meanwhile) is resumed by the next one.
    let journal = std::env::temp_dir()
        .join(format!("comfywire-uniffi-journal-{theirs}"))
        .join("journal.jsonl");
    let journaled = ClientOptions {
        journal_path: Some(journal.to_string_lossy().into_owned()),
        ..options(&server)
    };
    server.set_speed(0.1);
    let first = connected(journaled.clone());
    assert!(matches!(
        Client::new(journaled.clone()),
        Err(ComfyError::Config { .. })
    ));
    let mine = block_on(first.submit(workflow, JobOptions::default()))
        .unwrap()
        .prompt_id;
    let first_id = first.client_id();
    first.shutdown();
    drop(first);
    server.set_speed(0.0);
    let second = connected(journaled.clone());
    assert_eq!(second.client_id(), first_id);
    assert_eq!(second.resumed(), vec![mine.clone()]);
    let outcome = block_on(second.wait(mine.clone(), JobOptions::default())).unwrap();
    assert_eq!(outcome.status.name(), "succeeded");
    assert_eq!(outcome.outputs, history_outputs(&second, &mine));
    second.shutdown();
    drop(second);
    let third = connected(journaled);
    assert!(third.resumed().is_empty());
    for c in [other, client, third] {
        c.shutdown();
    }
}
