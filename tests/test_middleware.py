"""The middleware over real WSGI apps: cookies as a browser reads them, laziness, write-back."""

from __future__ import annotations

import datetime
import gc
import sys
import warnings
from urllib.parse import quote

import pytest
from conftest import SECRET, counter_app
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wsgi_session import (
    create_memory_store,
    destroy_session,
    get_session,
    sign_cookie,
    unsign_cookie,
    update_session,
)
from wsgi_session.record import encode_record
from wsgi_session.signing import new_session_id


def parse_set_cookie(header: str) -> tuple[str, str, dict[str, str]]:
    """Read a Set-Cookie value the way RFC 6265 section 5.2 tells a browser to."""
    pair, *attributes = header.split(";")
    name, _, value = pair.partition("=")
    attrs = {}
    for attribute in attributes:
        key, _, val = attribute.partition("=")
        attrs[key.strip().lower()] = val.strip()
    return name.strip(), value.strip(), attrs


def set_cookies(response) -> list[tuple[str, str, dict[str, str]]]:
    return [parse_set_cookie(v) for k, v in response.headerlist if k.lower() == "set-cookie"]


def the_cookie(response, name="session") -> tuple[str, dict[str, str]]:
    (cookie,) = [c for c in set_cookies(response) if c[0] == name]
    return cookie[1], cookie[2]


def vary(response) -> list[str]:
    return [v for k, v in response.headerlist if k.lower() == "vary"]


def stored_id(response, name="session") -> str:
    value, _ = the_cookie(response, name)
    session_id = unsign_cookie(value, SECRET)
    assert session_id is not None
    return session_id


def put_session(store, data, session_id=None, created=None) -> str:
    """Write a session record straight into the store; return its ID."""
    import json
    import time

    session_id = session_id or new_session_id()
    created = time.time() if created is None else created
    store.store.set(session_id, encode_record(created, json.dumps(data)), 3600)
    return session_id


# -- cookie attributes ------------------------------------------------------------


def test_session_cookie_has_the_safe_attributes(make_client):
    response = make_client().get("/")
    value, attrs = the_cookie(response)
    assert unsign_cookie(value, SECRET) is not None
    assert "httponly" in attrs
    assert "secure" in attrs
    assert attrs["samesite"] == "Lax"
    assert attrs["path"] == "/"
    assert "domain" not in attrs
    assert attrs["max-age"] == "86400"
    assert "partitioned" not in attrs


def test_max_age_option_sets_the_cookie_max_age(make_client):
    _, attrs = the_cookie(make_client(max_age=120).get("/"))
    assert attrs["max-age"] == "120"


def test_every_cookie_option_reaches_set_cookie(make_client):
    client = make_client(
        name="sid",
        cookie={
            "samesite": "none",
            "httponly": False,
            "path": "/app",
            "domain": "example.com",
            "partitioned": True,
        },
    )
    _, attrs = the_cookie(client.get("/"), "sid")
    assert attrs["samesite"] == "None"
    assert "httponly" not in attrs
    assert attrs["path"] == "/app"
    assert attrs["domain"] == "example.com"
    assert "partitioned" in attrs
    assert "secure" in attrs


def test_insecure_cookie_has_no_secure_attribute(make_client):
    _, attrs = the_cookie(make_client(cookie={"secure": False}).get("/"))
    assert "secure" not in attrs


def destroy_app(environ, start_response):
    if environ["PATH_INFO"].endswith("/logout"):
        destroy_session(environ)
    else:
        update_session(environ, lambda s: {"user": "alice"})
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


@pytest.mark.parametrize("cookie", [{}, {"path": "/app", "domain": "example.com", "samesite": "strict"}])
def test_destroy_expires_the_cookie_with_the_same_name_path_and_domain(make_client, store, cookie):
    client = make_client(destroy_app, name="__Secure-sid", cookie=cookie)
    _, set_attrs = the_cookie(client.get("/app/"), "__Secure-sid")
    assert len(store.store) == 1
    value, clear_attrs = the_cookie(client.get("/app/logout"), "__Secure-sid")
    assert value == ""
    assert clear_attrs["max-age"] == "0"
    assert clear_attrs.get("path") == set_attrs.get("path")
    assert clear_attrs.get("domain") == set_attrs.get("domain")
    assert len(store.store) == 0


