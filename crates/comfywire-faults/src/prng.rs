//! Seeded choices for schedules, drawn from `comfywire-proto`'s SplitMix64
//! ([`Rng`]): every schedule is a pure function of its seed, so a failing
//! seed replays exactly (`COMFYWIRE_SEED=...`).

use comfywire_proto::Rng;

/// Ranges, coin flips and picks over a seeded [`Rng`].
#[derive(Debug, Clone)]
pub struct Prng(Rng);

impl Prng {
    /// A generator for `seed` (mixed first, so that seeds 0, 1, 2… do not
    /// start the sequence at its very beginning).
    pub fn new(seed: u64) -> Prng {
        Prng(Rng::new(seed ^ 0x9E37_79B9_7F4A_7C15))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in `lo..hi` (`lo` when the range is empty).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + self.next_u64() % (hi - lo)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.0.next_f64() <= p
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.range(0, items.len() as u64) as usize]
    }
}

/// `COMFYWIRE_SEED`, when set: the one seed to replay.
pub fn replay_seed() -> Option<u64> {
    std::env::var("COMFYWIRE_SEED")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
}

/// Seeds to run: `COMFYWIRE_SEED` alone when set (replay), else `count`
/// seeds derived from `base`.
pub fn seeds(base: u64, count: u64) -> Vec<u64> {
    if let Some(seed) = replay_seed() {
        return vec![seed];
    }
    (0..count).map(|i| base.wrapping_add(i)).collect()
}

/// `COMFYWIRE_SCHEDULES` when set, else `default`.
pub fn schedule_count(default: u64) -> u64 {
    std::env::var("COMFYWIRE_SCHEDULES")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(default)
}
