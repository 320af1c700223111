//! Random fault schedules against the real client and the mock server:
//! what a schedule is, and how one is drawn from a seed.

use std::collections::BTreeSet;
use std::time::Duration;

use comfywire_mock::{CutAt, Fault};
use comfywire_proto::EventKind;

use crate::prng::Prng;
use crate::proxy::Pace;

/// When a fault fires.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// This long after the previous fault (or the start).
    After(Duration),
    /// When the watched client next sees an event of this kind, e.g.
    /// between `execution_start` and the first progress, mid-progress, or
    /// between `executed` and the terminal message.
    OnEvent(EventKind),
    /// When the watched client's socket comes back, i.e. while it
    /// reconciles.
    OnReconnect,
}

/// What a fault does.
#[derive(Debug, Clone)]
pub enum Action {
    /// One of the mock's own faults.
    Mock(Fault),
    /// Cut every proxied connection after this many more bytes.
    Cut(u64),
    /// Pace proxied server-to-client bytes (slow link).
    Pace(Pace),
    /// Hold proxied server-to-client bytes this long.
    ProxyStall(u64),
}

impl Action {
    /// A short name for tallies.
    pub fn name(&self) -> String {
        match self {
            Action::Mock(fault) => fault_name(fault),
            Action::Cut(_) => "ProxyCut".into(),
            Action::Pace(_) => "SlowLink".into(),
            Action::ProxyStall(_) => "ProxyStall".into(),
        }
    }
}

/// One scheduled fault.
#[derive(Debug, Clone)]
pub struct Step {
    /// When.
    pub trigger: Trigger,
    /// What.
    pub action: Action,
}

/// The fault kinds that put a submission itself in doubt; the quick slice
/// runs at least one schedule built around each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Focus {
    /// The `POST /prompt` answer is cut after the server enqueued.
    CutPromptReply,
    /// The answer comes after the client's request timeout.
    DelayPromptReply,
    /// The server enqueues under its own id.
    IgnoreClientPromptId,
    /// The submit future is dropped before, during or after the POST.
    SubmitCancelled,
    /// A terminal frame arrives as broken JSON.
    CorruptTerminalFrame,
    /// `/history/{id}` answers 500 for a prompt the client needs to settle.
    HistoryUnreadable,
    /// The client process is killed mid-run and restarted with its journal.
    KilledAndResumed,
}

/// Every [`Focus`], in a fixed order.
pub const FOCUSES: [Focus; 7] = [
    Focus::CutPromptReply,
    Focus::DelayPromptReply,
    Focus::IgnoreClientPromptId,
    Focus::SubmitCancelled,
    Focus::CorruptTerminalFrame,
    Focus::HistoryUnreadable,
    Focus::KilledAndResumed,
];

impl Focus {
    /// The name used in tallies (a mock fault's own name where there is one).
    pub fn name(self) -> &'static str {
        match self {
            Focus::CutPromptReply => "CutPromptReply",
            Focus::DelayPromptReply => "DelayPromptReply",
            Focus::IgnoreClientPromptId => "IgnoreClientPromptId",
            Focus::SubmitCancelled => "SubmitCancelled",
            Focus::CorruptTerminalFrame => "CorruptTerminalFrame",
            Focus::HistoryUnreadable => "HistoryUnreadable",
            Focus::KilledAndResumed => "KilledAndResumed",
        }
    }
}

/// One submission of one client.
#[derive(Debug, Clone)]
pub struct Submit {
    /// The recorded scenario whose workflow it submits.
    pub scenario: &'static str,
    /// The prompt id it asks for (uuid-shaped, drawn from the seed).
    pub prompt_id: String,
    /// Mock faults injected right before the call; they act on the next
    /// `POST /prompt`, the next enqueued prompt or the next terminal frame.
    pub armed: Vec<Fault>,
    /// Drop the submit future this long after calling it.
    pub cancel_after: Option<Duration>,
}

/// Everything one schedule does; a pure function of its seed.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// The seed it was drawn from.
    pub seed: u64,
    /// Mock playback speed.
    pub speed: f64,
    /// Clients talk through the byte-level proxy.
    pub proxied: bool,
    /// Per client: its submissions, in order.
    pub clients: Vec<Vec<Submit>>,
    /// Delay before each client starts submitting.
    pub submit_delay: Duration,
    /// Faults, fired in order.
    pub steps: Vec<Step>,
    /// Kill client 0's process when this fires (counted from when it
    /// starts submitting; events are its own), then start it again from
    /// its journal.
    pub kill: Option<Trigger>,
    /// The kind the schedule is built around, if any.
    pub focus: Option<Focus>,
}

/// Scenarios a schedule submits (their recorded workflows).
pub const SCENARIOS: [&str; 7] = [
    "success_single",
    "long_run",
    "execution_error",
    "preview_metadata",
    "cached_rerun",
    "queue_three",
    "big_output",
];

const EVENT_TRIGGERS: [EventKind; 6] = [
    EventKind::PromptQueued,
    EventKind::ExecutionStarted,
    EventKind::NodeStarted,
    EventKind::Progress,
    EventKind::Output,
    EventKind::NodeFinished,
];

