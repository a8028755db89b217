"""client.stats() after real operations (memory:// and DynamoDB Local), and dynalease.emf():
CloudWatch embedded-metric-format lines, checked against the format's rules."""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any, Dict, List

import pytest

import dynalease
from conftest import unique

# The units CloudWatch accepts (its StandardUnit).
CLOUDWATCH_UNITS = {
    *"Seconds Microseconds Milliseconds Bytes Kilobytes Megabytes Gigabytes Terabytes Bits Kilobits".split(),
    *"Megabits Gigabits Terabits Percent Count None".split(),
    *[f"{unit}/Second" for unit in "Bytes Kilobytes Megabytes Gigabytes Terabytes Bits Kilobits Megabits Gigabits Terabits Count".split()],
}


def counters(stats: dynalease.Stats) -> Dict[str, int]:
    """The integer counts of a stats() dict (its names are the core's: read, not spelled here)."""
    return {name: value for name, value in stats.items() if type(value) is int}


def assert_all_zero(stats: dynalease.Stats) -> None:
    assert counters(stats) and all(value == 0 for value in counters(stats).values()), stats
    assert stats["read_units"] == 0.0 and stats["write_units"] == 0.0
    assert sum(stats["acquire_wait"]["counts"]) == 0 and stats["acquire_wait"]["sum_seconds"] == 0.0


def on_dynamodb(endpoint: str) -> bool:
    return not endpoint.startswith("memory://")


def test_a_new_client_counts_nothing_and_its_stats_are_a_plain_json_dict(locks: dynalease.LockClient) -> None:
    stats = locks.stats()
    assert type(stats) is dict
    assert_all_zero(stats)
    assert json.loads(json.dumps(stats)) == stats
    wait = stats["acquire_wait"]
    assert len(wait["counts"]) == len(wait["bounds_ms"]) + 1
    assert wait["bounds_ms"] == sorted(wait["bounds_ms"]) and wait["bounds_ms"][0] >= 1
    # Every count of the core is there, and the stub's TypedDict names the same keys.
    assert {"acquisitions", "heartbeats", "lost_lease_expired", "requests", "kv_reads", "cas_conflicts"} <= set(stats)
    assert set(dynalease.Stats.__annotations__) == set(stats)
    assert set(dynalease.AcquireWait.__annotations__) == set(wait)


def test_lock_operations_are_counted(locks: dynalease.LockClient, lock_table: str, endpoint: str) -> None:
    other = dynalease.LockClient(lock_table, endpoint_url=endpoint)
    lock = locks.acquire("job")
    assert other.try_acquire("job") is None
    with pytest.raises(dynalease.LockNotAcquiredError):
        other.acquire("job", timeout=0.3)
    lock.release()
    with other.lock("job", timeout=10.0):
        pass

    mine, theirs = locks.stats(), other.stats()
    assert (mine["acquisitions"], mine["releases"], mine["acquire_timeouts"]) == (1, 1, 0)
    assert mine["contended_attempts"] == 0 and mine["requests"] >= 2
    assert sum(mine["acquire_wait"]["counts"]) == 1 and mine["acquire_wait"]["sum_seconds"] >= 0.0
    # Each client counts its own work, though both share one transport.
    assert (theirs["acquisitions"], theirs["releases"], theirs["acquire_timeouts"]) == (1, 1, 1)
    assert theirs["contended_attempts"] >= 2, theirs
    assert theirs["requests"] > mine["requests"]
    if on_dynamodb(endpoint):
        assert mine["read_units"] >= 0.0 and mine["write_units"] > 0.0
        # A failed conditional write costs a write unit, which DynamoDB does not report: counted.
        assert theirs["write_units"] >= theirs["contended_attempts"]
    else:
        assert (mine["read_units"], mine["write_units"], theirs["read_units"], theirs["write_units"]) == (0.0,) * 4


def test_heartbeats_and_a_lease_that_ran_out_are_counted(lock_table: str, endpoint: str) -> None:
    beating = dynalease.LockClient(lock_table, endpoint_url=endpoint, lease_duration=5.0, heartbeat_period=0.05)
    lock = beating.acquire("beating")
    deadline = time.monotonic() + 30
    while beating.stats()["heartbeats"] < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    lock.release()
    assert beating.stats()["heartbeats"] >= 2 and beating.stats()["heartbeat_failures"] == 0

    # No heartbeats: the lock is lost when its lease runs out.
    silent = dynalease.LockClient(lock_table, endpoint_url=endpoint, lease_duration=0.3, heartbeat_period=0)
    lost = silent.acquire("silent")
    assert lost.wait_lost(timeout=30.0)
    # The core marks the lock lost, which wakes wait_lost, just before it counts the loss.
    deadline = time.monotonic() + 10
    while silent.stats()["lost_lease_expired"] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    stats = silent.stats()
    assert (stats["lost_lease_expired"], stats["lost_taken_over"], stats["heartbeats"]) == (1, 0, 0)


