"""Rows A of the catalogue in docs/security.rst: whatever the ``Cookie`` header holds.

Every hostile header yields a normal response with at most a fresh session, and a
value that does not verify never reaches the store ("no lookup": the spy records
no ``get``). Each test names its row.
"""

from __future__ import annotations

import sys
from typing import Any
from urllib.parse import quote

import pytest
from conftest import SECRET, SpyStore, counter_app
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from security_support import NAME, Response, call, fresh_id, signed

from wsgi_session import SessionMiddleware, create_memory_store, sign_cookie, unsign_cookie
from wsgi_session import signing as signing_module
from wsgi_session.middleware import WeakSecretWarning
from wsgi_session.record import encode_record


def stored_session(store: Any, visits: int = 1) -> str:
    """Put a live session holding ``visits`` in ``store``; return its ID."""
    session_id = fresh_id()
    store.set(session_id, encode_record(1.0, f'{{"visits":{visits}}}'), 3600)
    return session_id


@pytest.fixture
def app(store: SpyStore) -> SessionMiddleware:
    return SessionMiddleware(counter_app, store=store, secret=SECRET)


@pytest.fixture
def live(store: SpyStore) -> str:
    """The ID of a stored session with one visit; the spy's record starts after it."""
    return stored_session(store.store)


def assert_fresh(response: Response, store: SpyStore) -> None:
    """A normal response on a new session, and the store was never asked."""
    assert response.code == 200
    assert response.body == "1"
    assert "get" not in store.names()


def assert_found(response: Response, session_id: str) -> None:
    assert response.code == 200
    assert response.body == "2"
    assert response.session_id == session_id


def test_a1_no_cookie_header_starts_nothing_until_data_is_set(app, store):
    """A1: a read-only request without a cookie writes nothing and sets no cookie."""
    response = call(app, path="/read")
    assert response.body == "{}"
    assert response.set_cookies == []
    assert store.names() == []


def test_a1_save_uninitialized_stores_and_sends_the_new_session(store):
    """A1: ``save_uninitialized`` is the one exception."""
    app = SessionMiddleware(counter_app, store=store, secret=SECRET, save_uninitialized=True)
    response = call(app, path="/read")
    assert response.session_id is not None
    assert store.names() == ["set"]


@pytest.mark.parametrize("value", ["", "s:", "s:.", "s:..", ".", "s"])
def test_a2_empty_and_hollow_values_are_fresh_without_lookup(app, store, value):
    """A2: ``sid=``, ``sid=s:``, ``sid=s:.``."""
    assert_fresh(call(app, f"{NAME}={value}"), store)


def test_a3_a_valid_id_without_the_s_prefix_is_refused(app, store, live):
    """A3: the ``s:`` prefix is required, bare or with its signature."""
    assert_fresh(call(app, f"{NAME}={live}"), store)
    assert_fresh(call(app, f"{NAME}={signed(live)[2:]}"), store)


def test_a4_a_flipped_mac_character_or_another_ids_mac_is_refused(app, store, live):
    """A4: one MAC character flipped; a MAC that belongs to another ID."""
    good = signed(live)
    for index in (len(good) - 1, len(good) - 43):
        flipped = good[:index] + ("A" if good[index] != "A" else "B") + good[index + 1 :]
        assert_fresh(call(app, f"{NAME}={flipped}"), store)
    other_mac = signed(fresh_id()).rsplit(".", 1)[1]
    assert_fresh(call(app, f"{NAME}=s:{live}.{other_mac}"), store)


def _id_with_url_unsafe_mac() -> tuple[str, str]:
    """An ID whose MAC has ``+`` or ``/``, and that signed value."""
    while True:
        session_id = fresh_id()
        value = signed(session_id)
        if "+" in value or "/" in value:
            return session_id, value


def test_a5_other_spellings_of_the_mac_are_refused(store):
    """A5: truncated MAC, trailing garbage, ``=`` padding, the ``-_`` alphabet."""
    session_id, good = _id_with_url_unsafe_mac()
    store.store.set(session_id, encode_record(1.0, '{"visits":1}'), 3600)
    app = SessionMiddleware(counter_app, store=store, secret=SECRET)
    for value in (
        good[:-1],
        good + "x",
        good + "=",
        good + "\x00",
        good.replace("+", "-").replace("/", "_"),
    ):
        assert_fresh(call(app, f"{NAME}={value}"), store)
        assert unsign_cookie(value, SECRET) is None
    assert_found(call(app, f"{NAME}={good}"), session_id)


