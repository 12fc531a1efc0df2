"""Exports a fixed set of metrics with the OpenTelemetry Python SDK, as an application would.

    otlp_export.py --protocol grpc|http --endpoint URL --service NAME [--token T] [--delta]
                   [--rounds N] [--pause SECONDS]

Each round adds 5 to the counter `orders.placed` ({order}, attribute shop=eu), records 0.1,
0.2 and 3 seconds in the histogram `request.duration` (s), moves the up-down counter
`pool.in_use` by +3 then -1, and the observable gauge `queue.depth` reads 7; every round is
exported at once (force_flush). With --delta, sums and histograms are exported with delta
temporality. Exits non-zero if an export fails.
"""

import argparse
import sys
import time

from opentelemetry.sdk.metrics import (
    Counter,
    Histogram,
    MeterProvider,
    ObservableGauge,
    UpDownCounter,
)
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.metrics import Observation


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--protocol", choices=["grpc", "http"], required=True)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--service", required=True)
    parser.add_argument("--token", default="")
    parser.add_argument("--delta", action="store_true")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--pause", type=float, default=0.0)
    args = parser.parse_args()

    headers = {"authorization": f"Bearer {args.token}"} if args.token else {}
    temporality = {}
    if args.delta:
        temporality = {
            Counter: AggregationTemporality.DELTA,
            UpDownCounter: AggregationTemporality.DELTA,
            Histogram: AggregationTemporality.DELTA,
        }
    if args.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

        exporter = OTLPMetricExporter(
            endpoint=args.endpoint,
            insecure=True,
            headers=headers,
            preferred_temporality=temporality,
        )
    else:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        exporter = OTLPMetricExporter(
            endpoint=args.endpoint, headers=headers, preferred_temporality=temporality
        )
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    resource = Resource.create(
        {"service.name": args.service, "service.instance.id": "worker-1", "deployment.environment": "test"}
    )
    provider = MeterProvider(resource=resource, metric_readers=[reader])
    meter = provider.get_meter("hcmon.tests", "1.0")
    orders = meter.create_counter("orders.placed", unit="{order}", description="Orders placed.")
    duration = meter.create_histogram("request.duration", unit="s", description="Time to serve a request.")
    pool = meter.create_up_down_counter("pool.in_use", description="Connections in use.")
    meter.create_observable_gauge(
        "queue.depth", callbacks=[lambda _options: [Observation(7, {})]], description="Jobs waiting."
    )
    ok = True
    for _ in range(args.rounds):
        orders.add(5, {"shop": "eu"})
        for seconds in (0.1, 0.2, 3):
            duration.record(seconds)
        pool.add(3)
        pool.add(-1)
        ok = reader.force_flush(timeout_millis=10_000) and ok
        time.sleep(args.pause)
    provider.shutdown()
    if not ok:
        print("an export failed", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
