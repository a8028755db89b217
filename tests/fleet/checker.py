"""The fleet safety checker: reads worker logs (docs/fleet.md) and verifies, per lock id,

- **mutual exclusion**: no two holds overlap on the shared CLOCK_MONOTONIC clock. Each logged
  interval lies inside the real hold (`acquired` is taken after acquire returned, `released`
  before release was called), so two logged intervals that overlap prove two real holders at once.
  Holds whose holder found its lease lost (`ok: false`) are counted but not compared: their real
  end is the lease's end, which the log cannot know. Their writes are what fencing is for, and
  the counter check catches a fenced write that got through.
- **fencing tokens** strictly increase in acquisition order (and every hold has one);
- **counters**: each lock's KV counter equals the number of increments its holders saw succeed
  (at most that plus the increments whose outcome stayed unknown). Every increment is a
  compare-and-swap fenced by the lock, so a lost update or a write by a stale holder shows here.
- **no stuck lock** (when the runner probed the locks after the fleet and the faults stopped,
  see `LockProbe`): every lock id was free, or a fresh client acquired it within the bound (a
  fail-open lock: one lease plus slack, since a holder that is gone leaves at most one lease).

    python tests/fleet/checker.py LOG_DIR_OR_FILES... [--counters counters.json] [--json]

Exits 1 when a check fails. `check()` is the library form the runner and the tests use.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

Hold = Dict[str, Any]
Event = Dict[str, Any]

HOLD_FIELDS = ("lock", "token", "client", "pid", "acquired", "released", "ok")


def log_files(paths: Iterable[str]) -> List[str]:
    """The .jsonl files named, or found directly inside the directories named."""
    files: List[str] = []
    for path in paths:
        if os.path.isdir(path):
            files.extend(sorted(os.path.join(path, name) for name in os.listdir(path) if name.endswith(".jsonl")))
        else:
            files.append(path)
    return files


def load(paths: Iterable[str]) -> Tuple[List[Hold], List[Event]]:
    """Hold lines and event lines of the logs. A torn last line (a worker killed while writing)
    is skipped; any other malformed line is an error, since a checker must not guess."""
    holds: List[Hold] = []
    events: List[Event] = []
    for path in log_files(paths):
        with open(path, encoding="utf-8") as file:
            lines = file.read().split("\n")
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                if number == len(lines):  # no newline after it: cut off mid-write
                    continue
                raise ValueError(f"{path}:{number}: not JSON: {line[:120]!r}") from None
            if "event" in record:
                events.append(record)
                continue
            missing = [name for name in HOLD_FIELDS if name not in record]
            if missing:
                raise ValueError(f"{path}:{number}: a hold line without {', '.join(missing)}")
            holds.append(record)
    return holds, events


@dataclass
class LockProbe:
    """What a fresh client found when it tried a lock after the fleet and the faults stopped."""

    state: str  # "free" (taken at once), "waited" (taken after a wait), "stuck" (not within bound)
    waited: float  # seconds until it was taken (or until it gave up)
    bound: float  # the longest wait allowed
    token: Optional[int] = None  # the fencing token it got

    @property
    def stuck(self) -> bool:
        return self.state == "stuck" or self.waited > self.bound


@dataclass
class LockReport:
    lock: str
    holds: int = 0
    lost: int = 0
    first_token: Optional[int] = None
    last_token: Optional[int] = None
    token_violations: List[str] = field(default_factory=list)
    increments: int = 0  # applied, as their holders saw
    unknown_increments: int = 0
    counter: Optional[int] = None  # found in the store; None: not given or absent
    probe: Optional[LockProbe] = None  # None: not probed

    @property
    def tokens_increasing(self) -> bool:
        return not self.token_violations

    @property
    def counter_ok(self) -> bool:
        if self.counter is None:
            return self.increments == 0
        return self.increments <= self.counter <= self.increments + self.unknown_increments

    @property
    def lost_increments(self) -> int:
        return max(0, self.increments - (self.counter or 0))


@dataclass
class Report:
    locks: Dict[str, LockReport]
    holds_by_client: Dict[str, int]
    processes_by_client: Dict[str, int]
    overlaps: List[Tuple[Hold, Hold]]
    handovers_ns: List[int]
    errors: Dict[str, int]
    counters_checked: bool

    @property
    def holds(self) -> int:
        return sum(self.holds_by_client.values())

    @property
    def token_violations(self) -> List[str]:
        return [v for lock in self.locks.values() for v in lock.token_violations]

    @property
    def counter_violations(self) -> List[str]:
        if not self.counters_checked:
            return []
        return [
            f"{lock.lock}: counter {lock.counter}, expected {lock.increments}"
            + (f" (+ up to {lock.unknown_increments} unknown)" if lock.unknown_increments else "")
            for lock in self.locks.values()
            if not lock.counter_ok
        ]

    @property
    def stuck_locks(self) -> List[str]:
        return [
            f"{lock.lock}: stuck: a fresh client {'did not get it within' if lock.probe.state == 'stuck' else 'waited'} "
            f"{lock.probe.waited:.2f} s (bound {lock.probe.bound:.2f} s) after the fleet and the faults stopped"
            for lock in self.locks.values()
            if lock.probe is not None and lock.probe.stuck
        ]

    @property
    def probed(self) -> bool:
        return any(lock.probe is not None for lock in self.locks.values())

    @property
    def ok(self) -> bool:
        return not self.overlaps and not self.token_violations and not self.counter_violations and not self.stuck_locks

    def failures(self) -> List[str]:
        out = [f"overlap on {a['lock']}: {describe(a)} and {describe(b)}" for a, b in self.overlaps]
        return out + self.token_violations + self.counter_violations + self.stuck_locks

    def handover_ms(self, quantile: float) -> Optional[float]:
        return percentile(self.handovers_ns, quantile) / 1e6 if self.handovers_ns else None


def describe(hold: Hold) -> str:
    return f"{hold['client']} pid {hold['pid']} token {hold['token']} [{hold['acquired']}, {hold['released']}]"


def percentile(values: Sequence[int], quantile: float) -> float:
    """Nearest-rank percentile (quantile in [0, 1])."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, int(round(quantile * len(ordered) + 0.5)) - 1))
    return float(ordered[rank])


