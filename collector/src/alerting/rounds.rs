//! The rules the clock drives rather than arriving samples: missing data (agents silent or
//! disconnected, watched series silent), anomaly verdicts, node models' verdicts, threshold
//! rules over functions (`rate(...)`), forecasts, the groups of rule files, each on its own
//! interval, and the SLOs' burn rates. Each round returns observations for the book; those that read the store do
//! so on the blocking pool, and a panic there is logged and counted and the round's
//! observations are left out (the next round evaluates again).

use super::activity::Arrivals;
use super::book::Observation;
use super::evaluate::{BudgetLeft, RuleSet, SampleRule};
use super::node_rules::NodeRules;
use super::rule_files::evaluate::{CompiledGroup, KeptFiring};
use crate::analysis::history::{History, HistorySource};
use crate::analytics::slo::{
    Budgeting, Tally, Window, budget, burn_rules, judge, time_to_exhaustion_ms,
};
use crate::anomaly_watch::AnomalyWatch;
use crate::catalog::SeriesCatalog;
use crate::node_forest::{NodeForests, NodeVerdict};
use crate::query::{Metric, QueryError};
use crate::slo::maintenance::SilenceSpan;
use crate::slo::objectives::Objectives;
use crate::slo::{EvalContext, SloDefinition, SloError, tally};
use crate::storage::Tsdb;
use crate::tasks;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

/// One rule's result in a rule-file group's round.
pub(super) type FileRuleResult = Result<Vec<(Metric, f64)>, QueryError>;

/// When each rule-file group was last evaluated, and which alerts its rules keep firing.
pub(super) struct FileSchedule {
    last: Vec<Option<Instant>>,
    kept: Vec<Vec<KeptFiring>>,
}

impl FileSchedule {
    pub(super) fn new(groups: &[CompiledGroup]) -> Self {
        Self {
            last: vec![None; groups.len()],
            kept: groups
                .iter()
                .map(|g| g.rules.iter().map(|_| KeptFiring::default()).collect())
                .collect(),
        }
    }

    /// The groups whose interval has passed since their last round (all at the first call);
    /// they count as evaluated at `now`.
    pub(super) fn due(&mut self, groups: &[CompiledGroup], now: Instant) -> Vec<usize> {
        let mut due = Vec::new();
        for (i, (group, last)) in groups.iter().zip(&mut self.last).enumerate() {
            if last.is_none_or(|t| now.duration_since(t) >= group.interval) {
                *last = Some(now);
                due.push(i);
            }
        }
        due
    }

    /// What rule `rule` of group `group` keeps firing.
    pub(super) fn kept(&mut self, group: usize, rule: usize) -> &mut KeptFiring {
        &mut self.kept[group][rule]
    }
}

/// The rules and what they read.
pub(super) struct Rounds {
    pub(super) rules: Arc<RuleSet>,
    pub(super) tsdb: Arc<Tsdb>,
    pub(super) catalog: Arc<SeriesCatalog>,
    /// What rules read through: the store, and the remote history before it.
    pub(super) history: Arc<History>,
    pub(super) watch: Option<Arc<AnomalyWatch>>,
    /// The node models whose verdicts node rules judge; `None` with analytics off.
    pub(super) forests: Option<Arc<NodeForests>>,
    pub(super) node_rules: NodeRules,
    /// Data quality: judged by the quality rules, and marking anomaly verdicts on low-quality
    /// series low-confidence (they do not fire); `None` when `[quality] enabled = false`.
    pub(super) quality: Option<Arc<crate::quality::QualityTracker>>,
    pub(super) quality_rules: super::quality_rules::QualityRules,
    /// The SLOs whose burn rates are judged; `None` when `[slo] enabled = false`.
    pub(super) slo: Option<Arc<Objectives>>,
    /// Verdicts older than this are not judged: alerts are about now.
    pub(super) max_lag_ms: i64,
}

impl Rounds {
    /// Missing data: agents silent or disconnected (`disconnected`: node → since when its
    /// stream is closed), watched series silent.
    pub(super) fn missing_data(
        &self,
        arrivals: &Arrivals,
        disconnected: &BTreeMap<String, i64>,
        now: i64,
    ) -> Vec<Observation> {
        let mut out = Vec::new();
        if self.rules.agents {
            for (node, activity) in arrivals.nodes() {
                let silent = now - activity.last_ms;
                out.push(
                    self.rules
                        .agent_silent(node, silent.max(0), activity.interval_ms()),
                );
            }
            for (node, _) in arrivals.nodes() {
                let closed = disconnected.get(node).map_or(0, |since| now - since);
                out.push(self.rules.agent_disconnected(node, closed.max(0)));
            }
        }
        for (watched, activity) in arrivals.series() {
            for rule in &watched.rules {
                if let SampleRule::MissingSeries(i) = *rule {
                    out.push(self.rules.series_missing(
                        i,
                        &watched.meta.labels,
                        now - activity.last_ms,
                        activity.interval_ms(),
                    ));
                }
            }
        }
        out
    }

