//! Random fault schedules against the real client and the mock server:
//! what a schedule is, and how one is drawn from a seed.

use std::time::Duration;

use comfywire_mock::Fault;
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
            Action::Mock(fault) => {
                let text = format!("{fault:?}");
                text.split([' ', '{', '(']).next().unwrap_or("").to_owned()
            }
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

/// Everything one schedule does; a pure function of its seed.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// The seed it was drawn from.
    pub seed: u64,
    /// Mock playback speed.
    pub speed: f64,
    /// Clients talk through the byte-level proxy.
    pub proxied: bool,
    /// Per client: the scenarios it submits, in order.
    pub clients: Vec<Vec<&'static str>>,
    /// Delay before each client starts submitting.
    pub submit_delay: Duration,
    /// Faults, fired in order.
    pub steps: Vec<Step>,
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

impl Schedule {
    /// Draws a schedule from `seed`.
    pub fn generate(seed: u64) -> Schedule {
        let mut rng = Prng::new(seed);
        let speed = *rng.pick(&[10.0, 20.0, 30.0, 50.0]);
        let proxied = rng.chance(0.4);
        let client_count = *rng.pick(&[1, 1, 1, 2, 2, 3]);
        let clients = (0..client_count)
            .map(|_| {
                let prompts = rng.range(1, 4);
                (0..prompts).map(|_| *rng.pick(&SCENARIOS)).collect()
            })
            .collect();
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
        }
    }

    /// Prompts the schedule submits.
    pub fn prompt_count(&self) -> usize {
        self.clients.iter().map(Vec::len).sum()
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
            // which only proves the deadline works (seed 1592590350).
            1 => Action::Pace(Pace {
                chunk: rng.range(1024, 16384) as usize,
                delay: Duration::from_millis(rng.range(0, 2)),
            }),
            _ => Action::ProxyStall(rng.range(50, 600)),
        };
    }
    Action::Mock(match rng.range(0, 16) {
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
        _ => Fault::DropSocketsAfterFrames {
            frames: rng.range(60, 300) as u32,
        },
    })
}
