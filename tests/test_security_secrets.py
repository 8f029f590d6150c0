"""Rows D of the catalogue in docs/security.rst (secret rotation and the signature), and what leaks.

Secrets never appear in a repr, a log record, a warning or an error message; the
session ID never appears whole in a log record, only its short hash.
"""

from __future__ import annotations

import hmac
import logging
import warnings
from typing import Any, Callable

import pytest
from conftest import SECRET, SpyStore, counter_app
from security_support import NAME, Response, call, fresh_id, signed

from wsgi_session import (
    SessionMiddleware,
    SessionStoreError,
    create_memory_store,
    get_session,
    sign_cookie,
    unsign_cookie,
)
from wsgi_session.events import short_hash
from wsgi_session.middleware import WeakSecretWarning
from wsgi_session.record import encode_record
from wsgi_session.session_cookie import InsecureCookieWarning

OLD = "an-old-secret-retired-last-month-0123456789"


def stored(store: Any, visits: int = 1) -> str:
    session_id = fresh_id()
    store.set(session_id, encode_record(1.0, f'{{"visits":{visits}}}'), 3600)
    return session_id


def test_d1_a_cookie_signed_with_an_older_secret_is_accepted_and_re_signed(store):
    """D1: verified with ``secrets[1]``, re-issued under ``secrets[0]`` on that response."""
    session_id = stored(store.store)
    app = SessionMiddleware(counter_app, store=store, secret=[SECRET, OLD])
    response = call(app, f"{NAME}={signed(session_id, OLD)}", path="/read")
    assert response.body == "{'visits': 1}"
    assert response.cookie == f"{NAME}={signed(session_id, SECRET)}"
    # Signed with the first secret: accepted as it is, not re-sent.
    assert call(app, response.cookie, path="/read").set_cookies == []


def test_d1_new_cookies_are_always_signed_with_the_first_secret(store):
    app = SessionMiddleware(counter_app, store=store, secret=[SECRET, OLD])
    response = call(app)
    assert response.cookie == f"{NAME}={signed(response.session_id, SECRET)}"


def test_d2_a_cookie_signed_with_a_removed_secret_is_fresh_without_lookup(store):
    """D2: once ``OLD`` is dropped from the list, its cookies are nobody's."""
    session_id = stored(store.store)
    app = SessionMiddleware(counter_app, store=store, secret=[SECRET])
    response = call(app, f"{NAME}={signed(session_id, OLD)}")
    assert response.body == "1"
    assert response.session_id != session_id
    assert "get" not in store.names()


@pytest.mark.parametrize("secret", [[], (), "", b"", None, [""], [SECRET, ""], [SECRET, None], [123], 42])
def test_d3_empty_or_non_string_secrets_fail_at_startup(store, secret):
    """D3: ``[]``, ``""``, ``None`` and friends: a ValueError naming the option."""
    with pytest.raises(ValueError, match="secret") as error:
        SessionMiddleware(counter_app, store=store, secret=secret)
    assert SECRET not in str(error.value)


@pytest.mark.parametrize("secrets", [[], "", [""], None])
def test_d3_unsign_cookie_refuses_empty_secrets(secrets):
    with pytest.raises(ValueError, match="secrets"):
        unsign_cookie(sign_cookie("x", SECRET), secrets)


def test_d3_a_short_secret_is_accepted_with_a_warning_that_does_not_quote_it(store):
    with pytest.warns(WeakSecretWarning) as caught:
        SessionMiddleware(counter_app, store=store, secret="short-secret-xyz")
    assert issubclass(WeakSecretWarning, UserWarning)
    assert all("short-secret-xyz" not in str(w.message) for w in caught)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SessionMiddleware(counter_app, store=store, secret="x" * 32)


def test_d4_str_and_bytes_secrets_give_the_same_utf8_mac(store):
    """D4: a secret given as ``str`` or as its UTF-8 ``bytes`` signs the same."""
    for secret in ("tobiiscool", "sécret-ünïcode-🔑"):
        assert sign_cookie("abc", secret) == sign_cookie("abc", secret.encode("utf-8"))
    session_id = stored(store.store)
    app = SessionMiddleware(counter_app, store=store, secret=SECRET.encode())
    assert call(app, f"{NAME}={signed(session_id)}", path="/read").body == "{'visits': 1}"