def test_kv_operations_and_conflicts_are_counted(kv: dynalease.KVStore, endpoint: str) -> None:
    first = kv.atomic_put("a", 1)
    kv.atomic_put("a", 2, previous=first)
    with pytest.raises(dynalease.KeyModifiedError):
        kv.atomic_put("a", 3, previous=first)
    with pytest.raises(dynalease.KeyExistsError):
        kv.atomic_put("a", 3)
    kv.put("b", {"x": 1})
    assert kv.get("a") is not None and kv.exists("b")
    assert [pair.key for pair in kv.list()] == ["a", "b"]
    assert kv.delete("b")

    stats = kv.stats()
    assert stats["kv_writes"] == 5 and stats["cas_conflicts"] == 2
    assert stats["kv_reads"] >= 1 and stats["kv_lists"] == 1 and stats["kv_deletes"] == 1
    assert stats["acquisitions"] == 0 and stats["requests"] >= 7
    if on_dynamodb(endpoint):
        assert stats["read_units"] > 0.0 and stats["write_units"] > 0.0
    else:
        assert stats["read_units"] == stats["write_units"] == 0.0


def test_elections_and_semaphores_count_in_their_client(locks: dynalease.LockClient) -> None:
    election = locks.election("leader")
    with election.lead():
        assert election.leader() is not None
    with locks.semaphore("pool", permits=2).hold():
        pass
    stats = locks.stats()
    assert stats["acquisitions"] == 2 and stats["releases"] == 2, stats


async def test_async_clients_have_the_same_stats(lock_table: str, kv_table: str, endpoint: str) -> None:
    locks = dynalease.AsyncLockClient(lock_table, endpoint_url=endpoint)
    kv = dynalease.AsyncKVStore(kv_table, partition=unique("ns"), endpoint_url=endpoint)
    assert_all_zero(locks.stats())
    async with locks.lock("job") as lock:
        await kv.put("k", 1, lock=lock)
        await asyncio.gather(kv.get("k"), kv.get("k"))
    assert locks.stats()["acquisitions"] == 1 and locks.stats()["releases"] == 1
    assert kv.stats()["kv_writes"] == 1 and kv.stats()["kv_reads"] == 2
    assert set(locks.stats()) == set(kv.stats())


