"""The checker on synthetic logs: it passes a clean history and demonstrably fails on an overlap,
a token regression or repeat, a missing token, a lost or extra counter increment, a semaphore
with more holders than permits (or a permit id out of range), an election whose observers saw a
term go back, saw a term nobody held or missed a long term, and a resumed hold that does not
carry on a detached one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

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


# ---------------------------------------------------------------------------------------------
# Semaphores
# ---------------------------------------------------------------------------------------------


def permit(k: int, token: int, start_ms: int, end_ms: int, name: str = "sem", permits: int = 2, **fields: Any) -> Dict[str, Any]:
    return {**hold(f"{name}#{k}", token, start_ms, end_ms, **fields), "semaphore": name, "permits": permits}


def semaphore_history() -> List[Dict[str, Any]]:
    # Two permits: at most two holders at once; permit 0 is handed over back to back at 10 ms,
    # while permit 1 is held by another client.
    return [
        permit(0, 1, 0, 10, pid=1), permit(1, 1, 5, 30, client="node-new", pid=2), permit(0, 2, 10, 20, client="rust", pid=3),
        permit(0, 3, 25, 40, pid=1), permit(1, 2, 30, 50, client="py-async", pid=4),
    ]


def test_a_semaphore_never_over_its_permits_passes() -> None:
    report = checker.check(semaphore_history(), {"sem#0": 3, "sem#1": 2})
    assert report.ok, report.failures()
    sem = report.semaphores["sem"]
    assert (sem.permits, sem.holds, sem.max_concurrent) == (2, 5, 2)
    assert sem.holds_by_client == {"node-new": 1, "py-async": 1, "py-sync": 2, "rust": 1}
    assert "semaphore sem: 5 permit holds" in checker.format_report(report)
    assert "at most 2 held at once, 2 permits: ok" in checker.format_report(report)


def test_more_holders_than_permits_at_one_instant_fails() -> None:
    # Two holders of permit 1 at once (a lock overlap too) make three holders of two permits.
    holds = [permit(0, 1, 0, 10, pid=1), permit(1, 1, 0, 30, pid=2), permit(1, 2, 5, 8, pid=3), permit(0, 2, 10, 20, pid=4)]
    report = checker.check(holds)
    assert not report.ok
    assert len(report.overlaps) == 1
    assert report.semaphores["sem"].max_concurrent == 3
    assert any("sem: 3 holders at once" in v for v in report.coordination_violations)
    assert "EXCEEDED" in checker.format_report(report)


def test_three_holders_of_two_permits_on_distinct_ids_fail() -> None:
    # Each permit id held once: no lock overlaps, but three holds overlap at 5..8 ms: the
    # permit ids must be in range, or the semaphore counts more permits than it has.
    holds = [permit(0, 1, 0, 10), permit(1, 1, 2, 8, pid=2), {**permit(1, 1, 5, 9, pid=3), "lock": "sem#2"}]
    report = checker.check(holds)
    assert not report.ok and not report.overlaps
    violations = report.semaphores["sem"].violations
    assert any("holders at once" in v for v in violations)
    assert any("'sem#2' is not sem#k with 0 <= k < 2" in v for v in violations)


def test_a_lost_permit_hold_is_not_counted_as_a_holder() -> None:
    # Its true end is unknown (the lease's end), as for a lock: permit 1's holder lost its lease,
    # permit 1 was taken over while permit 0 was held. Counted, it would make three holders.
    holds = [permit(1, 1, 0, 100, ok=False, increment=False), permit(0, 1, 20, 30, pid=2), permit(1, 2, 25, 35, pid=3)]
    report = checker.check(holds)
    assert report.ok, report.failures()
    assert report.semaphores["sem"].max_concurrent == 2


@pytest.mark.parametrize("lock_id", ["sem#2", "sem#01", "sem#-1", "sem#x", "other#0", "sem"])
def test_a_permit_id_out_of_range_fails(lock_id: str) -> None:
    report = checker.check([{**permit(0, 1, 0, 10), "lock": lock_id}])
    assert not report.ok
    assert "is not sem#k with 0 <= k < 2" in report.semaphores["sem"].violations[0]


def test_holds_that_disagree_on_the_number_of_permits_fail() -> None:
    report = checker.check([permit(0, 1, 0, 10), permit(1, 1, 20, 30, permits=3, pid=2)])
    assert not report.ok
    assert "disagree" in report.semaphores["sem"].violations[0]


# ---------------------------------------------------------------------------------------------
# Elections
# ---------------------------------------------------------------------------------------------

S = 1000  # ms


def term(token: int, start_ms: int, end_ms: int, name: str = "leader", **fields: Any) -> Dict[str, Any]:
    return {**hold(name, token, start_ms, end_ms, **fields), "election": name}


def observer(pid: int, client: str, terms: List[Tuple[int, Optional[int]]], start_ms: int, stop_ms: int,
             name: str = "leader", interval_ms: float = 50) -> List[Dict[str, Any]]:
    """An observer's events: start, a `leader` line per (at_ms, term), stop."""
    events: List[Dict[str, Any]] = [{"event": "observer-start", "election": name, "interval_ms": interval_ms, "at": start_ms * MS,
                                     "client": client, "pid": pid}]
    events += [{"event": "leader", "election": name, "term": t, "at": at * MS, "client": client, "pid": pid} for at, t in terms]
    events.append({"event": "observer-stop", "election": name, "at": stop_ms * MS, "client": client, "pid": pid})
    return events


