"""Pyramid with wsgi_session: a counter, login, a members-only page, logout, flash
messages, and Pyramid's own CSRF protection on every form.

    python examples/pyramid_app.py      # then open http://127.0.0.1:8000/

Under gunicorn: ``gunicorn examples.pyramid_app:app``. PORT picks another port; set
SESSION_SECRET in production. SESSION_STORE_URL picks the store: ``memory://`` by
default, which lives in one process; with several gunicorn workers, one they share
(``sqlite:///sessions.sqlite3``, ``redis://...`` or ``postgresql://...``).
"""

import os
from html import escape
from wsgiref.simple_server import make_server

from pyramid.config import Configurator
from pyramid.csrf import SessionCSRFStoragePolicy, get_csrf_token, new_csrf_token
from pyramid.httpexceptions import HTTPSeeOther
from pyramid.response import Response

import wsgi_session.pyramid
from wsgi_session import (
    SessionMiddleware,
    destroy_session,
    regenerate_session,
    store_from_url,
    update_session,
)

SECRET = os.environ.get("SESSION_SECRET", "dev-only-secret-replace-me-in-production!")
STORE_URL = os.environ.get("SESSION_STORE_URL", "memory://")


def page(request, body):
    flashes = "".join(f"<p><b>{escape(m)}</b></p>" for m in request.session.pop_flash())
    html = f"<!doctype html>\n<title>wsgi_session with Pyramid</title>\n{flashes}\n{body}\n"
    return Response(html, content_type="text/html")


def form(request, action, fields, button):
    token = escape(get_csrf_token(request))
    return (
        f'<form method="post" action="{action}">{fields}'
        f'<input type="hidden" name="csrf_token" value="{token}"> <button>{button}</button></form>'
    )


def home(request):
    # An updater is replayed on fresh data, so concurrent requests all count.
    visits = update_session(request, lambda s: {"visits": s.get("visits", 0) + 1})["visits"]
    user = request.session.get("user")
    if user:
        body = f"<p>logged in as {escape(user)}. <a href='/members'>Members only</a></p>" + form(
            request, "/logout", "", "Log out"
        )
    else:
        body = form(request, "/login", '<input name="user" value="ada">', "Log in")
    return page(request, f"<p>visits: {visits}</p>\n{body}")


def login(request):
    regenerate_session(request)  # a new ID at login: defeats session fixation
    new_csrf_token(request)  # and a new CSRF token
    request.session["user"] = request.POST.get("user") or "guest"
    request.session.flash(f"Welcome, {request.session['user']}.")
    return HTTPSeeOther("/")


def members(request):
    if "user" not in request.session:
        request.session.flash("Log in first.")
        return HTTPSeeOther("/")
    return page(request, f"<p>Members only, {escape(request.session['user'])}. <a href='/'>Back</a></p>")


def logout(request):
    destroy_session(request)
    request.session.flash("Logged out.")  # a write after destroy_session starts a new session
    return HTTPSeeOther("/")


def make_app():
    config = Configurator()
    config.set_session_factory(wsgi_session.pyramid.session_factory)
    config.set_csrf_storage_policy(SessionCSRFStoragePolicy())
    config.set_default_csrf_options(require_csrf=True)  # every POST needs the form's token
    for name, path, view, method in [
        ("home", "/", home, "GET"),
        ("login", "/login", login, "POST"),
        ("members", "/members", members, "GET"),
        ("logout", "/logout", logout, "POST"),
    ]:
        config.add_route(name, path)
        config.add_view(view, route_name=name, request_method=method)
    return SessionMiddleware(config.make_wsgi_app(), store=store_from_url(STORE_URL), secret=SECRET)


app = make_app()

if __name__ == "__main__":
    port = int(os.environ.get("PORT", "8000"))
    with make_server("127.0.0.1", port, app) as server:
        print(f"serving on http://127.0.0.1:{port}/")
        server.serve_forever()
