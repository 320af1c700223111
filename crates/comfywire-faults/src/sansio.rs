//! The socket-free variant: random interleavings of recorded frames with
//! disconnects, refused connects, deaf sockets, restarts, duplicated and
//! re-delivered frames and delayed or failed HTTP answers, fed straight
//! into `comfywire_proto::Session` on a fake clock. Fast enough to run
//! hundreds of cases in the quick slice.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use comfywire_proto::trace::{Trace, TraceEventKind};
use comfywire_proto::{
    BackoffConfig, Command, ConnectionError, Event, ExecutionRecord, Frame, HistoryEntry,
    HistoryOutcome, HttpReply, HttpRequest, Outcome, Phase, QueueItem, QueueSnapshot,
    ReplayOptions, ServerMessage, Session, SessionConfig, parse_frame, replay,
};

use crate::invariants::{OutcomeKind, check_stream, same_outputs};
use crate::prng::Prng;
use crate::tally::Tally;

/// What the server knows of one prompt, from a clean replay of its trace.
#[derive(Debug, Clone)]
pub struct PromptTruth {
    /// The finished record of the clean replay.
    pub record: Arc<ExecutionRecord>,
    /// Index of the first frame about it.
    pub first_frame: usize,
    /// From after this frame index on, the server's history has it.
    pub done_after: usize,
}

/// One recorded trace reduced to what the simulation needs.
#[derive(Debug, Clone)]
pub struct TraceCase {
    /// Scenario name.
    pub name: String,
    /// The client id of the recording.
    pub client_id: Option<String>,
    /// Every frame the primary client received, in order.
    pub frames: Vec<Frame>,
    /// The primary client's accepted prompts that ended.
    pub prompts: Vec<PromptTruth>,
}

/// Reads every `*.jsonl` trace of `dir` (sorted by name).
pub fn load_cases(dir: &Path) -> Vec<TraceCase> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    paths.retain(|p| p.extension().is_some_and(|e| e == "jsonl"));
    paths.sort();
    paths
        .iter()
        .filter_map(|p| {
            let text = std::fs::read_to_string(p).ok()?;
            let trace = Trace::parse(&text).ok()?;
            Some(case_of(&trace))
        })
        .collect()
}

/// The traces of the repository (`tests/data/traces`).
pub fn repo_traces() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/traces")
}

/// Every primary-client frame of a trace, in order.
pub fn frames_of(trace: &Trace) -> Vec<Frame> {
    trace
        .events
        .iter()
        .filter(|e| e.client.as_deref().is_none_or(|c| c == "primary"))
        .filter_map(|e| match &e.kind {
            TraceEventKind::Text {
                received: true,
                data,
                ..
            } => Some(Frame::text(data.clone())),
            TraceEventKind::Binary { data, .. } => Some(Frame::Binary(data.clone())),
            _ => None,
        })
        .collect()
}

fn case_of(trace: &Trace) -> TraceCase {
    let frames = frames_of(trace);
    let clean = replay(
        trace,
        SessionConfig::default(),
        Instant::now(),
        ReplayOptions::default(),
    );
    let messages: Vec<Option<ServerMessage>> = frames.iter().map(|f| parse_frame(f).ok()).collect();
    let mut prompts = Vec::new();
    for record in clean.session.history().iter().filter(|r| r.ours) {
        if matches!(record.outcome, Some(Outcome::Lost { .. }) | None) {
            continue;
        }
        let id = record.prompt_id.as_str();
        let about: Vec<usize> = messages
            .iter()
            .enumerate()
            .filter(|(_, m)| m.as_ref().and_then(|m| m.prompt_id()) == Some(id))
            .map(|(i, _)| i)
            .collect();
        let Some(&first_frame) = about.first() else {
            continue;
        };
        let terminal = about.iter().copied().find(|&i| {
            matches!(
                &messages[i],
                Some(ServerMessage::ExecutionSuccess(_) | ServerMessage::ExecutionInterrupted(_))
            ) || matches!(&messages[i], Some(ServerMessage::ExecutionError(e)) if !e.is_blocked())
                || matches!(&messages[i], Some(ServerMessage::Executing(e)) if e.node.is_none())
        });
        prompts.push(PromptTruth {
            record: record.clone(),
            first_frame,
            done_after: terminal.unwrap_or(*about.last().unwrap_or(&first_frame)),
        });
    }
    TraceCase {
        name: trace.meta.scenario.clone(),
        client_id: trace.meta.client_id.clone(),
        frames,
        prompts,
    }
}

