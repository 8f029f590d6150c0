"""The express cookie-signature format, checked against HMAC computed here by hand."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wsgi_session import sign_cookie, signing, unsign_cookie
from wsgi_session.signing import SESSION_ID_LENGTH, new_session_id


def expected_signature(value: str, secret: str) -> str:
    mac = hmac.new(secret.encode("utf-8"), value.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(mac).decode("ascii").rstrip("=")


# The vector of the cookie-signature package's own test suite (Node's sign()).
EXPRESS_VALUE, EXPRESS_SECRET = "hello", "tobiiscool"
EXPRESS_SIGNED = "s:hello.DGDUkGlIkCzPz+C0B064FNgHdEjox7ch8tOBGslZ5QI"


def test_express_vector_is_the_hmac_computed_by_hand():
    assert f"s:hello.{expected_signature(EXPRESS_VALUE, EXPRESS_SECRET)}" == EXPRESS_SIGNED


def test_sign_cookie_matches_the_express_vector():
    assert sign_cookie(EXPRESS_VALUE, EXPRESS_SECRET) == EXPRESS_SIGNED


def test_unsign_cookie_accepts_the_express_vector():
    assert unsign_cookie(EXPRESS_SIGNED, EXPRESS_SECRET) == "hello"


@pytest.mark.parametrize(
    ("value", "secret"),
    [("abc", "secret"), ("", "k"), ("é-ünïcödé", "sécret-ключ"), ("a.b.c", "dots")],
)
def test_signature_is_unpadded_base64_of_hmac_sha256(value, secret):
    signed = sign_cookie(value, secret)
    assert signed == f"s:{value}.{expected_signature(value, secret)}"
    assert not signed.endswith("=")
    assert len(signed.rpartition(".")[2]) == 43


def test_str_and_bytes_secrets_give_the_same_mac():
    secret = "sécret-ключ"
    assert sign_cookie("v", secret) == sign_cookie("v", secret.encode("utf-8"))
    assert unsign_cookie(sign_cookie("v", secret), secret.encode("utf-8")) == "v"


def test_wrong_secret_is_refused():
    assert unsign_cookie(sign_cookie("abc", "one"), "two") is None


def test_rotation_verifies_with_every_secret():
    old = sign_cookie("abc", "old")
    assert unsign_cookie(old, ["new", "old"]) == "abc"
    assert unsign_cookie(sign_cookie("abc", "new"), ["new", "old"]) == "abc"
    assert unsign_cookie(old, ["new", "newer"]) is None


def test_signature_is_compared_as_text_in_constant_time(monkeypatch):
    compared = []
    real = hmac.compare_digest

    def spy(a, b):
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(signing.hmac, "compare_digest", spy)
    assert unsign_cookie(EXPRESS_SIGNED, ["other", EXPRESS_SECRET]) == "hello"
    signature = EXPRESS_SIGNED.rpartition(".")[2]
    # One whole-signature comparison per secret, text against text.
    assert compared == [
        (signature, expected_signature("hello", "other")),
        (signature, signature),
    ]


@pytest.mark.parametrize(
    "spelling",
    [
        EXPRESS_SIGNED + "=",  # the padding express strips
        EXPRESS_SIGNED.replace("+", "-"),  # the URL-safe alphabet: same bytes, other text
        EXPRESS_SIGNED[:-1],  # truncated
        EXPRESS_SIGNED + "x",  # trailing garbage
        EXPRESS_SIGNED[:-1] + ("A" if EXPRESS_SIGNED[-1] != "A" else "B"),  # one char flipped
        EXPRESS_SIGNED[2:],  # no s: prefix
        "S" + EXPRESS_SIGNED[1:],
        EXPRESS_SIGNED.replace("s:", "s:x.", 1),  # s:x.hello.<mac>: split at the last dot
    ],
)
def test_other_spellings_are_refused(spelling):
    assert unsign_cookie(spelling, EXPRESS_SECRET) is None


@pytest.mark.parametrize(
    "malformed",
    [
        "",
        "s:",
        "s:.",
        ".",
        "s:nodot",
        "s:a.b.c",
        "s:\x00.\x00",
        "s:\ud800.abc",
        "s:a.\ud800",
        "s:a.é",
        "\r\n\t\x7f",
    ],
)
def test_malformed_input_gives_none(malformed):
    assert unsign_cookie(malformed, "secret") is None


@pytest.mark.parametrize("not_text", [None, b"s:a.b", 42, ["s:a.b"]])
def test_non_text_input_gives_none(not_text):
    assert unsign_cookie(not_text, "secret") is None


@given(st.text())
def test_unsign_cookie_never_raises(text):
    assert unsign_cookie(text, ["secret", "other"]) is None


@given(st.text())
def test_every_signed_value_round_trips(value):
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates cannot be signed
        return
    assert unsign_cookie(sign_cookie(value, "secret"), "secret") == value


@pytest.mark.parametrize(
    "secret", ["", b"", [], (), None, [""], ["ok", ""], [b""], [None], [42], 42, {"unordered"}]
)
def test_empty_or_non_text_secret_is_a_value_error(secret):
    with pytest.raises(ValueError, match="secret"):
        unsign_cookie(EXPRESS_SIGNED, secret)


@pytest.mark.parametrize("secret", ["", b"", None, ["one"], ["one", "two"], 42])
def test_sign_cookie_refuses_anything_but_one_secret(secret):
    with pytest.raises(ValueError, match="secret"):
        sign_cookie("value", secret)


@pytest.mark.parametrize("value", [None, b"bytes", 42])
def test_sign_cookie_signs_only_text(value):
    with pytest.raises(TypeError, match="value"):
        sign_cookie(value, "secret")


def test_empty_secret_is_refused_even_for_malformed_input():
    with pytest.raises(ValueError):
        unsign_cookie("garbage", "")


def test_100k_session_ids_are_unique_of_one_length_and_url_safe():
    ids = [new_session_id() for _ in range(100_000)]
    assert len(set(ids)) == len(ids)
    alphabet = re.compile(rf"[A-Za-z0-9_-]{{{SESSION_ID_LENGTH}}}")
    assert SESSION_ID_LENGTH == 43  # 256 bits in base64: ceil(256 / 6)
    assert all(alphabet.fullmatch(i) for i in ids)
    # 256 bits: every one of the 64 characters turns up, in every position but the last.
    assert {c for i in ids for c in i[:-1]} == set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    )
