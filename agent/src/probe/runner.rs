//! The run every probe shares: its check bounded by its timeout, the outcome counted by reason
//! and its state changes logged ([`Health`]), every sample labelled with its [`Target`]. A probe
//! kind supplies only its protocol part, a [`Check`].

use super::{ProbeError, Reason};
use crate::collect::{BatchBuilder, Metric};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

const ERRORS: Metric = Metric::counter(
    "hcmon_probe_errors_total",
    "Failed probe runs, by probe kind, target and reason (connect, timeout, auth, tls, ...).",
);

/// What one kind of probe does that the others do not: its target, its ways to fail, and one
/// check over its protocol.
pub(crate) trait Check: Send + Sync + 'static {
    /// The `probe` label of its error counter and log lines.
    const KIND: &'static str;
    /// Its `..._up` gauge: 1 after a run that succeeded, else 0.
    const UP: Metric;

    /// The labels that identify its series.
    fn target(&self) -> Target;

    /// How long one run may take before it fails with [`Reason::Timeout`].
    fn timeout(&self) -> Duration;

    /// Every reason it can fail with, reported at 0 until it does.
    fn reasons(&self) -> Vec<Reason>;

    /// One check. It pushes each figure as soon as it has it, so what was read before a later
    /// step failed is still reported.
    fn check(&self, samples: &mut Samples) -> impl Future<Output = Result<(), ProbeError>> + Send;
}

/// A run in progress, of whichever kind.
pub(crate) type Run<'a> = Pin<Box<dyn Future<Output = Samples> + Send + 'a>>;

/// A probe of any kind, so that [`super::Probes`] holds them all in one list.
pub(crate) trait AnyProbe: Send {
    /// Runs the probe once; the samples carry its `up` gauge and error counters.
    fn run(&mut self) -> Run<'_>;
}

/// One configured probe and its memory between runs.
pub(crate) struct Probe<C> {
    check: C,
    target: Target,
    health: Health,
}

impl<C: Check> Probe<C> {
    pub(crate) fn new(check: C) -> Self {
        Self {
            target: check.target(),
            health: Health::new(C::KIND, &check.reasons()),
            check,
        }
    }
}

impl<C: Check> AnyProbe for Probe<C> {
    fn run(&mut self) -> Run<'_> {
        Box::pin(async move {
            let mut samples = Samples::new(self.target.clone());
            let outcome = within(self.check.timeout(), self.check.check(&mut samples)).await;
            self.health.finish(outcome, C::UP, &mut samples);
            samples
        })
    }
}

/// Runs `check` for at most `timeout`; running out of time is a [`Reason::Timeout`] failure.
async fn within<F>(timeout: Duration, check: F) -> Result<(), ProbeError>
where
    F: Future<Output = Result<(), ProbeError>>,
{
    tokio::time::timeout(timeout, check)
        .await
        .unwrap_or_else(|_| {
            Err(ProbeError::new(
                Reason::Timeout,
                format!(
                    "no complete answer within {}",
                    humantime::format_duration(timeout)
                ),
            ))
        })
}

/// The labels that identify one probe's target.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub target: String,
    pub name: String,
}

impl Target {
    pub(crate) fn new(target: &str, name: Option<&str>) -> Self {
        Self {
            target: target.to_owned(),
            name: name.unwrap_or(target).to_owned(),
        }
    }
}

struct Sample {
    metric: Metric,
    labels: Vec<(&'static str, String)>,
    value: f64,
}

/// The samples of one probe run, each labelled with the probe's target.
pub(crate) struct Samples {
    target: Target,
    items: Vec<Sample>,
}

impl Samples {
    pub(crate) fn new(target: Target) -> Self {
        Self {
            target,
            items: Vec::new(),
        }
    }

    /// Adds a sample with just the target's labels.
    pub(crate) fn push(&mut self, metric: Metric, value: f64) {
        self.push_with(metric, &[], value);
    }

