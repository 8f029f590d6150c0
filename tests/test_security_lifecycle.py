"""Rows C of the catalogue in docs/security.rst: fixation, replay, expiry, races and the WSGI protocol.

Time is a settable clock in the store, the session and the middleware, so expiry
is tested without sleeping.
"""

from __future__ import annotations

import json
import re
import string
import sys
from typing import Any, Callable

import pytest
from conftest import SECRET, SpyStore, replaced, sessions
from security_support import NAME, call, signed

from wsgi_session import (
    SessionError,
    SessionMiddleware,
    SessionStoreError,
    destroy_session,
    get_session,
    regenerate_session,
    update_session,
)
from wsgi_session.signing import new_session_id

Environ = dict[str, Any]


def lifecycle_app(environ: Environ, start_response: Callable[..., Any]) -> list[bytes]:
    """``/`` counts, ``/read`` reads, ``/login`` regenerates, ``/logout`` destroys."""
    path = environ["PATH_INFO"]
    if path == "/login":
        regenerate_session(environ)
        update_session(environ, lambda s: {"user": "victim"})
    elif path == "/logout":
        destroy_session(environ)
    elif path == "/":
        update_session(environ, lambda s: {"visits": s.get("visits", 0) + 1})
    body = json.dumps(dict(get_session(environ) or {}), sort_keys=True)
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body.encode()]


@pytest.fixture
def app(store: SpyStore) -> SessionMiddleware:
    return SessionMiddleware(lifecycle_app, store=store, secret=SECRET, max_age=100)


def data(response: Any) -> dict[str, Any]:
    return json.loads(response.body)  # type: ignore[no-any-return]


def test_c1_fixation_login_regenerates_and_the_planted_id_is_dead(app, store):
    """C1: the attacker's anonymous ID, used by the victim at login, stops working."""
    planted = call(app)  # the attacker's own anonymous session
    attacker_id, attacker_cookie = planted.session_id, planted.cookie
    login = call(app, attacker_cookie, path="/login")
    assert login.session_id not in (None, attacker_id)
    assert data(login) == {"user": "victim", "visits": 1}  # data carried over
    assert replaced(store, attacker_id)  # no data left under it
    replay = call(app, attacker_cookie, path="/read")
    assert data(replay) == {}
    assert replay.set_cookies == []
    assert data(call(app, login.cookie, path="/read")) == {"user": "victim", "visits": 1}


def test_c2_replay_after_destroy_is_fresh_and_the_cookie_is_cleared_exactly(store):
    """C2: the clearing Set-Cookie has the same name, Path and Domain, and Max-Age=0."""
    app = SessionMiddleware(
        lifecycle_app, store=store, secret=SECRET, cookie={"domain": "example.com", "path": "/"}
    )
    first = call(app)
    logout = call(app, first.cookie, path="/logout")
    assert data(logout) == {}
    (cleared,) = logout.set_cookies
    assert cleared.startswith(f"{NAME}=;")
    attributes = {a.strip().split("=")[0]: a.strip() for a in cleared.split(";")[1:]}
    assert attributes["Max-Age"] == "Max-Age=0"
    assert attributes["Path"] == "Path=/"
    assert attributes["Domain"] == "Domain=example.com"
    assert store.get(first.session_id) is None
    assert data(call(app, first.cookie, path="/read")) == {}


def test_c3_replay_of_the_pre_regenerate_cookie_is_fresh(app, store, clock):
    """C3: after regenerate, the old record holds no data and its cookie gives nothing."""
    old = call(app)
    new = call(app, old.cookie, path="/login")
    assert replaced(store, old.session_id)
    assert list(sessions(store.store)) == [new.session_id]
    assert data(call(app, old.cookie, path="/read")) == {}
    clock.advance(61)  # past regenerate_window: the old ID is an unknown ID
    assert store.get(old.session_id) is None
    replay = call(app, old.cookie)
    assert data(replay) == {"visits": 1}
    assert replay.session_id not in (old.session_id, new.session_id)


# -- C14, C20: a request still carrying the ID a login replaced ---------------------


