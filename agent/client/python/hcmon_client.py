"""Record an application's own metrics to the hcmon agent on this node. Standard library only.

    from hcmon_client import Monitor, timer

    monitor = Monitor("checkout", labels=("region",))
    monitor.record_metric("queue_depth", 7, {"region": "eu", "order_id": "A-1"})
    monitor.increment("orders_placed")
    with timer(monitor, "data_processing_time"):
        process()

- Metadata is split: keys declared in `labels` become labels of the series, each holding at
  most `max_values_per_label` distinct values (later ones are sent as "other"), so a client
  cannot create unbounded series; every other key is an annotation, free-form context kept
  with the monitor (`monitor.annotations(name)`) and never sent as a label.
- Recording appends a line to a buffer; the buffer goes out as UDP datagrams to the agent's
  StatsD listener (127.0.0.1:8125) when it fills a packet and every 200 ms from a daemon
  thread. A missing agent loses those datagrams (counted in `monitor.dropped`); recording never
  blocks and never raises.
- The application is the series' `job` label (sent as the `service` tag); the agent holds it
  to its cardinality budget.
"""

import math
import socket
import threading
import time

DEFAULT_AGENT = ("127.0.0.1", 8125)
OVERFLOW_VALUE = "other"
_PACKET_BYTES = 1400
_RESERVED = str.maketrans({c: "_" for c in ":|@#,\n\r"})
_TYPES = {"gauge": "g", "counter": "c", "timer": "ms", "histogram": "h"}


def _clean_name(name):
    return "".join(c if c.isalnum() or c in "._" else "_" for c in str(name))


def _clean_tag(text):
    return str(text).translate(_RESERVED)


class Monitor:
    """An application's handle on the local agent; safe to share between threads."""

    def __init__(self, app, labels=(), agent=DEFAULT_AGENT, max_values_per_label=100, flush_every=0.2):
        self.app = _clean_tag(app)
        self.labels = frozenset(labels)
        self.max_values_per_label = max_values_per_label
        self.dropped = 0
        self._agent = agent
        self._lock = threading.Lock()
        self._buffer = []
        self._size = 0
        self._seen = {}
        self._annotations = {}
        self._closed = threading.Event()
        try:
            self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self._socket.setblocking(False)
        except OSError:
            self._socket = None
        self._flusher = threading.Thread(target=self._flush_loop, args=(flush_every,), daemon=True, name="hcmon-client")
        self._flusher.start()

    def record_metric(self, name, value, metadata=None, kind="gauge"):
        """Records `value` for `name`: a gauge by default; kind may be counter, timer (ms) or
        histogram."""
        self._line(name, value, _TYPES.get(kind, "g"), metadata)

    def increment(self, name, value=1, metadata=None):
        """Adds `value` to the counter `name` (stored as `<name>_total`)."""
        self._line(name, value, "c", metadata)

    def observe(self, name, value, metadata=None):
        """Adds one observation to the histogram `name`."""
        self._line(name, value, "h", metadata)

    def annotations(self, name):
        """The annotations of the latest recording of `name` that carried any."""
        with self._lock:
            return dict(self._annotations.get(name, {}))

    def flush(self):
        """Sends what is buffered now."""
        with self._lock:
            self._send()

    def close(self):
        self.flush()
        self._closed.set()

    def __enter__(self):
        return self

    def __exit__(self, *_exc):
        self.close()

    def _line(self, name, value, code, metadata):
        try:
            value = float(value)
        except (TypeError, ValueError):
            return
        if not math.isfinite(value):
            return
        tags = ["service:" + self.app]
        annotations = {}
        with self._lock:
            for key, item in (metadata or {}).items():
                if key in self.labels:
                    tags.append(_clean_tag(key) + ":" + _clean_tag(self._bounded(key, str(item))))
                else:
                    annotations[key] = item
            if annotations:
                self._annotations[name] = annotations
            line = "%s:%s|%s|#%s\n" % (_clean_name(name), repr(value) if value != int(value) else int(value), code, ",".join(tags))
            if self._size + len(line) > _PACKET_BYTES:
                self._send()
            self._buffer.append(line)
            self._size += len(line)

    def _bounded(self, key, value):
        values = self._seen.setdefault(key, set())
        if value in values:
            return value
        if len(values) < self.max_values_per_label:
            values.add(value)
            return value
        return OVERFLOW_VALUE

    def _send(self):
        if not self._buffer:
            return
        payload = "".join(self._buffer).encode("utf-8", "replace")
        lines = len(self._buffer)
        self._buffer = []
        self._size = 0
        try:
            if self._socket is None:
                raise OSError("no socket")
            self._socket.sendto(payload, self._agent)
        except OSError:
            self.dropped += lines

    def _flush_loop(self, every):
        while not self._closed.wait(every):
            try:
                self.flush()
            except Exception:  # noqa: BLE001 - the application must never see the client fail
                pass


class timer:
    """`with timer(monitor, "name"):` records the block's duration in milliseconds (a StatsD
    timer; the agent stores seconds)."""

    def __init__(self, monitor, name, metadata=None):
        self.monitor = monitor
        self.name = name
        self.metadata = metadata
        self.start = None

    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *_exc):
        elapsed_ms = (time.perf_counter() - self.start) * 1000.0
        self.monitor.record_metric(self.name, elapsed_ms, self.metadata, kind="timer")
        return False
