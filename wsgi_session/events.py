"""What happens to sessions, told to operators: log records, and metrics when enabled.

Every event the session layer reports goes through one :class:`Events` object, so
that a log line and its counter can never disagree. Session IDs appear only as
:func:`short_hash`: enough to correlate the records of one session, useless to
replay. The levels, on the ``wsgi_session`` logger:

- ``INFO``: a cookie of our name that proves nothing (forged, tampered, or signed
  with a secret no longer configured); a signed ID the store does not hold; a
  request carrying a just-replaced ID (see ``regenerate_window``); a write dropped
  because the session was replaced meanwhile; a revocation.
- ``WARNING``: a stored value that is not a session; a write given up after too
  many conflicts.
- ``ERROR``: a store failure answered with an anonymous session
  (``on_store_error="anonymous"``), at most one record per
  :data:`OUTAGE_LOG_INTERVAL` seconds, counting those it held back.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .metrics import Metrics

logger = logging.getLogger("wsgi_session")

#: Seconds between two ``ERROR`` records of a store outage.
OUTAGE_LOG_INTERVAL = 10.0

#: How a request's session was opened. ``new``: no cookie of ours; ``bad_cookie``: one
#: that proves nothing; ``unknown``: a signed ID the store does not hold (ended or
#: expired); ``expired``: past ``absolute_timeout``; ``corrupt``: the store holds
#: something that is not a session; ``replaced``: an ID a regenerate just replaced;
#: ``unavailable``: the store failed, under ``on_store_error="anonymous"``.
LOAD_OUTCOMES = ("found", "new", "bad_cookie", "unknown", "expired", "corrupt", "replaced", "unavailable")
_LOAD_RECORDS = {
    "bad_cookie": (logging.INFO, "session cookie %s rejected: its signature does not verify"),
    "unknown": (
        logging.INFO,
        "session %s: signed ID not in the store (ended or expired); starting a new one",
    ),
    "corrupt": (logging.WARNING, "session %s: stored data is not a session; starting a new one"),
    "replaced": (
        logging.INFO,
        "session %s: request carries an ID a regenerate replaced moments ago; "
        "it gets an empty session that is never stored",
    ),
}


def short_hash(session_id: str) -> str:
    """A log-safe stand-in for a session ID: enough to correlate, useless to replay."""
    return hashlib.sha256(session_id.encode("utf-8", "backslashreplace")).hexdigest()[:12]


class Events:
    """Logs each session event, and counts it when ``metrics`` is given."""

    def __init__(self, metrics: Metrics | None = None) -> None:
        self.metrics = metrics
        self._outage_lock = threading.Lock()
        self._outage_logged_at = float("-inf")
        self._outages_held_back = 0

    # -- loading ------------------------------------------------------------------

    def loaded(self, outcome: str, subject: str | None) -> None:
        """A request opened its session, with one of the :data:`LOAD_OUTCOMES`.

        ``subject`` is the session ID, or the ``Cookie`` header for ``bad_cookie``:
        only its hash is logged.
        """
        record = _LOAD_RECORDS.get(outcome)
        if record is not None and subject is not None:
            level, message = record
            logger.log(level, message, short_hash(subject))
        if self.metrics is not None:
            self.metrics.loaded(outcome)

    # -- writing ------------------------------------------------------------------

    def wrote(self, kind: str) -> None:
        """A write-back reached the store: ``create``, ``update``, ``destroy``, ``regenerate``,
        ``touch`` or ``revoke``."""
        if self.metrics is not None:
            self.metrics.wrote(kind)

    def conflict(self) -> None:
        if self.metrics is not None:
            self.metrics.conflict()

    def gave_up(self, session_id: str, attempts: int) -> None:
        logger.warning(
            "session %s: gave up writing after %d conflicting tries", short_hash(session_id), attempts
        )
        if self.metrics is not None:
            self.metrics.gave_up()

    def dropped_after_replace(self, session_id: str) -> None:
        logger.info(
            "session %s: a write through this ID came after a regenerate replaced it and was dropped",
            short_hash(session_id),
        )

    def revoked(self, session_id: str) -> None:
        logger.info("session %s: revoked", short_hash(session_id))

    # -- the store ----------------------------------------------------------------

    def store_error(self, operation: str) -> None:
        if self.metrics is not None:
            self.metrics.store_error(operation)

    def outage(self, error: BaseException) -> None:
        """A store failure answered with an anonymous session: logged, at a bounded rate."""
        now = time.monotonic()
        with self._outage_lock:
            if now - self._outage_logged_at < OUTAGE_LOG_INTERVAL:
                self._outages_held_back += 1
                return
            held_back, self._outages_held_back = self._outages_held_back, 0
            self._outage_logged_at = now
        more = f" ({held_back} more since the last record)" if held_back else ""
        logger.error("session store unavailable, serving an anonymous session: %s%s", error, more)