def test_c14_an_old_id_inside_the_window_reads_and_writes_nothing(app, store):
    """C14: an empty session, nothing stored, no Set-Cookie, nothing of the new session."""
    planted = call(app)
    call(app, planted.cookie)
    login = call(app, planted.cookie, path="/login")
    store.calls.clear()
    bodies = {}
    for path in ("/read", "/", "/login"):  # read, write, even log in again
        late = call(app, planted.cookie, path=path)
        assert late.set_cookies == []
        bodies[path] = data(late)
    # Each sees only what it wrote itself, in a session that is never stored.
    assert bodies == {"/read": {}, "/": {"visits": 1}, "/login": {"user": "victim"}}
    assert [name for name, _ in store.calls] == ["get"] * 3  # one lookup each, no write
    assert data(call(app, login.cookie, path="/read")) == {"user": "victim", "visits": 2}


def test_c14_a_request_carrying_a_replaced_id_is_logged_at_info(app, caplog):
    planted = call(app)
    call(app, planted.cookie, path="/login")
    with caplog.at_level("INFO", logger="wsgi_session"):
        call(app, planted.cookie, path="/read")
    (record,) = [r for r in caplog.records if "replaced" in r.getMessage()]
    assert record.levelname == "INFO"
    assert planted.session_id not in record.getMessage()


def test_c14_a_window_of_zero_deletes_the_old_id_at_once(store):
    app = SessionMiddleware(lifecycle_app, store=store, secret=SECRET, regenerate_window=0)
    planted = call(app)
    call(app, planted.cookie, path="/login")
    assert store.get(planted.session_id) is None
    late = call(app, planted.cookie)
    assert data(late) == {"visits": 1}
    assert late.set_cookies != []  # a new session, which replaces the login's cookie


def test_c20_a_logout_through_the_old_id_inside_the_window_ends_the_new_session(app, store):
    """C20: a logout racing a login in another tab still logs out."""
    first = call(app)
    login = call(app, first.cookie, path="/login")
    logout = call(app, first.cookie, path="/logout")
    assert [c.split(";")[0] for c in logout.set_cookies] == [f"{NAME}="]
    assert sessions(store.store) == {}
    assert data(call(app, login.cookie, path="/read")) == {}


def test_c20_a_logout_that_then_flashes_still_ends_the_new_session(store):
    """A logout view that writes after the destroy (a flash) starts a new anonymous session."""

    def logout_and_flash(environ: Environ, start_response: Callable[..., Any]) -> list[bytes]:
        if environ["PATH_INFO"] == "/logout":
            destroy_session(environ)
            update_session(environ, lambda s: {"flash": "bye"})
            start_response("200 OK", [])
            return [b""]
        return lifecycle_app(environ, start_response)

    app = SessionMiddleware(logout_and_flash, store=store, secret=SECRET)
    first = call(app)
    login = call(app, first.cookie, path="/login")
    logout = call(app, first.cookie, path="/logout")
    assert data(call(app, login.cookie, path="/read")) == {}
    assert logout.session_id not in (None, first.session_id, login.session_id)
    assert list(sessions(store.store).values()) == [{"flash": "bye"}]


def test_c20_a_logout_follows_a_chain_of_regenerates(app, store):
    first = call(app)
    second = call(app, first.cookie, path="/login")
    third = call(app, second.cookie, path="/login")
    call(app, first.cookie, path="/logout")
    assert sessions(store.store) == {}
    assert data(call(app, third.cookie, path="/read")) == {}


# -- C18: caches --------------------------------------------------------------------


def cached_page(cache_control: str | None) -> Callable[..., Any]:
    def page(environ: Environ, start_response: Callable[..., Any]) -> list[bytes]:
        if environ["PATH_INFO"] == "/logout":
            destroy_session(environ)
        elif environ["PATH_INFO"] == "/read":
            get_session(environ)
        else:
            update_session(environ, lambda s: {"csrf": "token"})
        headers = [("Content-Type", "text/html")]
        if cache_control is not None:
            headers.append(("Cache-Control", cache_control))
        start_response("200 OK", headers)
        return [b"<form>"]

    return page


