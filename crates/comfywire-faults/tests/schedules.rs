//! Random fault schedules against the real client and the mock. The quick
//! slice (50 schedules) runs with `cargo test`; `COMFYWIRE_SCHEDULES=1000`
//! is the long mode; `COMFYWIRE_SEED=<seed>` replays one schedule.

use std::time::Instant;

use comfywire_faults::prng::{schedule_count, seeds};
use comfywire_faults::run::{RunOptions, run_many};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_prompt_ends_exactly_once_under_random_faults() {
    let count = schedule_count(50);
    let seeds = seeds(0x5EED_0000, count);
    let parallel = std::env::var("COMFYWIRE_PARALLEL")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let started = Instant::now();
    let tally = run_many(&seeds, parallel, &RunOptions::default()).await;
    println!(
        "{} schedules in {:.1} s\n{tally}",
        seeds.len(),
        started.elapsed().as_secs_f64()
    );
    for v in &tally.violations {
        println!("VIOLATION {v}");
    }
    assert_eq!(tally.duplicates, 0);
    tally.assert_clean();
}
