"""A page whose own requests race its login, for tests/test_browser_race.py.

``GET /race?trial=N`` starts an anonymous session and serves a page whose scripts
send ``fetch`` calls to ``/bump`` (credentials included) around a login form posted
into an iframe, as a single-page app's API calls overlap its login:

- ``race()``: 5 calls answered before the login, then 5 sent with it, while the
  server holds the login. Those 5 carry the old cookie; the server lets them touch
  the session only once the login's response has left, so each is answered after
  it: the race the regenerate window is for, on every trial.
- ``lateResponse()``: 1 call written back before the login's regenerate, whose
  response (with the cookie every update re-sends) leaves 0.3 s after the login's.

The order is kept by the server, not by timing: a request waits for the other's
signal, a file in ``RACE_DIR`` that any worker can see. Each login and call also
appends a line to ``RACE_DIR/race.log``: its trial, the session cookie it carried,
and when it was answered. ``/whoami`` only reads.

Settings from the environment: ``SESSION_SECRET``, ``RACE_DIR``, ``RACE_DB`` (the
SQLite store the workers share) and ``RACE_WINDOW`` (``regenerate_window``).
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

from werkzeug.http import parse_cookie
from werkzeug.wrappers import Request

from wsgi_session import (
    SessionMiddleware,
    create_sqlite_store,
    get_session,
    regenerate_session,
    update_session,
)

#: Seconds the server holds a login before it regenerates: checking a password takes a while.
LOGIN_HOLD = 0.2
#: Seconds a call waits, once the login's response has left, before it touches the session.
AFTER_LOGIN = 0.05
#: Seconds a late call's response leaves after the login's.
LATE = 0.3
#: Longest wait for a signal: a trial whose order broke shows in its counts, and never hangs.
SIGNAL_TIMEOUT = 10.0

PAGE = """<!doctype html>
<title>A login that races its page's requests</title>
<form method="post" action="/login?trial={trial}" target="login"><input name="user" value="ada"></form>
<iframe name="login"></iframe>
<script>
// An API call of the page that updates the session. Each has a URL of its own:
// Chromium's cache would send calls to one URL one after another.
let sent = 0;
function bump(query = "") {{
  const url = `/bump?trial={trial}&i=${{sent++}}${{query}}`;
  return fetch(url, {{credentials: "same-origin", cache: "no-store"}}).then((response) => response.status);
}}

// Post the login form into the iframe; resolve once the page it leads to has loaded.
function logIn(query = "") {{
  const frame = document.querySelector("iframe");
  const loaded = new Promise((resolve) => frame.addEventListener("load", resolve, {{once: true}}));
  document.forms[0].action += query;
  document.forms[0].submit();
  return loaded;
}}

// Five calls in flight at most with the login: Chromium opens 6 connections to a
// host, and calls the server holds for the login must leave the login one.
async function race() {{
  const before = await Promise.all([1, 2, 3, 4, 5].map(() => bump()));
  const loggedIn = logIn();
  const during = [1, 2, 3, 4, 5].map(() => bump("&after=login"));
  const statuses = [...before, ...(await Promise.all(during))];
  await loggedIn;
  return statuses;
}}

async function lateResponse() {{
  const late = bump("&late=1");
  await logIn("&after=written");
  return [await late];
}}
</script>
"""


def page(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes] | Iterator[bytes]:
    request = Request(environ)
    trial = request.args.get("trial", "0")
    if request.path == "/race":
        update_session(environ, lambda s: {"visits": s.get("visits", 0) + 1})
        return answer(start_response, "text/html", PAGE.format(trial=trial))
    if request.path == "/login" and request.method == "POST":
        if "after" in request.args:
            wait_for(trial, request.args["after"])
        time.sleep(LOGIN_HOLD)
        user = request.form.get("user", "guest")
        regenerate_session(environ)
        update_session(environ, lambda s: {"user": user})
        start_response("303 See Other", [("Location", "/whoami"), ("Content-Type", "text/plain")])
        log(environ, trial, "login")
        return sent_then_signal(trial, "login")
    if request.path == "/bump":
        if "after" in request.args:
            wait_for(trial, request.args["after"])
            time.sleep(AFTER_LOGIN)
        update_session(environ, bump)
        start_response("200 OK", [("Content-Type", "text/plain")])  # the write-back happens here
        if "late" in request.args:
            signal(trial, "written")
            return late_body(environ, trial)
        log(environ, trial, "bump")
        return [b"bumped"]
    if request.path == "/whoami":
        return answer(start_response, "text/plain", (get_session(environ) or {}).get("user", "anonymous"))
    return answer(start_response, "text/plain", "not found", "404 Not Found")


def bump(session: dict[str, Any]) -> dict[str, Any]:
    """What a page's API call writes: a counter, a token kept once made, a flash."""
    return {
        "bumps": session.get("bumps", 0) + 1,
        "token": session.get("token") or secrets.token_urlsafe(16),
        "flashes": [*session.get("flashes", []), "bumped"][-5:],
    }


def sent_then_signal(trial: str, name: str) -> Iterator[bytes]:
    """An empty body that signals ``name`` once the headers, and their cookie, have left."""
    yield b""  # gunicorn sends the headers before the first item, even an empty one
    signal(trial, name)


def late_body(environ: dict[str, Any], trial: str) -> Iterator[bytes]:
    """The body of a late call: its headers, and their cookie, leave with it."""
    wait_for(trial, "login")
    time.sleep(LATE)
    log(environ, trial, "bump")
    yield b"bumped"


def answer(start_response: Callable[..., Any], kind: str, body: str, status: str = "200 OK") -> list[bytes]:
    start_response(status, [("Content-Type", f"{kind}; charset=utf-8")])
    return [body.encode()]


def signal(trial: str, name: str) -> None:
    (Path(os.environ["RACE_DIR"]) / f"{int(trial)}-{name}").touch()


def wait_for(trial: str, name: str) -> None:
    path = Path(os.environ["RACE_DIR"]) / f"{int(trial)}-{name}"
    deadline = time.monotonic() + SIGNAL_TIMEOUT
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.005)


def log(environ: dict[str, Any], trial: str, kind: str) -> None:
    """Record the session cookie a request carried, once its response (and write-back) is done."""
    cookie = parse_cookie(environ.get("HTTP_COOKIE", "")).get("session")
    line = json.dumps({"trial": int(trial), "kind": kind, "cookie": cookie, "at": time.time()})
    with open(Path(os.environ["RACE_DIR"]) / "race.log", "a") as file:
        file.write(line + "\n")


def from_environment() -> SessionMiddleware:
    """The page behind the middleware, as ``gunicorn 'tests.browser_race_app:from_environment()'``."""
    return SessionMiddleware(
        page,
        store=create_sqlite_store(os.environ["RACE_DB"]),
        secret=os.environ["SESSION_SECRET"],
        regenerate_window=int(os.environ["RACE_WINDOW"]),
    )
