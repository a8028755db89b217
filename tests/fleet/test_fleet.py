"""A short mixed-language fleet against DynamoDB Local, checked end to end: Python sync, Python
asyncio and Rust workers on one lock table never overlap, tokens rise, no increment is lost."""

from __future__ import annotations

from pathlib import Path

import runner


def test_a_mixed_fleet_is_safe(ddb_endpoint: str, rust_worker: str, tmp_path: Path) -> None:
    config = runner.FleetConfig(
        endpoint=ddb_endpoint,
        workers={"py-sync": 2, "py-async": 2, "rust": 2},
        duration=10.0,
        locks=3,
        lease=3.0,
        rust_worker=rust_worker,
        out_dir=str(tmp_path),
    )
    result = runner.run_fleet(config)
    report = result.report
    print(runner.checker.format_report(report))
    assert not result.problems
    assert report.ok, report.failures()
    assert set(report.holds_by_client) == {"py-sync", "py-async", "rust"}
    assert all(count > 0 for count in report.holds_by_client.values())
    assert sum(report.processes_by_client.values()) == 6
    for lock in report.locks.values():
        assert lock.holds > 0 and lock.counter == lock.increments
