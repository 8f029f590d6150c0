"""The exceptions of wsgi_session.

Configuration mistakes are plain ``ValueError`` and values JSON cannot encode are
``TypeError``: those are the exceptions Python programmers already expect. Everything
that goes wrong while a request uses its session is a :class:`SessionError`.
"""


class SessionError(Exception):
    """A session function was misused: no middleware, or called too late."""


class SessionStoreError(SessionError):
    """The store failed; the original exception is ``__cause__``.

    Raised instead of starting an empty session, which would log the user out and
    let the next write overwrite what the store still holds.
    """


class SessionConflictError(SessionError):
    """Concurrent requests kept changing the session, past the retry bound."""