/// The client's request timeout in the schedules (see `run::client_config`);
/// a reply held longer than this is one the client gives up on.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

impl Schedule {
    /// Draws a schedule from `seed`: about a third are built around one
    /// [`Focus`], the rest mix every fault.
    pub fn generate(seed: u64) -> Schedule {
        let mut rng = Prng::new(seed);
        let speed = *rng.pick(&[10.0, 20.0, 30.0, 50.0]);
        if rng.chance(0.3) {
            let focus = *rng.pick(&FOCUSES);
            return focused(seed, rng, speed, focus);
        }
        mixed(seed, rng, speed)
    }

    /// The first seed from `base` on whose schedule is built around
    /// `focus` and passes `also`.
    pub fn first_seed_with(focus: Focus, base: u64, also: impl Fn(&Schedule) -> bool) -> u64 {
        (base..)
            .find(|&seed| {
                let schedule = Schedule::generate(seed);
                schedule.focus == Some(focus) && also(&schedule)
            })
            .unwrap_or(base)
    }

    /// Prompts the schedule submits.
    pub fn prompt_count(&self) -> usize {
        self.clients.iter().map(Vec::len).sum()
    }

    /// The names of every fault it can inject (armed, stepped, cancels and
    /// kills), sorted.
    pub fn kinds(&self) -> BTreeSet<String> {
        let mut kinds: BTreeSet<String> = self.steps.iter().map(|s| s.action.name()).collect();
        for submit in self.clients.iter().flatten() {
            kinds.extend(submit.armed.iter().map(fault_name));
            if submit.cancel_after.is_some() {
                kinds.insert(Focus::SubmitCancelled.name().into());
            }
        }
        if self.kill.is_some() {
            kinds.insert(Focus::KilledAndResumed.name().into());
        }
        kinds
    }
}

/// A mock fault's variant name.
pub fn fault_name(fault: &Fault) -> String {
    let text = format!("{fault:?}");
    text.split([' ', '{', '(']).next().unwrap_or("").to_owned()
}

/// A uuid4-shaped prompt id drawn from `rng`.
fn prompt_id(rng: &mut Prng) -> String {
    let a = rng.next_u64();
    let b = rng.next_u64();
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        ((b >> 48) & 0x3fff) | 0x8000,
        b & 0xffff_ffff_ffff
    )
}

fn submit(rng: &mut Prng) -> Submit {
    let scenario: &'static str = SCENARIOS[rng.range(0, SCENARIOS.len() as u64) as usize];
    Submit {
        scenario,
        prompt_id: prompt_id(rng),
        armed: Vec::new(),
        cancel_after: None,
    }
}

fn submits(rng: &mut Prng, lo: u64, hi: u64) -> Vec<Submit> {
    (0..rng.range(lo, hi)).map(|_| submit(rng)).collect()
}

/// A reply held past the client's request timeout.
fn late_reply(rng: &mut Prng) -> Fault {
    let timeout = REQUEST_TIMEOUT.as_millis() as u64;
    Fault::DelayPromptReply {
        millis: rng.range(timeout + 300, timeout + 1300),
    }
}

fn cut_reply(rng: &mut Prng) -> Fault {
    Fault::CutPromptReply {
        at: if rng.chance(0.5) {
            CutAt::Body
        } else {
            CutAt::Headers
        },
    }
}

/// One client, one to three submissions, one fault kind and what it needs.
fn focused(seed: u64, mut rng: Prng, speed: f64, focus: Focus) -> Schedule {
    let mut plan = submits(&mut rng, 1, 4);
    let k = rng.range(0, plan.len() as u64) as usize;
    let mut steps = Vec::new();
    let mut kill = None;
    match focus {
        Focus::CutPromptReply => plan[k].armed.push(cut_reply(&mut rng)),
        Focus::DelayPromptReply => plan[k].armed.push(late_reply(&mut rng)),
        Focus::IgnoreClientPromptId => plan[0].armed.push(Fault::IgnoreClientPromptId),
        Focus::SubmitCancelled => {
            // The answer is held, so the cancel lands before the POST
            // (near 0), while it is in flight, or while the answer waits.
            let held = rng.range(40, 300);
            plan[k].armed.push(Fault::DelayPromptReply { millis: held });
            plan[k].cancel_after = Some(Duration::from_millis(rng.range(0, held - 20)));
        }
        Focus::CorruptTerminalFrame => {
            // On the first prompt, whose end is the first terminal frame;
            // half the time that is `execution_error`.
            if rng.chance(0.5) {
                plan[0].armed.push(Fault::FailNextPrompt);
            }
            plan[0].armed.push(Fault::CorruptTerminalFrame);
        }
        Focus::HistoryUnreadable => {
            // The first prompt's history is unreadable, and the client
            // misses how it ended: only /history can tell it.
            plan[0]
                .armed
                .push(Fault::HistoryUnreadable { prompt_id: None });
            match rng.range(0, 3) {
                0 => steps.push(Step {
                    trigger: Trigger::OnEvent(EventKind::ExecutionStarted),
                    action: Action::Mock(Fault::Deaf),
                }),
                1 => steps.push(Step {
                    trigger: Trigger::OnEvent(EventKind::Progress),
                    action: Action::Mock(Fault::DropSocketsNow),
                }),
                _ => plan[0].armed.push(Fault::CorruptTerminalFrame),
            }
        }
        Focus::KilledAndResumed => kill = Some(kill_trigger(&mut rng)),
    }
    Schedule {
        seed,
        // Slow enough that the kill finds prompts in flight.
        speed: if focus == Focus::KilledAndResumed {
            10.0
        } else {
            speed
        },
        proxied: false,
        clients: vec![plan],
        submit_delay: Duration::from_millis(rng.range(0, 120)),
        steps,
        kill,
        focus: Some(focus),
    }
}

