"""Serve the example with four worker processes sharing one SQLite session store.

    gunicorn -c examples/gunicorn.conf.py examples.app:app

Every worker opens its own connections to the file named by SESSION_DB, so a
user's requests may land on any of them and still find their session.
"""

bind = "127.0.0.1:8000"
workers = 4
