//! Hardware sensors: temperatures (sysinfo), fans and batteries (`/sys`, which sysinfo does not
//! read).

use super::{BatchBuilder, Metric, Sources};
use std::path::Path;
use sysinfo::Components;

const TEMPERATURE: Metric = Metric::gauge(
    "node_hwmon_temp_celsius",
    "Temperature reported by a hardware sensor.",
)
.with_decimals(1);
const TEMPERATURE_CRITICAL: Metric = Metric::gauge(
    "node_hwmon_temp_crit_celsius",
    "Critical temperature of a hardware sensor, as its driver reports it.",
)
.with_decimals(1);
const FAN: Metric = Metric::gauge("node_hwmon_fan_rpm", "Fan speed in revolutions per minute.");
const BATTERY_CHARGE: Metric = Metric::ratio(
    "node_battery_charge_ratio",
    "Charge of a battery relative to its current full capacity (0..1).",
);
const BATTERY_HEALTH: Metric = Metric::ratio(
    "node_battery_health_ratio",
    "Full capacity of a battery relative to its design capacity (0..1; wear lowers it).",
);
const BATTERY_STATE: Metric = Metric::gauge(
    "node_battery_state",
    "1 for the state a battery is in (charging, discharging, full, not_charging, unknown), 0 for the others.",
);
const BATTERY_CYCLES: Metric = Metric::counter(
    "node_battery_cycles_total",
    "Charge cycles a battery has been through.",
);

const BATTERY_STATES: [&str; 5] = ["charging", "discharging", "full", "not_charging", "unknown"];

pub fn collect_temperatures(
    components: &mut Components,
    sources: &mut Sources,
    out: &mut BatchBuilder,
) {
    components.refresh(true);
    let mut any = false;
    for c in components.iter() {
        let Some(t) = c.temperature().filter(|t| t.is_finite()) else {
            continue;
        };
        any = true;
        let labels = [("sensor", c.label())];
        out.push(TEMPERATURE, &labels, f64::from(t));
        if let Some(crit) = c.critical().filter(|t| t.is_finite() && *t > 0.0) {
            out.push(TEMPERATURE_CRITICAL, &labels, f64::from(crit));
        }
    }
    if any {
        sources.available("temperatures", out);
    } else {
        sources.unavailable("temperatures", "no temperature sensors found", out);
    }
}

/// Fans from `<sys>/class/hwmon/hwmon*/fan*_input`, labelled with the chip's `name`.
pub fn collect_fans(sys: &Path, sources: &mut Sources, out: &mut BatchBuilder) {
    let mut fans = Vec::new();
    for chip in read_dir_sorted(&sys.join("class/hwmon")) {
        let name = read_trimmed(&chip.join("name")).unwrap_or_else(|| file_name(&chip));
        for entry in read_dir_sorted(&chip) {
            let file = file_name(&entry);
            let Some(fan) = file.strip_suffix("_input").filter(|f| f.starts_with("fan")) else {
                continue;
            };
            if let Some(rpm) = read_trimmed(&entry).and_then(|v| v.parse::<f64>().ok()) {
                fans.push((name.clone(), fan.to_owned(), rpm));
            }
        }
    }
    if fans.is_empty() {
        sources.unavailable("fans", "no fan sensors in /sys/class/hwmon", out);
        return;
    }
    sources.available("fans", out);
    for (chip, fan, rpm) in fans {
        out.push(FAN, &[("chip", &chip), ("sensor", &fan)], rpm);
    }
}

