"""Faults: holders killed with SIGKILL or paused with SIGSTOP, responses lost on acquire,
heartbeat and release, connections reset or dropped, and throttling, through the project's fault
proxy (faultproxy.py) between the clients and DynamoDB Local. The clients: Python and Rust, and
Node's Promise API and dlc drop-in, run as subprocesses (holder.js, lockdriver.js, worker.js).

Timing assertions here are safety bounds only ("not before the lease", "stuck no longer than a
lease plus generous slack"), never speed targets: the machine is shared and loaded.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional

import pytest

import dynalease
import runner
from conftest import unique
from faultproxy import FaultProxy, Rule, op_label

HERE = os.path.dirname(os.path.abspath(__file__))
HOLDERS = {"python": [sys.executable, os.path.join(HERE, "holder.py")], "node": ["node", os.path.join(HERE, "holder.js")]}
#: What each holder prints after "fenced write rejected": the exception class, or err.code.
LOCK_LOST = {"python": "LockLostError", "node": "ERR_DYNALEASE_LOCK_LOST"}
LOCK_DRIVER = os.path.join(HERE, "lockdriver.js")

#: Added to upper bounds for a loaded 2-core machine; lower bounds get none.
SLACK = 4.0


class Holder:
    """tests/fleet/holder.py or holder.js in a subprocess, with its stdout lines read by a thread."""

    def __init__(
        self, language: str, endpoint: str, lock_table: str, kv_table: str, partition: str, lock_id: str, lease: float, heartbeat: float
    ) -> None:
        self.process = subprocess.Popen(
            HOLDERS[language] + [endpoint, lock_table, kv_table, partition, lock_id, str(lease), str(heartbeat)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: List[str] = []
        self._changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line.strip())
                self._changed.notify_all()

    def wait_for(self, prefix: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines:
                    if line.startswith(prefix):
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or (self.process.poll() is not None and not self._changed.wait(0.2)):
                    break
                self._changed.wait(min(left, 0.2))
        self.process.kill()
        stderr = self.process.stderr.read() if self.process.stderr else ""
        raise AssertionError(f"holder never printed {prefix!r}; printed {self.lines}; stderr:\n{stderr}")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)


class Contender:
    """Acquires in a thread and records when (CLOCK_MONOTONIC ns)."""

    def __init__(self, locks: dynalease.LockClient, lock_id: str, timeout: float) -> None:
        self.lock: Optional[dynalease.Lock] = None
        self.error: Optional[BaseException] = None
        self.acquired_ns = 0
        self._thread = threading.Thread(target=self._run, args=(locks, lock_id, timeout), daemon=True)
        self._thread.start()

    def _run(self, locks: dynalease.LockClient, lock_id: str, timeout: float) -> None:
        try:
            self.lock = locks.acquire(lock_id, timeout=timeout)
            self.acquired_ns = time.monotonic_ns()
        except BaseException as error:  # reported by the test thread
            self.error = error

    def join(self, timeout: float) -> dynalease.Lock:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the contender is still waiting"
        if self.error is not None:
            raise self.error
        assert self.lock is not None
        return self.lock

    @property
    def waiting(self) -> bool:
        return self._thread.is_alive()


class NodeError(Exception):
    """An operation of the Node client failed: `code` is err.code (or the SDK error's name)."""

    def __init__(self, answer: dict) -> None:
        super().__init__(f"{answer.get('code')}: {answer.get('message')}")
        self.code = answer.get("code")
        self.message = answer.get("message", "")
        self.original = answer.get("original")


class NodeLocks:
    """tests/fleet/lockdriver.js in a subprocess: a Node lock client (`node-new`, the Promise API,
    or `node-dropin`, FailOpen over the SDK v3 document client), with the calls these tests make
    on dynalease.LockClient. One lock at a time."""

    def __init__(self, client: str, endpoint: str, lock_table: str, lease: float, heartbeat: Optional[float] = None,
                 kv_table: Optional[str] = None, kv_partition: Optional[str] = None) -> None:
        command = ["node", LOCK_DRIVER, "--client", client, "--endpoint", endpoint, "--lock-table", lock_table,
                   "--lease-ms", str(round(lease * 1000))]
        if heartbeat is not None:
            command += ["--heartbeat-ms", str(round(heartbeat * 1000))]
        if kv_table is not None:
            command += ["--kv-table", kv_table, "--kv-partition", str(kv_partition)]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self._answers: "queue.Queue[Optional[str]]" = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._answers.put(line)
        self._answers.put(None)

    def call(self, command: str, timeout: float = 90.0) -> dict:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        try:
            line = self._answers.get(timeout=timeout)
        except queue.Empty:
            line = None
        if line is None:
            self.close()
            stderr = self.process.stderr.read() if self.process.stderr else ""
            raise AssertionError(f"lockdriver.js gave no answer to {command!r}; stderr:\n{stderr[-2000:]}")
        answer = json.loads(line)
        if not answer["ok"]:
            raise NodeError(answer)
        return answer

    def acquire(self, lock_id: str, timeout: float) -> "NodeLock":
        answer = self.call(f"acquire {lock_id} {round(timeout * 1000)}", timeout=timeout + 60)
        return NodeLock(self, answer["token"])

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)