/// The `/history` entry the server would answer for a finished prompt.
pub fn history_entry(record: &ExecutionRecord) -> Option<HistoryEntry> {
    let (outcome, status) = match record.outcome.as_ref()? {
        Outcome::Succeeded => (HistoryOutcome::Success, "success"),
        Outcome::Failed(e) => (HistoryOutcome::Error(Box::new((**e).clone())), "error"),
        Outcome::Interrupted(i) => (HistoryOutcome::Interrupted(i.clone()), "error"),
        Outcome::Lost { .. } => return None,
    };
    Some(HistoryEntry {
        number: record.number,
        outputs: record.outputs.to_map(),
        cached: record.cached.clone(),
        outcome,
        status_str: Some(status.into()),
        client_id: None,
    })
}

/// Session settings with test-short timers.
pub fn session_config(client_id: Option<String>, seed: u64) -> SessionConfig {
    SessionConfig {
        client_id,
        seed,
        backoff: BackoffConfig {
            initial: Duration::from_millis(20),
            multiplier: 2.0,
            max: Duration::from_millis(200),
            jitter: 0.2,
        },
        poll_interval: Duration::from_millis(100),
        lost_recheck: Duration::from_millis(100),
        deaf_timeout: Some(Duration::from_millis(300)),
        ping_interval: Duration::from_millis(500),
        pong_timeout: Duration::from_millis(300),
        ..SessionConfig::default()
    }
}

#[derive(Debug)]
enum Due {
    Connect(bool),
    Reply(Box<HttpReply>),
}

/// The simulated server and socket around one session.
struct Sim<'a> {
    case: &'a TraceCase,
    rng: Prng,
    session: Session,
    now: Instant,
    events: Vec<Event>,
    // Frame position: frames before it were sent (or lost).
    pos: usize,
    up: bool,
    deaf: bool,
    connecting: bool,
    refuse: u32,
    restarted: bool,
    due: Vec<(Instant, Due)>,
    recent: VecDeque<Frame>,
    violations: Vec<String>,
    faults: Vec<&'static str>,
}

