//! Random interleavings of the recorded traces' frames with disconnects,
//! refused connects, deaf sockets, restarts, duplicates, re-delivery and
//! failing HTTP, fed into `Session` directly. `COMFYWIRE_SANSIO_CASES`
//! sets the count (500 by default); `COMFYWIRE_SEED` replays one.

use comfywire_faults::prng::seeds;
use comfywire_faults::sansio::{load_cases, repo_traces, run_case};
use comfywire_faults::tally::Tally;

#[test]
fn interleavings_of_recorded_frames_keep_every_invariant() {
    let cases = load_cases(&repo_traces());
    assert!(
        cases.len() >= 8,
        "traces not found under {:?}",
        repo_traces()
    );
    let count = std::env::var("COMFYWIRE_SANSIO_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let mut tally = Tally::default();
    for seed in seeds(0xAB5E_0000, count) {
        let case = &cases[(seed % cases.len() as u64) as usize];
        tally.merge(run_case(case, seed));
    }
    println!("{tally}");
    for v in &tally.violations {
        println!("VIOLATION {v}");
    }
    tally.assert_clean();
}
