"""Python figures: dynalease (sync and asyncio) against python_dynamodb_lock 0.9.1 with boto3,
on one DynamoDB Local, in one run. Prints one JSON document of results on stdout.

Run by bench/run (make bench), which installs the peers into a private venv first.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import statistics
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import boto3
import dynalease
from python_dynamodb_lock.python_dynamodb_lock import DynamoDBLockClient

from counting_proxy import CountingProxy

LEASE = 10.0  # seconds, for every client
REGION = "us-east-1"


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def summary_ms(samples_s: list[float]) -> dict:
    return {"n": len(samples_s), "median_ms": statistics.median(samples_s) * 1e3, "p99_ms": percentile(samples_s, 99) * 1e3}


class Peer:
    """python_dynamodb_lock with boto3, on its own table (it uses another item format)."""

    table = "bench-pdl"

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        session = boto3.session.Session(aws_access_key_id="bench", aws_secret_access_key="bench", region_name=REGION)
        self.resource = session.resource("dynamodb", endpoint_url=endpoint)
        self.client = DynamoDBLockClient(
            self.resource,
            table_name=self.table,
            lease_duration=datetime.timedelta(seconds=LEASE),
            heartbeat_period=datetime.timedelta(seconds=LEASE / 3),
            safe_period=datetime.timedelta(seconds=LEASE * 2 / 3),
        )

    @classmethod
    def create_table(cls, endpoint: str) -> None:
        session = boto3.session.Session(aws_access_key_id="bench", aws_secret_access_key="bench", region_name=REGION)
        client = session.client("dynamodb", endpoint_url=endpoint)
        if cls.table not in client.list_tables()["TableNames"]:
            DynamoDBLockClient.create_dynamodb_table(client, table_name=cls.table)

    def cycle(self, lock_id: str) -> None:
        self.client.acquire_lock(lock_id).release()

    def close(self) -> None:
        self.client.close()


def dynalease_sync(endpoint: str) -> dynalease.LockClient:
    return dynalease.LockClient("bench-locks", lease_duration=LEASE, endpoint_url=endpoint, region=REGION)


def timed_cycles(cycle: Callable[[str], None], ids: list[str], per_id: int) -> dict:
    """Runs `per_id` acquire+release cycles on each id, one thread per id."""
    latencies: list[float] = []
    lock = threading.Lock()

    def run(lock_id: str) -> None:
        mine = []
        for _ in range(per_id):
            start = time.perf_counter()
            cycle(lock_id)
            mine.append(time.perf_counter() - start)
        with lock:
            latencies.extend(mine)

    cpu_start, wall_start = time.process_time(), time.perf_counter()
    with ThreadPoolExecutor(len(ids)) as pool:
        list(pool.map(run, ids))
    wall, cpu = time.perf_counter() - wall_start, time.process_time() - cpu_start
    result = summary_ms(latencies)
    result.update(cycles_per_s=len(latencies) / wall, cpu_ms_per_cycle=cpu / len(latencies) * 1e3)
    return result


async def timed_cycles_async(locks: dynalease.AsyncLockClient, ids: list[str], per_id: int) -> dict:
    latencies: list[float] = []

    async def run(lock_id: str) -> None:
        for _ in range(per_id):
            start = time.perf_counter()
            lock = await locks.acquire(lock_id)
            await lock.release()
            latencies.append(time.perf_counter() - start)

    cpu_start, wall_start = time.process_time(), time.perf_counter()
    await asyncio.gather(*(run(i) for i in ids))
    wall, cpu = time.perf_counter() - wall_start, time.process_time() - cpu_start
    result = summary_ms(latencies)
    result.update(cycles_per_s=len(latencies) / wall, cpu_ms_per_cycle=cpu / len(latencies) * 1e3)
    return result


def ids(prefix: str, n: int) -> list[str]:
    return [f"{prefix}-{uuid.uuid4().hex[:8]}-{i}" for i in range(n)]


def requests_per_cycle(ddb_port: int, cycles: int) -> dict:
    proxy = CountingProxy(ddb_port)
    out = {}
    peer = Peer(proxy.endpoint)
    sync = dynalease_sync(proxy.endpoint)
    for name, cycle in [("python_dynamodb_lock", peer.cycle), ("dynalease", lambda i: sync.acquire(i).release())]:
        cycle("warm-up")
        proxy.reset()
        for lock_id in ids("req", cycles):
            cycle(lock_id)
        out[name] = proxy.requests / cycles
    peer.close()
    return out


# Persistent waiters: one process per client, fed one lock id per round on stdin, so hundreds of
# rounds cost no process start-ups. Each warms up with one cycle (a cold first request can outlast
# the holder's settle time) and prints "ready"; then, per round, prints "waiting", waits for the
# id, prints the monotonic clock once holding, and releases.
HANDOVER_WAITER = r"""
import sys, time, dynalease
endpoint = sys.argv[1]
locks = dynalease.LockClient("bench-locks", lease_duration=10.0, endpoint_url=endpoint, region="us-east-1")
locks.acquire("waiter-warm-" + str(time.time_ns())).release()
print("ready", flush=True)
for line in iter(sys.stdin.readline, ""):
    print("waiting", flush=True)
    lock = locks.acquire(line.strip(), timeout=60.0)
    print(time.monotonic_ns(), flush=True)
    lock.release()
