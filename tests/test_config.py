"""Construction-time validation: every bad option fails at once, naming itself."""

from __future__ import annotations

import warnings

import pytest
from conftest import SECRET, counter_app

from wsgi_session import CookieOptions, SessionMiddleware, create_memory_store


def build(**options):
    options.setdefault("store", create_memory_store())
    options.setdefault("secret", SECRET)
    return SessionMiddleware(counter_app, **options)


@pytest.mark.parametrize("secret", ["", b"", [], (), None, [""], [SECRET, ""], [None], 42, {SECRET}])
def test_empty_or_missing_secret(secret):
    with pytest.raises(ValueError, match="secret"):
        build(secret=secret)


@pytest.mark.parametrize("max_age", [0, -1, -86400, True, 1.5, "60", None])
def test_max_age_must_be_a_positive_integer(max_age):
    with pytest.raises(ValueError, match="max_age"):
        build(max_age=max_age)


@pytest.mark.parametrize("option", ["absolute_timeout", "max_size"])
@pytest.mark.parametrize("value", [0, -5, 2.5, "10", False])
def test_other_sizes_and_durations_must_be_positive_integers(option, value):
    with pytest.raises(ValueError, match=option):
        build(**{option: value})


@pytest.mark.parametrize("samesite", ["bogus", "", None, "no", 1])
def test_unknown_samesite(samesite):
    with pytest.raises(ValueError, match="samesite"):
        build(cookie={"samesite": samesite})


@pytest.mark.parametrize("samesite", ["none", "None", "NONE"])
def test_samesite_none_requires_secure(samesite):
    with pytest.raises(ValueError, match=r"samesite.*secure"):
        build(cookie={"samesite": samesite, "secure": False})
    build(cookie={"samesite": samesite, "secure": True})


def test_partitioned_requires_secure():
    with pytest.raises(ValueError, match=r"partitioned.*secure"):
        build(cookie={"partitioned": True, "secure": False})
    build(cookie={"partitioned": True})


@pytest.mark.parametrize("name", ["__Host-session", "__host-session", "__HOST-sid"])
def test_host_prefix_forbids_a_domain(name):
    with pytest.raises(ValueError, match="domain"):
        build(name=name, cookie={"domain": "example.com"})


@pytest.mark.parametrize("path", ["/app", "/app/", "//"])
def test_host_prefix_requires_the_root_path(path):
    with pytest.raises(ValueError, match="path"):
        build(name="__Host-session", cookie={"path": path})


def test_host_prefix_requires_secure():
    with pytest.raises(ValueError, match="secure"):
        build(name="__Host-session", cookie={"secure": False})


def test_host_prefix_with_its_rules_is_accepted():
    build(name="__Host-session", cookie=CookieOptions())


@pytest.mark.parametrize("name", ["__Secure-session", "__secure-sid"])
def test_secure_prefix_requires_secure(name):
    with pytest.raises(ValueError, match="secure"):
        build(name=name, cookie={"secure": False})
    build(name=name, cookie={"domain": "example.com", "path": "/app"})


@pytest.mark.parametrize("cookie", [{"httponlyy": True}, {"max_age": 5}, {1: True}, {1: True, "bad": 2}])
def test_unknown_cookie_dict_key(cookie):
    with pytest.raises(ValueError, match="cookie"):
        build(cookie=cookie)


@pytest.mark.parametrize("cookie", ["secure", 1, ["secure"]])
def test_cookie_must_be_options_or_a_dict(cookie):
    with pytest.raises(ValueError, match="cookie"):
        build(cookie=cookie)


@pytest.mark.parametrize("path", ["", "app", None])
def test_cookie_path_must_be_absolute(path):
    with pytest.raises(ValueError, match="path"):
        build(cookie={"path": path})


@pytest.mark.parametrize("name", ["", "two words", "semi;colon", "eq=ual", "ünï", None, 5])
def test_cookie_name_must_be_a_token(name):
    with pytest.raises(ValueError, match="name"):
        build(name=name)


def test_generate_must_be_callable():
    with pytest.raises(ValueError, match="generate"):
        build(generate={"visits": 0})


