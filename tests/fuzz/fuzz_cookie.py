"""Coverage-guided fuzzing of the cookie path with atheris; not part of the test run.

From the repository root::

    python -m pip install atheris
    PYTHONPATH=. python tests/fuzz/fuzz_cookie.py -dict=tests/fuzz/cookie.dict -atheris_runs=1000000

Each input is used three ways: as the text given to ``unsign_cookie``, as the raw
bytes of a ``Cookie`` header (which WSGI hands over as latin-1 text) for the header
parser, and as that header on a request through the middleware. Any exception, or
a verified value that does not sign back to its input, is a crash.
"""

from __future__ import annotations

import sys
from typing import Any, Callable

import atheris

with atheris.instrument_imports():
    from wsgi_session import (
        SessionMiddleware,
        create_memory_store,
        sign_cookie,
        unsign_cookie,
        update_session,
    )
    from wsgi_session.cookie_header import cookie_values

SECRETS = ["fuzz-secret-that-is-long-enough-0123456789", "an-older-fuzz-secret-0123456789-abcdef"]
LIVE_ID = "K" * 43
STORE = create_memory_store()
STORE.set(LIVE_ID, '{"created":1.0,"data":{"visits":1}}', 10**9)


def counter(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    update_session(environ, lambda s: {"visits": s.get("visits", 0) + 1})
    start_response("200 OK", [])
    return [b""]


MIDDLEWARE = SessionMiddleware(counter, store=STORE, secret=SECRETS)


def request(header: str) -> tuple[str, list[tuple[str, str]]]:
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "HTTP_COOKIE": header, "wsgi.url_scheme": "https"}
    started: list[tuple[str, list[tuple[str, str]]]] = []
    for _ in MIDDLEWARE(environ, lambda status, headers, exc_info=None: started.append((status, headers))):
        pass
    return started[-1]


def test_one_input(data: bytes) -> None:
    text = atheris.FuzzedDataProvider(data).ConsumeUnicode(len(data))
    value = unsign_cookie(text, SECRETS)
    if value is not None and text not in (sign_cookie(value, s) for s in SECRETS):
        raise AssertionError(f"{text!r} verified as {value!r}")

    header = data.decode("latin-1")
    if not all(isinstance(v, str) for v in cookie_values(header, "session")):
        raise AssertionError("a cookie value that is not text")
    status, headers = request(header)
    cookies = [value for name, value in headers if name == "Set-Cookie"]
    if status != "200 OK" or len(cookies) != 1:
        raise AssertionError(f"{status} {headers}")
    # Each input but the live ID's starts a session: drop it, so that the bounded
    # store never fills, however long the run.
    session_id = unsign_cookie(cookies[0].split(";", 1)[0].partition("=")[2], SECRETS)
    if session_id != LIVE_ID:
        STORE.delete(session_id)


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