class NodeLock:
    """The lock a NodeLocks holds, as the tests use a dynalease.Lock."""

    def __init__(self, driver: NodeLocks, token: int) -> None:
        self.driver = driver
        self.fencing_token = token

    @property
    def lost(self) -> bool:
        return self.driver.call("status")["status"] == "lost"

    @property
    def lost_reason(self) -> Optional[str]:
        return self.driver.call("status")["reason"]

    def release(self) -> None:
        self.driver.call("release")

    def fenced_put(self, key: str, value: object) -> None:
        """Reads `key`, then atomicPut(key, value, { previous, lock }) (node-new only)."""
        self.driver.call(f"cas {key} {json.dumps(value)}")


def lock_client(request: pytest.FixtureRequest, client: str, lock_table: str, endpoint: str, lease: float, heartbeat: float):
    """A client of `client`'s kind whose requests go to `endpoint`."""
    if client == "python":
        return dynalease.LockClient(lock_table, lease_duration=lease, heartbeat_period=heartbeat, endpoint_url=endpoint)
    request.getfixturevalue("node_package")
    driver = NodeLocks(client, endpoint, lock_table, lease, heartbeat)
    request.addfinalizer(driver.close)
    return driver


# ---------------------------------------------------------------------------------------------
# Processes killed and paused
# ---------------------------------------------------------------------------------------------


@pytest.fixture(params=["python", "node"])
def holder_language(request: pytest.FixtureRequest) -> str:
    """The language of the holder process: holder.py, or holder.js on the Promise API."""
    if request.param == "node":
        request.getfixturevalue("node_package")
    return request.param


def test_a_killed_holder_frees_its_lock_after_the_lease_and_not_before(
    proxy: FaultProxy, ddb_endpoint: str, lock_table: str, kv_table: str, holder_language: str
) -> None:
    lease, heartbeat = 2.0, 0.5
    # The holder's requests pass the proxy (no faults), which notes when it read each one: its
    # last heartbeat cannot have landed earlier, so its lease runs at least a lease from then.
    holder = Holder(holder_language, proxy.endpoint, lock_table, kv_table, unique("p"), "victim", lease, heartbeat)
    try:
        holder.wait_for("write ok")
        locks = dynalease.LockClient(lock_table, lease_duration=lease, endpoint_url=ddb_endpoint)
        contender = Contender(locks, "victim", timeout=60.0)
        # While the holder lives, its heartbeats keep the lock through several leases.
        time.sleep(lease * 1.5)
        assert contender.waiting, "the lock was taken from a live, heartbeating holder"
        holder.process.send_signal(signal.SIGKILL)
        holder.process.wait(10)
        killed_ns = time.monotonic_ns()
        last_write = proxy.last_seen("heartbeat")
        lock = contender.join(lease + SLACK + 30)
    finally:
        holder.close()
    assert last_write is not None, "no heartbeat went through the proxy"
    # Measured from the last heartbeat itself, not from the kill: on a loaded machine the
    # holder's heartbeats may run late, so "one period before the kill" is no bound. 10 ms for
    # the clocks' reading order.
    after_last_write = contender.acquired_ns / 1e9 - last_write
    assert after_last_write >= lease - 0.01, f"taken over {after_last_write:.3f} s after the holder's last heartbeat: before its lease ran out"
    waited = (contender.acquired_ns - killed_ns) / 1e9
    assert waited <= lease + SLACK, f"the lock stayed stuck {waited:.2f} s after its holder died (lease {lease} s)"
    holder_token = int(holder.wait_for("acquired").split()[1])
    assert lock.fencing_token is not None and lock.fencing_token > holder_token
    lock.release()


