//! The maintenance windows an SLO evaluation leaves out of its denominators, from three places:
//! the `[[slo.maintenance]]` windows of the config, annotations tagged `maintenance` (spans
//! only; one about a node applies to that node's series and incidents), and silences marked
//! as maintenance (their matchers, less the alert name, select the series; a daily recurring
//! silence becomes one window per day of the evaluated range). Pure: the caller reads the
//! annotations and silences.

use crate::analytics::slo::{MaintenanceWindow, Window};
use crate::before_after::Annotation;
use hcmon_common::{MatchOp, Matcher, Selector};

/// The tag that makes an annotation a maintenance window.
pub const MAINTENANCE_TAG: &str = "maintenance";

const DAY_MS: i64 = 86_400_000;
const MINUTE_MS: i64 = 60_000;

/// A silence marked as maintenance, as the SLO layer sees it (`alerting` sits above this layer
/// and converts its `SilenceRecord`s).
#[derive(Debug, Clone, PartialEq)]
pub struct SilenceSpan {
    pub starts_ms: i64,
    pub ends_ms: i64,
    /// Recurring daily between these minutes of the day (UTC), within starts..ends; the
    /// window may wrap past midnight.
    pub daily: Option<(u32, u32)>,
    /// A selector over alert labels, the metric name standing for the alert name.
    pub matchers: String,
    pub reason: String,
}

/// The maintenance windows of annotations tagged [`MAINTENANCE_TAG`] (spans only).
pub fn annotation_windows(annotations: &[Annotation]) -> Vec<MaintenanceWindow> {
    annotations
        .iter()
        .filter(|a| a.tags.iter().any(|t| t == MAINTENANCE_TAG))
        .filter_map(|a| {
            let end_ms = a.end_ms.filter(|end| *end > a.time_ms)?;
            let matchers = match &a.node {
                Some(node) => Some(Selector {
                    matchers: vec![Matcher::new("node", MatchOp::Equal, node).ok()?],
                }),
                None => None,
            };
            Some(MaintenanceWindow {
                start_ms: a.time_ms,
                end_ms,
                matchers,
                reason: format!("annotation {}: {}", a.id, a.text),
            })
        })
        .collect()
}

/// The windows of maintenance silences that overlap `range`; a daily one yields a window per
/// day (clipped to the silence's own range). A silence whose matchers do not parse is left
/// out (the alerting book refuses those before they are stored).
pub fn silence_windows(silences: &[SilenceSpan], range: Window) -> Vec<MaintenanceWindow> {
    let mut out = Vec::new();
    for silence in silences {
        let Some(span) = Window::new(silence.starts_ms, silence.ends_ms).intersect(&range) else {
            continue;
        };
        let Ok(selector) = Selector::parse(&silence.matchers) else {
            continue;
        };
        let matchers = series_matchers(selector);
        let window = |w: Window| MaintenanceWindow {
            start_ms: w.start_ms,
            end_ms: w.end_ms,
            matchers: matchers.clone(),
            reason: silence.reason.clone(),
        };
        match silence.daily {
            None => out.push(window(span)),
            Some((from, to)) => {
                for daily in daily_windows(from, to, span) {
                    out.push(window(daily));
                }
            }
        }
    }
    out
}

/// A silence's selector as one over series: the alert name (the metric name of a silence's
/// selector) says nothing about series, so it goes; nothing left selects everything.
fn series_matchers(selector: Selector) -> Option<Selector> {
    let matchers: Vec<Matcher> = selector
        .matchers
        .into_iter()
        .filter(|m| m.name != hcmon_common::METRIC_NAME_LABEL && m.name != "alertname")
        .collect();
    (!matchers.is_empty()).then_some(Selector { matchers })
}

