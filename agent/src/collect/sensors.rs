//! Hardware sensors: temperatures and fans from `/sys/class/hwmon` under node_exporter's names
//! and labels (its `chip` names, `sensor` = `temp1`, `fan1`, ...), and batteries from
//! `/sys/class/power_supply` as hcmon's own figures.

use super::{BatchBuilder, Metric, Sources};
use std::path::Path;

const TEMPERATURE: Metric = Metric::gauge(
    "node_hwmon_temp_celsius",
    "Hardware monitor for temperature (input).",
)
.with_decimals(1);
const TEMPERATURE_CRITICAL: Metric = Metric::gauge(
    "node_hwmon_temp_crit_celsius",
    "Hardware monitor for temperature (crit).",
)
.with_decimals(1);
const FAN: Metric = Metric::gauge(
    "node_hwmon_fan_rpm",
    "Hardware monitor for fan revolutions per minute (input).",
);
const CHIP_NAME: Metric = Metric::gauge(
    "node_hwmon_chip_names",
    "Annotation metric for human-readable chip names.",
);
const SENSOR_LABEL: Metric = Metric::gauge(
    "node_hwmon_sensor_label",
    "Label for given chip and sensor.",
);
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

/// node_exporter's `chip` label for a hwmon folder: made from the path of its device (stable
/// across boots, unlike the hwmonN numbering), else from its `name` file, else the folder's name.
fn chip_label(dir: &Path) -> String {
    if let Ok(device) = std::fs::canonicalize(dir.join("device")) {
        let name = device.file_name().map(|n| clean(&n.to_string_lossy()));
        let kind = device
            .parent()
            .and_then(Path::file_name)
            .map(|n| clean(&n.to_string_lossy()));
        match (kind, name) {
            (Some(kind), Some(name)) if !kind.is_empty() && !name.is_empty() => {
                return format!("{kind}_{name}");
            }
            (_, Some(name)) if !name.is_empty() => return name,
            _ => {}
        }
    }
    if let Some(name) = read_trimmed(&dir.join("name")).map(|n| clean(&n))
        && !name.is_empty()
    {
        return name;
    }
    let real = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned());
    clean(&file_name(&real))
}

/// node_exporter's cleaning of a chip name: lower case, anything but `[a-z0-9:_]` made `_`, and
/// no `_` at either end.
fn clean(name: &str) -> String {
    let lower = name.to_lowercase();
    let replaced: String = lower
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | ':' | '_' => c,
            _ => '_',
        })
        .collect();
    replaced.trim_matches('_').to_owned()
}

