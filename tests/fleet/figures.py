"""Runs a long mixed fleet through the fault proxy and writes docs/reliability.md from what the
checker and the proxy saw. scripts/figures sets everything up and calls this.

    python tests/fleet/figures.py --endpoint URL --rust-worker PATH [--duration 150] [--workers KIND:N,...]
        [--out docs/reliability.md]

The Node workers (node-new, node-dropin, node-dlc) need the Node addon built and node_modules.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import tempfile
from typing import List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import runner  # noqa: E402
from faultproxy import FaultProxy, Rule  # noqa: E402

# Fault mix: every kind the proxy has, on the operations where each one hurts most.
RULES = [
    ("lose_response", "lock writes (acquire, heartbeat, release): response dropped after DynamoDB committed", dict(match=lambda r: r.lock_op is not None, probability=0.05)),
    ("reset", "fenced KV writes (TransactWriteItems): connection reset after the request was sent", dict(operation="TransactWriteItems", probability=0.03)),
    ("drop", "reads (GetItem): connection closed before forwarding", dict(operation="GetItem", probability=0.02)),
    ("throttle", "any request: HTTP 400 ThrottlingException", dict(probability=0.02)),
    ("delay", "any request: 200 ms delay", dict(probability=0.03, delay=0.2)),
]


#: Nine processes, every client kind. The two dlc-style kinds wait a whole lease whenever they find
#: a lock held, so they get far fewer holds than the others (docs/fleet.md).
DEFAULT_WORKERS = "py-sync:2,py-async:2,rust:2,node-new:1,node-dropin:1,node-dlc:1"

#: What the errors the workers may log mean (operation: error name as the worker logs it, see
#: docs/fleet.md); the page explains those that occurred.
EXPLAINED = {
    "release: LockLostError": "Python: a release that found the lock taken over (its lease had run out before the release landed).",
    "release: LockLost": "Rust (error kind): as above.",
    "release: ERR_DYNALEASE_LOCK_LOST": "Node Promise API (err.code): as above.",
    "increment: LockLostError": "Python: the fenced increment was refused because the lease had been lost: certainly not applied.",
    "increment: LockLost": "Rust: as above.",
    "increment: ERR_DYNALEASE_LOCK_LOST": "Node Promise API: as above.",
    "heartbeat: ConditionalCheckFailedException": (
        "dynamodb-lock-client: a heartbeat whose answer was lost, resent by the AWS SDK, fails its own condition (the "
        "first attempt already changed the guid); the lock emits 'error' and the hold is counted lost. A false alarm "
        "on the safe side; the drop-in reads the item back and carries on (docs/fleet.md)."
    ),
    "release: FailedToReleaseLock": (
        "dlc-style clients: a release whose condition failed against a new holder that the drop-in could not prove "
        "came after its own release (a takeover after the lease, or a lock lost earlier); docs/fleet.md."
    ),
}
CLIENT_ERRORS = (
    "Error names are per client: Python exception classes (`LockLostError`, `TransportError`), Rust error kinds "
    "(`LockLost`, `Transport`), Node Promise API error codes (`err.code`, `ERR_DYNALEASE_*`), and for the dlc-style "
    "Node clients dlc's codes (`FailedToAcquireLock`, `FailedToReleaseLock`) or the AWS SDK error they passed on."
)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--rust-worker", required=True)
    parser.add_argument("--duration", type=float, default=150.0)
    parser.add_argument("--workers", default=DEFAULT_WORKERS)
    parser.add_argument("--out", default=os.path.join(HERE, "..", "..", "docs", "reliability.md"))
    args = parser.parse_args(argv)

    logs = tempfile.mkdtemp(prefix="dynalease-figures-")
    with FaultProxy(args.endpoint, seed=2026) as proxy:
        for fault, _, options in RULES:
            proxy.add(Rule(fault, **options))  # type: ignore[arg-type]
        config = runner.FleetConfig(
            endpoint=args.endpoint,
            worker_endpoint=proxy.endpoint,
            workers=runner.parse_workers(args.workers),
            duration=args.duration,
            locks=4,
            lease=3.0,
            rust_worker=args.rust_worker,
            out_dir=logs,
            progress=sys.stdout,
        )
        result = runner.run_fleet(config)
        injected = dict(proxy.injected)
        by_op = dict(proxy.injected_by_op)
        requests = sum(proxy.requests.values())
    report = result.report
    print(runner.checker.format_report(report))

    increments = sum(lock.increments for lock in report.locks.values())
    unknown = sum(lock.unknown_increments for lock in report.locks.values())
    found = sum(lock.counter or 0 for lock in report.locks.values())
    lost_increments = sum(lock.lost_increments for lock in report.locks.values())
    lost_leases = sum(lock.lost for lock in report.locks.values())
    processes = sum(report.processes_by_client.values())
    p = {q: report.handover_ms(q) for q in (0.5, 0.9, 0.99, 1.0)}

    out: List[str] = []
    out.append("# Reliability under faults")
    out.append("")
    out.append(f"Generated by `scripts/figures` on {datetime.date.today().isoformat()} ({os.cpu_count()} CPUs, DynamoDB Local, "
               "debug builds). Re-run it to regenerate this page; the numbers below are from one run.")
    out.append("")
    out.append(f"A fleet of **{processes} processes** ({', '.join(f'{k} x{v}' for k, v in report.processes_by_client.items())}; "
               f"py-async processes run {config.async_tasks} holder loops each) competed for 4 lease locks "
               f"(lease {config.lease:g} s) for {config.duration:g} s. Every request went through the project's fault proxy "
               "(`tests/fleet/faultproxy.py`). Under each lock a worker read a counter and wrote it + 1 with a compare-and-swap "
               "fenced by the lock (the dlc-style Node clients, `node-dropin` and `node-dlc`, with a plain compare-and-swap: "
               "their locks carry no handle the KV store can check); `tests/fleet/checker.py` then checked the logs "
               "(CLOCK_MONOTONIC, shared by all processes). Clients: `py-sync`/`py-async` (Python), `rust`, `node-new` "
               "(Node Promise API), `node-dropin` (the dynamodb-lock-client drop-in over an AWS SDK v3 document client, "
               "SDK default retries), `node-dlc` (the original dynamodb-lock-client 0.7.3 over SDK v2).")
    out.append("")
    out.append("## Result")
    out.append("")
    out.append("| measure | value |")
    out.append("|---|---|")
    out.append(f"| worker processes | {processes} |")
    out.append(f"| acquisitions (holds logged) | {report.holds} |")
    out.append(f"| overlapping holds of one lock | **{len(report.overlaps)}** |")
    out.append(f"| fencing tokens strictly increasing per lock | {'yes' if not report.token_violations else 'NO'} |")
    out.append(f"| KV increments the holders saw succeed | {increments} |")
    out.append(f"| KV increments whose outcome stayed unknown | {unknown} |")
    out.append(f"| counter total found in the store | {found} |")
    out.append(f"| lost increments | **{lost_increments}** |")
    out.append(f"| holds whose holder found its lease lost | {lost_leases} |")
    out.append(f"| workers that crashed or hung | {len(result.problems)} |")
    out.append(f"| handover (release to next acquire), p50 / p90 / p99 / max | "
               + " / ".join("-" if p[q] is None else f"{p[q]:.0f} ms" for q in (0.5, 0.9, 0.99, 1.0)) + " |")
    out.append(f"| checker verdict | **{'OK' if result.ok else 'FAILED'}** |")
    out.append("")
    out.append("| client | processes | holds |")
    out.append("|---|---|---|")
    for kind, count in sorted(report.holds_by_client.items()):
        out.append(f"| {kind} | {report.processes_by_client.get(kind, 0)} | {count} |")
    out.append("")
    out.append("## Faults injected")
    out.append("")
    out.append(f"{requests} requests went through the proxy.")
    out.append("")
    out.append("| fault | where | injected |")
    out.append("|---|---|---|")
    for fault, where, _ in RULES:
        out.append(f"| {fault} | {where} | {injected.get(fault, 0)} |")
    out.append("")
    out.append("By operation: " + ", ".join(f"{fault} on {op} x{n}" for (fault, op), n in sorted(by_op.items())) + ".")
    out.append("")
    out.append("## Outcomes the workers saw")
    out.append("")
    out.append("Errors that reached the worker code (everything else was absorbed by the client: retries of throttling "
               "and unsent requests, and resolution of unknown outcomes by resending with the same guid or client "
               "request token, or for the dlc-style clients by the AWS SDK's own retries). Heartbeats were rare here "
               "(holds are shorter than a heartbeat period); the fault tests cover lost heartbeat answers. " + CLIENT_ERRORS)
    out.append("")
    out.append("| operation: error | count |")
    out.append("|---|---|")
    for name, count in report.errors.items():
        out.append(f"| {name} | {count} |")
    if not report.errors:
        out.append("| (none) | 0 |")
    out.append("")
    explained = [f"- `{name}`: {EXPLAINED[name]}" for name in report.errors if name in EXPLAINED]
    if explained:
        out.extend(explained)
        out.append("")
    out.append("## Per lock")
    out.append("")
    out.append("| lock | holds | tokens | expected counter | found |")
    out.append("|---|---|---|---|---|")
    for lock in report.locks.values():
        expected = f"{lock.increments}" + (f" (+{lock.unknown_increments} unknown)" if lock.unknown_increments else "")
        out.append(f"| {lock.lock} | {lock.holds} | {lock.first_token}..{lock.last_token} | {expected} | {lock.counter} |")
    for problem in result.problems + report.failures():
        out.append(f"\nFAIL: {problem}")
    out.append("")
    with open(args.out, "w", encoding="utf-8") as file:
        file.write("\n".join(out))
    print(f"wrote {os.path.normpath(args.out)}; logs in {logs}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
