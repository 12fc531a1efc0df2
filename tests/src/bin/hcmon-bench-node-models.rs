//! `hcmon-bench-node-models`: the per-node models (Isolation Forest and One-Class SVM) on a
//! labelled corpus, streamed as a live collector would run them.
//!
//! Reads a folder of labelled univariate CSVs named `machine-X-Y-dimNN.csv` (header
//! `timestamp,value,label`; default `../shared/detection/smd` beside the repository), groups them
//! by machine and puts each machine's metrics side by side: one feature vector per row, labelled
//! 1 when any metric is. Each model then trains on the first 15 % of the rows (the scorer's
//! probation), retrains every `--retrain` rows (1,440: a day at one row a minute) on the last
//! `--window` rows (10,080: a week), and scores every row with the model trained before it.
//! Rows before the first training score 0.
//!
//! Writes into `--output`: `labels/machine-X-Y.csv` (`timestamp,value,label`, value 0) and
//! `results/<model>/machine-X-Y.csv` (`timestamp,value,anomaly_score`, value 0) for
//! `isolation_forest` and `one_class_svm`, ready for `score.py --labels … --results …`. Both
//! scores mean the same at 0.5: the model's `is_anomaly` threshold. The One-Class SVM's score is
//! calibrated so already; the forest's raw score is mapped piecewise linearly (monotone, so
//! `--optimize` is unaffected) so that its threshold lands on 0.5, and the raw score is written
//! as `results/isolation_forest_raw` too. Prints training and scoring rows per second per model.
//!
//! Run by `deploy/dev.sh bench-node-models`, which then runs the scorer.
// A benchmark's report goes to stdout.
#![allow(clippy::print_stdout)]

use anyhow::{Context, bail, ensure};
use hcmon_collector::analytics::forest::{ForestConfig, IsolationForest};
use hcmon_collector::analytics::ocsvm::OneClassSvm;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The scorer's probation share (`PROBATION_FRACTION` in score.py).
const PROBATION: f64 = 0.15;

struct Args {
    input: PathBuf,
    output: PathBuf,
    window: usize,
    retrain: usize,
    /// The models' `contamination` (ν for the SVM); the live default unless given.
    contamination: f64,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        input: Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/detection/smd"),
        output: std::env::temp_dir().join("hcmon-bench-node-models"),
        window: 10_080,
        retrain: 1_440,
        contamination: ForestConfig::default().contamination,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--output" => args.output = value()?.into(),
            "--window" => args.window = value()?.parse().context("--window (rows)")?,
            "--retrain" => args.retrain = value()?.parse().context("--retrain (rows)")?,
            "--contamination" => {
                args.contamination = value()?
                    .parse()
                    .context("--contamination (a share of rows)")?;
            }
            "--help" => {
                println!(
                    "hcmon-bench-node-models [DIR (../shared/detection/smd)] [--output DIR] \
                     [--window ROWS (10080)] [--retrain ROWS (1440)] [--contamination SHARE \
                     (the live default)]\nStreams each machine's \
                     metrics through the Isolation Forest and the One-Class SVM and writes \
                     labels/ and results/<model>/ for score.py."
                );
                std::process::exit(0);
            }
            other if other.starts_with("--") => bail!("unknown argument {other}"),
            other => args.input = other.into(),
        }
    }
    ensure!(args.window >= 2, "--window must be at least 2 rows");
    ensure!(args.retrain >= 1, "--retrain must be at least 1 row");
    Ok(args)
}

/// One machine's metrics side by side.
struct Machine {
    timestamps: Vec<String>,
    rows: Vec<Vec<f64>>,
    labels: Vec<u8>,
}

/// One univariate labelled file.
struct Series {
    timestamps: Vec<String>,
    values: Vec<f64>,
    labels: Vec<u8>,
}

