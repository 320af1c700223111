//! The Rust side of the bindings against the mock, without a foreign
//! runtime: listener failures are contained and reported, a released
//! `Subscription` unregisters, async methods work from any executor, and
//! errors keep their host code; `attach` follows another client's prompt
//! and a journal resumes a prompt its last client left unfinished;
//! listeners that call back (shutdown, release the client, cancel, submit,
//! run) never deadlock, and `shutdown` ends a listener-to-client cycle.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use comfywire_mock::MockServer;
use comfywire_uniffi::{
    Client, ClientOptions, ComfyError, EventListener, HostEvent, JobOptions, ListenerError,
};
use common::{block_on, eventually, mock, options};

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
    // Called before the release maybe (a `status` the server sent on
    // connect), never after it: the run's many events must not reach it.
    let before_release = dropped.kinds.lock().unwrap().clone();
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
    assert_eq!(*dropped.kinds.lock().unwrap(), before_release);
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

// ---- listeners that call back ----

/// A call back into the client that must return at once takes at most this.
const AT_ONCE: Duration = Duration::from_secs(2);

/// A connected client that makes every progress step and preview an event.
fn unthrottled(server: &MockServer) -> Arc<Client> {
    let settings = format!(
        r#"{{"url": "{}", "progress_interval_ms": 0, "preview_interval_ms": 0}}"#,
        server.url()
    );
    let client = Client::from_settings_json(settings).unwrap();
    block_on(client.wait_connected(10_000)).unwrap();
    client
}

/// Waits (boundedly) until `client` read `more` frames past `base`: the
/// socket kept delivering while a listener held the dispatcher.
fn frames_past(client: &Client, base: u64, more: u64) -> bool {
    eventually(Duration::from_secs(10), || {
        client.stats().frames >= base + more
    })
}

/// Runs `act` with the client it holds on its first event (taking it out,
/// so that `act` may drop the last reference); counts calls and its drop.
struct Holder {
    client: Mutex<Option<Arc<Client>>>,
    act: fn(Arc<Client>, u64) -> Duration,
    base: u64,
    calls: Arc<AtomicUsize>,
    dropped: Arc<AtomicUsize>,
    took: Mutex<Option<std::sync::mpsc::Sender<Duration>>>,
}