def test_vary_cookie_when_the_session_is_read(make_client):
    assert vary(make_client().get("/read")) == ["Cookie"]


def test_vary_cookie_when_the_session_is_updated(make_client):
    assert vary(make_client().get("/")) == ["Cookie"]


def test_no_vary_when_the_session_is_untouched(make_client):
    assert vary(make_client().get("/plain")) == []


def test_vary_cookie_is_not_repeated_if_the_app_sent_it(make_client):
    def app(environ, start_response):
        get_session(environ)
        start_response("200 OK", [("Vary", "Accept-Encoding, Cookie")])
        return [b""]

    assert vary(make_client(app).get("/")) == ["Accept-Encoding, Cookie"]


# -- lazy behaviour ---------------------------------------------------------------


def test_untouched_request_costs_nothing(make_client, store):
    client = make_client()
    client.get("/")  # a session cookie now exists
    store.calls.clear()
    response = client.get("/plain")
    assert store.calls == []
    assert set_cookies(response) == []
    assert vary(response) == []


def test_untouched_request_never_verifies_the_cookie(make_client, store, monkeypatch):
    import wsgi_session.session_cookie

    def fail(*args):
        raise AssertionError("the cookie was verified")

    monkeypatch.setattr(wsgi_session.session_cookie, "verify", fail)
    client = make_client()
    client.set_cookie("session", sign_cookie(new_session_id(), SECRET))
    assert client.get("/plain").text == "plain"


def test_untouched_request_works_while_the_store_is_down(make_client):
    class DownStore:
        def __getattr__(self, name):
            def fail(*args):
                raise ConnectionError("store down")

            return fail

    assert make_client(store=DownStore()).get("/plain").status_int == 200


def test_reading_an_existing_session_is_one_get(make_client, store):
    client = make_client()
    client.get("/")
    store.calls.clear()
    response = client.get("/read")
    assert store.names() == ["get"]
    assert response.text == "{'visits': 1}"
    assert set_cookies(response) == []


def test_updating_an_existing_session_is_one_get_and_one_compare_and_set(make_client, store):
    client = make_client()
    first = stored_id(client.get("/"))
    store.calls.clear()
    response = client.get("/")
    assert store.names() == ["get", "compare_and_set"]
    assert response.text == "2"
    # The cookie is re-sent unchanged: same ID, fresh Max-Age.
    assert stored_id(response) == first


def test_new_session_never_updated_costs_nothing(make_client, store):
    response = make_client().get("/read")
    assert response.text == "{}"
    assert store.calls == []
    assert set_cookies(response) == []
    assert vary(response) == ["Cookie"]


def test_new_session_updated_is_one_set(make_client, store):
    response = make_client().get("/")
    assert store.names() == ["set"]
    assert len(store.store) == 1
    assert store.calls[0][1][0] == stored_id(response)
    assert store.calls[0][1][2] == 86400


def test_a_request_is_freed_without_the_garbage_collector():
    """Once the server lets go of a request, its environ and session are freed at once.

    A reference cycle between them would leave every request to the cyclic garbage
    collector: memory held until it runs, and its pauses on a busy worker.
    """
    from wsgi_session import SessionMiddleware

    middleware = SessionMiddleware(counter_app, store=create_memory_store(), secret=SECRET)

    def request(path: str, cookie: str = "") -> str:
        environ = {"PATH_INFO": path, "HTTP_COOKIE": cookie, "wsgi.url_scheme": "https"}
        headers: list[tuple[str, str]] = []
        b"".join(middleware(environ, lambda status, sent, exc_info=None: headers.extend(sent)))
        return dict(headers).get("Set-Cookie", "").split(";")[0]

    gc.collect()
    gc.disable()
    try:
        cookie = request("/")
        for path in ("/", "/read", "/plain"):
            request(path, cookie)
        request("/read")
        assert gc.collect() == 0
    finally:
        gc.enable()


