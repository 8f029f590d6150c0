"""Flask-Login's remember-me on flask.session: a logout logs out, in the test client and under gunicorn."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import flask
import pytest
import requests
from conftest import SECRET
from flask_login_app import make_app
from gunicorn_server import serve

from wsgi_session import unsign_cookie
from wsgi_session.record import decode_record

REMEMBER = "remember_token"  # Flask-Login's default REMEMBER_COOKIE_NAME


@pytest.fixture
def app(store: Any) -> flask.Flask:
    return make_app(store, SECRET)


@pytest.fixture
def client(app: flask.Flask) -> Any:
    return app.test_client()


def cookies_set(response: Any, name: str) -> list[str]:
    return [c for c in response.headers.getlist("Set-Cookie") if c.startswith(f"{name}=")]


def remembered_login(client: Any, user: str = "ada") -> None:
    client.post("/login", data={"user": user, "remember": "on"})
    assert client.get_cookie(REMEMBER) is not None and client.get_cookie("session") is not None


def test_remember_me_logs_in_again_once_the_session_is_gone(client):
    remembered_login(client)
    client.delete_cookie("session")
    assert client.get("/whoami").text == "ada"
    assert client.get("/show").json["_user_id"] == "ada"  # Flask-Login's own keys, in our session


@pytest.mark.parametrize("order", ["natural", "destroy-first"])
def test_logout_with_remember_me_logs_out(client, store, order):
    remembered_login(client)
    response = client.post(f"/logout/{order}")
    (expired,) = cookies_set(response, REMEMBER)
    assert expired.startswith(f"{REMEMBER}=;")
    assert client.get_cookie(REMEMBER) is None and client.get_cookie("session") is None
    assert client.get("/whoami").text == "anonymous"
    assert client.get("/members").status_code == 401
    assert len(store.store) == 0  # the session is gone, and no empty one was stored in its place


@pytest.mark.parametrize("order", ["natural", "destroy-first"])
def test_logout_with_remember_me_logs_out_in_a_view_without_login_required(client, order):
    remembered_login(client)
    client.post(f"/logout-unprotected/{order}")
    assert client.get_cookie(REMEMBER) is None
    assert client.get("/whoami").text == "anonymous"
    assert client.get("/members").status_code == 401


def test_a_logout_without_remember_me_logs_out_too(client):
    client.post("/login", data={"user": "ada"})
    assert client.get_cookie(REMEMBER) is None
    assert client.get("/members").text == "members only, ada"
    client.post("/logout/natural")
    assert client.get("/members").status_code == 401


def test_remember_is_an_instruction_of_the_request_never_stored(client, store):
    remembered_login(client)
    session_id = unsign_cookie(client.get_cookie("session").value, SECRET)
    stored = store.get(session_id)
    record = decode_record(stored.payload)
    assert record is not None
    assert record[1]["_user_id"] == "ada" and "_remember" not in record[1]


def test_a_request_that_never_touches_the_session_costs_nothing_with_flask_login(client, store):
    # Flask-Login's after_request asks for "_remember" on every request.
    remembered_login(client)
    store.calls.clear()
    response = client.get("/plain")
    assert store.calls == []
    assert "Set-Cookie" not in response.headers and "Vary" not in response.headers


def test_refreshing_the_remember_cookie_on_each_request_writes_no_session(store):
    app = make_app(store, SECRET)
    app.config["REMEMBER_COOKIE_REFRESH_EACH_REQUEST"] = True
    client = app.test_client()
    remembered_login(client)
    store.calls.clear()
    response = client.get("/whoami")
    assert response.text == "ada" and len(cookies_set(response, REMEMBER)) == 1
    assert store.names() == ["get"]


def test_strong_session_protection_clears_the_remember_cookie(store):
    app = make_app(store, SECRET)
    app.config["SESSION_PROTECTION"] = "strong"
    client = app.test_client()
    client.post("/login", data={"user": "ada", "remember": "on"}, headers={"User-Agent": "mine"})
    response = client.get("/whoami", headers={"User-Agent": "someone else's"})
    assert response.text == "anonymous"
    assert [c.split(";")[0] for c in cookies_set(response, REMEMBER)] == [f"{REMEMBER}="]


@pytest.mark.parametrize("order", ["natural", "destroy-first"])
def test_logout_with_remember_me_logs_out_under_gunicorn(tmp_path: Path, order: str) -> None:
    tests = Path(__file__).resolve().parent
    env = {
        "PYTHONPATH": f"{tests}:{tests.parent}",
        "WSGI_SESSION_TEST_DB": str(tmp_path / "sessions.sqlite3"),
        "WSGI_SESSION_TEST_SECRET": SECRET,
    }
    with serve("flask_login_app:from_environment()", tmp_path, ["-w", "2"], env) as port:
        base = f"http://127.0.0.1:{port}"
        browser = requests.Session()
        browser.post(f"{base}/login", data={"user": "grace", "remember": "on"}, timeout=30)
        assert set(browser.cookies.keys()) == {"session", REMEMBER}
        (cookie,) = [c for c in browser.cookies if c.name == "session"]
        browser.cookies.clear(cookie.domain, cookie.path, cookie.name)
        assert browser.get(f"{base}/whoami", timeout=30).text == "grace"  # remembered

        assert browser.post(f"{base}/logout/{order}", timeout=30).text == "out"
        assert set(browser.cookies.keys()) == set()
        for _ in range(4):  # whichever worker answers
            assert browser.get(f"{base}/whoami", timeout=30).text == "anonymous"
