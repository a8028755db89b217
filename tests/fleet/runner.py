"""Runs a fleet of worker processes (any language, docs/fleet.md) against one lock table, shows
live progress, then checks the logs and the counters and prints the summary.

    python tests/fleet/runner.py --endpoint http://127.0.0.1:PORT --duration 25 \
        --workers py-sync:3,py-async:2,rust:3 --rust-worker target/.../fleet_worker

Worker kinds: py-sync and py-async (tests/fleet/worker.py), rust (--rust-worker PATH), node-new,
node-dropin and node-dlc (tests/fleet/worker.js; the Node addon must be built), and any
other via --worker-command KIND='COMMAND ARGS' (the protocol flags are appended). All workers go
into one process group, which is killed on Ctrl-C, on SIGTERM and when the run ends, so no worker
outlives the runner. Exit status: 0 when every check passed, 1 when one failed, 2 on a usage or
setup error, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, TextIO, Tuple

import dynalease

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import checker  # noqa: E402  (after the path tweak, so the runner works from any directory)

WORKER_PY = os.path.join(HERE, "worker.py")
WORKER_JS = os.path.join(HERE, "worker.js")  # node-new, node-dropin, node-dlc (needs the built Node addon)
NODE_KINDS = ("node-new", "node-dropin", "node-dlc")
#: The kinds that take the semaphore, election and hand-off flags (the dlc-style kinds only lock).
COORDINATION_KINDS = ("py-sync", "py-async", "rust", "node-new")


@dataclass
class FleetConfig:
    endpoint: str  # DynamoDB Local: tables are created and counters read here
    workers: Dict[str, int]  # client kind -> processes
    duration: float = 10.0
    locks: int = 4
    lease: float = 3.0
    heartbeat: Optional[float] = None
    hold_ms: float = 20.0
    #: Long holders: kind -> how many of its processes hold for up to `long_hold_ms` instead of
    #: `hold_ms` (longer than a heartbeat period, so heartbeats meet the faults too).
    long_holders: Dict[str, int] = field(default_factory=dict)
    long_hold_ms: float = 0.0
    #: Lock ids per client kind, instead of `locks` shared by all (a kind not named gets the
    #: shared ones). Counters and the stuck-lock probe cover every id named anywhere.
    locks_by_kind: Dict[str, List[str]] = field(default_factory=dict)
    async_tasks: int = 2
    worker_endpoint: Optional[str] = None  # where workers send requests (a fault proxy); default endpoint
    out_dir: Optional[str] = None
    rust_worker: Optional[str] = None
    extra_commands: Dict[str, List[str]] = field(default_factory=dict)
    announce: bool = False
    progress: Optional[TextIO] = None  # where to print the live progress line; None: quiet
    #: After the workers stopped: stop the faults and wait until nothing they held back can
    #: still land (FaultProxy.quiesce); False when something was still in flight at its timeout.
    quiesce: Optional[Callable[[], bool]] = None
    #: Probe every lock at the end (a fresh client must get it within a lease plus this slack).
    probe_locks: bool = True
    probe_slack: float = 3.0
    #: A semaphore (name, permits) that `semaphore_share` of the acquisitions take a permit of.
    semaphore: Optional[Tuple[str, int]] = None
    semaphore_share: float = 0.25
    #: An election: every coordinating worker runs a candidate and an observer loop.
    election: Optional[str] = None
    term_ms: Tuple[float, float] = (300.0, 2000.0)
    observe_ms: float = 50.0
    #: The checker's slack past 4 observer intervals for "every long term seen" (checker.check).
    observer_slack: float = checker.DEFAULT_OBSERVER_SLACK
    #: How long observers may see a term that no hold line names (checker.check): an acquisition
    #: whose caller gave up or got an error, or whose answer came after the lease it wrote had
    #: run out (lost answers, a loaded machine) holds the lock for nobody until it is taken back
    #: or taken over. None: a lease plus `probe_slack`.
    unlogged_term_limit: Optional[float] = None
    #: The share of plain-lock holds that end with a hand-off (detach, mailbox, resume elsewhere).
    handoff_share: float = 0.0
    #: The kinds given the three features above (a kind run with --worker-command must follow
    #: the protocol's flags to be listed).
    coordination_kinds: Sequence[str] = COORDINATION_KINDS

    @property
    def coordinates(self) -> bool:
        return self.semaphore is not None or self.election is not None or self.handoff_share > 0


@dataclass
class FleetRun:
    config: FleetConfig
    out_dir: str
    lock_table: str
    kv_table: str
    kv_partition: str
    lock_ids: List[str]
    processes: List[subprocess.Popen] = field(default_factory=list)
    kinds: List[str] = field(default_factory=list)
    pgid: Optional[int] = None
    deadline_ns: int = 0

    def log_path(self, index: int) -> str:
        return os.path.join(self.out_dir, f"worker-{index:02d}-{self.kinds[index]}.jsonl")


def parse_workers(spec: str) -> Dict[str, int]:
    workers: Dict[str, int] = {}
    for part in spec.split(","):
        if not part:
            continue
        kind, _, count = part.partition(":")
        workers[kind] = workers.get(kind, 0) + (int(count) if count else 1)
    return workers


def command_for(config: FleetConfig, kind: str) -> List[str]:
    if kind in config.extra_commands:
        return list(config.extra_commands[kind]) + ["--client", kind]
    if kind == "py-sync":
        return [sys.executable, WORKER_PY, "--client", "py-sync"]
    if kind == "py-async":
        return [sys.executable, WORKER_PY, "--client", "py-async", "--tasks", str(config.async_tasks)]
    if kind == "rust":
        if not config.rust_worker:
            raise SystemExit("runner: rust workers need --rust-worker PATH (cargo build -p dynalease --example fleet_worker)")
        return [config.rust_worker, "--client", "rust"]
    if kind in NODE_KINDS:
        return ["node", WORKER_JS, "--client", kind]
    raise SystemExit(f"runner: unknown worker kind {kind!r}; use --worker-command {kind}='COMMAND'")


def shared_lock_ids(config: FleetConfig) -> List[str]:
    return [f"lock-{i}" for i in range(1, config.locks + 1)]


def coordination_ids(config: FleetConfig) -> List[str]:
    """The lock ids of the semaphore's permits and of the election (counters, probes)."""
    ids: List[str] = []
    if config.semaphore is not None:
        name, permits = config.semaphore
        ids += [f"{name}#{k}" for k in range(permits)]
    if config.election is not None:
        ids.append(config.election)
    return ids


