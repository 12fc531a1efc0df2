#!/usr/bin/env bash
# Developer entry point behind the README's two commands, the justfile and CI.
#   deploy/dev.sh run    build, then run a collector and a local agent in the foreground
#   deploy/dev.sh test   build, then run every test (unit and multi-process)
#   deploy/dev.sh ci     formatting and lint gates, then `test`
#   deploy/dev.sh python-deps  the tests' foreign Python clients into tests/python/.venv
#   deploy/dev.sh soak   the soak test: kill -9 every minute under hostile load (minutes)
#   deploy/dev.sh bench-ingest [ARGS]   release build, then the ingest benchmark against
#                        VictoriaMetrics and Prometheus (installed from Debian); --only
#                        remote-write,victoria-metrics (say) makes some of its runs, for A/B
#                        comparisons of one path in half a minute a run
#   deploy/dev.sh bench-query [ARGS]    release build, then PromQL latency of hcmon beside
#                        Prometheus on the same 25 h of data
#   deploy/dev.sh bench-agent [ARGS]    release build, then the agent's footprint beside
#                        Debian's prometheus-node-exporter
#   deploy/dev.sh bench-engines         the online anomaly ensemble's samples per second
#   deploy/dev.sh bench-checkpoint      how long a checkpoint's cut holds appends, 150,000 heads
#   deploy/dev.sh bench-client          the Rust client's cost per recorded metric
#   deploy/dev.sh bench-page            debug build, then the dashboard's page weight and time to
#                        first chart (headless Chromium, cold cache, two agents)
#   deploy/dev.sh bench-export [ARGS]   release build, then 10 M and 1 M samples exported as CSV
#                        and Excel with the collector's memory growth
#   deploy/dev.sh bench-alerts [ARGS]   release build, then sample → firing alert latency,
#                        idle and under ingest load
#   deploy/dev.sh bench-fleet [ARGS]    release build, then 1,000 agents + 50 back-filling on
#                        one collector: ack latency, alert delay, memory per agent, kill -9
#   deploy/dev.sh heap-profile [ARGS]   release build, then bench-ingest's first hcmon run with
#                        the collector (system allocator) under heaptrack: its whole heap's peak and holders
#   deploy/dev.sh cpu-profile [ARGS]    release build, then bench-ingest's first hcmon run with
#                        the collector under perf: its functions by share of CPU
#                        (HCMON_PROFILE_RUN=detection or remote-write: that run instead)
#   deploy/dev.sh bench-stream [ARGS]   release build, then sample → WebSocket latency of the
#                        live stream with 20 open node pages (--clients, --seconds, --rate)
#   deploy/dev.sh bench-report [ARGS]   release build, then a monthly report generated and
#                        rendered (PDF, HTML) over 50 nodes and 100 SLOs, timed
#   deploy/dev.sh bench-detection [DIR] [SCORER]  release build, then `hcmon replay` over labelled
#                        CSVs scored by score.py at the shipped and the best threshold
#   deploy/dev.sh bench-node-models [ARGS]  release build, then the per-node models (Isolation
#                        Forest, One-Class SVM) streamed over ../shared/detection/smd and scored
#   deploy/dev.sh hostile [ARGS]        release build, then ten kinds of hostile traffic against a
#                        TLS collector while a healthy agent streams (--seconds N, default 120)
#   deploy/dev.sh security  systemd-analyze's exposure score of both systemd units (no build)
#   deploy/dev.sh fuzz [SECONDS]  every cargo-fuzz target in tests/fuzz for SECONDS (default 60)
# It installs what it needs (Debian packages) itself, idempotently.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*" >&2; }

# Installs Debian packages that are missing. Needs root or sudo.
ensure_packages() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1 || {
    "${sudo[@]}" apt-get update -q >/dev/null
    "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  }
}

