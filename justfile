# Recipes for hcmon developers. The README's commands need no `just`: they call deploy/dev.sh.

# Build, then run a collector with a local agent.
run:
    ./deploy/dev.sh run

# Every test, unit and multi-process.
test:
    ./deploy/dev.sh test

# What CI runs: fmt, clippy -D warnings, tests.
ci:
    ./deploy/dev.sh ci

# Soak: the collector in real time with two agents and a sender mixing valid and hostile
# requests, killed with -9 every minute; checks and prints restarts, missing samples (none),
# the agents' largest gap and every answer. HCMON_SOAK_MINUTES=N for longer (default 5).
soak:
    ./deploy/dev.sh soak

# Ingest benchmark: hcmon (gRPC and remote write), VictoriaMetrics and Prometheus fed identical
# data in one run; prints samples per CPU-second, throughput, RSS, bytes per sample, ack latency
# and range-query latency, and the TLS cost (hcmon's gRPC over mutual TLS / plaintext).
# Extra arguments go to hcmon-bench (e.g. --hosts 200).
bench-ingest *ARGS:
    ./deploy/dev.sh bench-ingest {{ARGS}}

# PromQL latency (instant, 1 h and 24 h ranges of rate, sum by, histogram_quantile, topk)
# beside Prometheus on the same data; p50/p99 per server and their ratio.
bench-query *ARGS:
    ./deploy/dev.sh bench-query {{ARGS}}

# Agent footprint: the agent at default tiers for 330 s beside Debian's node_exporter scraped
# every 10 s, same run; prints CPU seconds, share of a core, RSS and the ratios.
bench-agent *ARGS:
    ./deploy/dev.sh bench-agent {{ARGS}}

# Online anomaly ensemble: samples per second on one core, beside a one-EWMA baseline.
bench-engines:
    ./deploy/dev.sh bench-engines

# How long a checkpoint's cut holds appends with 150,000 heads, beside a flat copy of its bytes.
bench-checkpoint:
    ./deploy/dev.sh bench-checkpoint

# What recording a metric costs an application with the Rust client (agent/client), beside an
# unbuffered StatsD client measured in the same run.
bench-client:
    ./deploy/dev.sh bench-client

# Alert latency: a threshold-crossing sample until /api/v1/alerts lists it firing, idle and
# with agents streaming at full speed. Extra arguments go to hcmon-bench-alerts.
bench-alerts *ARGS:
    ./deploy/dev.sh bench-alerts {{ARGS}}

# A fleet on one collector: 1,000 simulated agents sending the real agent's series (collected
# here through the agent's code) at the real tier intervals, plus 50 back-filling an hour of
# spool; prints ack p50/p99, alert evaluation delay, memory per agent, then kills the collector
# with -9 under load and checks every acked sample is stored. Not in CI (several minutes).
# Extra arguments go to hcmon-bench-fleet (--agents, --backfill, --minutes).
bench-fleet *ARGS:
    ./deploy/dev.sh bench-fleet {{ARGS}}

# bench-ingest's first hcmon run with the collector, built on the system allocator, under
# heaptrack: the peak of its whole heap (Rust's and RocksDB's) and what held it then.
heap-profile *ARGS:
    ./deploy/dev.sh heap-profile {{ARGS}}

# bench-ingest's first hcmon run with the collector under perf (DWARF call graphs): the
# collector's functions by their share of its CPU, callees included.
# HCMON_PROFILE_RUN=detection profiles its gRPC run with live anomaly detection instead, and
# HCMON_PROFILE_RUN=remote-write its remote-write run (vmagent).
cpu-profile *ARGS:
    ./deploy/dev.sh cpu-profile {{ARGS}}

# Hostile traffic: a TLS collector under ten kinds of attack at once (no TLS, bad certificates,
# wrong node names, token guessing, slowloris, oversized bodies, 2,000 idle connections, a
# cardinality bomb, malformed protobuf, garbage remote write) while a healthy agent streams;
# prints every answer, the refusal counters, the agent's largest gap and the collector's peak
# RSS, and fails on a gap or a loss. Extra arguments go to hcmon-hostile (e.g. --seconds 60).
hostile *ARGS:
    ./deploy/dev.sh hostile {{ARGS}}

# Live stream latency: 20 WebSocket clients subscribed like node pages while samples are
# remote-written; p50/p99/max from the write's answer (and from before sending) to arrival.
bench-stream *ARGS:
    ./deploy/dev.sh bench-stream {{ARGS}}

# Export: 10 M samples exported as CSV and xlsx (and 1 M, to compare), with the collector's
# resident memory sampled throughout: samples per second, bytes, peak RSS growth.
bench-export *ARGS:
    ./deploy/dev.sh bench-export {{ARGS}}

# Reports: a monthly report over 50 simulated nodes (30 days) and 100 SLOs, generated and rendered
# as PDF and HTML, timed (target under 3 s). Extra arguments go to hcmon-bench-report.
bench-report *ARGS:
    ./deploy/dev.sh bench-report {{ARGS}}

# The live anomaly engine (`hcmon replay`) on labelled CSVs, scored at the shipped threshold and at
# the best one: DIR defaults to ../shared/detection/smd.
bench-detection *ARGS:
    ./deploy/dev.sh bench-detection {{ARGS}}

# Per-node models: the Isolation Forest and the One-Class SVM streamed over the labelled corpus in
# ../shared/detection (each machine's metrics side by side, retrained daily on the last week),
# scored by score.py at the live threshold 0.5 and at the best one after the fact.
# Extra arguments go to hcmon-bench-node-models.
bench-node-models *ARGS:
    ./deploy/dev.sh bench-node-models {{ARGS}}

# Dashboard weight: bytes and requests of the fleet and node pages with a cold cache, and the
# time to the first chart with points, in headless Chromium (median of 5 loads).
bench-page:
    ./deploy/dev.sh bench-page

# All benchmarks.
bench: bench-ingest bench-query bench-agent bench-engines bench-checkpoint bench-alerts bench-stream bench-export bench-report bench-page

# Exposure scores of the systemd units (`systemd-analyze security`, 0 best, 10 worst) and
# what still counts against each.
security:
    ./deploy/dev.sh security

# The ten longest non-test parts of the Rust sources at a git revision (default HEAD).
sizes REV="HEAD":
    ./deploy/dev.sh sizes {{REV}}

# Fuzz every decoder of bytes from the network or disk (tests/fuzz) for SECONDS each, with
# nightly and AddressSanitizer; prints executions and crashes per target. Not part of `ci`.
fuzz SECONDS="60":
    ./deploy/dev.sh fuzz {{SECONDS}}

fmt:
    cargo fmt --all
