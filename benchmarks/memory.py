"""The memory store's footprint: bytes per stored session, and its bound.

Sessions are written through the middleware, as a W1 request would, and the
Python heap is measured with :mod:`tracemalloc`. Filling the store to
``max_entries`` and then writing twice as many sessions again must not grow it:
the first round of evictions settles the dict's table and the entries' version
numbers once, the second shows the steady state.
"""

from __future__ import annotations

import gc
import tracemalloc
from dataclasses import dataclass

from wsgi_session import SessionMiddleware, create_memory_store, update_session

from .configs import INITIAL, SECRET
from .inprocess import call


@dataclass
class Footprint:
    max_entries: int
    bytes_per_session: float
    entries_when_full: int
    entries_after_churn: int  # after writing 2 x max_entries more sessions
    first_churn_growth: int  # heap bytes gained while the first max_entries were evicted
    second_churn_growth: int  # and while the next max_entries were: the steady state


def _page(environ, start_response):  # type: ignore[no-untyped-def]
    update_session(environ, lambda s: INITIAL)
    start_response("200 OK", [])
    return [b"0"]


def heap() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def memory_store_footprint(max_entries: int) -> Footprint:
    store = create_memory_store(max_entries=max_entries)
    app = SessionMiddleware(_page, store=store, secret=SECRET)
    call(app, "/", None)  # warm: first-use allocations are not per session
    gc.collect()
    tracemalloc.start()
    try:
        start = heap()
        for _ in range(max_entries - 1):
            call(app, "/", None)
        full, entries_when_full = heap(), len(store)
        for _ in range(max_entries):
            call(app, "/", None)
        first = heap()
        for _ in range(max_entries):
            call(app, "/", None)
        second = heap()
    finally:
        tracemalloc.stop()
    return Footprint(
        max_entries=max_entries,
        bytes_per_session=(full - start) / (max_entries - 1),
        entries_when_full=entries_when_full,
        entries_after_churn=len(store),
        first_churn_growth=first - full,
        second_churn_growth=second - first,
    )