/// Temperatures and fans of every chip in `<sys>/class/hwmon`, with the annotations node_exporter
/// dashboards join on: the chip's human-readable name and each sensor's label.
pub fn collect_hwmon(sys: &Path, sources: &mut Sources, out: &mut BatchBuilder) {
    let (mut temperatures, mut fans) = (false, false);
    for dir in read_dir_sorted(&sys.join("class/hwmon")) {
        let chip = chip_label(&dir);
        if let Some(name) = read_trimmed(&dir.join("name")).map(|n| clean(&n)) {
            out.push(CHIP_NAME, &[("chip", &chip), ("chip_name", &name)], 1.0);
        }
        for entry in read_dir_sorted(&dir) {
            let file = file_name(&entry);
            let Some(sensor) = file.strip_suffix("_input") else {
                continue;
            };
            let number = |suffix: &str| {
                read_trimmed(&dir.join(format!("{sensor}_{suffix}")))
                    .and_then(|v| v.parse::<f64>().ok())
            };
            let labels = [("chip", chip.as_str()), ("sensor", sensor)];
            if sensor.starts_with("temp") {
                let Some(millidegrees) = number("input") else {
                    continue;
                };
                temperatures = true;
                out.push(TEMPERATURE, &labels, millidegrees / 1000.0);
                if let Some(crit) = number("crit") {
                    out.push(TEMPERATURE_CRITICAL, &labels, crit / 1000.0);
                }
            } else if sensor.starts_with("fan") {
                let Some(rpm) = number("input") else {
                    continue;
                };
                fans = true;
                out.push(FAN, &labels, rpm);
            } else {
                continue;
            }
            if let Some(label) = read_trimmed(&dir.join(format!("{sensor}_label"))) {
                let labels = [
                    ("chip", chip.as_str()),
                    ("label", &label),
                    ("sensor", sensor),
                ];
                out.push(SENSOR_LABEL, &labels, 1.0);
            }
        }
    }
    if temperatures {
        sources.available("temperatures", out);
    } else {
        sources.unavailable(
            "temperatures",
            "no temperature sensors in /sys/class/hwmon",
            out,
        );
    }
    if fans {
        sources.available("fans", out);
    } else {
        sources.unavailable("fans", "no fan sensors in /sys/class/hwmon", out);
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
        write(root, "class/hwmon/hwmon0/temp1_crit", "98000\n");
        write(root, "class/hwmon/hwmon0/temp1_label", "CPU\n");
        // A chip with a device: named from the device's path, as node_exporter names it.
        write(
            root,
            "devices/platform/coretemp.0/hwmon/hwmon1/name",
            "coretemp\n",
        );
        write(
            root,
            "devices/platform/coretemp.0/hwmon/hwmon1/temp2_input",
            "51500\n",
        );
        std::os::unix::fs::symlink(
            root.join("devices/platform/coretemp.0"),
            root.join("devices/platform/coretemp.0/hwmon/hwmon1/device"),
        )
        .unwrap();
        std::os::unix::fs::symlink(
            root.join("devices/platform/coretemp.0/hwmon/hwmon1"),
            root.join("class/hwmon/hwmon1"),
        )
        .unwrap();
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
        collect_hwmon(root, &mut sources, &mut out);
        collect_batteries(root, &mut sources, &mut out);
        let record = out.finish();
        let fan = [("chip", "thinkpad"), ("sensor", "fan1")];
        assert_eq!(value(&record, "node_hwmon_fan_rpm", &fan), Some(2950.0));
        let cpu = [("chip", "thinkpad"), ("sensor", "temp1")];
        assert_eq!(value(&record, "node_hwmon_temp_celsius", &cpu), Some(45.0));
        assert_eq!(
            value(&record, "node_hwmon_temp_crit_celsius", &cpu),
            Some(98.0)
        );
        let label = [("chip", "thinkpad"), ("sensor", "temp1"), ("label", "CPU")];
        assert_eq!(value(&record, "node_hwmon_sensor_label", &label), Some(1.0));
        let core = [("chip", "platform_coretemp_0"), ("sensor", "temp2")];
        assert_eq!(value(&record, "node_hwmon_temp_celsius", &core), Some(51.5));
        let names = [("chip", "platform_coretemp_0"), ("chip_name", "coretemp")];
        assert_eq!(value(&record, "node_hwmon_chip_names", &names), Some(1.0));
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
        assert_eq!(available("temperatures"), Some(1.0));
        assert_eq!(available("battery"), Some(1.0));
    }

    #[test]
    fn a_machine_without_sensors_reports_them_unavailable_not_zero() {
        let sys = tempfile::tempdir().unwrap();
        let mut sources = Sources::default();
        let mut out = BatchBuilder::new(1_000);
        collect_hwmon(sys.path(), &mut sources, &mut out);
        collect_batteries(sys.path(), &mut sources, &mut out);
        let record = out.finish();
        let available = |s| value(&record, "hcmon_agent_source_available", &[("source", s)]);
        assert_eq!(available("temperatures"), Some(0.0));
        assert_eq!(available("fans"), Some(0.0));
        assert_eq!(available("battery"), Some(0.0));
        assert_eq!(value(&record, "node_hwmon_fan_rpm", &[]), None);
        assert_eq!(
            record.series.len(),
            3,
            "nothing but the three availability flags"
        );
    }
}