def test_a_paused_holder_learns_it_lost_the_lease_on_resume_and_its_fenced_write_is_refused(
    ddb_endpoint: str, lock_table: str, kv_table: str, holder_language: str
) -> None:
    lease, heartbeat = 2.0, 1.0
    partition = unique("p")
    holder = Holder(holder_language, ddb_endpoint, lock_table, kv_table, partition, "paused", lease, heartbeat)
    kv = dynalease.KVStore(kv_table, partition=partition, endpoint_url=ddb_endpoint)
    try:
        holder.wait_for("write ok")
        holder_token = int(holder.wait_for("acquired").split()[1])
        locks = dynalease.LockClient(lock_table, lease_duration=lease, endpoint_url=ddb_endpoint)
        contender = Contender(locks, "paused", timeout=60.0)
        holder.process.send_signal(signal.SIGSTOP)
        # Paused past its lease: the contender takes over and writes under the new lock.
        lock = contender.join(lease + SLACK + 30)
        assert lock.fencing_token is not None and lock.fencing_token > holder_token
        previous = kv.get("counter/paused")
        assert previous is not None and previous.value == 1
        kv.atomic_put("counter/paused", 2, previous=previous, lock=lock)

        resumed_ns = time.monotonic_ns()
        holder.process.send_signal(signal.SIGCONT)
        lost_ns = int(holder.wait_for("lost").split()[1])
        rejected = holder.wait_for("fenced write")
    finally:
        holder.close()
    noticed = (lost_ns - resumed_ns) / 1e9
    assert noticed <= heartbeat, f"the resumed holder reported the loss {noticed:.2f} s after SIGCONT (heartbeat {heartbeat} s)"
    assert rejected == f"fenced write rejected {LOCK_LOST[holder_language]}", rejected
    pair = kv.get("counter/paused")
    assert pair is not None and pair.value == 2, "the stale holder's fenced write must not land"
    lock.release()


# ---------------------------------------------------------------------------------------------
# Lost responses, resets and drops on single operations
# ---------------------------------------------------------------------------------------------


LOST_ANSWER_CASES = [
    pytest.param(client, lock_op, id=f"{client}-{lock_op}")
    for client in ("python", "node-new", "node-dropin")
    for lock_op in ("acquire", "heartbeat", "release")
]


@pytest.mark.parametrize("fault", ["lose_response", "reset"])
@pytest.mark.parametrize("client, lock_op", LOST_ANSWER_CASES)
def test_a_lost_answer_on_a_lock_write_leaves_one_holder_and_no_stuck_lock(
    request: pytest.FixtureRequest, proxy: FaultProxy, ddb_endpoint: str, lock_table: str, client: str, fault: str, lock_op: str
) -> None:
    # The drop-in (node-dropin) runs over an SDK v3 DynamoDBDocument with the SDK's default
    # retries (maxAttempts 3), as its users run it: the SDK resends after a lost answer.
    lease, heartbeat = 3.0, 0.5
    rule = proxy.add(Rule(fault, table=lock_table, lock_op=lock_op, times=1))
    faulty = lock_client(request, client, lock_table, proxy.endpoint, lease, heartbeat)
    direct = dynalease.LockClient(lock_table, lease_duration=lease, endpoint_url=ddb_endpoint)

    lock = faulty.acquire("op", timeout=30.0)
    if lock_op == "heartbeat":
        deadline = time.monotonic() + 20
        while rule.injected == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(heartbeat * 2)  # and a heartbeat after it
    if lock_op != "release":
        assert rule.injected == 1, f"no {lock_op} went through the proxy"
    # The holder resolved the unknown outcome and still holds; nobody else can take it. The
    # table is new, so token 1 also shows that it did not wait out its own lock and take it over.
    assert lock.fencing_token == 1, f"fencing token {lock.fencing_token}: the holder took the lock over from itself"
    assert not lock.lost, lock.lost_reason
    assert direct.try_acquire("op") is None, "two holders at once"

    released_at = time.monotonic()
    lock.release()
    assert rule.injected == 1, f"no {lock_op} went through the proxy"
    # Released for real: taken at once, not after a lease.
    other = direct.acquire("op", timeout=lease + SLACK)
    assert time.monotonic() - released_at < lease, "the released lock stayed held until its lease ran out"
    assert lock.fencing_token is not None and other.fencing_token == lock.fencing_token + 1
    other.release()