def check(
    holds: Sequence[Hold],
    counters: Optional[Mapping[str, Optional[int]]] = None,
    events: Sequence[Event] = (),
    probes: Optional[Mapping[str, LockProbe]] = None,
) -> Report:
    """Checks holds (and, when given, the counters found in the store per lock id, and what a
    fresh client found when it tried each lock at the end)."""
    by_lock: Dict[str, List[Hold]] = defaultdict(list)
    for hold in holds:
        by_lock[str(hold["lock"])].append(hold)
    for lock_id in list(counters or {}) + list(probes or {}):
        by_lock.setdefault(lock_id, [])

    locks: Dict[str, LockReport] = {}
    overlaps: List[Tuple[Hold, Hold]] = []
    handovers: List[int] = []
    for lock_id, lock_holds in sorted(by_lock.items()):
        ordered = sorted(lock_holds, key=lambda h: (h["acquired"], h["released"]))
        report = LockReport(lock=lock_id, holds=len(ordered))
        report.lost = sum(1 for h in ordered if not h["ok"])
        report.increments = sum(1 for h in ordered if h.get("increment") is True)
        report.unknown_increments = sum(1 for h in ordered if "increment" in h and h["increment"] is None)

        # Tokens: strictly increasing in acquisition order, over every hold (lost ones too: a
        # takeover must still raise the token).
        previous: Optional[Hold] = None
        for hold in ordered:
            token = hold["token"]
            if not isinstance(token, int) or isinstance(token, bool):
                report.token_violations.append(f"{lock_id}: hold without a fencing token: {describe(hold)}")
                continue
            if report.first_token is None:
                report.first_token = token
            report.last_token = token if report.last_token is None else max(report.last_token, token)
            if previous is not None and token <= previous["token"]:
                report.token_violations.append(
                    f"{lock_id}: token {token} after {previous['token']} ({describe(hold)} acquired after {describe(previous)})"
                )
            previous = hold

        # Mutual exclusion among holds that were valid to their end. Sorted by start, a hold
        # overlaps an earlier one exactly when it starts before the latest end seen so far.
        valid = [h for h in ordered if h["ok"]]
        latest: Optional[Hold] = None
        for hold in valid:
            if latest is not None:
                if hold["acquired"] < latest["released"]:
                    overlaps.append((latest, hold))
                else:
                    handovers.append(hold["acquired"] - latest["released"])
            if latest is None or hold["released"] > latest["released"]:
                latest = hold

        if counters is not None:
            report.counter = counters.get(lock_id)
        if probes is not None:
            report.probe = probes.get(lock_id)
        locks[lock_id] = report

    holds_by_client = Counter(str(h["client"]) for h in holds)
    pids: Dict[str, set] = defaultdict(set)
    for record in list(holds) + list(events):
        pids[str(record.get("client"))].add(record.get("pid"))
    errors = Counter(f"{e.get('op')}: {e.get('error')}" for e in events if e.get("event") == "error")
    return Report(
        locks=locks,
        holds_by_client=dict(sorted(holds_by_client.items())),
        processes_by_client={client: len(p) for client, p in sorted(pids.items())},
        overlaps=overlaps,
        handovers_ns=handovers,
        errors=dict(sorted(errors.items())),
        counters_checked=counters is not None,
    )


