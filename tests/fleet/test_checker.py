"""The checker on synthetic logs: it passes a clean history and demonstrably fails on an overlap,
a token regression or repeat, a missing token, and a lost or extra counter increment."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

import checker

MS = 1_000_000


def hold(lock: str, token: Optional[int], start_ms: int, end_ms: int, ok: bool = True, increment: Optional[bool] = True,
         client: str = "py-sync", pid: int = 100) -> Dict[str, Any]:
    return {"lock": lock, "token": token, "client": client, "pid": pid, "acquired": start_ms * MS,
            "released": end_ms * MS, "ok": ok, "increment": increment}


def clean_history() -> List[Dict[str, Any]]:
    return [
        hold("a", 1, 0, 10, pid=1), hold("a", 2, 12, 20, client="rust", pid=2), hold("a", 3, 25, 30, client="py-async", pid=3),
        hold("b", 1, 5, 15, pid=2, client="rust"), hold("b", 2, 15, 18, pid=1),
    ]


def test_a_clean_history_passes() -> None:
    report = checker.check(clean_history(), {"a": 3, "b": 2})
    assert report.ok, report.failures()
    assert report.holds_by_client == {"py-async": 1, "py-sync": 2, "rust": 2}
    assert report.locks["a"].first_token == 1 and report.locks["a"].last_token == 3
    # Handover gaps: a: 2 ms and 5 ms; b: 0 ms (back to back is not an overlap).
    assert sorted(report.handovers_ns) == [0, 2 * MS, 5 * MS]
    assert "RESULT: OK" in checker.format_report(report)


def test_an_overlap_fails() -> None:
    holds = clean_history() + [hold("a", 4, 28, 40, pid=9)]  # starts inside token 3's hold (25..30)
    report = checker.check(holds)
    assert not report.ok
    assert len(report.overlaps) == 1
    first, second = report.overlaps[0]
    assert (first["token"], second["token"]) == (3, 4)
    assert "RESULT: FAILED" in checker.format_report(report)


def test_an_overlap_with_a_long_earlier_hold_fails() -> None:
    # The third hold overlaps the first, not its direct predecessor: the sweep keeps the latest end.
    holds = [hold("a", 1, 0, 100), hold("a", 2, 10, 20, pid=2), hold("a", 3, 50, 60, pid=3)]
    assert len(checker.check(holds).overlaps) == 2


def test_a_token_regression_fails() -> None:
    holds = [hold("a", 5, 0, 10), hold("a", 4, 20, 30, pid=2)]
    report = checker.check(holds)
    assert not report.ok and not report.overlaps
    assert report.token_violations and "token 4 after 5" in report.token_violations[0]


def test_a_repeated_token_fails() -> None:
    assert not checker.check([hold("a", 3, 0, 10), hold("a", 3, 20, 30, pid=2)]).ok


def test_a_hold_without_a_token_fails() -> None:
    assert not checker.check([hold("a", None, 0, 10)]).ok


def test_a_lost_hold_is_reported_but_not_compared() -> None:
    # A holder that found its lease lost logs `ok: false`; its real end is unknown, so it is not
    # an overlap, but its token still has to fit the order.
    holds = [hold("a", 1, 0, 100, ok=False, increment=False), hold("a", 2, 50, 60, pid=2)]
    report = checker.check(holds, {"a": 1})
    assert report.ok, report.failures()
    assert report.locks["a"].lost == 1


def test_a_lost_increment_fails() -> None:
    report = checker.check(clean_history(), {"a": 2, "b": 2})
    assert not report.ok
    assert report.counter_violations == ["a: counter 2, expected 3"]
    assert report.locks["a"].lost_increments == 1


def test_an_extra_increment_fails() -> None:
    # A write that got through without its holder seeing it succeed (a stale holder).
    assert not checker.check(clean_history(), {"a": 4, "b": 2}).ok


def test_an_absent_counter_fails_when_increments_succeeded() -> None:
    assert not checker.check(clean_history(), {"a": 3, "b": None}).ok


def test_unknown_increments_widen_the_expected_range_only_upwards() -> None:
    holds = [hold("a", 1, 0, 10), hold("a", 2, 20, 30, pid=2, increment=None)]
    assert checker.check(holds, {"a": 1}).ok
    assert checker.check(holds, {"a": 2}).ok
    assert not checker.check(holds, {"a": 3}).ok
    assert not checker.check(holds, {"a": 0}).ok


def write_log(path: Path, records: List[Dict[str, Any]], torn_tail: str = "") -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + torn_tail)


def test_the_cli_fails_on_an_overlap_and_passes_clean_logs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good"
    good.mkdir()
    write_log(good / "w1.jsonl", clean_history()[:3] + [{"event": "error", "op": "acquire", "error": "TransportError", "client": "x", "pid": 1}])
    # A worker killed mid-write leaves a torn last line: skipped, not fatal.
    write_log(good / "w2.jsonl", clean_history()[3:], torn_tail='{"lock": "b", "tok')
    counters = tmp_path / "counters.json"
    counters.write_text(json.dumps({"a": 3, "b": 2}))
    assert checker.main([str(good), "--counters", str(counters)]) == 0
    assert "acquire: TransportError x1" in capsys.readouterr().out

    bad = tmp_path / "bad"
    bad.mkdir()
    write_log(bad / "w1.jsonl", clean_history() + [hold("b", 3, 16, 17, pid=5)])
    assert checker.main([str(bad), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["overlaps"] == 1


def test_a_malformed_line_inside_a_log_is_an_error(tmp_path: Path) -> None:
    log = tmp_path / "w.jsonl"
    log.write_text(json.dumps(hold("a", 1, 0, 1)) + "\nnot json\n" + json.dumps(hold("a", 2, 2, 3)) + "\n")
    with pytest.raises(ValueError, match="not JSON"):
        checker.load([str(log)])


def test_a_hold_line_missing_fields_is_an_error(tmp_path: Path) -> None:
    log = tmp_path / "w.jsonl"
    log.write_text(json.dumps({"lock": "a", "token": 1}) + "\n")
    with pytest.raises(ValueError, match="without"):
        checker.load([str(log)])


def test_a_lock_that_a_fresh_client_could_not_get_in_time_is_a_stuck_lock() -> None:
    probes = {
        "a": checker.LockProbe("free", 0.01, 4.0, token=4),
        "b": checker.LockProbe("waited", 1.2, 4.0, token=3),
    }
    report = checker.check(clean_history(), {"a": 3, "b": 2}, probes=probes)
    assert report.ok, report.failures()
    assert "stuck locks: 0 of 2" in checker.format_report(report)

    probes["b"] = checker.LockProbe("stuck", 6.0, 4.0)
    report = checker.check(clean_history(), {"a": 3, "b": 2}, probes=probes)
    assert not report.ok
    assert report.stuck_locks and report.stuck_locks[0].startswith("b: stuck")
    # Taken, but only after the bound: stuck too.
    probes["b"] = checker.LockProbe("waited", 4.5, 4.0, token=3)
    assert not checker.check(clean_history(), {"a": 3, "b": 2}, probes=probes).ok
    # A lock nobody held in the logs is still probed and reported.
    probes["c"] = checker.LockProbe("stuck", 6.0, 4.0)
    assert "c" in checker.check(clean_history(), {"a": 3, "b": 2}, probes=probes).locks


def test_unknown_increments_allow_a_higher_counter_but_never_a_lower_one() -> None:
    holds = clean_history() + [hold("b", 3, 20, 21, increment=None)]
    assert checker.check(holds, {"a": 3, "b": 2}).ok  # the unknown one did not land
    assert checker.check(holds, {"a": 3, "b": 3}).ok  # it did
    assert not checker.check(holds, {"a": 3, "b": 4}).ok  # more than could have landed
    assert not checker.check(holds, {"a": 3, "b": 1}).ok  # an acknowledged one lost
