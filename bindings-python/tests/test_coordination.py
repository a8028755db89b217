"""Beyond one mutex, sync API: hand-off (detach / resume / renew / handle), leader election,
counting semaphores and locks bounded by a Lambda invocation (lambda_lock, acquire_within).

Every test that takes `endpoint` runs on DynamoDB Local and on `memory://`. Waits poll for the
condition with generous timeouts; the only durations asserted are those that prove which
mechanism freed a lock (a release, not a lease running out)."""

from __future__ import annotations

import gc
import pickle
import subprocess
import sys
import threading
import time
from typing import Callable, List, Optional, Set

import pytest

import dynalease
from conftest import unique


def wait_until(condition: Callable[[], bool], timeout: float = 30.0, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not come true within {timeout} s")
        time.sleep(0.02)


class FakeContext:
    """What AWS Lambda passes a handler, as far as lambda_lock asks: the time left."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds
        self.calls = 0

    def get_remaining_time_in_millis(self) -> int:
        self.calls += 1
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def client(table: str, endpoint: str, **options: object) -> dynalease.LockClient:
    return dynalease.LockClient(table, endpoint_url=endpoint, **options)  # type: ignore[arg-type]


# --- hand-off ------------------------------------------------------------------------------


def test_detach_then_resume_in_another_client(
    locks: dynalease.LockClient, lock_table: str, endpoint: str, kv: dynalease.KVStore
) -> None:
    lock = locks.acquire("job", timeout=10.0)
    lock.update_data({"step": 1})
    handle = lock.detach()
    assert isinstance(handle, str) and handle == lock.handle
    assert lock.status == "detached" and "status=detached" in repr(lock)
    assert not lock.lost and not lock.released and lock.lost_reason is None
    assert locks.try_acquire("job") is None, "a detached lock stays held"

    resumed = client(lock_table, endpoint).resume(handle)
    assert isinstance(resumed, dynalease.Lock) and resumed.status == "held"
    assert (resumed.id, resumed.fencing_token, resumed.data) == ("job", lock.fencing_token, {"step": 1})
    # A resumed lock is a lock like any other: data, fenced writes, release.
    resumed.update_data({"step": 2})
    kv.put("report", "written by the second process", lock=resumed)
    with pytest.raises(dynalease.LockLostError):
        kv.put("report", "written by the first", lock=lock)
    resumed.release()
    assert resumed.released and resumed.status == "released"

    again = locks.try_acquire("job")
    assert again is not None and again.data == {"step": 2}
    assert again.fencing_token is not None and again.fencing_token > resumed.fencing_token  # type: ignore[operator]
    again.release()


def test_a_detached_lock_refuses_to_act_and_dropping_it_releases_nothing(
    locks: dynalease.LockClient, kv: dynalease.KVStore
) -> None:
    lock = locks.acquire("job", timeout=10.0)
    handle = lock.detach()
    refused: List[Callable[[], object]] = [
        lock.release,
        lambda: lock.update_data({"x": 1}),
        lock.renew,
        lock.detach,
        lambda: kv.put("k", 1, lock=lock),
    ]
    for act in refused:
        with pytest.raises(dynalease.LockLostError, match="detached"):
            act()
    with pytest.raises(dynalease.LockLostError, match="detached"):
        lock.check()
    assert lock.wait_lost(timeout=0.05) is False, "detaching is not losing"
    del lock, refused
    gc.collect()
    resumed = locks.resume(handle)  # still held under the handle: nothing released it
    resumed.release()


def test_renew_rotates_the_handle(locks: dynalease.LockClient) -> None:
    lock = locks.acquire("job", timeout=10.0)
    first = lock.handle
    lock.renew()
    assert lock.handle != first
    with pytest.raises(dynalease.LockLostError, match="handle"):
        locks.resume(first)  # it names a guid the item no longer carries
    assert lock.status == "held", "a failed resume of an old handle does not disturb the holder"
    lock.release()


def test_resuming_a_released_or_taken_over_lock_raises(locks: dynalease.LockClient, lock_table: str, endpoint: str) -> None:
    handle = locks.acquire("released", timeout=10.0).detach()
    locks.resume(handle).release()
    with pytest.raises(dynalease.LockLostError) as gone:
        locks.resume(handle)
    assert gone.value.lock_id == "released"

    short = client(lock_table, endpoint, lease_duration=1.0)
    handle = short.acquire("abandoned", timeout=10.0).detach()
    # Nobody renews it: after its lease (the item's 1 s) another client takes over.
    taken = locks.acquire("abandoned", timeout=30.0)
    with pytest.raises(dynalease.LockLostError):
        locks.resume(handle)
    taken.release()


def test_resume_renews_a_lease_that_ran_out_when_nobody_took_over(lock_table: str, endpoint: str) -> None:
    short = client(lock_table, endpoint, lease_duration=0.3)
    handle = short.acquire("late", timeout=10.0).detach()
    time.sleep(0.6)  # the lease runs out (by the item's clock), and nobody takes over
    resumed = client(lock_table, endpoint, lease_duration=10.0).resume(handle)
    assert resumed.status == "held"
    resumed.release()


def test_resumed_lock_heartbeats_and_signals_its_loss(lock_table: str, endpoint: str) -> None:
    original = client(lock_table, endpoint, lease_duration=2.0).acquire("beat", timeout=10.0)
    handle = original.detach()
    # heartbeat_period=0: nothing renews the resumed lock, so it is lost when the lease in its
    # item runs out.
    frail = client(lock_table, endpoint, lease_duration=1.0, heartbeat_period=0)
    resumed = frail.resume(handle)
    lost = threading.Event()
    resumed.on_lost(lambda reason: lost.set())
    assert resumed.wait_lost(timeout=30.0) is True
    assert lost.wait(30.0)
    assert resumed.lost and resumed.lost_reason

    # With heartbeats (the first at once), a resumed lock renews its lease: each renewal writes
    # a new guid, so the handle changes.
    steady = client(lock_table, endpoint)
    handle = steady.acquire("steady", timeout=10.0).detach()
    kept = steady.resume(handle)
    wait_until(lambda: kept.handle != handle, what="a heartbeat of the resumed lock")
    assert kept.status == "held"
    kept.release()


def test_fail_closed_locks_hand_off(lock_table: str, endpoint: str, locks: dynalease.LockClient) -> None:
    closed = client(lock_table, endpoint, fail_closed=True)
    lock = closed.acquire("closed", timeout=10.0)
    handle = lock.detach()
    assert lock.status == "detached"
    with pytest.raises(dynalease.ConfigError, match="fail-closed"):
        locks.resume(handle)  # a fail-open client cannot take up a fail-closed lock
    resumed = client(lock_table, endpoint, fail_closed=True).resume(handle)
    assert resumed.fencing_token is None and closed.try_acquire("closed") is None
    with pytest.raises(dynalease.ConfigError, match="fail-closed lock has no lease"):
        resumed.renew()
    resumed.release()
    again = closed.try_acquire("closed")
    assert again is not None
    again.release()


def test_what_is_not_a_handle(locks: dynalease.LockClient, endpoint: str) -> None:
    with pytest.raises(dynalease.ConfigError, match="not a lock handle"):
        locks.resume("not a handle")
    with pytest.raises(TypeError):
        locks.resume(7)  # type: ignore[arg-type]
    lock = locks.acquire("job", timeout=10.0)
    with pytest.raises(dynalease.ConfigError, match="resume it with a client of that table"):
        client(unique("other-table"), endpoint).resume(lock.handle)
    lock.release()


RESUME_AND_RELEASE = """
import sys, dynalease
table, endpoint, handle = sys.argv[1:]
locks = dynalease.LockClient(table, endpoint_url=endpoint)
lock = locks.resume(handle)
print("resumed", lock.fencing_token, lock.data["from"], flush=True)
lock.release(data={"from": "child"})
print("released", flush=True)
"""


def test_resume_and_release_in_another_process(ddb_endpoint: str, ddb_lock_table: str) -> None:
    locks = dynalease.LockClient(ddb_lock_table, endpoint_url=ddb_endpoint)
    lock = locks.acquire("cross-process", timeout=10.0)
    lock.update_data({"from": "parent"})
    handle = lock.detach()
    child = subprocess.run(
        [sys.executable, "-c", RESUME_AND_RELEASE, ddb_lock_table, ddb_endpoint, handle],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 0, child.stderr
    assert child.stdout.split("\n")[:2] == [f"resumed {lock.fencing_token} parent", "released"]
    again = locks.try_acquire("cross-process")
    assert again is not None, "the child's release freed the lock"
    assert again.data == {"from": "child"}
    again.release()


# --- elections ------------------------------------------------------------------------------


def test_campaign_leader_and_resign(lock_table: str, endpoint: str) -> None:
    ours = client(lock_table, endpoint, owner="candidate-a").election("scheduler")
    rival = client(lock_table, endpoint, owner="candidate-b").election("scheduler")
    assert isinstance(ours, dynalease.Election) and ours.name == "scheduler"
    assert repr(ours) == "Election(name='scheduler')"
    assert ours.leader() is None

    term = ours.campaign(data={"addr": "10.0.0.7"}, timeout=10.0)
    assert isinstance(term, dynalease.Lock) and isinstance(term.fencing_token, int)
    leader = rival.leader()
    assert leader == dynalease.Leader("candidate-a", term.fencing_token, {"addr": "10.0.0.7"})
    assert (leader.owner, leader.term, leader.data) == ("candidate-a", term.fencing_token, {"addr": "10.0.0.7"})
    assert "candidate-a" in repr(leader) and str(term.fencing_token) in repr(leader)
    assert pickle.loads(pickle.dumps(leader)) == leader and hash(leader) == hash(pickle.loads(pickle.dumps(leader)))
    with pytest.raises(dynalease.LockNotAcquiredError):
        rival.campaign(timeout=0.2)

    term.release()  # resigning
    assert ours.leader() is None
    next_term = rival.campaign(timeout=10.0)
    assert next_term.fencing_token is not None and next_term.fencing_token > term.fencing_token
    assert ours.leader() == dynalease.Leader("candidate-b", next_term.fencing_token, None)
    next_term.release()


def test_lead_resigns_on_exit_also_when_the_block_raises(locks: dynalease.LockClient) -> None:
    election = locks.election("ctx")
    with election.lead(data="me", timeout=10.0) as term:
        leader = election.leader()
        assert leader is not None and (leader.term, leader.data) == (term.fencing_token, "me")
    assert term.released and election.leader() is None

    terms: List[dynalease.Lock] = []
    with pytest.raises(RuntimeError, match="crashed"):
        with election.lead() as crashed:
            terms.append(crashed)
            raise RuntimeError("crashed")
    assert terms[0].released and election.leader() is None


def test_a_watcher_sees_each_term_in_order(lock_table: str, endpoint: str) -> None:
    first = client(lock_table, endpoint, owner="first").election("watched")
    second = client(lock_table, endpoint, owner="second").election("watched")
    watch = client(lock_table, endpoint).election("watched").watch(interval=0.05)
    assert isinstance(watch, dynalease.LeaderWatch) and watch.interval == 0.05
    seen: List[Optional[dynalease.Leader]] = []
    changed = threading.Condition()
    failures: List[BaseException] = []

    def follow() -> None:
        try:
            for leader in watch:
                with changed:
                    seen.append(leader)
                    changed.notify_all()
                if len(seen) == 5:
                    return
        except BaseException as error:  # reported by the assertion below
            failures.append(error)
            with changed:
                changed.notify_all()

    def wait_for(count: int) -> None:
        with changed:
            assert changed.wait_for(lambda: len(seen) >= count or bool(failures), timeout=30.0), seen
        assert not failures, failures

    follower = threading.Thread(target=follow, daemon=True)
    follower.start()
    wait_for(1)
    # Each term is held until the watcher has seen it: a term shorter than an interval may be
    # missed (by design), and this test is about order, not speed.
    term_a = first.campaign(data="a", timeout=10.0)
    wait_for(2)
    term_a.release()
    wait_for(3)
    term_b = second.campaign(data="b", timeout=10.0)
    wait_for(4)
    term_b.release()
    wait_for(5)
    follower.join(30.0)
    assert seen == [
        None,
        dynalease.Leader("first", term_a.fencing_token, "a"),  # type: ignore[arg-type]
        None,
        dynalease.Leader("second", term_b.fencing_token, "b"),  # type: ignore[arg-type]
        None,
    ]


def test_a_leader_learns_its_term_ended(lock_table: str, endpoint: str) -> None:
    # No heartbeats: the leader's lease runs out, as a frozen or partitioned leader's would.
    frail = client(lock_table, endpoint, lease_duration=1.0, heartbeat_period=0, owner="frail")
    term = frail.election("fragile").campaign(timeout=10.0)
    ended = threading.Event()
    term.on_lost(lambda reason: ended.set())
    assert term.wait_lost(timeout=30.0) is True
    assert ended.wait(30.0)
    with pytest.raises(dynalease.LockLostError):
        term.check()

    successor = client(lock_table, endpoint, owner="successor").election("fragile")
    next_term = successor.campaign(timeout=30.0)  # takes over after the dead term's 1 s lease
    assert next_term.fencing_token is not None and next_term.fencing_token > term.fencing_token  # type: ignore[operator]
    leader = successor.leader()
    assert leader is not None and leader.owner == "successor"
    with pytest.raises(dynalease.LockLostError):
        term.release()
    next_term.release()


def test_election_arguments(locks: dynalease.LockClient, lock_table: str, endpoint: str) -> None:
    with pytest.raises(dynalease.ConfigError, match="elections need fail-open locks"):
        client(lock_table, endpoint, fail_closed=True).election("x")
    with pytest.raises(TypeError, match="election name must be str, int or bytes, not list"):
        locks.election(["x"])  # type: ignore[arg-type]
    with pytest.raises(dynalease.ConfigError, match="empty"):
        locks.election("")
    election = locks.election("args")
    with pytest.raises(dynalease.ConfigError, match="timeout must be a finite number"):
        election.campaign(timeout=-1)
    with pytest.raises(dynalease.ConfigError, match="cannot be stored"):
        election.campaign(data=object())
    with pytest.raises(dynalease.ConfigError, match="interval must be a finite number"):
        election.watch(interval=-1)
    with pytest.raises(TypeError):
        election.watch(interval="1")  # type: ignore[arg-type]
    assert election.leader() is None, "nothing was written"


# --- semaphores -----------------------------------------------------------------------------


def test_never_more_than_n_holders_among_threads(locks: dynalease.LockClient) -> None:
    sem = locks.semaphore("pool", permits=3)
    guard = threading.Lock()
    holding: Set[object] = set()
    most = 0
    failures: List[BaseException] = []

    def work() -> None:
        nonlocal most
        try:
            for _ in range(3):
                with sem.hold(timeout=120.0) as permit:
                    with guard:
                        assert permit.id not in holding, f"{permit.id} held twice at once"
                        holding.add(permit.id)
                        most = max(most, len(holding))
                    time.sleep(0.02)
                    with guard:
                        holding.discard(permit.id)
        except BaseException as error:
            failures.append(error)

    workers = [threading.Thread(target=work) for _ in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(240.0)
    assert not failures, failures
    assert 1 <= most <= 3
    assert sem.holders() == []


def test_try_acquire_when_full_and_holders(locks: dynalease.LockClient) -> None:
    sem = locks.semaphore("exports", permits=2)
    assert (sem.name, sem.permits, repr(sem)) == ("exports", 2, "Semaphore(name='exports', permits=2)")
    first = sem.try_acquire()
    second = sem.acquire(timeout=10.0)
    assert first is not None and isinstance(second, dynalease.Lock)
    assert {first.id, second.id} == {"exports#0", "exports#1"}
    assert sem.try_acquire() is None
    with pytest.raises(dynalease.LockNotAcquiredError, match="permits"):
        sem.acquire(timeout=0.2)

    first.update_data({"file": "a.csv"})
    holders = sem.holders()
    assert [holder.permit for holder in holders] == [0, 1]
    mine = next(holder for holder in holders if f"exports#{holder.permit}" == first.id)
    assert mine == dynalease.PermitHolder(mine.permit, locks.owner, first.fencing_token, {"file": "a.csv"})
    assert "a.csv" in repr(mine) and pickle.loads(pickle.dumps(mine)) == mine

    first.release()
    assert [f"exports#{holder.permit}" for holder in sem.holders()] == [second.id]
    third = sem.try_acquire()
    assert third is not None and third.id == first.id
    assert third.fencing_token is not None and third.fencing_token > first.fencing_token  # type: ignore[operator]
    third.release()
    second.release()


def test_a_vanished_holders_permit_is_taken_after_its_lease(lock_table: str, endpoint: str) -> None:
    # No heartbeats and nobody releasing: the holder's lease just runs out, as if its process
    # had been frozen or killed.
    vanishing = client(lock_table, endpoint, lease_duration=1.0, heartbeat_period=0)
    permit = vanishing.semaphore("single", permits=1).acquire(timeout=10.0)
    waiting = client(lock_table, endpoint).semaphore("single", permits=1)
    assert waiting.try_acquire() is None, "a permit whose lease has not been waited out is not free"
    taken = waiting.acquire(timeout=30.0)
    assert taken.id == permit.id and taken.fencing_token > permit.fencing_token  # type: ignore[operator]
    assert permit.wait_lost(timeout=30.0)
    taken.release()


def test_every_client_must_count_the_same_permits(locks: dynalease.LockClient, lock_table: str, endpoint: str) -> None:
    locks.semaphore("counted", permits=3).try_acquire().release()  # type: ignore[union-attr]
    with pytest.raises(dynalease.ConfigError, match="permits is 5, but semaphore .* has 3 permits in the table: every client must pass the same number"):
        client(lock_table, endpoint).semaphore("counted", permits=5).acquire(timeout=1.0)


def test_semaphore_arguments(locks: dynalease.LockClient, lock_table: str, endpoint: str) -> None:
    for permits in (0, 101, -1, 10**30):
        with pytest.raises(dynalease.ConfigError, match=f"permits must be 1 to 100, not {permits}"):
            locks.semaphore("x", permits=permits)
    for permits in ("3", 2.0, True, None):
        with pytest.raises(TypeError, match="permits must be an int"):
            locks.semaphore("x", permits=permits)  # type: ignore[arg-type]
    with pytest.raises(dynalease.ConfigError, match="semaphore's name must be a string"):
        locks.semaphore(7, permits=1)
    with pytest.raises(TypeError, match="semaphore name must be str"):
        locks.semaphore(["x"], permits=1)  # type: ignore[arg-type]
    with pytest.raises(dynalease.ConfigError, match="semaphores need fail-open locks"):
        client(lock_table, endpoint, fail_closed=True).semaphore("x", permits=2)
    with pytest.raises(dynalease.ConfigError, match="timeout must be a finite number"):
        locks.semaphore("x", permits=2).acquire(timeout=float("nan"))


# --- locks bounded by a Lambda invocation ----------------------------------------------------


def test_a_lambda_lock_is_let_go_before_the_invocation_ends(
    locks: dynalease.LockClient, lock_table: str, endpoint: str, kv: dynalease.KVStore
) -> None:
    context = FakeContext(2.5)
    # Its lease is 10 s: taking the lock within 8 s proves it was released, not waited out.
    other = client(lock_table, endpoint)
    ended = threading.Event()
    with pytest.raises(dynalease.LockLostError, match="deadline"):
        with locks.lambda_lock("order/7", context, margin=1.0) as lock:
            assert context.calls == 1
            lock.on_lost(lambda reason: ended.set())
            kv.put("order/7", "fenced while held", lock=lock)
            assert other.try_acquire("order/7") is None
            taken = other.acquire("order/7", timeout=8.0)
            assert ended.wait(30.0), "the lost callback did not run"
            assert lock.lost
            with pytest.raises(dynalease.LockLostError):
                lock.check()
            with pytest.raises(dynalease.LockLostError):
                kv.put("order/7", "fenced after the end", lock=lock)
    # Leaving the block raised the loss (its work ran past the end) and released nothing more.
    assert context.calls == 1
    assert taken.status == "held"
    taken.release()


def test_a_lambda_lock_released_on_exit(locks: dynalease.LockClient) -> None:
    with locks.lambda_lock("job", FakeContext(60.0)) as lock:
        assert lock.status == "held" and isinstance(lock.fencing_token, int)
    assert lock.released and lock.status == "released"
    again = locks.try_acquire("job")
    assert again is not None
    again.release()


def test_a_busy_lambda_lock(locks: dynalease.LockClient) -> None:
    held = locks.acquire("busy", timeout=10.0)
    started = time.monotonic()
    with pytest.raises(dynalease.LockNotAcquiredError):
        with locks.lambda_lock("busy", FakeContext(60.0)):
            pytest.fail("entered a held lock")
    assert time.monotonic() - started < 10.0, "timeout=0.0 makes one attempt"
    with pytest.raises(dynalease.LockNotAcquiredError, match="margin"):
        with locks.lambda_lock("free", FakeContext(0.5), margin=1.0):
            pytest.fail("entered with no time left")

    threading.Timer(0.2, held.release).start()
    with locks.lambda_lock("busy", FakeContext(60.0), timeout=30.0) as lock:
        assert lock.fencing_token > held.fencing_token  # type: ignore[operator]
    assert lock.released


def test_acquire_within_a_budget(locks: dynalease.LockClient) -> None:
    lock = locks.acquire_within("budget", remaining=2.0, margin=1.0)
    assert lock.wait_lost(timeout=30.0) is True
    wait_until(lambda: lock.released, what="the release at the deadline")
    again = locks.try_acquire("budget")
    assert again is not None
    again.release()


class NoClock:
    pass


class TextClock:
    def get_remaining_time_in_millis(self) -> str:
        return "30000"


def test_lambda_lock_arguments(locks: dynalease.LockClient) -> None:
    def enter(context: object, **options: object) -> None:
        with locks.lambda_lock("checked", context, **options):  # type: ignore[arg-type]
            pytest.fail("entered")

    with pytest.raises(TypeError, match="get_remaining_time_in_millis"):
        enter(NoClock())
    with pytest.raises(TypeError, match="get_remaining_time_in_millis"):
        enter(None)
    with pytest.raises(TypeError, match="must return a number of milliseconds, not str"):
        enter(TextClock())
    with pytest.raises(dynalease.ConfigError, match="returned nan"):
        enter(type("NaNClock", (), {"get_remaining_time_in_millis": lambda self: float("nan")})())
    with pytest.raises(dynalease.ConfigError, match="margin must be a finite number of seconds >= 0"):
        enter(FakeContext(60.0), margin=-1.0)
    with pytest.raises(dynalease.ConfigError, match="margin must be a finite number"):
        enter(FakeContext(60.0), margin=float("inf"))
    with pytest.raises(dynalease.ConfigError, match="timeout must be a finite number"):
        enter(FakeContext(60.0), timeout=float("nan"))
    with pytest.raises(TypeError):
        enter(FakeContext(60.0), margin="1")
    assert locks.try_acquire("checked") is not None, "nothing was acquired"


NO_TIMER_KEEPS_THE_PROCESS = """
import asyncio, dynalease
dynalease.create_table("locks", endpoint_url="memory://t")

class Context:
    def get_remaining_time_in_millis(self):
        return 900_000  # a 15-minute invocation

locks = dynalease.LockClient("locks", endpoint_url="memory://t")
with locks.lambda_lock("sync", Context()) as lock:
    pass
kept = locks.acquire_within("kept", remaining=900.0)  # held at exit, its end 15 minutes away

async def main():
    async with dynalease.AsyncLockClient("locks", endpoint_url="memory://t").lambda_lock("async", Context()):
        pass

asyncio.run(main())
print("done", flush=True)
"""


def test_no_timer_keeps_the_process_alive() -> None:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", NO_TIMER_KEEPS_THE_PROCESS], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout == "done\n", done.stderr
    assert time.monotonic() - started < 100.0


def test_the_coordination_docs_example_shapes(locks: dynalease.LockClient) -> None:
    """The objects the API page names, with their properties, on one client."""
    election = locks.election("e")
    semaphore = locks.semaphore("s", permits=1)
    assert isinstance(election, dynalease._native._ElectionBase)
    assert isinstance(semaphore, dynalease._native._SemaphoreBase)
    assert isinstance(election.watch(), dynalease._native._LeaderWatchBase)
    assert election.watch().interval is None