    /// Anomaly rules over the newest verdict of each matching series.
    pub(super) fn anomalies(&self, now: i64) -> Vec<Observation> {
        let Some(watch) = &self.watch else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, (_, selector)) in self.rules.anomaly.iter().enumerate() {
            for meta in self.catalog.select(selector) {
                if let Some(mut verdict) = watch.latest(meta.id)
                    && now - verdict.timestamp_ms <= self.max_lag_ms
                {
                    if self.quality.as_ref().is_some_and(|q| !q.confident(meta.id)) {
                        // Low-confidence: judged as no anomaly, so it neither fires nor pages.
                        verdict.is_anomaly = false;
                    }
                    out.push(self.rules.anomaly(i, &meta.labels, &verdict));
                }
            }
        }
        out
    }

    /// Every node's newest verdict from its model; none with analytics off.
    pub(super) fn node_verdicts(&self) -> BTreeMap<String, NodeVerdict> {
        self.forests
            .as_ref()
            .map(|f| f.verdicts())
            .unwrap_or_default()
    }

    fn promql_source(&self) -> HistorySource {
        HistorySource {
            catalog: self.catalog.clone(),
            history: self.history.clone(),
        }
    }

    /// Threshold rules over functions (`rate(...)`), evaluated at `now`.
    pub(super) async fn functions(&self, now: i64) -> Vec<Observation> {
        let functions: Vec<usize> = (0..self.rules.thresholds.len())
            .filter(|&i| self.rules.thresholds[i].plain.is_none())
            .collect();
        if functions.is_empty() {
            return Vec::new();
        }
        let source = self.promql_source();
        let rules = self.rules.clone();
        let results = tasks::blocking("alert-rule-evaluation", move || {
            fail::fail_point!("alert-rule-evaluation");
            functions
                .into_iter()
                .map(|i| {
                    let result =
                        crate::query::evaluate(&source, &rules.thresholds[i].expr, now, now, 1000);
                    (i, result)
                })
                .collect::<Vec<_>>()
        })
        .await;
        let Ok(results) = results else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, result) in results {
            match result {
                Ok((value, _)) => {
                    for (labels, value) in value.into_samples() {
                        let name = labels
                            .get(hcmon_common::METRIC_NAME_LABEL)
                            .cloned()
                            .unwrap_or_else(|| "value".into());
                        let Ok(labels) = hcmon_common::Labels::new(
                            &name,
                            labels
                                .into_iter()
                                .filter(|(k, _)| k != hcmon_common::METRIC_NAME_LABEL),
                        ) else {
                            continue;
                        };
                        out.push(self.rules.threshold(i, &labels, value));
                    }
                }
                Err(error) => tracing::warn!(
                    rule = %self.rules.thresholds[i].rule.name,
                    %error,
                    "alert rule could not be evaluated"
                ),
            }
        }
        out
    }

    /// Rule-file group `group` at `now`: each rule's instant query, in the group's order. Empty
    /// when the evaluation panicked (logged and counted; the next round tries again).
    pub(super) async fn file_group(&self, group: usize, now: i64) -> Vec<FileRuleResult> {
        let source = self.promql_source();
        let rules = self.rules.clone();
        tasks::blocking("alert-rule-file-evaluation", move || {
            rules.files[group]
                .rules
                .iter()
                .map(|rule| {
                    crate::query::evaluate(&source, &rule.expr, now, now, 1000)
                        .map(|(value, _)| value.into_samples())
                })
                .collect()
        })
        .await
        .unwrap_or_default()
    }

    /// Forecast rules over each matching series' recent history.
    pub(super) async fn forecasts(&self, now: i64) -> Vec<Observation> {
        if self.rules.forecast.is_empty() {
            return Vec::new();
        }
        let (history, catalog, rules) = (
            self.history.clone(),
            self.catalog.clone(),
            self.rules.clone(),
        );
        tasks::blocking("alert-forecast-evaluation", move || {
            let mut out = Vec::new();
            for (i, (rule, selector)) in rules.forecast.iter().enumerate() {
                let start = now - rule.window.as_millis() as i64;
                for meta in catalog.select(selector) {
                    match history.read_raw(&meta, start, now) {
                        Ok(samples) => out.extend(rules.forecast(i, &meta.labels, &samples)),
                        Err(error) => {
                            tracing::warn!(rule = %rule.name, %error, "forecast rule could not read history")
                        }
                    }
                }
            }
            out
        })
        .await
        .unwrap_or_default()
    }

    /// The burn-rate rules of every SLO that counts samples, over windows ending at `now`
    /// (maintenance from the config, annotations and `silences`), as a job for a task of its
    /// own: it reads days of samples per SLO, so the alerting loop does not wait for it. `None`
    /// without SLOs.
    pub(super) fn slo_burn(
        &self,
        silences: Vec<SilenceSpan>,
        now: i64,
    ) -> Option<impl Future<Output = Option<BurnRound>> + Send + 'static> {
        let objectives = self.slo.clone()?;
        let rules = self.rules.clone();
        Some(slo_burn_round(objectives, rules, silences, now))
    }
}