@pytest.mark.parametrize(
    ("app_says", "sent"),
    [
        (None, "private"),
        ("public, max-age=60", "max-age=60, private"),
        ("public, max-age=60, s-maxage=600", "max-age=60, private"),
        ("max-age=60", "max-age=60, private"),
        ('private="Set-Cookie", max-age=5', "private, max-age=5"),
        ("no-store", "no-store"),
        ("private, max-age=9", "private, max-age=9"),
    ],
)
def test_c18_a_response_that_sets_the_cookie_is_private(store, app_says, sent):
    """C18: no shared cache may keep one visitor's new session for the next ones."""
    app = SessionMiddleware(cached_page(app_says), store=store, secret=SECRET)
    response = call(app)
    assert response.set_cookies
    assert response.all("Cache-Control") == [sent]
    logout = call(app, response.cookie, path="/logout")
    assert logout.set_cookies  # it expires the cookie: private too
    assert logout.all("Cache-Control") == [sent]


def test_c18_a_response_without_a_session_cookie_keeps_the_apps_caching(store):
    app = SessionMiddleware(cached_page("public, max-age=60"), store=store, secret=SECRET)
    cookie = call(app).cookie
    again = call(app, cookie, path="/read")  # only read: no Set-Cookie
    assert again.set_cookies == []
    assert again.all("Cache-Control") == ["public, max-age=60"]


def test_c4_idle_timeout_enforced_by_the_server(app, store, clock):
    """C4: past max_age without activity the store has nothing, and drops the record."""
    first = call(app)
    clock.advance(99)
    assert data(call(app, first.cookie, path="/read")) == {"visits": 1}  # reading is no activity
    clock.advance(2)
    assert data(call(app, first.cookie, path="/read")) == {}
    assert len(store.store) == 0


def test_c4_activity_just_before_the_timeout_extends_it(app, clock):
    """C4: an update renews the TTL; so does a read with ``rolling``."""
    first = call(app)
    for _ in range(5):
        clock.advance(99)
        assert call(app, first.cookie).body  # a write renews
    clock.advance(99)
    assert data(call(app, first.cookie, path="/read")) == {"visits": 6}


def test_c4_rolling_reads_extend_the_session(store, clock):
    app = SessionMiddleware(lifecycle_app, store=store, secret=SECRET, max_age=100, rolling=True)
    first = call(app)
    for _ in range(5):
        clock.advance(99)
        assert data(call(app, first.cookie, path="/read")) == {"visits": 1}


def test_c5_absolute_timeout_ends_even_an_active_session(store, clock):
    """C5: kept alive by a write every 90 s, it still ends ``absolute_timeout`` after creation."""
    app = SessionMiddleware(lifecycle_app, store=store, secret=SECRET, max_age=100, absolute_timeout=1000)
    cookie = call(app).cookie
    for _ in range(11):  # up to 990 s after creation
        clock.advance(90)
        assert data(call(app, cookie, path="/read"))
        call(app, cookie)
    clock.advance(10)  # 1000 s after creation
    assert data(call(app, cookie, path="/read")) == {}
    assert len(store.store) == 0


def test_c5_regenerate_keeps_the_creation_time(store, clock):
    """C5 (decision): regenerating cannot stretch the absolute timeout."""
    app = SessionMiddleware(lifecycle_app, store=store, secret=SECRET, max_age=100, absolute_timeout=1000)
    first = call(app)
    created = json.loads(store.get(first.session_id).payload)["created"]
    cookie = first.cookie
    for _ in range(11):
        clock.advance(90)
        response = call(app, cookie, path="/login")
        cookie = response.cookie
        assert json.loads(store.get(response.session_id).payload)["created"] == created
    clock.advance(10)
    assert data(call(app, cookie, path="/read")) == {}


def test_c6_an_expired_record_still_held_is_refused_by_the_servers_timestamp(store, clock):
    """C6: the record's own creation time, not the store's TTL, ends it at the absolute timeout."""
    app = SessionMiddleware(lifecycle_app, store=store, secret=SECRET, max_age=100_000, absolute_timeout=1000)
    first = call(app)
    clock.advance(1000)
    assert store.get(first.session_id) is not None  # the store's TTL has not run out
    assert data(call(app, first.cookie, path="/read")) == {}
    assert store.get(first.session_id) is None


def test_c6_the_memory_store_refuses_an_expired_record_without_a_sweep(store, clock):
    """C6: expiry is checked on read with the store's clock."""
    store.set("x" * 43, '{"created":1.0,"data":{}}', 10)
    clock.advance(10)
    assert store.get("x" * 43) is None


