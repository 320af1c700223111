//! Session options as JavaScript passes them (camelCase, milliseconds),
//! checked and turned into a [`SessionConfig`].

use std::time::Duration;

use comfywire_proto::{BackoffConfig, SessionConfig};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::CoreError;

/// Reconnect backoff, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackoffOptions {
    /// Delay before the first retry (default 1000).
    pub initial_ms: Option<f64>,
    /// Growth per consecutive failure (default 2).
    pub multiplier: Option<f64>,
    /// Upper bound of any delay (default 30000).
    pub max_ms: Option<f64>,
    /// Jitter as a fraction of the delay, 0..=1 (default 0).
    pub jitter: Option<f64>,
}

/// Every tunable of the session; an absent key keeps the core's default.
/// Durations are milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionOptions {
    /// The `clientId`; absent adopts the sid the server assigns.
    pub client_id: Option<String>,
    /// Reconnect backoff.
    pub backoff: Option<BackoffOptions>,
    /// Seed of the jitter generator (an integer below 2^53).
    pub seed: Option<f64>,
    /// A connection up this long resets the backoff.
    pub stable_after_ms: Option<f64>,
    /// Consecutive failed connects before polling over HTTP.
    pub polling_after_failures: Option<u32>,
    /// HTTP poll interval while polling.
    pub poll_interval_ms: Option<f64>,
    /// Liveness check interval while connected (the driver turns the
    /// session's ping into a last-frame check plus an HTTP probe).
    pub ping_interval_ms: Option<f64>,
    /// How long a liveness check may go unanswered.
    pub pong_timeout_ms: Option<f64>,
    /// Silence while one of our prompts runs before reconciling and
    /// replacing the socket; `null` disables the watchdog.
    #[serde(default, deserialize_with = "nullable")]
    pub deaf_timeout_ms: Option<Option<f64>>,
    /// Progress throttle window (16 by default).
    pub progress_interval_ms: Option<f64>,
    /// Preview throttle window (50 by default).
    pub preview_interval_ms: Option<f64>,
    /// Finished executions kept (100 by default).
    pub history_capacity: Option<u32>,
    /// Other clients' in-flight prompts kept.
    pub max_foreign_prompts: Option<u32>,
    /// Delay before re-checking a prompt found nowhere.
    pub lost_recheck_ms: Option<f64>,
    /// Feature flags sent first on every socket (replaces the default).
    pub feature_flags: Option<Map<String, Value>>,
}

/// Tells "key absent" from "key present with `null`".
fn nullable<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<f64>>, D::Error> {
    Option::<f64>::deserialize(d).map(Some)
}

fn millis(name: &str, value: f64) -> Result<Duration, CoreError> {
    if !(value.is_finite() && value >= 0.0) {
        return Err(CoreError::InvalidOptions {
            message: format!("`{name}` must be a finite number of milliseconds >= 0, got {value}"),
        });
    }
    Duration::try_from_secs_f64(value / 1000.0).map_err(|e| CoreError::InvalidOptions {
        message: format!("`{name}`: {e}"),
    })
}

fn set_millis(target: &mut Duration, name: &str, value: Option<f64>) -> Result<(), CoreError> {
    if let Some(value) = value {
        *target = millis(name, value)?;
    }
    Ok(())
}

impl SessionOptions {
    /// Reads options from their JSON text.
    pub fn from_json(text: &str) -> Result<SessionOptions, CoreError> {
        serde_json::from_str(text).map_err(|e| CoreError::InvalidOptions {
            message: e.to_string(),
        })
    }

