"""A visit counter with login and logout, on plain WSGI.

    python examples/app.py        # then open http://127.0.0.1:8000/
    PORT=8001 python examples/app.py

Under gunicorn, four worker processes sharing the sessions:
``gunicorn -c examples/gunicorn.conf.py examples.app:app``.

SESSION_STORE_URL picks the store: by default the SQLite file ``sessions.sqlite3``
in the current directory (``sqlite:///sessions.sqlite3``), for one host; with
``redis://host:6379/0`` or ``postgresql://user:password@host/dbname``, any number of
hosts. Set SESSION_SECRET in production.
"""

import html
import os
from urllib.parse import parse_qs
from wsgiref.simple_server import make_server

from wsgi_session import (
    SessionMiddleware,
    destroy_session,
    regenerate_session,
    store_from_url,
    update_session,
)

SECRET = os.environ.get("SESSION_SECRET", "dev-only-secret-replace-me-in-production!")


def page(environ, start_response):
    path, method = environ["PATH_INFO"], environ["REQUEST_METHOD"]
    if path == "/login" and method == "POST":
        size = int(environ.get("CONTENT_LENGTH") or 0)
        form = parse_qs(environ["wsgi.input"].read(size).decode())
        user = form.get("user", ["guest"])[0]
        regenerate_session(environ)  # a new ID at login: defeats session fixation
        update_session(environ, lambda s: {"user": user})
        return redirect(start_response)
    if path == "/logout" and method == "POST":
        destroy_session(environ)
        return redirect(start_response)
    if path != "/":
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]
    session = update_session(environ, lambda s: {"visits": s.get("visits", 0) + 1})
    user = session.get("user")
    body = f"visits: {session['visits']}\n"
    if user:
        body += f"logged in as {html.escape(user)}\n"
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
    return [body.encode()]


def redirect(start_response):
    start_response("303 See Other", [("Location", "/"), ("Content-Type", "text/plain")])
    return [b""]


app = SessionMiddleware(
    page,
    store=store_from_url(os.environ.get("SESSION_STORE_URL", "sqlite:///sessions.sqlite3")),
    secret=SECRET,
)

if __name__ == "__main__":
    port = int(os.environ.get("PORT", "8000"))
    with make_server("127.0.0.1", port, app) as server:
        print(f"serving on http://127.0.0.1:{port}/", flush=True)
        server.serve_forever()
