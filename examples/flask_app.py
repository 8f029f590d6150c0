"""Flask with wsgi_session: a counter, login with "remember me" (Flask-Login), a
members-only page, "Your sessions" (where the user is signed in, with a button to
sign out each other browser or all of them), logout, flash messages, and CSRF
protection on every form (Flask-WTF).

    pip install flask flask-login flask-wtf
    python examples/flask_app.py        # then open http://127.0.0.1:8000/

Under gunicorn: ``gunicorn examples.flask_app:app``. PORT picks another port; set
SESSION_SECRET and FLASK_SECRET_KEY in production. SESSION_STORE_URL picks the
store: ``memory://`` by default, which lives in one process; with several gunicorn
workers, one they share (``sqlite:///sessions.sqlite3``, ``redis://...`` or
``postgresql://...``).
"""

import os
from datetime import datetime, timezone

from flask import Flask, flash, redirect, render_template_string, request
from flask_login import LoginManager, UserMixin, login_required, login_user, logout_user
from flask_wtf.csrf import CSRFProtect

from wsgi_session import (
    SessionMiddleware,
    destroy_session,
    list_sessions,
    regenerate_session,
    revoke_session,
    revoke_sessions,
    store_from_url,
    update_session,
)
from wsgi_session.flask import SessionInterface

SECRET = os.environ.get("SESSION_SECRET", "dev-only-secret-replace-me-in-production!")
STORE_URL = os.environ.get("SESSION_STORE_URL", "memory://")

app = Flask(__name__)
# The session cookie is signed by the middleware with SECRET. Flask-WTF signs its CSRF
# tokens, and Flask-Login its remember-me cookie, with Flask's own secret_key.
app.secret_key = os.environ.get("FLASK_SECRET_KEY", "dev-only-flask-key-replace-me-in-production!")
# user_key names where Flask-Login keeps the user's ID: the sessions of each user can
# then be listed and revoked (the "Your sessions" page).
app.wsgi_app = SessionMiddleware(
    app.wsgi_app, store=store_from_url(STORE_URL), secret=SECRET, user_key="_user_id"
)
app.session_interface = SessionInterface()
CSRFProtect(app)  # every POST needs the form's csrf_token
login_manager = LoginManager(app)


class User(UserMixin):
    def __init__(self, name):
        self.id = name


@login_manager.user_loader
def load_user(user_id):
    return User(user_id)


@login_manager.unauthorized_handler
def log_in_first():
    flash("Log in first.")
    return redirect("/", 303)


PAGE = """<!doctype html>
<title>wsgi_session with Flask</title>
{% for message in get_flashed_messages() %}<p><b>{{ message }}</b></p>{% endfor %}
<p>visits: {{ visits }}</p>
{% if current_user.is_authenticated %}
  <p>logged in as {{ current_user.id }}.
    <a href="/members">Members only</a> <a href="/sessions">Your sessions</a></p>
  <form method="post" action="/logout">
    <input type="hidden" name="csrf_token" value="{{ csrf_token() }}"> <button>Log out</button>
  </form>
{% else %}
  <form method="post" action="/login">
    <input type="hidden" name="csrf_token" value="{{ csrf_token() }}">
    <input name="user" value="ada"> <label><input type="checkbox" name="remember"> remember me</label>
    <button>Log in</button>
  </form>
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
    user = User(request.form.get("user") or "guest")
    login_user(user, remember="remember" in request.form)
    flash(f"Welcome, {user.id}.")
    return redirect("/", 303)


@app.get("/members")
@login_required
def members():
    return render_template_string("<p>Members only, {{ current_user.id }}. <a href='/'>Back</a></p>")


SESSIONS = """<!doctype html>
<title>Your sessions</title>
{% for message in get_flashed_messages() %}<p><b>{{ message }}</b></p>{% endfor %}
<h1>Where you are signed in</h1>
<table>
  <tr><th>Browser</th><th>IP address</th><th>Last active</th><th></th></tr>
  {% for info in sessions %}
  <tr>
    <td>{{ info.user_agent or "unknown" }}</td>
    <td>{{ info.ip or "unknown" }}</td>
    <td>{{ info.last_active | utc }}</td>
    <td>
      {% if info.current %}this device{% else %}
      <form method="post" action="/sessions/revoke">
        <input type="hidden" name="csrf_token" value="{{ csrf_token() }}">
        <input type="hidden" name="handle" value="{{ info.handle }}"> <button>Sign out</button>
      </form>
      {% endif %}
    </td>
  </tr>
  {% endfor %}
</table>
<form method="post" action="/sessions/revoke-others">
  <input type="hidden" name="csrf_token" value="{{ csrf_token() }}"> <button>Sign out everywhere else</button>
</form>
<p><a href="/">Back</a></p>
"""


@app.template_filter("utc")
def utc(seconds):
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


@app.get("/sessions")
@login_required
def sessions():
    return render_template_string(SESSIONS, sessions=list_sessions(request))


@app.post("/sessions/revoke")
@login_required
def revoke():
    # The handle comes from the form: one that is not among this user's live sessions
    # (forged, another user's, or ended meanwhile) ends nothing and gives False.
    if revoke_session(request, request.form.get("handle", "")):
        flash("That browser is signed out.")
    else:
        flash("That session had already ended.")
    return redirect("/sessions", 303)


@app.post("/sessions/revoke-others")
@login_required
def revoke_others():
    ended = revoke_sessions(request)  # all of this user's sessions but this one
    flash(f"Signed out everywhere else: {ended} ended.")
    return redirect("/sessions", 303)


@app.post("/logout")
@login_required
def logout():
    logout_user()  # Flask-Login: forget the user, clear the remember-me cookie
    destroy_session(request)  # delete the session and expire its cookie
    flash("Logged out.")  # a write after destroy_session starts a new, empty session
    return redirect("/", 303)


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ.get("PORT", "8000")))