def observe_tail_ms(config: FleetConfig) -> float:
    """How long observers go on after the deadline: the checker's bound (4 intervals + slack) and
    a little more, so that terms ending near the deadline are checked too."""
    return 4 * config.observe_ms + config.observer_slack * 1000 + 300


def coordination_args(config: FleetConfig, kind: str) -> List[str]:
    if kind not in config.coordination_kinds:
        return []
    args: List[str] = []
    if config.semaphore is not None:
        name, permits = config.semaphore
        args += ["--semaphore", f"{name}:{permits}", "--semaphore-share", str(config.semaphore_share)]
    if config.election is not None:
        args += ["--election", config.election, "--term-ms", f"{config.term_ms[0]:g}:{config.term_ms[1]:g}",
                 "--observe-ms", f"{config.observe_ms:g}", "--observe-tail-ms", f"{observe_tail_ms(config):g}"]
    if config.handoff_share > 0:
        args += ["--handoff-share", str(config.handoff_share)]
    return args


def hold_ms_for(config: FleetConfig, kind: str, nth: int) -> float:
    """The hold time of the `nth` process (from 0) of `kind`."""
    return config.long_hold_ms if nth < config.long_holders.get(kind, 0) else config.hold_ms


def prepare(config: FleetConfig) -> FleetRun:
    run_id = uuid.uuid4().hex[:8]
    out_dir = config.out_dir or tempfile.mkdtemp(prefix="dynalease-fleet-")
    os.makedirs(out_dir, exist_ok=True)
    run = FleetRun(
        config=config,
        out_dir=out_dir,
        lock_table=f"fleet-locks-{run_id}",
        kv_table=f"fleet-kv-{run_id}",
        kv_partition=f"fleet-{run_id}",
        lock_ids=shared_lock_ids(config),
    )
    for ids in config.locks_by_kind.values():
        run.lock_ids += [lock_id for lock_id in ids if lock_id not in run.lock_ids]
    run.lock_ids += coordination_ids(config)
    dynalease.create_table(run.lock_table, partition_key="id", endpoint_url=config.endpoint)
    dynalease.create_table(run.kv_table, partition_key="pk", sort_key="sk", endpoint_url=config.endpoint)
    return run