"""

PEER_WAITER = r"""
import sys, time, datetime, boto3
from python_dynamodb_lock.python_dynamodb_lock import DynamoDBLockClient
endpoint = sys.argv[1]
session = boto3.session.Session(aws_access_key_id="bench", aws_secret_access_key="bench", region_name="us-east-1")
client = DynamoDBLockClient(session.resource("dynamodb", endpoint_url=endpoint), table_name="bench-pdl",
    lease_duration=datetime.timedelta(seconds=10), heartbeat_period=datetime.timedelta(seconds=10 / 3),
    safe_period=datetime.timedelta(seconds=20 / 3))
client.acquire_lock("waiter-warm-" + str(time.time_ns())).release()
print("ready", flush=True)
for line in iter(sys.stdin.readline, ""):
    print("waiting", flush=True)
    lock = client.acquire_lock(line.strip(), retry_timeout=datetime.timedelta(seconds=60))
    print(time.monotonic_ns(), flush=True)
    lock.release()
client.close()
"""

HANDOVER_SETTLE = 0.2  # seconds: lets the waiter find the lock held before the release


def handover(endpoint: str, rounds: int, holder_cycle: Callable[[str], Callable[[], None]], waiter_code: str) -> dict:
    """A holder in this process releases while a waiter in another process waits for the same
    id; the handover is from just before the release to the waiter holding, both on the
    machine's monotonic clock."""
    samples = []
    waiter = subprocess.Popen([sys.executable, "-c", waiter_code, endpoint], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert waiter.stdin is not None and waiter.stdout is not None
    try:
        ready = waiter.stdout.readline().strip()
        assert ready == "ready", f"handover waiter: {ready!r}"
        for lock_id in ids("handover", rounds):
            release = holder_cycle(lock_id)
            waiter.stdin.write(lock_id + "\n")
            waiter.stdin.flush()
            ready = waiter.stdout.readline().strip()
            assert ready == "waiting", f"handover waiter: {ready!r}"
            time.sleep(HANDOVER_SETTLE)
            released_at = time.monotonic_ns()
            release()
            acquired_at = int(waiter.stdout.readline())
            samples.append((acquired_at - released_at) / 1e9)
    finally:
        waiter.stdin.close()
        waiter.wait(60)
    return summary_ms(samples)


COLD_START = r"""
import time
t0 = time.perf_counter()
import dynalease
t1 = time.perf_counter()
locks = dynalease.LockClient("bench-locks", lease_duration=10.0, endpoint_url=ENDPOINT, region="us-east-1")
t2 = time.perf_counter()
locks.acquire("cold-" + str(time.time_ns())).release()
t3 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2)
"""

PEER_COLD_START = r"""
import time
t0 = time.perf_counter()
import boto3, datetime
from python_dynamodb_lock.python_dynamodb_lock import DynamoDBLockClient
t1 = time.perf_counter()
session = boto3.session.Session(aws_access_key_id="bench", aws_secret_access_key="bench", region_name="us-east-1")
client = DynamoDBLockClient(session.resource("dynamodb", endpoint_url=ENDPOINT), table_name="bench-pdl")
t2 = time.perf_counter()
client.acquire_lock("cold-" + str(time.time_ns())).release()
t3 = time.perf_counter()
client.close()
print(t1 - t0, t2 - t1, t3 - t2)
"""


def cold_start(endpoint: str, code: str, runs: int) -> dict:
    phases: list[list[float]] = [[], [], []]
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", code.replace("ENDPOINT", repr(endpoint))], capture_output=True, text=True, check=True)
        for phase, value in zip(phases, map(float, out.stdout.split())):
            phase.append(value)
    names = ["import", "client", "first_acquire_release"]
    return {name: statistics.median(values) * 1e3 for name, values in zip(names, phases)}


def many_locks(endpoint: str, count: int, hold_s: float, which: str) -> dict:
    """Holds `count` heartbeating locks for `hold_s` seconds in a fresh process; reports RSS and
    CPU while holding."""
    code = MANY_LOCKS.replace("ENDPOINT", repr(endpoint)).replace("COUNT", str(count)).replace("HOLD", str(hold_s)).replace("WHICH", repr(which))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


MANY_LOCKS = r"""
import json, time, uuid, datetime
def rss_mb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmRSS:"))
which, count, hold = WHICH, COUNT, HOLD
# Only the client under test is imported, so RSS is its own.
if which == "dynalease":
    import dynalease
    rss_before = rss_mb()
    client = dynalease.LockClient("bench-locks", lease_duration=10.0, endpoint_url=ENDPOINT, region="us-east-1")
    held = [client.acquire(f"many-{uuid.uuid4().hex}") for _ in range(count)]
else:
    import boto3
    from python_dynamodb_lock.python_dynamodb_lock import DynamoDBLockClient
    rss_before = rss_mb()
    session = boto3.session.Session(aws_access_key_id="bench", aws_secret_access_key="bench", region_name="us-east-1")
    peer = DynamoDBLockClient(session.resource("dynamodb", endpoint_url=ENDPOINT), table_name="bench-pdl",
        lease_duration=datetime.timedelta(seconds=10), heartbeat_period=datetime.timedelta(seconds=10 / 3),
        safe_period=datetime.timedelta(seconds=20 / 3))
    held = [peer.acquire_lock(f"many-{uuid.uuid4().hex}") for _ in range(count)]
cpu0 = time.process_time()
time.sleep(hold)
cpu = time.process_time() - cpu0
lost = sum(1 for lock in held if getattr(lock, "lost", False))
print(json.dumps({"rss_mb": rss_mb(), "rss_before_mb": rss_before, "cpu_percent": cpu / hold * 100, "lost": lost}))
for lock in held:
    lock.release()
if which != "dynalease":
    peer.close()
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--ops", type=int, default=200)
    parser.add_argument("--handover-rounds", type=int, default=200)
    # Peers whose waiter sleeps a whole retry period per round get fewer rounds.
    parser.add_argument("--peer-handover-rounds", type=int, default=5)
    parser.add_argument("--many", type=int, default=1000)
    parser.add_argument("--hold-seconds", type=float, default=60.0)
    parser.add_argument("--cold-runs", type=int, default=5)
    args = parser.parse_args()
    endpoint = args.endpoint
    ddb_port = int(endpoint.rsplit(":", 1)[1])

    dynalease.create_table("bench-locks", endpoint_url=endpoint, region=REGION)
    Peer.create_table(endpoint)
    peer = Peer(endpoint)
    sync = dynalease_sync(endpoint)
    results: dict = {"python_version": sys.version.split()[0], "peer_handover_rounds": args.peer_handover_rounds}

    results["requests_per_cycle"] = requests_per_cycle(ddb_port, args.ops)

    def sync_cycle(lock_id: str) -> None:
        sync.acquire(lock_id).release()

    async def async_runs() -> dict:
        locks = dynalease.AsyncLockClient("bench-locks", lease_duration=LEASE, endpoint_url=endpoint, region=REGION)
        return {
            "1": await timed_cycles_async(locks, ids("a1", 1), args.ops),
            "16": await timed_cycles_async(locks, ids("a16", 16), max(1, args.ops // 16) * 4),
        }

    results["cycles"] = {
        "python_dynamodb_lock": {"1": timed_cycles(peer.cycle, ids("p1", 1), args.ops), "16": timed_cycles(peer.cycle, ids("p16", 16), max(1, args.ops // 16) * 4)},
        "dynalease sync": {"1": timed_cycles(sync_cycle, ids("s1", 1), args.ops), "16": timed_cycles(sync_cycle, ids("s16", 16), max(1, args.ops // 16) * 4)},
        "dynalease asyncio": asyncio.run(async_runs()),
    }

    def dynalease_holder(lock_id: str) -> Callable[[], None]:
        return sync.acquire(lock_id).release

    def peer_holder(lock_id: str) -> Callable[[], None]:
        return peer.client.acquire_lock(lock_id).release

    results["handover"] = {
        "python_dynamodb_lock": handover(endpoint, args.peer_handover_rounds, peer_holder, PEER_WAITER),
        "dynalease": handover(endpoint, args.handover_rounds, dynalease_holder, HANDOVER_WAITER),
    }
    results["cold_start"] = {
        "python_dynamodb_lock": cold_start(endpoint, PEER_COLD_START, args.cold_runs),
        "dynalease": cold_start(endpoint, COLD_START, args.cold_runs),
    }
    results["many_locks"] = {
        "count": args.many,
        "hold_seconds": args.hold_seconds,
        "python_dynamodb_lock": many_locks(endpoint, args.many, args.hold_seconds, "peer"),
        "dynalease": many_locks(endpoint, args.many, args.hold_seconds, "dynalease"),
    }
    peer.close()
    json.dump(results, sys.stdout, indent=2)


if __name__ == "__main__":
    main()
