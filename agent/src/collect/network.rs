//! Network traffic, packets and errors per interface, as counters since boot.

use super::{BatchBuilder, Metric};
use sysinfo::Networks;

const RX_BYTES: Metric = Metric::counter("node_network_receive_bytes_total", "Bytes received.");
const TX_BYTES: Metric = Metric::counter("node_network_transmit_bytes_total", "Bytes sent.");
const RX_PACKETS: Metric =
    Metric::counter("node_network_receive_packets_total", "Packets received.");
const TX_PACKETS: Metric = Metric::counter("node_network_transmit_packets_total", "Packets sent.");
const RX_ERRORS: Metric = Metric::counter("node_network_receive_errors_total", "Receive errors.");
const TX_ERRORS: Metric = Metric::counter("node_network_transmit_errors_total", "Transmit errors.");

pub fn collect(networks: &mut Networks, out: &mut BatchBuilder) {
    networks.refresh(true);
    let mut interfaces: Vec<_> = networks.iter().collect();
    interfaces.sort_by(|a, b| a.0.cmp(b.0));
    for (name, data) in interfaces {
        let name = name.to_string_lossy();
        let labels = [("interface", name.as_ref())];
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
    }
}
