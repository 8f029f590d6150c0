"""``wsgi-session`` (or ``python -m wsgi_session``): look at and clean up a session store.

The store comes from ``--store URL`` or ``SESSION_STORE_URL`` (see
:func:`~wsgi_session.store_from_url`), the secret from ``SESSION_SECRET``:

- ``inspect COOKIE [--data]``: verify a cookie; show its hashed ID, when the session
  started, when it was last active, its size and the time it has left; its data
  only with ``--data``;
- ``count``: the live sessions (on Redis a ``SCAN``, which is fine here and never
  on a request path);
- ``purge``: delete the expired rows of an SQL store, in batches;
- ``list --user ID`` and ``revoke --user ID``: a user's sessions, and ending them
  all (needs the app's ``user_key``, ``--user-key``).

A bad cookie, an unreachable store or a bad URL is one line on stderr and a
non-zero exit, never a traceback; no secret and no whole session ID is printed.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any, TextIO
from urllib.parse import unquote

from .errors import SessionError
from .events import short_hash
from .middleware import SessionMiddleware
from .record import Replaced, decode_record
from .signing import unsign_cookie
from .store_url import store_from_url
from .users import list_sessions, revoke_sessions

#: Exit codes: the session asked about is not there; the command could not run.
NOT_FOUND, FAILED = 1, 2


class _Failure(Exception):
    """One line for stderr, and the exit code."""

    def __init__(self, message: str, code: int = FAILED) -> None:
        super().__init__(message)
        self.code = code


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    args = _parser().parse_args(argv)
    # A failure is told in one line: the drivers' own warnings while they retry
    # (psycopg_pool logs each failed connection, through a logger of its own level)
    # would repeat it. So the one handler passes errors only.
    handler = logging.StreamHandler()
    handler.setLevel(logging.ERROR)
    logging.basicConfig(handlers=[handler], format="wsgi-session: %(message)s")
    try:
        args.command(args, out)
    except _Failure as failure:
        print(f"wsgi-session: {failure}", file=sys.stderr)
        return failure.code
    except (SessionError, ValueError, OSError) as exc:
        print(f"wsgi-session: {exc}", file=sys.stderr)
        return FAILED
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wsgi-session",
        description="Look at and clean up the sessions of a wsgi_session store.",
        epilog="The store comes from --store or SESSION_STORE_URL, the secret from SESSION_SECRET.",
    )
    # --store goes before the command's name or after it, as a user types it:
    # wsgi-session --store URL count, or wsgi-session count --store URL. After the
    # name it is the command's own option, which must not reset one given before.
    store_help = "the store's URL (default: $SESSION_STORE_URL), e.g. redis://host:6379/0"
    parser.add_argument("--store", metavar="URL", help=store_help)
    store = argparse.ArgumentParser(add_help=False)
    store.add_argument("--store", metavar="URL", default=argparse.SUPPRESS, help=store_help)
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    inspect = commands.add_parser(
        "inspect", parents=[store], help="verify a session cookie and describe its session"
    )
    inspect.add_argument("cookie", help="the cookie's value (s:...), or name=value as a browser shows it")
    inspect.add_argument("--data", action="store_true", help="also print the session's data")
    inspect.add_argument(
        "--max-age", type=int, default=86400, help="the app's max_age (for the last activity)"
    )
    inspect.set_defaults(command=_inspect)

    count = commands.add_parser("count", parents=[store], help="count the live sessions")
    count.set_defaults(command=_count)

    purge = commands.add_parser("purge", parents=[store], help="delete the expired rows of an SQL store")
    purge.set_defaults(command=_purge)

    for name, function, text in (
        ("list", _list, "list a user's live sessions"),
        ("revoke", _revoke, "end every session of a user"),
    ):
        command = commands.add_parser(name, parents=[store], help=text)
        command.add_argument("--user", required=True, metavar="ID", help="the user's ID")
        command.add_argument("--user-key", default="user_id", help="the app's user_key (default: user_id)")
        command.add_argument("--max-age", type=int, default=86400, help="the app's max_age")
        command.set_defaults(command=function)
    return parser


# -- the commands ---------------------------------------------------------------


def _inspect(args: argparse.Namespace, out: TextIO) -> None:
    secret = _secret()
    # "name=value" as a browser shows it, or the value alone: a signed ID holds no "=".
    value = args.cookie.strip().rpartition("=")[2]
    session_id = unsign_cookie(unquote(value), secret)
    if session_id is None:
        raise _Failure(
            "the cookie does not verify with SESSION_SECRET: forged, or signed with another secret"
        )
    store = _store(args)
    stored = _call(store.get, session_id)
    found = None if stored is None else decode_record(stored.payload)
    hashed = short_hash(session_id)
    if stored is None:
        raise _Failure(f"session {hashed}: not in the store (ended or expired)", NOT_FOUND)
    if isinstance(found, Replaced):
        raise _Failure(f"session {hashed}: replaced by a regenerate moments ago; it holds no data", NOT_FOUND)
    if found is None:
        raise _Failure(f"session {hashed}: the store holds something that is not a session", NOT_FOUND)
    created, data = found
    expires_at = _call(store.expires_at, session_id) if callable(getattr(store, "expires_at", None)) else None
    size = len(stored.payload)
    lines = [
        ("session", f"{hashed} (a hash of its ID)"),
        ("created", _when(created)),
        ("last active", "unknown" if expires_at is None else _when(expires_at - args.max_age)),
        ("size", f"{size} bytes"),
        ("expires", "unknown" if expires_at is None else f"{_when(expires_at)}"),
    ]
    for label, text in lines:
        print(f"{label + ':':<13}{text}", file=out)
    if args.data:
        print(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False), file=out)


def _count(args: argparse.Namespace, out: TextIO) -> None:
    store = _store(args)
    if not callable(getattr(store, "__len__", None)):
        raise _Failure(f"a {type(store).__name__} cannot count its sessions")
    print(_call(len, store), file=out)


def _purge(args: argparse.Namespace, out: TextIO) -> None:
    store = _store(args)
    if not callable(getattr(store, "purge_expired", None)):
        print(f"nothing to purge: a {type(store).__name__} drops expired sessions itself", file=out)
        return
    progress = sys.stderr.isatty()
    deleted = 0
    for batch in _call(store.purge_expired):
        deleted += batch
        if progress:
            print(f"\rdeleted {deleted} expired sessions", end="", file=sys.stderr, flush=True)
    if progress:
        print(file=sys.stderr)
    print(f"deleted {deleted} expired sessions", file=out)


def _list(args: argparse.Namespace, out: TextIO) -> None:
    middleware = _middleware(args)
    for info in _call(list_sessions, middleware, args.user):
        print(
            f"{info.handle}  created {_when(info.created)}  last active {_when(info.last_active)}  "
            f"{info.ip or '-'}  {info.user_agent or '-'}",
            file=out,
        )


def _revoke(args: argparse.Namespace, out: TextIO) -> None:
    ended = _call(revoke_sessions, _middleware(args), args.user)
    print(f"ended {ended} session{'s' * (ended != 1)} of user {args.user}", file=out)


# -- what they share ------------------------------------------------------------


def _secret() -> str:
    secret = os.environ.get("SESSION_SECRET")
    if not secret:
        raise _Failure("SESSION_SECRET is not set: the app's secret verifies cookies and keys handles")
    return secret


def _store(args: argparse.Namespace) -> Any:
    url = args.store or os.environ.get("SESSION_STORE_URL")
    if not url:
        raise _Failure("no store: pass --store URL or set SESSION_STORE_URL")
    return store_from_url(url)


def _middleware(args: argparse.Namespace) -> SessionMiddleware:
    """A middleware wrapping no app: what list_sessions and revoke_sessions act through."""
    return SessionMiddleware(
        lambda environ, start_response: [],
        store=_store(args),
        secret=_secret(),
        user_key=args.user_key,
        max_age=args.max_age,
    )


def _call(operation: Any, *args: Any) -> Any:
    """Run a store operation; its failure becomes one line, with the store's own words."""
    try:
        return operation(*args)
    except (SessionError, ValueError, TypeError):
        raise
    except Exception as exc:
        raise _Failure(f"the store failed: {type(exc).__name__}: {exc}") from None


def _when(epoch: float) -> str:
    moment = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")
