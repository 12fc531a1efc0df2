//! Static threshold rules with warning, error and critical levels, a pending duration and a
//! recovery margin, and the defaults shipped for host resources (CPU, memory, filesystems, disk
//! and link saturation), cache probes and HTTP response time. Pure: a rule turns a value into
//! the severity it breaches, and into the thresholds the lifecycle uses.

use super::lifecycle::{Direction, Threshold};
use super::policy::Severity;
use crate::query::QueryError;
use hcmon_common::Selector;
use serde::Deserialize;
use std::time::Duration;

/// A threshold rule that cannot be used; the message names the field.
#[derive(Debug, thiserror::Error)]
pub enum ThresholdRuleError {
    #[error("name is empty")]
    NoName,
    #[error("{rule}: selector {selector:?}: {source}")]
    Selector {
        rule: String,
        selector: String,
        source: QueryError,
    },
    #[error("{0}: set at least one of warning, error, critical")]
    NoLevel(String),
    #[error("{rule}: levels must get worse from warning to critical ({direction:?} direction)")]
    LevelsOutOfOrder { rule: String, direction: Direction },
    #[error("{0}: recovery_margin must be zero or positive")]
    RecoveryMargin(String),
}

/// `[[alerting.rules]]`: one resource watched at three levels.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdRule {
    /// The `alertname` of the alerts this rule raises.
    pub name: String,
    /// Series watched, e.g. `node_cpu_usage_ratio` or `redis_keyspace_hit_ratio{name="cache"}`.
    pub selector: String,
    /// `above` (CPU, latency) or `below` (hit ratio).
    pub direction: Direction,
    pub warning: Option<f64>,
    pub error: Option<f64>,
    pub critical: Option<f64>,
    /// How long a level must hold before it fires.
    #[serde(with = "humantime_serde", default)]
    pub r#for: Duration,
    /// How far back past a level the value must go to resolve it (hysteresis), in the
    /// value's unit.
    #[serde(default)]
    pub recovery_margin: f64,
}

impl ThresholdRule {
    fn rule(
        name: &str,
        selector: &str,
        direction: Direction,
        levels: [f64; 3],
        margin: f64,
    ) -> Self {
        Self {
            name: name.into(),
            selector: selector.into(),
            direction,
            warning: Some(levels[0]),
            error: Some(levels[1]),
            critical: Some(levels[2]),
            r#for: Duration::from_secs(120),
            recovery_margin: margin,
        }
    }

    fn two_levels(
        name: &str,
        selector: &str,
        direction: Direction,
        levels: [f64; 2],
        margin: f64,
    ) -> Self {
        let [warning, error] = levels;
        Self {
            critical: None,
            ..Self::rule(name, selector, direction, [warning, error, error], margin)
        }
    }

    fn one_level(
        name: &str,
        selector: &str,
        direction: Direction,
        warning: f64,
        margin: f64,
    ) -> Self {
        Self {
            error: None,
            critical: None,
            ..Self::rule(name, selector, direction, [warning; 3], margin)
        }
    }

