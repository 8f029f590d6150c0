"""Rows E (memory store) and F of the catalogue in docs/security.rst: what is stored, and how it is read.

Redis rows E1-E4 and SQLite row E7 belong to the tests of those stores.
"""

from __future__ import annotations

import datetime
import json
import pickle
import threading
import time
from typing import Any, Callable

import pytest
from conftest import SECRET, counter_app
from security_support import NAME, call, fresh_id, signed

from wsgi_session import (
    DELETE,
    SessionMiddleware,
    SessionStoreError,
    create_memory_store,
    get_session,
    update_session,
)

Environ = dict[str, Any]


def updating_app(changes: Callable[[], dict[str, Any]]) -> Callable[..., Any]:
    """An app that applies ``changes()`` and reports a TypeError or ValueError as 400."""

    def app(environ: Environ, start_response: Callable[..., Any]) -> list[bytes]:
        try:
            update_session(environ, lambda s: changes())
        except (TypeError, ValueError) as exc:
            body, status = str(exc), "400 Bad Request"
        else:
            body, status = json.dumps(dict(get_session(environ) or {})), "200 OK"
        start_response(status, [])
        return [body.encode()]

    return app


def raw(store: Any, session_id: str) -> Any:
    """The record exactly as the store holds it, parsed as strict JSON."""
    payload = store.get(session_id).payload
    return json.loads(payload, parse_constant=lambda name: pytest.fail(f"{name} in stored JSON"))


# -- E5, E6: whatever the store holds ---------------------------------------------

_HOSTILE_PAYLOADS = [
    "{",
    "[]",
    "null",
    '"a string"',
    "[" * 100_000 + "]" * 100_000,
    '{"created":1.0,"data":' + "[" * 100_000 + "]" * 100_000 + "}",
    b"\xff\xfe{}",
    b'{"created":1.0,"data":{"a":"\xff"}}',
    '{"created":NaN,"data":{}}',
    '{"created":1.0,"data":{"a":NaN}}',
    '{"created":Infinity,"data":{}}',
    '{"created":1e999,"data":{}}',
    '{"created":1.0,"data":{}} trailing',
    pickle.dumps({"created": 1.0, "data": {}}),
    # Not text at all, as a store of someone else's making could answer.
    123,
    None,
    memoryview(b'{"created":1.0,"data":{}}'),
]


@pytest.mark.parametrize("payload", _HOSTILE_PAYLOADS, ids=range(len(_HOSTILE_PAYLOADS)))
def test_e5_undecodable_records_are_treated_as_missing(store, payload, caplog):
    """E5: corrupt JSON, wrong shape, deep nesting, bad UTF-8, NaN: a fresh session, a warning."""
    session_id = fresh_id()
    store.store.set(session_id, payload, 3600)
    app = SessionMiddleware(counter_app, store=store, secret=SECRET)
    response = call(app, f"{NAME}={signed(session_id)}")
    assert (response.code, response.body) == (200, "1")
    assert response.session_id != session_id
    assert any("not a session" in r.getMessage() for r in caplog.records)


_WRONG_METADATA = [
    '{"data":{}}',
    '{"created":1.0}',
    '{"created":"1","data":{}}',
    '{"created":true,"data":{}}',
    '{"created":null,"data":{}}',
    '{"created":1.0,"data":[]}',
    '{"created":1.0,"data":"x"}',
    '{"created":1.0,"data":null}',
    '{"created":[1],"data":{}}',
]


@pytest.mark.parametrize("payload", _WRONG_METADATA)
def test_e6_missing_or_mistyped_metadata_is_invalid(store, payload):
    """E6."""
    session_id = fresh_id()
    store.store.set(session_id, payload, 3600)
    app = SessionMiddleware(counter_app, store=store, secret=SECRET)
    assert call(app, f"{NAME}={signed(session_id)}").body == "1"


def _nested(depth: int) -> str:
    """A record whose data nests ``depth`` containers: the data dict and lists in it."""
    return '{"created":1.0,"data":{"a":' + "[" * (depth - 1) + "]" * (depth - 1) + "}}"


_NOT_SESSIONS_OF_E12 = {
    "created of 400 digits": '{"created":' + "9" * 400 + ',"data":{"visits":5}}',
    "created in the future": '{"created":%d,"data":{"visits":5}}',
    "data nested 500 deep": _nested(500),
    "data nested 980 deep": _nested(980),
    "data nested 101 deep": _nested(101),
}