def election_history() -> List[Dict[str, Any]]:
    # Bound: 4 x 50 ms + 1 s = 1.2 s. Terms 1 (2 s) and 3 (1.5 s) are long, term 2 (0.3 s) short.
    return [term(1, 0, 2 * S, pid=1), term(2, 2 * S + 10, 2 * S + 310, client="node-new", pid=2),
            term(3, 3 * S, 4500, client="rust", pid=3)]


def election_observers() -> List[Dict[str, Any]]:
    return (
        observer(10, "py-async", [(-100, None), (30, 1), (2020, None), (2050, 2), (2330, None), (3040, 3), (4560, None)], -200, 7 * S)
        + observer(11, "node-new", [(-50, None), (60, 1), (2070, 2), (3080, 3), (4520, None)], -100, 7 * S)
        # Started after term 1 began: only term 3 must be seen; it missed the short term 2.
        + observer(12, "rust", [(500, 1), (3060, 3), (4600, None)], 400, 7 * S)
    )


def test_an_election_whose_observers_saw_every_long_term_passes() -> None:
    report = checker.check(election_history(), events=election_observers())
    assert report.ok, report.failures()
    election = report.elections["leader"]
    assert (election.terms, election.first_term, election.last_term) == (3, 1, 3)
    assert election.observers_by_client == {"node-new": 1, "py-async": 1, "rust": 1}
    assert election.bound_ns == 1200 * MS
    assert election.long_terms == 2
    assert election.checked == 5  # term 1: observers 10 and 11; term 3: all three
    text = checker.format_report(report)
    assert "election leader: 3 terms (1..3" in text and "all seen" in text


def test_an_observer_that_saw_a_term_go_back_fails() -> None:
    events = election_observers() + observer(13, "py-sync", [(100, 3), (3100, 1)], 0, 7 * S)
    report = checker.check(election_history(), events=events)
    assert not report.ok
    assert any("saw term 1 after term 3" in v for v in report.coordination_violations)


def test_an_observer_that_saw_a_term_twice_fails() -> None:
    # The term was released (null) and then shown again: a term cannot come back.
    events = election_observers() + observer(13, "py-sync", [(100, 1), (2010, None), (2015, 1), (3100, 3)], 0, 7 * S)
    report = checker.check(election_history(), events=events)
    assert not report.ok
    assert any("saw term 1 after term 1" in v for v in report.coordination_violations)