    /// The defaults for host resources (three levels), cache probes (warning and error) and
    /// HTTP response time (warning).
    pub fn defaults() -> Vec<Self> {
        use Direction::{Above, Below};
        vec![
            Self::rule(
                "HighCpu",
                "node_cpu_usage_ratio",
                Above,
                [0.70, 0.85, 0.95],
                0.05,
            ),
            Self::rule(
                "HighMemory",
                "node_memory_used_ratio",
                Above,
                [0.75, 0.85, 0.95],
                0.05,
            ),
            Self::rule(
                "DiskFilling",
                "node_filesystem_used_ratio",
                Above,
                [0.80, 0.90, 0.95],
                0.02,
            ),
            Self::two_levels(
                "SlowCache",
                "redis_check_duration_seconds",
                Above,
                [0.1, 0.5],
                0.02,
            ),
            Self::two_levels(
                "CacheMisses",
                "redis_keyspace_hit_ratio",
                Below,
                [0.7, 0.5],
                0.05,
            ),
            Self::two_levels(
                "ProbeErrors",
                "rate(hcmon_probe_errors_total[5m])",
                Above,
                [0.05, 0.1],
                0.01,
            ),
            // Share of wall time a disk had at least one I/O in flight, per device.
            Self::rule(
                "HighDiskIo",
                "rate(node_disk_io_time_seconds_total[5m])",
                Above,
                [0.70, 0.85, 0.95],
                0.05,
            ),
            // Share of the negotiated link speed, per interface. Default matching pairs the
            // counter with the speed of the same node and device; interfaces the agent reports
            // no speed for (loopback, bridges, tunnels) have no pair, so no value and no alert.
            Self::rule(
                "HighNetworkReceive",
                "rate(node_network_receive_bytes_total[5m]) / node_network_speed_bytes",
                Above,
                [0.70, 0.85, 0.95],
                0.05,
            ),
            Self::rule(
                "HighNetworkTransmit",
                "rate(node_network_transmit_bytes_total[5m]) / node_network_speed_bytes",
                Above,
                [0.70, 0.85, 0.95],
                0.05,
            ),
            // The Redis probe sends the ratio only when maxmemory is set. Memcached is left
            // out: it always has a limit and fills it by design, evicting the oldest items.
            Self::two_levels(
                "HighCacheMemory",
                "redis_memory_used_ratio",
                Above,
                [0.8, 0.9],
                0.05,
            ),
            Self::one_level("SlowHttp", "http_check_duration_seconds", Above, 2.0, 0.2),
        ]
    }

    /// Checks the rule; the message names the field.
    pub fn validate(&self) -> Result<(), ThresholdRuleError> {
        if self.name.is_empty() {
            return Err(ThresholdRuleError::NoName);
        }
        crate::query::parse(&self.selector).map_err(|source| ThresholdRuleError::Selector {
            rule: self.name.clone(),
            selector: self.selector.clone(),
            source,
        })?;
        let levels: Vec<f64> = [self.warning, self.error, self.critical]
            .into_iter()
            .flatten()
            .collect();
        if levels.is_empty() {
            return Err(ThresholdRuleError::NoLevel(self.name.clone()));
        }
        let ordered = levels.windows(2).all(|w| match self.direction {
            Direction::Above => w[0] <= w[1],
            Direction::Below => w[0] >= w[1],
        });
        if !ordered {
            return Err(ThresholdRuleError::LevelsOutOfOrder {
                rule: self.name.clone(),
                direction: self.direction,
            });
        }
        if !(self.recovery_margin >= 0.0 && self.recovery_margin.is_finite()) {
            return Err(ThresholdRuleError::RecoveryMargin(self.name.clone()));
        }
        Ok(())
    }

    /// The worst level `value` breaches.
    pub fn breached(&self, value: f64) -> Option<Severity> {
        let past = |level: Option<f64>| {
            level.is_some_and(|l| match self.direction {
                Direction::Above => value >= l,
                Direction::Below => value <= l,
            })
        };
        [
            (self.critical, Severity::Critical),
            (self.error, Severity::Error),
            (self.warning, Severity::Warning),
        ]
        .into_iter()
        .find(|(level, _)| past(*level))
        .map(|(_, severity)| severity)
    }

    /// The lifecycle threshold of one level, with its recovery point.
    pub fn threshold(&self, severity: Severity) -> Option<Threshold> {
        let fire = match severity {
            Severity::Warning => self.warning,
            Severity::Error => self.error,
            Severity::Critical => self.critical,
        }?;
        let recover = match self.direction {
            Direction::Above => fire - self.recovery_margin,
            Direction::Below => fire + self.recovery_margin,
        };
        // 0.85 − 0.05 is 0.7999…9 in binary; people wrote 0.80 and mean it.
        let recover = (recover * 1e9).round() / 1e9;
        Some(Threshold {
            direction: self.direction,
            fire,
            recover,
        })
    }

