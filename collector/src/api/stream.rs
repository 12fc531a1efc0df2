//! The live stream's messages (`GET /api/v1/stream`, a WebSocket of JSON text frames): what a
//! client sends ([`ClientMessage`]) and what the collector sends ([`ServerMessage`]), tagged
//! by `type`. docs/stream.md describes the protocol; `http/stream.rs` serves it.

use super::Metric;
use super::alerts::AlertResponse;
use super::analytics::SeriesAnomaly;
use serde::{Deserialize, Serialize};

/// A frame from the client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// New stored samples of the series any of `match` selects, as `samples` messages
    /// carrying `id`. Subscribing again with the same `id` replaces that subscription.
    Subscribe {
        /// Chosen by the client; names the subscription in `samples` and `unsubscribe`.
        id: String,
        /// Series selectors (`node_cpu_seconds_total{node="nas"}`).
        #[serde(rename = "match")]
        selectors: Vec<String>,
    },
    Unsubscribe {
        id: String,
    },
}

/// A frame from the collector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The first message of every connection: the collector's clock, Unix ms.
    Hello { now_ms: i64 },
    /// New stored samples of a subscription's series (staleness markers left out).
    Samples {
        /// The subscription's id.
        id: String,
        series: Vec<StreamSeries>,
    },
    /// An alert whose state changed: one element of `GET /api/v1/alerts`.
    Alert { alert: Box<AlertResponse> },
    /// A series whose live verdict became anomalous: one element of `GET /api/v1/anomalies`.
    Anomaly {
        metric: Metric,
        verdict: Box<SeriesAnomaly>,
    },
    /// The collector dropped `dropped` of its internal messages (batches of stored samples,
    /// or alert and anomaly events) because this client read too slowly; query what is missing
    /// with `/api/v1/query_range`.
    Lagged { dropped: u64 },
    /// A frame the collector could not take (bad JSON, a bad selector, over a limit); the
    /// connection stays open.
    Error { error: String },
}

/// One series' new points in a `samples` message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamSeries {
    pub metric: Metric,
    /// Oldest first.
    pub points: Vec<StreamPoint>,
}

/// `[<Unix ms>, <value>]`: the value is `null` when it is not finite (NaN, ±Inf), which JSON
/// cannot write as a number.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StreamPoint(pub i64, pub Option<f64>);

impl StreamPoint {
    pub fn new(timestamp_ms: i64, value: f64) -> Self {
        Self(timestamp_ms, value.is_finite().then_some(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn messages_have_the_documented_json() {
        let subscribe: ClientMessage = serde_json::from_value(
            json!({"type": "subscribe", "id": "cpu", "match": ["node_cpu_seconds_total"]}),
        )
        .unwrap();
        assert_eq!(
            subscribe,
            ClientMessage::Subscribe {
                id: "cpu".into(),
                selectors: vec!["node_cpu_seconds_total".into()]
            }
        );
        let typo = json!({"type": "subscribe", "id": "cpu", "matches": ["up"]});
        assert!(serde_json::from_value::<ClientMessage>(typo).is_err());
        let samples = ServerMessage::Samples {
            id: "cpu".into(),
            series: vec![StreamSeries {
                metric: [("__name__".to_owned(), "up".to_owned())].into(),
                points: vec![
                    StreamPoint::new(1000, 1.5),
                    StreamPoint::new(2000, f64::NAN),
                ],
            }],
        };
        assert_eq!(
            serde_json::to_value(&samples).unwrap(),
            json!({"type": "samples", "id": "cpu",
                   "series": [{"metric": {"__name__": "up"}, "points": [[1000, 1.5], [2000, null]]}]})
        );
        let lagged = serde_json::to_value(ServerMessage::Lagged { dropped: 3 }).unwrap();
        assert_eq!(lagged, json!({"type": "lagged", "dropped": 3}));
    }
}