def test_a6_values_with_several_dots_split_at_the_last_and_are_refused(app, store):
    """A6: ``s:a.b.<mac>`` verifies as the value ``a.b``, which is no session ID."""
    assert unsign_cookie(sign_cookie("a.b", SECRET), SECRET) == "a.b"
    dotted = "a.b" + "c" * 40  # the length of an ID, so it reaches the HMAC
    assert_fresh(call(app, f"{NAME}={sign_cookie(dotted, SECRET)}"), store)
    assert_fresh(call(app, f"{NAME}=s:{'x' * 88}"), store)  # no dot at all
    assert unsign_cookie("s:" + "x" * 88, SECRET) is None


@pytest.mark.parametrize(
    "char", ["\x00", "\r", "\n", "\r\n", "\t", "\x7f", "\x80", "\xff", "\udc80", "\u2028"]
)
def test_a7_control_and_non_ascii_characters_in_the_value_give_a_fresh_session(app, store, live, char):
    """A7: NUL, CR, LF, TAB, DEL, bytes 0x80-0xFF, lone surrogates, inside our value."""
    good = signed(live)
    for value in (good[:10] + char + good[10:], good + char + "x", "x" + char + good):
        assert_fresh(call(app, f"{NAME}={value}"), store)
    if char != "\t":  # a tab around the value is optional whitespace, and trimmed
        assert_fresh(call(app, f"{NAME}={good}{char}"), store)
        assert_fresh(call(app, f"{NAME}={char}{good}"), store)


@pytest.mark.parametrize(
    "garbage", ["\xff\xfe", "\xc3\x28", "\xa0", "\udcff", "\u0100\U0001f511", "\x00\r\n"]
)
def test_a7_undecodable_neighbours_do_not_hide_or_break_the_session(app, store, live, garbage):
    """A7: a neighbour cookie with bytes that are not UTF-8 (or not even latin-1)."""
    assert_found(call(app, f"x={garbage}; {NAME}={signed(live)}; y{garbage}=1"), live)


def test_a7_non_ascii_unsign_input_returns_none():
    """A7: ``unsign_cookie`` never raises on text it cannot verify."""
    for value in ("s:\udc80.abc", "s:é." + "A" * 43, "s:x.\udc80", "s:x.é", "\x00", "s:\x00.\x00"):
        assert unsign_cookie(value, SECRET) is None


def test_a8_the_express_wire_form_is_decoded_once(store):
    """A8: ``encodeURIComponent`` of the signed value, as express-session sends it.

    The vector was made with Node's ``crypto`` exactly as ``cookie-signature`` does,
    under a non-ASCII secret.
    """
    session_id = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
    store.store.set(session_id, encode_record(1.0, '{"visits":1}'), 3600)
    with pytest.warns(WeakSecretWarning):
        app = SessionMiddleware(counter_app, store=store, secret="sécret-ünïcode-🔑")
    express = "s%3Aabcdefghijklmnopqrstuvwxyz0123456789ABCDEFG.LcA5cSgAj3QA1F4kLxUrOdQzd78Js8cf1hVx1ysRvXw"
    assert_found(call(app, f"{NAME}={express}"), session_id)


def test_a8_percent_encoding_is_decoded_once_not_twice(store, live):
    """A8: a doubly encoded value stays encoded once, and fails."""
    app = SessionMiddleware(counter_app, store=store, secret=SECRET)
    once = quote(signed(live), safe="")
    assert "%3A" in once
    assert_found(call(app, f"{NAME}={once}"), live)
    store.calls.clear()
    assert_fresh(call(app, f"{NAME}={quote(once, safe='')}"), store)


@pytest.mark.parametrize("value", ["%ZZ", "%", "%0", "%00", "%C3%28", "%ED%B2%80", "s%3A%00.%00", "%%%%"])
def test_a8_bad_escapes_give_a_fresh_session(app, store, value):
    """A8: invalid or hostile percent escapes never crash."""
    assert_fresh(call(app, f"{NAME}={value}"), store)


def test_a8_a_bad_escape_inside_a_signed_value_is_refused(app, store, live):
    """A8: ``%00`` smuggled into an otherwise valid value."""
    good = signed(live)
    assert_fresh(call(app, f"{NAME}={good[:20]}%00{good[20:]}"), store)


def test_a9_a_quoted_value_is_unquoted_then_verified(app, store, live):
    """A9: RFC 6265 allows a quoted value; it is unquoted once, like any cookie."""
    assert_found(call(app, f'{NAME}="{signed(live)}"'), live)