def test_c7_the_clients_max_age_has_no_effect(app, clock):
    """C7: a browser keeping the cookie longer (inflated Max-Age) gets nothing for it."""
    first = call(app)
    assert "Max-Age=100" in first.set_cookies[0]
    clock.advance(10_000)
    assert data(call(app, first.cookie, path="/read")) == {}


def _racing_app(action: Callable[[Environ], None], race: Callable[[], None]) -> Callable[..., Any]:
    """An app that loads the session, lets ``race`` run another request, then acts."""

    def app(environ: Environ, start_response: Callable[..., Any]) -> list[bytes]:
        get_session(environ)
        race()
        action(environ)
        start_response("200 OK", [])
        return [b""]

    return app


@pytest.mark.parametrize(
    "action",
    [
        lambda environ: update_session(environ, lambda s: {"late": True}),
        regenerate_session,
        None,  # a read, with rolling: a touch
    ],
    ids=["update", "regenerate", "rolling-read"],
)
def test_c8_a_destroy_during_a_save_does_not_resurrect_the_session(store, action):
    """C8: request B loaded the session before request A destroyed it; B's write-back loses."""
    plain = SessionMiddleware(lifecycle_app, store=store, secret=SECRET)
    first = call(plain)
    rolling_read = action is None
    racing = SessionMiddleware(
        _racing_app(action or (lambda environ: None), lambda: call(plain, first.cookie, path="/logout")),
        store=store,
        secret=SECRET,
        rolling=True,
    )
    late = call(racing, first.cookie)
    assert len(store.store) == 0
    if rolling_read:  # the touch found nothing; re-sending the dead ID's cookie is harmless
        assert late.session_id in (None, first.session_id)
    else:
        assert late.session_id is None
    assert data(call(plain, first.cookie, path="/read")) == {}


def test_c9_destroy_then_update_starts_one_new_session(store):
    """C9: the old record is deleted; only the new one exists."""
    first = call(SessionMiddleware(lifecycle_app, store=store, secret=SECRET))

    def app(environ: Environ, start_response: Callable[..., Any]) -> list[bytes]:
        destroy_session(environ)
        update_session(environ, lambda s: {"after": True})
        body = json.dumps(dict(get_session(environ) or {}))
        start_response("200 OK", [])
        return [body.encode()]

    response = call(SessionMiddleware(app, store=store, secret=SECRET), first.cookie)
    assert data(response) == {"after": True}
    assert response.session_id != first.session_id
    assert store.get(first.session_id) is None
    assert len(store.store) == 1


def test_c9_double_regenerate_leaves_one_record(store):
    """C9: two regenerations in one request: one new record, the original gone."""
    first = call(SessionMiddleware(lifecycle_app, store=store, secret=SECRET))

    def app(environ: Environ, start_response: Callable[..., Any]) -> list[bytes]:
        regenerate_session(environ)
        regenerate_session(environ)
        body = json.dumps(dict(get_session(environ) or {}))
        start_response("200 OK", [])
        return [body.encode()]

    response = call(SessionMiddleware(app, store=store, secret=SECRET), first.cookie)
    assert data(response) == {"visits": 1}
    assert response.session_id not in (None, first.session_id)
    assert replaced(store, first.session_id)
    assert list(sessions(store.store)) == [response.session_id]


def test_c9_regenerate_on_a_new_session_stores_one_record(store):
    """C9: regenerating a session that was never stored saves it once, under the new ID."""

    def app(environ: Environ, start_response: Callable[..., Any]) -> list[bytes]:
        regenerate_session(environ)
        start_response("200 OK", [])
        return [b""]

    response = call(SessionMiddleware(app, store=store, secret=SECRET))
    assert response.session_id is not None
    assert len(store.store) == 1


def test_c9_destroy_then_regenerate_stays_destroyed(store):
    first = call(SessionMiddleware(lifecycle_app, store=store, secret=SECRET))

    def app(environ: Environ, start_response: Callable[..., Any]) -> list[bytes]:
        destroy_session(environ)
        regenerate_session(environ)
        start_response("200 OK", [])
        return [b""]

    response = call(SessionMiddleware(app, store=store, secret=SECRET), first.cookie)
    assert response.set_cookies[0].startswith(f"{NAME}=;")
    assert len(store.store) == 0