def test_d5_known_vectors_match_node_cookie_signature():
    """D5: byte-identical to ``cookie-signature.sign`` (express prepends ``s:``)."""
    assert sign_cookie("hello", "tobiiscool") == "s:hello.DGDUkGlIkCzPz+C0B064FNgHdEjox7ch8tOBGslZ5QI"
    # Made with Node's crypto.createHmac, as cookie-signature does, under a non-ASCII secret.
    assert (
        sign_cookie("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "sécret-ünïcode-🔑")
        == "s:abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG.LcA5cSgAj3QA1F4kLxUrOdQzd78Js8cf1hVx1ysRvXw"
    )
    assert (
        unsign_cookie("s:hello.DGDUkGlIkCzPz+C0B064FNgHdEjox7ch8tOBGslZ5QI", ["x", "tobiiscool"]) == "hello"
    )


def test_d6_each_secret_is_compared_whole_with_compare_digest(monkeypatch):
    """D6: one constant-time comparison of the whole signature text per secret."""
    compared: list[tuple[str, str]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    forged = signed(fresh_id(), "not-a-secret-of-ours")
    assert unsign_cookie(forged, [SECRET, OLD, "third"]) is None
    assert len(compared) == 3
    assert all(given == forged.rsplit(".", 1)[1] and len(expected) == 43 for given, expected in compared)
    compared.clear()
    assert unsign_cookie(signed("abc", OLD), [SECRET, OLD, "third"]) == "abc"
    assert len(compared) == 2  # stops at the secret that verified, never inside a comparison


# -- what never leaks ------------------------------------------------------------


class FailingStore(SpyStore):
    """A store that is down."""

    def __getattr__(self, name: str) -> Callable[..., Any]:
        def fail(*args: Any) -> Any:
            raise ConnectionError("store unreachable")

        return fail


def _scenarios(store: Any) -> list[tuple[SessionMiddleware, str | None, str]]:
    """Requests of every kind: new, found, rotated, forged, corrupt record, store down."""
    app = SessionMiddleware(counter_app, store=store, secret=[SECRET, OLD])
    live = stored(store)
    corrupt = fresh_id()
    store.set(corrupt, "{not json", 3600)
    down = SessionMiddleware(counter_app, store=FailingStore(None), secret=SECRET)
    return [
        (app, None, "/"),
        (app, f"{NAME}={signed(live)}", "/"),
        (app, f"{NAME}={signed(live, OLD)}", "/read"),
        (app, f"{NAME}={signed(fresh_id(), 'forged')}", "/"),
        (app, f"{NAME}={signed(corrupt)}", "/"),
        (down, f"{NAME}={signed(live)}", "/"),
    ]


def test_secrets_and_whole_ids_never_reach_logs_or_error_messages(caplog):
    store = create_memory_store()
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    ids: list[str] = []
    for app, cookie, path in _scenarios(store):
        try:
            response = call(app, cookie, path)
        except SessionStoreError as exc:
            texts += [str(exc), repr(exc)]
        else:
            ids.append(response.session_id or "")
        if cookie:
            ids.append(cookie.split("s:", 1)[1][:43])
    texts += [record.getMessage() for record in caplog.records]
    ids = [i for i in ids if i]
    assert any("stored data is not a session" in t for t in texts)  # the corrupt record was logged
    for text in texts:
        assert SECRET not in text
        assert OLD not in text
        for session_id in ids:
            assert session_id not in text


def test_a_corrupt_record_is_logged_under_a_short_hash_of_its_id(caplog):
    store = create_memory_store()
    session_id = fresh_id()
    store.set(session_id, "[]", 3600)
    app = SessionMiddleware(counter_app, store=store, secret=SECRET)
    with caplog.at_level(logging.WARNING, logger="wsgi_session"):
        assert call(app, f"{NAME}={signed(session_id)}").body == "1"
    (record,) = caplog.records
    assert short_hash(session_id) in record.getMessage()
    assert session_id not in record.getMessage()
    assert len(short_hash(session_id)) == 12


def test_reprs_show_no_secret_and_no_id(store):
    seen: dict[str, str] = {}

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        get_session(environ)
        seen["session"] = repr(environ["wsgi_session"])
        seen["environ"] = repr({k: v for k, v in environ.items() if k != "HTTP_COOKIE"})
        start_response("200 OK", [])
        return [b""]

    session_id = stored(store.store)
    middleware = SessionMiddleware(app, store=store, secret=[SECRET, OLD])
    call(middleware, f"{NAME}={signed(session_id)}")
    for text in (repr(middleware), str(middleware), repr(middleware.settings.cookie.options), *seen.values()):
        assert SECRET not in text
        assert OLD not in text
        assert session_id not in text


def test_configuration_errors_do_not_quote_the_secret(store):
    for options in ({"max_age": 0}, {"name": "bad name"}, {"cookie": {"samesite": "x"}}, {"store": object()}):
        kwargs: dict[str, Any] = {"store": store, "secret": SECRET, **options}
        with pytest.raises(ValueError) as error:
            SessionMiddleware(counter_app, **kwargs)
        assert SECRET not in str(error.value)


# -- transport: Secure cookies over plain HTTP ----------------------------------------


def _plain_http(app: SessionMiddleware, host: str) -> Response:
    return call(app, scheme="http", host=host)


def test_a_secure_cookie_over_plain_http_to_another_host_warns_once(store):
    app = SessionMiddleware(counter_app, store=store, secret=SECRET)
    with pytest.warns(InsecureCookieWarning, match="HTTPS"):
        _plain_http(app, "example.com")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _plain_http(app, "example.com")  # once per middleware


@pytest.mark.parametrize(
    "host", ["localhost", "localhost:8000", "127.0.0.1", "127.0.0.1:5000", "[::1]", "[::1]:8000", "LocalHost"]
)
def test_no_warning_for_localhost(store, host):
    app = SessionMiddleware(counter_app, store=store, secret=SECRET)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _plain_http(app, host)


def test_no_warning_over_https_or_without_secure(store):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        call(SessionMiddleware(counter_app, store=store, secret=SECRET), host="example.com")
        insecure = SessionMiddleware(counter_app, store=store, secret=SECRET, cookie={"secure": False})
        _plain_http(insecure, "example.com")
