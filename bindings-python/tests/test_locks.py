"""The sync lock API: acquire, contention, ids, fail-closed, lock data, lost leases."""

from __future__ import annotations

import threading
import time

import pytest

import dynalease
from conftest import unique


def test_acquire_release_and_fencing_tokens_rise(locks: dynalease.LockClient) -> None:
    first = locks.acquire("job-1", timeout=5.0)
    assert isinstance(first, dynalease.Lock)
    assert first.id == "job-1"
    assert not first.lost and not first.released and first.lost_reason is None
    first.check()
    token = first.fencing_token
    assert isinstance(token, int)
    first.release()
    assert first.released
    first.release()  # twice is a no-op
    with pytest.raises(dynalease.LockLostError):
        first.check()

    second = locks.acquire("job-1", timeout=5.0)
    assert second.fencing_token is not None and second.fencing_token > token
    second.release()


def test_try_acquire_and_timeout_while_held(locks: dynalease.LockClient) -> None:
    held = locks.acquire("busy")
    assert locks.try_acquire("busy") is None
    started = time.monotonic()
    with pytest.raises(dynalease.LockNotAcquiredError, match="busy"):
        locks.acquire("busy", timeout=0.3)
    assert time.monotonic() - started < 3.0
    held.release()
    again = locks.try_acquire("busy")
    assert again is not None
    again.release()


def test_release_wakes_a_waiter_in_this_process(locks: dynalease.LockClient) -> None:
    held = locks.acquire("handoff")
    threading.Timer(0.3, held.release).start()
    started = time.monotonic()
    lock = locks.acquire("handoff", timeout=5.0)
    assert 0.2 < time.monotonic() - started < 3.0
    lock.release()


def test_context_manager_releases(locks: dynalease.LockClient) -> None:
    with locks.lock("ctx", timeout=5.0) as lock:
        assert locks.try_acquire("ctx") is None
    assert lock.released
    other = locks.try_acquire("ctx")
    assert other is not None
    other.release()


def test_context_manager_never_swallows_the_blocks_exception(locks: dynalease.LockClient) -> None:
    with pytest.raises(ZeroDivisionError):
        with locks.lock("boom"):
            1 / 0
    again = locks.try_acquire("boom")
    assert again is not None
    again.release()


@pytest.mark.parametrize(
    "key_type, lock_ids",
    [("S", ["name", "ünïcode"]), ("N", [42, -3, 10**30]), ("B", [b"\x00bin", b"id"])],
)
def test_lock_ids_str_int_bytes(endpoint: str, key_type: str, lock_ids: list) -> None:
    table = unique(f"ids{key_type}")
    dynalease.create_table(table, partition_key_type=key_type, endpoint_url=endpoint)
    locks = dynalease.LockClient(table, endpoint_url=endpoint)
    for lock_id in lock_ids:
        lock = locks.acquire(lock_id, timeout=5.0)
        assert lock.id == lock_id
        assert type(lock.id) is type(lock_id)
        assert locks.try_acquire(lock_id) is None
        lock.release()


def test_numeric_ids_need_a_numeric_table(endpoint: str) -> None:
    table = unique("numlocks")
    dynalease.create_table(table, partition_key_type="N", endpoint_url=endpoint)
    locks = dynalease.LockClient(table, endpoint_url=endpoint)
    with locks.lock(7) as lock:
        assert lock.id == 7
    with pytest.raises(dynalease.TableError, match="key schema"):
        locks.acquire("not-a-number", timeout=1.0)


def test_sort_key_ids(endpoint: str) -> None:
    table = unique("sorted")
    dynalease.create_table(table, partition_key="tenant", sort_key="job", endpoint_url=endpoint)
    locks = dynalease.LockClient(table, partition_key="tenant", sort_key="job", endpoint_url=endpoint)
    assert locks.sort_key == "job"
    a = locks.acquire(("tenant-1", "job-7"), timeout=5.0)
    assert a.id == ("tenant-1", "job-7")
    # Same partition, other sort key: an independent lock.
    b = locks.acquire(("tenant-1", "job-8"), timeout=5.0)
    assert locks.try_acquire(("tenant-1", "job-7")) is None
    a.release()
    b.release()
    with pytest.raises(dynalease.ConfigError, match="sort key"):
        locks.acquire("tenant-1")
    plain = dynalease.LockClient(table, partition_key="tenant", endpoint_url=endpoint)
    with pytest.raises(dynalease.ConfigError, match="sort key"):
        plain.acquire(("tenant-1", "job-7"))
    with pytest.raises(dynalease.ConfigError, match="partition, sort"):
        locks.acquire(("a", "b", "c"))


@pytest.mark.parametrize("bad", [True, 1.5, None, ["x"]], ids=repr)
def test_lock_ids_of_other_types(locks: dynalease.LockClient, bad: object) -> None:
    with pytest.raises(TypeError, match="lock id must be str, int or bytes"):
        locks.acquire(bad, timeout=0.1)  # type: ignore[arg-type]


def test_empty_lock_id(locks: dynalease.LockClient) -> None:
    with pytest.raises(dynalease.ConfigError, match="empty"):
        locks.acquire("", timeout=0.1)


