//! Random fault schedules against the real client and the mock, checked
//! against the mock's ledger of what it really enqueued and ran. The quick
//! slice (50 random schedules, plus one schedule built around each fault
//! kind that puts a submission in doubt, at fixed seeds) runs with
//! `cargo test`; `COMFYWIRE_SCHEDULES=1000` is the long mode;
//! `COMFYWIRE_SEED=<seed>` replays one schedule (in either test).

use std::time::Instant;

use comfywire_faults::prng::{replay_seed, schedule_count, seeds};
use comfywire_faults::run::{RunOptions, run_many, run_schedule};
use comfywire_faults::schedule::{FOCUSES, Focus, Schedule};
use comfywire_faults::tally::Tally;
use comfywire_mock::{CutAt, Fault};

fn parallel() -> usize {
    std::env::var("COMFYWIRE_PARALLEL")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_prompt_ends_exactly_once_under_random_faults() {
    let count = schedule_count(50);
    let seeds = seeds(0x5EED_0000, count);
    let started = Instant::now();
    let tally = run_many(&seeds, parallel(), &RunOptions::default()).await;
    println!(
        "{} schedules in {:.1} s\n{tally}",
        seeds.len(),
        started.elapsed().as_secs_f64()
    );
    for v in &tally.violations {
        println!("VIOLATION {v}");
    }
    tally.assert_clean();
}

/// Seeds are searched from here; the picks are a pure function of the
/// generator, so the slice is the same on every run.
const FOCUS_BASE: u64 = 0xF0C5_0000;

/// The quick slice's picks: each kind at least once, and both sides of the
/// kinds that have two.
fn picks() -> Vec<(String, u64)> {
    let armed = |s: &Schedule, f: &dyn Fn(&Fault) -> bool| {
        s.clients.iter().flatten().any(|p| p.armed.iter().any(f))
    };
    let cut_at = |at: CutAt| {
        move |s: &Schedule| {
            armed(
                s,
                &|f| matches!(f, Fault::CutPromptReply { at: a } if *a == at),
            )
        }
    };
    let fails_first = |s: &Schedule| {
        s.clients[0][0].scenario == "execution_error"
            || s.clients[0][0]
                .armed
                .iter()
                .any(|f| matches!(f, Fault::FailNextPrompt))
    };
    let mut picks = Vec::new();
    let mut pick = |label: &str, focus: Focus, also: &dyn Fn(&Schedule) -> bool| {
        picks.push((
            label.to_owned(),
            Schedule::first_seed_with(focus, FOCUS_BASE, also),
        ));
    };
    for focus in FOCUSES {
        match focus {
            Focus::CutPromptReply => {
                pick("CutPromptReply (in the body)", focus, &cut_at(CutAt::Body));
                pick(
                    "CutPromptReply (before the headers)",
                    focus,
                    &cut_at(CutAt::Headers),
                );
            }
            Focus::CorruptTerminalFrame => {
                pick("CorruptTerminalFrame (execution_success)", focus, &|s| {
                    !fails_first(s)
                });
                pick(
                    "CorruptTerminalFrame (execution_error)",
                    focus,
                    &fails_first,
                );
            }
            _ => pick(focus.name(), focus, &|_| true),
        }
    }
    picks
}

/// Whether the kind did what it is there for in this schedule.
fn took_effect(focus: Focus, tally: &Tally) -> bool {
    let effect = |name: &str| tally.effects.get(name).is_some_and(|n| *n > 0);
    match focus {
        Focus::CutPromptReply => effect("prompt replies cut"),
        Focus::DelayPromptReply => effect("prompt replies delayed"),
        Focus::IgnoreClientPromptId => effect("prompt ids replaced"),
        Focus::SubmitCancelled => tally.cancelled.0 > 0,
        Focus::CorruptTerminalFrame => effect("terminal frames corrupted"),
        Focus::HistoryUnreadable => tally.faults.contains_key(focus.name()),
        Focus::KilledAndResumed => tally.kills > 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_submission_fault_kind_is_accounted_for() {
    let picks: Vec<(String, u64)> = match replay_seed() {
        // A replay: that seed alone, if it is built around a kind.
        Some(seed) => Schedule::generate(seed)
            .focus
            .map(|f| (f.name().to_owned(), seed))
            .into_iter()
            .collect(),
        None => picks(),
    };
    let started = Instant::now();
    let options = RunOptions::default();
    let mut running = tokio::task::JoinSet::new();
    for (label, seed) in picks.iter().cloned() {
        let options = options.clone();
        running.spawn(async move {
            let schedule = Schedule::generate(seed);
            let tally = run_schedule(&schedule, &options).await;
            (label, schedule, tally)
        });
    }
    let mut results = Vec::new();
    while let Some(joined) = running.join_next().await {
        match joined {
            Ok(result) => results.push(result),
            Err(e) => panic!("a schedule panicked: {e}"),
        }
    }
    results.sort_by_key(|(label, schedule, _)| (schedule.focus, label.clone()));
    let mut total = Tally::default();
    println!("| kind | replay | result |\n|---|---|---|");
    for (label, schedule, mut tally) in results {
        let seed = schedule.seed;
        let Some(focus) = schedule.focus else {
            continue;
        };
        if !took_effect(focus, &tally) {
            tally.violations.push(format!(
                "seed {seed} [{}]: the fault took no effect (faults {:?}, effects {:?})",
                focus.name(),
                tally.faults,
                tally.effects
            ));
        }
        let result = match tally.violations.len() {
            0 => "ok".to_owned(),
            n => format!("{n} violation(s)"),
        };
        println!("| {label} | COMFYWIRE_SEED={seed} | {result} |");
        total.merge(tally);
    }
    println!(
        "{} schedules in {:.1} s\n{total}",
        picks.len(),
        started.elapsed().as_secs_f64()
    );
    for v in &total.violations {
        println!("VIOLATION {v}");
    }
    total.assert_clean();
}
