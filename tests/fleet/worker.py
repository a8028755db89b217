"""A fleet worker in Python: competes for lease locks and increments a fenced counter under each.

It implements the worker protocol of docs/fleet.md (the same flags and log lines as the Rust
worker, core/examples/fleet_worker.rs, and any later Node worker), with two client kinds:

    py-sync   dynalease.LockClient + KVStore, one holder loop
    py-async  dynalease.AsyncLockClient + AsyncKVStore, --tasks holder loops in one event loop

    python tests/fleet/worker.py --client py-sync --endpoint http://127.0.0.1:PORT \
        --lock-table T --kv-table K --kv-partition P --locks a,b,c,d --duration 10 --log w1.jsonl

Times in the log are CLOCK_MONOTONIC nanoseconds (time.monotonic_ns() on Linux), which every
process on the machine shares, so the checker can compare holds across processes and languages.
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
    args = parser.parse_args(argv)
    args.lock_ids = [lock for lock in args.locks.split(",") if lock]
    if not args.lock_ids:
        parser.error("--locks names no lock id")
    if args.tasks < 1:
        parser.error("--tasks must be at least 1")
    if args.deadline_ns is None:
        args.deadline_ns = time.monotonic_ns() + int(args.duration * 1e9)
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
    while True:
        remaining = (args.deadline_ns - time.monotonic_ns()) / 1e9
        if remaining <= 0:
            return
        lock_id = rng.choice(args.lock_ids)
        try:
            lock = locks.acquire(lock_id, timeout=min(remaining, args.lease * 3))
        except dynalease.LockNotAcquiredError:
            continue
        except dynalease.Error as error:
            log.error("acquire", lock_id, error)
            time.sleep(0.05)
            continue
        acquired = time.monotonic_ns()
        if args.announce:
            log.event("acquired", lock=lock_id, token=lock.fencing_token, acquired=acquired)
        increment: Optional[bool] = False
        try:
            previous = kv.get(counter_key(lock_id))
            kv.atomic_put(counter_key(lock_id), next_value(previous), previous=previous, lock=lock)
            increment = True
        except dynalease.Error as error:
            increment = increment_outcome(error)
            log.error("increment", lock_id, error)
        time.sleep(rng.uniform(0, args.hold_ms) / 1000)
        released = time.monotonic_ns()
        lost = lock.lost  # read after `released`: not lost now means held at `released`
        log.write(hold_record(lock_id, lock, acquired, released, lost, increment))
        try:
            lock.release()
        except dynalease.Error as error:
            log.error("release", lock_id, error)


async def run_async(args: argparse.Namespace, log: Log, rng: random.Random) -> None:
    locks = dynalease.AsyncLockClient(args.lock_table, lease_duration=args.lease, heartbeat_period=args.heartbeat, endpoint_url=args.endpoint)
    kv = dynalease.AsyncKVStore(args.kv_table, partition=args.kv_partition, endpoint_url=args.endpoint)

    async def holder() -> None:
        while True:
            remaining = (args.deadline_ns - time.monotonic_ns()) / 1e9
            if remaining <= 0:
                return
            lock_id = rng.choice(args.lock_ids)
            try:
                lock = await locks.acquire(lock_id, timeout=min(remaining, args.lease * 3))
            except dynalease.LockNotAcquiredError:
                continue
            except dynalease.Error as error:
                log.error("acquire", lock_id, error)
                await asyncio.sleep(0.05)
                continue
            acquired = time.monotonic_ns()
            if args.announce:
                log.event("acquired", lock=lock_id, token=lock.fencing_token, acquired=acquired)
            increment: Optional[bool] = False
            try:
                previous = await kv.get(counter_key(lock_id))
                await kv.atomic_put(counter_key(lock_id), next_value(previous), previous=previous, lock=lock)
                increment = True
            except dynalease.Error as error:
                increment = increment_outcome(error)
                log.error("increment", lock_id, error)
            await asyncio.sleep(rng.uniform(0, args.hold_ms) / 1000)
            released = time.monotonic_ns()
            lost = lock.lost
            log.write(hold_record(lock_id, lock, acquired, released, lost, increment))
            try:
                await lock.release()
            except dynalease.Error as error:
                log.error("release", lock_id, error)

    await asyncio.gather(*(holder() for _ in range(args.tasks)))


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
    return 0


if __name__ == "__main__":
    sys.exit(main())
