"""A fleet worker in Python: competes for lease locks and increments a fenced counter under each.

It implements the worker protocol of docs/fleet.md (the same flags and log lines as the Rust
worker, core/examples/fleet_worker.rs, and any later Node worker), with two client kinds:

    py-sync   dynalease.LockClient + KVStore, one holder loop
    py-async  dynalease.AsyncLockClient + AsyncKVStore, --tasks holder loops in one event loop

    python tests/fleet/worker.py --client py-sync --endpoint http://127.0.0.1:PORT \
        --lock-table T --kv-table K --kv-partition P --locks a,b,c,d --duration 10 --log w1.jsonl

Times in the log are CLOCK_MONOTONIC nanoseconds (time.monotonic_ns() on Linux), which every
process on the machine shares, so the checker can compare holds across processes and languages.

With --semaphore NAME:N, --election NAME and --handoff-share F a worker also takes permits of a
shared semaphore, campaigns in and observes a shared election, and hands locks off to other
processes through a KV mailbox and takes theirs up (docs/fleet.md, "Semaphore, election,
hand-offs"). py-sync runs each of those loops in a thread of its own, py-async as tasks.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import threading
import time
from typing import IO, Any, Dict, List, Optional

import dynalease

CLIENT_KINDS = ("py-sync", "py-async")

#: A write that may or may not have landed (the client could not tell after its resends). Before
#: the bindings had this class every transport error counted as possibly landed; with it, the
#: other transport errors say the write certainly did not land, and the checker holds them to it.
OUTCOME_UNKNOWN = getattr(dynalease, "OutcomeUnknownError", None)
#: Refused by DynamoDB or by the client: certainly not applied.
REFUSED = (dynalease.LockLostError, dynalease.KeyModifiedError, dynalease.KeyExistsError, dynalease.KeyNotFoundError)


def increment_outcome(error: BaseException) -> Optional[bool]:
    """What a failed increment says about its write: False not applied, None unknown."""
    if isinstance(error, REFUSED):
        return False
    if OUTCOME_UNKNOWN is None:
        return None
    return None if isinstance(error, OUTCOME_UNKNOWN) else False


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--client", required=True, choices=CLIENT_KINDS)
    parser.add_argument("--endpoint", required=True, help="DynamoDB endpoint URL (DynamoDB Local or the fault proxy)")
    parser.add_argument("--lock-table", required=True)
    parser.add_argument("--kv-table", required=True)
    parser.add_argument("--kv-partition", required=True)
    parser.add_argument("--locks", required=True, help="comma-separated lock ids")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds from start to stop acquiring")
    parser.add_argument("--deadline-ns", type=int, default=None, help="CLOCK_MONOTONIC ns to stop acquiring (overrides --duration)")
    parser.add_argument("--lease", type=float, default=3.0, help="lease duration, seconds")
    parser.add_argument("--heartbeat", type=float, default=None, help="heartbeat period, seconds (default lease/3)")
    parser.add_argument("--hold-ms", type=float, default=20.0, help="work time under the lock: uniform in [0, this] ms")
    parser.add_argument("--log", required=True, help="JSONL file to append one line per hold to")
    parser.add_argument("--tasks", type=int, default=1, help="py-async: holder loops in this process")
    parser.add_argument("--announce", action="store_true", help="also log an 'acquired' event as soon as a lock is held")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--semaphore", default=None, help="NAME:N: take permits of this semaphore for a share of the acquisitions")
    parser.add_argument("--semaphore-share", type=float, default=0.25)
    parser.add_argument("--election", default=None, help="NAME: campaign in and observe this election")
    parser.add_argument("--term-ms", default="300:2000", help="MIN:MAX: how long a term is kept, ms")
    parser.add_argument("--observe-ms", type=float, default=50.0, help="the observer's watch interval, ms")
    parser.add_argument("--observe-tail-ms", type=float, default=1500.0, help="the observer watches until this long after the deadline, ms")
    parser.add_argument("--handoff-share", type=float, default=0.0, help="share of lock holds handed off to another process")
    args = parser.parse_args(argv)
    args.lock_ids = [lock for lock in args.locks.split(",") if lock]
    if not args.lock_ids:
        parser.error("--locks names no lock id")
    if args.tasks < 1:
        parser.error("--tasks must be at least 1")
    if args.deadline_ns is None:
        args.deadline_ns = time.monotonic_ns() + int(args.duration * 1e9)
    args.permits = None
    if args.semaphore is not None:
        name, _, permits = args.semaphore.rpartition(":")
        if not name or not permits.isdigit() or int(permits) < 1:
            parser.error("--semaphore: NAME:N with N >= 1")
        args.semaphore, args.permits = name, int(permits)
    low, _, high = args.term_ms.partition(":")
    try:
        args.term = (float(low) / 1000, float(high or low) / 1000)
    except ValueError:
        parser.error("--term-ms: MIN:MAX")
    for share in ("semaphore_share", "handoff_share"):
        if not 0 <= getattr(args, share) <= 1:
            parser.error(f"--{share.replace('_', '-')}: a share in [0, 1]")
    return args


def counter_key(lock_id: str) -> str:
    return f"counter/{lock_id}"


class Log:
    """Appends JSON lines, one write per line and flushed at once: the runner tails the files for
    live progress, and a worker killed with SIGKILL loses at most the line it was writing."""

    def __init__(self, path: str, client: str) -> None:
        self._file: IO[str] = open(path, "a", encoding="utf-8")
        self._mutex = threading.Lock()
        self.client = client
        self.pid = os.getpid()

    def write(self, record: Dict[str, Any]) -> None:
        line = json.dumps({"client": self.client, "pid": self.pid, **record}, separators=(",", ":")) + "\n"
        with self._mutex:
            self._file.write(line)
            self._file.flush()

    def event(self, event: str, **fields: Any) -> None:
        self.write({"event": event, "at": time.monotonic_ns(), **fields})

    def error(self, op: str, lock: Optional[str], error: BaseException) -> None:
        self.event("error", op=op, lock=lock, error=type(error).__name__, message=str(error)[:300])


def next_value(pair: Optional[dynalease.KVPair]) -> int:
    return 1 if pair is None else int(pair.value) + 1


class Coordination:
    """What the semaphore, election and hand-off loops share: choices, mailbox keys, entries."""

    def __init__(self, args: argparse.Namespace, log: Log) -> None:
        self.args = args
        self.log = log
        self._handoffs = 0
        self._handed_off = False
        self._mutex = threading.Lock()

    def take_permit(self, rng: random.Random) -> bool:
        # No draw without a semaphore: a worker run without the flags picks as it always did.
        return self.args.semaphore is not None and rng.random() < self.args.semaphore_share

    def hand_off(self, rng: random.Random) -> bool:
        """Whether this lock hold ends with a hand-off: the process's first hold that can, then a
        share of the others; never with less than a lease left before the deadline."""
        if self.args.handoff_share <= 0:
            return False
        chosen = rng.random() < self.args.handoff_share
        if self.args.deadline_ns - time.monotonic_ns() <= self.args.lease * 1e9:
            return False
        with self._mutex:
            first, self._handed_off = not self._handed_off, True
        return first or chosen

    def mailbox_key(self) -> str:
        with self._mutex:
            self._handoffs += 1
            return f"handoff/{self.log.pid}-{self._handoffs}"

    def entry(self, handle: str, lock_id: str, token: Optional[int]) -> Dict[str, Any]:
        return {"handle": handle, "lock": lock_id, "token": token, "client": self.log.client, "pid": self.log.pid,
                "at": time.monotonic_ns()}

    def others(self, pairs: List[dynalease.KVPair]) -> List[dynalease.KVPair]:
        """The mailbox entries another process put."""
        return [p for p in pairs if isinstance(p.value, dict) and p.value.get("pid") != self.log.pid]

    def term_seconds(self, rng: random.Random) -> float:
        return rng.uniform(*self.args.term)

    def campaign_data(self) -> Dict[str, Any]:
        return {"client": self.log.client, "pid": self.log.pid}

    def permit_fields(self) -> Dict[str, Any]:
        return {"semaphore": self.args.semaphore, "permits": self.args.permits}


class LeaderLog:
    """Logs an observer's readings: a `leader` line whenever the term differs from the last one
    logged (so a watch started again after an error does not log its first reading twice)."""

    UNSET = object()

    def __init__(self, log: Log, name: str) -> None:
        self.log = log
        self.name = name
        self.last: Any = self.UNSET

    def reading(self, leader: Optional[Any]) -> None:
        at = time.monotonic_ns()
        term = None if leader is None else leader.term
        if term != self.last:
            self.last = term
            self.log.write({"event": "leader", "election": self.name, "term": term, "at": at})


def hold_record(lock_id: str, lock: Any, acquired: int, released: int, lost: bool, increment: Optional[bool]) -> Dict[str, Any]:
    return {
        "lock": lock_id,
        "token": lock.fencing_token,
        "acquired": acquired,
        "released": released,
        # The holder held the lock for the whole logged interval as far as it can know: its lease
        # had not run out and no write of it had been refused when it took `released`.
        "ok": not lost,
        # True: applied; False: certainly not applied; None: outcome unknown.
        "increment": increment,
    }


def run_sync(args: argparse.Namespace, log: Log, rng: random.Random) -> None:
    locks = dynalease.LockClient(args.lock_table, lease_duration=args.lease, heartbeat_period=args.heartbeat, endpoint_url=args.endpoint)
    kv = dynalease.KVStore(args.kv_table, partition=args.kv_partition, endpoint_url=args.endpoint)
    co = Coordination(args, log)
    semaphore = locks.semaphore(args.semaphore, args.permits) if args.semaphore is not None else None

    def increment(lock: Any, lock_id: str) -> Optional[bool]:
        try:
            previous = kv.get(counter_key(lock_id))
            kv.atomic_put(counter_key(lock_id), next_value(previous), previous=previous, lock=lock)
            return True
        except dynalease.Error as error:
            log.error("increment", lock_id, error)
            return increment_outcome(error)

    def release(lock: Any, lock_id: str) -> None:
        try:
            lock.release()
        except dynalease.Error as error:
            log.error("release", lock_id, error)

    def holder() -> None:
        while True:
            remaining = (args.deadline_ns - time.monotonic_ns()) / 1e9
            if remaining <= 0:
                return
            permit = co.take_permit(rng)
            lock_id = args.semaphore if permit else rng.choice(args.lock_ids)
            timeout = min(remaining, args.lease * 3)
            try:
                lock = semaphore.acquire(timeout=timeout) if permit and semaphore is not None else locks.acquire(lock_id, timeout=timeout)
            except dynalease.LockNotAcquiredError:
                continue
            except dynalease.Error as error:
                log.error("semaphore" if permit else "acquire", lock_id, error)
                time.sleep(0.05)
                continue
            acquired = time.monotonic_ns()
            lock_id = str(lock.id)  # a permit's: NAME#k
            if args.announce:
                log.event("acquired", lock=lock_id, token=lock.fencing_token, acquired=acquired)
            applied = increment(lock, lock_id)
            time.sleep(rng.uniform(0, args.hold_ms) / 1000)
            hand_off = not permit and co.hand_off(rng)
            released = time.monotonic_ns()
            lost = lock.lost  # read after `released`: not lost now means held at `released`
            record = hold_record(lock_id, lock, acquired, released, lost, applied)
            if permit:
                record.update(co.permit_fields())
            if hand_off and not lost:
                try:
                    handle = lock.detach()
                except dynalease.Error as error:
                    log.error("detach", lock_id, error)
                else:
                    key = co.mailbox_key()
                    log.write({**record, "detached": True, "handoff": key})
                    try:
                        kv.put(key, co.entry(handle, lock_id, lock.fencing_token))
                    except dynalease.Error as error:
                        log.error("handoff", lock_id, error)
                    continue
            log.write(record)
            release(lock, lock_id)

    def candidate(election: Any, rng: random.Random) -> None:
        name = args.election
        while True:
            remaining = (args.deadline_ns - time.monotonic_ns()) / 1e9
            if remaining <= 0:
                return
            try:
                lock = election.campaign(data=co.campaign_data(), timeout=min(remaining, args.lease * 3))
            except dynalease.LockNotAcquiredError:
                continue
            except dynalease.Error as error:
                log.error("campaign", name, error)
                time.sleep(0.05)
                continue
            acquired = time.monotonic_ns()
            if args.announce:
                log.event("acquired", lock=name, token=lock.fencing_token, acquired=acquired)
            applied = increment(lock, name)
            time.sleep(co.term_seconds(rng))
            released = time.monotonic_ns()
            lost = lock.lost
            log.write({**hold_record(name, lock, acquired, released, lost, applied), "election": name})
            release(lock, name)
            time.sleep(rng.uniform(0.2, 0.4))  # let the term pass to another process

    def observer(election: Any, stop: threading.Event) -> None:
        readings = LeaderLog(log, args.election)
        while not stop.is_set():
            try:
                for leader in election.watch(interval=args.observe_ms / 1000):
                    readings.reading(leader)
                    if stop.is_set():
                        return
            except dynalease.Error as error:
                log.error("observe", args.election, error)
                time.sleep(0.05)

    def mailbox(rng: random.Random) -> None:
        while time.monotonic_ns() < args.deadline_ns:
            try:
                others = co.others(kv.list("handoff/"))
            except dynalease.Error as error:
                log.error("claim", "handoff/", error)
                others = []
            if not others:
                time.sleep(rng.uniform(0.1, 0.15))
                continue
            pair = rng.choice(others)
            lock_id = str(pair.value.get("lock"))
            try:
                kv.atomic_delete(pair.key, previous=pair)
            except (dynalease.KeyModifiedError, dynalease.KeyNotFoundError):
                continue  # another process claimed it first
            except dynalease.Error as error:
                log.error("claim", lock_id, error)  # perhaps ours: resuming it could make two holders
                continue
            try:
                lock = locks.resume(pair.value["handle"])
            except dynalease.Error as error:
                log.error("resume", lock_id, error)
                continue
            acquired = time.monotonic_ns()
            applied = increment(lock, lock_id)
            time.sleep(rng.uniform(0, args.hold_ms) / 1000)
            released = time.monotonic_ns()
            lost = lock.lost
            log.write({**hold_record(lock_id, lock, acquired, released, lost, applied), "resumed": True, "handoff": pair.key})
            release(lock, lock_id)

    # Every loop but the holder gets a generator of its own, so that the holder's choices are
    # the same as without the flags.
    loops: List[threading.Thread] = []
    stop = threading.Event()
    watcher: Optional[threading.Thread] = None
    if args.election is not None:
        election = locks.election(args.election)
        log.event("observer-start", election=args.election, interval_ms=args.observe_ms)
        # A daemon: it may be waiting for the next change when the process ends.
        watcher = threading.Thread(target=observer, args=(election, stop), daemon=True)
        watcher.start()
        loops.append(threading.Thread(target=candidate, args=(election, random.Random(rng.random()))))
    if args.handoff_share > 0:
        loops.append(threading.Thread(target=mailbox, args=(random.Random(rng.random()),)))
    for thread in loops:
        thread.start()
    holder()
    for thread in loops:
        thread.join()
    if watcher is not None:
        time.sleep(max(0.0, (args.deadline_ns + args.observe_tail_ms * 1e6 - time.monotonic_ns()) / 1e9))
        stop.set()
        log.event("observer-stop", election=args.election)


async def run_async(args: argparse.Namespace, log: Log, rng: random.Random) -> None:
    locks = dynalease.AsyncLockClient(args.lock_table, lease_duration=args.lease, heartbeat_period=args.heartbeat, endpoint_url=args.endpoint)
    kv = dynalease.AsyncKVStore(args.kv_table, partition=args.kv_partition, endpoint_url=args.endpoint)
    co = Coordination(args, log)
    semaphore = locks.semaphore(args.semaphore, args.permits) if args.semaphore is not None else None

    async def increment(lock: Any, lock_id: str) -> Optional[bool]:
        try:
            previous = await kv.get(counter_key(lock_id))
            await kv.atomic_put(counter_key(lock_id), next_value(previous), previous=previous, lock=lock)
            return True
        except dynalease.Error as error:
            log.error("increment", lock_id, error)
            return increment_outcome(error)

    async def release(lock: Any, lock_id: str) -> None:
        try:
            await lock.release()
        except dynalease.Error as error:
            log.error("release", lock_id, error)

    async def holder() -> None:
        while True:
            remaining = (args.deadline_ns - time.monotonic_ns()) / 1e9
            if remaining <= 0:
                return
            permit = co.take_permit(rng)
            lock_id = args.semaphore if permit else rng.choice(args.lock_ids)
            timeout = min(remaining, args.lease * 3)
            try:
                if permit and semaphore is not None:
                    lock = await semaphore.acquire(timeout=timeout)
                else:
                    lock = await locks.acquire(lock_id, timeout=timeout)
            except dynalease.LockNotAcquiredError:
                continue
            except dynalease.Error as error:
                log.error("semaphore" if permit else "acquire", lock_id, error)
                await asyncio.sleep(0.05)
                continue
            acquired = time.monotonic_ns()
            lock_id = str(lock.id)  # a permit's: NAME#k
            if args.announce:
                log.event("acquired", lock=lock_id, token=lock.fencing_token, acquired=acquired)
            applied = await increment(lock, lock_id)
            await asyncio.sleep(rng.uniform(0, args.hold_ms) / 1000)
            hand_off = not permit and co.hand_off(rng)
            released = time.monotonic_ns()
            lost = lock.lost
            record = hold_record(lock_id, lock, acquired, released, lost, applied)
            if permit:
                record.update(co.permit_fields())
            if hand_off and not lost:
                try:
                    handle = await lock.detach()
                except dynalease.Error as error:
                    log.error("detach", lock_id, error)
                else:
                    key = co.mailbox_key()
                    log.write({**record, "detached": True, "handoff": key})
                    try:
                        await kv.put(key, co.entry(handle, lock_id, lock.fencing_token))
                    except dynalease.Error as error:
                        log.error("handoff", lock_id, error)
                    continue
            log.write(record)
            await release(lock, lock_id)

    async def candidate(election: Any, rng: random.Random) -> None:
        name = args.election
        while True:
            remaining = (args.deadline_ns - time.monotonic_ns()) / 1e9
            if remaining <= 0:
                return
            try:
                lock = await election.campaign(data=co.campaign_data(), timeout=min(remaining, args.lease * 3))
            except dynalease.LockNotAcquiredError:
                continue
            except dynalease.Error as error:
                log.error("campaign", name, error)
                await asyncio.sleep(0.05)
                continue
            acquired = time.monotonic_ns()
            if args.announce:
                log.event("acquired", lock=name, token=lock.fencing_token, acquired=acquired)
            applied = await increment(lock, name)
            await asyncio.sleep(co.term_seconds(rng))
            released = time.monotonic_ns()
            lost = lock.lost
            log.write({**hold_record(name, lock, acquired, released, lost, applied), "election": name})
            await release(lock, name)
            await asyncio.sleep(rng.uniform(0.2, 0.4))  # let the term pass to another process

    async def observer(election: Any) -> None:
        readings = LeaderLog(log, args.election)
        while True:
            try:
                async for leader in election.watch(interval=args.observe_ms / 1000):
                    readings.reading(leader)
            except dynalease.Error as error:
                log.error("observe", args.election, error)
                await asyncio.sleep(0.05)

    async def mailbox(rng: random.Random) -> None:
        while time.monotonic_ns() < args.deadline_ns:
            try:
                others = co.others(await kv.list("handoff/"))
            except dynalease.Error as error:
                log.error("claim", "handoff/", error)
                others = []
            if not others:
                await asyncio.sleep(rng.uniform(0.1, 0.15))
                continue
            pair = rng.choice(others)
            lock_id = str(pair.value.get("lock"))
            try:
                await kv.atomic_delete(pair.key, previous=pair)
            except (dynalease.KeyModifiedError, dynalease.KeyNotFoundError):
                continue  # another process claimed it first
            except dynalease.Error as error:
                log.error("claim", lock_id, error)  # perhaps ours: resuming it could make two holders
                continue
            try:
                lock = await locks.resume(pair.value["handle"])
            except dynalease.Error as error:
                log.error("resume", lock_id, error)
                continue
            acquired = time.monotonic_ns()
            applied = await increment(lock, lock_id)
            await asyncio.sleep(rng.uniform(0, args.hold_ms) / 1000)
            released = time.monotonic_ns()
            lost = lock.lost
            log.write({**hold_record(lock_id, lock, acquired, released, lost, applied), "resumed": True, "handoff": pair.key})
            await release(lock, lock_id)

    loops = [holder() for _ in range(args.tasks)]
    watcher: Optional[asyncio.Task] = None
    if args.election is not None:
        election = locks.election(args.election)
        log.event("observer-start", election=args.election, interval_ms=args.observe_ms)
        watcher = asyncio.create_task(observer(election))
        loops.append(candidate(election, random.Random(rng.random())))
    if args.handoff_share > 0:
        loops.append(mailbox(random.Random(rng.random())))
    await asyncio.gather(*loops)
    if watcher is not None:
        await asyncio.sleep(max(0.0, (args.deadline_ns + args.observe_tail_ms * 1e6 - time.monotonic_ns()) / 1e9))
        watcher.cancel()
        try:
            await watcher
        except asyncio.CancelledError:
            pass
        log.event("observer-stop", election=args.election)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    log = Log(args.log, args.client)
    rng = random.Random(args.seed)
    log.event("start", locks=args.lock_ids)
    if args.client == "py-sync":
        run_sync(args, log, rng)
    else:
        asyncio.run(run_async(args, log, rng))
    log.event("stop")
    # Every lock is released and every line written (one flushed write each). Leave without
    # finalizing the interpreter: the py-sync observer thread is still inside the binding,
    # waiting for the next change, and the runtime's threads may still be finishing a request
    # (a retried read, a take-back); a py-sync worker whose interpreter was finalized around
    # them once died with SIGSEGV after its stop line (1 of ~30 fault fleets).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
