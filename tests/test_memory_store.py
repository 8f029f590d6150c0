"""The in-process store: the store protocol, expiry on read, the size bound, threads."""

from __future__ import annotations

import threading

import pytest

from wsgi_session import SessionStore, SessionStoreError, StoredSession, create_memory_store
from wsgi_session.signing import new_session_id


@pytest.fixture
def memory():
    return create_memory_store()


def test_it_has_every_method_of_the_store_protocol(memory):
    protocol = {name for name in vars(SessionStore) if not name.startswith("_")}
    assert protocol == {"get", "set", "delete", "touch", "compare_and_set"}
    assert all(callable(getattr(memory, name)) for name in protocol)


def test_get_of_an_unknown_id_is_none(memory):
    assert memory.get(new_session_id()) is None


def test_set_then_get(memory):
    memory.set("a", '{"x":1}', 60)
    stored = memory.get("a")
    assert isinstance(stored, StoredSession)
    assert stored.payload == '{"x":1}'


def test_every_write_changes_the_version(memory):
    memory.set("a", "1", 60)
    first = memory.get("a").version
    memory.set("a", "1", 60)  # same payload, still a new write
    second = memory.get("a").version
    assert memory.compare_and_set("a", second, "2", 60)
    third = memory.get("a").version
    assert len({first, second, third}) == 3


def test_delete(memory):
    memory.set("a", "1", 60)
    memory.delete("a")
    memory.delete("a")  # absent: not an error
    assert memory.get("a") is None
    assert len(memory) == 0


def test_ttl_is_enforced_on_read(memory, clock):
    memory.set("a", "1", 60)
    clock.advance(59.9)
    assert memory.get("a") is not None
    clock.advance(0.1)
    assert memory.get("a") is None
    assert len(memory) == 0  # the expired entry is dropped as it is read


def test_touch_pushes_the_expiry(memory, clock):
    memory.set("a", "1", 60)
    version = memory.get("a").version
    clock.advance(50)
    memory.touch("a", 60)
    clock.advance(50)
    stored = memory.get("a")
    assert stored is not None
    assert stored.version == version  # a touch is not a write of the data
    clock.advance(10)
    assert memory.get("a") is None


def test_touch_never_revives_or_creates(memory, clock):
    memory.touch("missing", 60)
    assert memory.get("missing") is None
    memory.set("a", "1", 10)
    clock.advance(10)
    memory.touch("a", 60)
    assert memory.get("a") is None
    assert len(memory) == 0


def test_compare_and_set_with_the_current_version_writes(memory, clock):
    memory.set("a", "1", 60)
    version = memory.get("a").version
    assert memory.compare_and_set("a", version, "2", 100) is True
    assert memory.get("a").payload == "2"
    clock.advance(99)  # the new ttl applies
    assert memory.get("a") is not None


def test_compare_and_set_with_a_stale_version_writes_nothing(memory):
    memory.set("a", "1", 60)
    stale = memory.get("a").version
    memory.set("a", "2", 60)
    assert memory.compare_and_set("a", stale, "3", 60) is False
    assert memory.get("a").payload == "2"


def test_compare_and_set_of_a_missing_or_expired_record_is_false(memory, clock):
    assert memory.compare_and_set("missing", 1, "x", 60) is False
    assert memory.get("missing") is None
    memory.set("a", "1", 10)
    version = memory.get("a").version
    clock.advance(10)
    assert memory.compare_and_set("a", version, "2", 60) is False
    assert memory.get("a") is None


def test_compare_and_set_with_none_deletes_conditionally(memory):
    memory.set("a", "1", 60)
    stale = memory.get("a").version
    memory.set("a", "2", 60)
    assert memory.compare_and_set("a", stale, None, 60) is False
    assert memory.get("a").payload == "2"
    assert memory.compare_and_set("a", memory.get("a").version, None, 60) is True
    assert memory.get("a") is None


def test_full_of_live_sessions_it_refuses_a_new_one_and_keeps_every_live_one():
    memory = create_memory_store(max_entries=3)
    for key in "abc":
        memory.set(key, key, 60)
    with pytest.raises(SessionStoreError, match="max_entries"):
        memory.set("d", "d", 60)
    assert len(memory) == 3
    assert [memory.get(k).payload for k in "abc"] == ["a", "b", "c"]
    assert memory.get("d") is None


def test_an_expired_entry_behind_a_live_one_makes_room(clock):
    """A replaced ID's marker lives shorter than the sessions written before it."""
    memory = create_memory_store(max_entries=3)
    memory.set("a", "a", 60)
    memory.set("marker", "m", 5)
    memory.set("c", "c", 60)
    clock.advance(10)
    memory.set("d", "d", 60)
    assert {k for k in ["a", "marker", "c", "d"] if memory.get(k) is not None} == {"a", "c", "d"}


def test_rewriting_an_entry_of_a_full_store_evicts_nothing():
    memory = create_memory_store(max_entries=2)
    memory.set("a", "1", 60)
    memory.set("b", "1", 60)
    memory.set("b", "2", 60)
    assert memory.compare_and_set("a", memory.get("a").version, "2", 60)
    assert len(memory) == 2


def test_expired_entries_go_before_live_ones(clock):
    memory = create_memory_store(max_entries=2)
    memory.set("old", "1", 10)
    memory.set("live", "1", 60)
    clock.advance(20)
    memory.set("new", "1", 60)
    assert memory.get("live") is not None
    assert memory.get("new") is not None


@pytest.mark.parametrize("max_entries", [0, -1, True, 1.5, "10", None])
def test_max_entries_must_be_a_positive_integer(max_entries):
    with pytest.raises(ValueError, match="max_entries"):
        create_memory_store(max_entries=max_entries)


def test_max_entries_is_keyword_only():
    with pytest.raises(TypeError):
        create_memory_store(10)  # type: ignore[misc]


def test_concurrent_compare_and_set_increments_lose_nothing(memory):
    memory.set("counter", "0", 60)
    threads, increments = 8, 250

    def work():
        for _ in range(increments):
            while True:
                stored = memory.get("counter")
                if memory.compare_and_set("counter", stored.version, str(int(stored.payload) + 1), 60):
                    break

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert memory.get("counter").payload == str(threads * increments)


def test_concurrent_writes_keep_the_bound():
    memory = create_memory_store(max_entries=50)

    refused = []

    def work(prefix):
        for i in range(500):
            try:
                memory.set(f"{prefix}-{i}", "x", 60)
            except SessionStoreError:
                refused.append(i)
            memory.touch(f"{prefix}-{i // 2}", 60)
            memory.delete(f"{prefix}-{i // 3}")

    workers = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(memory) <= 50
    assert refused  # 8 x 500 writes outgrow the deletes: a full store refuses, never evicts
