//! Alerts as structured log lines: one event per alert on the target `hcmon::alert`, so a log
//! shipper (journald, Loki, Vector) can route them by target and fields without parsing text.

use super::{Notification, render};

pub(super) struct LogNotifier;

impl LogNotifier {
    /// Logging cannot fail: the event goes to whatever subscriber the process installed.
    pub(super) fn send(&self, n: &Notification) {
        let subject = render::subject(n);
        for alert in &n.alerts {
            tracing::info!(
                target: "hcmon::alert",
                kind = render::kind_name(n.kind),
                group = %n.group,
                alertname = alert.name(),
                node = alert.labels.get("node").map_or("", String::as_str),
                severity = render::severity_name(alert.severity),
                state = %alert.state,
                value = alert.value,
                summary = alert.annotations.get("summary").map_or("", String::as_str),
                id = %alert.id,
                "{subject}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::render::tests::firing;
    use super::*;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    /// Collects formatted log output.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("capture lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn one_structured_event_per_alert() {
        let capture = Capture::default();
        let sink = capture.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || sink.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || LogNotifier.send(&firing()));
        let output = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = output.lines().collect();
        assert_eq!(lines.len(), 2, "{output}");
        for part in [
            "INFO hcmon::alert: [FIRING:2] HighCpu, DiskFilling on nas (critical)",
            "kind=\"firing\"",
            "group=node=\"nas\"",
            "alertname=\"HighCpu\"",
            "node=\"nas\"",
            "severity=\"error\"",
            "state=firing",
            "value=97.5",
            "summary=\"HighCpu is above its threshold\"",
            "id=HighCpu-nas",
        ] {
            assert!(lines[0].contains(part), "{part:?} missing: {}", lines[0]);
        }
        assert!(lines[1].contains("alertname=\"DiskFilling\""));
    }
}