# -- C10: the WSGI protocol's corners -----------------------------------------------


def _writes(store: SpyStore) -> list[str]:
    return [n for n in store.names() if n in ("set", "compare_and_set", "delete", "touch")]


def test_c10_an_exception_before_start_response_saves_nothing(store):
    def app(environ: Environ, start_response: Callable[..., Any]) -> list[bytes]:
        update_session(environ, lambda s: {"half": "done"})
        raise RuntimeError("the app failed")

    with pytest.raises(RuntimeError, match="the app failed"):
        call(SessionMiddleware(app, store=store, secret=SECRET))
    assert _writes(store) == []


def test_c10_start_response_again_with_exc_info_keeps_one_save_and_one_cookie(store):
    """C10: PEP 3333 lets an app replace its headers with an error's before the body."""

    def app(environ: Environ, start_response: Callable[..., Any]) -> list[bytes]:
        update_session(environ, lambda s: {"n": 1})
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            raise ValueError("while rendering")
        except ValueError:
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")], sys.exc_info())
        return [b"error page"]

    response = call(SessionMiddleware(app, store=store, secret=SECRET))
    assert response.code == 500
    assert len(response.set_cookies) == 1
    assert response.all("Vary") == ["Cookie"]
    assert _writes(store) == ["set"]
    assert store.get(response.session_id) is not None


class _WriteFailingStore(SpyStore):
    """Reads work, writes fail: the store went read-only mid-request."""

    def __getattr__(self, name: str) -> Any:
        if name == "get":
            return super().__getattr__(name)

        def fail(*args: Any) -> Any:
            raise OSError("read-only store")

        return fail


def test_c10_a_failed_write_back_lets_the_error_page_through(store):
    """C10: start_response raised SessionStoreError; the app's error response is not blocked."""
    errors: list[Exception] = []

    def app(environ: Environ, start_response: Callable[..., Any]) -> list[bytes]:
        update_session(environ, lambda s: {"n": 1})
        try:
            start_response("200 OK", [])
        except SessionStoreError as exc:
            errors.append(exc)
            start_response("503 Service Unavailable", [], sys.exc_info())
        return [b"try again"]

    response = call(SessionMiddleware(app, store=_WriteFailingStore(store.store), secret=SECRET))
    assert response.code == 503
    assert response.set_cookies == []
    assert isinstance(errors[0].__cause__, OSError)


def test_c10_start_response_twice_never_saves_twice(store):
    """C10: a second call (which the server may refuse) writes nothing more."""

    def app(environ: Environ, start_response: Callable[..., Any]) -> list[bytes]:
        update_session(environ, lambda s: {"n": 1})
        start_response("200 OK", [])
        start_response("200 OK", [])
        return [b""]

    response = call(SessionMiddleware(app, store=store, secret=SECRET))
    assert len(response.set_cookies) == 1
    assert _writes(store) == ["set"]


def test_c10_write_callable_and_generator_bodies(store):
    """C10: the legacy ``write()`` and a body generated after ``start_response``."""

    def writing_app(environ: Environ, start_response: Callable[..., Any]) -> list[bytes]:
        update_session(environ, lambda s: {"n": 1})
        start_response("200 OK", [])(b"written")
        return []

    def generator_app(environ: Environ, start_response: Callable[..., Any]) -> Any:
        update_session(environ, lambda s: {"n": 2})
        start_response("200 OK", [])
        yield b"generated"

    for app in (writing_app, generator_app):
        response = call(SessionMiddleware(app, store=store, secret=SECRET))
        assert len(response.set_cookies) == 1
        assert store.get(response.session_id) is not None


def test_c10_session_use_after_start_response_raises_even_if_untouched_before(store):
    """C10: a generator that touches the session only after the headers went out."""
    errors: list[Exception] = []

    def app(environ: Environ, start_response: Callable[..., Any]) -> Any:
        start_response("200 OK", [])
        try:
            update_session(environ, lambda s: {"lost": True})
        except SessionError as exc:
            errors.append(exc)
        yield b""

    response = call(SessionMiddleware(app, store=store, secret=SECRET))
    assert len(errors) == 1
    assert "start_response" in str(errors[0])
    assert response.set_cookies == []
    assert store.names() == []


# -- C11-C13 -------------------------------------------------------------------------


