//! Which servers a pool spreads over, and its failover knobs.

use std::time::Duration;

use comfywire_client::ClientConfig;

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
