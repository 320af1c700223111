//! Callbacks run in order on the client's one dispatcher thread; a failing
//! or panicking callback is contained and reported; unsubscribing releases
//! the callback.
#![allow(clippy::unwrap_used)]

mod common;

use common::mock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use comfywire_host::event::{Event, Phase};
use comfywire_host::{
    CALLBACK_ERROR, ClientConfig, DispatchContext, ErrorCode, EventCallback, HostClient, HostEvent,
    JobOptions, LazyFlat, PlainContext, Settings, block_on,
};
use comfywire_mock::MockServer;

fn settings(server: &MockServer) -> Settings {
    Settings {
        url: Some(server.url()),
        ..Settings::default()
    }
}

fn within(secs: u64) -> JobOptions {
    JobOptions {
        timeout: Some(Duration::from_secs(secs)),
        ..JobOptions::default()
    }
}

fn connected(host: &HostClient) {
    block_on(host.jobs().wait_connected(Duration::from_secs(5))).unwrap();
}

struct Recorder {
    seen: Mutex<Vec<(String, String)>>,
    fail_on: Option<&'static str>,
    dropped: Arc<AtomicUsize>,
}

impl EventCallback for Recorder {
    fn on_event(&self, event: &HostEvent) -> Result<(), String> {
        let thread = std::thread::current().name().unwrap_or("").to_owned();
        self.seen
            .lock()
            .unwrap()
            .push((event.kind.name().to_owned(), thread));
        match self.fail_on {
            Some("panic") if event.kind.name() == "progress" => panic!("boom in a callback"),
            Some(kind) if kind == event.kind.name() => Err(format!("refused {kind}")),
            _ => Ok(()),
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

fn recorder(fail_on: Option<&'static str>, dropped: &Arc<AtomicUsize>) -> Arc<Recorder> {
    Arc::new(Recorder {
        seen: Mutex::new(Vec::new()),
        fail_on,
        dropped: dropped.clone(),
    })
}

#[test]
fn callbacks_run_in_order_on_the_dispatcher_and_failures_are_contained() {
    let (_rt, server) = mock(0.0);
    let host = HostClient::new(&settings(&server)).unwrap();
    connected(&host);
    let dropped = Arc::new(AtomicUsize::new(0));
    let all = recorder(None, &dropped);
    let panicking = recorder(Some("panic"), &dropped);
    let refusing = recorder(Some("finished"), &dropped);
    let errors = recorder(None, &dropped);
    let _a = host.subscribe(None, None, all.clone()).unwrap();
    let _b = host
        .subscribe(Some(&["progress".into()]), None, panicking.clone())
        .unwrap();
    let _c = host
        .subscribe(Some(&["finished".into()]), None, refusing.clone())
        .unwrap();
    let _d = host
        .subscribe(Some(&[CALLBACK_ERROR.into()]), None, errors.clone())
        .unwrap();
    // The client goes on despite both failing callbacks.
    let outcome = block_on(host.jobs().run(server.sample_workflow(), within(20))).unwrap();
    assert_eq!(outcome.status, Phase::Succeeded);
    let second = block_on(host.jobs().run(server.sample_workflow(), within(20))).unwrap();
    assert_eq!(second.status, Phase::Succeeded);
    // Let the dispatcher catch up.
    for _ in 0..100 {
        if all
            .seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(k, _)| k == "finished")
            .count()
            == 2
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let seen = all.seen.lock().unwrap().clone();
    assert!(
        seen.iter().all(|(_, t)| t == "comfywire-dispatch"),
        "callbacks must run on the dispatcher thread"
    );
    let kinds: Vec<&str> = seen
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| *k != CALLBACK_ERROR)
        .collect();
    let first_finished = kinds.iter().position(|k| *k == "finished").unwrap();
    let first_started = kinds
        .iter()
        .position(|k| *k == "execution_started")
        .unwrap();
    assert!(first_started < first_finished, "order kept");
    assert!(
        panicking.seen.lock().unwrap().len() > 1,
        "a panicking callback is called again"
    );
    let reports = errors.seen.lock().unwrap().len();
    assert!(reports >= 3, "{reports} callback_error reports");
    assert!(host.stats().callback_failures >= 3);
    // A pull host sees the reports too.
    let mut pulled = Vec::new();
    while let Some(e) = host.next_event(Duration::from_millis(50)).unwrap() {
        pulled.push(e);
    }
    assert!(pulled.iter().any(|e| e.kind().name() == CALLBACK_ERROR));
    host.close();
    assert_eq!(
        host.next_event(Duration::from_millis(10)).unwrap_err().code,
        ErrorCode::Closed
    );
    assert_eq!(dropped.load(Ordering::SeqCst), 0, "handles still held");
}

/// Counts what the dispatcher runs inside it, and marks the calls made
/// inside a batch.
#[derive(Default)]
struct Counting {
    threads: AtomicUsize,
    batches: AtomicUsize,
    in_batch: std::sync::atomic::AtomicBool,
}

impl DispatchContext for Counting {
    fn run_thread(&self, run: &mut (dyn FnMut() + Send)) {
        self.threads.fetch_add(1, Ordering::SeqCst);
        run();
    }

    fn run_batch(&self, run: &mut (dyn FnMut() + Send)) {
        self.batches.fetch_add(1, Ordering::SeqCst);
        self.in_batch.store(true, Ordering::SeqCst);
        run();
        self.in_batch.store(false, Ordering::SeqCst);
    }
}

/// Records the client events it is handed, and fails on every other one.
struct Flaky {
    context: Arc<Counting>,
    seen: Mutex<Vec<(String, Option<String>, bool)>>,
}

impl EventCallback for Flaky {
    fn on_event(&self, event: &HostEvent) -> Result<(), String> {
        Err(format!(
            "only client events expected, got {}",
            event.kind.name()
        ))
    }

    fn on_client_event(&self, event: &Event, flat: &LazyFlat<'_>) -> Result<(), String> {
        let flat = flat.get();
        assert_eq!(
            event.kind().name(),
            flat.kind.name(),
            "the flat record is the event's"
        );
        assert_eq!(event.prompt_id(), flat.prompt_id.as_deref());
        let mut seen = self.seen.lock().unwrap();
        seen.push((
            flat.kind.name().to_owned(),
            flat.node.clone(),
            self.context.in_batch.load(Ordering::SeqCst),
        ));
        if seen.len() % 2 == 1 {
            return Err(format!("refused event {}", seen.len()));
        }
        Ok(())
    }
}

#[test]
fn a_dispatch_context_wraps_the_thread_once_and_every_batch() {
    let (rt, server) = mock(0.0);
    let context = Arc::new(Counting::default());
    let mut config = ClientConfig::new(server.url());
    config.session.progress_interval = Duration::ZERO;
    let host = HostClient::from_config(config, context.clone()).unwrap();
    connected(&host);
    let lifecycle: Vec<String> = ["node_started", "node_finished", "finished"]
        .map(String::from)
        .to_vec();
    let flaky = Arc::new(Flaky {
        context: context.clone(),
        seen: Mutex::new(Vec::new()),
    });
    let dropped = Arc::new(AtomicUsize::new(0));
    let all = recorder(None, &dropped);
    let _a = host
        .subscribe(Some(&lifecycle), None, flaky.clone())
        .unwrap();
    let _b = host.subscribe(Some(&lifecycle), None, all.clone()).unwrap();
    let errors = recorder(None, &dropped);
    let _c = host
        .subscribe(Some(&[CALLBACK_ERROR.into()]), None, errors.clone())
        .unwrap();
    // As fast as the socket takes them: the client delivers in batches.
    let base = host.stats().frames;
    let id = host.client_id();
    let sent = rt
        .block_on(async { server.firehose(&id, 3000, "long_run").await })
        .unwrap();
    assert_eq!(sent, 3000);
    let mut last = usize::MAX;
    for _ in 0..250 {
        let now = all.seen.lock().unwrap().len();
        if now == last && host.stats().frames >= base + 3000 {
            break;
        }
        last = now;
        std::thread::sleep(Duration::from_millis(40));
    }
    let flaky_seen = flaky.seen.lock().unwrap().clone();
    let all_kinds: Vec<String> = all
        .seen
        .lock()
        .unwrap()
        .iter()
        .map(|(k, _)| k.clone())
        .collect();
    assert!(flaky_seen.len() > 20, "{} events", flaky_seen.len());
    let flaky_kinds: Vec<String> = flaky_seen.iter().map(|(k, _, _)| k.clone()).collect();
    assert_eq!(
        flaky_kinds, all_kinds,
        "a failing callback costs neither it nor its neighbours an event"
    );
    assert!(flaky_seen.iter().all(|(_, _, in_batch)| *in_batch));
    let failures = flaky_seen.len().div_ceil(2);
    assert_eq!(errors.seen.lock().unwrap().len(), failures);
    assert_eq!(host.stats().callback_failures, failures as u64);
    assert_eq!(context.threads.load(Ordering::SeqCst), 1);
    let batches = context.batches.load(Ordering::SeqCst);
    assert!(
        batches < flaky_seen.len(),
        "{batches} batches for {} events",
        flaky_seen.len()
    );
    host.close();
}

#[test]
fn unsubscribing_releases_the_callback_exactly_once() {
    let (_rt, server) = mock(0.0);
    let host = HostClient::new(&settings(&server)).unwrap();
    let dropped = Arc::new(AtomicUsize::new(0));
    let handle = host
        .subscribe(None, None, recorder(None, &dropped))
        .unwrap();
    let by_id = host
        .subscribe(None, None, recorder(None, &dropped))
        .unwrap()
        .detach();
    let kept = host
        .subscribe(None, None, recorder(None, &dropped))
        .unwrap();
    assert_eq!(host.stats().callbacks, 3);
    assert!(handle.cancel());
    assert!(!handle.cancel());
    drop(handle);
    assert_eq!(dropped.load(Ordering::SeqCst), 1);
    assert!(host.unsubscribe(by_id));
    assert!(!host.unsubscribe(by_id));
    assert_eq!(dropped.load(Ordering::SeqCst), 2);
    assert!(
        host.subscribe(Some(&["nope".into()]), None, recorder(None, &dropped))
            .is_err()
    );
    host.close();
    drop(kept);
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        4,
        "close releases every callback once"
    );
}

#[test]
fn blocking_calls_map_errors_to_stable_codes() {
    let (rt, server) = mock(0.0);
    let host = HostClient::new(&settings(&server)).unwrap();
    connected(&host);
    assert_eq!(
        comfywire_host::parse_json("{not json", "workflow")
            .unwrap_err()
            .code,
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        block_on(
            host.jobs()
                .run(serde_json::json!([1]), JobOptions::default())
        )
        .unwrap_err()
        .code,
        ErrorCode::Config,
        "a workflow is an object"
    );
    server.inject(comfywire_mock::Fault::FailNextPrompt);
    let err = block_on(
        host.jobs()
            .run(server.sample_workflow(), JobOptions::default()),
    )
    .unwrap_err();
    assert_eq!(err.code, ErrorCode::ExecutionFailed);
    assert_eq!(err.code.as_u32(), 11);
    let outcome = err.outcome.unwrap();
    assert_eq!(outcome.error.unwrap().exception_type, "RuntimeError");
    server.inject(comfywire_mock::Fault::ValidationErrorNextPrompt);
    let err = block_on(
        host.jobs()
            .submit(server.sample_workflow(), JobOptions::default()),
    )
    .unwrap_err();
    assert_eq!(err.code, ErrorCode::Validation);
    assert!(err.detail.unwrap()["node_errors"].is_array());
    // Calls from several threads at once.
    let host = Arc::new(host);
    let workflow = server.sample_workflow();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let host = host.clone();
            let workflow = workflow.clone();
            std::thread::spawn(move || {
                block_on(host.jobs().run(workflow, within(30))).map(|o| o.status)
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap().unwrap(), Phase::Succeeded);
    }
    assert_eq!(block_on(host.jobs().history()).unwrap().len(), 5);
    // A blocking call inside an async context is refused, not deadlocked.
    let inner = host.clone();
    let refused = rt.block_on(async move { block_on(inner.jobs().queue()) });
    assert_eq!(refused.unwrap_err().code, ErrorCode::InvalidArgument);
    host.close();
}

/// Counts what it is handed, slowly.
struct Slow {
    progress: AtomicUsize,
    finished: AtomicUsize,
}

impl EventCallback for Slow {
    fn on_event(&self, event: &HostEvent) -> Result<(), String> {
        match event.kind.name() {
            "progress" => {
                self.progress.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_micros(500));
            }
            "finished" => {
                self.finished.fetch_add(1, Ordering::SeqCst);
            }
            _ => {}
        }
        Ok(())
    }
}