def test_a9_thousands_of_escaped_quotes_give_a_fresh_session(app, store):
    """A9: 8 KB of ``\\"`` (the parser is linear: a backtracking one would hang here)."""
    for header in (f'{NAME}="' + '\\"' * 4096 + '"', f'{NAME}="' + '\\"' * 4096, '\\"' * 4096):
        assert_fresh(call(app, header), store)


def test_a10_ten_thousand_cookies_before_ours_still_find_it(app, live):
    """A10: ``a=1; `` x 10,000, then the session cookie."""
    assert_found(call(app, "a=1; " * 10_000 + f"{NAME}={signed(live)}"), live)


def test_a11_a_64_kb_header_or_value_gives_a_fresh_session(app, store, monkeypatch):
    """A11: a huge header, and a huge value of our name, which is never HMACed."""
    macs: list[str] = []
    real = signing_module.signature
    monkeypatch.setattr(signing_module, "signature", lambda v, k: macs.append(v) or real(v, k))
    assert_fresh(call(app, "a=" + "x" * 65_536), store)
    assert_fresh(call(app, f"{NAME}=s:" + "A" * 65_536 + ".sig"), store)
    assert_fresh(call(app, f"{NAME}=" + "s:x." * 16_384), store)
    assert macs == []


def test_a12_duplicate_cookies_first_that_verifies_wins(store):
    """A12: valid+forged, forged+valid, and two valid: the first valid one, never merged."""
    first, second = stored_session(store.store, visits=1), stored_session(store.store, visits=10)
    app = SessionMiddleware(counter_app, store=store, secret=SECRET)
    forged = signed(fresh_id(), secret="not-the-secret")
    for header in (f"{NAME}={signed(first)}; {NAME}={forged}", f"{NAME}={forged}; {NAME}={signed(first)}"):
        assert call(app, header, path="/read").body == "{'visits': 1}"
    both = call(app, f"{NAME}={signed(second)}; {NAME}={signed(first)}", path="/read")
    assert both.body == "{'visits': 10}"  # the first one's data only
    assert_found(call(app, f"{NAME}={forged}; {NAME}={signed(first)}"), first)


def test_a12_duplicate_cookies_are_deterministic(app, store):
    """A12: the same header gives the same session every time."""
    ids = [stored_session(store.store, visits=v) for v in (5, 6, 7)]
    header = "; ".join(f"{NAME}={signed(i)}" for i in ids)
    assert {call(app, header, path="/read").body for _ in range(5)} == {"{'visits': 5}"}


@pytest.mark.parametrize(
    "name",
    [
        "\u2000session",
        "\xa0session",
        "\xc2\xa0session",  # UTF-8 NO-BREAK SPACE as WSGI gives it: two latin-1 characters
        "\x85session",
        "\xc2\x85session",
        "session\xa0",
        "\x1csession",
        "\x0bsession",
        "\x0csession",
        '"session"',
        "SESSION",
        "Session",
        "session.",
        "=session",
    ],
)
def test_a13_lookalike_names_are_not_the_session_cookie(app, store, live, name):
    """A13: Unicode-space-padded, quoted, other-case and ``=``-prefixed names."""
    assert_fresh(call(app, f"{name}={signed(live)}"), store)


def test_a13_every_space_str_strip_removes_is_refused(app, store, live):
    """A13: each whitespace character werkzeug's ``str.strip`` would trim, before or after the name."""
    spaces = [chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace() and chr(c) not in " \t"]
    assert len(spaces) > 20
    for space in spaces:
        for name in (f"{space}{NAME}", f"{NAME}{space}"):
            # WSGI hands the header over as latin-1 text of its UTF-8 bytes.
            header = f"{name}={signed(live)}".encode().decode("latin-1")
            assert_fresh(call(app, header), store)


def test_a13_host_prefix_matches_exactly(store):
    """A13: ``__host-session`` is not ``__Host-session``, and the name is not unquoted."""
    live_id = stored_session(store.store)
    app = SessionMiddleware(counter_app, store=store, secret=SECRET, name="__Host-session")
    for name in ("__host-session", "__HOST-session", "\xa0__Host-session", '"__Host-session"'):
        assert_fresh(call(app, f"{name}={signed(live_id)}"), store)
    response = call(app, f"__Host-session={signed(live_id)}")
    assert response.body == "2"