@pytest.mark.parametrize("fault", ["lose_response", "reset", "drop"])
def test_a_lost_answer_on_a_fenced_increment_neither_loses_nor_doubles_it(
    proxy: FaultProxy, ddb_endpoint: str, lock_table: str, kv_table: str, fault: str
) -> None:
    rule = proxy.add(Rule(fault, operation="TransactWriteItems", times=1))
    locks = dynalease.LockClient(lock_table, lease_duration=3.0, endpoint_url=proxy.endpoint)
    kv = dynalease.KVStore(kv_table, partition=unique("p"), endpoint_url=proxy.endpoint)
    kv.put("n", 0)
    with locks.lock("counter", timeout=30.0) as lock:
        previous = kv.get("n")
        kv.atomic_put("n", previous.value + 1, previous=previous, lock=lock)
    assert rule.injected == 1
    pair = kv.get("n")
    assert pair is not None and pair.value == 1


# ---------------------------------------------------------------------------------------------
# Writes that land late, answers that come late (single operations, the core engine via Python)
# ---------------------------------------------------------------------------------------------

#: The clients' per-call deadline in these tests: short, so that the engine's wait for a late
#: landing (one call timeout after the call gave up) stays short too.
CALL_TIMEOUT = 1.0


def free_within(ddb_endpoint: str, lock_table: str, lock_id: str, fail_closed: bool, bound: float) -> float:
    """Seconds until a fresh client (straight at DynamoDB) held `lock_id`; fails past `bound`.
    A fail-closed lock has no lease to wait out: it is tried until the bound."""
    direct = dynalease.LockClient(lock_table, lease_duration=5.0, fail_closed=fail_closed, endpoint_url=ddb_endpoint)
    started = time.monotonic()
    while True:
        try:
            lock = direct.try_acquire(lock_id) if fail_closed else direct.acquire(lock_id, timeout=bound)
        except dynalease.LockNotAcquiredError:
            lock = None
        if lock is not None:
            waited = time.monotonic() - started
            lock.release()
            return waited
        assert time.monotonic() - started < bound, f"{lock_id} still held {bound:.1f} s after its holder was gone: a stuck lock"
        time.sleep(0.1)


@pytest.mark.parametrize("fail_closed", [False, True], ids=["fail-open", "fail-closed"])
def test_an_acquire_that_lands_after_its_resend_took_and_released_the_lock_leaves_it_free(
    proxy: FaultProxy, ddb_endpoint: str, lock_table: str, fail_closed: bool
) -> None:
    # The first attempt is held; the client is reset after 0.2 s, resolves the unknown outcome
    # (nothing there yet), takes the lock with a resend and releases it. Then the first attempt
    # lands on the free lock, 0.7 s after the client gave up on it: within the late-landing
    # window the engine assumes (a call timeout, 1 s here; a write still on its way after that
    # is taken to be lost, so a later landing would leave a fail-closed lock held for ever).
    lease = 2.0
    rule = proxy.add(Rule("land_late", table=lock_table, lock_op="acquire", times=1, give_up=0.2, delay=0.7))
    client = dynalease.LockClient(lock_table, lease_duration=lease, fail_closed=fail_closed, call_timeout=CALL_TIMEOUT, endpoint_url=proxy.endpoint)
    lock = client.acquire("late", timeout=30.0)
    lock.release()
    assert proxy.quiesce(), "the held acquire never landed"
    assert rule.injected == 1 and proxy.late_results[("acquire", "applied")] == 1, dict(proxy.late_results)
    # Fail-open: a lease left by nobody is waited out, no longer. Fail-closed: nothing may be
    # left at all once the engine's wait for a late landing (a call timeout) is over.
    free_within(ddb_endpoint, lock_table, "late", fail_closed, bound=(CALL_TIMEOUT if fail_closed else lease) + SLACK)


@pytest.mark.parametrize("fail_closed", [False, True], ids=["fail-open", "fail-closed"])
def test_an_acquire_whose_caller_stopped_waiting_and_that_lands_later_leaves_no_stuck_lock(
    proxy: FaultProxy, ddb_endpoint: str, lock_table: str, fail_closed: bool
) -> None:
    # The caller cancels its acquire (asyncio.wait_for) while the request is held; the client
    # drops the call, and the request lands 0.5 s after that: a lock taken for a caller that is
    # gone.
    lease = 2.0
    rule = proxy.add(Rule("land_late", table=lock_table, lock_op="acquire", times=1, give_up=None, delay=0.5))

    async def give_up() -> None:
        client = dynalease.AsyncLockClient(
            lock_table, lease_duration=lease, fail_closed=fail_closed, call_timeout=CALL_TIMEOUT, endpoint_url=proxy.endpoint
        )
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(client.acquire("gone", timeout=30.0), 0.3)
        # The client lives on (as in a long-running service), so it could still clean up.
        deadline = time.monotonic() + 10
        while not proxy.late_results and time.monotonic() < deadline:
            await asyncio.sleep(0.05)

    asyncio.run(give_up())
    assert proxy.quiesce(), "the held acquire never landed"
    assert rule.injected == 1 and proxy.late_results[("acquire", "applied")] == 1, dict(proxy.late_results)
    free_within(ddb_endpoint, lock_table, "gone", fail_closed, bound=(CALL_TIMEOUT if fail_closed else lease) + SLACK)


