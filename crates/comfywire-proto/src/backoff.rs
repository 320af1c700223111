//! Exponential reconnect backoff: 1 s, 2 s, 4 s, ... capped, with optional
//! jitter drawn from the session's seeded generator.

use std::time::Duration;

use crate::rng::Rng;

/// Backoff settings.
#[derive(Debug, Clone, PartialEq)]
pub struct BackoffConfig {
    /// Delay before the first retry.
    pub initial: Duration,
    /// Growth factor per consecutive failure.
    pub multiplier: f64,
    /// Upper bound of any delay.
    pub max: Duration,
    /// Jitter as a fraction of the delay (0 = none, 0.2 = ±20 %).
    pub jitter: f64,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            initial: Duration::from_secs(1),
            multiplier: 2.0,
            max: Duration::from_secs(30),
            jitter: 0.0,
        }
    }
}

impl BackoffConfig {
    /// The delay before retry number `failures` (1 = after the first
    /// failure). The result never exceeds `max`, jitter included.
    pub fn delay(&self, failures: u32, rng: &mut Rng) -> Duration {
        let exponent = failures.saturating_sub(1).min(64) as i32;
        let base = self.initial.as_secs_f64() * self.multiplier.max(1.0).powi(exponent);
        let capped = base.min(self.max.as_secs_f64());
        let jitter = self.jitter.clamp(0.0, 1.0);
        let factor = if jitter > 0.0 {
            1.0 - jitter + 2.0 * jitter * rng.next_f64()
        } else {
            1.0
        };
        Duration::from_secs_f64((capped * factor).clamp(0.0, self.max.as_secs_f64()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap() {
        let config = BackoffConfig::default();
        let mut rng = Rng::new(1);
        let secs: Vec<u64> = (1..=8)
            .map(|n| config.delay(n, &mut rng).as_secs())
            .collect();
        assert_eq!(secs, vec![1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(config.delay(u32::MAX, &mut rng), Duration::from_secs(30));
    }

    #[test]
    fn jitter_stays_in_band_and_is_seeded() {
        let config = BackoffConfig {
            jitter: 0.25,
            ..BackoffConfig::default()
        };
        let draw = |seed| {
            let mut rng = Rng::new(seed);
            (1..=6)
                .map(|n| config.delay(n, &mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
        for (n, d) in (1..=6).zip(draw(3)) {
            let base = BackoffConfig::default()
                .delay(n, &mut Rng::new(0))
                .as_secs_f64();
            let got = d.as_secs_f64();
            assert!(
                got >= base * 0.75 - 1e-9 && got <= (base * 1.25).min(30.0) + 1e-9,
                "{n}: {got}"
            );
        }
    }
}