def test_save_uninitialized_stores_a_new_session_never_updated(make_client, store):
    client = make_client(save_uninitialized=True, generate=lambda: {"visits": 0})
    response = client.get("/read")
    assert store.names() == ["set"]
    session_id = stored_id(response)
    assert client.get("/read").text == "{'visits': 0}"
    assert stored_id(client.get("/")) == session_id


def test_unknown_signed_id_is_never_adopted(make_client, store):
    client = make_client()
    planted = new_session_id()
    client.set_cookie("session", sign_cookie(planted, SECRET))
    response = client.get("/")
    assert store.names() == ["get", "set"]
    assert stored_id(response) != planted
    assert store.store.get(planted) is None


@pytest.mark.parametrize(
    "value",
    ["", "s:", "s:.", "garbage", "s:" + "a" * 43 + ".bad"],
)
def test_invalid_cookie_gives_a_fresh_session_without_lookup(make_client, store, value):
    client = make_client()
    client.set_cookie("session", value)
    assert client.get("/read").text == "{}"
    assert store.calls == []


# -- reading the cookie -------------------------------------------------------------


def signed_with(char: str) -> tuple[str, str]:
    """An ID whose signature under SECRET contains ``char``, and that signed cookie."""
    while True:
        session_id = new_session_id()
        signed = sign_cookie(session_id, SECRET)
        if char in signed.rpartition(".")[2]:
            return session_id, signed


@pytest.mark.parametrize("char", ["+", "/"])
def test_express_url_encoded_cookie_is_accepted(make_client, store, char):
    session_id, signed = signed_with(char)
    put_session(store, {"from": "express"}, session_id)
    encoded = quote(signed, safe="")  # encodeURIComponent
    assert encoded.startswith("s%3A")
    assert ("%2B" if char == "+" else "%2F") in encoded
    response = make_client().get("/read", headers={"Cookie": f"session={encoded}"})
    assert response.text == "{'from': 'express'}"
    assert store.names() == ["get"]


def test_url_encoded_cookie_is_decoded_only_once(make_client, store):
    session_id, signed = signed_with("+")
    put_session(store, {"from": "express"}, session_id)
    twice = quote(quote(signed, safe=""), safe="")
    response = make_client().get("/read", headers={"Cookie": f"session={twice}"})
    assert response.text == "{}"
    assert store.calls == []


@pytest.mark.parametrize("value", ["s%3A%ZZ", "%00", "s%3A" + "%00" * 40, "%" * 91, "%E9" * 30])
def test_bad_percent_escapes_give_a_fresh_session(make_client, value):
    response = make_client().get("/read", headers={"Cookie": f"session={value}"})
    assert response.text == "{}"


def test_old_secret_is_accepted_and_the_cookie_reissued_under_the_first(make_client, store):
    session_id = put_session(store, {"visits": 5})
    client = make_client(secret=["new-secret-" + "n" * 32, SECRET])
    client.set_cookie("session", sign_cookie(session_id, SECRET))
    response = client.get("/read")
    assert response.text == "{'visits': 5}"
    value, _ = the_cookie(response)
    assert value == sign_cookie(session_id, "new-secret-" + "n" * 32)


def test_cookie_signed_with_the_first_secret_is_not_reissued_on_read(make_client, store):
    session_id = put_session(store, {"visits": 5})
    client = make_client(secret=[SECRET, "old-secret-" + "o" * 32])
    client.set_cookie("session", sign_cookie(session_id, SECRET))
    assert set_cookies(client.get("/read")) == []


def test_removed_secret_gives_a_fresh_session_without_lookup(make_client, store):
    session_id = put_session(store, {"visits": 5})
    client = make_client(secret="new-secret-" + "n" * 32)
    client.set_cookie("session", sign_cookie(session_id, SECRET))
    assert client.get("/read").text == "{}"
    assert store.calls == []


def test_first_valid_of_duplicate_cookies_wins(make_client, store):
    first = put_session(store, {"n": 1})
    second = put_session(store, {"n": 2})
    forged = "s:" + new_session_id() + "." + "A" * 43
    header = "; ".join(
        f"session={v}" for v in (forged, sign_cookie(first, SECRET), sign_cookie(second, SECRET))
    )
    assert make_client().get("/read", headers={"Cookie": header}).text == "{'n': 1}"


