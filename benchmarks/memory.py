"""The memory store's footprint: bytes per stored session, and its bound.

Sessions are written through the middleware, as a W1 request would, and the
Python heap is measured with :mod:`tracemalloc`. Once the store holds
``max_entries`` live sessions it refuses new ones instead of evicting a live one;
twice as many new visitors after that must not grow it.
"""

from __future__ import annotations

import gc
import tracemalloc
from dataclasses import dataclass

from wsgi_session import SessionMiddleware, SessionStoreError, create_memory_store, update_session

from .configs import INITIAL, SECRET
from .inprocess import call


@dataclass
class Footprint:
    max_entries: int
    bytes_per_session: float
    entries_when_full: int
    entries_after_flood: int  # after 2 x max_entries more new visitors
    refused: int  # of those, the sessions refused
    first_flood_growth: int  # heap bytes gained over the first max_entries of them
    second_flood_growth: int  # and over the next max_entries: the steady state


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
    refused = 0

    def new_visitors(count: int) -> None:
        nonlocal refused
        for _ in range(count):
            try:
                call(app, "/", None)
            except SessionStoreError:
                refused += 1

    try:
        start = heap()
        new_visitors(max_entries - 1)
        full, entries_when_full = heap(), len(store)
        new_visitors(max_entries)
        first = heap()
        new_visitors(max_entries)
        second = heap()
    finally:
        tracemalloc.stop()
    return Footprint(
        max_entries=max_entries,
        bytes_per_session=(full - start) / (max_entries - 1),
        entries_when_full=entries_when_full,
        entries_after_flood=len(store),
        refused=refused,
        first_flood_growth=first - full,
        second_flood_growth=second - first,
    )