@pytest.mark.parametrize("payload", _NOT_SESSIONS_OF_E12.values(), ids=_NOT_SESSIONS_OF_E12.keys())
def test_e12_a_record_that_would_fail_later_is_missing_and_logged(store, payload, caplog):
    """E12: neither an OverflowError, nor a stretched absolute_timeout, nor a RecursionError later."""
    if "%d" in payload:
        payload = payload % (time.time() + 10 * 365 * 86400)
    session_id = fresh_id()
    store.store.set(session_id, payload, 3600)
    app = SessionMiddleware(counter_app, store=store, secret=SECRET, absolute_timeout=3600)
    response = call(app, f"{NAME}={signed(session_id)}")
    assert (response.code, response.body) == (200, "1")
    assert response.session_id != session_id
    assert any(r.levelname == "WARNING" and "not a session" in r.getMessage() for r in caplog.records)


def test_e12_data_nested_to_the_limit_is_a_session(store):
    session_id = fresh_id()
    store.store.set(session_id, _nested(100), 3600)
    app = SessionMiddleware(counter_app, store=store, secret=SECRET)
    assert call(app, f"{NAME}={signed(session_id)}", path="/read").body.startswith("{'a': [[[")


def test_e12_data_nested_past_the_limit_is_refused_at_update(store):
    deep: Any = 1
    for _ in range(100):
        deep = [deep]
    response = call(SessionMiddleware(updating_app(lambda: {"a": deep}), store=store, secret=SECRET))
    assert (response.code, response.body) == (400, "session data is nested deeper than 100 levels")
    assert store.names() == []


class _Exploit:
    ran = False

    def __reduce__(self) -> Any:
        return (setattr, (_Exploit, "ran", True))


def test_e5_a_pickled_record_is_never_unpickled(store):
    """E5 / rule 5: a store holding pickle cannot run code in the app."""
    session_id = fresh_id()
    store.store.set(session_id, pickle.dumps(_Exploit()), 3600)
    app = SessionMiddleware(counter_app, store=store, secret=SECRET)
    assert call(app, f"{NAME}={signed(session_id)}").body == "1"
    assert _Exploit.ran is False


def test_e8_the_memory_store_is_bounded():
    """E8: at most ``max_entries`` sessions."""
    store = create_memory_store(max_entries=3)
    app = SessionMiddleware(counter_app, store=store, secret=SECRET)
    for _ in range(3):
        call(app)
    with pytest.raises(SessionStoreError, match="full"):
        call(app)
    assert len(store) == 3


def test_e13_a_flood_of_new_visitors_logs_no_one_out(clock):
    """E13: a full store refuses new sessions; the existing ones stay, expired ones make room."""
    store = create_memory_store(max_entries=10)
    app = SessionMiddleware(counter_app, store=store, secret=SECRET, max_age=100)
    users = [call(app).cookie for _ in range(10)]
    refused = 0
    for _ in range(1000):  # cookie-less requests to a page that writes the session
        try:
            call(app)
        except SessionStoreError:
            refused += 1
    assert refused == 1000
    assert [call(app, cookie, path="/read").body for cookie in users] == ["{'visits': 1}"] * 10
    clock.advance(101)  # every session expired: room for new visitors again
    assert call(app).cookie is not None


