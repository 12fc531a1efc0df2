//! Network traffic, packets, errors and drops per interface, as counters since boot, under
//! node_exporter's names and its `device` label.

use super::{BatchBuilder, Metric, Sources};
use std::path::Path;
use sysinfo::Networks;

const RX_BYTES: Metric = Metric::counter("node_network_receive_bytes_total", "Bytes received.");
const TX_BYTES: Metric = Metric::counter("node_network_transmit_bytes_total", "Bytes sent.");
const RX_PACKETS: Metric =
    Metric::counter("node_network_receive_packets_total", "Packets received.");
const TX_PACKETS: Metric = Metric::counter("node_network_transmit_packets_total", "Packets sent.");
const RX_ERRORS: Metric = Metric::counter("node_network_receive_errs_total", "Receive errors.");
const TX_ERRORS: Metric = Metric::counter("node_network_transmit_errs_total", "Transmit errors.");
const RX_DROPS: Metric = Metric::counter(
    "node_network_receive_drop_total",
    "Received packets dropped (no buffer, filtered, unknown protocol).",
);
const TX_DROPS: Metric = Metric::counter(
    "node_network_transmit_drop_total",
    "Packets dropped before they could be sent.",
);

/// Drop counters are not in sysinfo: they come from `<sys>/class/net/<if>/statistics`.
pub fn collect(networks: &mut Networks, sys: &Path, sources: &mut Sources, out: &mut BatchBuilder) {
    networks.refresh(true);
    let mut interfaces: Vec<_> = networks.iter().collect();
    interfaces.sort_by(|a, b| a.0.cmp(b.0));
    let (mut drops_found, mut drops_missing) = (false, false);
    for (name, data) in interfaces {
        let name = name.to_string_lossy();
        let labels = [("device", name.as_ref())];
        out.push(RX_BYTES, &labels, data.total_received() as f64);
        out.push(TX_BYTES, &labels, data.total_transmitted() as f64);
        out.push(RX_PACKETS, &labels, data.total_packets_received() as f64);
        out.push(TX_PACKETS, &labels, data.total_packets_transmitted() as f64);
        out.push(RX_ERRORS, &labels, data.total_errors_on_received() as f64);
        out.push(
            TX_ERRORS,
            &labels,
            data.total_errors_on_transmitted() as f64,
        );
        let statistics = sys.join("class/net").join(name.as_ref()).join("statistics");
        let counter = |file: &str| {
            std::fs::read_to_string(statistics.join(file))
                .ok()
                .and_then(|t| t.trim().parse::<u64>().ok())
        };
        match (counter("rx_dropped"), counter("tx_dropped")) {
            (Some(rx), Some(tx)) => {
                out.push(RX_DROPS, &labels, rx as f64);
                out.push(TX_DROPS, &labels, tx as f64);
                drops_found = true;
            }
            _ => drops_missing = true,
        }
    }
    if drops_found {
        sources.available("network_drops", out);
    } else if drops_missing {
        sources.unavailable("network_drops", "no /sys/class/net/*/statistics", out);
    }
}