# RocksDB's C++ takes most of a cold build: keep the target dir outside the checkout so fresh
# clones on this machine reuse it; fall back to ./target when the cache dir is not writable.
setup_target_dir() {
  if [ -z "${CARGO_TARGET_DIR:-}" ]; then
    local cache="${XDG_CACHE_HOME:-$HOME/.cache}/hcmon/target"
    if mkdir -p "$cache" 2>/dev/null && [ -w "$cache" ]; then
      export CARGO_TARGET_DIR="$cache"
    else
      export CARGO_TARGET_DIR="$PWD/target"
    fi
  fi
  log "target dir: $CARGO_TARGET_DIR"
}

build() {
  ensure_packages libclang-dev
  setup_target_dir
  cargo build --workspace --bins --locked
}

run() {
  build
  mkdir -p hcmon-data
  local bin="$CARGO_TARGET_DIR/debug"
  # Globals, not locals: the EXIT trap runs after this function has returned.
  "$bin/hcmon-collector" --data-dir hcmon-data/collector &
  collector_pid=$!
  trap 'kill ${collector_pid:-} ${agent_pid:-} 2>/dev/null; wait' EXIT INT TERM
  sleep 1
  "$bin/hcmon-agent" --collector http://127.0.0.1:4317 --spool-dir hcmon-data/agent-spool &
  agent_pid=$!
  cat >&2 <<MSG

hcmon is running (Ctrl-C stops it). Look at:
  the dashboard, through the "log in at http://127.0.0.1:9464/?token=..." link the collector logs
  http://127.0.0.1:9464/metrics                       Prometheus exposition of every series
  http://127.0.0.1:9464/api/v1/agents                 connected agents
  http://127.0.0.1:9464/api/v1/query_range?query=node_cpu_usage_ratio&start=$(($(date +%s) - 600))&end=$(($(date +%s) + 600))&step=10
  $bin/hcmon status                                   the operator CLI
Data: ./hcmon-data (collector store and agent spool).

MSG
  wait
}

# promtool checks the exposition; the agent's probe tests talk to real Redis and memcached; the
# alerting tests forward to a real Alertmanager; the dashboard's tests drive headless Chromium.
TEST_PACKAGES=(libclang-dev prometheus victoria-metrics redis-server memcached prometheus-alertmanager chromium poppler-utils)

# Node and playwright-core for the dashboard's browser tests (tests/browser): Debian's nodejs and
# npm unless a node with its npm is there already, then `npm ci` whenever node_modules is missing
# or was installed from another package-lock.json.
browser_deps() {
  command -v npm >/dev/null || ensure_packages nodejs npm
  local dir=tests/browser
  cmp -s "$dir/package-lock.json" "$dir/node_modules/.hcmon-lock" 2>/dev/null && return 0
  log "npm ci in $dir"
  (cd "$dir" && npm ci --no-audit --no-fund >/dev/null)
  cp "$dir/package-lock.json" "$dir/node_modules/.hcmon-lock"
}

# The foreign clients of tests/python/requirements.txt (the OpenTelemetry Python SDK, statsd)
# in tests/python/.venv, made again whenever requirements.txt changes.
python_deps() {
  ensure_packages python3 python3-venv
  local dir=tests/python
  cmp -s "$dir/requirements.txt" "$dir/.venv/.hcmon-requirements" 2>/dev/null && return 0
  log "pip install into $dir/.venv"
  rm -rf "$dir/.venv"
  python3 -m venv "$dir/.venv"
  "$dir/.venv/bin/pip" install -q --disable-pip-version-check -r "$dir/requirements.txt"
  cp "$dir/requirements.txt" "$dir/.venv/.hcmon-requirements"
}

run_tests() {
  ensure_packages "${TEST_PACKAGES[@]}"
  browser_deps
  python_deps
  build
  if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --locked --profile "${NEXTEST_PROFILE:-default}"
  else
    cargo test --workspace --locked
  fi
}