def test_a_heartbeat_answered_after_the_call_timeout_times_the_lease_from_its_first_send(
    proxy: FaultProxy, ddb_endpoint: str, lock_table: str
) -> None:
    # The first heartbeat lands at once, but its answer is held until the client's call timeout
    # (1 s). The client then learns (reading the item back, or resending) that it landed. Every
    # later heartbeat is dropped, so that one was the last renewal: a contender that saw its
    # guid takes over a lease after it landed, and by then the holder must know it lost the
    # lock. Timing the lease from a resend, or from the read back, would leave a second of two
    # holders.
    lease, heartbeat = 2.0, 0.5
    answered_late = proxy.add(Rule("answer_late", table=lock_table, lock_op="heartbeat", times=1, give_up=None))
    proxy.add(Rule("drop", table=lock_table, lock_op="heartbeat"))
    proxy.add(Rule("drop", table=lock_table, operation="UpdateItem", match=lambda r: answered_late.injected > 0))
    client = dynalease.LockClient(
        lock_table, lease_duration=lease, heartbeat_period=heartbeat, call_timeout=CALL_TIMEOUT, endpoint_url=proxy.endpoint
    )
    direct = dynalease.LockClient(lock_table, lease_duration=lease, endpoint_url=ddb_endpoint)
    lock = client.acquire("hb", timeout=30.0)
    contender = Contender(direct, "hb", timeout=30.0)
    taken = contender.join(lease * 3 + SLACK + 30)
    holder_lost = lock.lost  # read after the contender held it
    assert answered_late.injected == 1, "no heartbeat went through the proxy"
    assert holder_lost, "the contender took the lock while the holder still believed it held it: two holders"
    taken.release()


@pytest.mark.parametrize("fault", ["land_late", "answer_late"])
def test_a_fenced_increment_that_lands_late_is_applied_once_or_reported_unknown(
    proxy: FaultProxy, ddb_endpoint: str, lock_table: str, kv_table: str, fault: str
) -> None:
    # The increment's first attempt lands late (after its resend) or its answer never comes. Either
    # it is applied exactly once and acknowledged, or the client says the outcome is unknown: it
    # must never be applied twice, nor reported refused or failed after it landed.
    partition = unique("p")
    rule = proxy.add(Rule(fault, operation="TransactWriteItems", times=1, give_up=0.2, delay=0.5))
    locks = dynalease.LockClient(lock_table, lease_duration=5.0, call_timeout=CALL_TIMEOUT, endpoint_url=proxy.endpoint)
    kv = dynalease.KVStore(kv_table, partition=partition, call_timeout=CALL_TIMEOUT, endpoint_url=proxy.endpoint)
    direct = dynalease.KVStore(kv_table, partition=partition, endpoint_url=ddb_endpoint)
    direct.put("n", 0)
    outcome: Optional[str] = None
    with locks.lock("counter", timeout=30.0) as lock:
        previous = kv.get("n")
        try:
            kv.atomic_put("n", previous.value + 1, previous=previous, lock=lock)
            outcome = "applied"
        except dynalease.OutcomeUnknownError:
            outcome = "unknown"
    assert proxy.quiesce()
    assert rule.injected == 1
    value = direct.get("n").value
    if outcome == "applied":
        assert value == 1, f"acknowledged once, found {value}"
    else:
        assert value in (0, 1), f"an unknown outcome, found {value}"


