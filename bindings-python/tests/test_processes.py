"""Behaviour across processes: a holder killed with SIGKILL, Ctrl-C in a blocked acquire,
fork(), and a Lambda-style handler."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import dynalease
from conftest import unique


def spawn(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_line(process: subprocess.Popen[str], expected: str, timeout: float = 20.0) -> None:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line.strip() == expected:
            return
        if not line and process.poll() is not None:
            break
    process.kill()
    _, err = process.communicate()
    raise AssertionError(f"child never printed {expected!r}; stderr:\n{err}")


def test_killed_holder_frees_the_lock_only_after_its_lease(ddb_endpoint: str, ddb_lock_table: str) -> None:
    lease = 2.0
    holder = spawn(
        """
        import sys, time, dynalease
        locks = dynalease.LockClient(sys.argv[1], lease_duration=float(sys.argv[3]), endpoint_url=sys.argv[2])
        lock = locks.acquire("victim", timeout=10.0)
        print("acquired", flush=True)
        time.sleep(600)
        """,
        ddb_lock_table,
        ddb_endpoint,
        str(lease),
    )
    wait_for_line(holder, "acquired")
    # Let it heartbeat at least once, so the lease being waited out is a renewed one.
    time.sleep(lease / 2)
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=10)
    killed_at = time.monotonic()

    locks = dynalease.LockClient(ddb_lock_table, lease_duration=lease, endpoint_url=ddb_endpoint)
    assert locks.try_acquire("victim") is None, "the lease of a killed holder must still hold"
    lock = locks.acquire("victim", timeout=lease * 5)
    waited = time.monotonic() - killed_at
    assert waited >= lease * 0.95, f"taken over after {waited:.2f}s, before the {lease}s lease ran out"
    assert waited < lease + 4.0
    lock.release()


def test_ctrl_c_interrupts_a_blocked_acquire(ddb_endpoint: str, ddb_lock_table: str) -> None:
    locks = dynalease.LockClient(ddb_lock_table, endpoint_url=ddb_endpoint)
    held = locks.acquire("blocked")
    waiter = spawn(
        """
        import sys, time, dynalease
        locks = dynalease.LockClient(sys.argv[1], endpoint_url=sys.argv[2])
        locks.try_acquire("warm-up")  # the first call builds the runtime and client
        print("waiting", flush=True)
        try:
            locks.acquire("blocked")
        except KeyboardInterrupt:
            print("interrupted", flush=True)
            sys.exit(42)
        print("acquired?!", flush=True)
        """,
        ddb_lock_table,
        ddb_endpoint,
    )
    wait_for_line(waiter, "waiting")
    time.sleep(0.5)  # well inside the blocking acquire
    sent_at = time.monotonic()
    waiter.send_signal(signal.SIGINT)
    try:
        out, err = waiter.communicate(timeout=5)
    finally:
        waiter.kill()
    elapsed = time.monotonic() - sent_at
    assert waiter.returncode == 42, f"rc={waiter.returncode} out={out!r} err={err!r}"
    assert "interrupted" in out
    assert elapsed < 1.0, f"KeyboardInterrupt took {elapsed:.2f}s"
    held.release()


def wait_child(pid: int, timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    raise AssertionError("the forked child hung (did it reuse the parent's runtime?)")


def test_fork_child_uses_fresh_and_inherited_clients(ddb_endpoint: str, ddb_lock_table: str) -> None:
    memory = f"memory://{unique('fork')}"
    dynalease.create_table("forked", endpoint_url=memory)
    locks = dynalease.LockClient(ddb_lock_table, endpoint_url=ddb_endpoint)
    # The parent's runtime, transport and a heartbeat task are all live before the fork.
    parent_lock = locks.acquire("parent")

    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        code = 1
        try:
            # The child has a copy of the parent's lock object, not the lock: it must not
            # release or fence with the parent's guid.
            assert parent_lock.lost
            try:
                parent_lock.release()
                raise AssertionError("a forked child released its parent's lock")
            except dynalease.LockLostError as refused:
                assert "forked child" in str(refused)
            fresh = dynalease.LockClient(ddb_lock_table, endpoint_url=ddb_endpoint)
            lock = fresh.acquire("child", timeout=10.0)
            assert fresh.try_acquire("parent") is None
            lock.release()
            inherited = locks.acquire("child-2", timeout=10.0)  # a client made by the parent
            inherited.release()
            mem = dynalease.LockClient("forked", endpoint_url=memory)
            mem.acquire("m", timeout=5.0).release()
            code = 0
        except BaseException as error:  # report, then exit without running pytest's cleanup
            print(f"child failed: {error!r}", file=sys.stderr, flush=True)
        finally:
            os._exit(code)

    assert wait_child(pid) == 0
    # The parent is unaffected by the child.
    assert not parent_lock.lost
    again = locks.acquire("child", timeout=5.0)
    again.release()
    parent_lock.release()


def test_lambda_style_handler(ddb_endpoint: str) -> None:
    """A handler in the shape AWS Lambda calls: clients built once at cold start, the sync API
    inside the handler."""
    lock_table, kv_table = unique("lambda-locks"), unique("lambda-kv")
    dynalease.create_table(lock_table, endpoint_url=ddb_endpoint)
    dynalease.create_table(kv_table, partition_key="pk", sort_key="sk", endpoint_url=ddb_endpoint)

    # "module level", run once per cold start
    locks = dynalease.LockClient(lock_table, lease_duration=10.0, endpoint_url=ddb_endpoint)
    store = dynalease.KVStore(kv_table, partition="orders", endpoint_url=ddb_endpoint)

    def handler(event: dict, context: object) -> dict:
        order = event["order_id"]
        lock = locks.try_acquire(f"order/{order}")
        if lock is None:
            return {"statusCode": 409, "body": "in progress elsewhere"}
        with lock_released(lock):
            previous = store.get(f"orders/{order}")
            count = previous.value["processed"] + 1 if previous else 1
            store.atomic_put(f"orders/{order}", {"processed": count}, previous=previous, lock=lock)
            return {"statusCode": 200, "body": count}

    class lock_released:
        def __init__(self, lock: dynalease.Lock) -> None:
            self.lock = lock

        def __enter__(self) -> None:
            return None

        def __exit__(self, *exc: object) -> None:
            self.lock.release()

    assert handler({"order_id": "o-1"}, None) == {"statusCode": 200, "body": 1}
    assert handler({"order_id": "o-1"}, None) == {"statusCode": 200, "body": 2}
    busy = locks.acquire("order/o-1")
    assert handler({"order_id": "o-1"}, None)["statusCode"] == 409
    busy.release()


ASYNC_THEN_EXIT = """
import asyncio, sys, dynalease
async def main():
    locks = dynalease.AsyncLockClient(sys.argv[2], endpoint_url=sys.argv[1])
    async with locks.lock("exit") as lock:
        assert lock.fencing_token
asyncio.run(main())
"""


def test_the_interpreter_exits_cleanly_right_after_async_calls(ddb_endpoint: str, ddb_lock_table: str) -> None:
    """A runtime task that has just completed an asyncio future touches Python once more; the
    atexit hook waits for it, or the interpreter aborts while finalizing (seen in about one run
    in four before the hook)."""
    for _ in range(12):
        done = subprocess.run([sys.executable, "-c", ASYNC_THEN_EXIT, ddb_endpoint, ddb_lock_table], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