@pytest.mark.parametrize(
    "header",
    [
        "a=\xff\xfe; session=x",  # latin-1 bytes that are not UTF-8
        "session=\xe9\xe9",
        "x=\x80",
        "\xc3(=1",
    ],
)
def test_non_utf8_cookie_bytes_do_not_fail_the_request(make_client, header):
    assert make_client().get("/read", headers={"Cookie": header}).text == "{}"


def test_valid_cookie_is_found_next_to_non_utf8_neighbours(make_client, store):
    session_id = put_session(store, {"n": 1})
    header = f"a=\xff; session={sign_cookie(session_id, SECRET)}; b=\x80"
    assert make_client().get("/read", headers={"Cookie": header}).text == "{'n': 1}"


def utf8_as_wsgi(text: str) -> str:
    """``text`` as a WSGI server hands it over: its UTF-8 bytes read as latin-1."""
    return text.encode("utf-8").decode("latin-1")


@pytest.mark.parametrize(
    "lookalike",
    [
        "\x0bsession",
        "\x0csession",
        "\x1csession",
        "\x1fsession",
        "session\x1e",
        "\u00a0session",
        "\u2000session",
        "\u0085session",
        "session\u00a0",
        "\u3000session",
        "\ufeffsession",
    ],
)
def test_names_padded_with_unicode_spaces_are_not_the_session_cookie(make_client, store, lookalike):
    session_id = put_session(store, {"planted": True})
    header = utf8_as_wsgi(f"{lookalike}={sign_cookie(session_id, SECRET)}")
    assert make_client().get("/read", headers={"Cookie": header}).text == "{}"
    assert store.calls == []


@pytest.mark.parametrize("lookalike", ['"session"', "SESSION", "Session", "=session", "session2"])
def test_other_spellings_of_the_name_are_not_the_session_cookie(make_client, store, lookalike):
    session_id = put_session(store, {"planted": True})
    header = f"{lookalike}={sign_cookie(session_id, SECRET)}"
    assert make_client().get("/read", headers={"Cookie": header}).text == "{}"


def test_the_real_cookie_is_found_after_a_lookalike(make_client, store):
    planted = put_session(store, {"who": "attacker"})
    mine = put_session(store, {"who": "me"})
    header = utf8_as_wsgi(
        f"\u00a0session={sign_cookie(planted, SECRET)}; session={sign_cookie(mine, SECRET)}"
    )
    assert make_client().get("/read", headers={"Cookie": header}).text == "{'who': 'me'}"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(header=st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0xFF)))
def test_no_cookie_header_fails_a_request(make_client, header):
    client = make_client()
    for path in ("/read", "/"):
        assert client.get(path, headers={"Cookie": header}).status_int == 200


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    pairs=st.lists(
        st.tuples(
            st.sampled_from(["session", "Session", " session", "a", "", '"session"', "session "]),
            st.one_of(
                st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0xFF)),
                st.just("VALID"),
            ),
        ),
        max_size=6,
    ),
    separator=st.sampled_from(["; ", ";", ", ", "\t;"]),
)
def test_no_mix_of_cookie_pairs_fails_a_request(make_client, store, pairs, separator):
    session_id = put_session(store, {"n": 1})
    signed = sign_cookie(session_id, SECRET)
    header = separator.join(f"{k}={signed if v == 'VALID' else v}" for k, v in pairs)
    response = make_client().get("/read", headers={"Cookie": header})
    assert response.status_int == 200
    assert response.text in ("{}", "{'n': 1}")


def test_environ_values_outside_latin1_do_not_fail(store):
    from wsgi_session import SessionMiddleware

    middleware = SessionMiddleware(counter_app, store=store, secret=SECRET)
    statuses = []

    def start_response(status, headers, exc_info=None):
        statuses.append(status)

    for header in ("session=\u0100", "session=\ud800", "a=\U0001f600"):
        environ = {"PATH_INFO": "/read", "HTTP_COOKIE": header, "wsgi.url_scheme": "https"}
        assert b"".join(middleware(environ, start_response)) == b"{}"
    assert statuses == ["200 OK"] * 3