def start(run: FleetRun) -> None:
    config = run.config
    commands = [(kind, command_for(config, kind)) for kind, count in config.workers.items() for _ in range(count)]
    # Every worker stops acquiring at the same instant, whenever it started.
    run.deadline_ns = time.monotonic_ns() + int(config.duration * 1e9)
    for index, (kind, command) in enumerate(commands):
        nth = run.kinds.count(kind)
        run.kinds.append(kind)
        args = [
            "--endpoint", config.worker_endpoint or config.endpoint,
            "--lock-table", run.lock_table,
            "--kv-table", run.kv_table,
            "--kv-partition", run.kv_partition,
            "--locks", ",".join(config.locks_by_kind.get(kind) or shared_lock_ids(config)),
            "--deadline-ns", str(run.deadline_ns),
            "--lease", str(config.lease),
            "--hold-ms", str(hold_ms_for(config, kind, nth)),
            "--log", run.log_path(index),
            "--seed", str(index),
        ]
        if config.heartbeat is not None:
            args += ["--heartbeat", str(config.heartbeat)]
        if config.announce:
            args.append("--announce")
        args += coordination_args(config, kind)
        stderr = open(os.path.join(run.out_dir, f"worker-{index:02d}-{kind}.stderr"), "w")
        # One process group for the whole fleet (the first worker leads it): one killpg ends
        # every worker, and Ctrl-C in the terminal reaches the runner only, which then does it.
        process = subprocess.Popen(
            command + args,
            stdin=subprocess.DEVNULL,
            stdout=stderr,
            stderr=stderr,
            process_group=0 if run.pgid is None else run.pgid,
        )
        stderr.close()
        if run.pgid is None:
            run.pgid = process.pid
            with open(os.path.join(run.out_dir, "workers.pgid"), "w") as file:
                file.write(f"{process.pid}\n")
        run.processes.append(process)