/// The daily window `from..to` (minutes of the UTC day, wrapping past midnight when `from >
/// to`) on every day that touches `span`, clipped to it.
fn daily_windows(from: u32, to: u32, span: Window) -> Vec<Window> {
    let (from, to) = (i64::from(from) * MINUTE_MS, i64::from(to) * MINUTE_MS);
    let length = match from <= to {
        true => to - from,
        false => DAY_MS - from + to,
    };
    // From the day before the span starts, for a window wrapping into its first day.
    let mut day = span.start_ms.div_euclid(DAY_MS) * DAY_MS - DAY_MS;
    let mut out = Vec::new();
    while day < span.end_ms {
        let daily = Window::new(day + from, day + from + length);
        if let Some(clipped) = daily.intersect(&span) {
            out.push(clipped);
        }
        day += DAY_MS;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;
    /// 2024-01-01 00:00 UTC.
    const DAY0: i64 = 1_704_067_200_000;

    fn span(matchers: &str, daily: Option<(u32, u32)>, starts: i64, ends: i64) -> SilenceSpan {
        SilenceSpan {
            starts_ms: starts,
            ends_ms: ends,
            daily,
            matchers: matchers.into(),
            reason: "patching".into(),
        }
    }

    fn bounds(windows: &[MaintenanceWindow]) -> Vec<(i64, i64)> {
        windows
            .iter()
            .map(|w| ((w.start_ms - DAY0) / 60_000, (w.end_ms - DAY0) / 60_000))
            .collect()
    }

    #[test]
    fn a_one_off_silence_is_clipped_to_the_range_and_loses_its_alert_name() {
        let s = span("HighCpu{node=\"nas\"}", None, DAY0 - HOUR, DAY0 + 2 * HOUR);
        let got = silence_windows(&[s], Window::new(DAY0, DAY0 + DAY_MS));
        assert_eq!(bounds(&got), vec![(0, 120)]);
        let selector = got[0].matchers.as_ref().unwrap();
        assert_eq!(selector.matchers.len(), 1);
        assert_eq!(selector.matchers[0].name, "node");
        let only_name = span("HighCpu", None, DAY0, DAY0 + HOUR);
        let got = silence_windows(&[only_name], Window::new(DAY0, DAY0 + DAY_MS));
        assert!(got[0].matchers.is_none(), "applies to everything");
    }

    #[test]
    fn daily_silences_expand_to_one_window_a_day_including_those_past_midnight() {
        // 02:00-03:00 daily for three days, evaluated over the middle of the range.
        let s = span("{node=\"nas\"}", Some((120, 180)), DAY0, DAY0 + 3 * DAY_MS);
        let got = silence_windows(&[s], Window::new(DAY0 + 150 * 60_000, DAY0 + 5 * DAY_MS));
        assert_eq!(bounds(&got), vec![(150, 180), (1560, 1620), (3000, 3060)]);
        // 23:00-01:00: the first day's window starts the day before the silence, clipped.
        let s = span("{node=\"nas\"}", Some((1380, 60)), DAY0, DAY0 + 2 * DAY_MS);
        let got = silence_windows(&[s], Window::new(DAY0, DAY0 + 2 * DAY_MS));
        assert_eq!(bounds(&got), vec![(0, 60), (1380, 1500), (2820, 2880)]);
    }

    #[test]
    fn silences_outside_the_range_or_unparsable_give_nothing() {
        let before = span("{node=\"nas\"}", None, DAY0 - 2 * HOUR, DAY0 - HOUR);
        let broken = span("{node=", None, DAY0, DAY0 + HOUR);
        let got = silence_windows(&[before, broken], Window::new(DAY0, DAY0 + DAY_MS));
        assert!(got.is_empty());
    }

    #[test]
    fn maintenance_annotations_with_a_span_become_windows_scoped_to_their_node() {
        let annotation =
            |id: &str, tags: &[&str], end: Option<i64>, node: Option<&str>| Annotation {
                id: id.into(),
                time_ms: DAY0,
                end_ms: end,
                text: "kernel update".into(),
                tags: tags.iter().map(|t| t.to_string()).collect(),
                node: node.map(str::to_owned),
                created_by: "admin".into(),
                created_ms: DAY0,
            };
        let got = annotation_windows(&[
            annotation("a1", &["maintenance"], Some(DAY0 + HOUR), Some("nas")),
            annotation("a2", &["deploy"], Some(DAY0 + HOUR), None),
            annotation("a3", &["maintenance"], None, None),
            annotation("a4", &["maintenance", "x"], Some(DAY0 + HOUR), None),
        ]);
        assert_eq!(bounds(&got), vec![(0, 60), (0, 60)]);
        let nas = got[0].matchers.as_ref().unwrap();
        assert_eq!(
            (
                nas.matchers[0].name.as_str(),
                nas.matchers[0].value.as_str()
            ),
            ("node", "nas")
        );
        assert!(got[1].matchers.is_none());
        assert!(got[0].reason.contains("kernel update"));
    }
}