impl Sim<'_> {
    fn server_history(&self, prompt_id: &str) -> Option<HistoryEntry> {
        if self.restarted {
            return None;
        }
        let truth = self
            .case
            .prompts
            .iter()
            .find(|p| p.record.prompt_id == prompt_id)?;
        (self.pos > truth.done_after)
            .then(|| history_entry(&truth.record))
            .flatten()
    }

    fn server_queue(&self) -> QueueSnapshot {
        let mut snapshot = QueueSnapshot::default();
        if self.restarted {
            return snapshot;
        }
        for p in &self.case.prompts {
            if self.pos > p.done_after {
                continue;
            }
            let item = QueueItem {
                number: p.record.number.unwrap_or(0) as f64,
                prompt_id: p.record.prompt_id.clone(),
                client_id: self.case.client_id.clone(),
            };
            if self.pos > p.first_frame {
                snapshot.running.push(item);
            } else {
                snapshot.pending.push(item);
            }
        }
        snapshot
    }

    /// Fires due timers, performs commands, delivers due answers; bounded.
    fn service(&mut self) {
        for _ in 0..64 {
            let mut progressed = false;
            if let Some(t) = self.session.poll_timeout() {
                if t.at <= self.now {
                    self.session.handle_timeout(self.now);
                    progressed = true;
                }
            }
            while let Some(command) = self.session.poll_command() {
                progressed = true;
                self.perform(command);
            }
            let now = self.now;
            if let Some(i) = self.due.iter().position(|(at, _)| *at <= now) {
                let (_, due) = self.due.remove(i);
                progressed = true;
                match due {
                    Due::Connect(true) if self.connecting => {
                        self.connecting = false;
                        self.up = true;
                        self.deaf = false;
                        self.session.handle_connected(now);
                        if self.rng.chance(0.3) {
                            // A server that re-sends what it sent lately:
                            // duplicates, reordered across the reconnect.
                            self.faults.push("redeliver");
                            let frames: Vec<Frame> = self.recent.iter().cloned().collect();
                            for frame in frames {
                                self.session.handle_frame(frame, now);
                            }
                        }
                    }
                    Due::Connect(false) if self.connecting => {
                        self.connecting = false;
                        self.session.handle_connect_failed(
                            ConnectionError::ConnectFailed {
                                message: "refused (simulated)".into(),
                            },
                            now,
                        );
                    }
                    Due::Connect(_) => {}
                    Due::Reply(reply) => self.session.handle_http(*reply, now),
                }
            }
            while let Some(event) = self.session.poll_event() {
                self.events.push(event);
            }
            if !progressed {
                return;
            }
        }
        self.violations
            .push("service loop did not settle in 64 rounds (busy timer?)".into());
    }

    fn perform(&mut self, command: Command) {
        let later = |rng: &mut Prng, now: Instant| now + Duration::from_millis(rng.range(0, 40));
        match command {
            Command::Connect { .. } => {
                self.up = false;
                self.connecting = true;
                let ok = if self.refuse > 0 {
                    self.refuse -= 1;
                    false
                } else {
                    true
                };
                let at = later(&mut self.rng, self.now);
                self.due.push((at, Due::Connect(ok)));
            }
            Command::Close { .. } => {
                self.up = false;
                self.deaf = false;
            }
            Command::Ping(_) => {
                if self.up {
                    // Deaf sockets answer pings too.
                    self.session.handle_pong(self.now);
                }
            }
            Command::SendText(_) => {}
            Command::Http(request) => {
                let reply = if self.rng.chance(0.15) {
                    HttpReply::Failed {
                        request,
                        error: "HTTP 500 (simulated)".into(),
                    }
                } else {
                    match request {
                        HttpRequest::History { prompt_id } => HttpReply::History {
                            entry: self.server_history(&prompt_id),
                            prompt_id,
                        },
                        HttpRequest::Queue => HttpReply::Queue(self.server_queue()),
                    }
                };
                let at = later(&mut self.rng, self.now);
                self.due.push((at, Due::Reply(Box::new(reply))));
            }
        }
    }

    fn deliver(&mut self, frame: Frame) {
        self.recent.push_back(frame.clone());
        if self.recent.len() > 6 {
            self.recent.pop_front();
        }
        self.session.handle_frame(frame, self.now);
    }

    fn step(&mut self) {
        self.now += Duration::from_millis(self.rng.range(0, 25));
        self.service();
        let roll = self.rng.range(0, 1000);
        match roll {
            0..=29 if self.up => {
                self.faults.push("disconnect");
                self.up = false;
                self.deaf = false;
                self.session.handle_disconnected(
                    ConnectionError::Lost {
                        code: Some(1006),
                        message: "cut (simulated)".into(),
                    },
                    self.now,
                );
            }
            30..=37 => {
                self.faults.push("refuse");
                self.refuse = self.rng.range(1, 7) as u32;
            }
            38..=45 if self.up => {
                self.faults.push("deaf");
                self.deaf = true;
            }
            46..=49 if !self.restarted => {
                self.faults.push("restart");
                self.restarted = true;
                // Everything after the restart is about prompts the server
                // forgot.
                self.pos = self.case.frames.len();
                if self.up {
                    self.up = false;
                    self.session.handle_disconnected(
                        ConnectionError::Lost {
                            code: Some(1006),
                            message: "server restarted (simulated)".into(),
                        },
                        self.now,
                    );
                }
            }
            50..=59 if self.up && !self.deaf => {
                self.faults.push("garbage");
                let junk = self.rng.range(0, 3);
                let frame = match junk {
                    0 => Frame::text("{\"type\": \"executing\", \"data\": {\"node\": 3"),
                    1 => Frame::binary(vec![0, 0, 0, 4, 0, 0, 0, 9, b'{']),
                    _ => Frame::Text(bytes::Bytes::from_static(&[0xff, 0xfe])),
                };
                self.session.handle_frame(frame, self.now);
            }
            _ => {
                let Some(frame) = self.case.frames.get(self.pos).cloned() else {
                    return;
                };
                self.pos += 1;
                if self.up && !self.deaf {
                    if self.rng.chance(0.05) {
                        self.faults.push("duplicate");
                        self.deliver(frame.clone());
                    }
                    self.deliver(frame);
                }
            }
        }
        self.service();
    }

    fn settled(&self) -> bool {
        self.case.prompts.iter().all(|p| {
            self.session
                .execution(&p.record.prompt_id)
                .is_some_and(ExecutionRecord::is_terminal)
        })
    }
}

