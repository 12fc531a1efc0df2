#!/usr/bin/env bash
# A minimal VictoriaMetrics cluster on one host, for trying deploy/scale-out/collector.toml:
# two vmstorage nodes with replication 2, one vminsert and one vmselect. Production runs each
# on its own machines (see VictoriaMetrics' cluster documentation). Needs the cluster binaries
# (vmstorage, vminsert, vmselect) on PATH; Debian packages only the single-node server.
set -euo pipefail
dir=${1:-/tmp/vmcluster}
mkdir -p "$dir"
# Deduplication at 1 ms keeps one copy of a sample resent after a collector's crash.
dedup=-dedup.minScrapeInterval=1ms
for i in 1 2; do
  vmstorage -storageDataPath="$dir/storage$i" -retentionPeriod=2y "$dedup" \
    -httpListenAddr=127.0.0.1:$((8481 + i * 10)) \
    -vminsertAddr=127.0.0.1:$((8400 + i)) -vmselectAddr=127.0.0.1:$((8410 + i)) \
    >"$dir/storage$i.log" 2>&1 &
done
vminsert -httpListenAddr=:8480 -replicationFactor=2 \
  -storageNode=127.0.0.1:8401,127.0.0.1:8402 >"$dir/insert.log" 2>&1 &
vmselect -httpListenAddr=:8481 "$dedup" -replicationFactor=2 \
  -storageNode=127.0.0.1:8411,127.0.0.1:8412 >"$dir/select.log" 2>&1 &
echo "write: http://127.0.0.1:8480/insert/0/prometheus/api/v1/write"
echo "query: http://127.0.0.1:8481/select/0/prometheus (Grafana's Prometheus data source)"
wait