def test_a_term_no_hold_line_names_fails_unless_a_campaign_failed() -> None:
    events = election_observers() + observer(13, "py-sync", [(100, 1), (2500, 2), (2800, 3), (4700, 4)], 0, 7 * S)
    report = checker.check(election_history(), events=events)
    assert not report.ok
    assert report.elections["leader"].unlogged_terms == [4]
    assert any("no hold line names" in v for v in report.coordination_violations)
    # A campaign that failed with an error may have landed: its term is explained.
    failed = {"event": "error", "op": "campaign", "lock": "leader", "error": "OutcomeUnknownError", "at": 4600 * MS, "client": "py-sync", "pid": 13}
    report = checker.check(election_history(), events=events + [failed])
    assert report.ok, report.failures()


def test_terms_nobody_logged_may_be_allowed_for_a_while() -> None:
    # Term 4 (an acquisition nobody waited for) shown from 4.7 s to 5.5 s: allowed with a limit
    # of 1 s, not with 0.5 s; term 5, still shown when the observer stopped, is not timed.
    events = election_observers() + observer(13, "py-sync", [(100, 1), (2500, 2), (2800, 3), (4700, 4), (5500, None), (6000, 5)],
                                             0, 7 * S)
    report = checker.check(election_history(), events=events, unlogged_term_limit=1.0)
    assert report.ok, report.failures()
    election = report.elections["leader"]
    assert election.unlogged_terms == [4, 5] and election.unlogged_seen_ns == {4: 800 * MS}
    assert "terms no hold line names (acquisitions nobody waited for): [4, 5], shown for at most 0.80 s" in checker.format_report(report)
    report = checker.check(election_history(), events=events, unlogged_term_limit=0.5)
    assert not report.ok
    assert any("term 4, which no hold line names, was shown for 0.80 s" in v for v in report.coordination_violations)


def test_a_long_term_an_observer_running_throughout_missed_fails() -> None:
    # Observer 11 without term 3 (held 3.0..4.5 s; it ran from before until 7 s).
    events = [e for e in election_observers() if not (e["pid"] == 11 and e.get("term") == 3)]
    report = checker.check(election_history(), events=events)
    assert not report.ok
    [violation] = report.coordination_violations
    assert "term 3" in violation and "not seen by observer node-new pid 11" in violation
    assert "1 MISSED" in checker.format_report(report)
    # With more slack the term counts as short (the bound is a parameter).
    assert checker.check(election_history(), events=events, observer_slack=1.5).ok


def test_a_missed_term_is_not_held_against_an_observer_that_did_not_run_throughout() -> None:
    # Observer 14 stopped 1 s after term 3 ended (less than the bound after), observer 15
    # started after term 3 began; neither saw it. A short term (2) and a lost one are not
    # required either.
    holds = election_history() + [term(4, 5 * S, 6500, ok=False, increment=False, pid=4)]
    events = (
        election_observers()
        + observer(14, "py-sync", [(-10, None), (100, 1), (2100, 2), (2400, None)], -20, 5500)
        + observer(15, "node-new", [(3100, None)], 3050, 7 * S)
    )
    events = [e for e in events if not (e["pid"] in (10, 11, 12) and e.get("term") == 4)]
    report = checker.check(holds, events=events)
    assert report.ok, report.failures()
    # Observer 11 missed term 3 while its watch had failed (and was started again).
    events = [e for e in events if not (e["pid"] == 11 and e.get("term") == 3)]
    assert not checker.check(holds, events=events).ok
    failed = {"event": "error", "op": "observe", "lock": "leader", "error": "TransportError", "at": 3500 * MS, "client": "node-new", "pid": 11}
    report = checker.check(holds, events=events + [failed])
    assert report.ok, report.failures()


def test_a_term_on_another_lock_id_fails() -> None:
    holds = election_history() + [{**term(4, 5 * S, 5100), "lock": "lock-1"}]
    assert not checker.check(holds).ok


