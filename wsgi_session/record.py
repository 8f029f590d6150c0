"""The stored form of a session: one JSON object, metadata beside the user's data.

``{"created": <epoch seconds>, "data": {...}}``. Metadata never shares a namespace
with user keys, so a user key named like a metadata field changes nothing. JSON and
only JSON: never pickle, so a store that can be written by someone else cannot run
code in the app.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

Data = dict[str, Any]


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


# Built once: json.dumps and json.loads build a new encoder or decoder on every call
# that passes an option, which costs more than encoding a small session.
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)


#: A decoded record: (created, data). A plain tuple: it is built on every read.
Record = tuple[float, Data]


def encode_data(data: Mapping[str, Any]) -> str:
    """Encode the user's data as strict JSON, or raise ``TypeError`` naming the key.

    ``NaN`` and the infinities are refused: they are not JSON.
    """
    try:
        return _ENCODER.encode(data)
    except (TypeError, ValueError) as exc:
        for key, value in data.items():
            try:
                _ENCODER.encode(value)
            except (TypeError, ValueError) as cause:
                raise TypeError(
                    f"session value for key {key!r} cannot be encoded as JSON: {cause}"
                ) from cause
        raise TypeError(f"session data cannot be encoded as JSON: {exc}") from exc


def encode_record(created: float, encoded_data: str) -> str:
    """Wrap data already encoded by :func:`encode_data`, without encoding it again."""
    return f'{{"created":{float(created).__repr__()},"data":{encoded_data}}}'


def decode_record(payload: str | bytes) -> Record | None:
    """Return the record held in ``payload``, or ``None`` if it is not one.

    A store may hold anything (a corrupt write, another program's key, a 100,000-deep
    array): whatever does not decode to the exact shape is treated as missing.
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
    if isinstance(created, bool) or not isinstance(created, (int, float)) or type(data) is not dict:
        return None
    return (float(created), data) if math.isfinite(created) else None