fn read_series(path: &Path) -> anyhow::Result<Series> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {path:?}"))?;
    let mut lines = text.lines();
    let header = lines.next().with_context(|| format!("{path:?} is empty"))?;
    ensure!(
        header.trim() == "timestamp,value,label",
        "{path:?}: header is {header:?}, expected timestamp,value,label"
    );
    let mut series = Series {
        timestamps: Vec::new(),
        values: Vec::new(),
        labels: Vec::new(),
    };
    for (n, line) in lines.enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let at = || format!("{path:?} line {}", n + 2);
        let mut fields = line.trim().split(',');
        let (Some(ts), Some(value), Some(label), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            bail!("{}: expected 3 fields", at());
        };
        series.timestamps.push(ts.to_owned());
        series
            .values
            .push(value.parse().with_context(|| format!("{}: value", at()))?);
        series.labels.push(match label {
            "0" => 0,
            "1" => 1,
            other => bail!("{}: label is {other:?}, expected 0 or 1", at()),
        });
    }
    Ok(series)
}

/// `machine-X-Y` of `machine-X-Y-dimNN.csv`.
fn machine_name(file: &str) -> Option<&str> {
    let stem = file.strip_suffix(".csv")?;
    let (machine, dim) = stem.rsplit_once("-dim")?;
    (machine.starts_with("machine-") && dim.chars().all(|c| c.is_ascii_digit())).then_some(machine)
}

fn read_machines(dir: &Path) -> anyhow::Result<BTreeMap<String, Machine>> {
    let mut files: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {dir:?}"))? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if let Some(machine) = machine_name(name) {
            files.entry(machine.to_owned()).or_default().push(path);
        }
    }
    ensure!(
        !files.is_empty(),
        "no machine-X-Y-dimNN.csv files in {dir:?}"
    );
    let mut machines = BTreeMap::new();
    for (name, mut paths) in files {
        paths.sort();
        let mut machine: Option<Machine> = None;
        for path in &paths {
            let series = read_series(path)?;
            let m = machine.get_or_insert_with(|| Machine {
                timestamps: series.timestamps.clone(),
                rows: vec![Vec::with_capacity(paths.len()); series.values.len()],
                labels: vec![0; series.values.len()],
            });
            ensure!(
                series.timestamps == m.timestamps,
                "{path:?}: timestamps differ from {:?}",
                paths[0]
            );
            for ((row, label), (value, l)) in m
                .rows
                .iter_mut()
                .zip(m.labels.iter_mut())
                .zip(series.values.iter().zip(&series.labels))
            {
                row.push(*value);
                *label |= l;
            }
        }
        if let Some(machine) = machine {
            machines.insert(name, machine);
        }
    }
    Ok(machines)
}

/// The two models behind one interface, scores mapped so that 0.5 is the anomaly threshold.
enum Model {
    Forest(IsolationForest),
    Svm(OneClassSvm),
}

#[derive(Clone, Copy, PartialEq)]
enum Method {
    Forest,
    Svm,
}

impl Method {
    fn name(self) -> &'static str {
        match self {
            Method::Forest => "isolation_forest",
            Method::Svm => "one_class_svm",
        }
    }
}

impl Model {
    fn train(method: Method, rows: &[Vec<f64>], config: &ForestConfig) -> anyhow::Result<Self> {
        Ok(match method {
            Method::Forest => Model::Forest(IsolationForest::train(rows, config)?),
            Method::Svm => Model::Svm(OneClassSvm::train(rows, config)?),
        })
    }

    /// (score with the threshold at 0.5, raw score).
    fn score(&self, x: &[f64]) -> (f64, f64) {
        match self {
            Model::Forest(forest) => {
                let raw = forest.score(x);
                let t = forest.threshold();
                let calibrated = if raw <= t {
                    0.5 * raw / t
                } else {
                    0.5 + 0.5 * (raw - t) / (1.0 - t)
                };
                (calibrated.clamp(0.0, 1.0), raw)
            }
            Model::Svm(svm) => {
                let s = svm.score(x);
                (s, s)
            }
        }
    }
}

#[derive(Default)]
struct Timing {
    train_rows: usize,
    train_time: Duration,
    score_rows: usize,
    score_time: Duration,
    trainings: usize,
}

