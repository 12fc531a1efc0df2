//! What recording costs the application: `record_metric` and a timer guard, mean nanoseconds
//! per call over a million calls, sending to a UDP socket on loopback drained by a thread (as
//! the agent would), and with no agent at all; beside the baseline of an unbuffered StatsD
//! client (one datagram per line), measured in the same run.
//!
//! `cargo bench -p hcmon-client --bench record` (`just bench-client`).

#![allow(clippy::print_stdout)]

use hcmon_client::Monitor;
use std::net::UdpSocket;
use std::time::Instant;

const CALLS: u32 = 1_000_000;

fn per_call(mut work: impl FnMut(u32)) -> f64 {
    for i in 0..10_000 {
        work(i);
    }
    let start = Instant::now();
    for i in 0..CALLS {
        work(i);
    }
    start.elapsed().as_nanos() as f64 / f64::from(CALLS)
}

fn main() {
    let sink = UdpSocket::bind("127.0.0.1:0").expect("a loopback socket");
    let address = sink.local_addr().expect("bound").to_string();
    std::thread::spawn(move || {
        let mut buf = [0u8; 65_536];
        while sink.recv(&mut buf).is_ok() {}
    });
    let monitor = Monitor::builder("bench")
        .agent(&address)
        .labels(&["region"])
        .build();
    let gauge = per_call(|i| {
        monitor.record_metric(
            "queue_depth",
            f64::from(i % 100),
            &[("region", "eu"), ("request_id", "r-1")],
        )
    });
    let timer = per_call(|_| drop(monitor.timer("data_processing_time")));
    // The baseline: a StatsD client without a buffer, one datagram per line.
    let naive = UdpSocket::bind("127.0.0.1:0").expect("a loopback socket");
    naive.connect(&address).expect("connects");
    let unbuffered = per_call(|i| {
        let line = format!("queue_depth:{}|g|#service:bench,region:eu", i % 100);
        let _ = naive.send(line.as_bytes());
    });
    let absent = Monitor::builder("bench").agent("127.0.0.1:9").build();
    let no_agent = per_call(|i| absent.record_metric("queue_depth", f64::from(i), &[]));
    println!("record_metric (label + annotation): {gauge:.0} ns/call");
    println!("timer guard:                        {timer:.0} ns/call");
    println!("record_metric, no agent listening:  {no_agent:.0} ns/call");
    println!(
        "baseline, one send(2) per line:     {unbuffered:.0} ns/call ({:.1}x record_metric)",
        unbuffered / gauge
    );
    println!(
        "target: under 1000 ns/call; lines the socket refused: {}",
        monitor.dropped() + absent.dropped()
    );
}