def test_a_plain_put_that_lands_late_does_not_overwrite_a_later_write(proxy: FaultProxy, ddb_endpoint: str, kv_table: str) -> None:
    # put("k", "first") is held; the client is reset and resends, which lands; another writer then
    # writes "second". The held first attempt lands after that and must not bring "first" back.
    partition = unique("p")
    proxy.add(Rule("land_late", operation="TransactWriteItems", times=1, give_up=0.2, delay=1.0))
    proxy.add(Rule("land_late", operation="PutItem", table=kv_table, times=1, give_up=0.2, delay=1.0))
    kv = dynalease.KVStore(kv_table, partition=partition, call_timeout=CALL_TIMEOUT, endpoint_url=proxy.endpoint)
    direct = dynalease.KVStore(kv_table, partition=partition, endpoint_url=ddb_endpoint)
    try:
        kv.put("k", "first")
    except dynalease.OutcomeUnknownError:
        pass  # an honest answer; what matters is what the table holds at the end
    current = direct.get("k")
    if current is None:
        direct.put("k", "second")
    else:
        direct.atomic_put("k", "second", previous=current)
    assert proxy.quiesce()
    assert proxy.late_results[("kv-write", "applied")] + proxy.late_results[("kv-write", "refused")] == 1, dict(proxy.late_results)
    assert direct.get("k").value == "second", "a write that landed late overwrote a later one: a lost update"


# ---------------------------------------------------------------------------------------------
# Throttling
# ---------------------------------------------------------------------------------------------


def assert_never_taken(ddb_endpoint: str, lock_table: str, lock_id: str) -> None:
    """A throttled acquire left nothing behind: the lock is free, and its first holder gets token 1."""
    direct = dynalease.LockClient(lock_table, lease_duration=5.0, endpoint_url=ddb_endpoint)
    taken = direct.try_acquire(lock_id)
    assert taken is not None, "a throttled acquire left the lock held"
    assert taken.fencing_token == 1
    taken.release()


def test_throttling_is_retried_with_backoff_then_a_typed_error_and_nothing_is_half_written(
    proxy: FaultProxy, ddb_endpoint: str, lock_table: str, kv_table: str
) -> None:
    partition = unique("p")
    direct_kv = dynalease.KVStore(kv_table, partition=partition, endpoint_url=ddb_endpoint)
    before = direct_kv.put("k", {"v": 1})
    locks = dynalease.LockClient(lock_table, lease_duration=5.0, endpoint_url=proxy.endpoint)
    kv = dynalease.KVStore(kv_table, partition=partition, endpoint_url=proxy.endpoint)
    lock = locks.acquire("t", timeout=30.0)

    # A fenced compare-and-swap, throttled every time.
    rule = proxy.add(Rule("throttle", operation="TransactWriteItems"))
    started = time.monotonic()
    with pytest.raises(dynalease.TransportError, match="throttled"):
        kv.atomic_put("k", {"v": 2}, previous=before, lock=lock)
    elapsed = time.monotonic() - started
    assert rule.injected >= 3, f"only {rule.injected} attempts: throttling must be retried"
    assert elapsed > 0.0
    proxy.clear()
    assert direct_kv.get("k") == before, "a throttled write changed the item"
    assert not lock.lost
    lock.release()

    # An acquire, throttled every time: a typed error, and no half-taken lock left behind.
    rule = proxy.add(Rule("throttle", table=lock_table))
    with pytest.raises(dynalease.TransportError, match="throttled"):
        locks.acquire("fresh", timeout=30.0)
    assert rule.injected >= 3
    proxy.clear()
    assert_never_taken(ddb_endpoint, lock_table, "fresh")


def test_throttling_of_the_node_promise_api_is_retried_with_backoff_then_a_typed_error_and_nothing_is_half_written(
    proxy: FaultProxy, ddb_endpoint: str, lock_table: str, kv_table: str, node_package: str
) -> None:
    partition = unique("p")
    direct_kv = dynalease.KVStore(kv_table, partition=partition, endpoint_url=ddb_endpoint)
    before = direct_kv.put("k", {"v": 1})
    node = NodeLocks("node-new", proxy.endpoint, lock_table, lease=5.0, kv_table=kv_table, kv_partition=partition)
    try:
        lock = node.acquire("t", timeout=30.0)

        # A fenced compare-and-swap, throttled every time.
        rule = proxy.add(Rule("throttle", operation="TransactWriteItems"))
        with pytest.raises(NodeError) as caught:
            lock.fenced_put("k", {"v": 2})
        assert caught.value.code == "ERR_DYNALEASE_TRANSPORT", caught.value
        assert "throttled" in caught.value.message, caught.value
        assert rule.injected >= 3, f"only {rule.injected} attempts: throttling must be retried"
        # Full-jitter backoff: any one pause may be short, all of them together are not.
        span = rule.injected_at[-1] - rule.injected_at[0]
        assert span >= 0.05, f"{rule.injected} attempts within {span * 1000:.0f} ms: no backoff"
        proxy.clear()
        assert direct_kv.get("k") == before, "a throttled write changed the item"
        assert not lock.lost, lock.lost_reason
        lock.release()

        # An acquire, throttled every time: a typed error, and no half-taken lock left behind.
        rule = proxy.add(Rule("throttle", table=lock_table))
        with pytest.raises(NodeError) as caught:
            node.acquire("fresh", timeout=30.0)
        assert caught.value.code == "ERR_DYNALEASE_TRANSPORT", caught.value
        assert "throttled" in caught.value.message, caught.value
        assert rule.injected >= 3
        proxy.clear()
    finally:
        node.close()
    assert_never_taken(ddb_endpoint, lock_table, "fresh")