def test_bool_is_not_an_int_id(locks: dynalease.LockClient) -> None:
    with pytest.raises(TypeError, match="not bool"):
        locks.try_acquire(True)


def test_fail_closed(lock_table: str, endpoint: str) -> None:
    locks = dynalease.LockClient(lock_table, fail_closed=True, lease_duration=0.2, endpoint_url=endpoint)
    assert locks.fail_closed and locks.lease_duration is None and locks.heartbeat_period is None
    lock = locks.acquire("fc", timeout=5.0)
    assert lock.fencing_token is None
    # No lease: never taken over, however long a contender waits.
    with pytest.raises(dynalease.LockNotAcquiredError):
        locks.acquire("fc", timeout=0.6)
    assert not lock.lost
    lock.release()
    again = locks.acquire("fc", timeout=5.0)
    again.release()


def test_lock_data(locks: dynalease.LockClient) -> None:
    lock = locks.acquire("with-data")
    assert lock.data is None
    lock.update_data({"step": 1, "items": [1, 2]})
    assert lock.data == {"step": 1, "items": [1, 2]}
    lock.release(data={"step": 2, "done": True})
    assert lock.data == {"step": 2, "done": True}

    nxt = locks.acquire("with-data")
    assert nxt.data == {"step": 2, "done": True}
    nxt.release()

    with pytest.raises(dynalease.LockLostError):
        nxt.update_data("too late")
    with pytest.raises(dynalease.ConfigError, match="set"):
        locks.acquire("with-data").update_data({1, 2})


def test_heartbeats_keep_the_lock(lock_table: str, endpoint: str) -> None:
    locks = dynalease.LockClient(lock_table, lease_duration=0.6, endpoint_url=endpoint)
    assert locks.heartbeat_period == pytest.approx(0.2)
    other = dynalease.LockClient(lock_table, lease_duration=0.6, endpoint_url=endpoint)
    lock = locks.acquire("beating")
    with pytest.raises(dynalease.LockNotAcquiredError):
        other.acquire("beating", timeout=1.5)
    assert not lock.lost
    assert lock.wait_lost(timeout=0.1) is False
    lock.release()


def test_lost_lease_is_reported(lock_table: str, endpoint: str) -> None:
    """Short lease, no heartbeats, taken over by a second client: exiting the `with` raises
    LockLostError and the lock says it was lost."""
    holder = dynalease.LockClient(lock_table, lease_duration=0.5, heartbeat_period=0, endpoint_url=endpoint)
    assert holder.heartbeat_period is None
    contender = dynalease.LockClient(lock_table, lease_duration=5.0, endpoint_url=endpoint)
    reasons: list[str] = []
    called = threading.Event()

    def on_lost(reason: str) -> None:
        reasons.append(reason)
        called.set()

    with pytest.raises(dynalease.LockLostError, match="lost"):
        with holder.lock("contended") as lock:
            lock.on_lost(on_lost)
            taken = contender.acquire("contended", timeout=10.0)
            assert taken.fencing_token is not None and lock.fencing_token is not None
            assert taken.fencing_token > lock.fencing_token
            assert lock.wait_lost(timeout=5.0) is True
    assert lock.lost
    assert lock.lost_reason
    assert called.wait(5.0) and reasons
    with pytest.raises(dynalease.LockLostError):
        lock.release()
    # The new holder is unaffected.
    assert not taken.lost
    taken.release()


def test_an_expired_lease_nobody_took_is_released_and_still_reported_lost(lock_table: str, endpoint: str) -> None:
    holder = dynalease.LockClient(lock_table, lease_duration=0.3, heartbeat_period=0, endpoint_url=endpoint)
    with pytest.raises(dynalease.LockLostError):
        with holder.lock("expired") as lock:
            assert lock.wait_lost(timeout=5.0)
    # The exit released it (nobody had taken it over), and the loss is not forgotten.
    assert lock.released and lock.lost
    assert holder.try_acquire("expired") is not None


def test_lost_lease_never_hides_the_blocks_exception(lock_table: str, endpoint: str) -> None:
    holder = dynalease.LockClient(lock_table, lease_duration=0.3, heartbeat_period=0, endpoint_url=endpoint)
    with pytest.raises(KeyError):
        with holder.lock("x") as lock:
            assert lock.wait_lost(timeout=5.0)
            raise KeyError("mine")


def test_client_properties(lock_table: str, endpoint: str) -> None:
    locks = dynalease.LockClient(
        lock_table, lease_duration=9.0, owner="me@test", trust_local_time=True, endpoint_url=endpoint, region="eu-west-1"
    )
    assert locks.table == lock_table
    assert locks.partition_key == "id"
    assert locks.sort_key is None
    assert locks.lease_duration == 9.0
    assert locks.heartbeat_period == 3.0
    assert locks.owner == "me@test"
    assert locks.endpoint_url == endpoint
    assert locks.region == "eu-west-1"
    assert not locks.fail_closed
    assert repr(locks).startswith("LockClient(table=")
