"""Reading one cookie's values out of a WSGI ``Cookie`` header, whatever it holds.

Werkzeug's parser does the splitting. Two things happen before it, because its WSGI
entry point does neither: the header's bytes (which WSGI hands over as latin-1
text) are decoded as UTF-8 *replacing* what does not decode, instead of raising on
the first stray byte; and every whitespace character other than space and tab is
masked, because the parser trims names with :meth:`str.strip`, which would turn a
cookie named ``"\\xa0__Host-session"`` (one a subdomain may set) into ours.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import cast

from werkzeug.sansio.http import parse_cookie

# Everything str.strip() removes except the optional whitespace of RFC 6265.
_NOT_OWS_SPACE = re.compile(r"[^\S \t]")


class _ValuesByName(dict[str, list[str]]):
    """Each cookie name's values in header order: the dict-like class the parser fills.

    Werkzeug's default, a MultiDict, first checks whether it was given a MultiDict
    or a Mapping and then copies what it built; on the hot path of every request that
    reads the session, grouping the pairs directly is measurably cheaper.
    """

    def __init__(self, pairs: Iterable[tuple[str, str]] = ()) -> None:
        # Werkzeug calls the class with no argument for an empty header.
        super().__init__()
        for name, value in pairs:
            self.setdefault(name, []).append(value)


# parse_cookie's ``cls`` is typed as a MultiDict class; its documentation asks only
# for a dict-like class, which it calls with the (name, value) pairs.
_parse_cookie = cast("Callable[[str, type[_ValuesByName]], _ValuesByName]", parse_cookie)


def cookie_values(header: str, name: str) -> list[str]:
    """The values of every cookie named exactly ``name`` in ``header``, in order."""
    text = header if header.isascii() else header.encode("latin-1", "replace").decode("utf-8", "replace")
    # Every character str.strip removes, but space, is unprintable: a header without
    # them, the usual one, is parsed as it is.
    if not text.isprintable():
        text = _NOT_OWS_SPACE.sub("\ufffd", text)
    return _parse_cookie(text, _ValuesByName).get(name, [])
