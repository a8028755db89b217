"""Beyond one mutex, asyncio API: hand-off, elections (async with lead, async for watch),
semaphores among many tasks, and lambda_lock with `async with`. The sync file covers each
behaviour in depth; these check that the awaitable forms behave the same."""

from __future__ import annotations

import asyncio
import time
from typing import Callable, List, Optional, Set

import pytest

import dynalease
from conftest import unique
from test_coordination import FakeContext, NoClock


async def eventually(condition: Callable[[], bool], timeout: float = 30.0, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not come true within {timeout} s")
        await asyncio.sleep(0.02)


@pytest.fixture
async def table(endpoint: str) -> str:
    name = unique("alocks")
    await dynalease.create_table_async(name, endpoint_url=endpoint)
    return name


def client(table: str, endpoint: str, **options: object) -> dynalease.AsyncLockClient:
    return dynalease.AsyncLockClient(table, endpoint_url=endpoint, **options)  # type: ignore[arg-type]


async def test_detach_resume_and_renew(table: str, endpoint: str) -> None:
    locks = client(table, endpoint)
    lock = await locks.acquire("job", timeout=10.0)
    await lock.update_data({"step": 1})
    before = lock.handle
    await lock.renew()
    assert lock.handle != before
    handle = await lock.detach()
    assert lock.status == "detached" and handle == lock.handle
    with pytest.raises(dynalease.LockLostError, match="detached"):
        await lock.release()

    resumed = await client(table, endpoint).resume(handle)
    assert isinstance(resumed, dynalease.AsyncLock)
    assert (resumed.fencing_token, resumed.data, resumed.status) == (lock.fencing_token, {"step": 1}, "held")
    await resumed.release()
    with pytest.raises(dynalease.LockLostError):
        await locks.resume(handle)
    with pytest.raises(dynalease.ConfigError, match="not a lock handle"):
        await locks.resume("nope")


async def test_a_resumed_lock_signals_its_loss(table: str, endpoint: str) -> None:
    handle = await (await client(table, endpoint, lease_duration=2.0).acquire("beat", timeout=10.0)).detach()
    resumed = await client(table, endpoint, lease_duration=1.0, heartbeat_period=0).resume(handle)
    assert await resumed.wait_lost(timeout=30.0) is True
    assert resumed.lost


async def test_a_detached_lock_in_async_with_is_left_held(table: str, endpoint: str) -> None:
    locks = client(table, endpoint)
    async with locks.lock("handed", timeout=10.0) as lock:
        handle = await lock.detach()
    assert await locks.try_acquire("handed") is None, "leaving the block released a handed-off lock"
    await (await locks.resume(handle)).release()


async def test_campaign_leader_lead_and_watch(table: str, endpoint: str) -> None:
    first = client(table, endpoint, owner="first").election("scheduler")
    second = client(table, endpoint, owner="second").election("scheduler")
    assert isinstance(first, dynalease.AsyncElection) and repr(first) == "AsyncElection(name='scheduler')"
    watch = client(table, endpoint).election("scheduler").watch(interval=0.05)
    assert isinstance(watch, dynalease.AsyncLeaderWatch)
    seen: List[Optional[dynalease.Leader]] = []

    async def follow() -> None:
        async for leader in watch:
            seen.append(leader)
            if len(seen) == 5:
                return

    follower = asyncio.ensure_future(follow())

    async def seen_at_least(count: int) -> None:
        await eventually(lambda: len(seen) >= count or follower.done(), what=f"{count} leaders seen")
        if follower.done() and follower.exception():
            raise follower.exception()  # type: ignore[misc]

    await seen_at_least(1)
    assert await first.leader() is None
    async with first.lead(data={"addr": "a"}, timeout=10.0) as term_a:
        assert await second.leader() == dynalease.Leader("first", term_a.fencing_token, {"addr": "a"})  # type: ignore[arg-type]
        with pytest.raises(dynalease.LockNotAcquiredError):
            await second.campaign(timeout=0.2)
        await seen_at_least(2)
    assert term_a.released
    await seen_at_least(3)
    term_b = await second.campaign(timeout=10.0)
    await seen_at_least(4)
    await term_b.release()
    await asyncio.wait_for(follower, 30.0)
    assert seen == [
        None,
        dynalease.Leader("first", term_a.fencing_token, {"addr": "a"}),  # type: ignore[arg-type]
        None,
        dynalease.Leader("second", term_b.fencing_token, None),  # type: ignore[arg-type]
        None,
    ]
    assert term_b.fencing_token > term_a.fencing_token  # type: ignore[operator]


async def test_a_leader_learns_its_term_ended(table: str, endpoint: str) -> None:
    frail = client(table, endpoint, lease_duration=1.0, heartbeat_period=0).election("fragile")
    term = await frail.campaign(timeout=10.0)
    assert await term.wait_lost(timeout=30.0) is True
    successor = client(table, endpoint, owner="successor").election("fragile")
    async with successor.lead(timeout=30.0) as next_term:
        assert next_term.fencing_token > term.fencing_token  # type: ignore[operator]


async def test_never_more_than_n_holders_among_tasks(table: str, endpoint: str) -> None:
    sem = client(table, endpoint).semaphore("pool", permits=3)
    assert isinstance(sem, dynalease.AsyncSemaphore) and (sem.name, sem.permits) == ("pool", 3)
    holding: Set[object] = set()
    most = 0

    async def work() -> None:
        nonlocal most
        for _ in range(3):
            async with sem.hold(timeout=120.0) as permit:
                assert permit.id not in holding, f"{permit.id} held twice at once"
                holding.add(permit.id)
                most = max(most, len(holding))
                await asyncio.sleep(0.02)
                holding.discard(permit.id)

    await asyncio.wait_for(asyncio.gather(*(work() for _ in range(10))), 240.0)
    assert 1 <= most <= 3
    assert await sem.holders() == []


async def test_try_acquire_holders_and_a_vanished_holder(table: str, endpoint: str) -> None:
    vanishing = client(table, endpoint, lease_duration=1.0, heartbeat_period=0).semaphore("two", permits=2)
    waiting = client(table, endpoint).semaphore("two", permits=2)
    first = await vanishing.acquire(timeout=10.0)
    second = await waiting.try_acquire()
    assert second is not None and await waiting.try_acquire() is None
    holders = await waiting.holders()
    assert sorted(f"two#{holder.permit}" for holder in holders) == sorted([first.id, second.id])
    taken = await waiting.acquire(timeout=30.0)  # the permit whose holder stopped renewing
    assert taken.id == first.id
    for permit in (taken, second):
        await permit.release()
    with pytest.raises(dynalease.ConfigError, match="permits is 4, but semaphore .* has 2 permits in the table"):
        await client(table, endpoint).semaphore("two", permits=4).try_acquire()


async def test_lambda_lock_ends_before_the_invocation(table: str, endpoint: str) -> None:
    locks = client(table, endpoint)
    other = client(table, endpoint)  # lease 10 s: taking the lock within 8 s proves a release
    with pytest.raises(dynalease.LockLostError, match="deadline"):
        async with locks.lambda_lock("order/7", FakeContext(2.5), margin=1.0) as lock:
            assert isinstance(lock, dynalease.AsyncLock)
            taken = await other.acquire("order/7", timeout=8.0)
            assert lock.lost
    await taken.release()

    async with locks.lambda_lock("order/8", FakeContext(60.0)) as kept:
        assert kept.status == "held"
    assert kept.released


async def test_lambda_lock_when_busy_or_misused(table: str, endpoint: str) -> None:
    locks = client(table, endpoint)
    held = await locks.acquire("busy", timeout=10.0)
    with pytest.raises(dynalease.LockNotAcquiredError):
        async with locks.lambda_lock("busy", FakeContext(60.0)):
            pytest.fail("entered a held lock")
    async def enter(context: object) -> None:
        async with locks.lambda_lock("free", context):
            pytest.fail("entered")

    with pytest.raises(TypeError, match="get_remaining_time_in_millis"):
        await enter(NoClock())
    with pytest.raises(dynalease.ConfigError, match="margin"):
        async with locks.lambda_lock("free", FakeContext(60.0), margin=-0.5):
            pytest.fail("entered")
    await held.release()