/// What a burn-rate round found: observations, and the names of the SLOs it judged.
pub(super) type BurnRound = (Vec<Observation>, BTreeSet<String>);

/// See [`Rounds::slo_burn`]: the observations, with the names of the SLOs judged so alerts of
/// SLOs that are gone can be resolved; `None` when the round panicked.
async fn slo_burn_round(
    objectives: Arc<Objectives>,
    rules: Arc<RuleSet>,
    silences: Vec<SilenceSpan>,
    now: i64,
) -> Option<BurnRound> {
    tasks::blocking("slo-burn-rate-evaluation", move || {
        let mut out = Vec::new();
        let mut judged = BTreeSet::new();
        for slo in objectives.list() {
            if !slo.sli.is_sample_based() {
                continue;
            }
            judged.insert(slo.name.to_string());
            match burn_observations(&objectives, &rules, &slo, &silences, now) {
                Ok(observations) => out.extend(observations),
                Err(error) => {
                    tracing::warn!(slo = %slo.name, %error, "SLO burn rate could not be evaluated")
                }
            }
        }
        (out, judged)
    })
    .await
    .ok()
}

/// One SLO's burn-rate observations at `now`, one per rule of its period. Blocking.
fn burn_observations(
    objectives: &Objectives,
    rules: &RuleSet,
    slo: &SloDefinition,
    silences: &[SilenceSpan],
    now: i64,
) -> Result<Vec<Observation>, SloError> {
    let period_ms = slo.period.nominal_ms();
    let burn = burn_rules(period_ms);
    let zone = objectives.zone();
    let period = slo.period.containing(now, zone);
    let longest = burn.iter().map(|r| r.long_ms).max().unwrap_or(0);
    let span = Window::new((now - longest).min(period.start_ms), now);
    let maintenance = objectives.maintenance(silences, span)?;
    let ctx = EvalContext {
        maintenance: &maintenance,
        incidents: &[],
        zone,
        now_ms: now,
    };
    let source = objectives.source();
    let count = |ms: i64| -> Result<Tally, SloError> {
        tally(&source, slo, Window::new(now - ms, now), &ctx)
    };
    // The guard counts runs or slices; a time-slice tally counts milliseconds.
    let min_events = match slo.budgeting {
        Budgeting::Occurrences => objectives.config().burn_rate_min_events,
        Budgeting::Timeslices { slice_ms, .. } => {
            objectives.config().burn_rate_min_events * slice_ms as f64
        }
    };
    let mut verdicts = Vec::with_capacity(burn.len());
    for rule in &burn {
        let (long, short) = (count(rule.long_ms)?, count(rule.short_ms)?);
        verdicts.push(judge(rule, &long, &short, slo.target, min_events));
    }
    // The period's budget only matters, and is only worth reading, while something burns.
    let left = match verdicts.iter().any(|v| v.firing) {
        true => {
            let spent = tally(&source, slo, Window::new(period.start_ms, now), &ctx)?;
            Some(budget(&spent, slo.target))
        }
        false => None,
    };
    Ok(verdicts
        .iter()
        .map(|verdict| {
            let left = left.map(|budget| BudgetLeft {
                budget,
                exhausted_in_ms: verdict
                    .long_rate
                    .and_then(|rate| time_to_exhaustion_ms(&budget, rate, period_ms)),
            });
            rules.slo_burn(slo, verdict, left)
        })
        .collect())
}