ci() {
  ensure_packages "${TEST_PACKAGES[@]}"
  setup_target_dir
  cargo fmt --all -- --check
  cargo clippy --workspace --all-targets --locked -- -D warnings
  NEXTEST_PROFILE=ci run_tests
}

bench_ingest() {
  ensure_packages libclang-dev prometheus victoria-metrics
  setup_target_dir
  cargo build --release --locked -p hcmon-collector -p hcmon-tests --bins
  "$CARGO_TARGET_DIR/release/hcmon-bench" --capture tests/data/agent-capture.jsonl "$@"
}

bench_query() {
  ensure_packages libclang-dev prometheus
  setup_target_dir
  cargo build --release --locked --workspace --bins
  "$CARGO_TARGET_DIR/release/hcmon-bench-query" "$@"
}

bench_agent() {
  ensure_packages libclang-dev prometheus-node-exporter
  setup_target_dir
  cargo build --release --locked -p hcmon-collector -p hcmon-agent -p hcmon-tests --bins
  "$CARGO_TARGET_DIR/release/hcmon-bench-agent" "$@"
}

# 10 M samples (1,000 series × 10,000) exported as CSV and Excel, and 1 M beside it: samples per
# second, bytes, and the collector's peak memory growth during each export.
bench_export() {
  ensure_packages libclang-dev
  setup_target_dir
  cargo build --release --locked --workspace --bins
  "$CARGO_TARGET_DIR/release/hcmon-bench-export" "$@"
}

# 1,000 simulated agents with the real agent's series at the real tier intervals, plus 50
# back-filling an hour, on one collector with everything on; then kill -9 under that load.
bench_fleet() {
  ensure_packages libclang-dev
  setup_target_dir
  cargo build --release --locked -p hcmon-collector -p hcmon-tests --bins
  "$CARGO_TARGET_DIR/release/hcmon-bench-fleet" "$@"
}

# The collector's whole heap under heaptrack during bench-ingest's first hcmon run (gRPC): its
# peak and what held it then. The profiled collector is built on the system allocator (feature
# `system-allocator`, without the default `jemalloc-for-cpp`), whose malloc heaptrack hooks:
# jemalloc, linked statically and exporting malloc itself, would hide the whole heap from it.
heap_profile() {
  ensure_packages libclang-dev heaptrack prometheus victoria-metrics
  setup_target_dir
  local dir
  dir=$(mktemp -d)
  cargo build --release --locked -p hcmon-collector --bin hcmon-collector --no-default-features --features system-allocator
  cp "$CARGO_TARGET_DIR/release/hcmon-collector" "$dir/hcmon-collector-profiled"
  cargo build --release --locked -p hcmon-tests --bin hcmon-bench
  # The bench starts the collector next to its own binary: there, a wrapper runs it under heaptrack.
  cp "$CARGO_TARGET_DIR/release/hcmon-bench" "$dir/"
  printf '#!/bin/sh\nexec heaptrack -o "%s/heap.$$" "%s" "$@"\n' \
    "$dir" "$dir/hcmon-collector-profiled" > "$dir/hcmon-collector"
  chmod +x "$dir/hcmon-collector"
  setsid "$dir/hcmon-bench" --work "$dir/work" "$@" > "$dir/bench.log" 2>&1 &
  local bench=$!
  until grep -q "gRPC agent protocol: memory once ingested" "$dir/bench.log"; do
    kill -0 "$bench" 2>/dev/null || { cat "$dir/bench.log"; return 1; }
    sleep 1
  done
  grep "gRPC agent protocol: memory once ingested" "$dir/bench.log"
  # The first run is the one wanted. Its collector stops gracefully, so heaptrack finishes its
  # file; then the rest of the bench goes.
  local first
  first=$(ls -tr "$dir"/heap.* | head -n 1)
  pkill -TERM -f "hcmon-collector-profiled --config $dir/work/hcmon-grpc/" || true
  while pgrep -f "heaptrack.*$first" >/dev/null || pgrep -f "hcmon-collector-profiled --config $dir/work/hcmon-grpc/" >/dev/null; do
    sleep 1
  done
  kill -- -"$bench" 2>/dev/null || true
  wait "$bench" 2>/dev/null || true
  heaptrack_print -f "$first" -p 1 -a 0 -T 0 -l 0 -n 12 -s 0 2>/dev/null \
    | grep -E "^(peak heap memory|peak RSS|[0-9.]+[KMG]? peak memory consumed)" -A1
  log "profile kept in $first (heaptrack_gui or heaptrack_print for more)"
}

