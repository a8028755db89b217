"""Python figures: dynalease (sync and asyncio) against python_dynamodb_lock 0.9.1 with boto3,
on one DynamoDB Local, in one run. Prints one JSON document of results on stdout.

Run by bench/run (make bench), which installs the peers into a private venv first.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import random
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
from python_dynamodb_lock.python_dynamodb_lock import DynamoDBLockClient, DynamoDBLockError

from counting_proxy import CountingProxy, summarize

LEASE = 10.0  # seconds, for every client
# Handovers release up to one poll interval (50 ms) later than asked, at random: a polling
# waiter reads on a 50 ms grid from its start, and a release always at the same offset from
# that start would land at the same phase of it every round (the best or the worst case), where
# in use releases fall at every phase.
RELEASE_SPREAD_S = 0.05
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
# the holder's settle time) and prints "ready"; then, per round, prints "waiting" and the
# monotonic clock, waits for the id (up to argv[2] seconds), prints the monotonic clock once
# holding, and releases. Clients keep their defaults (poll interval, back-off): what users get.
HANDOVER_WAITER = r"""
import sys, time, dynalease
endpoint, timeout = sys.argv[1], float(sys.argv[2])
locks = dynalease.LockClient("bench-locks", lease_duration=10.0, endpoint_url=endpoint, region="us-east-1")
locks.acquire("waiter-warm-" + str(time.time_ns())).release()
print("ready", flush=True)
for line in iter(sys.stdin.readline, ""):
    print("waiting", time.monotonic_ns(), flush=True)
    lock = locks.acquire(line.strip(), timeout=timeout)
    print(time.monotonic_ns(), flush=True)
    lock.release()
"""

PEER_WAITER = r"""
import sys, time, datetime, boto3
from python_dynamodb_lock.python_dynamodb_lock import DynamoDBLockClient
endpoint, timeout = sys.argv[1], float(sys.argv[2])
session = boto3.session.Session(aws_access_key_id="bench", aws_secret_access_key="bench", region_name="us-east-1")
client = DynamoDBLockClient(session.resource("dynamodb", endpoint_url=endpoint), table_name="bench-pdl",
    lease_duration=datetime.timedelta(seconds=10), heartbeat_period=datetime.timedelta(seconds=10 / 3),
    safe_period=datetime.timedelta(seconds=20 / 3))
client.acquire_lock("waiter-warm-" + str(time.time_ns())).release()
print("ready", flush=True)
for line in iter(sys.stdin.readline, ""):
    print("waiting", time.monotonic_ns(), flush=True)
    lock = client.acquire_lock(line.strip(), retry_timeout=datetime.timedelta(seconds=timeout))
    print(time.monotonic_ns(), flush=True)
    lock.release()