# -- rolling, generate, max_size, absolute_timeout --------------------------------


def test_rolling_renews_the_ttl_and_resends_the_cookie(make_client, store, clock):
    client = make_client(rolling=True, max_age=100)
    session_id = stored_id(client.get("/"))
    clock.advance(90)
    store.calls.clear()
    response = client.get("/read")
    assert store.names() == ["get", "touch"]
    assert stored_id(response) == session_id
    assert the_cookie(response)[1]["max-age"] == "100"
    clock.advance(90)  # 180 s after the write, 90 s after the renewal
    assert client.get("/read").text == "{'visits': 1}"


def test_without_rolling_a_read_does_not_renew(make_client, store, clock):
    client = make_client(max_age=100)
    client.get("/")
    clock.advance(90)
    response = client.get("/read")
    assert "touch" not in store.names()
    assert set_cookies(response) == []
    clock.advance(20)
    assert client.get("/read").text == "{}"


def test_rolling_does_not_store_a_new_session(make_client, store):
    response = make_client(rolling=True).get("/read")
    assert store.calls == []
    assert set_cookies(response) == []


def test_generate_gives_the_initial_data(make_client, store):
    calls = []

    def generate():
        calls.append(1)
        return {"visits": 10, "theme": "dark"}

    client = make_client(generate=generate)
    assert client.get("/read").text == "{'visits': 10, 'theme': 'dark'}"
    assert store.calls == []
    assert client.get("/").text == "11"
    assert client.get("/").text == "12"
    assert len(calls) == 2  # only new sessions call it


def test_generate_result_is_not_shared_between_sessions(make_client):
    initial = {"visits": 0}
    client = make_client(generate=lambda: initial)
    client.get("/")
    assert initial == {"visits": 0}


@pytest.mark.parametrize(
    ("generated", "named"),
    [({"when": datetime.datetime(2024, 1, 1)}, "when"), ({1: "x"}, "1"), (["visits"], "mapping")],
)
def test_generate_result_json_cannot_encode_fails_at_first_use(make_client, store, generated, named):
    seen = []

    def app(environ, start_response):
        try:
            get_session(environ)
        except TypeError as exc:
            seen.append(str(exc))
        start_response("200 OK", [])
        return [b""]

    make_client(app, generate=lambda: generated, save_uninitialized=True).get("/")
    assert len(seen) == 1
    assert named in seen[0]
    assert len(store.store) == 0


def size_app(environ, start_response):
    try:
        update_session(environ, lambda s: {"blob": "x" * int(environ["QUERY_STRING"])})
        body = b"saved"
    except ValueError as exc:
        body = str(exc).encode()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]


def test_max_size_refuses_a_larger_update(make_client, store):
    client = make_client(size_app, max_size=100)
    assert client.get("/?50").text == "saved"
    response = client.get("/?200")
    assert "max_size" in response.text
    assert "touch" not in store.names()
    session_id = stored_id(client.get("/?60"))
    assert store.store.get(session_id).payload.count("x") == 60


def test_absolute_timeout_ends_an_active_session(make_client, store, clock):
    client = make_client(absolute_timeout=300, rolling=True, max_age=100)
    first = stored_id(client.get("/"))
    for _ in range(5):  # active all along: the idle timeout never strikes
        clock.advance(50)
        assert stored_id(client.get("/")) == first
    clock.advance(50)  # 300 s since creation
    response = client.get("/")
    assert response.text == "1"
    assert stored_id(response) != first
    assert store.store.get(first) is None


def test_regenerate_does_not_stretch_the_absolute_timeout(store, clock):
    import webtest

    from wsgi_session import SessionMiddleware, regenerate_session

    def app(environ, start_response):
        if environ["PATH_INFO"] == "/login":
            regenerate_session(environ)
        body = str(update_session(environ, lambda s: {"n": s.get("n", 0) + 1})["n"])
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body.encode()]

    client = webtest.TestApp(
        SessionMiddleware(app, store=store, secret=SECRET, absolute_timeout=300),
        extra_environ={"wsgi.url_scheme": "https"},
    )
    client.get("/")
    clock.advance(250)
    assert client.get("/login").text == "2"
    clock.advance(50)
    assert client.get("/").text == "1"