/// Streams `machine` through `method`: returns each row's (calibrated, raw) score.
fn stream(
    method: Method,
    machine: &Machine,
    args: &Args,
    config: &ForestConfig,
    timing: &mut Timing,
) -> anyhow::Result<Vec<(f64, f64)>> {
    let n = machine.rows.len();
    let first = (PROBATION * n as f64) as usize;
    let mut scores = vec![(0.0, 0.0); first.min(n)];
    let mut model: Option<Model> = None;
    for at in first..n {
        if (at - first).is_multiple_of(args.retrain) {
            let window = &machine.rows[at.saturating_sub(args.window)..at];
            let started = Instant::now();
            model = Some(
                Model::train(method, window, config)
                    .with_context(|| format!("training {} at row {at}", method.name()))?,
            );
            timing.train_time += started.elapsed();
            timing.train_rows += window.len();
            timing.trainings += 1;
        }
        let Some(model) = &model else {
            bail!("no model at row {at}");
        };
        let started = Instant::now();
        scores.push(model.score(&machine.rows[at]));
        timing.score_time += started.elapsed();
        timing.score_rows += 1;
    }
    Ok(scores)
}

fn write_csv(path: &Path, header: &str, machine: &Machine, third: &[String]) -> anyhow::Result<()> {
    let mut text = String::with_capacity(machine.timestamps.len() * 40);
    text.push_str(header);
    text.push('\n');
    for (ts, value) in machine.timestamps.iter().zip(third) {
        let _ = writeln!(text, "{ts},0,{value}");
    }
    std::fs::write(path, text).with_context(|| format!("writing {path:?}"))
}

fn per_second(rows: usize, time: Duration) -> f64 {
    rows as f64 / time.as_secs_f64().max(1e-9)
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let machines = read_machines(&args.input)?;
    let config = ForestConfig {
        seed: Some(42),
        contamination: args.contamination,
        ..ForestConfig::default()
    };
    config
        .validate()
        .map_err(|e| anyhow::anyhow!("--contamination: {e}"))?;
    let labels_dir = args.output.join("labels");
    std::fs::create_dir_all(&labels_dir).with_context(|| format!("creating {labels_dir:?}"))?;
    for (name, machine) in &machines {
        let labels: Vec<String> = machine.labels.iter().map(u8::to_string).collect();
        write_csv(
            &labels_dir.join(format!("{name}.csv")),
            "timestamp,value,label",
            machine,
            &labels,
        )?;
        println!(
            "{name}: {} rows × {} metrics, {} labelled",
            machine.rows.len(),
            machine.rows.first().map_or(0, Vec::len),
            machine.labels.iter().filter(|l| **l == 1).count()
        );
    }

    for method in [Method::Forest, Method::Svm] {
        let dir = args.output.join("results").join(method.name());
        let raw_dir = args.output.join("results/isolation_forest_raw");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {dir:?}"))?;
        if method == Method::Forest {
            std::fs::create_dir_all(&raw_dir).with_context(|| format!("creating {raw_dir:?}"))?;
        }
        let mut timing = Timing::default();
        let mut flagged = 0;
        for (name, machine) in &machines {
            let scores = stream(method, machine, &args, &config, &mut timing)?;
            flagged += scores.iter().filter(|(s, _)| *s > 0.5).count();
            let file = format!("{name}.csv");
            let text = |pick: fn(&(f64, f64)) -> f64| -> Vec<String> {
                scores.iter().map(|s| format!("{:.6}", pick(s))).collect()
            };
            let header = "timestamp,value,anomaly_score";
            write_csv(&dir.join(&file), header, machine, &text(|s| s.0))?;
            if method == Method::Forest {
                write_csv(&raw_dir.join(&file), header, machine, &text(|s| s.1))?;
            }
        }
        println!(
            "{}: {} trainings, train {:.0} rows/s ({:.2} s), score {:.0} rows/s ({:.2} s), \
             {flagged} of {} scored rows above 0.5",
            method.name(),
            timing.trainings,
            per_second(timing.train_rows, timing.train_time),
            timing.train_time.as_secs_f64(),
            per_second(timing.score_rows, timing.score_time),
            timing.score_time.as_secs_f64(),
            timing.score_rows,
        );
    }
    println!("wrote {:?}", args.output);
    Ok(())
}
