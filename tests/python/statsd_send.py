"""Sends StatsD metrics to an agent two ways, as applications do, then records with no agent
listening (which must neither block nor raise):

    statsd_send.py PORT

- the `statsd` PyPI client (plain StatsD, no tags: job "statsd"): pyapp.hits +3,
  pyapp.temp = 21.5, pyapp.work timed 250 ms;
- the repo's stdlib client (agent/client/python/hcmon_client.py) as app "py-client" with label
  `region`: pyclient.queue_depth = 7 {region=eu, order_id annotation}, pyclient.orders +2, one
  pyclient.work timer.
"""

import pathlib
import sys

import statsd

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "agent" / "client" / "python"))
from hcmon_client import Monitor, timer  # noqa: E402

port = int(sys.argv[1])

client = statsd.StatsClient("127.0.0.1", port)
client.incr("pyapp.hits", 3)
client.gauge("pyapp.temp", 21.5)
client.timing("pyapp.work", 250)

monitor = Monitor("py-client", labels=("region",), agent=("127.0.0.1", port))
monitor.record_metric("pyclient.queue_depth", 7, {"region": "eu", "order_id": "A-1"})
monitor.increment("pyclient.orders", 2)
with timer(monitor, "pyclient.work"):
    pass
monitor.close()
assert monitor.annotations("pyclient.queue_depth") == {"order_id": "A-1"}
assert monitor.dropped == 0, monitor.dropped

# With no agent listening, recording neither blocks nor raises.
nobody = Monitor("py-client", agent=("127.0.0.1", 9))
for i in range(10_000):
    nobody.record_metric("pyclient.unsent", i, {"note": "x"})
with timer(nobody, "pyclient.unsent_timer"):
    pass
nobody.close()
