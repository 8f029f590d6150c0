"""Serve the example with four worker processes sharing one session store.

    gunicorn -c examples/gunicorn.conf.py examples.app:app

Every worker opens its own connections to the store that SESSION_STORE_URL names
(the SQLite file sessions.sqlite3 by default, or Redis, or PostgreSQL), so a user's
requests may land on any of them and still find their session.
"""

bind = "127.0.0.1:8000"
workers = 4
