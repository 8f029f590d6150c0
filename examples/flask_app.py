"""Flask with wsgi_session: a counter, login, a members-only page, logout, flash messages.

    python examples/flask_app.py        # then open http://127.0.0.1:8000/

Under gunicorn: ``gunicorn examples.flask_app:app``. PORT picks another port; set
SESSION_SECRET in production. SESSION_STORE_URL picks the store: ``memory://`` by
default, which lives in one process; with several gunicorn workers, one they share
(``sqlite:///sessions.sqlite3``, ``redis://...`` or ``postgresql://...``).
"""

import os

from flask import Flask, flash, redirect, render_template_string, request, session

from wsgi_session import (
    SessionMiddleware,
    destroy_session,
    regenerate_session,
    store_from_url,
    update_session,
)
from wsgi_session.flask import SessionInterface

SECRET = os.environ.get("SESSION_SECRET", "dev-only-secret-replace-me-in-production!")
STORE_URL = os.environ.get("SESSION_STORE_URL", "memory://")

app = Flask(__name__)
app.wsgi_app = SessionMiddleware(app.wsgi_app, store=store_from_url(STORE_URL), secret=SECRET)
app.session_interface = SessionInterface()

PAGE = """<!doctype html>
<title>wsgi_session with Flask</title>
{% for message in get_flashed_messages() %}<p><b>{{ message }}</b></p>{% endfor %}
<p>visits: {{ visits }}</p>
{% if session.user %}
  <p>logged in as {{ session.user }}. <a href="/members">Members only</a></p>
  <form method="post" action="/logout"><button>Log out</button></form>
{% else %}
  <form method="post" action="/login"><input name="user" value="ada"> <button>Log in</button></form>
{% endif %}
"""


@app.get("/")
def home():
    # session["visits"] += 1 would work too, but two concurrent requests could both
    # write the same number; an updater is replayed on fresh data, so each counts.
    visits = update_session(request, lambda s: {"visits": s.get("visits", 0) + 1})["visits"]
    return render_template_string(PAGE, visits=visits)


@app.post("/login")
def login():
    regenerate_session(request)  # a new ID at login: defeats session fixation
    session["user"] = request.form.get("user") or "guest"
    flash(f"Welcome, {session['user']}.")
    return redirect("/", 303)


@app.get("/members")
def members():
    if "user" not in session:
        flash("Log in first.")
        return redirect("/", 303)
    return render_template_string("<p>Members only, {{ session.user }}. <a href='/'>Back</a></p>")


@app.post("/logout")
def logout():
    destroy_session(request)
    flash("Logged out.")  # a write after destroy_session starts a new, empty session
    return redirect("/", 303)


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ.get("PORT", "8000")))