#[test]
fn a_slow_callback_makes_progress_coalesce_instead_of_piling_up() {
    let (_rt, server) = mock(0.0);
    let mut config = ClientConfig::new(server.url());
    // Unthrottled: every step becomes an event, far faster than the
    // callback takes them.
    config.session.progress_interval = Duration::ZERO;
    config.subscriber_capacity = 64;
    let host = HostClient::from_config(config, Arc::new(PlainContext)).unwrap();
    connected(&host);
    let slow = Arc::new(Slow {
        progress: AtomicUsize::new(0),
        finished: AtomicUsize::new(0),
    });
    let _handle = host.subscribe(None, None, slow.clone()).unwrap();
    let workflow = server.workflow("long_run").unwrap();
    for _ in 0..3 {
        let outcome = block_on(host.jobs().run(workflow.clone(), within(30))).unwrap();
        assert_eq!(outcome.status, Phase::Succeeded);
    }
    for _ in 0..500 {
        if slow.finished.load(Ordering::SeqCst) == 3 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // Every terminal event arrived; the 600 steps did not all queue up
    // behind the slow callback: the bounded subscription coalesced them.
    assert_eq!(slow.finished.load(Ordering::SeqCst), 3);
    let steps = slow.progress.load(Ordering::SeqCst);
    assert!(steps > 0 && steps < 600, "{steps} progress events");
    assert!(host.stats().coalesced > 0);
}
