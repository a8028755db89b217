"""A single long holder for the fault tests: acquires one lock, makes one fenced increment, then
holds until the lock is lost (or it is killed), and reports on stdout, one event per line:

    acquired <token> <monotonic ns>
    write ok
    lost <monotonic ns> <reason>
    fenced write rejected <ExceptionClass>      (or: fenced write ACCEPTED)

    python tests/fleet/holder.py ENDPOINT LOCK_TABLE KV_TABLE PARTITION LOCK_ID LEASE HEARTBEAT
"""

from __future__ import annotations

import sys
import time

import dynalease


def main() -> int:
    endpoint, lock_table, kv_table, partition, lock_id = sys.argv[1:6]
    lease, heartbeat = float(sys.argv[6]), float(sys.argv[7])
    locks = dynalease.LockClient(lock_table, lease_duration=lease, heartbeat_period=heartbeat, endpoint_url=endpoint)
    kv = dynalease.KVStore(kv_table, partition=partition, endpoint_url=endpoint)
    key = f"counter/{lock_id}"

    lock = locks.acquire(lock_id, timeout=60.0)
    print(f"acquired {lock.fencing_token} {time.monotonic_ns()}", flush=True)
    previous = kv.get(key)
    kv.atomic_put(key, 1 if previous is None else int(previous.value) + 1, previous=previous, lock=lock)
    print("write ok", flush=True)

    # Blocks in Rust until the lease is reported lost: by a failed heartbeat, or by the lease
    # timer, which on CLOCK_MONOTONIC keeps running while the process is stopped.
    lock.wait_lost(None)
    print(f"lost {time.monotonic_ns()} {lock.lost_reason}", flush=True)

    previous = kv.get(key)
    try:
        kv.atomic_put(key, 1000, previous=previous, lock=lock)
    except dynalease.Error as error:
        print(f"fenced write rejected {type(error).__name__}", flush=True)
    else:
        print("fenced write ACCEPTED", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