# Where the collector's CPU goes during bench-ingest's first hcmon run (gRPC): perf with DWARF
# call graphs from its start until the data is in, then the collector's and RocksDB's write
# functions by the share of samples spent in them and what they call.
cpu_profile() {
  ensure_packages libclang-dev linux-perf prometheus victoria-metrics
  setup_target_dir
  cargo build --release --locked -p hcmon-collector -p hcmon-tests --bins
  # HCMON_PROFILE_RUN picks the collector: grpc (the first, by default), detection (gRPC with
  # live anomaly detection) or remote-write.
  local run="${HCMON_PROFILE_RUN:-grpc}" work_dir done_marker
  case "$run" in
    grpc) work_dir=hcmon-grpc; done_marker="gRPC agent protocol: memory once ingested" ;;
    detection) work_dir=hcmon-grpc-analytics; done_marker="live anomaly detection: memory once ingested" ;;
    remote-write) work_dir=hcmon-rw; done_marker="" ;;
    *) echo "HCMON_PROFILE_RUN must be grpc, detection or remote-write, not $run" >&2; return 2 ;;
  esac
  local dir pid=""
  dir=$(mktemp -d)
  setsid "$CARGO_TARGET_DIR/release/hcmon-bench" --work "$dir/work" "$@" > "$dir/bench.log" 2>&1 &
  local bench=$!
  until [ -n "$pid" ]; do
    kill -0 "$bench" 2>/dev/null || { cat "$dir/bench.log"; return 1; }
    pid=$(pgrep -f "hcmon-collector --config $dir/work/$work_dir/" | head -n 1 || true)
    sleep 0.2
  done
  perf record -F 299 --call-graph dwarf,16384 -p "$pid" -o "$dir/perf.data" 2>/dev/null &
  local perf=$!
  if [ -n "$done_marker" ]; then
    # Stopped as soon as the data is in: the bench compacts right after.
    until grep -q "$done_marker" "$dir/bench.log"; do
      kill -0 "$bench" 2>/dev/null || { cat "$dir/bench.log"; return 1; }
      sleep 0.1
    done
    kill -INT "$perf"
  fi
  # Without a marker, perf stops when the collector does (its compaction included).
  wait "$perf" || true
  kill -- -"$bench" 2>/dev/null || true
  wait "$bench" 2>/dev/null || true
  [ -z "$done_marker" ] || grep "$done_marker" "$dir/bench.log"
  perf report -i "$dir/perf.data" --children --sort symbol --stdio -g none 2>/dev/null \
    | grep -E '^ +[0-9.]+% +[0-9.]+% +\[\.\] (<?hcmon_collector::[a-z_]+::|rocksdb::DBImpl::WriteImpl)' \
    | grep -v '{{closure}}' | awk 'NR <= 30'
  log "profile kept in $dir/perf.data (perf report -i for more)"
}

bench_alerts() {
  ensure_packages libclang-dev
  setup_target_dir
  cargo build --release --locked -p hcmon-collector -p hcmon-tests --bins
  "$CARGO_TARGET_DIR/release/hcmon-bench-alerts" "$@"
}

