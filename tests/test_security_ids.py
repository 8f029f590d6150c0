"""Rows B of the catalogue in docs/security.rst: what a session ID may be before a store sees it.

The hostile IDs are signed with the test secret, as if the secret had leaked: the
ID check must hold on its own, after the signature. "No lookup": the spy store
records no ``get``. B5 (an app's Redis key equal to an ID) is a Redis row: see
``test_redis_store.py::test_app_key_equal_to_a_session_id_does_not_collide``.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from conftest import SECRET, SpyStore, counter_app
from hypothesis import given, settings
from hypothesis import strategies as st
from security_support import NAME, call, fresh_id, signed

from wsgi_session import SessionMiddleware, create_memory_store
from wsgi_session import signing as signing_module

_ID = re.compile(r"[A-Za-z0-9_-]{43}")


def padded(text: str) -> str:
    """``text`` padded with ``A`` to the length of a real ID, so only its alphabet is wrong."""
    return (text + "A" * 43)[:43]


@pytest.fixture
def app(store: SpyStore) -> SessionMiddleware:
    return SessionMiddleware(counter_app, store=store, secret=SECRET)


def assert_refused_without_lookup(app: SessionMiddleware, store: SpyStore, session_id: str) -> None:
    response = call(app, f"{NAME}={signed(session_id)}")
    assert (response.code, response.body) == (200, "1")
    assert response.session_id not in (None, session_id)
    assert "get" not in store.names()
    # The new session was stored under a well-formed ID, never the hostile one.
    assert all(_ID.fullmatch(args[0]) for _, args in store.calls)


@pytest.mark.parametrize("chars", ["*", "?", "[", "]", "\\", "[a-z]*", "session:*"])
def test_b1_glob_characters_never_reach_the_store(app, store, chars):
    """B1: a glob pattern in a validly signed ID is refused by the charset check."""
    assert_refused_without_lookup(app, store, padded(chars))


@pytest.mark.parametrize("chars", ["..", "../../etc/passwd", "/", "a/b", "\x00", "\\..\\"])
def test_b2_path_characters_never_reach_the_store(app, store, chars):
    """B2: ``..``, ``/``, NUL (Beaker #248)."""
    assert_refused_without_lookup(app, store, padded(chars))


@pytest.mark.parametrize(
    "chars", ["' OR 1=1 --", '"; DROP TABLE sessions; --', "a b", "a:b", "a\tb", "a.b", "+/=", "é"]
)
def test_b3_sql_whitespace_colons_and_other_characters_are_refused(app, store, chars):
    """B3: SQL, whitespace, colons, dots, base64 padding, non-ASCII."""
    assert_refused_without_lookup(app, store, padded(chars))


@pytest.mark.parametrize("length", [0, 1, 42, 44, 86, 10_240])
def test_b4_ids_of_the_wrong_length_are_refused_before_the_hmac(app, store, monkeypatch, length):
    """B4: ``""``, near misses, and a 10 KB ID: refused before any HMAC or store call."""
    cookie = f"{NAME}={signed('A' * length)}"
    macs: list[str] = []
    real = signing_module.signature
    monkeypatch.setattr(signing_module, "signature", lambda v, k: macs.append(v) or real(v, k))
    response = call(app, cookie)
    assert (response.code, response.body) == (200, "1")
    assert "get" not in store.names()
    assert macs == []


def test_b6_a_signed_id_without_a_record_gets_a_new_id_and_nothing_is_stored(app, store):
    """B6: strict mode. A read stores nothing; a write stores under a new ID only."""
    planted = fresh_id()
    read = call(app, f"{NAME}={signed(planted)}", path="/read")
    assert read.body == "{}"
    assert read.set_cookies == []
    assert len(store.store) == 0
    written = call(app, f"{NAME}={signed(planted)}")
    assert written.session_id not in (None, planted)
    assert store.store.get(planted) is None
    assert len(store.store) == 1


def test_b7_many_unknown_signed_ids_store_nothing():
    """B7: 10,000 requests with random signed IDs leave the store's key count unchanged."""
    store = create_memory_store()
    app = SessionMiddleware(counter_app, store=store, secret=SECRET)
    call(app)  # one real session
    for _ in range(10_000):
        response = call(app, f"{NAME}={signed(fresh_id())}", path="/read")
        assert response.set_cookies == []
    assert len(store) == 1


class _ShapeCheckingStore(SpyStore):
    """Fails the test if any ID but a well-formed one reaches the store."""

    def __getattr__(self, name: str) -> Any:
        method = super().__getattr__(name)

        def checked(*args: Any) -> Any:
            assert _ID.fullmatch(args[0]), f"{name} got {args[0]!r}"
            return method(*args)

        return checked


@settings(max_examples=300, deadline=None)
@given(
    session_id=st.one_of(
        st.text(min_size=43, max_size=43),
        st.text(st.sampled_from("Aa0_-*?[]\\/.:+= \x00é"), min_size=43, max_size=43),
        st.text(max_size=100),
    )
)
def test_only_well_formed_ids_reach_a_store(session_id):
    """B1-B4 as a property: whatever ID is signed, the store sees only the exact format."""
    store = _ShapeCheckingStore(create_memory_store())
    app = SessionMiddleware(counter_app, store=store, secret=SECRET)
    response = call(app, f"{NAME}={signed(session_id)}")
    assert response.code == 200
    if not _ID.fullmatch(session_id):
        assert "get" not in store.names()