# ---------------------------------------------------------------------------------------------
# A fleet through a lossy network
# ---------------------------------------------------------------------------------------------


#: Eight processes, every client kind.
FAULT_FLEET = {"py-sync": 2, "py-async": 1, "rust": 1, "node-new": 1, "node-dropin": 2, "node-dlc": 1}
DLC_KINDS = ("node-dropin", "node-dlc")

#: dlc-style clients (node-dropin, node-dlc) read a held lock, wait the whole lease it names, then
#: take it over only if its guid is still the one they read. Against native clients, which poll
#: and take a freed lock within milliseconds and write a new guid with every acquire, heartbeat
#: and release, that only works when they read it released and win the race; an attempt on a
#: lock a native client holds long (heartbeating) costs them two leases and fails. And under
#: lost answers the original dlc waits out its own item for a lease and loses it to the pollers
#: meanwhile. On a loaded machine node-dlc got no hold in 12 s. So the dlc-style processes also
#: get two lock ids of their own, which the original and the drop-in contend for with each other
#: (one lease per handover, as dlc does), listed twice so that four picks in five go there (a
#: worker picks uniformly from its list); they still compete for lock-1 with every other kind,
#: so a dlc-style taker of a native lock is still checked.
DLC_LOCKS = ["dlc-1", "dlc-2", "dlc-1", "dlc-2", "lock-1"]


def assert_every_kind_held(report: runner.checker.Report, fleet: Dict[str, int]) -> None:
    idle = [kind for kind in fleet if not report.holds_by_client.get(kind)]
    assert not idle, f"{idle} held no lock: the test proved nothing for them"


def test_a_fleet_through_lost_responses_resets_drops_and_delays_stays_safe(
    proxy: FaultProxy, ddb_endpoint: str, rust_worker: str, node_package: str, tmp_path: Path
) -> None:
    lease = 1.0
    proxy.add(Rule("lose_response", match=lambda r: r.lock_op is not None, probability=0.08))
    proxy.add(Rule("reset", operation="TransactWriteItems", probability=0.05))
    proxy.add(Rule("drop", operation="GetItem", probability=0.03))
    proxy.add(Rule("delay", probability=0.05, delay=0.3))
    config = runner.FleetConfig(
        endpoint=ddb_endpoint,
        worker_endpoint=proxy.endpoint,
        workers=FAULT_FLEET,
        duration=12.0,
        locks=3,
        locks_by_kind=dict.fromkeys(DLC_KINDS, DLC_LOCKS),
        lease=lease,
        rust_worker=rust_worker,
        out_dir=str(tmp_path),
        quiesce=proxy.quiesce,
        probe_slack=SLACK,
        # The Python, Rust and Node Promise API processes also share a semaphore, an election
        # and the hand-off mailbox through the same faults.
        semaphore=("sem", 2),
        election="leader",
        handoff_share=0.2,
    )
    result = runner.run_fleet(config)
    report = result.report
    print(runner.checker.format_report(report))
    print("faults injected:", dict(proxy.injected_by_op))
    assert not result.problems
    # Also: never more than 2 permit holders, terms and observers' terms rising, long terms seen,
    # resumed holds carrying on detached ones.
    assert report.ok, report.failures()
    assert proxy.injected["lose_response"] > 0, "no response was lost: the test proved nothing"
    assert_every_kind_held(report, FAULT_FLEET)
    # Each used (every coordinating process hands its first eligible lock off). Whether the
    # hand-offs were resumed in time depends on the load; when they were, the checker held them
    # to the rules above.
    assert report.semaphores["sem"].holds > 0 and report.elections["leader"].terms > 0 and report.handoffs.detached > 0
    # No lock stuck: after the fleet and the faults stopped, a fresh client got every lock
    # within a lease (plus slack).
    assert all(lock.probe is not None for lock in report.locks.values())


