//! Callbacks that call back: closing, dropping the last reference,
//! unsubscribing, submitting and running from inside a callback never
//! deadlock, also while a firehose keeps the dispatcher's backlog full; a
//! close from a callback returns at once and completes after it; no call
//! starts once an unsubscribe from another thread returned.
#![allow(clippy::unwrap_used)]

mod common;

use common::mock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use comfywire_host::event::Phase;
use comfywire_host::{
    ClientConfig, ErrorCode, EventCallback, HostClient, HostEvent, JobOptions, PlainContext,
    block_on,
};
use comfywire_mock::MockServer;

/// What a callback may take at most for a call back into the client that
/// must return at once (generous for a loaded CI machine).
const AT_ONCE: Duration = Duration::from_secs(2);

fn within(secs: u64) -> JobOptions {
    JobOptions {
        timeout: Some(Duration::from_secs(secs)),
        ..JobOptions::default()
    }
}

/// A connected client that turns every progress step and preview into an
/// event, so a firehose gives the dispatcher more than it can take.
fn unthrottled(server: &MockServer) -> Arc<HostClient> {
    let mut config = ClientConfig::new(server.url());
    config.session.progress_interval = Duration::ZERO;
    config.session.preview_interval = Duration::ZERO;
    let host = HostClient::from_config(config, Arc::new(PlainContext)).unwrap();
    block_on(host.jobs().wait_connected(Duration::from_secs(5))).unwrap();
    Arc::new(host)
}

/// Starts sending `frames` frames to the client's socket (as fast as it
/// takes them) without waiting for the end.
fn firehose(
    rt: &tokio::runtime::Runtime,
    server: &MockServer,
    host: &HostClient,
    frames: u64,
) -> tokio::task::JoinHandle<u64> {
    let _on = rt.enter();
    server.firehose(&host.client_id(), frames, "long_run")
}

/// Waits (boundedly, in the calling thread) until `host` has read `frames`
/// more frames than `base`: the socket kept delivering while the
/// dispatcher was busy, so the backlog is full.
fn frames_past(host: &HostClient, base: u64, frames: u64) -> bool {
    eventually(Duration::from_secs(30), || {
        host.stats().frames >= base + frames
    })
}

/// Waits up to `limit` for `done()`.
fn eventually(limit: Duration, done: impl Fn() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    done()
}

/// Counts its calls and its drop; `act` runs on the first call only.
struct Once<F: Fn() + Send + Sync> {
    act: F,
    calls: Arc<AtomicUsize>,
    dropped: Arc<AtomicUsize>,
}

impl<F: Fn() + Send + Sync> EventCallback for Once<F> {
    fn on_event(&self, _event: &HostEvent) -> Result<(), String> {
        if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
            (self.act)();
        }
        Ok(())
    }
}