/// Up to three clients, any faults, now and then a doubtful submission.
fn mixed(seed: u64, mut rng: Prng, speed: f64) -> Schedule {
    let proxied = rng.chance(0.4);
    let client_count = *rng.pick(&[1, 1, 1, 2, 2, 3]);
    let mut clients: Vec<Vec<Submit>> =
        (0..client_count).map(|_| submits(&mut rng, 1, 4)).collect();
    for submit in clients.iter_mut().flatten() {
        if rng.chance(0.08) {
            let fault = match rng.range(0, 5) {
                0 => cut_reply(&mut rng),
                1 => late_reply(&mut rng),
                2 => Fault::DelayPromptReply {
                    millis: rng.range(20, 300),
                },
                3 => Fault::CorruptTerminalFrame,
                _ => Fault::HistoryUnreadable { prompt_id: None },
            };
            submit.armed.push(fault);
        }
        if rng.chance(0.05) {
            submit.cancel_after = Some(Duration::from_millis(rng.range(0, 30)));
        }
    }
    if rng.chance(0.05) {
        clients[0][0].armed.push(Fault::IgnoreClientPromptId);
    }
    let kill = rng.chance(0.04).then(|| kill_trigger(&mut rng));
    let submit_delay = Duration::from_millis(rng.range(0, 120));
    let step_count = rng.range(1, 5);
    let steps = (0..step_count)
        .map(|_| Step {
            trigger: trigger(&mut rng),
            action: action(&mut rng, proxied),
        })
        .collect();
    Schedule {
        seed,
        speed,
        proxied,
        clients,
        submit_delay,
        steps,
        kill,
        focus: None,
    }
}

/// When to kill a client process: soon after it starts, once its first
/// prompt is queued, running or mid-progress.
fn kill_trigger(rng: &mut Prng) -> Trigger {
    match rng.range(0, 4) {
        0 => Trigger::After(Duration::from_millis(rng.range(0, 300))),
        1 => Trigger::OnEvent(EventKind::PromptQueued),
        2 => Trigger::OnEvent(EventKind::ExecutionStarted),
        _ => Trigger::OnEvent(EventKind::Progress),
    }
}

fn trigger(rng: &mut Prng) -> Trigger {
    match rng.range(0, 10) {
        0..=3 => Trigger::After(Duration::from_millis(rng.range(0, 400))),
        4..=8 => Trigger::OnEvent(*rng.pick(&EVENT_TRIGGERS)),
        _ => Trigger::OnReconnect,
    }
}

fn action(rng: &mut Prng, proxied: bool) -> Action {
    if proxied && rng.chance(0.4) {
        return match rng.range(0, 3) {
            0 => Action::Cut(rng.range(0, 4000)),
            // At least ~1 MB/s: a slower link cannot carry the 2 MB
            // `big_output` history answer within the 3 s request timeout,
            // which only proves the deadline works.
            1 => Action::Pace(Pace {
                chunk: rng.range(1024, 16384) as usize,
                delay: Duration::from_millis(rng.range(0, 2)),
            }),
            _ => Action::ProxyStall(rng.range(50, 600)),
        };
    }
    Action::Mock(match rng.range(0, 17) {
        0 | 1 => Fault::DropSocketsNow,
        2 | 3 => Fault::DropSocketsAfterFrames {
            frames: rng.range(1, 60) as u32,
        },
        4 => Fault::Stall {
            millis: rng.range(50, 600),
        },
        5 => Fault::Deaf,
        6 => Fault::Restart,
        7 => Fault::RefuseConnects {
            count: rng.range(1, 7) as u32,
        },
        8 => Fault::Garbage,
        9 => Fault::TruncatedBinary,
        10 => Fault::UnknownType,
        11 => Fault::UnknownBinary,
        12 => Fault::Oversize {
            bytes: rng.range(1 << 20, 3 << 20) as usize,
        },
        13 => Fault::FailNextPrompt,
        14 => Fault::ValidationErrorNextPrompt,
        15 => Fault::CorruptTerminalFrame,
        _ => Fault::DropSocketsAfterFrames {
            frames: rng.range(60, 300) as u32,
        },
    })
}
