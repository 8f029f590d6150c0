"""The app gunicorn serves in the throughput run: ``gunicorn benchmarks.served:app``.

The configuration is named by the environment, so that each run is a fresh process.
"""

import json
import os

from .configs import Context, find_config

app = find_config(os.environ["BENCH_CONFIG"]).build(Context(**json.loads(os.environ["BENCH_CONTEXT"])))
