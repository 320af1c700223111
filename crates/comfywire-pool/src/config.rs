//! Which servers a pool spreads over, and its failover knobs.

use std::time::Duration;

use comfywire_client::{ClientConfig, Settings};

use crate::PoolError;

/// One server of a pool.
#[derive(Debug, Clone)]
pub struct ServerSpec {
    /// How the pool names it in events, outcomes and stats.
    pub label: String,
    /// Its share of the work relative to the others (a server of weight 2
    /// gets about twice the prompts of one of weight 1).
    pub weight: f64,
    /// Its client's configuration (URL, auth, timeouts).
    pub config: ClientConfig,
}

impl ServerSpec {
    /// A server at `url`, weight 1, labelled by its `host:port`.
    pub fn new(url: impl Into<String>) -> ServerSpec {
        let url = url.into();
        let label = url
            .split("://")
            .nth(1)
            .unwrap_or(&url)
            .split('/')
            .next()
            .unwrap_or(&url)
            .rsplit('@')
            .next()
            .unwrap_or(&url)
            .to_owned();
        ServerSpec {
            label,
            weight: 1.0,
            config: ClientConfig::new(url),
        }
    }

    /// The same server under another label.
    pub fn label(mut self, label: impl Into<String>) -> ServerSpec {
        self.label = label.into();
        self
    }

    /// The same server with another weight.
    pub fn weight(mut self, weight: f64) -> ServerSpec {
        self.weight = weight;
        self
    }
}

/// A pool's servers and failover policy.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// The servers (at least one; labels unique).
    pub servers: Vec<ServerSpec>,
    /// How long a server's socket may be down before its queued prompts
    /// move elsewhere (default 10 s): long enough for a network blip and a
    /// reconnect, short enough that a dead GPU box does not hold work.
    pub grace: Duration,
    /// Move prompts that were *running* on a lost server too (default
    /// off: they may have run to the end unheard, and running them again
    /// costs GPU time and may repeat side effects).
    pub resubmit_running: bool,
    /// How often each pool submission checks its server's health (500 ms).
    pub check_interval: Duration,
}

impl PoolConfig {
    /// A pool over `servers` with the default policy.
    pub fn new(servers: Vec<ServerSpec>) -> PoolConfig {
        PoolConfig {
            servers,
            grace: Duration::from_secs(10),
            resubmit_running: false,
            check_interval: Duration::from_millis(500),
        }
    }

    /// A pool from settings (the settings file's format): one server per
    /// entry of `servers` (see [`comfywire_client::ServerSettings`]: each
    /// entry's own client settings over the rest, credentials kept with
    /// their server), and the knobs `pool_grace_s` and
    /// `pool_resubmit_running`. Refuses settings without `servers`, an
    /// entry without a URL, a bad weight or grace, or two equal labels.
    pub fn from_settings(settings: &Settings) -> Result<PoolConfig, PoolError> {
        let config = |e: comfywire_client::Error| PoolError::Config(e.to_string());
        if settings.servers.is_empty() {
            return Err(PoolError::Config(
                "the settings list no `servers` for a pool".into(),
            ));
        }
        let mut servers = Vec::with_capacity(settings.servers.len());
        for entry in &settings.servers {
            let client = entry.resolve(settings).map_err(config)?;
            let mut spec = ServerSpec::new(client.url.clone().unwrap_or_default());
            spec.config = client.to_config().map_err(config)?;
            if let Some(label) = &entry.label {
                spec.label = label.clone();
            }
            if let Some(weight) = entry.weight {
                spec.weight = weight;
            }
            servers.push(spec);
        }
        let mut pool = PoolConfig::new(servers);
        if let Some(grace) = settings.pool_grace_s {
            pool.grace = Duration::try_from_secs_f64(grace).map_err(|_| {
                PoolError::Config(format!("pool_grace_s: {grace} is not a duration"))
            })?;
        }
        if let Some(running) = settings.pool_resubmit_running {
            pool.resubmit_running = running;
        }
        pool.validate()?;
        Ok(pool)
    }

