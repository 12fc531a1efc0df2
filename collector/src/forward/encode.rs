//! Remote-write request bodies (pure): 1.0's `WriteRequest` or 2.0's `Request` with its symbol
//! table, protobuf then snappy block format, as every receiver expects.

use super::config::Protocol;
use super::relabel::SentLabels;
use crate::storage::MetricKind;
use hcmon_proto::{prometheus as v1, prometheus_v2 as v2};
use prost::Message;
use std::collections::HashMap;

/// One series' samples in a request, in stored order.
pub struct Outgoing<'a> {
    pub labels: &'a SentLabels,
    pub kind: MetricKind,
    pub help: &'a str,
    pub samples: Vec<(i64, f64)>,
}

/// The headers that go with a body of `protocol`.
pub fn content_type(protocol: Protocol) -> (&'static str, &'static str) {
    match protocol {
        Protocol::V1 => ("application/x-protobuf", "0.1.0"),
        Protocol::V2 => (
            "application/x-protobuf;proto=io.prometheus.write.v2.Request",
            "2.0.0",
        ),
    }
}

/// The snappy-compressed body.
pub fn encode(protocol: Protocol, series: &[Outgoing<'_>]) -> Vec<u8> {
    let bytes = match protocol {
        Protocol::V1 => v1_request(series).encode_to_vec(),
        Protocol::V2 => v2_request(series).encode_to_vec(),
    };
    snap::raw::Encoder::new()
        .compress_vec(&bytes)
        .expect("snappy takes any input below 4 GiB")
}

fn v1_request(series: &[Outgoing<'_>]) -> v1::WriteRequest {
    v1::WriteRequest {
        timeseries: series
            .iter()
            .map(|s| v1::TimeSeries {
                labels: s
                    .labels
                    .iter()
                    .map(|(name, value)| v1::Label {
                        name: name.clone(),
                        value: value.clone(),
                    })
                    .collect(),
                samples: s
                    .samples
                    .iter()
                    .map(|&(timestamp, value)| v1::Sample { value, timestamp })
                    .collect(),
            })
            .collect(),
    }
}

/// 2.0's symbol table: each distinct string once, the empty string first, as the
/// specification requires.
struct Symbols<'a> {
    table: Vec<String>,
    index: HashMap<&'a str, u32>,
}

impl<'a> Symbols<'a> {
    fn new() -> Self {
        Self {
            table: vec![String::new()],
            index: HashMap::from([("", 0)]),
        }
    }

    fn of(&mut self, text: &'a str) -> u32 {
        *self.index.entry(text).or_insert_with(|| {
            self.table.push(text.to_owned());
            (self.table.len() - 1) as u32
        })
    }
}

fn v2_request<'a>(series: &[Outgoing<'a>]) -> v2::Request {
    let mut symbols = Symbols::new();
    let timeseries = series
        .iter()
        .map(|s| {
            let labels: &'a SentLabels = s.labels;
            let labels_refs = labels
                .iter()
                .flat_map(|(n, v)| [symbols.of(n), symbols.of(v)])
                .collect();
            let r#type = match s.kind {
                MetricKind::Counter => v2::metadata::MetricType::Counter,
                MetricKind::Gauge => v2::metadata::MetricType::Gauge,
            };
            v2::TimeSeries {
                labels_refs,
                samples: s
                    .samples
                    .iter()
                    .map(|&(timestamp, value)| v2::Sample { value, timestamp })
                    .collect(),
                metadata: Some(v2::Metadata {
                    r#type: r#type as i32,
                    help_ref: symbols.of(s.help),
                    unit_ref: 0,
                }),
                ..Default::default()
            }
        })
        .collect();
    v2::Request {
        symbols: symbols.table,
        timeseries,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_protocols_decode_back_to_the_series_sent() {
        let labels = vec![
            ("__name__".to_owned(), "node_load1".to_owned()),
            ("node".to_owned(), "nas".to_owned()),
        ];
        let series = [Outgoing {
            labels: &labels,
            kind: MetricKind::Gauge,
            help: "1m load average.",
            samples: vec![(1000, 0.5), (2000, f64::from_bits(0x7ff0_0000_0000_0002))],
        }];
        let raw = |protocol| {
            snap::raw::Decoder::new()
                .decompress_vec(&encode(protocol, &series))
                .unwrap()
        };
        let one = v1::WriteRequest::decode(raw(Protocol::V1).as_slice()).unwrap();
        assert_eq!(one.timeseries[0].labels[1].value, "nas");
        assert_eq!(one.timeseries[0].samples[1].timestamp, 2000);
        assert_eq!(
            one.timeseries[0].samples[1].value.to_bits(),
            0x7ff0_0000_0000_0002
        );
        let two = v2::Request::decode(raw(Protocol::V2).as_slice()).unwrap();
        assert_eq!(two.symbols[0], "");
        let refs = &two.timeseries[0].labels_refs;
        let text: Vec<&str> = refs
            .iter()
            .map(|&r| two.symbols[r as usize].as_str())
            .collect();
        assert_eq!(text, ["__name__", "node_load1", "node", "nas"]);
        let metadata = two.timeseries[0].metadata.unwrap();
        assert_eq!(two.symbols[metadata.help_ref as usize], "1m load average.");
        assert_eq!(metadata.r#type, v2::metadata::MetricType::Gauge as i32);
    }
}