/// Runs one case under the interleaving drawn from `seed`; the tally has
/// one schedule and its violations prefixed with the seed and trace.
pub fn run_case(case: &TraceCase, seed: u64) -> Tally {
    let base = Instant::now();
    let mut sim = Sim {
        case,
        rng: Prng::new(seed),
        session: Session::new(session_config(case.client_id.clone(), seed)),
        now: base,
        events: Vec::new(),
        pos: 0,
        up: false,
        deaf: false,
        connecting: false,
        refuse: 0,
        restarted: false,
        due: Vec::new(),
        recent: VecDeque::new(),
        violations: Vec::new(),
        faults: Vec::new(),
    };
    sim.session.connect(base);
    for p in &case.prompts {
        sim.session
            .track_prompt(&p.record.prompt_id, p.record.expected_nodes, base);
        sim.session.handle_http(
            HttpReply::PromptAccepted {
                prompt_id: p.record.prompt_id.clone(),
                number: p.record.number,
                node_errors: serde_json::json!({}),
            },
            base,
        );
    }
    sim.service();
    // Each step sends at most one frame; the bound leaves room for faults.
    let mut steps = 0;
    while sim.pos < case.frames.len() && steps < case.frames.len() * 4 + 1000 {
        sim.step();
        steps += 1;
    }
    // The rest: only time passes (the server is done), up to 60 s of it.
    for _ in 0..3000 {
        if sim.settled() {
            break;
        }
        sim.now += Duration::from_millis(20);
        sim.service();
    }
    let mut tally = Tally {
        schedules: 1,
        prompts: case.prompts.len() as u64,
        ..Tally::default()
    };
    for f in &sim.faults {
        tally.fault(f);
    }
    let prefix = format!("seed {seed} trace {}", case.name);
    for v in sim.violations.drain(..) {
        tally.violations.push(format!("{prefix}: {v}"));
    }
    let ours: Vec<String> = case
        .prompts
        .iter()
        .map(|p| p.record.prompt_id.clone())
        .collect();
    for v in check_stream(&sim.events, &ours) {
        tally.violations.push(format!("{prefix}: {v}"));
    }
    for p in &case.prompts {
        let id = &p.record.prompt_id;
        let Some(record) = sim.session.execution(id).filter(|r| r.is_terminal()) else {
            let phase = sim.session.execution(id).map(|r| (r.phase, r.had_gap));
            tally.hangs += 1;
            tally.violations.push(format!(
                "{prefix}: hang: {id} not terminal (phase, had_gap) = {phase:?}, state {:?}, faults {:?}",
                sim.session.state(),
                sim.faults
            ));
            continue;
        };
        let kind = OutcomeKind::of(record);
        tally.outcome(kind);
        if let Some(Outcome::Lost { reason }) = &record.outcome {
            if !reason.is_empty() {
                tally.lost_with_reason += 1;
            }
        }
        let expected = p.record.phase;
        let ok = if sim.restarted {
            record.phase == expected || record.phase == Phase::Lost
        } else {
            record.phase == expected
        };
        if !ok {
            tally.violations.push(format!(
                "{prefix}: {id} ended {} but the server says {} (faults {:?})",
                record.phase.name(),
                expected.name(),
                sim.faults
            ));
        }
        let comparable = !sim.restarted || !record.had_gap;
        if record.phase == Phase::Succeeded
            && comparable
            && !same_outputs(&record.outputs, &p.record.outputs.to_map())
        {
            tally.violations.push(format!(
                "{prefix}: {id} succeeded with outputs {:?}, the server has {:?} (faults {:?})",
                record.outputs.keys().collect::<Vec<_>>(),
                p.record.outputs.keys().collect::<Vec<_>>(),
                sim.faults
            ));
        }
    }
    tally.sample_rss();
    tally
}
