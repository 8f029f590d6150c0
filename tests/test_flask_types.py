"""Flask's own types through flask.session: its tagged JSON, as Flask's cookie session does."""

from __future__ import annotations

import datetime
import json
import logging
import time
import uuid
from typing import Any

import flask
import pytest
from conftest import SECRET
from markupsafe import Markup

from wsgi_session import SessionMiddleware, get_session, unsign_cookie, update_session
from wsgi_session.flask import SessionInterface
from wsgi_session.record import decode_record, encode_record

WHEN = datetime.datetime(2024, 5, 17, 12, 30, 5, tzinfo=datetime.timezone.utc)
ID = uuid.UUID("12345678-1234-5678-1234-567812345678")

# What Flask's own session gives back for each value: the same, but for a naive
# datetime, which its tagged JSON reads back in UTC.
VALUES: dict[str, tuple[Any, Any]] = {
    "tuple": ((1, "two"), (1, "two")),
    "bytes": (b"\x00\xffraw", b"\x00\xffraw"),
    "markup": (Markup("<b>bold</b>"), Markup("<b>bold</b>")),
    "uuid": (ID, ID),
    "datetime": (WHEN, WHEN),
    "naive-datetime": (WHEN.replace(tzinfo=None), WHEN),
    "nested": ({"when": [WHEN, (ID, b"x")]}, {"when": [WHEN, (ID, b"x")]}),
    "tag-like-dict": ({" t": [1, 2]}, {" t": [1, 2]}),
    "plain": ({"a": [1, {"b": None}]}, {"a": [1, {"b": None}]}),
}


def make_app(store: Any) -> flask.Flask:
    app = flask.Flask(__name__)
    app.wsgi_app = SessionMiddleware(app.wsgi_app, store=store, secret=SECRET)  # type: ignore[method-assign]
    app.session_interface = SessionInterface()
    app.seen = {}  # type: ignore[attr-defined]

    @app.post("/set/<name>")
    def set_value(name: str) -> str:
        flask.session[name] = VALUES[name][0]
        return "set"

    @app.get("/see")
    def see() -> str:
        app.seen = dict(flask.session)  # type: ignore[attr-defined]
        return "seen"

    @app.post("/append-to-tuple-list")
    def append_to_tuple_list() -> str:
        flask.session["pairs"] = [("a", 1)]
        flask.session["pairs"].append(("b", 2))
        return "appended"

    @app.post("/plain-update")
    def plain_update() -> str:
        update_session(flask.request, lambda s: {"counts": [1, 2]})
        return "updated"

    @app.get("/raw")
    def raw() -> Any:
        return dict(get_session(flask.request) or {})

    @app.post("/flash")
    def flash() -> Any:
        flask.flash(Markup("<em>saved</em>"), "info")
        return flask.redirect("/messages")

    @app.get("/messages")
    def messages() -> str:
        app.seen = flask.get_flashed_messages(with_categories=True)  # type: ignore[attr-defined]
        return flask.render_template_string(
            "{% for category, message in get_flashed_messages(with_categories=True) %}"
            "{{ category }}: {{ message }}{% endfor %}"
        )

    return app


@pytest.fixture
def app(store: Any) -> flask.Flask:
    return make_app(store)


@pytest.fixture
def client(app: flask.Flask) -> Any:
    return app.test_client()


def stored_data(client: Any, store: Any) -> dict[str, Any]:
    session_id = unsign_cookie(client.get_cookie("session").value, SECRET)
    stored = store.get(session_id)
    record = decode_record(stored.payload)
    assert record is not None
    return record[1]


@pytest.mark.parametrize("name", sorted(VALUES))
def test_a_value_comes_back_as_flasks_own_session_gives_it(app, client, name):
    client.post(f"/set/{name}")
    client.get("/see")
    value = app.seen[name]
    assert value == VALUES[name][1]
    assert type(value) is type(VALUES[name][1])


def test_the_store_holds_flasks_tagged_json_never_pickle(client, store):
    for name in ("tuple", "bytes", "markup", "uuid", "datetime"):
        client.post(f"/set/{name}")
    data = stored_data(client, store)
    assert data == {
        "tuple": {" t": [1, "two"]},
        "bytes": {" b": "AP9yYXc="},
        "markup": {" m": "<b>bold</b>"},
        "uuid": {" u": ID.hex},
        "datetime": {" d": "Fri, 17 May 2024 12:30:05 GMT"},
    }
    json.dumps(data)  # plain JSON


def test_an_in_place_change_of_tagged_values_is_written_back_tagged(app, client, store):
    client.post("/append-to-tuple-list")
    client.get("/see")
    assert app.seen["pairs"] == [("a", 1), ("b", 2)]
    assert stored_data(client, store)["pairs"] == [{" t": ["a", 1]}, {" t": ["b", 2]}]


def test_update_session_writes_plain_json_that_flask_session_reads_as_it_is(app, client, store):
    client.post("/set/tuple")
    client.post("/plain-update")
    assert stored_data(client, store)["counts"] == [1, 2]
    assert client.get("/raw").json == {"tuple": {" t": [1, "two"]}, "counts": [1, 2]}
    client.get("/see")
    assert app.seen == {"tuple": (1, "two"), "counts": [1, 2]}


def test_flashed_markup_comes_back_as_markup_in_category_tuples(app, client):
    page = client.post("/flash", follow_redirects=True).text
    assert page == "info: <em>saved</em>"  # Markup: not escaped again
    assert app.seen == [("info", Markup("<em>saved</em>"))]
    assert type(app.seen[0][1]) is Markup


def test_a_value_no_tag_knows_is_still_a_type_error_naming_its_key(app, client):
    app.testing = True

    @app.post("/set-a-set")
    def set_a_set() -> str:
        flask.session["numbers"] = {1, 2}
        return "unreachable"

    with pytest.raises(TypeError, match="'numbers'"):
        client.post("/set-a-set")


@pytest.mark.parametrize(
    "tagged",
    [{" u": "not a uuid"}, {" t": 5}, {" d": 5}, {"outer": {" t": 1}}, {" b": 5}],
    ids=["uuid", "tuple", "datetime", "nested", "bytes"],
)
def test_a_tag_that_does_not_decode_reads_as_stored_never_a_500(app, client, store, caplog, tagged):
    """Row E12: a store may hold what someone else wrote; Flask's tags are not trusted to decode."""
    client.post("/plain-update")
    session_id = unsign_cookie(client.get_cookie("session").value, SECRET)
    store.set(session_id, encode_record(time.time(), json.dumps({"k": tagged})), 3600)
    with caplog.at_level(logging.WARNING, logger="wsgi_session"):
        assert client.get("/see").status_code == 200
    assert json.loads(json.dumps(app.seen["k"])) == tagged
    assert any("does not decode" in record.getMessage() for record in caplog.records)
