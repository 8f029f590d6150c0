"""The Flask and Pyramid examples do what their pages say."""

from __future__ import annotations

import re

import webtest

from examples import flask_app, pyramid_app


def test_flask_example_counter_login_members_logout():
    client = flask_app.app.test_client()
    assert "visits: 1" in client.get("/").text
    assert client.get("/members").status_code == 303
    anonymous = client.get_cookie("session").value
    client.post("/login", data={"user": "grace"})
    logged_in = client.get_cookie("session").value
    assert logged_in != anonymous
    page = client.get("/").text
    assert "Welcome, grace." in page and "visits: 2" in page
    assert "Members only, grace." in client.get("/members").text
    client.post("/logout")
    assert "Logged out." in client.get("/").text
    stale = flask_app.app.test_client()
    stale.set_cookie("session", logged_in)
    assert stale.get("/members").status_code == 303


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
