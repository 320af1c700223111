//! Runs one [`Schedule`] against the real client and a fresh mock server
//! (optionally through the [`FaultProxy`]) and checks the invariants, the
//! client's outcomes against the server's ledger first ([`accounting`]).
//!
//! [`accounting`]: crate::accounting

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use comfywire_client::proto::BackoffConfig;
use comfywire_client::{
    Client, ClientConfig, ConnectionState, Deadlines, Error, Event, ExecutionRecord, Outcome,
    SubmitOptions,
};
use comfywire_mock::{Ledger, MockConfig, MockServer, MockStats, TraceSource};
use serde_json::Value;
use tokio::task::JoinHandle;

use crate::accounting::{
    Attempt, Returned, Terminal, Terminals, account, enqueued_for, terminals_of,
};
use crate::invariants::{OutcomeKind, check_against_server, check_stream};
use crate::journal;
use crate::process::Process;
use crate::proxy::{FaultProxy, Pace};
use crate::schedule::{
    Action, Focus, REQUEST_TIMEOUT, Schedule, Step, Submit, Trigger, fault_name,
};
use crate::tally::Tally;

/// Knobs shared by every schedule of a run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// How long a prompt the server enqueued may take to reach its
    /// terminal event (`wait_record`'s total deadline); hitting it is a hang.
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
/// lost re-check and poll interval 100 ms, deaf watchdog 1 s, requests 3 s).
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
    c.request_timeout = REQUEST_TIMEOUT;
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

/// Events a subscription delivered, kept where a killed process cannot
/// take them along.
type Seen = Arc<Mutex<Vec<Event>>>;

async fn collect(mut subscription: comfywire_client::Subscription, seen: Seen) {
    // Ends when the client closes (or its process dies).
    while let Some(event) = subscription.recv().await {
        seen.lock().push(event);
    }
}

/// What one client did, written as it goes so a kill keeps what happened.
#[derive(Default)]
struct ClientRun {
    attempts: Vec<Attempt>,
    records: Vec<Arc<ExecutionRecord>>,
    hung: Vec<String>,
    errors: Vec<String>,
}

type RunLog = Arc<Mutex<ClientRun>>;

/// One client's submissions, then a wait for every accepted prompt.
#[allow(clippy::too_many_arguments)]
async fn client_work(
    client: Client,
    server: Arc<MockServer>,
    plan: Vec<(Submit, Value)>,
    delay: Duration,
    total: Duration,
    fired: Arc<Mutex<Vec<String>>>,
    log: RunLog,
) {
    tokio::time::sleep(delay).await;
    for (submit, workflow) in plan {
        for fault in &submit.armed {
            server.inject(fault.clone());
            fired.lock().push(fault_name(fault));
        }
        let options = SubmitOptions {
            prompt_id: Some(submit.prompt_id.clone()),
            ..SubmitOptions::default()
        };
        let call = client.submit_with(&workflow, options);
        let result = match submit.cancel_after {
            Some(after) => {
                fired.lock().push(Focus::SubmitCancelled.name().into());
                tokio::time::timeout(after, call).await.ok()
            }
            None => Some(call.await),
        };
        let returned = match result {
            Some(Ok(submission)) => Returned::Accepted(submission.prompt_id),
            Some(Err(e)) => Returned::Refused(e.to_string()),
            None => Returned::Cancelled,
        };
        log.lock().attempts.push(Attempt {
            requested: submit.prompt_id,
            returned,
        });
    }
    let deadlines = Deadlines {
        total: Some(total),
        ..Deadlines::default()
    };
    let accepted: Vec<String> = log
        .lock()
        .attempts
        .iter()
        .filter_map(|a| match &a.returned {
            Returned::Accepted(id) => Some(id.clone()),
            _ => None,
        })
        .collect();
    for prompt_id in accepted {
        let result = client.wait_record(&prompt_id, deadlines).await;
        let mut log = log.lock();
        match result {
            Ok(record) => log.records.push(record),
            Err(Error::Deadline { .. }) => log.hung.push(prompt_id),
            Err(e) => log.errors.push(format!("wait_record({prompt_id}): {e}")),
        }
    }
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

/// One client of a schedule: where it runs and what it saw.
struct Seat {
    client: Client,
    /// Set for the client whose process the schedule kills.
    process: Option<Process>,
    config: ClientConfig,
    seen: Seen,
    log: RunLog,
    plan: Vec<Submit>,
}

impl Seat {
    fn spawn<F>(&self, task: F) -> Option<JoinHandle<()>>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        match &self.process {
            Some(p) => p.spawn(task),
            None => Some(tokio::spawn(task)),
        }
    }
}

/// A client id for the killed client, stable across its restart.
fn process_client_id(seed: u64) -> String {
    format!("faults-process-{seed:016x}")
}

