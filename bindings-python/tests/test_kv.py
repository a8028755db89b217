"""The sync KV store: values, CAS, prefix listing, TTL, fenced writes."""

from __future__ import annotations

import time

import pytest

import dynalease
from conftest import unique


def test_put_get_exists_delete(kv: dynalease.KVStore) -> None:
    assert kv.get("a") is None
    assert not kv.exists("a")
    pair = kv.put("a", {"state": "idle"})
    assert isinstance(pair, dynalease.KVPair)
    assert (pair.key, pair.value) == ("a", {"state": "idle"})
    assert pair.expires is None
    got = kv.get("a")
    assert got == pair and got is not None and got.version == pair.version
    assert got.value is got.value
    assert kv.get("a", consistent=False) is not None or True  # eventually consistent: may lag
    assert kv.exists("a")
    assert kv.delete("a") is True
    assert kv.delete("a") is False
    assert kv.get("a") is None


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        False,
        0,
        -17,
        12345678901234567890123456789012345678,
        2.5,
        -0.1,
        1.5e-7,
        "text",
        "",
        b"\x00\xffbytes",
        [1, "two", [3.0, None]],
        {"nested": {"deep": [{"x": 1}]}, "flag": False},
    ],
    ids=repr,
)
def test_values_round_trip(kv: dynalease.KVStore, value: object) -> None:
    kv.put("v", value)
    got = kv.get("v")
    assert got is not None
    assert got.value == value
    assert type(got.value) is type(value)


def test_bool_stays_bool_and_tuple_becomes_list(kv: dynalease.KVStore) -> None:
    kv.put("t", {"flags": (True, 1, bytearray(b"ab"))})
    got = kv.get("t")
    assert got is not None
    assert got.value == {"flags": [True, 1, b"ab"]}
    assert type(got.value["flags"][0]) is bool and type(got.value["flags"][1]) is int


def test_integral_floats_compare_equal(kv: dynalease.KVStore) -> None:
    # DynamoDB normalizes numbers ("2.0" is stored as 2), so an integral float may read back as
    # an int: always equal, not always the same type (documented on KVStore).
    kv.put("f", [2.0, 1e20])
    got = kv.get("f")
    assert got is not None and got.value == [2.0, 1e20]


def test_atomic_put_and_delete(kv: dynalease.KVStore) -> None:
    created = kv.atomic_put("counter", 1)
    with pytest.raises(dynalease.KeyExistsError, match="counter"):
        kv.atomic_put("counter", 99)
    updated = kv.atomic_put("counter", 2, previous=created)
    assert updated.version != created.version
    with pytest.raises(dynalease.KeyModifiedError):
        kv.atomic_put("counter", 3, previous=created)
    with pytest.raises(dynalease.KeyModifiedError):
        kv.atomic_delete("counter", previous=created)
    got = kv.get("counter")
    assert got is not None and got.value == 2
    kv.atomic_delete("counter", previous=updated)
    assert kv.get("counter") is None
    with pytest.raises(dynalease.KeyNotFoundError):
        kv.atomic_put("counter", 4, previous=updated)
    with pytest.raises(dynalease.KeyNotFoundError):
        kv.atomic_delete("counter", previous=updated)
    with pytest.raises(dynalease.ConfigError, match="previous"):
        kv.atomic_put("other", 1, previous=updated)
    with pytest.raises(TypeError, match="KVPair"):
        kv.atomic_put("counter", 1, previous={"version": 1})  # type: ignore[arg-type]


def test_hand_made_pair_as_previous(kv: dynalease.KVStore) -> None:
    pair = kv.put("k", "v")
    by_hand = dynalease.KVPair("k", "v", pair.version)
    assert by_hand == pair
    assert repr(by_hand) == f"KVPair(key='k', value='v', version={pair.version})"
    kv.atomic_put("k", "w", previous=by_hand)


def test_list_by_prefix(kv: dynalease.KVStore) -> None:
    for key in ["agents/2", "agents/1", "tasks/1", "agents/10"]:
        kv.put(key, key.upper())
    listed = kv.list("agents/")
    assert [p.key for p in listed] == ["agents/1", "agents/10", "agents/2"]
    assert [p.value for p in listed] == ["AGENTS/1", "AGENTS/10", "AGENTS/2"]
    assert [p.key for p in kv.list()] == ["agents/1", "agents/10", "agents/2", "tasks/1"]
    assert kv.list("nothing/") == []


def test_stores_are_namespaced_by_partition(kv_table: str, endpoint: str) -> None:
    a = dynalease.KVStore(kv_table, partition="a", endpoint_url=endpoint)
    b = dynalease.KVStore(kv_table, partition="b", endpoint_url=endpoint)
    a.put("k", 1)
    assert b.get("k") is None
    assert [p.key for p in a.list()] == ["k"] and b.list() == []
    assert a.table == kv_table and a.partition == "a"


def test_ttl_hides_expired_keys(kv: dynalease.KVStore) -> None:
    pair = kv.put("short", "lived", ttl=1)
    assert pair.expires is not None and pair.expires >= int(time.time())
    assert kv.get("short") is not None
    deadline = time.monotonic() + 5.0
    while kv.get("short") is not None:
        assert time.monotonic() < deadline, "a key with ttl=1 was still visible after 5 s"
        time.sleep(0.1)
    assert not kv.exists("short")
    assert kv.list("sh") == []
    # An expired key can be created again.
    kv.atomic_put("short", "again")


def test_fenced_writes(kv: dynalease.KVStore, lock_table: str, endpoint: str) -> None:
    holder = dynalease.LockClient(lock_table, lease_duration=0.5, heartbeat_period=0, endpoint_url=endpoint)
    contender = dynalease.LockClient(lock_table, endpoint_url=endpoint)
    lock = holder.acquire("fence")
    kv.put("f", 1, lock=lock)
    pair = kv.atomic_put("g", 1, lock=lock)
    assert kv.delete("f", lock=lock) is True
    taken = contender.acquire("fence", timeout=10.0)
    with pytest.raises(dynalease.LockLostError):
        kv.put("f", 2, lock=lock)
    with pytest.raises(dynalease.LockLostError):
        kv.atomic_put("g", 2, previous=pair, lock=lock)
    with pytest.raises(dynalease.LockLostError):
        kv.atomic_delete("g", previous=pair, lock=lock)
    assert kv.get("f") is None
    got = kv.get("g")
    assert got is not None and got.value == 1
    kv.put("f", 3, lock=taken)
    taken.release()
    with pytest.raises(TypeError, match="Lock"):
        kv.put("f", 1, lock="not a lock")  # type: ignore[arg-type]