#: Seven processes, every client kind; the py-async, rust and node-new processes hold long (up
#: to 2 s, four heartbeat periods), so heartbeats happen and meet the late faults.
LATE_FLEET = {"py-sync": 2, "py-async": 1, "rust": 1, "node-new": 1, "node-dropin": 1, "node-dlc": 1}
LATE_LONG_HOLDERS = {"py-async": 1, "rust": 1, "node-new": 1}


def late_rules(lock_ops_probability: float, heartbeat_probability: float, kv_probability: float) -> List[Rule]:
    """Both late faults on lock writes and KV writes. The proxy resets the client after 0.3 s
    (a short per-call deadline; the native clients' own is 5 s), and a held request lands 0.2 to
    1.5 s after that: after the client resent it or read the item back."""
    rules: List[Rule] = []
    for fault in ("land_late", "answer_late"):
        late = dict(give_up=0.3, delay=0.2, delay_max=1.5) if fault == "land_late" else dict(give_up=0.3)
        rules.append(Rule(fault, lock_op="heartbeat", probability=heartbeat_probability, **late))  # type: ignore[arg-type]
        rules.append(Rule(fault, match=lambda r: r.lock_op in ("acquire", "release"), probability=lock_ops_probability, **late))  # type: ignore[arg-type]
        rules.append(Rule(fault, match=lambda r: r.lock_op is None and op_label(r) == "kv-write", probability=kv_probability, **late))  # type: ignore[arg-type]
    return rules


def test_a_fleet_through_writes_that_land_late_and_answers_that_come_late_stays_safe(
    proxy: FaultProxy, ddb_endpoint: str, rust_worker: str, node_package: str, tmp_path: Path
) -> None:
    lease, heartbeat = 1.5, 0.5
    for rule in late_rules(lock_ops_probability=0.05, heartbeat_probability=0.25, kv_probability=0.12):
        proxy.add(rule)
    config = runner.FleetConfig(
        endpoint=ddb_endpoint,
        worker_endpoint=proxy.endpoint,
        workers=LATE_FLEET,
        duration=12.0,
        locks=4,
        locks_by_kind=dict.fromkeys(DLC_KINDS, DLC_LOCKS),
        lease=lease,
        heartbeat=heartbeat,
        long_holders=LATE_LONG_HOLDERS,
        long_hold_ms=4 * heartbeat * 1000,
        rust_worker=rust_worker,
        out_dir=str(tmp_path),
        quiesce=proxy.quiesce,
        probe_slack=SLACK,
    )
    result = runner.run_fleet(config)
    report = result.report
    print(runner.checker.format_report(report))
    print("requests:", dict(proxy.requests))
    print("faults injected:", dict(proxy.injected_by_op), "late writes:", dict(proxy.late_results))
    assert not result.problems
    # 0 overlaps, tokens rising, every counter between the acknowledged increments and those plus
    # the unknown outcomes, and no lock stuck once the late writes had all landed.
    assert report.ok, report.failures()
    assert_every_kind_held(report, LATE_FLEET)
    assert all(lock.probe is not None for lock in report.locks.values())
    for fault in ("land_late", "answer_late"):
        for op in ("acquire", "heartbeat", "kv-write"):
            assert proxy.injected_by_op[(fault, op)] > 0, f"no {fault} on {op}: {dict(proxy.injected_by_op)}"
    assert sum(n for (op, result), n in proxy.late_results.items() if result != "not sent") == proxy.injected["land_late"]


@pytest.mark.parametrize("client", ["python", "node-dropin"])
def test_a_release_with_a_lost_answer_resent_after_a_new_holder_took_the_lock_reports_success(
    request: pytest.FixtureRequest, proxy: FaultProxy, ddb_endpoint: str, lock_table: str, client: str
) -> None:
    # The first release lands but its answer is lost; the resend (ours, or the AWS SDK's under
    # the drop-in) is held back until another client has acquired the freed lock, so the
    # resend's condition fails against the new holder.
    proxy.add(Rule("lose_response", table=lock_table, lock_op="release", times=1))
    proxy.add(Rule("delay", table=lock_table, lock_op="release", delay=1.5))
    faulty = lock_client(request, client, lock_table, proxy.endpoint, lease=5.0, heartbeat=1.5)
    direct = dynalease.LockClient(lock_table, lease_duration=5.0, endpoint_url=ddb_endpoint)
    lock = faulty.acquire("r", timeout=30.0)
    contender = Contender(direct, "r", timeout=30.0)
    time.sleep(0.3)  # the contender is polling
    try:
        lock.release()  # the lock was released: this must not raise
    finally:
        taken = contender.join(30.0)
        taken.release()
