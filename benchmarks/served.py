"""The app gunicorn serves in the throughput run: ``gunicorn benchmarks.served:app``.

The configuration is named by the environment, so that each run is a fresh process.
"""

import os

from .configs import Context, find_config

app = find_config(os.environ["BENCH_CONFIG"]).build(
    Context(os.environ.get("BENCH_REDIS_URL"), os.environ["BENCH_WORKDIR"])
)