@pytest.mark.parametrize(
    "neighbour", ['c={"d":"e"}', "a:b=1", "x=y\tz", 'q="unterminated', "=", "==", ";", "a", "a=b=c"]
)
def test_a14_bad_neighbour_pairs_do_not_hide_the_session(app, live, neighbour):
    """A14: malformed pairs before and after ours."""
    assert_found(call(app, f"{neighbour}; {NAME}={signed(live)}; {neighbour}"), live)


def test_a15_a_comma_does_not_separate_cookies(app, store, live):
    """A15: ``a=1, sid=...`` is one cookie ``a`` whose value holds a comma (RFC 6265)."""
    assert_fresh(call(app, f"a=1, {NAME}={signed(live)}"), store)
    assert_found(call(app, f"{NAME}={signed(live)}, a=1; {NAME}={signed(live)}"), live)


# -- properties over generated headers ------------------------------------------

_KNOWN_ID = "K" * 43
_PIECES = [
    NAME,
    "=",
    "; ",
    ";",
    ",",
    '"',
    "\\",
    "%",
    "%3A",
    "%2B",
    "s:",
    ".",
    "\x00",
    "\r\n",
    "\t",
    "\xa0",
    "\xff",
    "\udc80",
    signed(_KNOWN_ID),
    signed(_KNOWN_ID)[:-1],
    signed(_KNOWN_ID, secret="other"),
    f"{NAME}={signed(_KNOWN_ID)}",
]
_headers = st.one_of(
    st.text(st.characters(exclude_categories=[])),  # any text, surrogates too
    st.text(st.characters(max_codepoint=0xFF)),  # what WSGI can hand over
    st.lists(st.one_of(st.sampled_from(_PIECES), st.text(max_size=4)), max_size=30).map("".join),
    st.tuples(st.sampled_from(_PIECES), st.integers(1, 5000)).map(lambda p: p[0] * p[1]),  # huge
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(header=_headers)
def test_any_cookie_header_gives_a_normal_response_with_at_most_a_fresh_session(header):
    """A1-A15 as a property: never a 5xx, never an exception, no session but ours."""
    store = create_memory_store()
    store.set(_KNOWN_ID, encode_record(1.0, '{"visits":1}'), 3600)
    response = call(SessionMiddleware(counter_app, store=store, secret=SECRET), header)
    assert response.code == 200
    if response.body == "2":  # the one real session, found in the noise
        assert response.session_id == _KNOWN_ID
    else:
        assert response.body == "1"
        assert response.session_id not in (None, _KNOWN_ID)
        assert response.session_id not in header
    assert len(response.set_cookies) == 1


@settings(max_examples=300, deadline=None)
@given(
    before=st.lists(st.text(st.characters(max_codepoint=0xFF, exclude_characters=';"'), max_size=12)),
    after=st.lists(st.text(st.characters(max_codepoint=0xFF, exclude_characters=';"'), max_size=12)),
)
def test_the_session_cookie_survives_any_neighbours(before, after):
    """A14 as a property: pairs without ``;`` or quotes around ours never hide it."""
    store = create_memory_store()
    store.set(_KNOWN_ID, encode_record(1.0, '{"visits":1}'), 3600)
    # A neighbour cannot be a valid cookie of our name that comes first.
    before = [b for b in before if not b.lstrip(" \t").startswith(NAME)]
    header = "; ".join([*before, f"{NAME}={signed(_KNOWN_ID)}", *after])
    response = call(SessionMiddleware(counter_app, store=store, secret=SECRET), header)
    assert (response.code, response.body) == (200, "2")


@settings(max_examples=500, deadline=None)
@given(value=st.one_of(st.text(st.characters(exclude_categories=[])), st.binary(), st.none(), st.integers()))
def test_unsign_cookie_never_raises_and_only_verifies_its_own_output(value):
    """Fuzz target: ``unsign_cookie`` returns ``None`` or a value that signs to the input."""
    result = unsign_cookie(value, [SECRET, "old-secret"])
    if result is not None:
        assert value in (sign_cookie(result, SECRET), sign_cookie(result, "old-secret"))


@settings(max_examples=200, deadline=None)
@given(value=st.text())
def test_sign_then_unsign_gives_the_value_back(value):
    """Round trip of any text (the scheme signs UTF-8 bytes)."""
    assert unsign_cookie(sign_cookie(value, SECRET), ["other", SECRET]) == value


@pytest.mark.parametrize("header", ["", ";", " ", "=", "session"])
def test_the_header_parser_takes_an_empty_or_hollow_header(header):
    """Werkzeug builds its result with no argument for an empty header (the fuzz target's first input)."""
    from wsgi_session.cookie_header import cookie_values

    assert cookie_values(header, NAME) in ([], [""])