    /// Adds a sample with the target's labels and `extra`.
    pub(crate) fn push_with(&mut self, metric: Metric, extra: &[(&'static str, &str)], value: f64) {
        self.items.push(Sample {
            metric,
            labels: extra.iter().map(|(n, v)| (*n, (*v).to_owned())).collect(),
            value,
        });
    }

    /// The value of the first sample of `metric` with these extra labels, for tests.
    #[cfg(test)]
    pub(crate) fn get(&self, metric: &str, extra: &[(&str, &str)]) -> Option<f64> {
        self.items
            .iter()
            .find(|s| {
                s.metric.name == metric
                    && s.labels.len() == extra.len()
                    && extra
                        .iter()
                        .all(|(n, v)| s.labels.iter().any(|(ln, lv)| ln == n && lv == v))
            })
            .map(|s| s.value)
    }

    pub(crate) fn write_to(self, out: &mut BatchBuilder) {
        for sample in &self.items {
            let mut labels: Vec<(&str, &str)> = vec![
                ("target", self.target.target.as_str()),
                ("name", self.target.name.as_str()),
            ];
            labels.extend(sample.labels.iter().map(|(n, v)| (*n, v.as_str())));
            out.push(sample.metric, &labels, sample.value);
        }
    }
}

/// One probe's memory between runs: its error counters and whether it was last up.
struct Health {
    probe: &'static str,
    errors: BTreeMap<Reason, u64>,
    up: Option<bool>,
}

impl Health {
    /// `reasons`: every way this kind of probe can fail, reported at 0 until it does.
    fn new(probe: &'static str, reasons: &[Reason]) -> Self {
        Self {
            probe,
            errors: reasons.iter().map(|r| (*r, 0)).collect(),
            up: None,
        }
    }

    /// Records a run's outcome: the `up` gauge, the error counters, and a log line when the
    /// target's state changed.
    fn finish(
        &mut self,
        outcome: Result<(), ProbeError>,
        up_metric: Metric,
        samples: &mut Samples,
    ) {
        let is_up = outcome.is_ok();
        match &outcome {
            Ok(()) => {
                if self.up == Some(false) {
                    tracing::info!(
                        probe = self.probe,
                        target = %samples.target.target,
                        name = %samples.target.name,
                        "probe target is up again"
                    );
                }
            }
            Err(error) => {
                *self.errors.entry(error.reason).or_default() += 1;
                if self.up != Some(false) {
                    tracing::warn!(
                        probe = self.probe,
                        target = %samples.target.target,
                        name = %samples.target.name,
                        reason = error.reason.as_str(),
                        error = %error.detail,
                        "probe target is down"
                    );
                } else {
                    tracing::debug!(
                        probe = self.probe,
                        target = %samples.target.target,
                        reason = error.reason.as_str(),
                        error = %error.detail,
                        "probe target still down"
                    );
                }
            }
        }
        self.up = Some(is_up);
        samples.push(up_metric, if is_up { 1.0 } else { 0.0 });
        for (reason, count) in &self.errors {
            samples.push_with(
                ERRORS,
                &[("probe", self.probe), ("reason", reason.as_str())],
                *count as f64,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::{NETWORK_REASONS, RedisProbeConfig, TcpCheckConfig};

    /// Counts the warnings logged while it is the subscriber.
    struct Warnings(std::sync::Arc<std::sync::atomic::AtomicUsize>);

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Warnings {
        fn on_event(
            &self,
            event: &tracing::Event<'_>,
            _: tracing_subscriber::layer::Context<'_, S>,
        ) {
            if *event.metadata().level() == tracing::Level::WARN {
                self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
    }

    #[test]
    fn warns_once_per_outage_not_every_run() {
        use tracing_subscriber::layer::SubscriberExt;
        let count = std::sync::Arc::default();
        let subscriber =
            tracing_subscriber::registry().with(Warnings(std::sync::Arc::clone(&count)));
        let warnings = || count.load(std::sync::atomic::Ordering::SeqCst);
        tracing::subscriber::with_default(subscriber, || {
            let mut health = Health::new("redis", &NETWORK_REASONS);
            let mut run = |outcome: Result<(), ProbeError>| {
                let mut samples = Samples::new(Target::new("h:1", None));
                health.finish(outcome, RedisProbeConfig::UP, &mut samples);
            };
            let refused = || Err(ProbeError::new(Reason::Connect, "refused"));
            run(Ok(()));
            assert_eq!(warnings(), 0);
            for _ in 0..3 {
                run(refused());
            }
            assert_eq!(warnings(), 1);
            run(Err(ProbeError::new(Reason::Timeout, "slow")));
            assert_eq!(warnings(), 1, "still the same outage");
            run(Ok(()));
            run(Ok(()));
            run(refused());
            assert_eq!(warnings(), 2, "a new outage");
        });
    }

    #[tokio::test]
    async fn errors_are_counted_across_runs_and_reported_from_zero() {
        let mut health = Health::new("tcp", &[Reason::Connect, Reason::Timeout]);
        let target = Target::new("h:1", None);
        let mut samples = Samples::new(target.clone());
        health.finish(Ok(()), TcpCheckConfig::UP, &mut samples);
        assert_eq!(samples.get("tcp_check_up", &[]), Some(1.0));
        let errors = |s: &Samples, reason| {
            s.get(
                "hcmon_probe_errors_total",
                &[("probe", "tcp"), ("reason", reason)],
            )
        };
        assert_eq!(errors(&samples, "connect"), Some(0.0));
        for expected in [1.0, 2.0] {
            let mut samples = Samples::new(target.clone());
            let failure = ProbeError::new(Reason::Connect, "refused");
            health.finish(Err(failure), TcpCheckConfig::UP, &mut samples);
            assert_eq!(samples.get("tcp_check_up", &[]), Some(0.0));
            assert_eq!(errors(&samples, "connect"), Some(expected));
            assert_eq!(errors(&samples, "timeout"), Some(0.0));
        }
    }

    /// A check that sleeps past its timeout after reading one figure.
    struct Slow;

    const FIGURE: Metric = Metric::gauge("slow_figure", "Read before the check stalls.");

    impl Check for Slow {
        const KIND: &'static str = "slow";
        const UP: Metric = Metric::gauge("slow_up", "Whether the slow check succeeded.");

        fn target(&self) -> Target {
            Target::new("h:1", Some("slow one"))
        }

        fn timeout(&self) -> Duration {
            Duration::from_millis(20)
        }

        fn reasons(&self) -> Vec<Reason> {
            vec![Reason::Timeout]
        }

        async fn check(&self, samples: &mut Samples) -> Result<(), ProbeError> {
            samples.push(FIGURE, 7.0);
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_run_is_bounded_by_its_timeout_and_keeps_what_it_read() {
        let mut probe = Probe::new(Slow);
        let samples = AnyProbe::run(&mut probe).await;
        assert_eq!(samples.get("slow_figure", &[]), Some(7.0));
        assert_eq!(samples.get("slow_up", &[]), Some(0.0));
        assert_eq!(
            samples.get(
                "hcmon_probe_errors_total",
                &[("probe", "slow"), ("reason", "timeout")]
            ),
            Some(1.0)
        );
        let mut batch = BatchBuilder::new(0);
        samples.write_to(&mut batch);
        let record = batch.finish();
        let figure = record
            .series
            .iter()
            .find(|d| d.name == "slow_figure")
            .unwrap();
        let label = |name: &str| {
            figure
                .labels
                .iter()
                .find(|l| l.name == name)
                .map(|l| l.value.as_str())
        };
        assert_eq!(
            (label("target"), label("name")),
            (Some("h:1"), Some("slow one"))
        );
    }
}
