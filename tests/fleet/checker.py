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
  fail-open lock: one lease plus slack, since a holder that is gone leaves at most one lease);
- **semaphores** (holds with `"semaphore": NAME`): every permit id is `NAME#k` with `0 <= k < N`
  (N from the holds' `"permits"`, the same in all), and at no instant do more than N of them
  overlap (a sweep over the `ok` holds' intervals);
- **elections** (holds with `"election": NAME`, whose token is the term): terms rise strictly and
  never overlap (the per-lock checks, on the lock id NAME); every observer (`leader` events of one
  process) saw non-null terms strictly rising, only terms that some hold line names (or that a
  campaign with an unknown outcome may have left; with `unlogged_term_limit`, any term nobody
  logged, each shown for at most that long), and every `ok` term held longer than the bound
  (4 observer intervals + `observer_slack`) by every observer that ran throughout it (its first
  reading before the term began, its stop at least a bound after the term ended, and no failed
  watch within a bound of the term);
- **hand-offs**: a `resumed` hold has the same token as the hold of its lock just before it,
  which is `detached` (and names the same mailbox key), and starts after that one ended; apart
  from that, tokens rise strictly as above, and the counters stay exact.

    python tests/fleet/checker.py LOG_DIR_OR_FILES... [--counters counters.json] [--json]
        [--observer-slack S] [--unlogged-term-limit S]

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
class SemaphoreReport:
    name: str
    permits: Optional[int]  # N, as the holds say (None: missing or disagreeing)
    holds: int = 0
    holds_by_client: Dict[str, int] = field(default_factory=dict)
    max_concurrent: int = 0  # the most `ok` holds that overlapped at one instant
    violations: List[str] = field(default_factory=list)


@dataclass
class ObserverReport:
    client: str
    pid: Any
    interval_ms: float
    start: Optional[int]  # `at` of its first reading
    stop: Optional[int]  # `at` of its observer-stop event (None: never logged)
    terms_seen: List[int] = field(default_factory=list)  # the non-null terms, in order


@dataclass
class ElectionReport:
    name: str
    terms: int = 0  # hold lines (campaigns won)
    first_term: Optional[int] = None
    last_term: Optional[int] = None
    terms_by_client: Dict[str, int] = field(default_factory=dict)
    observers: List[ObserverReport] = field(default_factory=list)
    bound_ns: int = 0  # a term held longer than this must be seen by every observer running throughout it
    long_terms: int = 0  # ok terms held longer than the bound
    checked: int = 0  # (long term, observer running throughout it) pairs checked
    unlogged_terms: List[int] = field(default_factory=list)  # seen by observers, in no hold line
    #: The longest any observer saw each unlogged term, from its first reading of it to its next
    #: reading that differed (terms still shown when the observer stopped are not timed).
    unlogged_seen_ns: Dict[int, int] = field(default_factory=dict)
    unlogged_term_limit: Optional[float] = None  # seconds; None: unlogged terms are not allowed
    campaign_errors: int = 0  # campaigns that failed with an error (their outcome may be unknown)
    violations: List[str] = field(default_factory=list)

    @property
    def observers_by_client(self) -> Dict[str, int]:
        return dict(sorted(Counter(o.client for o in self.observers).items()))


@dataclass
class HandoffReport:
    detached: int = 0
    resumed: int = 0
    cross_process: int = 0  # resumed by another process than the one that detached
    cross_language: int = 0  # ... in another language (the client kind's first word: py, node, rust)
    pairs: Dict[str, int] = field(default_factory=dict)  # "detacher -> resumer" client kinds
    latencies_ns: List[int] = field(default_factory=list)  # detached hold's end -> resumed hold's start

    @property
    def not_resumed(self) -> int:
        """Detached holds nobody resumed (left to expire: claimed too late, or after the fleet stopped)."""
        return self.detached - self.resumed

    def latency_ms(self, quantile: float) -> Optional[float]:
        return percentile(self.latencies_ns, quantile) / 1e6 if self.latencies_ns else None


@dataclass
class Report:
    locks: Dict[str, LockReport]
    holds_by_client: Dict[str, int]
    processes_by_client: Dict[str, int]
    overlaps: List[Tuple[Hold, Hold]]
    handovers_ns: List[int]
    errors: Dict[str, int]
    counters_checked: bool
    semaphores: Dict[str, SemaphoreReport] = field(default_factory=dict)
    elections: Dict[str, ElectionReport] = field(default_factory=dict)
    handoffs: HandoffReport = field(default_factory=HandoffReport)

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
    def coordination_violations(self) -> List[str]:
        out = [v for sem in self.semaphores.values() for v in sem.violations]
        # A resumed hold that does not carry on a detached one is a token violation of its lock.
        return out + [v for election in self.elections.values() for v in election.violations]

    @property
    def ok(self) -> bool:
        return (
            not self.overlaps
            and not self.token_violations
            and not self.counter_violations
            and not self.stuck_locks
            and not self.coordination_violations
        )

    def failures(self) -> List[str]:
        out = [f"overlap on {a['lock']}: {describe(a)} and {describe(b)}" for a, b in self.overlaps]
        return out + self.token_violations + self.counter_violations + self.stuck_locks + self.coordination_violations

    def handover_ms(self, quantile: float) -> Optional[float]:
        return percentile(self.handovers_ns, quantile) / 1e6 if self.handovers_ns else None


def describe(hold: Hold) -> str:
    return f"{hold['client']} pid {hold['pid']} token {hold['token']} [{hold['acquired']}, {hold['released']}]"


def percentile(values: Sequence[int], quantile: float) -> float:
    """Nearest-rank percentile (quantile in [0, 1])."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, int(round(quantile * len(ordered) + 0.5)) - 1))
    return float(ordered[rank])


#: An observer's interval when its observer-start event does not say (docs/fleet.md).
DEFAULT_OBSERVER_INTERVAL_MS = 50.0
#: What the coverage bound allows beyond 4 observer intervals: scheduling on a loaded machine,
#: a slow read, a garbage collection in DynamoDB Local. A term held longer than the bound must be
#: seen by every observer that ran throughout it.
DEFAULT_OBSERVER_SLACK = 1.0


def language(client: Any) -> str:
    """The language of a client kind: its first word (py-sync -> py, node-dlc -> node, rust)."""
    return str(client).split("-", 1)[0]


def check(
    holds: Sequence[Hold],
    counters: Optional[Mapping[str, Optional[int]]] = None,
    events: Sequence[Event] = (),
    probes: Optional[Mapping[str, LockProbe]] = None,
    observer_slack: float = DEFAULT_OBSERVER_SLACK,
    unlogged_term_limit: Optional[float] = None,
) -> Report:
    """Checks holds (and, when given, the counters found in the store per lock id, and what a
    fresh client found when it tried each lock at the end). `observer_slack` (seconds) widens
    the bound past which an election's term must have been seen by every observer.
    `unlogged_term_limit` (seconds): observers may see terms that no hold line names (an
    acquisition nobody waited for), each for at most this long; None: only as many as campaigns
    failed with an error."""
    by_lock: Dict[str, List[Hold]] = defaultdict(list)
    for hold in holds:
        by_lock[str(hold["lock"])].append(hold)
    for lock_id in list(counters or {}) + list(probes or {}):
        by_lock.setdefault(lock_id, [])

    locks: Dict[str, LockReport] = {}
    overlaps: List[Tuple[Hold, Hold]] = []
    handovers: List[int] = []
    handoff_pairs: List[Tuple[Hold, Hold]] = []  # (detached hold, the resumed hold after it)
    for lock_id, lock_holds in sorted(by_lock.items()):
        ordered = sorted(lock_holds, key=lambda h: (h["acquired"], h["released"]))
        report = LockReport(lock=lock_id, holds=len(ordered))
        report.lost = sum(1 for h in ordered if not h["ok"])
        report.increments = sum(1 for h in ordered if h.get("increment") is True)
        report.unknown_increments = sum(1 for h in ordered if "increment" in h and h["increment"] is None)

        # Tokens: strictly increasing in acquisition order, over every hold (lost ones too: a
        # takeover must still raise the token). A resumed hold carries on the detached hold just
        # before it: same token, after it ended.
        previous: Optional[Hold] = None
        for hold in ordered:
            token = hold["token"]
            if not is_int(token):
                report.token_violations.append(f"{lock_id}: hold without a fencing token: {describe(hold)}")
                continue
            if report.first_token is None:
                report.first_token = token
            report.last_token = token if report.last_token is None else max(report.last_token, token)
            if hold.get("resumed"):
                problem = resume_problem(previous, hold)
                if problem:
                    report.token_violations.append(f"{lock_id}: resumed hold {describe(hold)} {problem}")
                else:
                    handoff_pairs.append((previous, hold))  # type: ignore[arg-type]
            elif previous is not None and token <= previous["token"]:
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
                elif not hold.get("resumed"):  # a hand-off's gap is not a handover (HandoffReport)
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
        semaphores=check_semaphores(holds),
        elections=check_elections(holds, events, observer_slack, unlogged_term_limit),
        handoffs=check_handoffs(holds, handoff_pairs),
    )


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def resume_problem(previous: Optional[Hold], hold: Hold) -> Optional[str]:
    """Why `hold` (resumed) does not carry on the hold before it (None: it does)."""
    if previous is None:
        return "has no hold before it to carry on"
    if not previous.get("detached"):
        return f"follows {describe(previous)}, which was not detached"
    if previous["token"] != hold["token"]:
        return f"has token {hold['token']}, and the detached hold before it {previous['token']}"
    if "handoff" in hold and hold.get("handoff") != previous.get("handoff"):
        return f"came from mailbox key {hold.get('handoff')!r}, and the detached hold before it went to {previous.get('handoff')!r}"
    if hold["acquired"] < previous["released"]:
        return f"starts before the detached hold {describe(previous)} ended"
    return None


def check_semaphores(holds: Sequence[Hold]) -> Dict[str, SemaphoreReport]:
    by_name: Dict[str, List[Hold]] = defaultdict(list)
    for hold in holds:
        if hold.get("semaphore") is not None:
            by_name[str(hold["semaphore"])].append(hold)
    reports: Dict[str, SemaphoreReport] = {}
    for name, sem_holds in sorted(by_name.items()):
        counts = Counter(h.get("permits") for h in sem_holds)
        named = next(iter(counts)) if len(counts) == 1 else None
        permits = named if isinstance(named, int) and not isinstance(named, bool) and named > 0 else None
        report = SemaphoreReport(name=name, permits=permits, holds=len(sem_holds))
        report.holds_by_client = dict(sorted(Counter(str(h["client"]) for h in sem_holds).items()))
        if report.permits is None:
            report.violations.append(f"semaphore {name}: holds disagree on (or lack) its number of permits: {dict(counts)}")
        else:
            for hold in sem_holds:
                prefix, _, k = str(hold["lock"]).rpartition("#")
                if prefix != name or not k.isdigit() or str(int(k)) != k or int(k) >= report.permits:
                    report.violations.append(
                        f"semaphore {name}: permit id {hold['lock']!r} is not {name}#k with 0 <= k < {report.permits}: {describe(hold)}"
                    )
        # Sweep over the ok holds' intervals; at one instant an end comes before a start (back
        # to back is not an overlap, as for a lock).
        points = sorted((t, delta, i) for i, h in enumerate(sem_holds) if h["ok"] for t, delta in ((h["acquired"], 1), (h["released"], -1)))
        active: set = set()
        reported = False
        for t, delta, i in points:
            if delta < 0:
                active.discard(i)
                continue
            active.add(i)
            report.max_concurrent = max(report.max_concurrent, len(active))
            if report.permits is not None and len(active) > report.permits and not reported:
                holders = "; ".join(f"{sem_holds[j]['lock']}: {describe(sem_holds[j])}" for j in sorted(active))
                report.violations.append(f"semaphore {name}: {len(active)} holders at once at {t}, {report.permits} permits: {holders}")
                reported = True  # one line per semaphore is enough; max_concurrent says how bad
            elif len(active) <= (report.permits or 0):
                reported = False
        reports[name] = report
    return reports


def check_elections(
    holds: Sequence[Hold], events: Sequence[Event], observer_slack: float, unlogged_term_limit: Optional[float]
) -> Dict[str, ElectionReport]:
    terms_by_name: Dict[str, List[Hold]] = defaultdict(list)
    for hold in holds:
        if hold.get("election") is not None:
            terms_by_name[str(hold["election"])].append(hold)
    readings: Dict[Tuple[str, Any], List[Event]] = defaultdict(list)
    starts: Dict[Tuple[str, Any], Event] = {}
    stops: Dict[Tuple[str, Any], Event] = {}
    for event in events:
        name = event.get("election")
        if name is None:
            continue
        key = (str(name), event.get("pid"))
        if event.get("event") == "leader":
            readings[key].append(event)
        elif event.get("event") == "observer-start":
            starts.setdefault(key, event)
        elif event.get("event") == "observer-stop":
            stops.setdefault(key, event)
    names = set(terms_by_name) | {name for name, _ in readings}
    reports: Dict[str, ElectionReport] = {}
    for name in sorted(names):
        terms = sorted(terms_by_name.get(name, []), key=lambda h: (h["acquired"], h["released"]))
        report = ElectionReport(name=name, terms=len(terms))
        report.terms_by_client = dict(sorted(Counter(str(h["client"]) for h in terms).items()))
        tokens = [h["token"] for h in terms if is_int(h["token"])]
        report.first_term = min(tokens) if tokens else None
        report.last_term = max(tokens) if tokens else None
        for hold in terms:
            if str(hold["lock"]) != name:
                report.violations.append(f"election {name}: a term held on lock id {hold['lock']!r}, not {name!r}: {describe(hold)}")
        report.campaign_errors = sum(
            1 for e in events if e.get("event") == "error" and e.get("op") == "campaign" and str(e.get("lock")) == name
        )
        # An observer whose watch failed was blind until it started again.
        blind: Dict[Any, List[int]] = defaultdict(list)
        for e in events:
            if e.get("event") == "error" and e.get("op") == "observe" and str(e.get("lock")) == name:
                blind[e.get("pid")].append(e["at"])
        known = set(tokens)
        unlogged: set = set()
        for (observed, pid), seen in sorted(readings.items(), key=lambda item: str(item[0])):
            if observed != name:
                continue
            seen = sorted(seen, key=lambda e: e["at"])
            start_event = starts.get((name, pid), {})
            observer = ObserverReport(
                client=str(seen[0].get("client")),
                pid=pid,
                interval_ms=float(start_event.get("interval_ms") or DEFAULT_OBSERVER_INTERVAL_MS),
                start=seen[0]["at"],
                stop=stops[(name, pid)]["at"] if (name, pid) in stops else None,
            )
            last: Optional[int] = None
            for i, event in enumerate(seen):
                term = event.get("term")
                if term is None:
                    continue
                if not is_int(term):
                    report.violations.append(f"election {name}: observer {observer.client} pid {pid} logged a term that is no integer: {term!r}")
                    continue
                if last is not None and term <= last:
                    report.violations.append(
                        f"election {name}: observer {observer.client} pid {pid} saw term {term} after term {last} (at {event['at']})"
                    )
                last = term if last is None else max(last, term)
                observer.terms_seen.append(term)
                if term not in known:
                    unlogged.add(term)
                    after = next((e for e in seen[i + 1:] if e.get("term") != term), None)
                    if after is not None:
                        shown = after["at"] - event["at"]
                        report.unlogged_seen_ns[term] = max(report.unlogged_seen_ns.get(term, 0), shown)
            report.observers.append(observer)
        report.unlogged_terms = sorted(unlogged)
        report.unlogged_term_limit = unlogged_term_limit
        if unlogged_term_limit is None:
            # Without faults or load, only a campaign that failed with an error (a lost answer
            # the client could not resolve) may leave a term nobody logs.
            if len(report.unlogged_terms) > report.campaign_errors:
                report.violations.append(
                    f"election {name}: observers saw term(s) {report.unlogged_terms} that no hold line names "
                    f"(and only {report.campaign_errors} campaign(s) failed with an error)"
                )
        else:
            # An acquisition nobody waits for (its caller got an error or gave up, or its answer
            # came after the lease it wrote had run out) is a term nobody holds: taken back at
            # once, or taken over by the next candidate after its lease.
            for term, shown in sorted(report.unlogged_seen_ns.items()):
                if shown > unlogged_term_limit * 1e9:
                    report.violations.append(
                        f"election {name}: term {term}, which no hold line names, was shown for {shown / 1e9:.2f} s "
                        f"(more than {unlogged_term_limit:g} s)"
                    )
        # Coverage: an observer reads at least every interval (plus a read's time); a term held
        # longer than the bound spans one of its readings, if the observer ran throughout it.
        interval_ms = max([o.interval_ms for o in report.observers] or [DEFAULT_OBSERVER_INTERVAL_MS])
        report.bound_ns = int((4 * interval_ms / 1000 + observer_slack) * 1e9)
        for hold in terms:
            if not hold["ok"] or not is_int(hold["token"]) or hold["released"] - hold["acquired"] <= report.bound_ns:
                continue
            report.long_terms += 1
            for observer in report.observers:
                throughout = (
                    observer.start is not None
                    and observer.stop is not None
                    and observer.start <= hold["acquired"]
                    and hold["released"] + report.bound_ns <= observer.stop
                    and not any(hold["acquired"] - report.bound_ns <= at <= hold["released"] + report.bound_ns for at in blind[observer.pid])
                )
                if not throughout:
                    continue
                report.checked += 1
                if hold["token"] not in observer.terms_seen:
                    report.violations.append(
                        f"election {name}: term {hold['token']} ({describe(hold)}, {(hold['released'] - hold['acquired']) / 1e6:.0f} ms, "
                        f"bound {report.bound_ns / 1e6:.0f} ms) not seen by observer {observer.client} pid {observer.pid}, "
                        f"which ran from {observer.start} to {observer.stop}"
                    )
        reports[name] = report
    return reports


def check_handoffs(holds: Sequence[Hold], pairs: Sequence[Tuple[Hold, Hold]]) -> HandoffReport:
    """Counts the hand-offs. Whether each resumed hold carries on a detached one is checked with
    its lock's tokens (`resume_problem`); `pairs` are the ones that do."""
    report = HandoffReport(
        detached=sum(1 for h in holds if h.get("detached")),
        resumed=sum(1 for h in holds if h.get("resumed")),
    )
    for detached, resumed in pairs:
        if detached["pid"] != resumed["pid"]:
            report.cross_process += 1
        if language(detached["client"]) != language(resumed["client"]):
            report.cross_language += 1
        pair = f"{detached['client']} -> {resumed['client']}"
        report.pairs[pair] = report.pairs.get(pair, 0) + 1
        report.latencies_ns.append(resumed["acquired"] - detached["released"])
    report.pairs = dict(sorted(report.pairs.items()))
    return report


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
    lines.extend(format_coordination(report))
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


def by_kind(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{kind} {n}" for kind, n in counts.items()) or "none"


def format_coordination(report: Report) -> List[str]:
    """The semaphore, election and hand-off lines of the summary (none when the fleet had none)."""
    lines: List[str] = []
    for sem in report.semaphores.values():
        verdict = "ok" if not sem.violations else "EXCEEDED"
        lines.append(
            f"semaphore {sem.name}: {sem.holds} permit holds ({by_kind(sem.holds_by_client)}); "
            f"at most {sem.max_concurrent} held at once, {sem.permits if sem.permits is not None else '?'} permits: {verdict}"
        )
    for election in report.elections.values():
        terms = f"{election.first_term}..{election.last_term}" if election.first_term is not None else "-"
        lines.append(
            f"election {election.name}: {election.terms} terms ({terms}; won by {by_kind(election.terms_by_client)}), "
            f"{len(election.observers)} observers ({by_kind(election.observers_by_client)})"
        )
        missed = sum(1 for v in election.violations if "not seen by observer" in v)
        verdict = "all seen" if not missed else f"{missed} MISSED"
        lines.append(
            f"  terms longer than {election.bound_ns / 1e9:.2f} s: {election.long_terms}, "
            f"checked against the observers running throughout: {election.checked} (term, observer) pairs, {verdict}; "
            f"observers' terms rising: {'yes' if not any('saw term' in v for v in election.violations) else 'NO'}"
        )
        if election.unlogged_terms:
            longest = max(election.unlogged_seen_ns.values(), default=0) / 1e9
            lines.append(
                f"  terms no hold line names (acquisitions nobody waited for): {election.unlogged_terms}, "
                f"shown for at most {longest:.2f} s"
                + (f" (limit {election.unlogged_term_limit:g} s)" if election.unlogged_term_limit is not None else "")
            )
    handoffs = report.handoffs
    if handoffs.detached or handoffs.resumed:
        lines.append(
            f"hand-offs: {handoffs.detached} detached, {handoffs.resumed} resumed "
            f"({handoffs.cross_language} across languages, {handoffs.cross_process} across processes), "
            f"{handoffs.not_resumed} left to expire"
            + (
                f"; detach -> resume p50 {handoffs.latency_ms(0.5):.1f} ms, max {handoffs.latency_ms(1.0):.1f} ms"
                if handoffs.latencies_ns
                else ""
            )
        )
        if handoffs.pairs:
            lines.append("  " + ", ".join(f"{pair} x{n}" for pair, n in handoffs.pairs.items()))
    if lines:
        lines.append("")
    return lines


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
        "semaphores": {
            sem.name: {
                "permits": sem.permits,
                "holds": sem.holds,
                "holds_by_client": sem.holds_by_client,
                "max_concurrent": sem.max_concurrent,
                "violations": sem.violations,
            }
            for sem in report.semaphores.values()
        },
        "elections": {
            election.name: {
                "terms": election.terms,
                "first_term": election.first_term,
                "last_term": election.last_term,
                "terms_by_client": election.terms_by_client,
                "observers": [
                    {"client": o.client, "pid": o.pid, "interval_ms": o.interval_ms, "start": o.start, "stop": o.stop, "terms_seen": len(o.terms_seen)}
                    for o in election.observers
                ],
                "bound_s": election.bound_ns / 1e9,
                "long_terms": election.long_terms,
                "checked": election.checked,
                "unlogged_terms": election.unlogged_terms,
                "unlogged_seen_s": {str(t): ns / 1e9 for t, ns in election.unlogged_seen_ns.items()},
                "campaign_errors": election.campaign_errors,
                "violations": election.violations,
            }
            for election in report.elections.values()
        },
        "handoffs": {
            "detached": report.handoffs.detached,
            "resumed": report.handoffs.resumed,
            "cross_process": report.handoffs.cross_process,
            "cross_language": report.handoffs.cross_language,
            "pairs": report.handoffs.pairs,
            "latency_ms": {str(q): report.handoffs.latency_ms(q) for q in (0.5, 0.9, 1.0)},
        },
        "failures": report.failures(),
    }


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("logs", nargs="+", help="JSONL logs, or directories holding them")
    parser.add_argument("--counters", help="JSON object {lock id: counter value or null}")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--observer-slack", type=float, default=DEFAULT_OBSERVER_SLACK,
        help="seconds beyond 4 observer intervals after which a term must have been seen (default %(default)s)",
    )
    parser.add_argument(
        "--unlogged-term-limit", type=float, default=None,
        help="allow election terms no hold line names, each shown for at most this many seconds (default: none allowed "
        "beyond failed campaigns; the runner allows a lease plus its probe slack)",
    )
    args = parser.parse_args(argv)
    holds, events = load(args.logs)
    counters = None
    if args.counters:
        with open(args.counters, encoding="utf-8") as file:
            counters = json.load(file)
    report = check(holds, counters, events, observer_slack=args.observer_slack, unlogged_term_limit=args.unlogged_term_limit)
    print(json.dumps(report_json(report), indent=2) if args.json else format_report(report))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
