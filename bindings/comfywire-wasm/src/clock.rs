//! The session's clock from JavaScript milliseconds (`performance.now()`)
//! and back.

use std::time::Duration;

use web_time::Instant;

/// Maps a JavaScript millisecond clock onto `Instant`s. Readings never go
/// backwards: an earlier, non-finite or unrepresentable reading counts as
/// the latest good one.
#[derive(Debug, Clone)]
pub(crate) struct Clock {
    origin: Instant,
    origin_ms: f64,
    latest_ms: f64,
    latest: Instant,
}

impl Clock {
    /// A clock whose reading `now_ms` is the moment of construction.
    pub(crate) fn new(now_ms: f64) -> Clock {
        let origin_ms = if now_ms.is_finite() { now_ms } else { 0.0 };
        let origin = Instant::now();
        Clock {
            origin,
            origin_ms,
            latest_ms: origin_ms,
            latest: origin,
        }
    }

    /// The instant of a reading.
    pub(crate) fn instant(&mut self, now_ms: f64) -> Instant {
        if now_ms.is_finite() && now_ms > self.latest_ms {
            let at = Duration::try_from_secs_f64((now_ms - self.origin_ms) / 1000.0)
                .ok()
                .and_then(|offset| self.origin.checked_add(offset));
            if let Some(at) = at {
                self.latest_ms = now_ms;
                self.latest = at;
            }
        }
        self.latest
    }

    /// The reading of an instant.
    pub(crate) fn millis(&self, at: Instant) -> f64 {
        self.origin_ms + at.saturating_duration_since(self.origin).as_secs_f64() * 1000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_never_goes_back() {
        let mut clock = Clock::new(1000.0);
        let a = clock.instant(1500.0);
        assert!((clock.millis(a) - 1500.0).abs() < 1e-6);
        let b = clock.instant(1200.0);
        assert_eq!(a, b);
        let c = clock.instant(f64::NAN);
        assert_eq!(a, c);
        let d = clock.instant(1e300);
        assert_eq!(a, d);
        let e = clock.instant(2500.0);
        assert!((clock.millis(e) - 2500.0).abs() < 1e-6);
    }
}
