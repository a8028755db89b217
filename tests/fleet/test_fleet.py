"""A short mixed-language fleet against DynamoDB Local, checked end to end: Python sync, Python
asyncio, Rust and Node (Promise API, dlc drop-in, original dynamodb-lock-client) workers on one
lock table never overlap, tokens rise, no increment is lost. The Python, Rust and Node Promise
API workers also share one semaphore (never more holders than permits), one election (terms
rise, every observer in every language sees every term) and one hand-off mailbox (locks detached
in one language are resumed and released in another)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import runner

ALL_KINDS = ("py-sync", "py-async", "rust", "node-new", "node-dropin", "node-dlc")
#: The kinds that take part in the semaphore, the election and the hand-offs.
COORDINATING = ("py-sync", "py-async", "rust", "node-new")


def test_a_mixed_fleet_is_safe(ddb_endpoint: str, rust_worker: str, tmp_path: Path) -> None:
    root = Path(runner.HERE).parent.parent
    found = subprocess.run(["node", "-e", f"require({str(root)!r})"], capture_output=True, text=True)
    if found.returncode != 0:
        pytest.fail(f"the Node package does not load (run scripts/test-node, or npm run build:debug): {found.stderr[-500:]}")
    config = runner.FleetConfig(
        endpoint=ddb_endpoint,
        workers=dict.fromkeys(ALL_KINDS, 1),
        duration=10.0,
        # dlc-style clients wait a whole lease whenever they find a lock held, so with few free
        # locks and long leases they starve (0 holds in 10 s was seen with 3 s leases). Twelve
        # locks and 1 s leases gave node-dlc 3 to 18 holds a run on a loaded machine: too close
        # to none. So they also contend for two lock ids of their own (the original against the
        # drop-in), listed three times: a third of their picks (test_faults.DLC_LOCKS says more).
        locks=12,
        locks_by_kind=dict.fromkeys(("node-dropin", "node-dlc"), ["dlc-1", "dlc-2"] * 3 + [f"lock-{i}" for i in range(1, 13)]),
        lease=1.0,
        rust_worker=rust_worker,
        out_dir=str(tmp_path),
        semaphore=("sem", 2),
        election="leader",
        # Every term longer than the checker's bound (4 x 50 ms + 1 s): each one must be seen
        # by every observer that ran throughout it.
        term_ms=(1300.0, 2000.0),
        handoff_share=0.2,
    )
    result = runner.run_fleet(config)
    report = result.report
    print(runner.checker.format_report(report))
    assert not result.problems
    # Also: at most 2 permit holders at once, terms rising, observers' terms rising and every
    # term seen, every resumed hold carrying on a detached one.
    assert report.ok, report.failures()
    assert set(report.holds_by_client) == set(ALL_KINDS)
    assert all(count > 0 for count in report.holds_by_client.values())
    assert sum(report.processes_by_client.values()) == 6
    coordination_ids = runner.coordination_ids(config)
    for lock in report.locks.values():
        assert lock.counter == lock.increments, lock
        assert lock.holds > 0 or lock.lock in coordination_ids, lock

    languages = runner.checker.language
    sem = report.semaphores["sem"]
    assert sem.max_concurrent <= 2
    assert len({languages(kind) for kind in sem.holds_by_client}) >= 2, sem.holds_by_client
    election = report.elections["leader"]
    assert election.terms > 0
    # One observer per coordinating process, each in its own language's watch.
    assert election.observers_by_client == dict.fromkeys(COORDINATING, 1)
    assert election.long_terms == election.terms - sum(1 for h in result_terms(result) if not h["ok"])
    assert election.checked > 0
    handoffs = report.handoffs
    assert handoffs.resumed > 0 and handoffs.cross_language > 0, handoffs


def result_terms(result: runner.FleetResult) -> list:
    holds, _ = runner.checker.load([result.run.out_dir])
    return [h for h in holds if h.get("election")]