def format_report(report: Report) -> str:
    lines: List[str] = []
    lines.append("acquisitions per client kind")
    lines.append(f"  {'client':<12} {'processes':>9} {'holds':>8}")
    for client, count in report.holds_by_client.items():
        lines.append(f"  {client:<12} {report.processes_by_client.get(client, 0):>9} {count:>8}")
    lines.append(f"  {'total':<12} {sum(report.processes_by_client.get(c, 0) for c in report.holds_by_client):>9} {report.holds:>8}")
    lines.append("")
    if report.handovers_ns:
        p = {q: report.handover_ms(q) for q in (0.5, 0.9, 0.99, 1.0)}
        lines.append(
            f"handover latency (release -> next acquire of the same lock, {len(report.handovers_ns)} handovers): "
            f"p50 {p[0.5]:.1f} ms, p90 {p[0.9]:.1f} ms, p99 {p[0.99]:.1f} ms, max {p[1.0]:.1f} ms"
        )
        lines.append("")
    lines.append("per lock")
    lines.append(f"  {'lock':<12} {'holds':>6} {'lost':>5} {'tokens':>13} {'increasing':>10} {'counter':>8} {'expected':>8} {'ok':>4}")
    for lock in report.locks.values():
        tokens = f"{lock.first_token}..{lock.last_token}" if lock.first_token is not None else "-"
        expected = f"{lock.increments}" + (f"+{lock.unknown_increments}?" if lock.unknown_increments else "")
        counter = "-" if not report.counters_checked else ("absent" if lock.counter is None else str(lock.counter))
        ok = lock.tokens_increasing and (lock.counter_ok or not report.counters_checked)
        lines.append(
            f"  {lock.lock:<12} {lock.holds:>6} {lock.lost:>5} {tokens:>13} {'yes' if lock.tokens_increasing else 'NO':>10} "
            f"{counter:>8} {expected:>8} {'yes' if ok else 'NO':>4}"
        )
    lines.append("")
    lines.append(f"overlaps: {len(report.overlaps)}")
    if report.probed:
        probes = [lock.probe for lock in report.locks.values() if lock.probe is not None]
        longest = max(p.waited for p in probes)
        lines.append(
            f"stuck locks: {len(report.stuck_locks)} of {len(probes)} probed after the fleet stopped "
            f"({sum(p.state == 'free' for p in probes)} free at once, longest wait {longest:.2f} s, bound {probes[0].bound:.2f} s)"
        )
    if report.errors:
        lines.append("errors seen by workers (handled): " + ", ".join(f"{k} x{v}" for k, v in report.errors.items()))
    for failure in report.failures():
        lines.append(f"FAIL {failure}")
    lines.append("RESULT: " + ("OK" if report.ok else "FAILED"))
    return "\n".join(lines)


def report_json(report: Report) -> Dict[str, Any]:
    return {
        "ok": report.ok,
        "holds": report.holds,
        "holds_by_client": report.holds_by_client,
        "processes_by_client": report.processes_by_client,
        "overlaps": len(report.overlaps),
        "stuck_locks": len(report.stuck_locks),
        "handover_ms": {str(q): report.handover_ms(q) for q in (0.5, 0.9, 0.99, 1.0)},
        "errors": report.errors,
        "locks": {
            lock.lock: {
                "holds": lock.holds,
                "lost": lock.lost,
                "first_token": lock.first_token,
                "last_token": lock.last_token,
                "tokens_increasing": lock.tokens_increasing,
                "increments": lock.increments,
                "unknown_increments": lock.unknown_increments,
                "counter": lock.counter,
                "lost_increments": lock.lost_increments,
                "probe": None if lock.probe is None else {
                    "state": lock.probe.state, "waited": lock.probe.waited, "bound": lock.probe.bound, "token": lock.probe.token,
                },
            }
            for lock in report.locks.values()
        },
        "failures": report.failures(),
    }


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("logs", nargs="+", help="JSONL logs, or directories holding them")
    parser.add_argument("--counters", help="JSON object {lock id: counter value or null}")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    holds, events = load(args.logs)
    counters = None
    if args.counters:
        with open(args.counters, encoding="utf-8") as file:
            counters = json.load(file)
    report = check(holds, counters, events)
    print(json.dumps(report_json(report), indent=2) if args.json else format_report(report))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