# -- write-back edge cases ----------------------------------------------------------


def test_exception_before_start_response_saves_nothing(make_client, store):
    def app(environ, start_response):
        update_session(environ, lambda s: {"n": 1})
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        make_client(app).get("/")
    assert store.calls == []
    assert len(store.store) == 0


def test_start_response_twice_with_exc_info_sends_one_cookie(make_client, store):
    def app(environ, start_response):
        update_session(environ, lambda s: {"n": 1})
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            raise RuntimeError("failed after start_response")
        except RuntimeError:
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")], sys.exc_info())
        return [b"error page"]

    response = make_client(app).get("/", status=500)
    assert response.text == "error page"
    assert [c[0] for c in set_cookies(response)] == ["session"]
    assert vary(response) == ["Cookie"]
    assert store.names() == ["set"]  # saved once
    assert store.store.get(stored_id(response)) is not None


def test_write_callable_works(make_client, store):
    def app(environ, start_response):
        update_session(environ, lambda s: {"n": 1})
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written ")
        return [b"and returned"]

    response = make_client(app).get("/")
    assert response.text == "written and returned"
    assert store.names() == ["set"]
    assert the_cookie(response)[0]


def test_generator_body_touching_the_session_before_start_response(make_client, store):
    def app(environ, start_response):
        update_session(environ, lambda s: {"n": 1})
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"ok"

    response = make_client(app).get("/")
    assert response.text == "ok"
    assert store.names() == ["set"]


def test_store_failure_is_loud(make_client):
    from wsgi_session import SessionStoreError

    class DownStore:
        def __getattr__(self, name):
            def fail(*args):
                raise ConnectionError("store down")

            return fail

    client = make_client(store=DownStore())
    client.set_cookie("session", sign_cookie(new_session_id(), SECRET))
    with pytest.raises(SessionStoreError) as caught:
        client.get("/read")
    assert isinstance(caught.value.__cause__, ConnectionError)


def test_store_failure_at_write_back_is_raised_before_headers(make_client, store):
    from wsgi_session import SessionStoreError

    class FailingWrites:
        def __init__(self):
            self.store = create_memory_store()

        def __getattr__(self, name):
            if name in ("set", "compare_and_set"):

                def fail(*args):
                    raise OSError("disk full")

                return fail
            return getattr(self.store, name)

    with pytest.raises(SessionStoreError):
        make_client(store=FailingWrites()).get("/")


def test_app_can_answer_a_write_back_failure_without_a_dangling_cookie(make_client):
    from wsgi_session import SessionStoreError

    class FailingWrites:
        def __init__(self):
            self.store = create_memory_store()

        def __getattr__(self, name):
            if name == "set":

                def fail(*args):
                    raise OSError("disk full")

                return fail
            return getattr(self.store, name)

    def app(environ, start_response):
        update_session(environ, lambda s: {"n": 1})
        try:
            start_response("200 OK", [("Content-Type", "text/plain")])
        except SessionStoreError:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")], sys.exc_info())
            return [b"try again"]
        return [b"saved"]

    response = make_client(app, store=FailingWrites()).get("/", status=503)
    assert set_cookies(response) == []  # no cookie for a session that was not saved
    assert vary(response) == ["Cookie"]


def test_secure_cookie_over_plain_http_warns_once(make_client):
    client = make_client()
    plain = {"wsgi.url_scheme": "http", "HTTP_HOST": "example.com"}
    with pytest.warns(UserWarning, match="HTTPS"):
        client.get("/", extra_environ=plain)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        client.get("/", extra_environ=plain)


@pytest.mark.parametrize("host", ["localhost", "localhost:8000", "127.0.0.1:8000", "[::1]:8000", "[::1]"])
def test_secure_cookie_over_plain_http_to_this_machine_does_not_warn(make_client, host):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_client().get("/", extra_environ={"wsgi.url_scheme": "http", "HTTP_HOST": host})


def test_insecure_cookie_over_plain_http_does_not_warn(make_client):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_client(cookie={"secure": False}).get(
            "/", extra_environ={"wsgi.url_scheme": "http", "HTTP_HOST": "example.com"}
        )
