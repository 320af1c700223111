//! Runs one [`Schedule`] against the real client and a fresh mock server
//! (optionally through the [`FaultProxy`]) and checks the invariants.

use std::sync::Arc;

use parking_lot::Mutex;
use std::time::Duration;

use comfywire_client::proto::BackoffConfig;
use comfywire_client::{Client, ClientConfig, ConnectionState, Deadlines, Error, Event, Outcome};
use comfywire_mock::{MockConfig, MockServer, TraceSource};
use tokio::task::JoinHandle;

use crate::invariants::{OutcomeKind, check_against_server, check_stream, terminal_count};
use crate::proxy::{FaultProxy, Pace};
use crate::schedule::{Action, Schedule, Step, Trigger};
use crate::tally::Tally;

/// Knobs shared by every schedule of a run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The total deadline given to every `wait_record`; hitting it is a hang.
    pub total: Duration,
    /// Longest wait for an event trigger before the fault fires anyway.
    pub trigger_cap: Duration,
    /// Subscriber queue capacity (a never-read subscriber must stay within
    /// it plus the lifecycle events it may not drop).
    pub subscriber_capacity: usize,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            total: Duration::from_secs(20),
            trigger_cap: Duration::from_millis(1500),
            subscriber_capacity: 256,
        }
    }
}

/// A client configuration with test-short timers (backoff 20 ms initial,
/// lost re-check and poll interval 100 ms, deaf watchdog 1 s).
pub fn client_config(url: &str, options: &RunOptions) -> ClientConfig {
    let mut c = ClientConfig::new(url);
    c.session.backoff = BackoffConfig {
        initial: Duration::from_millis(20),
        multiplier: 2.0,
        max: Duration::from_millis(200),
        jitter: 0.2,
    };
    c.session.poll_interval = Duration::from_millis(100);
    c.session.lost_recheck = Duration::from_millis(100);
    c.session.deaf_timeout = Some(Duration::from_millis(1000));
    c.session.ping_interval = Duration::from_millis(1000);
    c.session.pong_timeout = Duration::from_millis(1000);
    c.request_timeout = Duration::from_secs(3);
    c.connect_timeout = Duration::from_secs(2);
    c.max_message_size = 1 << 20;
    c.subscriber_capacity = options.subscriber_capacity;
    c
}

async fn start_mock(speed: f64) -> std::io::Result<MockServer> {
    MockServer::start_with(MockConfig {
        port: 0,
        traces: TraceSource::Embedded,
        speed,
        default_scenario: "success_single".into(),
    })
    .await
}

fn collect(mut subscription: comfywire_client::Subscription) -> JoinHandle<Vec<Event>> {
    tokio::spawn(async move {
        let mut events = Vec::new();
        // Ends when the client closes; the caller bounds it with a timeout.
        while let Some(event) = subscription.recv().await {
            events.push(event);
        }
        events
    })
}

/// What one client of a schedule did.
struct ClientRun {
    submitted: Vec<String>,
    refused: u64,
    records: Vec<Arc<comfywire_client::ExecutionRecord>>,
    hangs: Vec<String>,
    errors: Vec<String>,
}

async fn client_work(
    client: Client,
    workflows: Vec<serde_json::Value>,
    delay: Duration,
    total: Duration,
) -> ClientRun {
    tokio::time::sleep(delay).await;
    let mut run = ClientRun {
        submitted: Vec::new(),
        refused: 0,
        records: Vec::new(),
        hangs: Vec::new(),
        errors: Vec::new(),
    };
    for workflow in &workflows {
        match client.submit(workflow).await {
            Ok(submission) => run.submitted.push(submission.prompt_id),
            Err(_) => run.refused += 1,
        }
    }
    let deadlines = Deadlines {
        total: Some(total),
        ..Deadlines::default()
    };
    for prompt_id in &run.submitted {
        match client.wait_record(prompt_id, deadlines).await {
            Ok(record) => run.records.push(record),
            Err(Error::Deadline { .. }) => run.hangs.push(prompt_id.clone()),
            Err(e) => run.errors.push(format!("wait_record({prompt_id}): {e}")),
        }
    }
    run
}

async fn wait_trigger(
    trigger: &Trigger,
    events: &mut comfywire_client::Subscription,
    cap: Duration,
) {
    if let Trigger::After(after) = trigger {
        tokio::time::sleep(*after).await;
        return;
    }
    let deadline = tokio::time::Instant::now() + cap;
    loop {
        let Ok(Some(event)) = tokio::time::timeout_at(deadline, events.recv()).await else {
            return;
        };
        let hit = match (trigger, &event) {
            (Trigger::OnEvent(kind), e) => e.kind() == *kind,
            (Trigger::OnReconnect, Event::Connection(status)) => {
                status.state == ConnectionState::Connected
            }
            _ => false,
        };
        if hit {
            return;
        }
    }
}