client.close()
"""

HANDOVER_SETTLE = 0.2  # seconds: lets the waiter find the lock held before the release


def handover_rounds(endpoint: str, rounds: int, holder_cycle: Callable[[str], Callable[[], None]], waiter_code: str,
                    wait_s: float = HANDOVER_SETTLE, waiter_endpoint: str | None = None, held_before_s: float = 0.0) -> list[dict]:
    """A holder in this process releases while a waiter in another process waits for the same
    id; the handover is from just before the release to the waiter holding, both on the
    machine's monotonic clock. `wait_s` runs from the waiter's start to the release. Per round:
    the waiter's start, the release and the handover (ns)."""
    out = []
    waiter = subprocess.Popen([sys.executable, "-c", waiter_code, waiter_endpoint or endpoint, str(wait_s + 60)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert waiter.stdin is not None and waiter.stdout is not None
    try:
        ready = waiter.stdout.readline().strip()
        assert ready == "ready", f"handover waiter: {ready!r}"
        for lock_id in ids("handover", rounds):
            release = holder_cycle(lock_id)
            time.sleep(held_before_s)
            waiter.stdin.write(lock_id + "\n")
            waiter.stdin.flush()
            word, _, started = waiter.stdout.readline().strip().partition(" ")
            assert word == "waiting", f"handover waiter: {word!r}"
            time.sleep(max(0.0, wait_s + random.uniform(0.0, RELEASE_SPREAD_S) - (time.monotonic_ns() - int(started)) / 1e9))
            released_at = time.monotonic_ns()
            release()
            acquired_at = int(waiter.stdout.readline())
            out.append({"waiting_ns": int(started), "released_ns": released_at, "handover_ns": acquired_at - released_at})
    finally:
        waiter.stdin.close()
        waiter.wait(60)
    return out


def handover(endpoint: str, rounds: int, holder_cycle: Callable[[str], Callable[[], None]], waiter_code: str,
             wait_s: float = HANDOVER_SETTLE, held_before_s: float = 0.0) -> dict:
    return summary_ms([r["handover_ns"] / 1e9 for r in handover_rounds(endpoint, rounds, holder_cycle, waiter_code, wait_s, held_before_s=held_before_s)])


STEADY_AFTER_S = 10.0  # of a long wait: what a waiter costs once any fast start is over
# The waiter arrives at a lock held for a while, so that a release 1, 20 or 60 s later does not
# coincide with one of the holder's heartbeats (every 3.333 s from its acquisition: 20 s is six).
HELD_BEFORE_WAIT_S = 1.5


def long_wait(endpoint: str, ddb_port: int, wait_s: float, holder_cycle: Callable[[str], Callable[[], None]], waiter_code: str) -> dict:
    """One waiter, through its own counting proxy, waits `wait_s` for a lock another process
    holds: the requests it sent while waiting, by operation, and their capacity units."""
    proxy = CountingProxy(ddb_port)
    [round_] = handover_rounds(endpoint, 1, holder_cycle, waiter_code, wait_s, waiter_endpoint=proxy.endpoint, held_before_s=HELD_BEFORE_WAIT_S)
    events = proxy.events()
    start, end = round_["waiting_ns"], round_["released_ns"]
    steady_start = start + int(STEADY_AFTER_S * 1e9)
    return {
        "seconds": (end - start) / 1e9,
        "while_waiting": summarize(events, start, end),
        "steady_seconds": (end - steady_start) / 1e9,
        "steady": summarize(events, steady_start, end),
        "handover_ms": round_["handover_ns"] / 1e6,
        "proxy_problems": proxy.problems,
    }


def waiting(endpoint: str, ddb_port: int, args: argparse.Namespace) -> dict:
    """Figure B: one long wait (reads per minute) and handovers after short and long waits, for
    each client; everything runs side by side on separate ids and processes."""
    sync = dynalease_sync(endpoint)
    peers: list[Peer] = []

    def peer_holder() -> Callable[[str], Callable[[], None]]:
        peer = Peer(endpoint)  # one per thread: boto3 resources are not thread-safe
        peers.append(peer)
        return lambda lock_id: peer.client.acquire_lock(lock_id).release

    clients = {
        "python_dynamodb_lock": (peer_holder, PEER_WAITER, args.peer_handover_rounds),
        "dynalease": (lambda: (lambda lock_id: sync.acquire(lock_id).release), HANDOVER_WAITER, args.short_wait_rounds),
    }
    jobs = {}
    with ThreadPoolExecutor(3 * len(clients)) as pool:
        for name, (holder, code, short_rounds) in clients.items():
            jobs[name, "long"] = pool.submit(long_wait, endpoint, ddb_port, args.wait_seconds, holder(), code)
            jobs[name, "1"] = pool.submit(handover, endpoint, short_rounds, holder(), code, 1.0, HELD_BEFORE_WAIT_S)
            jobs[name, "20"] = pool.submit(handover, endpoint, args.long_wait_rounds, holder(), code, 20.0, HELD_BEFORE_WAIT_S)
    for peer in peers:
        peer.close()
    return {name: {"long_wait": jobs[name, "long"].result(), "handover_after_1s": jobs[name, "1"].result(),
                   "handover_after_20s": jobs[name, "20"].result()} for name in clients}


class Windows:
    """Time windows on the monotonic clock (the proxy stamps each request with it), by label:
    what each operation sent is read off the proxy's events afterwards."""

    def __init__(self) -> None:
        self.spans: dict[str, list[tuple[int, int]]] = {}

    def time(self, label: str, action: Callable[[], object]) -> object:
        start = time.monotonic_ns()
        try:
            return action()
        finally:
            self.spans.setdefault(label, []).append((start, time.monotonic_ns()))

    def per_call(self, events: list) -> dict:
        out = {}
        for label, spans in self.spans.items():
            totals = [summarize(events, start, end) for start, end in spans]
            out[label] = per_call(totals, len(spans))
        return out


def per_call(totals: list[dict], calls: int) -> dict:
    """Average requests and units per call, from summaries of `calls` windows (or of one window
    holding `calls` calls)."""
    ops: dict = {}
    for total in totals:
        for op, entry in total["ops"].items():
            into = ops.setdefault(op, {"requests": 0.0, "condition_failed": 0.0, "cancelled": 0.0, "error": 0.0})
            for key in into:
                into[key] += entry[key] / calls
    return {
        "calls": calls,
        "requests": sum(t["requests"] for t in totals) / calls,
        "read_units": sum(t["read_units"] for t in totals) / calls,
        "write_units": sum(t["write_units"] for t in totals) / calls,
        "ops": ops,
    }


HEARTBEAT_EVERY = 0.5  # seconds, for the heartbeat figure only (a shorter hold, same requests)


def heartbeats(proxy: CountingProxy, hold: Callable[[], Callable[[], None]], hold_s: float) -> dict:
    """Holds one lock for `hold_s`; each write sent in between is one heartbeat."""
    release = hold()
    start = time.monotonic_ns()
    time.sleep(hold_s)
    end = time.monotonic_ns()
    release()
    total = summarize(proxy.events(), start, end)
    beats = sum(entry["requests"] for op, entry in total["ops"].items() if op in ("PutItem", "UpdateItem"))
    return per_call([total], max(1, beats))


def capacity(endpoint: str, ddb_port: int, n: int) -> dict:
    """Figure A: DynamoDB requests and capacity units per operation, each client through its own
    counting proxy; lock holders that must be someone else use the direct endpoint."""
    out = {}
    hold_s = HEARTBEAT_EVERY * 3 + 0.2

    # dynalease (sync): locks, lock data, KV.
    proxy = CountingProxy(ddb_port)
    locks = dynalease.LockClient("bench-locks", lease_duration=LEASE, endpoint_url=proxy.endpoint, region=REGION)
    other = dynalease_sync(endpoint)
    kv = dynalease.KVStore("bench-kv", partition=f"cost-{uuid.uuid4().hex[:8]}", endpoint_url=proxy.endpoint, region=REGION)
    w = Windows()
    for lock_id in ids("cost", n):
        lock = w.time("acquire", lambda: locks.acquire(lock_id))
        w.time("lock-data update", lambda: lock.update_data({"step": 1, "by": "bench"}))
        w.time("fenced KV write", lambda: kv.put(f"fenced/{lock_id}", {"n": 1}, lock=lock))
        w.time("release", lock.release)
    for lock_id in ids("contended", n):
        held = other.acquire(lock_id)
        assert w.time("contended acquire attempt", lambda: locks.try_acquire(lock_id)) is None
        held.release()
    for key in ids("kv", n):
        pair = w.time("KV put", lambda: kv.put(key, {"state": "idle", "n": 1}))
        w.time("KV get", lambda: kv.get(key))
        w.time("KV CAS (atomic put by version)", lambda: kv.atomic_put(key, {"state": "busy", "n": 2}, previous=pair))
        w.time("KV delete", lambda: kv.delete(key))
    for page in range(n):
        prefix = f"list{page}/"
        for i in range(LIST_PAGE):
            kv.put(f"{prefix}{i}", {"n": i})
        assert len(w.time("KV list page", lambda: kv.list(prefix))) == LIST_PAGE
    out["dynalease"] = w.per_call(proxy.events())
    beating = dynalease.LockClient("bench-locks", lease_duration=LEASE, heartbeat_period=HEARTBEAT_EVERY, endpoint_url=proxy.endpoint, region=REGION)
    out["dynalease"]["heartbeat"] = heartbeats(proxy, lambda: beating.acquire(ids("beat", 1)[0]).release, hold_s)
    out["dynalease"]["proxy_problems"] = proxy.problems

    # python_dynamodb_lock: no lock data, no KV.
    proxy = CountingProxy(ddb_port)
    peer = Peer(proxy.endpoint)
    holder = Peer(endpoint)
    w = Windows()
    for lock_id in ids("cost", n):
        lock = w.time("acquire", lambda: peer.client.acquire_lock(lock_id))
        w.time("release", lock.release)
    for lock_id in ids("contended", n):
        held = holder.client.acquire_lock(lock_id)
        try:
            # The shortest retry timeout: one look at the item, no second try.
            w.time("contended acquire attempt", lambda: peer.client.acquire_lock(lock_id, retry_timeout=datetime.timedelta(microseconds=1)))
            raise AssertionError("python_dynamodb_lock took a held lock")
        except DynamoDBLockError:
            pass
        held.release()
    out["python_dynamodb_lock"] = w.per_call(proxy.events())
    peer.close()
    holder.close()
    beating = DynamoDBLockClient(
        boto3.session.Session(aws_access_key_id="bench", aws_secret_access_key="bench", region_name=REGION).resource("dynamodb", endpoint_url=proxy.endpoint),
        table_name=Peer.table, lease_duration=datetime.timedelta(seconds=LEASE), heartbeat_period=datetime.timedelta(seconds=HEARTBEAT_EVERY),
        safe_period=datetime.timedelta(seconds=LEASE * 2 / 3))
    out["python_dynamodb_lock"]["heartbeat"] = heartbeats(proxy, lambda: beating.acquire_lock(ids("beat", 1)[0]).release, hold_s)
    beating.close()
    out["python_dynamodb_lock"]["proxy_problems"] = proxy.problems
    return out


LIST_PAGE = 10  # pairs per listed prefix: one Query page


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


def log(message: str) -> None:
    print(f"python_bench: {message}", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--ops", type=int, default=200)
    parser.add_argument("--handover-rounds", type=int, default=200)
    # Peers whose waiter sleeps a whole retry period per round get fewer rounds.
    parser.add_argument("--peer-handover-rounds", type=int, default=5)
    parser.add_argument("--many", type=int, default=1000)
    parser.add_argument("--hold-seconds", type=float, default=60.0)
    parser.add_argument("--many-runs", type=int, default=3, help="Node's figure 6 only (its verdict pairs)")
    parser.add_argument("--cycle-runs", type=int, default=3, help="Node's figures 2 and 4 only (one process per run)")
    parser.add_argument("--cold-runs", type=int, default=5)
    # Waiting: one wait this long through a counting proxy, and handovers after 1 s and 20 s
    # waits (dynalease's waiters run more 1 s rounds; peers run --peer-handover-rounds).
    parser.add_argument("--wait-seconds", type=float, default=60.0)
    parser.add_argument("--short-wait-rounds", type=int, default=None)
    parser.add_argument("--long-wait-rounds", type=int, default=None)
    # Capacity units: calls of each operation (the units do not vary; a few calls show that).
    parser.add_argument("--cost-ops", type=int, default=10)
    args = parser.parse_args()
    # Derived from the options make bench-quick already shortens (see bench/run).
    if args.short_wait_rounds is None:
        args.short_wait_rounds = max(5, args.handover_rounds // 10)
    if args.long_wait_rounds is None:
        args.long_wait_rounds = min(3, args.peer_handover_rounds)
    endpoint = args.endpoint
    ddb_port = int(endpoint.rsplit(":", 1)[1])

    dynalease.create_table("bench-locks", endpoint_url=endpoint, region=REGION)
    dynalease.create_table("bench-kv", partition_key="pk", sort_key="sk", endpoint_url=endpoint, region=REGION)
    Peer.create_table(endpoint)
    peer = Peer(endpoint)
    sync = dynalease_sync(endpoint)
    results: dict = {"python_version": sys.version.split()[0], "peer_handover_rounds": args.peer_handover_rounds,
                     "wait_seconds": args.wait_seconds, "long_wait_rounds": args.long_wait_rounds, "steady_after_seconds": STEADY_AFTER_S,
                     "heartbeat_seconds": LEASE / 3, "list_page": LIST_PAGE}

    log("1. requests per cycle")
    results["requests_per_cycle"] = requests_per_cycle(ddb_port, args.ops)
    log("A. capacity units per operation")
    results["capacity"] = capacity(endpoint, ddb_port, args.cost_ops)

    def sync_cycle(lock_id: str) -> None:
        sync.acquire(lock_id).release()

    # Counting is always on; this also reads a whole snapshot after every cycle, far more often
    # than any exporter reads it (OpenTelemetry collects every 60 s by default).
    def sync_cycle_reading_stats(lock_id: str) -> None:
        sync.acquire(lock_id).release()
        sync.stats()

    async def async_runs() -> dict:
        locks = dynalease.AsyncLockClient("bench-locks", lease_duration=LEASE, endpoint_url=endpoint, region=REGION)
        return {
            "1": await timed_cycles_async(locks, ids("a1", 1), args.ops),
            "16": await timed_cycles_async(locks, ids("a16", 16), max(1, args.ops // 16) * 4),
        }

    log("2/4. uncontended cycles")
    results["cycles"] = {
        "python_dynamodb_lock": {"1": timed_cycles(peer.cycle, ids("p1", 1), args.ops), "16": timed_cycles(peer.cycle, ids("p16", 16), max(1, args.ops // 16) * 4)},
        "dynalease sync": {"1": timed_cycles(sync_cycle, ids("s1", 1), args.ops), "16": timed_cycles(sync_cycle, ids("s16", 16), max(1, args.ops // 16) * 4)},
        "dynalease asyncio": asyncio.run(async_runs()),
    }

    log("4. the cost of reading stats(): plain and reading runs taking turns, in this process")
    plain, reading = [], []
    for round_ in range(3):
        plain.append(timed_cycles(sync_cycle, ids(f"mp{round_}", 1), args.ops)["cpu_ms_per_cycle"])
        reading.append(timed_cycles(sync_cycle_reading_stats, ids(f"mr{round_}", 1), args.ops)["cpu_ms_per_cycle"])
    results["stats_read"] = {"dynalease sync": {"plain": statistics.median(plain), "reading": statistics.median(reading), "runs": 3}}

    def dynalease_holder(lock_id: str) -> Callable[[], None]:
        return sync.acquire(lock_id).release

    def peer_holder(lock_id: str) -> Callable[[], None]:
        return peer.client.acquire_lock(lock_id).release

    log("3. handover")
    results["handover"] = {
        "python_dynamodb_lock": handover(endpoint, args.peer_handover_rounds, peer_holder, PEER_WAITER),
        "dynalease": handover(endpoint, args.handover_rounds, dynalease_holder, HANDOVER_WAITER),
    }
    log(f"B. waiting: one {args.wait_seconds:.0f} s wait, handovers after 1 s and 20 s waits, side by side")
    results["waiting"] = waiting(endpoint, ddb_port, args)
    log("5. cold start")
    results["cold_start"] = {
        "python_dynamodb_lock": cold_start(endpoint, PEER_COLD_START, args.cold_runs),
        "dynalease": cold_start(endpoint, COLD_START, args.cold_runs),
    }
    log(f"6. {args.many} locks for {args.hold_seconds:.0f} s")
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