    /// The core's configuration, or what is wrong with the options.
    pub fn into_config(self) -> Result<SessionConfig, CoreError> {
        let mut config = SessionConfig {
            client_id: self.client_id.filter(|id| !id.is_empty()),
            ..SessionConfig::default()
        };
        if let Some(backoff) = self.backoff {
            let mut b = BackoffConfig::default();
            set_millis(&mut b.initial, "backoff.initialMs", backoff.initial_ms)?;
            set_millis(&mut b.max, "backoff.maxMs", backoff.max_ms)?;
            if let Some(m) = backoff.multiplier {
                if !(m.is_finite() && m >= 1.0) {
                    return Err(CoreError::InvalidOptions {
                        message: format!("`backoff.multiplier` must be >= 1, got {m}"),
                    });
                }
                b.multiplier = m;
            }
            if let Some(j) = backoff.jitter {
                if !(0.0..=1.0).contains(&j) {
                    return Err(CoreError::InvalidOptions {
                        message: format!("`backoff.jitter` must be in 0..=1, got {j}"),
                    });
                }
                b.jitter = j;
            }
            config.backoff = b;
        }
        if let Some(seed) = self.seed {
            if !(seed.is_finite() && seed >= 0.0 && seed.fract() == 0.0 && seed < 9.007e15) {
                return Err(CoreError::InvalidOptions {
                    message: format!("`seed` must be an integer in 0..2^53, got {seed}"),
                });
            }
            config.seed = seed as u64;
        }
        set_millis(
            &mut config.stable_after,
            "stableAfterMs",
            self.stable_after_ms,
        )?;
        if let Some(n) = self.polling_after_failures {
            config.polling_after_failures = n.max(1);
        }
        set_millis(
            &mut config.poll_interval,
            "pollIntervalMs",
            self.poll_interval_ms,
        )?;
        set_millis(
            &mut config.ping_interval,
            "pingIntervalMs",
            self.ping_interval_ms,
        )?;
        set_millis(
            &mut config.pong_timeout,
            "pongTimeoutMs",
            self.pong_timeout_ms,
        )?;
        match self.deaf_timeout_ms {
            None => {}
            Some(None) => config.deaf_timeout = None,
            Some(Some(ms)) => config.deaf_timeout = Some(millis("deafTimeoutMs", ms)?),
        }
        set_millis(
            &mut config.progress_interval,
            "progressIntervalMs",
            self.progress_interval_ms,
        )?;
        set_millis(
            &mut config.preview_interval,
            "previewIntervalMs",
            self.preview_interval_ms,
        )?;
        if let Some(n) = self.history_capacity {
            config.history_capacity = n as usize;
        }
        if let Some(n) = self.max_foreign_prompts {
            config.max_foreign_prompts = n as usize;
        }
        set_millis(
            &mut config.lost_recheck,
            "lostRecheckMs",
            self.lost_recheck_ms,
        )?;
        if let Some(flags) = self.feature_flags {
            config.feature_flags = flags;
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<SessionConfig, CoreError> {
        SessionOptions::from_json(json)?.into_config()
    }

    #[test]
    fn empty_options_are_the_core_defaults() {
        assert_eq!(parse("{}"), Ok(SessionConfig::default()));
    }

    #[test]
    fn milliseconds_and_null_watchdog() {
        let config = parse(
            r#"{"pingIntervalMs": 250, "deafTimeoutMs": null, "backoff": {"initialMs": 50, "jitter": 0.2}}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.ping_interval, Duration::from_millis(250));
        assert_eq!(config.deaf_timeout, None);
        assert_eq!(config.backoff.initial, Duration::from_millis(50));
        assert!((config.backoff.jitter - 0.2).abs() < 1e-12);
    }

    #[test]
    fn bad_values_are_typed_errors() {
        for bad in [
            r#"{"pingIntervalMs": -1}"#,
            r#"{"backoff": {"multiplier": 0.5}}"#,
            r#"{"backoff": {"jitter": 2}}"#,
            r#"{"seed": 1.5}"#,
            r#"{"pollIntervalMs": 1e300}"#,
            r#"{"noSuchKey": 1}"#,
        ] {
            let error = parse(bad).expect_err(bad);
            assert_eq!(error.code(), "invalid_options", "{bad}");
        }
    }
}