def test_a_forked_child_counts_from_zero(lock_table: str, endpoint: str) -> None:
    locks = dynalease.LockClient(lock_table, endpoint_url=endpoint)
    locks.acquire("before-fork").release()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report what its copy of the client counted, then acquire once
        try:
            before = locks.stats()["acquisitions"]
            locks.acquire("in-child").release()
            os.write(write, json.dumps([before, locks.stats()["acquisitions"]]).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = json.loads(pipe.read() or "null")
    os.waitpid(pid, 0)
    assert child == [0, 1]
    assert locks.stats()["acquisitions"] == 1


# --- dynalease.emf ------------------------------------------------------------------------


def assert_valid_emf(line: str) -> Dict[str, Any]:
    """What the embedded metric format asks of a document: one JSON object on one line; an `_aws`
    member with an integer millisecond Timestamp and CloudWatchMetrics directives; each with a
    Namespace, dimension sets of at most 30 names that are string members of the document, and
    at most 100 metrics whose names are numeric members, with units CloudWatch knows."""
    assert "\n" not in line
    document = json.loads(line)
    assert isinstance(document, dict)
    meta = document["_aws"]
    assert isinstance(meta["Timestamp"], int) and abs(meta["Timestamp"] - time.time() * 1000) < 600_000
    assert isinstance(meta["CloudWatchMetrics"], list) and meta["CloudWatchMetrics"]
    for directive in meta["CloudWatchMetrics"]:
        assert set(directive) <= {"Namespace", "Dimensions", "Metrics"}
        assert isinstance(directive["Namespace"], str) and 1 <= len(directive["Namespace"]) <= 255
        for dimension_set in directive["Dimensions"]:
            assert isinstance(dimension_set, list) and len(dimension_set) <= 30
            for name in dimension_set:
                assert isinstance(document.get(name), str), f"dimension {name!r} has no string value"
        metrics: List[Dict[str, Any]] = directive["Metrics"]
        assert 1 <= len(metrics) <= 100
        names = [metric["Name"] for metric in metrics]
        assert len(names) == len(set(names)), "a metric is declared twice"
        for metric in metrics:
            assert set(metric) <= {"Name", "Unit", "StorageResolution"}
            value = document.get(metric["Name"])
            assert isinstance(value, (int, float)) and not isinstance(value, bool), metric
            assert metric.get("Unit", "None") in CLOUDWATCH_UNITS, metric
    return document


def declared(document: Dict[str, Any]) -> Dict[str, Any]:
    """Each declared metric's value."""
    metrics = document["_aws"]["CloudWatchMetrics"][0]["Metrics"]
    return {metric["Name"]: document[metric["Name"]] for metric in metrics}


def test_emf_publishes_every_count_of_a_client(locks: dynalease.LockClient) -> None:
    with locks.lock("job", timeout=10.0):
        pass
    line = dynalease.emf(locks, "Dynalease/Tests", {"Service": "orders", "Stage": "test"})
    document = assert_valid_emf(line)
    directive = document["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "Dynalease/Tests"
    assert directive["Dimensions"] == [["Service", "Stage"]]
    assert (document["Service"], document["Stage"]) == ("orders", "test")
    values = declared(document)
    stats = locks.stats()
    for name, count in counters(stats).items():
        assert values[name] == count, name
    assert values["read_units"] == stats["read_units"] and values["write_units"] == stats["write_units"]
    # The mean wait, when acquisitions waited in the period.
    assert "acquire_wait_mean_ms" in values and values["acquire_wait_mean_ms"] >= 0


def test_emf_since_an_earlier_snapshot_publishes_one_invocations_counts(locks: dynalease.LockClient, kv: dynalease.KVStore) -> None:
    locks.acquire("warm-up").release()
    kv.put("k", 0)

    def handler() -> List[str]:
        before_locks, before_kv = locks.stats(), kv.stats()
        with locks.lock("job", timeout=10.0) as lock:
            kv.put("k", 1, lock=lock)
        return [
            dynalease.emf(locks, "Orders", {"Client": "locks"}, since=before_locks),
            dynalease.emf(kv, "Orders", {"Client": "kv"}, since=before_kv),
        ]

    for _ in range(2):
        lock_line, kv_line = handler()
        lock_values, kv_values = declared(assert_valid_emf(lock_line)), declared(assert_valid_emf(kv_line))
        assert (lock_values["acquisitions"], lock_values["releases"], lock_values["kv_writes"]) == (1, 1, 0)
        assert (kv_values["kv_writes"], kv_values["acquisitions"]) == (1, 0)
        assert "acquire_wait_mean_ms" not in kv_values  # no acquisition waited: no mean to publish
    assert locks.stats()["acquisitions"] == 3


def test_emf_takes_stats_dicts_also_read_back_from_json(locks: dynalease.LockClient) -> None:
    before = json.loads(json.dumps(locks.stats()))
    locks.acquire("job").release()
    now = json.loads(json.dumps(locks.stats()))
    values = declared(assert_valid_emf(dynalease.emf(now, "Locks", since=before)))
    assert (values["acquisitions"], values["releases"]) == (1, 1)
    # No dimensions: one empty dimension set, so the metrics are published without any.
    document = json.loads(dynalease.emf(now, "Locks"))
    assert document["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [[]]


def test_emf_reads_back_every_counter_of_a_dict(locks: dynalease.LockClient) -> None:
    # Distinct values for every count the core lists: a counter the binding could not read back
    # would come out as 0 (or be refused), not as its value.
    stats: Dict[str, Any] = dict(locks.stats())
    for offset, name in enumerate(counters(locks.stats())):
        stats[name] = 1000 + offset
    stats["read_units"], stats["write_units"] = 1.5, 2.5
    stats["acquire_wait"] = dict(stats["acquire_wait"], sum_seconds=3.0)
    stats["acquire_wait"]["counts"] = [0] * (len(stats["acquire_wait"]["counts"]) - 1) + [6]
    values = declared(assert_valid_emf(dynalease.emf(stats, "Locks")))
    for name, count in counters(locks.stats()).items():
        assert values[name] == stats[name], name
    assert (values["read_units"], values["write_units"]) == (1.5, 2.5)
    assert values["acquire_wait_mean_ms"] == pytest.approx(500.0)


def test_emf_refuses_what_is_not_a_client_or_a_stats_dict(locks: dynalease.LockClient) -> None:
    stats = dict(locks.stats())
    with pytest.raises(TypeError, match="LockClient"):
        dynalease.emf("locks", "Locks")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="since must be a dict"):
        dynalease.emf(locks, "Locks", since=[1, 2])  # type: ignore[arg-type]
    missing = {key: value for key, value in stats.items() if key != "acquisitions"}
    with pytest.raises(dynalease.ConfigError, match='no "acquisitions"'):
        dynalease.emf(locks, "Locks", since=missing)
    with pytest.raises(dynalease.ConfigError, match="count >= 0"):
        dynalease.emf(dict(stats, releases=-1), "Locks")
    with pytest.raises(TypeError, match="must be an int"):
        dynalease.emf(dict(stats, releases="1"), "Locks")
    with pytest.raises(TypeError, match="dimensions"):
        dynalease.emf(locks, "Locks", {"Service": 7})  # type: ignore[dict-item]
    for taken in ["requests", "_aws"]:
        with pytest.raises(dynalease.ConfigError, match="also a metric's name"):
            dynalease.emf(locks, "Locks", {"Service": "orders", taken: "x"})
    wrong_bounds = dict(stats, acquire_wait=dict(stats["acquire_wait"], counts=[0]))
    with pytest.raises(dynalease.ConfigError, match="counts for"):
        dynalease.emf(locks, "Locks", since=wrong_bounds)