impl EventListener for Holder {
    fn on_event(&self, _event: HostEvent) -> Result<(), ListenerError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let taken = self.client.lock().unwrap().take();
        if let Some(client) = taken {
            let took = (self.act)(client, self.base);
            if let Some(tx) = self.took.lock().unwrap().take() {
                let _ = tx.send(took);
            }
        }
        Ok(())
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        self.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

/// A listener that does `act` with its client on its first event, under a
/// firehose; answers its counters and how long `act` took.
fn listener_acts(
    keep: bool,
    act: fn(Arc<Client>, u64) -> Duration,
) -> (Option<Arc<Client>>, usize, usize, Duration) {
    let (rt, server) = mock();
    let client = unthrottled(&server);
    let (calls, dropped) = (Arc::<AtomicUsize>::default(), Arc::<AtomicUsize>::default());
    let (tx, took) = std::sync::mpsc::channel();
    let holder = Arc::new(Holder {
        client: Mutex::new(Some(client.clone())),
        act,
        base: client.stats().frames,
        calls: calls.clone(),
        dropped: dropped.clone(),
        took: Mutex::new(Some(tx)),
    });
    let _subscription = client.subscribe(vec![], None, holder).unwrap();
    let hose = {
        let _on = rt.enter();
        server.firehose(&client.client_id(), 100_000, "long_run")
    };
    let kept = keep.then_some(client);
    let took = took.recv_timeout(Duration::from_secs(30)).unwrap();
    assert!(eventually(Duration::from_secs(5), || dropped
        .load(Ordering::SeqCst)
        == 1));
    let sent = rt.block_on(hose).unwrap();
    assert!(
        sent < 100_000,
        "the socket closed mid-firehose ({sent} sent)"
    );
    (
        kept,
        calls.load(Ordering::SeqCst),
        dropped.load(Ordering::SeqCst),
        took,
    )
}

#[test]
fn shutdown_from_a_listener_under_a_firehose() {
    let (client, calls, dropped, took) = listener_acts(true, |client, base| {
        assert!(
            frames_past(&client, base, 2000),
            "no load behind the listener"
        );
        let started = Instant::now();
        client.shutdown();
        started.elapsed()
    });
    assert!(took < AT_ONCE, "shutdown from a listener took {took:?}");
    assert_eq!((calls, dropped), (1, 1));
    let client = client.unwrap();
    assert_eq!(client.status().state, "closed");
    assert!(matches!(
        block_on(client.queue()),
        Err(ComfyError::Closed { .. })
    ));
    client.shutdown();
}

#[test]
fn the_last_reference_released_in_a_listener_under_a_firehose() {
    let (_, calls, dropped, took) = listener_acts(false, |client, base| {
        assert!(
            frames_past(&client, base, 2000),
            "no load behind the listener"
        );
        let started = Instant::now();
        drop(client);
        started.elapsed()
    });
    assert!(
        took < AT_ONCE,
        "releasing the client in a listener took {took:?}"
    );
    assert_eq!((calls, dropped), (1, 1));
}

/// Holds its client and its own subscription, like an app's view model.
struct Owner {
    client: Arc<Client>,
    subscription: Mutex<Option<Arc<comfywire_uniffi::Subscription>>>,
    events: AtomicUsize,
    dropped: Arc<AtomicUsize>,
}

impl EventListener for Owner {
    fn on_event(&self, _event: HostEvent) -> Result<(), ListenerError> {
        self.events.fetch_add(1, Ordering::SeqCst);
        let _ = self.client.client_id();
        Ok(())
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_listener_holding_its_client_is_released_by_shutdown() {
    let (_rt, server) = mock();
    let client = unthrottled(&server);
    let dropped = Arc::new(AtomicUsize::new(0));
    let owner = Arc::new(Owner {
        client: client.clone(),
        subscription: Mutex::new(None),
        events: AtomicUsize::new(0),
        dropped: dropped.clone(),
    });
    let subscription = client.subscribe(vec![], None, owner.clone()).unwrap();
    *owner.subscription.lock().unwrap() = Some(subscription);
    let workflow = server.sample_workflow().to_string();
    block_on(client.run(workflow, JobOptions::default())).unwrap();
    // Events reach the listener on the dispatcher thread, after the run's
    // answer may already have come back here.
    let deadline = Instant::now() + Duration::from_secs(10);
    while owner.events.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the listener heard nothing");
        std::thread::sleep(Duration::from_millis(10));
    }
    let weak = Arc::downgrade(&client);
    drop((owner, client));
    // The cycle: client -> listener -> client. Released references alone
    // do not end it...
    let client = weak.upgrade().expect("kept alive by its own listener");
    assert_eq!(dropped.load(Ordering::SeqCst), 0);
    // ...shutdown does: every listener is let go, and with it the client.
    client.shutdown();
    assert_eq!(dropped.load(Ordering::SeqCst), 1);
    drop(client);
    assert!(weak.upgrade().is_none(), "the client was released");
}

/// What [`Reenter`] saw: cancelled, how long the cancel took, the prompt
/// it submitted, how its run ended.
type Reentered = (bool, Duration, String, String);

/// Cancels its own subscription on its first call, then submits and runs
/// a workflow from inside that call.
struct Reenter {
    client: Arc<Client>,
    workflow: String,
    subscription: Mutex<Option<Arc<comfywire_uniffi::Subscription>>>,
    calls: AtomicUsize,
    results: Mutex<Option<std::sync::mpsc::Sender<Reentered>>>,
}

impl EventListener for Reenter {
    fn on_event(&self, event: HostEvent) -> Result<(), ListenerError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let Some(results) = self.results.lock().unwrap().take() else {
            return Ok(());
        };
        assert_eq!(event.kind.name(), "finished");
        let subscription = self.subscription.lock().unwrap().take().unwrap();
        let started = Instant::now();
        let cancelled = subscription.cancel();
        let took = started.elapsed();
        let submitted = block_on(
            self.client
                .submit(self.workflow.clone(), JobOptions::default()),
        )
        .map(|s| s.prompt_id)
        .unwrap_or_default();
        let ran = block_on(
            self.client
                .run(self.workflow.clone(), JobOptions::default()),
        )
        .map(|o| o.status.name().to_owned())
        .unwrap_or_else(|e| e.to_string());
        let _ = results.send((cancelled, took, submitted, ran));
        Ok(())
    }
}

#[test]
fn cancel_submit_and_run_from_a_listener() {
    let (_rt, server) = mock();
    let client = unthrottled(&server);
    let workflow = server.sample_workflow().to_string();
    let (tx, results) = std::sync::mpsc::channel();
    let listener = Arc::new(Reenter {
        client: client.clone(),
        workflow: workflow.clone(),
        subscription: Mutex::new(None),
        calls: AtomicUsize::new(0),
        results: Mutex::new(Some(tx)),
    });
    let subscription = client
        .subscribe(vec!["finished".into()], None, listener.clone())
        .unwrap();
    *listener.subscription.lock().unwrap() = Some(subscription);
    block_on(client.run(workflow, JobOptions::default())).unwrap();
    let (cancelled, took, submitted, ran) = results.recv_timeout(Duration::from_secs(40)).unwrap();
    assert!(cancelled);
    assert!(took < AT_ONCE, "cancelling itself took {took:?}");
    assert_eq!(ran, "succeeded");
    let outcome = block_on(client.wait(submitted, JobOptions::default())).unwrap();
    assert_eq!(outcome.status.name(), "succeeded");
    assert_eq!(
        listener.calls.load(Ordering::SeqCst),
        1,
        "called after cancel"
    );
    client.shutdown();
}
