"""A page whose own requests race its login, for tests/test_browser_race.py.

``GET /race?trial=N`` starts an anonymous session and serves a page whose ``race()``
fires ``fetch`` calls at ``/bump`` (credentials included) before and while it posts
the login form into an iframe, as a single-page app's API calls overlap its login.
The server holds the login, and each bump as long as the page asks, so that bumps
sent with the old cookie are answered after the login's response has brought the
new one. ``lateResponse()`` sends one bump whose write lands before the login's,
and whose response reaches the browser after the login's.

``POST /login`` regenerates the session and sets the user; ``/bump`` counts, keeps a
CSRF-like token and queues a flash (three updates of the session); ``/whoami`` only
reads. Each login and bump appends a line to the file ``RACE_LOG``: its trial, the
session cookie it carried, and when it was answered.

Settings from the environment: ``SESSION_SECRET``, ``RACE_DB`` (the SQLite store the
workers share), ``RACE_WINDOW`` (``regenerate_window``) and ``RACE_LOG``.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Iterator
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

PAGE = """<!doctype html>
<title>A login that races its page's requests</title>
<form method="post" action="/login?trial={trial}" target="login"><input name="user" value="ada"></form>
<iframe name="login"></iframe>
<script>
const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// An API call of the page that updates the session. The server holds it for ``hold``
// ms before it touches the session, and ``linger`` ms more before its response leaves.
// Each has a URL of its own: Chromium's cache would send calls to one URL one by one.
let sent = 0;
function bump(hold, linger = 0) {{
  const url = `/bump?trial={trial}&i=${{sent++}}&hold=${{hold}}&linger=${{linger}}`;
  return fetch(url, {{credentials: "same-origin", cache: "no-store"}}).then((response) => response.status);
}}

// Post the login form into the iframe; resolve once the page it leads to has loaded.
function logIn() {{
  const frame = document.querySelector("iframe");
  const loaded = new Promise((resolve) => frame.addEventListener("load", resolve, {{once: true}}));
  document.forms[0].submit();
  return loaded;
}}

// Three calls answered before the login, then nine sent while it is on its way: those
// carry the old cookie and are answered after the login's response.
async function race() {{
  const bumps = [bump(50), bump(50), bump(50)];
  const loggedIn = logIn();
  for (let i = 0; i < 9; i++) {{
    await pause(20);
    bumps.push(bump(300));
  }}
  const statuses = await Promise.all(bumps);
  await loggedIn;
  return statuses;
}}

// One call written back before the login regenerates, whose response (with the old
// cookie, as every update sends its cookie) reaches the browser after the login's.
async function lateResponse() {{
  const late = bump(0, 500);
  await logIn();
  return [await late];
}}
</script>
"""


def page(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes] | Iterator[bytes]:
    request = Request(environ)
    trial = int(request.args.get("trial", "0"))
    if request.path == "/race":
        update_session(environ, lambda s: {"visits": s.get("visits", 0) + 1})
        return answer(start_response, "text/html", PAGE.format(trial=trial))
    if request.path == "/login" and request.method == "POST":
        time.sleep(LOGIN_HOLD)
        user = request.form.get("user", "guest")
        regenerate_session(environ)
        update_session(environ, lambda s: {"user": user})
        start_response("303 See Other", [("Location", "/whoami"), ("Content-Type", "text/plain")])
        log(environ, trial, "login")
        return [b""]
    if request.path == "/bump":
        time.sleep(int(request.args["hold"]) / 1000)
        update_session(environ, bump)
        start_response("200 OK", [("Content-Type", "text/plain")])  # the write-back happens here
        return lingering(environ, trial, int(request.args["linger"]) / 1000)
    if request.path == "/whoami":
        return answer(start_response, "text/plain", (get_session(environ) or {}).get("user", "anonymous"))
    return answer(start_response, "text/plain", "not found", "404 Not Found")


def lingering(environ: dict[str, Any], trial: int, seconds: float) -> Iterator[bytes]:
    """The body of a bump: the headers, and their cookie, leave with it, ``seconds`` late."""
    time.sleep(seconds)
    log(environ, trial, "bump")
    yield b"bumped"


def bump(session: dict[str, Any]) -> dict[str, Any]:
    """What a page's API call writes: a counter, a token kept once made, a flash."""
    return {
        "bumps": session.get("bumps", 0) + 1,
        "token": session.get("token") or secrets.token_urlsafe(16),
        "flashes": [*session.get("flashes", []), "bumped"][-5:],
    }


def answer(start_response: Callable[..., Any], kind: str, body: str, status: str = "200 OK") -> list[bytes]:
    start_response(status, [("Content-Type", f"{kind}; charset=utf-8")])
    return [body.encode()]


def log(environ: dict[str, Any], trial: int, kind: str) -> None:
    """Record what a request carried, once its response (and the write-back) is done."""
    cookie = parse_cookie(environ.get("HTTP_COOKIE", "")).get("session")
    line = json.dumps({"trial": trial, "kind": kind, "cookie": cookie, "at": time.time()})
    with open(os.environ["RACE_LOG"], "a") as file:
        file.write(line + "\n")


def from_environment() -> SessionMiddleware:
    """The page behind the middleware, as ``gunicorn 'tests.browser_race_app:from_environment()'``."""
    return SessionMiddleware(
        page,
        store=create_sqlite_store(os.environ["RACE_DB"]),
        secret=os.environ["SESSION_SECRET"],
        regenerate_window=int(os.environ["RACE_WINDOW"]),
    )