    /// The rule's selector when it is a plain one (not a function such as `rate`).
    pub fn selector(&self) -> Option<Selector> {
        Selector::parse(&self.selector).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_match_the_documented_levels() {
        let rules = ThresholdRule::defaults();
        for rule in &rules {
            rule.validate().unwrap();
        }
        let cpu = &rules[0];
        assert_eq!(cpu.breached(0.69), None);
        assert_eq!(cpu.breached(0.70), Some(Severity::Warning));
        assert_eq!(cpu.breached(0.90), Some(Severity::Error));
        assert_eq!(cpu.breached(0.96), Some(Severity::Critical));
        let hits = rules.iter().find(|r| r.name == "CacheMisses").unwrap();
        assert_eq!(hits.breached(0.8), None);
        assert_eq!(hits.breached(0.6), Some(Severity::Warning));
        assert_eq!(hits.breached(0.4), Some(Severity::Error));
        let t = cpu.threshold(Severity::Error).unwrap();
        assert_eq!((t.fire, t.recover), (0.85, 0.80));
        assert!(cpu.selector().is_some());
    }

    #[test]
    fn saturation_cache_memory_and_http_defaults_fire_at_their_levels() {
        let rules = ThresholdRule::defaults();
        let rule = |name: &str| rules.iter().find(|r| r.name == name).unwrap();
        for name in ["HighDiskIo", "HighNetworkReceive", "HighNetworkTransmit"] {
            let busy = rule(name);
            assert_eq!(busy.breached(0.69), None, "{name}");
            assert_eq!(busy.breached(0.70), Some(Severity::Warning), "{name}");
            assert_eq!(busy.breached(0.85), Some(Severity::Error), "{name}");
            assert_eq!(busy.breached(0.95), Some(Severity::Critical), "{name}");
            let t = busy.threshold(Severity::Critical).unwrap();
            assert_eq!((t.fire, t.recover), (0.95, 0.90), "{name}");
            assert_eq!(busy.r#for, Duration::from_secs(120), "{name}");
            // Judged on the evaluation interval, as rates must be.
            assert!(busy.selector().is_none(), "{name}");
        }
        let memory = rule("HighCacheMemory");
        assert_eq!(memory.breached(0.79), None);
        assert_eq!(memory.breached(0.8), Some(Severity::Warning));
        assert_eq!(memory.breached(0.9), Some(Severity::Error));
        assert_eq!(memory.breached(1.2), Some(Severity::Error));
        assert_eq!(memory.threshold(Severity::Critical), None);
        let http = rule("SlowHttp");
        assert_eq!(http.breached(1.9), None);
        assert_eq!(http.breached(2.0), Some(Severity::Warning));
        assert_eq!(http.breached(30.0), Some(Severity::Warning));
        let t = http.threshold(Severity::Warning).unwrap();
        assert_eq!((t.fire, t.recover), (2.0, 1.8));
        assert!(http.selector().is_some() && memory.selector().is_some());
    }

    #[test]
    fn rules_parse_from_toml_and_bad_ones_are_named() {
        let rule: ThresholdRule = toml::from_str(
            "name = \"HotNas\"\nselector = 'node_hwmon_temp_celsius{node=\"nas\"}'\ndirection = \"above\"\nwarning = 70.0\ncritical = 85.0\nfor = \"5m\"\nrecovery_margin = 3.0\n",
        )
        .unwrap();
        rule.validate().unwrap();
        assert_eq!(rule.r#for, Duration::from_secs(300));
        assert_eq!(rule.breached(80.0), Some(Severity::Warning));
        let backwards = ThresholdRule {
            warning: Some(0.9),
            critical: Some(0.5),
            ..rule.clone()
        };
        let error = backwards.validate().unwrap_err().to_string();
        assert!(error.contains("levels"), "{error}");
        let bad = ThresholdRule {
            selector: "node_cpu{".into(),
            ..rule
        };
        let error = bad.validate().unwrap_err().to_string();
        assert!(error.contains("selector"), "{error}");
        let err = toml::from_str::<ThresholdRule>("name = \"x\"\nselecter = \"y\"\n").unwrap_err();
        assert!(err.to_string().contains("selecter"), "{err}");
    }
}
