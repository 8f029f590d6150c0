"""Prometheus metrics of the session layer: ``SessionMiddleware(..., metrics=True)``.

Needs ``prometheus_client`` (``pip install "wsgi-session[prometheus]"``), imported
only when a middleware enables metrics. The collectors are created once per
process, in ``prometheus_client``'s default registry, and shared by every
middleware of the process; under gunicorn set ``PROMETHEUS_MULTIPROC_DIR`` and
serve them with ``prometheus_client.multiprocess.MultiProcessCollector``, as
``prometheus_client`` documents, so that every worker's counts add up.

- ``wsgi_session_loads_total{outcome}``: how requests opened their session
  (``found``, ``new``, ``bad_cookie``, ``unknown``, ``expired``, ``corrupt``,
  ``replaced``: an ID a regenerate just replaced, ``unavailable``: the store failed);
- ``wsgi_session_writes_total{kind}``: ``create``, ``update``, ``destroy``,
  ``regenerate``, ``touch``, ``revoke``;
- ``wsgi_session_conflicts_total``: compare-and-set tries that lost to another
  request; ``wsgi_session_conflict_give_ups_total``: write-backs that gave up;
- ``wsgi_session_store_errors_total{operation}`` and
  ``wsgi_session_store_seconds{operation}``: failures and latency of store calls.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

_lock = threading.Lock()
_collectors: dict[str, Any] = {}


def _shared_collectors() -> dict[str, Any]:
    """The process's collectors, created on first use: a registry refuses a name twice."""
    with _lock:
        if not _collectors:
            from prometheus_client import Counter, Histogram

            _collectors.update(
                loads=Counter("wsgi_session_loads", "Sessions opened, by outcome", ["outcome"]),
                writes=Counter("wsgi_session_writes", "Session writes, by kind", ["kind"]),
                conflicts=Counter("wsgi_session_conflicts", "Compare-and-set tries lost to another request"),
                give_ups=Counter("wsgi_session_conflict_give_ups", "Write-backs given up after conflicts"),
                errors=Counter(
                    "wsgi_session_store_errors", "Failed store calls, by operation", ["operation"]
                ),
                seconds=Histogram(
                    "wsgi_session_store_seconds",
                    "Store call latency, by operation",
                    ["operation"],
                    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
                ),
            )
        return _collectors


class Metrics:
    """Counts what :class:`~wsgi_session.events.Events` reports."""

    def __init__(self) -> None:
        collectors = _shared_collectors()
        # Each label's child is looked up once (the labels are a fixed few): labels()
        # checks its arguments and takes a lock on every call, which cost more than
        # the count itself, on every request. Two threads that both miss get one child.
        self._loads = functools.cache(collectors["loads"].labels)
        self._writes = functools.cache(collectors["writes"].labels)
        self._conflicts = collectors["conflicts"]
        self._give_ups = collectors["give_ups"]
        self._errors = functools.cache(collectors["errors"].labels)
        self._seconds = functools.cache(collectors["seconds"].labels)

    def loaded(self, outcome: str) -> None:
        self._loads(outcome).inc()

    def wrote(self, kind: str) -> None:
        self._writes(kind).inc()

    def conflict(self) -> None:
        self._conflicts.inc()

    def gave_up(self) -> None:
        self._give_ups.inc()

    def store_error(self, operation: str) -> None:
        self._errors(operation).inc()

    def store_call(self, operation: str, seconds: float) -> None:
        self._seconds(operation).observe(seconds)