    pub(crate) fn validate(&self) -> Result<(), PoolError> {
        if self.servers.is_empty() {
            return Err(PoolError::Config("a pool needs at least one server".into()));
        }
        for (i, s) in self.servers.iter().enumerate() {
            if !(s.weight.is_finite() && s.weight > 0.0) {
                return Err(PoolError::Config(format!(
                    "server {}: weight {} is not a positive number",
                    s.label, s.weight
                )));
            }
            if self.servers[..i].iter().any(|o| o.label == s.label) {
                return Err(PoolError::Config(format!(
                    "two servers are labelled {}",
                    s.label
                )));
            }
        }
        if self.check_interval.is_zero() {
            return Err(PoolError::Config(
                "check_interval must be above zero".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn labels_are_host_and_port_without_credentials() {
        assert_eq!(
            ServerSpec::new("http://u:p@gpu1:8188/comfy").label,
            "gpu1:8188"
        );
        assert_eq!(
            ServerSpec::new("http://127.0.0.1:8188").label,
            "127.0.0.1:8188"
        );
    }

    #[test]
    fn settings_list_the_servers_with_their_own_credentials() {
        let settings = Settings::from_json(
            r#"{"token": "everyone", "request_timeout_s": 7, "pool_grace_s": 2.5,
                "servers": [
                  {"url": "http://gpu1:8188", "label": "one", "weight": 2},
                  {"url": "http://gpu2:8188", "token": "mine", "request_timeout_s": 3}
                ]}"#,
        )
        .unwrap();
        let pool = PoolConfig::from_settings(&settings).unwrap();
        assert_eq!(pool.grace, Duration::from_millis(2500));
        assert!(!pool.resubmit_running);
        let [one, two] = &pool.servers[..] else {
            panic!("two servers")
        };
        assert_eq!((one.label.as_str(), one.weight), ("one", 2.0));
        assert_eq!((two.label.as_str(), two.weight), ("gpu2:8188", 1.0));
        let bearer = |s: &ServerSpec| match &s.config.auth {
            Some(comfywire_client::Auth::Bearer(t)) => t.clone(),
            _ => String::new(),
        };
        assert_eq!(bearer(one), "everyone");
        assert_eq!(bearer(two), "mine");
        assert_eq!(one.config.request_timeout, Duration::from_secs(7));
        assert_eq!(two.config.request_timeout, Duration::from_secs(3));
        // A token around them that names another server stays there.
        let scoped = Settings::from_json(
            r#"{"url": "http://elsewhere:1", "token": "theirs",
                "servers": [{"url": "http://gpu1:8188"}]}"#,
        )
        .unwrap();
        let pool = PoolConfig::from_settings(&scoped).unwrap();
        assert!(pool.servers[0].config.auth.is_none());
    }

    #[test]
    fn bad_server_settings_are_refused() {
        for bad in [
            r#"{"url": "http://a:1"}"#,
            r#"{"servers": [{"label": "no url"}]}"#,
            r#"{"servers": [{"url": "http://a:1", "weight": -1}]}"#,
            r#"{"servers": [{"url": "http://a:1"}, {"url": "http://a:1"}]}"#,
            r#"{"servers": [{"url": "http://a:1", "servers": [{"url": "http://b:1"}]}]}"#,
            r#"{"pool_grace_s": -1, "servers": [{"url": "http://a:1"}]}"#,
        ] {
            let settings = Settings::from_json(bad).unwrap();
            assert!(PoolConfig::from_settings(&settings).is_err(), "{bad}");
        }
        // A secret of the wrong shape is refused without being quoted.
        let error =
            Settings::from_json(r#"{"servers": [{"url": "http://a:1", "token": 123456789}]}"#)
                .unwrap_err()
                .to_string();
        assert!(
            error.contains("servers[0]") && !error.contains("123456789"),
            "{error}"
        );
    }

    #[test]
    fn bad_pools_are_refused() {
        assert!(PoolConfig::new(vec![]).validate().is_err());
        let zero = PoolConfig::new(vec![ServerSpec::new("http://a:1").weight(0.0)]);
        assert!(zero.validate().is_err());
        let twice = PoolConfig::new(vec![
            ServerSpec::new("http://a:1"),
            ServerSpec::new("http://a:1"),
        ]);
        assert!(twice.validate().is_err());
        assert!(
            PoolConfig::new(vec![ServerSpec::new("http://a:1")])
                .validate()
                .is_ok()
        );
    }
}
