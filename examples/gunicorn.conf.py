"""Serve the example with four worker processes sharing one session store.

    gunicorn -c examples/gunicorn.conf.py examples.app:app

Every worker opens its own connections to the store (the SQLite file SESSION_DB,
or Redis at SESSION_REDIS_URL), so a user's requests may land on any of them and
still find their session.
"""

bind = "127.0.0.1:8000"
workers = 4