# A monthly report over 50 simulated nodes' 30 days and 100 SLOs: the time to generate it and to
# render it as PDF and HTML (target: under 3 s in all).
bench_report() {
  ensure_packages libclang-dev
  setup_target_dir
  cargo build --release --locked -p hcmon-tests --bin hcmon-bench-report
  "$CARGO_TARGET_DIR/release/hcmon-bench-report" "$@"
}

bench_stream() {
  ensure_packages libclang-dev
  setup_target_dir
  cargo build --release --locked --workspace --bins
  "$CARGO_TARGET_DIR/release/hcmon-bench-stream" "$@"
}

# `hcmon replay` over a directory of labelled CSVs (`timestamp,value,label`; default the corpus
# in ../shared/detection/smd): the label column is stripped so the detector never sees it, every
# file is replayed with the live defaults, and score.py scores the verdicts at the shipped
# threshold and at the best one found after the fact (an upper bound, not a setting).
bench_detection() {
  ensure_packages libclang-dev python3
  setup_target_dir
  local labels="${1:-../shared/detection/smd}"
  local scorer="${2:-../shared/detection/score.py}"
  local threshold
  threshold=$(sed -n 's/^score_threshold *= *\([0-9.]*\).*/\1/p' deploy/hcmon-collector.toml | head -1)
  threshold="${threshold:-0.5}"
  cargo build --release --locked -p hcmon-collector --bin hcmon
  local work="${TMPDIR:-/tmp}/hcmon-bench-detection"
  rm -rf "$work" && mkdir -p "$work/input" "$work/out"
  local started=$SECONDS
  for f in "$labels"/*.csv; do
    local name
    name=$(basename "$f")
    cut -d, -f1,2 "$f" > "$work/input/$name"
    # Each replay prints a one-line summary; only a failure's message is worth showing.
    if ! "$CARGO_TARGET_DIR/release/hcmon" replay --input "$work/input/$name" \
      --output "$work/out/$name" > /dev/null 2> "$work/replay.err"; then
      cat "$work/replay.err" >&2
      return 1
    fi
  done
  log "replayed $(ls "$work/out" | wc -l) files in $((SECONDS - started)) s"
  log "at the shipped threshold ($threshold)"
  python3 "$scorer" --labels "$labels" --results "$work/out" --threshold "$threshold" | tail -1
  log "at the best threshold (after the fact)"
  python3 "$scorer" --labels "$labels" --results "$work/out" --optimize | tail -1
  rm -rf "$work"
}

# The per-node models on the labelled corpus in ../shared/detection: each machine's metrics side
# by side, streamed through both models (train on the probation, retrain daily on the last week),
# then scored by score.py at the live threshold (0.5) and at the best one found after the fact
# (an upper bound, not a setting). Extra arguments go to hcmon-bench-node-models.
bench_node_models() {
  ensure_packages libclang-dev python3
  setup_target_dir
  cargo build --release --locked -p hcmon-tests --bin hcmon-bench-node-models
  local out="${TMPDIR:-/tmp}/hcmon-bench-node-models"
  "$CARGO_TARGET_DIR/release/hcmon-bench-node-models" --output "$out" "$@"
  for model in isolation_forest one_class_svm; do
    log "$model at threshold 0.5"
    python3 ../shared/detection/score.py --labels "$out/labels" --results "$out/results/$model" --threshold 0.5
    log "$model at the best threshold (after the fact)"
    python3 ../shared/detection/score.py --labels "$out/labels" --results "$out/results/$model" --optimize
  done
}

# Ten kinds of hostile traffic at a TLS collector for --seconds (default 120) while a healthy
# agent streams; its 2,000 idle connections and the slowloris ones need open files, for it and
# the collector it starts: the soft limit is raised to the hard one.
hostile() {
  ensure_packages libclang-dev
  setup_target_dir
  cargo build --release --locked --workspace --bins
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  "$CARGO_TARGET_DIR/release/hcmon-hostile" "$@"
}

# The dashboard's page weight and time to first chart (tests/browser/page-weight.mjs) against a
# debug collector with two agents (alpha, beta) on free ports, in a folder removed afterwards.
bench_page() {
  ensure_packages chromium
  browser_deps
  build
  local bin="$CARGO_TARGET_DIR/debug" line="" node
  # Globals, not locals: the EXIT trap runs after this function has returned.
  bench_dir=$(mktemp -d)
  bench_pids=()
  trap 'kill "${bench_pids[@]}" 2>/dev/null; wait; rm -rf "$bench_dir"' EXIT INT TERM
  "$bin/hcmon-collector" --data-dir "$bench_dir/collector" --grpc-listen 127.0.0.1:0 \
    --http-listen 127.0.0.1:0 2>"$bench_dir/collector.log" &
  bench_pids+=($!)
  for _ in $(seq 600); do
    line=$(grep -m1 'collector ready' "$bench_dir/collector.log" || true)
    [ -n "$line" ] && break
    sleep 0.1
  done
  [ -n "$line" ] || { cat "$bench_dir/collector.log" >&2; exit 1; }
  local grpc=${line##*grpc=} http=${line##*http=}
  grpc=${grpc%% *} http=${http%% *}
  for node in alpha beta; do
    "$bin/hcmon-agent" --collector "http://$grpc" --node-name "$node" \
      --spool-dir "$bench_dir/spool-$node" 2>"$bench_dir/agent-$node.log" &
    bench_pids+=($!)
  done
  HCMON_URL="http://$http" HCMON_TOKEN=$(cat "$bench_dir/collector/admin.token") \
    HCMON_NODES=alpha,beta node tests/browser/page-weight.mjs
}

bench_engines() {
  ensure_packages libclang-dev
  setup_target_dir
  cargo bench --locked -p hcmon-collector --bench engines
}

bench_checkpoint() {
  ensure_packages libclang-dev
  setup_target_dir
  cargo bench --locked -p hcmon-collector --bench checkpoint
}

bench_client() {
  setup_target_dir
  cargo bench --locked -p hcmon-client --bench record
}

# The soak test: real time, two agents, hostile remote writes, kill -9 every minute; prints its
# figures. HCMON_SOAK_MINUTES sets how many minutes (and restarts), default 5.
soak() {
  ensure_packages "${TEST_PACKAGES[@]}"
  build
  cargo nextest run --locked -p hcmon-tests --test soak --run-ignored only --no-capture
}

# The ten longest non-test parts (lines before the first `#[cfg(test)]`) of the Rust sources at
# git revision REV (test-only files left out): what `tests/tests/structure.rs` holds under 800
# lines. No build needed.
sizes() {
  local rev=$1 file
  git ls-tree -r --name-only "$rev" -- agent/src collector/src common/src | grep '\.rs$' |
    grep -Ev '(tests|testing|test_support)\.rs$' |
    while read -r file; do
      printf '%6d %6d %s\n' \
        "$(git show "$rev:$file" | awk '/^#\[cfg\(test\)\]/ { exit } { n++ } END { print n + 0 }')" \
        "$(git show "$rev:$file" | wc -l)" "$file"
    done | sort -rn | head -10 | sed '1i non-test  total file'
}

# `systemd-analyze security` of deploy/*.service, offline (no running systemd needed): the
# overall exposure of each unit (0 best, 10 worst), then what still counts against it.
security() {
  command -v systemd-analyze >/dev/null || ensure_packages systemd
  local unit
  for unit in deploy/hcmon-collector.service deploy/hcmon-agent.service; do
    systemd-analyze security --offline=yes --no-pager "$unit" | grep -E '^(✗|→)'
  done
}

# Every fuzz target (tests/fuzz, outside the workspace) for SECONDS each, with nightly and
# AddressSanitizer, debug assertions (so overflow checks) on. Its own target dir: a sanitized
# nightly build shares nothing with the workspace's. Prints per target the executions and
# whether it crashed; a crash's input is under tests/fuzz/artifacts/TARGET/. Corpora grow in
# the cache, seeded from tests/fuzz/seeds (and the shipped configs for `config`).
fuzz() {
  local seconds=${1:-60} cache="${XDG_CACHE_HOME:-$HOME/.cache}/hcmon" target crashed=0
  local flags=(--fuzz-dir tests/fuzz -O -a)
  rustup run nightly rustc --version >/dev/null 2>&1 || {
    log "the nightly toolchain is missing: rustup toolchain install nightly"
    exit 1
  }
  ensure_packages libclang-dev
  command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
  export CARGO_TARGET_DIR="$cache/fuzz-target"
  log "target dir: $CARGO_TARGET_DIR"
  cargo +nightly fuzz build "${flags[@]}"
  mkdir -p "$cache/fuzz-logs"
  local results=()
  for target in $(cargo +nightly fuzz list --fuzz-dir tests/fuzz); do
    local corpus="$cache/fuzz-corpus/$target" log_file="$cache/fuzz-logs/$target.log" seeds=()
    mkdir -p "$corpus"
    [ -d "tests/fuzz/seeds/$target" ] && seeds+=("tests/fuzz/seeds/$target")
    [ "$target" = config ] && seeds+=(deploy deploy/examples)
    log "fuzzing $target for ${seconds}s (log: $log_file)"
    local result=ok
    cargo +nightly fuzz run "${flags[@]}" "$target" "$corpus" "${seeds[@]}" -- \
      -max_total_time="$seconds" -timeout=10 -print_final_stats=1 >"$log_file" 2>&1 ||
      { result=CRASHED; crashed=1; }
    local executions
    executions=$(awk '/stat::number_of_executed_units/ { n = $2 } END { print n + 0 }' "$log_file")
    if [ "$result" = CRASHED ]; then
      result="CRASHED: $(grep -m1 -oE 'Test unit written to .*' "$log_file" || echo "see $log_file")"
    fi
    results+=("$(printf '%-18s %12s  %s' "$target" "$executions" "$result")")
  done
  printf '%-18s %12s  %s\n' target executions result
  printf '%s\n' "${results[@]}"
  return "$crashed"
}

case "${1:-}" in
  run) run ;;
  test) run_tests ;;
  ci) ci ;;
  build) build ;;
  python-deps) python_deps ;;
  bench-ingest) shift; bench_ingest "$@" ;;
  bench-agent) shift; bench_agent "$@" ;;
  bench-alerts) shift; bench_alerts "$@" ;;
  bench-fleet) shift; bench_fleet "$@" ;;
  heap-profile) shift; heap_profile "$@" ;;
  cpu-profile) shift; cpu_profile "$@" ;;
  bench-query) shift; bench_query "$@" ;;
  bench-export) shift; bench_export "$@" ;;
  bench-stream) shift; bench_stream "$@" ;;
  bench-report) shift; bench_report "$@" ;;
  bench-node-models) shift; bench_node_models "$@" ;;
  bench-detection) shift; bench_detection "$@" ;;
  bench-engines) bench_engines ;;
  bench-checkpoint) bench_checkpoint ;;
  bench-client) bench_client ;;
  bench-page) bench_page ;;
  hostile) shift; hostile "$@" ;;
  soak) soak ;;
  sizes) sizes "${2:-HEAD}" ;;
  security) security ;;
  fuzz) fuzz "${2:-60}" ;;
  *) echo "usage: deploy/dev.sh run|test|ci|build|python-deps|soak|sizes [REV]|security|fuzz [SECONDS]|bench-ingest|bench-agent|bench-engines|bench-checkpoint|bench-client|bench-page|bench-alerts|bench-query|bench-export|bench-stream|bench-report|bench-node-models|bench-detection|bench-fleet|heap-profile|cpu-profile|hostile" >&2; exit 2 ;;
esac
