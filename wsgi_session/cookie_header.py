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

from werkzeug.sansio.http import parse_cookie

# Everything str.strip() removes except the optional whitespace of RFC 6265.
_NOT_OWS_SPACE = re.compile(r"[^\S \t]")


def cookie_values(header: str, name: str) -> list[str]:
    """The values of every cookie named exactly ``name`` in ``header``, in order."""
    text = header if header.isascii() else header.encode("latin-1", "replace").decode("utf-8", "replace")
    # Every character str.strip removes, but space, is unprintable: a header without
    # them, the usual one, is parsed as it is.
    if not text.isprintable():
        text = _NOT_OWS_SPACE.sub("\ufffd", text)
    return parse_cookie(text).getlist(name)