def test_store_must_have_the_protocol_methods():
    class Half:
        def get(self, session_id):
            return None

    with pytest.raises(ValueError, match=r"store.*set.*delete.*touch.*compare_and_set"):
        build(store=Half())


def test_options_are_keyword_only():
    with pytest.raises(TypeError):
        SessionMiddleware(counter_app, create_memory_store(), SECRET)  # type: ignore[misc]


def test_cookie_dict_is_the_same_as_cookie_options():
    a = build(cookie={"samesite": "strict", "path": "/app", "domain": "example.com"})
    b = build(cookie=CookieOptions(samesite="strict", path="/app", domain="example.com"))
    assert a.settings.cookie.options == b.settings.cookie.options


def test_cookie_defaults_are_the_safe_ones():
    options = CookieOptions()
    assert (options.secure, options.httponly, options.samesite, options.path, options.domain) == (
        True,
        True,
        "lax",
        "/",
        None,
    )
    assert options.partitioned is False


@pytest.mark.parametrize("secret", ["short", "x" * 31, ["x" * 31, "y" * 64]])
def test_short_secret_warns(secret):
    with pytest.warns(UserWarning, match="secret") as caught:
        build(secret=secret)
    assert all(issubclass(w.category, UserWarning) for w in caught)
    assert {w.category.__name__ for w in caught} == {"WeakSecretWarning"}


def test_long_secret_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build(secret="x" * 32)
        build(secret=["x" * 32, "old"])


def test_repr_never_shows_the_secret():
    assert SECRET not in repr(build())


@pytest.mark.parametrize("option", ["rolling", "save_uninitialized", "metrics"])
@pytest.mark.parametrize("value", ["no", "false", "", 0, 1, None, [True]])
def test_flags_must_be_booleans(option, value):
    """A string is true in Python: ``rolling="false"`` must not quietly turn it on."""
    with pytest.raises(ValueError, match=option):
        build(**{option: value})


@pytest.mark.parametrize("flag", ["secure", "httponly", "partitioned"])
@pytest.mark.parametrize("value", ["no", "false", 0, None])
def test_cookie_flags_must_be_booleans(flag, value):
    cookie = {flag: value}
    if flag == "partitioned":
        cookie["secure"] = True
    with pytest.raises(ValueError, match=f"cookie.{flag}"):
        build(cookie=cookie)


@pytest.mark.parametrize(
    "domain", [5, b"example.com", "", "exa mple.com", "a.com; Secure", "é.com", ["a.com"]]
)
def test_cookie_domain_must_be_a_domain_name(domain):
    with pytest.raises(ValueError, match=r"cookie\.domain"):
        build(cookie={"domain": domain})


@pytest.mark.parametrize("path", ["/a b", "/a;b", "/\x00"])
def test_cookie_path_must_be_one_attribute_value(path):
    with pytest.raises(ValueError, match=r"cookie\.path"):
        build(cookie={"path": path})


@pytest.mark.parametrize("value", [-1, 1.5, "60", True, None])
def test_regenerate_window_must_be_a_non_negative_integer(value):
    with pytest.raises(ValueError, match="regenerate_window"):
        build(regenerate_window=value)


def test_regenerate_window_zero_is_accepted():
    build(regenerate_window=0)


@pytest.mark.parametrize("value", ["ignore", "Anonymous", "", None, True])
def test_on_store_error_is_raise_or_anonymous(value):
    with pytest.raises(ValueError, match="on_store_error"):
        build(on_store_error=value)


@pytest.mark.parametrize("value", ["", 5, b"user"])
def test_user_key_must_be_a_key_name(value):
    with pytest.raises(ValueError, match="user_key"):
        build(user_key=value)


def test_user_key_needs_a_store_that_finds_sessions_by_user():
    class PlainStore:
        get = set = delete = touch = compare_and_set = staticmethod(lambda *args: None)

    with pytest.raises(ValueError, match=r"user_key.*PlainStore.*add_user_session"):
        build(store=PlainStore(), user_key="user_id")