impl<F: Fn() + Send + Sync> Drop for Once<F> {
    fn drop(&mut self) {
        self.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

fn counters() -> (Arc<AtomicUsize>, Arc<AtomicUsize>) {
    (Arc::default(), Arc::default())
}

#[test]
fn close_from_a_callback_returns_at_once_and_completes_after_it() {
    let (rt, server) = mock(0.0);
    let host = unthrottled(&server);
    let (calls, dropped) = counters();
    let (took_tx, took) = mpsc::channel();
    let inner = host.clone();
    let base = host.stats().frames;
    let callback = Arc::new(Once {
        act: move || {
            // The backlog fills behind this call before it closes.
            let loaded = frames_past(&inner, base, 2000);
            let started = Instant::now();
            inner.close();
            let _ = took_tx.send((loaded, started.elapsed(), inner.is_closed()));
        },
        calls: calls.clone(),
        dropped: dropped.clone(),
    });
    let _handle = host.subscribe(None, None, callback).unwrap();
    let hose = firehose(&rt, &server, &host, 100_000);
    let (loaded, elapsed, closed) = took.recv_timeout(Duration::from_secs(60)).unwrap();
    assert!(loaded, "the firehose never got ahead of the callback");
    assert!(elapsed < AT_ONCE, "close from a callback took {elapsed:?}");
    assert!(closed, "closed as seen from inside the callback");
    // Completed after the callback returned: the callback released once,
    // never called again, the client closed for every call.
    assert!(eventually(Duration::from_secs(5), || dropped
        .load(Ordering::SeqCst)
        == 1));
    let (done_tx, done) = mpsc::channel();
    let closer = host.clone();
    std::thread::spawn(move || {
        closer.close();
        let _ = done_tx.send(());
    });
    done.recv_timeout(Duration::from_secs(10))
        .expect("a second close after a close from a callback returns");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(host.status().state, "closed");
    let refused = block_on(host.jobs().submit(server.sample_workflow(), within(5)));
    assert_eq!(refused.unwrap_err().code, ErrorCode::Closed);
    let sent = rt.block_on(hose).unwrap();
    assert!(
        sent < 100_000,
        "the socket closed mid-firehose ({sent} sent)"
    );
}

#[test]
fn the_last_reference_dropped_in_a_callback_under_a_firehose() {
    let (rt, server) = mock(0.0);
    let host = unthrottled(&server);
    let (calls, dropped) = counters();
    let held = Arc::new(Mutex::new(Some(host.clone())));
    let (took_tx, took) = mpsc::channel();
    let base = host.stats().frames;
    let inner = held.clone();
    let callback = Arc::new(Once {
        act: move || {
            let Some(host) = inner.lock().unwrap().take() else {
                return;
            };
            let loaded = frames_past(&host, base, 2000);
            let started = Instant::now();
            // The only reference: the client is dropped (and closed) here,
            // on its own dispatcher thread.
            drop(host);
            let _ = took_tx.send((loaded, started.elapsed()));
        },
        calls: calls.clone(),
        dropped: dropped.clone(),
    });
    let handle = host.subscribe(None, None, callback).unwrap();
    let hose = firehose(&rt, &server, &host, 100_000);
    drop(host);
    let (loaded, elapsed) = took.recv_timeout(Duration::from_secs(60)).unwrap();
    assert!(loaded, "the firehose never got ahead of the callback");
    assert!(elapsed < AT_ONCE, "dropping the client took {elapsed:?}");
    assert!(eventually(Duration::from_secs(5), || dropped
        .load(Ordering::SeqCst)
        == 1));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(!handle.cancel(), "the registry went with the client");
    let sent = rt.block_on(hose).unwrap();
    assert!(
        sent < 100_000,
        "the socket closed mid-firehose ({sent} sent)"
    );
}

/// What a [`Busy`] callback shows of its calls.
#[derive(Default)]
struct Span {
    inside: AtomicBool,
    calls: AtomicUsize,
    dropped: AtomicUsize,
}

/// Marks the span of each call, and holds its first call open for a while
/// so that an unsubscribe arrives in the middle of it.
struct Busy {
    span: Arc<Span>,
    entered: Mutex<Option<mpsc::Sender<()>>>,
}

impl EventCallback for Busy {
    fn on_event(&self, _event: &HostEvent) -> Result<(), String> {
        self.span.inside.store(true, Ordering::SeqCst);
        self.span.calls.fetch_add(1, Ordering::SeqCst);
        if let Some(entered) = self.entered.lock().unwrap().take() {
            let _ = entered.send(());
            // Not synchronisation: a call that lasts, so that an
            // unsubscribe which did not wait for it would return inside it.
            std::thread::sleep(Duration::from_millis(300));
        }
        self.span.inside.store(false, Ordering::SeqCst);
        Ok(())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.span.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn no_call_starts_after_an_unsubscribe_from_another_thread_returns() {
    let (rt, server) = mock(0.0);
    let host = unthrottled(&server);
    let (entered_tx, entered) = mpsc::channel();
    let span = Arc::new(Span::default());
    let busy = Arc::new(Busy {
        span: span.clone(),
        entered: Mutex::new(Some(entered_tx)),
    });
    let id = host.subscribe(None, None, busy).unwrap().detach();
    let hose = firehose(&rt, &server, &host, 5_000);
    entered.recv_timeout(Duration::from_secs(10)).unwrap();
    // The callback is in its first call now, and stays in it for a while.
    assert!(host.unsubscribe(id));
    assert!(
        !span.inside.load(Ordering::SeqCst),
        "unsubscribe returned while the call was still running"
    );
    assert_eq!(
        span.dropped.load(Ordering::SeqCst),
        1,
        "released before unsubscribe returned"
    );
    let calls = span.calls.load(Ordering::SeqCst);
    // The rest of the firehose reaches the client; no call starts any more.
    assert_eq!(rt.block_on(hose).unwrap(), 5_000);
    assert!(eventually(Duration::from_secs(5), || host.stats().frames > 4_000));
    assert_eq!(span.calls.load(Ordering::SeqCst), calls);
    host.close();
}

#[test]
fn a_callback_unsubscribes_itself_and_is_not_called_again() {
    let (rt, server) = mock(0.0);
    let host = unthrottled(&server);
    let (calls, dropped) = counters();
    let (id_tx, id_rx) = mpsc::channel::<u64>();
    let id_rx = Mutex::new(id_rx);
    let inner = host.clone();
    let (took_tx, took) = mpsc::channel();
    let callback = Arc::new(Once {
        act: move || {
            let id = id_rx.lock().unwrap().recv().unwrap();
            let started = Instant::now();
            let removed = inner.unsubscribe(id);
            let _ = took_tx.send((removed, started.elapsed()));
        },
        calls: calls.clone(),
        dropped: dropped.clone(),
    });
    let id = host.subscribe(None, None, callback).unwrap().detach();
    id_tx.send(id).unwrap();
    let hose = firehose(&rt, &server, &host, 3_000);
    let (removed, elapsed) = took.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(removed);
    assert!(elapsed < AT_ONCE, "unsubscribing itself took {elapsed:?}");
    rt.block_on(hose).unwrap();
    assert!(eventually(Duration::from_secs(5), || dropped
        .load(Ordering::SeqCst)
        == 1));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    host.close();
}

/// Submits, then runs, a workflow from inside its first `finished` call.
struct Chain {
    host: Mutex<Option<Arc<HostClient>>>,
    workflow: serde_json::Value,
    results: mpsc::Sender<(Result<String, ErrorCode>, Result<Phase, ErrorCode>)>,
}

impl EventCallback for Chain {
    fn on_event(&self, event: &HostEvent) -> Result<(), String> {
        if event.kind.name() != "finished" {
            return Ok(());
        }
        let Some(host) = self.host.lock().unwrap().take() else {
            return Ok(());
        };
        let jobs = host.jobs();
        let submitted = block_on(jobs.submit(self.workflow.clone(), within(20)))
            .map(|s| s.prompt_id)
            .map_err(|e| e.code);
        let ran = block_on(jobs.run(self.workflow.clone(), within(20)))
            .map(|o| o.status)
            .map_err(|e| e.code);
        let _ = self.results.send((submitted, ran));
        Ok(())
    }
}

#[test]
fn submit_and_run_from_a_callback() {
    let (_rt, server) = mock(0.0);
    let host = unthrottled(&server);
    let (tx, results) = mpsc::channel();
    let chain = Arc::new(Chain {
        host: Mutex::new(Some(host.clone())),
        workflow: server.sample_workflow(),
        results: tx,
    });
    let _handle = host.subscribe(None, None, chain).unwrap();
    let first = block_on(host.jobs().run(server.sample_workflow(), within(20))).unwrap();
    assert_eq!(first.status, Phase::Succeeded);
    let (submitted, ran) = results.recv_timeout(Duration::from_secs(40)).unwrap();
    let submitted = submitted.unwrap();
    assert_eq!(ran.unwrap(), Phase::Succeeded);
    // The prompt submitted from the callback ran to its end too.
    let outcome = block_on(host.jobs().wait(&submitted, &within(20))).unwrap();
    assert_eq!(outcome.status, Phase::Succeeded);
    host.close();
}