def test_e8_the_memory_store_is_thread_safe():
    """E8: compare-and-set from 8 threads: every increment counts, none is torn."""
    store = create_memory_store()
    store.set("x" * 43, "0", 3600)

    def increment() -> None:
        for _ in range(250):
            while True:
                current = store.get("x" * 43)
                assert current is not None
                if store.compare_and_set("x" * 43, current.version, str(int(current.payload) + 1), 3600):
                    break

    threads = [threading.Thread(target=increment) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.get("x" * 43).payload == "2000"


def test_e8_the_memory_store_refuses_a_bad_bound():
    for bad in (0, -1, True, 1.5, "10"):
        with pytest.raises(ValueError, match="max_entries"):
            create_memory_store(max_entries=bad)


# -- JSON only -------------------------------------------------------------------------


def test_the_stored_record_is_plain_json(store):
    """Rule 5: the raw store value parses as strict JSON into metadata and data."""
    app = SessionMiddleware(
        updating_app(lambda: {"user": "ünï", "n": [1, 2.5, None, True], "m": {"k": "v"}}),
        store=store,
        secret=SECRET,
    )
    response = call(app)
    record = raw(store.store, response.session_id)
    assert set(record) == {"created", "data"}
    assert isinstance(record["created"], float)
    assert record["data"] == {"user": "ünï", "n": [1, 2.5, None, True], "m": {"k": "v"}}


# -- F: what an app may put in ---------------------------------------------------------


class _Opaque:
    pass


@pytest.mark.parametrize(
    "value", [datetime.datetime(2024, 1, 1), {1, 2}, b"bytes", _Opaque(), {"nested": {1, 2}}, [object()]]
)
def test_f1_values_json_cannot_encode_raise_type_error_at_update_and_store_nothing(store, value):
    """F1: ``TypeError`` at ``update_session``, naming the key; nothing is stored."""
    app = SessionMiddleware(updating_app(lambda: {"bad": value}), store=store, secret=SECRET)
    response = call(app)
    assert response.code == 400
    assert "'bad'" in response.body
    assert response.set_cookies == []
    assert len(store.store) == 0


def test_f1_a_refused_update_leaves_the_session_as_it_was(store):
    seen: list[dict[str, Any]] = []

    def app(environ: Environ, start_response: Callable[..., Any]) -> list[bytes]:
        update_session(environ, lambda s: {"good": 1})
        with pytest.raises(TypeError):
            update_session(environ, lambda s: {"good": 2, "bad": {1}})
        seen.append(dict(get_session(environ) or {}))
        start_response("200 OK", [])
        return [b""]

    response = call(SessionMiddleware(app, store=store, secret=SECRET))
    assert seen == [{"good": 1}]
    assert raw(store.store, response.session_id)["data"] == {"good": 1}


def test_f2_a_value_over_max_size_is_refused_at_update(store):
    """F2: a 10 MB value, with ``max_size``: a clear ValueError at ``update_session``."""
    app = SessionMiddleware(
        updating_app(lambda: {"big": "x" * 10_000_000}), store=store, secret=SECRET, max_size=4096
    )
    response = call(app)
    assert response.code == 400
    assert "max_size=4096" in response.body
    assert len(store.store) == 0


def test_f2_max_size_counts_the_encoded_bytes(store):
    """F2: the limit is on the JSON as stored (non-ASCII is escaped, six bytes a character)."""
    limit = len(json.dumps({"k": "é" * 10}, separators=(",", ":")))
    fits = SessionMiddleware(
        updating_app(lambda: {"k": "é" * 10}), store=store, secret=SECRET, max_size=limit
    )
    assert call(fits).code == 200
    over = SessionMiddleware(
        updating_app(lambda: {"k": "é" * 11}), store=store, secret=SECRET, max_size=limit
    )
    assert call(over).code == 400


@pytest.mark.parametrize(
    "changes",
    [
        {"n": float("nan")},
        {"n": float("inf")},
        {"n": [float("-inf")]},
        {"n": {"deep": float("nan")}},
        {1: "x"},
    ],
    ids=["nan", "inf", "nested-inf", "nested-nan", "int-key"],
)
def test_f3_nan_infinities_and_non_string_keys_are_refused(store, changes):
    """F3: ``allow_nan=False``; top-level keys must be strings."""
    response = call(SessionMiddleware(updating_app(lambda: changes), store=store, secret=SECRET))
    assert response.code == 400
    assert len(store.store) == 0


def test_f3_round_trip_changes_of_json_are_as_documented(store):
    """F3: tuples come back as lists, nested non-string keys as strings."""
    first = call(
        SessionMiddleware(
            updating_app(lambda: {"t": (1, 2), "m": {1: "a", 2.5: "b", None: "c"}}),
            store=store,
            secret=SECRET,
        )
    )
    again = call(SessionMiddleware(counter_app, store=store, secret=SECRET), first.cookie, path="/read")
    assert again.body == "{'t': [1, 2], 'm': {'1': 'a', '2.5': 'b', 'null': 'c'}}"


@pytest.mark.parametrize("key", ["created", "data", "_expires", "expires", "version", "__created"])
def test_f4_a_user_key_named_like_metadata_changes_nothing(store, clock, key):
    """F4: user data lives apart from the metadata: no expiry or creation time to forge."""
    app = SessionMiddleware(
        updating_app(lambda: {key: 10**12}), store=store, secret=SECRET, max_age=100, absolute_timeout=1000
    )
    first = call(app)
    record = raw(store.store, first.session_id)
    assert record["created"] == clock.now
    assert record["data"] == {key: 10**12}
    reader = SessionMiddleware(counter_app, store=store, secret=SECRET, max_age=100, absolute_timeout=1000)
    clock.advance(101)  # idle timeout
    assert call(reader, first.cookie, path="/read").body == "{}"
    second = call(app)
    for _ in range(11):
        clock.advance(95)
        call(app, second.cookie)
    assert call(reader, second.cookie, path="/read").body == "{}"  # absolute timeout


def test_f4_delete_of_a_metadata_like_key_changes_nothing(store):
    app = SessionMiddleware(updating_app(lambda: {"created": DELETE}), store=store, secret=SECRET)
    response = call(app)
    assert isinstance(raw(store.store, response.session_id)["created"], float)


def test_f5_prototype_pollution_keys_are_stored_verbatim(store):
    """F5: ``__proto__`` and ``constructor`` are ordinary keys here (a Node reader must beware)."""
    changes = {"__proto__": {"admin": True}, "constructor": {"prototype": {"x": 1}}}
    app = SessionMiddleware(updating_app(lambda: changes), store=store, secret=SECRET)
    response = call(app)
    assert raw(store.store, response.session_id)["data"] == changes
    assert '"__proto__":{"admin":true}' in store.store.get(response.session_id).payload
