"""Server-side sessions for synchronous Python web apps, as one WSGI middleware."""

from .api import destroy_session, get_session, regenerate_session, update_session
from .errors import SessionConflictError, SessionError, SessionStoreError
from .memory_store import create_memory_store
from .middleware import SessionMiddleware
from .postgres_store import create_postgres_store
from .redis_store import create_redis_store
from .session import DELETE
from .session_cookie import CookieOptions
from .signing import sign_cookie, unsign_cookie
from .sqlite_store import create_sqlite_store
from .store import SessionStore, StoredSession, UserIndexStore, UserSession
from .store_url import store_from_url
from .users import SessionInfo, list_sessions, revoke_session, revoke_sessions

__all__ = [
    "DELETE",
    "CookieOptions",
    "SessionConflictError",
    "SessionError",
    "SessionInfo",
    "SessionMiddleware",
    "SessionStore",
    "SessionStoreError",
    "StoredSession",
    "UserIndexStore",
    "UserSession",
    "create_memory_store",
    "create_postgres_store",
    "create_redis_store",
    "create_sqlite_store",
    "destroy_session",
    "get_session",
    "list_sessions",
    "regenerate_session",
    "revoke_session",
    "revoke_sessions",
    "sign_cookie",
    "store_from_url",
    "unsign_cookie",
    "update_session",
]
