"""The middleware's options, checked once and frozen: what every request session reads.

:class:`Settings` is built by :class:`~wsgi_session.SessionMiddleware` from its
keyword options. Each check fails at construction with a ``ValueError`` naming the
option, so that a typo in a deployment's configuration stops the app at start-up
instead of weakening every session it serves: ``rolling="false"`` is refused, not
taken as true.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Callable

from .store import SessionStore

if TYPE_CHECKING:
    from .events import Events
    from .session_cookie import SessionCookie
    from .users import UserIndex

#: What a failing store does to a request: raise, or go on with an empty session.
ON_STORE_ERROR = ("raise", "anonymous")
_STORE_METHODS = ("get", "set", "delete", "touch", "compare_and_set")


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything a request's session needs from its middleware, immutable."""

    store: SessionStore
    cookie: SessionCookie
    events: Events
    max_age: int
    generate: Callable[[], Mapping[str, Any]] | None
    rolling: bool
    save_uninitialized: bool
    absolute_timeout: int | None
    max_size: int | None
    regenerate_window: int
    anonymous_on_store_error: bool
    users: UserIndex | None


def check_store(store: Any) -> SessionStore:
    missing = [m for m in _STORE_METHODS if not callable(getattr(store, m, None))]
    if missing:
        raise ValueError(f"store must provide the session store methods; missing: {', '.join(missing)}")
    return store  # type: ignore[no-any-return]


def check_count(option: str, value: Any, *, zero: bool = False) -> int:
    """A positive integer of seconds or bytes (or zero, where ``zero`` allows it): never a
    bool, a float or text."""
    if not isinstance(value, int) or isinstance(value, bool) or value < (0 if zero else 1):
        kind = "a non-negative" if zero else "a positive"
        raise ValueError(f"{option} must be {kind} integer, not {value!r}")
    return value


def check_optional_count(option: str, value: Any) -> int | None:
    return None if value is None else check_count(option, value)


def check_flag(option: str, value: Any) -> bool:
    """``True`` or ``False`` only: ``"no"`` and ``"false"`` are true in Python."""
    if not isinstance(value, bool):
        raise ValueError(f"{option} must be True or False, not {value!r}")
    return value


def check_generate(generate: Any) -> Callable[[], Mapping[str, Any]] | None:
    if generate is not None and not callable(generate):
        raise ValueError("generate must be a callable returning the initial session data")
    return generate  # type: ignore[no-any-return]


def check_on_store_error(value: Any) -> bool:
    """Whether an outage gives anonymous sessions (``"anonymous"``) instead of raising."""
    if value not in ON_STORE_ERROR or not isinstance(value, str):
        raise ValueError(f"on_store_error must be 'raise' or 'anonymous', not {value!r}")
    return value == "anonymous"