def stop(run: FleetRun) -> None:
    """Ends every worker still running: SIGTERM, then SIGKILL after a grace period."""
    if run.pgid is None:
        return
    try:
        os.killpg(run.pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and any(p.poll() is None for p in run.processes):
        time.sleep(0.05)
    try:
        os.killpg(run.pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    for process in run.processes:
        process.wait()


class Progress:
    """Counts hold lines per client kind by tailing the logs."""

    def __init__(self, run: FleetRun) -> None:
        self.run = run
        self.offsets: Dict[int, int] = {}
        self.counts: Dict[str, int] = {kind: 0 for kind in run.config.workers}

    def update(self) -> Dict[str, int]:
        for index, kind in enumerate(self.run.kinds):
            try:
                with open(self.run.log_path(index), "rb") as file:
                    file.seek(self.offsets.get(index, 0))
                    data = file.read()
            except FileNotFoundError:
                continue
            complete = data[: data.rfind(b"\n") + 1]  # leave a half-written line for next time
            self.offsets[index] = self.offsets.get(index, 0) + len(complete)
            self.counts[kind] += sum(1 for line in complete.split(b"\n") if line and b'"event"' not in line)
        return self.counts

    def line(self, elapsed: float) -> str:
        counts = self.update()
        parts = "  ".join(f"{kind} {count}" for kind, count in counts.items())
        return f"[{elapsed:5.1f}s] acquisitions: {parts}  total {sum(counts.values())}"


def wait(run: FleetRun, on_tick: Optional[Callable[[float], None]] = None) -> List[str]:
    """Waits for the workers to finish; returns problems (crashed or hung workers)."""
    config = run.config
    started = time.monotonic()
    progress = Progress(run)
    # A worker that is mid-acquire at the deadline may wait up to its acquire timeout (3 leases).
    hard_deadline = started + config.duration + config.lease * 4 + 30
    last_print = 0.0
    tty = config.progress is not None and config.progress.isatty()
    while any(p.poll() is None for p in run.processes):
        now = time.monotonic()
        if on_tick is not None:
            on_tick(now - started)
        if config.progress is not None and (tty or now - last_print >= 5):
            text = progress.line(now - started)
            config.progress.write(("\r" + text) if tty else (text + "\n"))
            config.progress.flush()
            last_print = now
        if now > hard_deadline:
            break
        time.sleep(0.25)
    if config.progress is not None:
        text = progress.line(time.monotonic() - started)
        config.progress.write(("\r" + text + "\n") if tty else (text + "\n"))
    problems = []
    for index, process in enumerate(run.processes):
        if process.poll() is None:
            problems.append(f"worker {index} ({run.kinds[index]}, pid {process.pid}) still running after the deadline: killed")
        elif process.returncode != 0:
            stderr = os.path.join(run.out_dir, f"worker-{index:02d}-{run.kinds[index]}.stderr")
            problems.append(f"worker {index} ({run.kinds[index]}, pid {process.pid}) exited with {process.returncode}; see {stderr}")
    return problems


def read_counters(run: FleetRun) -> Dict[str, Optional[int]]:
    kv = dynalease.KVStore(run.kv_table, partition=run.kv_partition, endpoint_url=run.config.endpoint)
    counters: Dict[str, Optional[int]] = {}
    for lock_id in run.lock_ids:
        pair = kv.get(f"counter/{lock_id}")
        counters[lock_id] = None if pair is None else int(pair.value)
    return counters


def probe_locks(run: FleetRun) -> Dict[str, checker.LockProbe]:
    """Tries every lock with a fresh client, straight at DynamoDB, all at once. A fail-open lock
    whose holders are gone is free, or free within one lease of their last write; the fresh
    client waits out whatever lease it finds, so one lease (plus slack for polling and a loaded
    machine) bounds a lock that is not stuck."""
    config = run.config
    bound = config.lease + config.probe_slack
    client = dynalease.LockClient(run.lock_table, lease_duration=config.lease, endpoint_url=config.endpoint)
    probes: Dict[str, checker.LockProbe] = {}

    def probe(lock_id: str) -> None:
        started = time.monotonic()
        try:
            # A little past the bound, so that "stuck" is told apart from "just made it".
            lock = client.acquire(lock_id, timeout=bound + 2.0)
        except dynalease.LockNotAcquiredError:
            probes[lock_id] = checker.LockProbe("stuck", time.monotonic() - started, bound)
            return
        waited = time.monotonic() - started
        probes[lock_id] = checker.LockProbe("free" if waited < 0.5 else "waited", waited, bound, lock.fencing_token)
        lock.release()

    threads = [threading.Thread(target=probe, args=(lock_id,), daemon=True) for lock_id in run.lock_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(bound + 30)
    for lock_id in run.lock_ids:
        probes.setdefault(lock_id, checker.LockProbe("stuck", bound + 30, bound))
    return probes


@dataclass
class FleetResult:
    run: FleetRun
    report: checker.Report
    problems: List[str]

    @property
    def ok(self) -> bool:
        return self.report.ok and not self.problems


def run_fleet(config: FleetConfig, on_tick: Optional[Callable[[float], None]] = None) -> FleetResult:
    """Creates the tables, runs the fleet to its end, and checks it."""
    run = prepare(config)
    try:
        start(run)
        problems = wait(run, on_tick)
    finally:
        stop(run)
    # Late writes may still be on their way: the counters and the locks are read once nothing
    # held back can change them any more.
    if config.quiesce is not None and not config.quiesce():
        problems.append("the fault proxy still held requests at its quiesce timeout")
    counters = read_counters(run)
    with open(os.path.join(run.out_dir, "counters.json"), "w") as file:
        json.dump(counters, file, indent=2)
    probes = probe_locks(run) if config.probe_locks else None
    holds, events = checker.load([run.out_dir])
    unlogged_term_limit = config.unlogged_term_limit if config.unlogged_term_limit is not None else config.lease + config.probe_slack
    report = checker.check(holds, counters, events, probes, observer_slack=config.observer_slack, unlogged_term_limit=unlogged_term_limit)
    with open(os.path.join(run.out_dir, "report.json"), "w") as file:
        json.dump(checker.report_json(report), file, indent=2)
    return FleetResult(run, report, problems)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint", required=True, help="DynamoDB Local")
    parser.add_argument("--worker-endpoint", help="where workers connect (e.g. a fault proxy); default --endpoint")
    parser.add_argument("--workers", default="py-sync:3,py-async:2", help="KIND:COUNT,... (default %(default)s)")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--locks", type=int, default=4, help="number of lock ids")
    parser.add_argument("--lease", type=float, default=3.0)
    parser.add_argument("--heartbeat", type=float, default=None)
    parser.add_argument("--hold-ms", type=float, default=20.0)
    parser.add_argument("--long-holders", default="", help="KIND:COUNT,...: processes that hold up to --long-hold-ms")
    parser.add_argument("--long-hold-ms", type=float, default=0.0)
    parser.add_argument("--async-tasks", type=int, default=2)
    parser.add_argument("--out", help="directory for logs and the report (default: a new temp dir)")
    parser.add_argument("--rust-worker", help="path of the built fleet_worker example")
    parser.add_argument("--worker-command", action="append", default=[], metavar="KIND=COMMAND")
    parser.add_argument("--semaphore", help="NAME:N: a semaphore with N permits that a share of the acquisitions use")
    parser.add_argument("--semaphore-share", type=float, default=0.25)
    parser.add_argument("--election", help="NAME: an election every coordinating worker campaigns in and observes")
    parser.add_argument("--term-ms", default="300:2000", help="MIN:MAX: how long a leader keeps its term (default %(default)s)")
    parser.add_argument("--observe-ms", type=float, default=50.0, help="the observers' watch interval (default %(default)s)")
    parser.add_argument("--observer-slack", type=float, default=checker.DEFAULT_OBSERVER_SLACK,
                        help="seconds past 4 observer intervals after which a term must have been seen (default %(default)s)")
    parser.add_argument("--handoff-share", type=float, default=0.0, help="share of plain-lock holds handed off (default 0)")
    parser.add_argument("--coordination-kinds", default=",".join(COORDINATION_KINDS),
                        help="kinds that take the semaphore, election and hand-off flags (default %(default)s)")
    args = parser.parse_args(argv)

    extra = {}
    for item in args.worker_command:
        kind, _, command = item.partition("=")
        extra[kind] = shlex.split(command)
    semaphore: Optional[Tuple[str, int]] = None
    if args.semaphore:
        name, _, permits = args.semaphore.rpartition(":")
        if not name or not permits.isdigit():
            parser.error("--semaphore: NAME:N")
        semaphore = (name, int(permits))
    low, _, high = args.term_ms.partition(":")
    config = FleetConfig(
        endpoint=args.endpoint,
        worker_endpoint=args.worker_endpoint,
        workers=parse_workers(args.workers),
        duration=args.duration,
        locks=args.locks,
        lease=args.lease,
        heartbeat=args.heartbeat,
        hold_ms=args.hold_ms,
        long_holders=parse_workers(args.long_holders),
        long_hold_ms=args.long_hold_ms,
        async_tasks=args.async_tasks,
        out_dir=args.out,
        rust_worker=args.rust_worker,
        extra_commands=extra,
        progress=sys.stdout,
        semaphore=semaphore,
        semaphore_share=args.semaphore_share,
        election=args.election,
        term_ms=(float(low), float(high or low)),
        observe_ms=args.observe_ms,
        observer_slack=args.observer_slack,
        handoff_share=args.handoff_share,
        coordination_kinds=[kind for kind in args.coordination_kinds.split(",") if kind],
    )
    processes = sum(config.workers.values())
    print(
        f"fleet: {processes} processes ({', '.join(f'{k} x{v}' for k, v in config.workers.items())}) "
        f"competing for {config.locks} locks for {config.duration:g} s, lease {config.lease:g} s"
    )
    if config.coordinates:
        kinds = [kind for kind in config.workers if kind in config.coordination_kinds]
        features = []
        if config.semaphore is not None:
            features.append(f"semaphore {config.semaphore[0]} ({config.semaphore[1]} permits, {config.semaphore_share:g} of acquisitions)")
        if config.election is not None:
            features.append(f"election {config.election} (terms {config.term_ms[0]:g}-{config.term_ms[1]:g} ms, observers every {config.observe_ms:g} ms)")
        if config.handoff_share > 0:
            features.append(f"hand-offs ({config.handoff_share:g} of lock holds)")
        print(f"  {', '.join(kinds) or 'no kind'} also share: {'; '.join(features)}")

    # SIGTERM (e.g. from the demo script's trap) ends the run like Ctrl-C: workers are killed.
    def terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    try:
        result = run_fleet(config)
    except KeyboardInterrupt:
        print("\nfleet: interrupted; workers stopped", file=sys.stderr)
        return 130
    print()
    print(checker.format_report(result.report))
    for problem in result.problems:
        print(f"FAIL {problem}")
    print(f"logs and report: {result.run.out_dir}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
