"""Faults: holders killed with SIGKILL or paused with SIGSTOP, responses lost on acquire,
heartbeat and release, connections reset or dropped, and throttling, through the project's fault
proxy (faultproxy.py) between the Python clients and DynamoDB Local.

Timing assertions here are safety bounds only ("not before the lease", "stuck no longer than a
lease plus generous slack"), never speed targets: the machine is shared and loaded.
"""

from __future__ import annotations

import os
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
from faultproxy import FaultProxy, Rule

HERE = os.path.dirname(os.path.abspath(__file__))
HOLDER = os.path.join(HERE, "holder.py")

#: Added to upper bounds for a loaded 2-core machine; lower bounds get none.
SLACK = 4.0


class Holder:
    """tests/fleet/holder.py in a subprocess, with its stdout lines read by a thread."""

    def __init__(self, endpoint: str, lock_table: str, kv_table: str, partition: str, lock_id: str, lease: float, heartbeat: float) -> None:
        self.process = subprocess.Popen(
            [sys.executable, HOLDER, endpoint, lock_table, kv_table, partition, lock_id, str(lease), str(heartbeat)],
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


# ---------------------------------------------------------------------------------------------
# Processes killed and paused
# ---------------------------------------------------------------------------------------------


def test_a_killed_holder_frees_its_lock_after_the_lease_and_not_before(ddb_endpoint: str, lock_table: str, kv_table: str) -> None:
    lease, heartbeat = 2.0, 0.5
    holder = Holder(ddb_endpoint, lock_table, kv_table, unique("p"), "victim", lease, heartbeat)
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
        lock = contender.join(lease + SLACK + 30)
    finally:
        holder.close()
    waited = (contender.acquired_ns - killed_ns) / 1e9
    # The last heartbeat was at most one period before the kill, and its lease runs a whole
    # lease from then: no takeover before that.
    assert waited >= lease - heartbeat - 0.05, f"taken over {waited:.2f} s after the kill: before the lease ran out"
    assert waited <= lease + SLACK, f"the lock stayed stuck {waited:.2f} s after its holder died (lease {lease} s)"
    holder_token = int(holder.wait_for("acquired").split()[1])
    assert lock.fencing_token is not None and lock.fencing_token > holder_token
    lock.release()


def test_a_paused_holder_learns_it_lost_the_lease_on_resume_and_its_fenced_write_is_refused(
    ddb_endpoint: str, lock_table: str, kv_table: str
) -> None:
    lease, heartbeat = 2.0, 1.0
    partition = unique("p")
    holder = Holder(ddb_endpoint, lock_table, kv_table, partition, "paused", lease, heartbeat)
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
    assert rejected == "fenced write rejected LockLostError", rejected
    pair = kv.get("counter/paused")
    assert pair is not None and pair.value == 2, "the stale holder's fenced write must not land"
    lock.release()


# ---------------------------------------------------------------------------------------------
# Lost responses, resets and drops on single operations
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["lose_response", "reset"])
@pytest.mark.parametrize("lock_op", ["acquire", "heartbeat", "release"])
def test_a_lost_answer_on_a_lock_write_leaves_one_holder_and_no_stuck_lock(
    proxy: FaultProxy, ddb_endpoint: str, lock_table: str, fault: str, lock_op: str
) -> None:
    lease, heartbeat = 3.0, 0.5
    rule = proxy.add(Rule(fault, table=lock_table, lock_op=lock_op, times=1))
    faulty = dynalease.LockClient(lock_table, lease_duration=lease, heartbeat_period=heartbeat, endpoint_url=proxy.endpoint)
    direct = dynalease.LockClient(lock_table, lease_duration=lease, endpoint_url=ddb_endpoint)

    lock = faulty.acquire("op", timeout=30.0)
    if lock_op == "heartbeat":
        deadline = time.monotonic() + 20
        while rule.injected == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(heartbeat * 2)  # and a heartbeat after it
    if lock_op != "release":
        assert rule.injected == 1, f"no {lock_op} went through the proxy"
    # The holder resolved the unknown outcome and still holds; nobody else can take it.
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
# Throttling
# ---------------------------------------------------------------------------------------------


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
    direct = dynalease.LockClient(lock_table, lease_duration=5.0, endpoint_url=ddb_endpoint)
    taken = direct.try_acquire("fresh")
    assert taken is not None, "a throttled acquire left the lock held"
    assert taken.fencing_token == 1
    taken.release()


# ---------------------------------------------------------------------------------------------
# A fleet through a lossy network
# ---------------------------------------------------------------------------------------------


def test_a_fleet_through_lost_responses_resets_drops_and_delays_stays_safe(
    proxy: FaultProxy, ddb_endpoint: str, rust_worker: str, tmp_path: Path
) -> None:
    lease = 2.0
    proxy.add(Rule("lose_response", match=lambda r: r.lock_op is not None, probability=0.08))
    proxy.add(Rule("reset", operation="TransactWriteItems", probability=0.05))
    proxy.add(Rule("drop", operation="GetItem", probability=0.03))
    proxy.add(Rule("delay", probability=0.05, delay=0.3))
    config = runner.FleetConfig(
        endpoint=ddb_endpoint,
        worker_endpoint=proxy.endpoint,
        workers={"py-sync": 2, "py-async": 1, "rust": 1},
        duration=10.0,
        locks=2,
        lease=lease,
        rust_worker=rust_worker,
        out_dir=str(tmp_path),
    )
    result = runner.run_fleet(config)
    report = result.report
    print(runner.checker.format_report(report))
    print("faults injected:", dict(proxy.injected))
    assert not result.problems
    assert report.ok, report.failures()
    assert proxy.injected["lose_response"] > 0, "no response was lost: the test proved nothing"

    # No lock stuck longer than a lease: with more holder loops than locks someone always
    # waits, so the gap between one hold's end and the next acquisition is bounded.
    holds, _ = runner.checker.load([str(tmp_path)])
    by_lock: Dict[str, List[dict]] = {}
    for hold in holds:
        by_lock.setdefault(hold["lock"], []).append(hold)
    for lock_id, lock_holds in by_lock.items():
        lock_holds.sort(key=lambda h: h["acquired"])
        for previous, following in zip(lock_holds, lock_holds[1:]):
            gap = (following["acquired"] - previous["released"]) / 1e9
            assert gap <= lease + SLACK, f"{lock_id} free but untaken for {gap:.2f} s (lease {lease} s)"


def test_a_release_with_a_lost_answer_resent_after_a_new_holder_took_the_lock_reports_success(
    proxy: FaultProxy, ddb_endpoint: str, lock_table: str
) -> None:
    # The first release lands but its answer is lost; the resend is held back until another
    # client has acquired the freed lock, so the resend's condition fails against the new holder.
    proxy.add(Rule("lose_response", table=lock_table, lock_op="release", times=1))
    proxy.add(Rule("delay", table=lock_table, lock_op="release", delay=1.5))
    faulty = dynalease.LockClient(lock_table, lease_duration=5.0, endpoint_url=proxy.endpoint)
    direct = dynalease.LockClient(lock_table, lease_duration=5.0, endpoint_url=ddb_endpoint)
    lock = faulty.acquire("r", timeout=30.0)
    contender = Contender(direct, "r", timeout=30.0)
    time.sleep(0.3)  # the contender is polling
    try:
        lock.release()  # the lock was released: this must not raise
    finally:
        taken = contender.join(30.0)
        taken.release()