async fn fault_work(
    steps: Vec<Step>,
    server: Arc<MockServer>,
    proxy: Option<Arc<FaultProxy>>,
    mut events: comfywire_client::Subscription,
    cap: Duration,
    fired: Arc<Mutex<Vec<String>>>,
) {
    for step in steps {
        wait_trigger(&step.trigger, &mut events, cap).await;
        match (&step.action, &proxy) {
            (Action::Mock(fault), _) => server.inject(fault.clone()),
            (Action::Cut(bytes), Some(p)) => p.cut_after(*bytes),
            (Action::Pace(pace), Some(p)) => p.set_pace(*pace),
            (Action::ProxyStall(ms), Some(p)) => p.stall(*ms),
            (_, None) => continue,
        }
        fired.lock().push(step.action.name());
    }
}

/// Runs one schedule and checks every invariant; violations come back in
/// the tally, each prefixed with the seed.
pub async fn run_schedule(schedule: &Schedule, options: &RunOptions) -> Tally {
    let mut tally = Tally {
        schedules: 1,
        ..Tally::default()
    };
    let seed = schedule.seed;
    let violation = |tally: &mut Tally, what: String| {
        tally.violations.push(format!("seed {seed}: {what}"));
    };
    let server = match start_mock(schedule.speed).await {
        Ok(s) => Arc::new(s),
        Err(e) => {
            violation(&mut tally, format!("mock did not start: {e}"));
            return tally;
        }
    };
    let proxy = if schedule.proxied {
        match FaultProxy::start(server.addr()).await {
            Ok(p) => Some(Arc::new(p)),
            Err(e) => {
                violation(&mut tally, format!("proxy did not start: {e}"));
                return tally;
            }
        }
    } else {
        None
    };
    let url = proxy.as_ref().map_or_else(|| server.url(), |p| p.url());
    let truth = match Client::connect(client_config(&server.url(), options)).await {
        Ok(c) => c,
        Err(e) => {
            violation(&mut tally, format!("truth client: {e}"));
            return tally;
        }
    };
    let mut clients = Vec::new();
    for _ in &schedule.clients {
        match Client::connect(client_config(&url, options)).await {
            Ok(c) => clients.push(c),
            Err(e) => {
                violation(&mut tally, format!("client: {e}"));
                return tally;
            }
        }
    }
    for c in &clients {
        let _ = c.wait_connected(Duration::from_secs(3)).await;
    }
    let collectors: Vec<_> = clients.iter().map(|c| collect(c.events())).collect();
    // Never read until the end: its queue must stay bounded, and since
    // lifecycle events are never dropped it must still see every end.
    let lazy = clients[0].events();
    let fired = Arc::new(Mutex::new(Vec::new()));
    let faults = tokio::spawn(fault_work(
        schedule.steps.clone(),
        server.clone(),
        proxy.clone(),
        clients[0].events(),
        options.trigger_cap,
        fired.clone(),
    ));
    let workers: Vec<_> = clients
        .iter()
        .zip(&schedule.clients)
        .map(|(client, scenarios)| {
            let workflows = scenarios
                .iter()
                .filter_map(|s| server.workflow(s))
                .collect();
            tokio::spawn(client_work(
                client.clone(),
                workflows,
                schedule.submit_delay,
                options.total,
            ))
        })
        .collect();
    let mut runs = Vec::new();
    for worker in workers {
        match worker.await {
            Ok(run) => runs.push(run),
            Err(e) => violation(&mut tally, format!("client task panicked: {e}")),
        }
    }
    faults.abort();
    let _ = faults.await;
    for name in fired.lock().iter() {
        tally.fault(name);
    }
    if let Some(p) = &proxy {
        p.set_pace(Pace::FAST);
    }
    let mut known_ids: Vec<String> = Vec::new();
    for (client, run) in clients.iter().zip(&runs) {
        tally.prompts += run.submitted.len() as u64 + run.refused;
        for _ in 0..run.refused {
            tally.outcome(OutcomeKind::NotSubmitted);
        }
        let deaf_fired = fired.lock().iter().any(|f| f == "Deaf");
        for prompt_id in &run.hangs {
            let state = client.execution(prompt_id).await.ok().flatten();
            if deaf_fired
                && state
                    .as_ref()
                    .is_some_and(|r| r.phase == comfywire_client::Phase::Queued && !r.had_gap)
            {
                // Known library bug (see `known_bugs.rs`): no watchdog for
                // a prompt that is only queued on a deaf socket.
                tally.known.push(format!(
                    "seed {seed}: {prompt_id} queued behind a deaf socket"
                ));
                known_ids.push(prompt_id.clone());
                continue;
            }
            tally.hangs += 1;
            violation(
                &mut tally,
                format!(
                    "hang: {prompt_id} not terminal after {:?} (phase {:?}, had_gap {:?}, client {:?})",
                    options.total,
                    state.as_ref().map(|r| r.phase),
                    state.as_ref().map(|r| r.had_gap),
                    client.status()
                ),
            );
        }
        for error in &run.errors {
            violation(&mut tally, error.clone());
        }
        for record in &run.records {
            let kind = OutcomeKind::of(record);
            tally.outcome(kind);
            if let Some(Outcome::Lost { reason }) = &record.outcome {
                if !reason.trim().is_empty() {
                    tally.lost_with_reason += 1;
                }
            }
            match truth.server_history(&record.prompt_id).await {
                Ok(entry) => {
                    for v in check_against_server(record, entry.as_ref()) {
                        violation(&mut tally, v);
                    }
                }
                Err(e) => violation(&mut tally, format!("server history: {e}")),
            }
        }
        let ring = client.history().await.map(|h| h.len()).unwrap_or(0);
        if ring > client.config().session.history_capacity {
            violation(&mut tally, format!("history ring holds {ring} records"));
        }
    }
    // Events still in flight for prompts that just ended.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let lazy_pending = lazy.pending();
    tally.sample_rss();
    for client in &clients {
        client.close().await;
    }
    truth.close().await;
    let lazy_events = collect(lazy);
    for (i, (collector, run)) in collectors.into_iter().zip(&runs).enumerate() {
        let events = match tokio::time::timeout(Duration::from_secs(5), collector).await {
            Ok(Ok(events)) => events,
            _ => {
                violation(&mut tally, format!("client {i}: event stream did not end"));
                continue;
            }
        };
        for prompt_id in &run.submitted {
            if terminal_count(&events, prompt_id) > 1 {
                tally.duplicates += 1;
            }
        }
        let ours: Vec<String> = run
            .submitted
            .iter()
            .filter(|p| !known_ids.contains(p))
            .cloned()
            .collect();
        for v in check_stream(&events, &ours) {
            violation(&mut tally, format!("client {i}: {v}"));
        }
        if std::env::var_os("COMFYWIRE_DEBUG").is_some() {
            eprintln!("schedule {schedule:#?}");
            for e in &events {
                match e {
                    Event::Connection(_) | Event::HttpFailed { .. } => {
                        eprintln!("client {i}: {e:?}")
                    }
                    _ => eprintln!("client {i}: {:?} {:?}", e.kind(), e.prompt_id()),
                }
            }
        }
    }
    match tokio::time::timeout(Duration::from_secs(5), lazy_events).await {
        Ok(Ok(events)) => {
            let lifecycle = events.iter().filter(|e| !e.kind().is_lossy()).count();
            if lazy_pending > options.subscriber_capacity + lifecycle {
                violation(
                    &mut tally,
                    format!("a never-read subscriber holds {lazy_pending} events"),
                );
            }
            if let Some(run) = runs.first() {
                let ours: Vec<String> = run
                    .submitted
                    .iter()
                    .filter(|p| !known_ids.contains(p))
                    .cloned()
                    .collect();
                for v in check_stream(&events, &ours) {
                    violation(&mut tally, format!("slow subscriber: {v}"));
                }
            }
        }
        _ => violation(&mut tally, "slow subscriber stream did not end".into()),
    }
    drop(proxy);
    if let Ok(server) = Arc::try_unwrap(server) {
        server.shutdown().await;
    }
    tally
}

/// Runs `seeds` with up to `parallel` schedules at once, each on its own
/// mock server; returns the merged tally.
pub async fn run_many(seeds: &[u64], parallel: usize, options: &RunOptions) -> Tally {
    let mut total = Tally::default();
    let mut running = tokio::task::JoinSet::new();
    let mut next = seeds.iter().copied();
    // Keep `parallel` schedules in flight; one slow schedule does not hold
    // back the others.
    loop {
        while running.len() < parallel.max(1) {
            let Some(seed) = next.next() else { break };
            let options = options.clone();
            running.spawn(async move {
                (
                    seed,
                    run_schedule(&Schedule::generate(seed), &options).await,
                )
            });
        }
        match running.join_next().await {
            Some(Ok((_, t))) => total.merge(t),
            Some(Err(e)) => total.violations.push(format!("a schedule panicked: {e}")),
            None => break,
        }
    }
    total
}