fn journal_path(seed: u64) -> PathBuf {
    std::env::temp_dir().join(format!(
        "comfywire-faults-{}-{seed:016x}.journal",
        std::process::id()
    ))
}

/// Waits until every prompt the server enqueued has left it (bounded).
async fn settle(server: &MockServer, within: Duration) -> Result<Ledger, Ledger> {
    let until = Instant::now() + within;
    loop {
        let ledger = server.ledger();
        if ledger
            .entries
            .iter()
            .all(|e| !e.enqueued || e.end.is_some())
        {
            return Ok(ledger);
        }
        if Instant::now() >= until {
            return Err(ledger);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `client` holds a terminal record under any of `ids`.
async fn wait_terminal(client: &Client, ids: &[String], until: Instant) -> Option<ExecutionRecord> {
    loop {
        for id in ids {
            if let Ok(Some(record)) = client.execution(id).await {
                if record.is_terminal() {
                    return Some(record);
                }
            }
        }
        if Instant::now() >= until {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `client` holds no live record of `id` (none, or a terminal
/// one); the phase it is stuck in otherwise.
async fn wait_released(client: &Client, id: &str, until: Instant) -> Option<&'static str> {
    loop {
        let phase = match client.execution(id).await {
            Ok(Some(record)) if !record.is_terminal() => record.phase.name(),
            _ => return None,
        };
        if Instant::now() >= until {
            return Some(phase);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn effects(tally: &mut Tally, stats: &MockStats) {
    for (name, value) in [
        ("prompt replies cut", stats.prompt_replies_cut),
        ("prompt replies delayed", stats.prompt_replies_delayed),
        ("prompt ids replaced", stats.prompt_ids_replaced),
        ("terminal frames corrupted", stats.terminal_frames_corrupted),
        ("history answers 500", stats.history_unreadable_answers),
    ] {
        if value > 0 {
            *tally.effects.entry(name.to_owned()).or_default() += value;
        }
    }
}

/// Runs one schedule and checks every invariant; violations come back in
/// the tally, each prefixed with the seed (and the focus, if any).
pub async fn run_schedule(schedule: &Schedule, options: &RunOptions) -> Tally {
    let mut tally = Tally {
        schedules: 1,
        ..Tally::default()
    };
    let prefix = match schedule.focus {
        Some(focus) => format!("seed {} [{}]", schedule.seed, focus.name()),
        None => format!("seed {}", schedule.seed),
    };
    let violation = |tally: &mut Tally, what: String| {
        tally.violations.push(format!("{prefix}: {what}"));
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
    let journal_file = journal_path(schedule.seed);
    let mut seats: Vec<Seat> = Vec::new();
    for (i, plan) in schedule.clients.iter().enumerate() {
        let mut config = client_config(&url, options);
        let mut process = None;
        if i == 0 && schedule.kill.is_some() {
            config.client_id = Some(process_client_id(schedule.seed));
            config = journal::with_journal(config, &journal_file);
            match Process::start() {
                Ok(p) => process = Some(p),
                Err(e) => {
                    violation(&mut tally, format!("client process: {e}"));
                    return tally;
                }
            }
        }
        let connect = Client::connect(config.clone());
        let connected = match &process {
            Some(p) => match p.spawn(connect) {
                Some(handle) => handle.await.unwrap_or(Err(Error::Closed)),
                None => Err(Error::Closed),
            },
            None => connect.await,
        };
        let client = match connected {
            Ok(c) => c,
            Err(e) => {
                violation(&mut tally, format!("client: {e}"));
                return tally;
            }
        };
        seats.push(Seat {
            client,
            process,
            config,
            seen: Seen::default(),
            log: RunLog::default(),
            plan: plan.clone(),
        });
    }
    for seat in &seats {
        let _ = seat.client.wait_connected(Duration::from_secs(3)).await;
    }
    let mut collectors = Vec::new();
    for seat in &seats {
        collectors.push(seat.spawn(collect(seat.client.events(), seat.seen.clone())));
    }
    // Never read until the end: its queue must stay bounded, and since
    // lifecycle events are never dropped it must still see every end.
    let lazy_seat = seats.iter().position(|s| s.process.is_none());
    let lazy = lazy_seat.map(|i| seats[i].client.events());
    let fired = Arc::new(Mutex::new(Vec::new()));
    let faults = tokio::spawn(fault_work(
        schedule.steps.clone(),
        server.clone(),
        proxy.clone(),
        seats[0].client.events(),
        options.trigger_cap,
        fired.clone(),
    ));
    let kill_events = schedule.kill.as_ref().map(|_| seats[0].client.events());
    let mut workers = Vec::new();
    for seat in &seats {
        let plan: Vec<(Submit, Value)> = seat
            .plan
            .iter()
            .filter_map(|s| Some((s.clone(), server.workflow(s.scenario)?)))
            .collect();
        workers.push(seat.spawn(client_work(
            seat.client.clone(),
            server.clone(),
            plan,
            schedule.submit_delay,
            options.total,
            fired.clone(),
            seat.log.clone(),
        )));
    }
    if let (Some(trigger), Some(mut events)) = (&schedule.kill, kill_events) {
        tokio::time::sleep(schedule.submit_delay).await;
        wait_trigger(trigger, &mut events, options.trigger_cap).await;
        if let Some(p) = seats[0].process.as_mut() {
            p.kill();
        }
        fired.lock().push(Focus::KilledAndResumed.name().into());
        tally.kills += 1;
    }
    for (i, worker) in workers.into_iter().enumerate() {
        let Some(worker) = worker else { continue };
        if let Err(e) = worker.await {
            if !seats[i].process.as_ref().is_some_and(Process::killed) {
                violation(&mut tally, format!("client {i} task panicked: {e}"));
            }
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
    // The killed client starts again, from its journal when it has one.
    let mut resumed: Option<(Client, Seen, JoinHandle<()>)> = None;
    if schedule.kill.is_some() {
        let config = seats[0].config.clone();
        // A crashed process holds nothing: let go of the killed client's
        // last handle (its tasks died with its runtime), so its journal is
        // free for the process that starts again.
        let mut stand_in = ClientConfig::new(config.url.clone());
        // The seat keeps its client id: the accounting reads it.
        stand_in.client_id = Some(seats[0].client.client_id());
        if let Ok(placeholder) = Client::start(stand_in) {
            let killed = std::mem::replace(&mut seats[0].client, placeholder);
            drop(killed);
            seats[0].client.close().await;
        }
        let client = match journal::resume(config.clone()).await {
            Ok(client) => Some(client),
            Err(why) => {
                violation(&mut tally, format!("journal: {why}"));
                Client::connect(config).await.ok()
            }
        };
        if let Some(client) = client {
            let seen = Seen::default();
            let task = tokio::spawn(collect(client.events(), seen.clone()));
            resumed = Some((client, seen, task));
        }
    }
    // A cut or cancelled POST may still be landing; then the server plays
    // out whatever it enqueued.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let ledger = match settle(&server, Duration::from_secs(30)).await {
        Ok(ledger) => ledger,
        Err(ledger) => {
            violation(&mut tally, "the mock still runs prompts after 30 s".into());
            ledger
        }
    };
    if ledger.evicted > 0 {
        violation(
            &mut tally,
            format!(
                "the ledger evicted {} entries: the check is incomplete",
                ledger.evicted
            ),
        );
    }
    // Cancelled submits the server enqueued must end like any other, and
    // so must everything the killed client had enqueued.
    let until = Instant::now() + options.total;
    let mut late: Vec<Terminals> = vec![Terminals::new(); seats.len()];
    for (i, seat) in seats.iter().enumerate() {
        let killed = seat.process.is_some();
        let client = match (&resumed, killed) {
            (Some((c, _, _)), true) => c,
            (None, true) => continue,
            _ => &seat.client,
        };
        let cancelled: HashSet<String> = seat
            .log
            .lock()
            .attempts
            .iter()
            .filter(|a| a.returned == Returned::Cancelled)
            .map(|a| a.requested.clone())
            .collect();
        for group in enqueued_for(&ledger, &client.client_id()) {
            let asked = group.requested.clone().unwrap_or_default();
            if !killed && !cancelled.contains(&asked) {
                continue;
            }
            if let Some(record) = wait_terminal(client, &group.ids(), until).await {
                late[i]
                    .entry(record.prompt_id.clone())
                    .or_default()
                    .push(Terminal::of(&record));
            }
        }
        if killed {
            continue;
        }
        // A submit the server never enqueued (refused, or cancelled before
        // it landed) must not stay in flight in the client forever; nor may
        // the id asked for of a prompt the server runs under its own.
        let attempts = seat.log.lock().attempts.clone();
        for attempt in attempts {
            let id = attempt.requested.as_str();
            let adopted_as = ledger
                .about(id)
                .find(|e| e.adopted())
                .and_then(|e| e.prompt_id.clone());
            let why = match (&attempt.returned, adopted_as) {
                (_, Some(theirs)) => format!("the server runs it as {theirs}"),
                (Returned::Accepted(_), None) => continue,
                (_, None) if ledger.enqueued(id) => continue,
                (Returned::Cancelled, None) => "it was never enqueued (submit cancelled)".into(),
                (_, None) => "it was never enqueued (submit returned an error)".into(),
            };
            if let Some(phase) = wait_released(client, id, until).await {
                violation(
                    &mut tally,
                    format!("client {i}: {id} is still tracked as {phase}, though {why}"),
                );
            }
        }
    }
    // Events still in flight for prompts that just ended.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let lazy_pending = lazy.as_ref().map_or(0, |l| l.pending());
    tally.sample_rss();
    effects(&mut tally, &server.stats());
    for seat in &seats {
        if !seat.process.as_ref().is_some_and(Process::killed) {
            seat.client.close().await;
        }
    }
    let resumed_events = match resumed {
        Some((client, seen, task)) => {
            client.close().await;
            if tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .is_err()
            {
                violation(
                    &mut tally,
                    "resumed client: event stream did not end".into(),
                );
            }
            let events = seen.lock().clone();
            Some(events)
        }
        None => None,
    };
    let lazy_events = lazy.map(|l| {
        let seen = Seen::default();
        (tokio::spawn(collect(l, seen.clone())), seen)
    });
    // What a client can learn: an entry the server holds but will not
    // serve (`HistoryUnreadable`) is, to any client, no entry.
    let has_history = |id: &str| server.history_entry(id).is_some() && server.history_readable(id);
    let mut main_finished: Vec<String> = Vec::new();
    for (i, (seat, collector)) in seats.iter().zip(collectors).enumerate() {
        let killed = seat.process.is_some();
        if !killed {
            if let Some(collector) = collector {
                if tokio::time::timeout(Duration::from_secs(5), collector)
                    .await
                    .is_err()
                {
                    violation(&mut tally, format!("client {i}: event stream did not end"));
                }
            }
        }
        let events = seat.seen.lock().clone();
        let log = std::mem::take(&mut *seat.log.lock());
        // A killed client's submits that never returned count as cancelled.
        let mut attempts = log.attempts.clone();
        for submit in &seat.plan {
            if !attempts.iter().any(|a| a.requested == submit.prompt_id) {
                attempts.push(Attempt {
                    requested: submit.prompt_id.clone(),
                    returned: Returned::Cancelled,
                });
            }
        }
        let mut terminals = terminals_of(&events);
        for v in check_stream(&events, &[]) {
            violation(&mut tally, format!("client {i}: {v}"));
        }
        if killed {
            // Across a kill the dead process's ends count, the new one's
            // record settles the rest, and the new one may not end a
            // prompt twice.
            if let Some(events) = &resumed_events {
                for v in check_stream(events, &[]) {
                    violation(&mut tally, format!("client {i} (resumed): {v}"));
                }
            }
            for (id, kinds) in &late[i] {
                terminals.entry(id.clone()).or_insert_with(|| kinds.clone());
            }
        }
        let hung: HashSet<String> = log.hung.iter().cloned().collect();
        let accounts = account(
            &seat.client.client_id(),
            &attempts,
            &ledger,
            &terminals,
            &hung,
            &has_history,
        );
        tally.account(&accounts);
        for v in accounts.violations {
            violation(&mut tally, format!("client {i}: {v}"));
        }
        for error in &log.errors {
            violation(&mut tally, format!("client {i}: {error}"));
        }
        tally.prompts += attempts.len() as u64;
        for record in &log.records {
            tally.outcome(OutcomeKind::of(record));
            if let Some(Outcome::Lost { reason }) = &record.outcome {
                if !reason.trim().is_empty() {
                    tally.lost_with_reason += 1;
                }
            }
            let entry = server.history_entry(&record.prompt_id);
            for v in check_against_server(record, entry.as_ref()) {
                violation(&mut tally, format!("client {i}: {v}"));
            }
        }
        if Some(i) == lazy_seat {
            main_finished = terminals_of(&events).into_keys().collect();
        }
        if !killed {
            let ring = seat.client.history().await.map(|h| h.len()).unwrap_or(0);
            if ring > seat.client.config().session.history_capacity {
                violation(
                    &mut tally,
                    format!("client {i}: history ring holds {ring} records"),
                );
            }
        }
        if std::env::var_os("COMFYWIRE_DEBUG").is_some() {
            eprintln!("{prefix}: client {i} attempts {attempts:?}");
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
    if std::env::var_os("COMFYWIRE_DEBUG").is_some() {
        eprintln!("{prefix}: schedule {schedule:#?}\nledger {ledger:#?}");
    }
    if let Some((task, seen)) = lazy_events {
        if tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .is_err()
        {
            violation(&mut tally, "slow subscriber stream did not end".into());
        }
        let events = seen.lock().clone();
        let lifecycle = events.iter().filter(|e| !e.kind().is_lossy()).count();
        if lazy_pending > options.subscriber_capacity + lifecycle {
            violation(
                &mut tally,
                format!("a never-read subscriber holds {lazy_pending} events"),
            );
        }
        // It must see every end the reading subscriber saw.
        for v in check_stream(&events, &main_finished) {
            violation(&mut tally, format!("slow subscriber: {v}"));
        }
    }
    let _ = std::fs::remove_file(&journal_file);
    drop(seats);
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