/// Batteries from `<sys>/class/power_supply/*` whose `type` is `Battery`.
pub fn collect_batteries(sys: &Path, sources: &mut Sources, out: &mut BatchBuilder) {
    let batteries: Vec<_> = read_dir_sorted(&sys.join("class/power_supply"))
        .into_iter()
        .filter(|d| read_trimmed(&d.join("type")).as_deref() == Some("Battery"))
        .collect();
    if batteries.is_empty() {
        sources.unavailable("battery", "no battery in /sys/class/power_supply", out);
        return;
    }
    sources.available("battery", out);
    for dir in batteries {
        let battery = file_name(&dir);
        let labels = [("battery", battery.as_str())];
        let number = |f: &str| read_trimmed(&dir.join(f)).and_then(|v| v.parse::<f64>().ok());
        // Drivers report either energy (µWh) or charge (µAh) figures; both give the same ratios.
        let (now, full, design) = match number("energy_full") {
            Some(full) => (
                number("energy_now"),
                Some(full),
                number("energy_full_design"),
            ),
            None => (
                number("charge_now"),
                number("charge_full"),
                number("charge_full_design"),
            ),
        };
        match (now, full) {
            (Some(now), Some(full)) if full > 0.0 => {
                out.push(BATTERY_CHARGE, &labels, (now / full).min(1.0));
            }
            _ => {
                if let Some(percent) = number("capacity") {
                    out.push(BATTERY_CHARGE, &labels, percent / 100.0);
                }
            }
        }
        if let (Some(full), Some(design)) = (full, design)
            && design > 0.0
        {
            out.push(BATTERY_HEALTH, &labels, full / design);
        }
        if let Some(cycles) = number("cycle_count").filter(|c| *c > 0.0) {
            out.push(BATTERY_CYCLES, &labels, cycles);
        }
        let status = read_trimmed(&dir.join("status"))
            .unwrap_or_default()
            .to_ascii_lowercase()
            .replace(' ', "_");
        let current = if BATTERY_STATES.contains(&status.as_str()) {
            status.as_str()
        } else {
            "unknown"
        };
        for state in BATTERY_STATES {
            let value = f64::from(u8::from(state == current));
            out.push(
                BATTERY_STATE,
                &[("battery", battery.as_str()), ("state", state)],
                value,
            );
        }
    }
}

fn read_dir_sorted(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    out.sort();
    out
}

fn read_trimmed(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::test_support::value;
    use std::fs;

    fn write(root: &Path, path: &str, text: &str) {
        let path = root.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    #[test]
    fn reads_fans_and_batteries_from_a_sysfs_tree() {
        let sys = tempfile::tempdir().unwrap();
        let root = sys.path();
        write(root, "class/hwmon/hwmon0/name", "thinkpad\n");
        write(root, "class/hwmon/hwmon0/fan1_input", "2950\n");
        write(root, "class/hwmon/hwmon0/temp1_input", "45000\n");
        write(root, "class/power_supply/AC/type", "Mains\n");
        write(root, "class/power_supply/BAT0/type", "Battery\n");
        write(root, "class/power_supply/BAT0/status", "Discharging\n");
        write(root, "class/power_supply/BAT0/energy_now", "30000000\n");
        write(root, "class/power_supply/BAT0/energy_full", "40000000\n");
        write(
            root,
            "class/power_supply/BAT0/energy_full_design",
            "50000000\n",
        );
        write(root, "class/power_supply/BAT0/cycle_count", "312\n");

        let mut sources = Sources::default();
        let mut out = BatchBuilder::new(1_000);
        collect_fans(root, &mut sources, &mut out);
        collect_batteries(root, &mut sources, &mut out);
        let record = out.finish();
        let fan = [("chip", "thinkpad"), ("sensor", "fan1")];
        assert_eq!(value(&record, "node_hwmon_fan_rpm", &fan), Some(2950.0));
        let bat = [("battery", "BAT0")];
        assert_eq!(
            value(&record, "node_battery_charge_ratio", &bat),
            Some(0.75)
        );
        assert_eq!(value(&record, "node_battery_health_ratio", &bat), Some(0.8));
        assert_eq!(
            value(&record, "node_battery_cycles_total", &bat),
            Some(312.0)
        );
        let state = |s| {
            value(
                &record,
                "node_battery_state",
                &[("battery", "BAT0"), ("state", s)],
            )
        };
        assert_eq!(state("discharging"), Some(1.0));
        assert_eq!(state("charging"), Some(0.0));
        let available = |s| value(&record, "hcmon_agent_source_available", &[("source", s)]);
        assert_eq!(available("fans"), Some(1.0));
        assert_eq!(available("battery"), Some(1.0));
    }

    #[test]
    fn a_machine_without_sensors_reports_them_unavailable_not_zero() {
        let sys = tempfile::tempdir().unwrap();
        let mut sources = Sources::default();
        let mut out = BatchBuilder::new(1_000);
        collect_fans(sys.path(), &mut sources, &mut out);
        collect_batteries(sys.path(), &mut sources, &mut out);
        let record = out.finish();
        let available = |s| value(&record, "hcmon_agent_source_available", &[("source", s)]);
        assert_eq!(available("fans"), Some(0.0));
        assert_eq!(available("battery"), Some(0.0));
        assert_eq!(value(&record, "node_hwmon_fan_rpm", &[]), None);
        assert_eq!(
            record.series.len(),
            2,
            "nothing but the two availability flags"
        );
    }
}
