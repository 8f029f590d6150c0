"""The stored form of a session: one JSON object, metadata beside the user's data.

``{"created": <epoch seconds>, "data": {...}}``. Metadata never shares a namespace
with user keys, so a user key named like a metadata field changes nothing. Keys
the session layer does not know are ignored, so that a store may keep its own
beside them (the Redis store keeps its version there).

For a while after :func:`~wsgi_session.regenerate_session`, the old ID holds a
*replaced* marker instead, ``{"replaced_by": "<new id>"}``: never a session, it
tells a request still carrying the old cookie that a login moved the session on.

JSON and only JSON: never pickle, so a store that can be written by someone else
cannot run code in the app.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from .signing import is_session_id

Data = dict[str, Any]

#: Deepest nesting of containers a session's data may have. Deeper data is refused
#: when written and read as no session when found in a store: a value nested a few
#: hundred levels deep decodes, but copying or re-encoding it overflows the stack.
MAX_DEPTH = 100


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


# Built once: json.dumps and json.loads build a new encoder or decoder on every call
# that passes an option, which costs more than encoding a small session.
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)


#: A decoded record: (created, data). A plain tuple: it is built on every read.
Record = tuple[float, Data]


class Replaced:
    """A regenerated session's old ID, still remembering the ID that replaced it.

    Not a tuple, so that it is never taken for a :data:`Record`.
    """

    __slots__ = ("successor",)

    def __init__(self, successor: str) -> None:
        self.successor = successor


def encode_data(data: Mapping[str, Any]) -> str:
    """Encode the user's data as strict JSON, or raise ``TypeError`` naming the key.

    ``NaN`` and the infinities are refused: they are not JSON. Data nested deeper
    than :data:`MAX_DEPTH` is a ``ValueError``.
    """
    try:
        encoded = _ENCODER.encode(data)
    except (TypeError, ValueError) as exc:
        for key, value in data.items():
            try:
                _ENCODER.encode(value)
            except (TypeError, ValueError) as cause:
                raise TypeError(
                    f"session value for key {key!r} cannot be encoded as JSON: {cause}"
                ) from cause
        raise TypeError(f"session data cannot be encoded as JSON: {exc}") from exc
    except RecursionError:
        encoded = ""  # deeper than the encoder can go: refused below
    if not encoded or _too_deep(encoded, data):
        raise ValueError(f"session data is nested deeper than {MAX_DEPTH} levels")
    return encoded


def encode_record(created: float, encoded_data: str) -> str:
    """Wrap data already encoded by :func:`encode_data`, without encoding it again."""
    return f'{{"created":{float(created).__repr__()},"data":{encoded_data}}}'


def encode_replaced(successor: str) -> str:
    """The marker a regenerated session's old ID holds: see :class:`Replaced`."""
    return f'{{"replaced_by":"{successor}"}}'


def decode_record(payload: str | bytes) -> Record | Replaced | None:
    """Return the record or marker held in ``payload``, or ``None`` if it is neither.

    A store may hold anything (a corrupt write, another program's key, a 100,000-deep
    array, a creation time of 400 digits): whatever does not decode to the exact
    shape is treated as missing.
    """
    try:
        # A payload neither text nor bytes (a store of someone else's making) has no
        # decode(): the AttributeError below. UnicodeDecodeError is a ValueError.
        text = payload if isinstance(payload, str) else payload.decode("utf-8")
        # raw_decode skips the whitespace checks of decode(): a record is written
        # without any, so text before or after the object makes it not a record.
        raw, end = _DECODER.raw_decode(text)
    except (ValueError, TypeError, AttributeError, RecursionError):
        return None
    if end != len(text) or type(raw) is not dict:
        return None
    created, data = raw.get("created"), raw.get("data")
    if type(data) is dict and (type(created) is int or type(created) is float):
        try:
            when = float(created)  # an int of 400 digits is no float: OverflowError
        except OverflowError:
            return None
        if math.isfinite(when) and not _too_deep(text, data):
            return (when, data)
        return None
    successor = raw.get("replaced_by")
    if created is None and isinstance(successor, str) and is_session_id(successor):
        return Replaced(successor)
    return None


def _too_deep(text: str, data: Mapping[str, Any]) -> bool:
    """Whether ``data`` (encoded as ``text``) nests containers deeper than :data:`MAX_DEPTH`.

    Nesting that deep needs as many opening brackets in the text: looking for them
    spares almost every session the walk. ``str.find`` skips to the next one many
    times faster than ``str.count`` counts (some 2 µs against 55 µs over 100 KB,
    twice per updating request), and the search stops once past the limit.
    """
    brackets = 0
    for bracket in "[{":
        at = text.find(bracket)
        while at != -1 and brackets <= MAX_DEPTH:
            brackets += 1
            at = text.find(bracket, at + 1)
    if brackets <= MAX_DEPTH:
        return False
    level: list[Any] = list(data.values())  # what ``data``, at depth 1, contains
    # After the n-th pass, a container left in ``level`` is at depth n + 2.
    for _ in range(MAX_DEPTH - 1):
        level = [
            item
            for container in level
            if isinstance(container, (dict, list))
            for item in (container.values() if isinstance(container, dict) else container)
        ]
        if not level:
            return False
    return any(isinstance(item, (dict, list)) for item in level)