def test_overlapping_terms_fail() -> None:
    holds = [term(1, 0, 100), term(2, 50, 150, pid=2)]
    report = checker.check(holds)
    assert not report.ok and len(report.overlaps) == 1


# ---------------------------------------------------------------------------------------------
# Hand-offs
# ---------------------------------------------------------------------------------------------


def handoff_history() -> List[Dict[str, Any]]:
    # py-sync pid 1 detaches lock a (token 2); node-new pid 2 resumes it 5 ms later and releases;
    # then token 3. Lock b: detached by rust, nobody resumed it, taken over after the lease.
    return [
        hold("a", 1, 0, 10, pid=3, client="rust"),
        {**hold("a", 2, 12, 20, pid=1), "detached": True, "handoff": "handoff/1-1"},
        {**hold("a", 2, 25, 40, pid=2, client="node-new"), "resumed": True, "handoff": "handoff/1-1"},
        hold("a", 3, 41, 50, pid=1),
        {**hold("b", 1, 0, 10, pid=3, client="rust"), "detached": True, "handoff": "handoff/3-1"},
        hold("b", 2, 1200, 1210, pid=1),
    ]


def test_a_resumed_hold_that_carries_on_a_detached_one_passes() -> None:
    report = checker.check(handoff_history(), {"a": 4, "b": 2})
    assert report.ok, report.failures()
    handoffs = report.handoffs
    assert (handoffs.detached, handoffs.resumed, handoffs.not_resumed) == (2, 1, 1)
    assert (handoffs.cross_process, handoffs.cross_language) == (1, 1)
    assert handoffs.pairs == {"py-sync -> node-new": 1}
    assert handoffs.latencies_ns == [5 * MS]
    assert 5 * MS not in report.handovers_ns  # a hand-off is not a handover
    text = checker.format_report(report)
    assert "hand-offs: 2 detached, 1 resumed (1 across languages, 1 across processes), 1 left to expire" in text


def test_a_resumed_hold_with_another_token_fails() -> None:
    holds = handoff_history()
    holds[2]["token"] = 3
    holds[3]["token"] = 4
    report = checker.check(holds)
    assert not report.ok
    assert any("has token 3, and the detached hold before it 2" in v for v in report.token_violations)


def test_a_resumed_hold_after_a_hold_that_was_not_detached_fails() -> None:
    holds = handoff_history()
    del holds[1]["detached"]
    report = checker.check(holds)
    assert not report.ok
    assert any("which was not detached" in v for v in report.token_violations)


def test_a_resumed_hold_with_nothing_before_it_fails() -> None:
    report = checker.check([{**hold("c", 4, 0, 10), "resumed": True}])
    assert not report.ok
    assert "has no hold before it" in report.token_violations[0]


def test_a_hand_off_resumed_twice_fails() -> None:
    # Two claimers of one mailbox entry: the second resumed hold follows a resumed hold.
    holds = handoff_history()
    holds.insert(3, {**hold("a", 2, 41, 45, pid=4, client="py-async"), "resumed": True, "handoff": "handoff/1-1"})
    holds[4]["acquired"], holds[4]["released"] = 46 * MS, 50 * MS
    report = checker.check(holds)
    assert not report.ok
    assert any("which was not detached" in v for v in report.token_violations)


def test_a_resumed_hold_that_starts_before_the_detached_one_ended_fails() -> None:
    holds = handoff_history()
    holds[2]["acquired"] = 18 * MS
    report = checker.check(holds)
    assert not report.ok
    assert any("starts before the detached hold" in v for v in report.token_violations)


def test_a_resumed_hold_from_another_mailbox_entry_fails() -> None:
    holds = handoff_history()
    holds[2]["handoff"] = "handoff/9-9"
    assert not checker.check(holds).ok


def test_a_resumed_hold_whose_increment_got_lost_fails_the_counter() -> None:
    # Counters stay exact across a hand-off: the resumed hold's increment counts.
    assert not checker.check(handoff_history(), {"a": 3, "b": 2}).ok