def test_c11_default_cookie_attributes(app):
    """C11: HttpOnly, SameSite=Lax, Secure, Path=/, no Domain."""
    (cookie,) = call(app).set_cookies
    attributes = [a.strip() for a in cookie.split(";")[1:]]
    for expected in ("HttpOnly", "SameSite=Lax", "Secure", "Path=/", "Max-Age=100"):
        assert expected in attributes
    assert not any(a.lower().startswith("domain") for a in attributes)


def test_c11_secure_is_configurable(store):
    app = SessionMiddleware(lifecycle_app, store=store, secret=SECRET, cookie={"secure": False})
    (cookie,) = call(app).set_cookies
    assert "Secure" not in [a.strip() for a in cookie.split(";")]


def test_c11_partitioned_cookie(store):
    app = SessionMiddleware(
        lifecycle_app, store=store, secret=SECRET, cookie={"samesite": "none", "partitioned": True}
    )
    attributes = [a.strip() for a in call(app).set_cookies[0].split(";")]
    assert {"Partitioned", "SameSite=None", "Secure"} <= set(attributes)


def test_c11_vary_cookie_whenever_the_session_is_touched(app):
    """C11: ``Vary: Cookie`` on a read or a write, never twice, never when untouched."""
    assert call(app, path="/read").all("Vary") == ["Cookie"]
    assert call(app).all("Vary") == ["Cookie"]

    def untouched(environ: Environ, start_response: Callable[..., Any]) -> list[bytes]:
        start_response("200 OK", [])
        return [b""]

    def own_vary(environ: Environ, start_response: Callable[..., Any]) -> list[bytes]:
        get_session(environ)
        start_response("200 OK", [("Vary", "Accept-Encoding, Cookie")])
        return [b""]

    store = app.settings.store
    assert call(SessionMiddleware(untouched, store=store, secret=SECRET)).all("Vary") == []
    assert call(SessionMiddleware(own_vary, store=store, secret=SECRET)).all("Vary") == [
        "Accept-Encoding, Cookie"
    ]


@pytest.mark.parametrize(
    ("name", "cookie", "option"),
    [
        ("__Host-session", {"secure": False}, "secure"),
        ("__Host-session", {"domain": "example.com"}, "domain"),
        ("__Host-session", {"path": "/app"}, "path"),
        ("__host-session", {"domain": "example.com"}, "domain"),
        ("__Secure-session", {"secure": False}, "secure"),
        ("__secure-session", {"secure": False}, "secure"),
        ("session", {"samesite": "none", "secure": False}, "samesite"),
        ("session", {"samesite": "bogus"}, "samesite"),
        ("session", {"samesite": None}, "samesite"),
        ("session", {"partitioned": True, "secure": False}, "partitioned"),
        ("session", {"path": "app"}, "path"),
        ("session", {"httponly": True, "expires": 5}, "expires"),
    ],
)
def test_c12_unsafe_cookie_configuration_fails_at_startup(store, name, cookie, option):
    """C12: ``__Host-``/``__Secure-`` rules, SameSite, Partitioned: a ValueError naming the option."""
    with pytest.raises(ValueError, match=option):
        SessionMiddleware(lifecycle_app, store=store, secret=SECRET, name=name, cookie=cookie)


def test_c12_valid_prefixed_names_are_accepted(store):
    SessionMiddleware(lifecycle_app, store=store, secret=SECRET, name="__Host-session")
    SessionMiddleware(lifecycle_app, store=store, secret=SECRET, name="__Secure-s", cookie={"domain": "a.b"})


def test_c13_generated_ids_are_unique_and_well_formed():
    """C13: 100,000 IDs: no repeat, 43 characters of the URL-safe alphabet."""
    ids = [new_session_id() for _ in range(100_000)]
    assert len(set(ids)) == len(ids)
    shape = re.compile(f"[{re.escape(string.ascii_letters + string.digits)}_-]{{43}}")
    assert all(shape.fullmatch(i) for i in ids)


def test_strict_mode_a_signed_unknown_id_gets_a_new_different_id(app, store):
    """Strict mode (B6 as seen from the client): a valid signature is not enough."""
    planted = new_session_id()
    response = call(app, f"{NAME}={signed(planted)}")
    assert response.session_id not in (None, planted)
    assert store.get(planted) is None
