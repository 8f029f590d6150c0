"""The Flask and Pyramid examples do what their pages say."""

from __future__ import annotations

import re

import webtest

from examples import flask_app, pyramid_app


def test_flask_example_counter_login_members_logout():
    client = flask_app.app.test_client()
    page = client.get("/").text
    assert "visits: 1" in page
    assert client.get("/members").status_code == 303
    assert client.post("/login", data={"user": "grace"}).status_code == 400  # no CSRF token
    anonymous = client.get_cookie("session").value
    client.post("/login", data={"user": "grace", "csrf_token": csrf_token(page)})
    logged_in = client.get_cookie("session").value
    assert logged_in != anonymous
    page = client.get("/").text
    assert "Welcome, grace." in page and "visits: 2" in page
    assert "Members only, grace." in client.get("/members").text
    client.post("/logout", data={"csrf_token": csrf_token(page)})
    assert "Logged out." in client.get("/").text
    stale = flask_app.app.test_client()
    stale.set_cookie("session", logged_in)
    assert stale.get("/members").status_code == 303


def test_flask_example_remember_me_survives_the_session_and_logout_ends_it():
    client = flask_app.app.test_client()
    token = csrf_token(client.get("/").text)
    client.post("/login", data={"user": "grace", "remember": "on", "csrf_token": token})
    client.delete_cookie("session")  # the browser was closed, or the session expired
    page = client.get("/").text
    assert "logged in as grace" in page
    client.post("/logout", data={"csrf_token": csrf_token(page)})
    assert client.get_cookie("remember_token") is None
    assert client.get("/members").status_code == 303


def test_webtest_sends_the_secure_session_cookie_only_over_https():
    # Python's cookie jars never send a Secure cookie over http://, even to localhost.
    for app in (flask_app.app, pyramid_app.make_app()):
        over_http = webtest.TestApp(app)
        assert ["visits: 1" in over_http.get("/").text for _ in range(2)] == [True, True]
        over_https = webtest.TestApp(app, extra_environ={"wsgi.url_scheme": "https"})
        assert "visits: 1" in over_https.get("/").text
        assert "visits: 2" in over_https.get("/").text


def csrf_token(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match is not None
    return match.group(1)


def test_pyramid_example_counter_login_members_logout_with_csrf():
    environ = {"wsgi.url_scheme": "https", "HTTP_HOST": "example.com", "HTTP_ORIGIN": "https://example.com"}
    client = webtest.TestApp(pyramid_app.make_app(), extra_environ=environ)
    page = client.get("/").text
    assert "visits: 1" in page
    assert client.get("/members").status_code == 303
    client.post("/login", {"user": "grace"}, status=400)  # no CSRF token
    anonymous = client.cookies["session"]
    client.post("/login", {"user": "grace", "csrf_token": csrf_token(page)}, status=303)
    logged_in = client.cookies["session"]
    assert logged_in != anonymous
    page = client.get("/").text
    assert "Welcome, grace." in page and "visits: 2" in page
    assert "Members only, grace." in client.get("/members").text
    client.post("/logout", {"csrf_token": csrf_token(page)}, status=303)
    assert "Logged out." in client.get("/").text
    stale = webtest.TestApp(client.app, extra_environ=environ)
    stale.set_cookie("session", logged_in)
    assert stale.get("/members").status_code == 303
