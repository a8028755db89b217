"""The asyncio API: AsyncLockClient, AsyncLock, AsyncKVStore, create_table_async."""

from __future__ import annotations

import asyncio
import time

import pytest

import dynalease
from conftest import unique


@pytest.fixture
async def async_locks(endpoint: str) -> dynalease.AsyncLockClient:
    table = unique("alocks")
    await dynalease.create_table_async(table, endpoint_url=endpoint)
    return dynalease.AsyncLockClient(table, endpoint_url=endpoint)


@pytest.fixture
async def async_kv(endpoint: str) -> dynalease.AsyncKVStore:
    table = unique("akv")
    await dynalease.create_table_async(table, partition_key="pk", sort_key="sk", endpoint_url=endpoint)
    return dynalease.AsyncKVStore(table, partition="ns", endpoint_url=endpoint)


async def test_acquire_try_acquire_release(async_locks: dynalease.AsyncLockClient) -> None:
    lock = await async_locks.acquire("job", timeout=5.0)
    assert isinstance(lock, dynalease.AsyncLock)
    assert lock.id == "job" and isinstance(lock.fencing_token, int)
    assert await async_locks.try_acquire("job") is None
    with pytest.raises(dynalease.LockNotAcquiredError):
        await async_locks.acquire("job", timeout=0.2)
    await lock.update_data({"progress": 0.5})
    await lock.release(data={"progress": 1.0})
    assert lock.released
    again = await async_locks.try_acquire("job")
    assert again is not None and again.data == {"progress": 1.0}
    assert again.fencing_token is not None and again.fencing_token > lock.fencing_token  # type: ignore[operator]
    await again.release()


async def test_async_with(async_locks: dynalease.AsyncLockClient) -> None:
    async with async_locks.lock("ctx", timeout=5.0) as lock:
        assert not lock.released
        assert await async_locks.try_acquire("ctx") is None
    assert lock.released


async def test_calls_do_not_block_the_event_loop(async_locks: dynalease.AsyncLockClient) -> None:
    held = await async_locks.acquire("loop")
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.ensure_future(ticker())
    with pytest.raises(dynalease.LockNotAcquiredError):
        await async_locks.acquire("loop", timeout=0.5)
    task.cancel()
    assert ticks >= 10
    await held.release()


async def test_cancelling_a_wait(lock_table: str, endpoint: str) -> None:
    locks = dynalease.AsyncLockClient(lock_table, lease_duration=1.0, endpoint_url=endpoint)
    held = await locks.acquire("cancel")
    started = time.monotonic()
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(locks.acquire("cancel"), timeout=0.3)
    assert time.monotonic() - started < 2.0
    await held.release()
    # Cancellation reaches the Rust future asynchronously: if the release wins that race, the
    # cancelled waiter's write may still take the lock, with nobody to heartbeat it. The
    # contract is that it then frees itself within one lease (1 s here), never later.
    lock = await locks.acquire("cancel", timeout=5.0)
    await lock.release()


async def test_concurrent_acquirers_take_turns(async_locks: dynalease.AsyncLockClient) -> None:
    inside = 0
    most_inside = 0

    async def worker() -> None:
        nonlocal inside, most_inside
        async with async_locks.lock("turns", timeout=20.0):
            inside += 1
            most_inside = max(most_inside, inside)
            await asyncio.sleep(0.02)
            inside -= 1

    await asyncio.gather(*(worker() for _ in range(5)))
    assert most_inside == 1


async def test_lost_lease_async(endpoint: str) -> None:
    table = unique("alost")
    await dynalease.create_table_async(table, endpoint_url=endpoint)
    holder = dynalease.AsyncLockClient(table, lease_duration=0.4, heartbeat_period=0, endpoint_url=endpoint)
    contender = dynalease.AsyncLockClient(table, endpoint_url=endpoint)
    with pytest.raises(dynalease.LockLostError):
        async with holder.lock("x") as lock:
            taken = await contender.acquire("x", timeout=10.0)
            assert await lock.wait_lost(timeout=5.0) is True
    assert lock.lost
    assert await taken.wait_lost(timeout=0.05) is False
    await taken.release()


async def test_kv_async(async_kv: dynalease.AsyncKVStore, async_locks: dynalease.AsyncLockClient) -> None:
    assert await async_kv.get("a") is None
    pair = await async_kv.put("a", [1, 2])
    got = await async_kv.get("a")
    assert got == pair and got is not None and got.value == [1, 2]
    assert await async_kv.exists("a")
    created = await async_kv.atomic_put("b", "x")
    with pytest.raises(dynalease.KeyExistsError):
        await async_kv.atomic_put("b", "y")
    updated = await async_kv.atomic_put("b", "y", previous=created)
    with pytest.raises(dynalease.KeyModifiedError):
        await async_kv.atomic_put("b", "z", previous=created)
    assert [p.key for p in await async_kv.list("")] == ["a", "b"]
    await async_kv.atomic_delete("b", previous=updated)
    lock = await async_locks.acquire("kv")
    await async_kv.put("c", 1, ttl=60, lock=lock)
    assert await async_kv.delete("c", lock=lock) is True
    await lock.release()
    assert await async_kv.delete("a") is True
    assert await async_kv.list() == []


async def test_gather_many_kv_calls(async_kv: dynalease.AsyncKVStore) -> None:
    await asyncio.gather(*(async_kv.put(f"k{i:02}", i) for i in range(20)))
    listed = await async_kv.list("k")
    assert [p.value for p in listed] == list(range(20))
