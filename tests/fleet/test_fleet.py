"""A short mixed-language fleet against DynamoDB Local, checked end to end: Python sync, Python
asyncio, Rust and Node (Promise API, dlc drop-in, original dynamodb-lock-client) workers on one
lock table never overlap, tokens rise, no increment is lost."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import runner

ALL_KINDS = ("py-sync", "py-async", "rust", "node-new", "node-dropin", "node-dlc")


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
    )
    result = runner.run_fleet(config)
    report = result.report
    print(runner.checker.format_report(report))
    assert not result.problems
    assert report.ok, report.failures()
    assert set(report.holds_by_client) == set(ALL_KINDS)
    assert all(count > 0 for count in report.holds_by_client.values())
    assert sum(report.processes_by_client.values()) == 6
    for lock in report.locks.values():
        assert lock.holds > 0 and lock.counter == lock.increments, lock
