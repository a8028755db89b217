"""Writes docs/benchmarks.md from the JSON results of one benchmark run:

    python report.py python.json sizes.json node.json > docs/benchmarks.md

Every figure is one table: a row per client (Python rows, then Node rows), its measurements, how
each dynalease client compares with its same-language peer(s), and the goal's verdict where the
figure has a goal.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import sys

PDL = "python_dynamodb_lock"
DLC2 = "dynamodb-lock-client (SDK v2)"
DLC3 = "dynamodb-lock-client (SDK v3)"
DROPIN2 = "dynalease drop-in (SDK v2)"
DROPIN3 = "dynalease drop-in (SDK v3)"
PROMISE = "dynalease Promise API"
# Each dynalease client and the peers it is compared with (the same language; the drop-in with
# dlc over the same SDK client object; the Promise API, which needs no SDK, with both).
PEERS = {
    "dynalease": [PDL],
    "dynalease sync": [PDL],
    "dynalease asyncio": [PDL],
    DROPIN2: [DLC2],
    DROPIN3: [DLC3],
    PROMISE: [DLC2, DLC3],
}
SHORT = {PDL: "pdl", DLC2: "dlc v2", DLC3: "dlc v3"}
LABEL = {"dynalease": "dynalease (sync)"}

REQUESTS_GOAL = 2.0
HANDOVER_GOAL_MS = 50.0
CPU_GOAL = 0.5
# The drop-in against dlc over the same SDK client (issue 12, part 1).
DROPIN_CPU_GOAL = 1.0
DROPIN_RSS_GOAL = 1.05
DROPIN_COLD_GOAL = 1.0
# Waiting (issue 12, part 2): one read a second at most once a wait is long.
READS_PER_MINUTE_GOAL = 60.0
DROPINS = (DROPIN2, DROPIN3)
DLC_OF = {DROPIN2: DLC2, DROPIN3: DLC3}

# On-demand prices (Standard table class) in one region, with where and when they were read.
PRICE = {
    "region": "US East (N. Virginia), us-east-1",
    "write_per_million": 0.625,
    "read_per_million": 0.125,
    "source": "https://aws.amazon.com/dynamodb/pricing/on-demand/",
    "looked_up": "2026-12-02",
    "since": "2024-11-01",
}
FAILED_WRITE_SOURCE = "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html"
READS = ("GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems")
WRITES = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def verdict(met: bool) -> str:
    return "met" if met else "**missed**"


def ratios(value_of, client: str) -> str:
    """'0.25x pdl' (or several, one per peer) for a dynalease client; '' for a peer."""
    parts = []
    for peer in PEERS.get(client, []):
        ours, theirs = value_of(client), value_of(peer)
        if ours is None or theirs is None:
            continue
        if not theirs:
            parts.append(f"n/a {SHORT[peer]}")
            continue
        r = ours / theirs
        parts.append(f"{r:.2f}x {SHORT[peer]}" if r >= 0.1 else f"{r:.3f}x {SHORT[peer]}")
    return ", ".join(parts)


class Doc:
    def __init__(self) -> None:
        self.lines: list[str] = []
        # (kind, text): "protocol" (the drop-in keeps dlc's requests), "dropin-cost" (the drop-in
        # against dlc), "waiting" (dynalease's waiters) or "other".
        self.misses: list[tuple[str, str]] = []

    def add(self, text: str = "") -> None:
        self.lines.append(text)

    def miss(self, kind: str, text: str) -> None:
        self.misses.append((kind, text))

    def table(self, header: list[str], rows: list[list[str]]) -> None:
        self.add("| " + " | ".join(header) + " |")
        self.add("|" + "---|" * len(header))
        for row in rows:
            self.add("| " + " | ".join(row) + " |")
        self.add()


def languages(py: dict, node: dict, figure: str):
    """(language, client, result) for every client of one figure, Python first."""
    for language, results in (("Python", py), ("Node", node)):
        for client, result in results.get(figure, {}).items():
            if isinstance(result, dict) or isinstance(result, (int, float)):
                if client in ("count", "hold_seconds"):
                    continue
                yield language, client, result


def render(py: dict, py_sizes: dict, node: dict) -> str:
    doc = Doc()
    add = doc.add
    py_version = py.get("python_version", platform.python_version())
    node_version = node.get("node_version", "?")
    add("# Benchmarks\n")
    ops = min(r["1"]["n"] for results in (py, node) for r in results["cycles"].values())
    many = min(results["many_locks"]["count"] for results in (py, node))
    hold = min(results["many_locks"]["hold_seconds"] for results in (py, node))
    if ops < 200 or many < 1000 or hold < 60:
        add(f"**A quick run** ({ops} cycles per client, {many} locks held for {hold:.0f} s, fewer handovers, also after "
            "the 1 s and 20 s waits), "
            "not the full-length `make bench`: figures are indicative only.\n")
    add(f"One run of `bench/run` (`make bench`) on {datetime.date.today().isoformat()}: {os.cpu_count()} cores, {cpu_model()}, "
        f"Python {py_version}, Node {node_version}, DynamoDB Local (in memory) on the same machine. Every client used a "
        "10 s lease and a heartbeat every 3.3 s.\n")
    add("Peers, each on the same DynamoDB Local in the same run:\n")
    add("- Python: `python_dynamodb_lock` 0.9.1 with boto3 1.44.5 (**pdl**), against dynalease's sync and asyncio clients "
        "(the wheel `make wheel` builds, in the cargo profile `dist`).")
    add("- Node: `dynamodb-lock-client` 0.7.3 over an AWS SDK v2 `DocumentClient` (aws-sdk 2.1693.0, kept-alive "
        "connections; **dlc v2**) and over an SDK v3 `DynamoDBDocument` (@aws-sdk 3.1162.0; **dlc v3**), against "
        "dynalease's drop-in `FailOpen` given the very same client objects, and dynalease's Promise API "
        "(`new LockClient({...})`, native transport). dynalease is installed from the npm tarballs as published "
        "(main package + linux-x64-gnu platform package with the addon built in the cargo profile `dist`: fat LTO, "
        "one codegen unit).\n")
    add("Ratios are dynalease / peer (lower is better except for cycles/s). Figures from a shared 2-core machine are "
        "noisy; ratios between clients of the same run are what to compare.\n")

    # 1 ------------------------------------------------------------------------------------
    req_py, req_node = py["requests_per_cycle"], node["requests_per_cycle"]
    add("## 1. DynamoDB requests per uncontended acquire + release\n")
    add(f"Counted by `bench/counting_proxy.py` between client and DynamoDB Local (Node drives the same proxy "
        f"through its stdin), averaged over every cycle. Physical limit: 2 (one write to take the lock, one to "
        f"release it). Goal: {REQUESTS_GOAL:.0f}.\n")
    rows = []
    for language, client, value in languages(py, node, "requests_per_cycle"):
        src = req_py if language == "Python" else req_node
        goal = ""
        if client in PEERS:
            goal = verdict(value <= REQUESTS_GOAL)
            if value > REQUESTS_GOAL:
                doc.miss("protocol" if client in DROPINS else "other", f"requests per cycle, {language} {LABEL.get(client, client)}: {value:.2f}")
        rows.append([language, LABEL.get(client, client), f"{value:.2f}", ratios(lambda c: src.get(c), client), goal])
    doc.table(["language", "client", "requests", "vs peer", f"goal ({REQUESTS_GOAL:.0f})"], rows)
    if any(req_node.get(c, 0) > REQUESTS_GOAL for c in (DROPIN2, DROPIN3)):
        add("The drop-in misses this goal by design: it promises dlc's DynamoDB requests byte for byte (a "
            "consistent read of the lock item, a conditional put to take it, a put with a 1 ms lease to release "
            "it), so dlc clients and drop-in clients can share a table. The extra read is what that wire "
            "protocol costs; the Promise API, which writes the same item format, takes the lock with one "
            "conditional write.\n")

    # 2 ------------------------------------------------------------------------------------
    add("## 2. Uncontended acquire + release: latency and throughput\n")
    node_runs = node["cycles"].get(PROMISE, {}).get("1", {}).get("runs", 1)
    add("Each lock id has one loop doing acquire + release back to back (threads in Python sync, tasks in "
        "asyncio and Node); with 16 ids, 16 loops share one client. Latency is per cycle."
        + (f" Each Node client ran in {node_runs} fresh processes, the clients taking turns; every Node figure here "
           "and in figure 4 is the median of its runs." if node_runs > 1 else "") + "\n")
    rows = []
    for ids in ("1", "16"):
        for language, client, runs in languages(py, node, "cycles"):
            src = py["cycles"] if language == "Python" else node["cycles"]
            r = runs[ids]
            rows.append([language, LABEL.get(client, client), ids, str(r["n"]), f"{r['median_ms']:.1f}", f"{r['p99_ms']:.1f}",
                         f"{r['cycles_per_s']:.0f}", ratios(lambda c: src[c][ids]["cycles_per_s"] if c in src else None, client),
                         ratios(lambda c: src[c][ids]["median_ms"] if c in src else None, client)])
    doc.table(["language", "client", "lock ids", "cycles", "median ms", "p99 ms", "cycles/s", "cycles/s vs peer", "median vs peer"], rows)

    # 3 ------------------------------------------------------------------------------------
    add("## 3. Handover with a 10 s lease (holder releases, waiter in another process holds)\n")
    add(f"A persistent waiter process gets one lock id per round; the holder (the benchmark process) holds "
        f"that id, lets the waiter find it held (200 ms, plus 0 to 50 ms at random, so that releases fall at every phase of a polling waiter's 50 ms reads), then releases. The handover runs from just before the "
        f"release to the waiter holding, both read from the machine's monotonic clock. Goal: median <= "
        f"{HANDOVER_GOAL_MS:.0f} ms.\n")
    rows = []
    for language, client, r in languages(py, node, "handover"):
        src = py["handover"] if language == "Python" else node["handover"]
        goal = ""
        if client in PEERS:
            goal = verdict(r["median_ms"] <= HANDOVER_GOAL_MS)
            if r["median_ms"] > HANDOVER_GOAL_MS:
                doc.miss("protocol" if client in DROPINS else "other", f"handover, {language} {LABEL.get(client, client)}: median {r['median_ms']:.0f} ms")
        rows.append([language, LABEL.get(client, client), str(r["n"]), f"{r['median_ms']:.0f}", f"{r['p99_ms']:.0f}",
                     ratios(lambda c: src[c]["median_ms"] if c in src else None, client), goal])
    doc.table(["language", "client", "handovers", "median ms", "p99 ms", "median vs peer", f"goal (<= {HANDOVER_GOAL_MS:.0f} ms)"], rows)
    add(f"Rounds: dynalease's polling waiters ran {py['handover'].get('dynalease', {}).get('n', '?')} (Python) and "
        f"{node['handover'].get(PROMISE, {}).get('n', '?')} (Node) handovers. Waiters that sleep out a whole "
        f"period per round ran fewer ({py.get('peer_handover_rounds', '?')} Python, "
        f"{node.get('peer_handover_rounds', '?')} Node, the Node ones side by side on separate ids and "
        "processes): pdl's waiter retries once per retry period (its heartbeat period, 3.3 s); dlc's waiter reads "
        "the held item, sleeps the holder's whole lease (10 s), then takes over with a put conditioned on the "
        "item it read. The drop-in keeps that protocol, so its handover is dlc's and misses the goal. It could "
        "poll instead (a waiter that sees the release may take the lock at once, safely); but a drop-in promises "
        "dlc's requests, and a waiter reading every 50 ms for a whole lease would multiply the read capacity "
        "that teams switching from dlc have provisioned. dynalease's own waiters read every 50 ms for the first 2 s "
        "of a wait (this figure's waits are 200 ms), then back off to at most 1.5 s (figure 8); a release in the "
        "same process wakes its waiters at once, which this figure does not use.\n")

    # 4 ------------------------------------------------------------------------------------
    add("## 4. Client CPU per acquire + release (process CPU / cycles, one lock id)\n")
    add(f"Process CPU time (user + system, every thread: Python's `time.process_time`, Node's `process.cpuUsage`) "
        f"over the one-id run of figure 2, divided by its cycles. Goals: the drop-in <= {DROPIN_CPU_GOAL}x dlc over the "
        f"same SDK; the other dynalease clients <= {CPU_GOAL}x the same-language peer (the Promise API against the "
        "cheaper of dlc v2 and v3).\n")
    rows = []
    dropin_cpu_missed = []
    for language, client, runs in languages(py, node, "cycles"):
        src = py["cycles"] if language == "Python" else node["cycles"]
        cpu = runs["1"]["cpu_ms_per_cycle"]
        goal = ""
        if client in PEERS:
            best_peer = min(src[p]["1"]["cpu_ms_per_cycle"] for p in PEERS[client] if p in src)
            limit = DROPIN_CPU_GOAL if client in DROPINS else CPU_GOAL
            met = cpu <= limit * best_peer
            goal = f"{verdict(met)} (<= {limit}x)"
            if not met:
                kind = "dropin-cost" if client in DROPINS else "other"
                doc.miss(kind, f"CPU per cycle, {language} {LABEL.get(client, client)}: {cpu / best_peer:.2f}x the peer (goal <= {limit}x)")
                if client in DROPINS:
                    dropin_cpu_missed.append(client)
        rows.append([language, LABEL.get(client, client), f"{cpu:.3f}", ratios(lambda c: src[c]["1"]["cpu_ms_per_cycle"] if c in src else None, client), goal])
    doc.table(["language", "client", "CPU ms per cycle", "vs peer", "goal"], rows)
    placeholder = ("CPU profiles of the cycle and of `require` (issue 12) showed where the drop-in's extra time went: "
                   "each step of the lock machine crossed napi as JSON text, encoded and parsed on both sides, and "
                   "`require` loaded joi's schemas, the Promise API and a diagnostic report (to tell glibc from musl) "
                   "that the drop-in does not need. Steps now cross as JS objects to one native object per lock, and "
                   "`require` loads only the drop-in.")
    if dropin_cpu_missed:
        add("The drop-in's requests are built, signed, sent and parsed by the caller's own SDK client, as dlc's are, so "
            "the SDK's work per cycle is the same for both; what differs is the code around the SDK calls: dlc's few "
            "lines of JS, against the drop-in's lock machine in the native core, which each step reaches across the "
            f"JS-Rust boundary. {placeholder} The Promise API, which does everything natively, is the one to use "
            "where CPU matters.\n")
    else:
        add(f"The drop-in's CPU per cycle is within its goal against dlc. {placeholder}\n")

    add("### Metrics on the hot path\n")
    add("Every client counts what it does (issue 14), always: every dynalease row above was counted. This table "
        "measures, in one process, one lock id, runs of plain cycles taking turns with runs that also read a whole "
        "`stats()` snapshot after every cycle (3 of each; the medians), far more often than an exporter reads one "
        "(OpenTelemetry's periodic reader: every 60 s by default).\n")
    rows = []
    for language, results in (("Python", py), ("Node", node)):
        for client, r in results.get("stats_read", {}).items():
            rows.append([language, LABEL.get(client, client), f"{r['plain']:.3f}", f"{r['reading']:.3f}", f"{r['reading'] / r['plain']:.2f}x"])
    if rows:
        doc.table(["language", "client", "CPU ms per cycle (counting)", "counting + stats() every cycle", "ratio"], rows)
        worst = max(float(row[-1].rstrip("x")) for row in rows)
        add(f"The counters are a handful of relaxed atomic adds per cycle; a snapshot is one read of each. Reading one "
            f"after every cycle changed CPU per cycle by at most {(worst - 1) * 100:+.0f}% in this run.\n")

    # 5 ------------------------------------------------------------------------------------
    add("## 5. Cold start in a fresh process (median of the runs, ms)\n")
    add("import / require of the client and the SDK it needs, client construction, and the first acquire + "
        "release (which opens the connection). Node's \"process\" column is the whole child process as the "
        f"parent saw it: node's own start-up, the phases, and exit. Goal: the drop-in's total <= {DROPIN_COLD_GOAL}x "
        "dlc's over the same SDK.\n")
    rows = []
    cold_missed = []
    for language, client, phases in languages(py, node, "cold_start"):
        src = py["cold_start"] if language == "Python" else node["cold_start"]
        total = lambda c: (src[c]["import"] + src[c]["client"] + src[c]["first_acquire_release"]) if c in src else None  # noqa: E731
        process = f"{phases['process']:.0f}" if "process" in phases else ""
        goal = ""
        if client in DROPINS and DLC_OF[client] in src:
            ratio = total(client) / total(DLC_OF[client])
            goal = f"{verdict(ratio <= DROPIN_COLD_GOAL)} (<= {DROPIN_COLD_GOAL}x)"
            if ratio > DROPIN_COLD_GOAL:
                doc.miss("dropin-cost", f"cold start, Node {client}: {ratio:.2f}x dlc (goal <= {DROPIN_COLD_GOAL}x)")
                cold_missed.append(client)
        rows.append([language, LABEL.get(client, client), f"{phases['import']:.1f}", f"{phases['client']:.1f}",
                     f"{phases['first_acquire_release']:.1f}", f"{total(client):.1f}", process, ratios(total, client), goal])
    doc.table(["language", "client", "import", "construction", "first acquire + release", "total", "process", "total vs peer", "goal"], rows)
    if cold_missed:
        cold = node["cold_start"]
        parts = []
        for client in cold_missed:
            peer = DLC_OF[client]
            diffs = {phase: cold[client][phase] - cold[peer][phase] for phase in ("import", "client", "first_acquire_release")}
            parts.append(f"over {SHORT[peer]}, {diffs['import']:+.0f} ms in require, {diffs['client']:+.0f} ms in "
                         f"construction and {diffs['first_acquire_release']:+.0f} ms in the first cycle")
        add("Where the drop-in's extra start-up time is, phase by phase: " + "; ".join(parts) + ". The drop-in's "
            "require loads dynalease's JS and its native addon on top of the SDK that both load (see the note under "
            "figure 4 for what the profile of `require` showed).\n")

    # 6 ------------------------------------------------------------------------------------
    count = node.get("many_locks", {}).get("count", py["many_locks"]["count"])
    hold = node.get("many_locks", {}).get("hold_seconds", py["many_locks"]["hold_seconds"])
    add(f"## 6. One process holding {count} heartbeating locks for {hold:.0f} s\n")
    add("Each client in a fresh process that loaded only that client (and its SDK). RSS at the end of the hold "
        "(in brackets: after loading, before the first lock); CPU over the hold; locks lost (a failed "
        f"heartbeat or a lost lease) during it. Goal: the drop-in's RSS <= {DROPIN_RSS_GOAL}x dlc's over the same SDK. "
        "Clients that ran more than once (Node's drop-ins and dlc, interleaved, so that drift in the machine falls on "
        "both sides of the verdict) show the median and, in the runs column, the range of RSS; lost is the worst run.\n")
    if py["many_locks"]["count"] != node.get("many_locks", {}).get("count", count):
        add(f"(Python held {py['many_locks']['count']} locks for {py['many_locks']['hold_seconds']:.0f} s.)\n")
    rows = []
    rss_missed = []
    for language, client, m in languages(py, node, "many_locks"):
        src = py["many_locks"] if language == "Python" else node["many_locks"]
        goal = ""
        if client in DROPINS and DLC_OF[client] in src:
            ratio = m["rss_mb"] / src[DLC_OF[client]]["rss_mb"]
            goal = f"{verdict(ratio <= DROPIN_RSS_GOAL)} ({ratio:.3f}x; <= {DROPIN_RSS_GOAL}x)"
            if ratio > DROPIN_RSS_GOAL:
                doc.miss("dropin-cost", f"RSS holding {count} locks, Node {client}: {ratio:.3f}x dlc (goal <= {DROPIN_RSS_GOAL}x)")
                rss_missed.append(client)
        runs = str(m.get("runs", 1))
        if m.get("runs", 1) > 1:
            runs += f" ({m['rss_mb_range'][0]:.0f}-{m['rss_mb_range'][1]:.0f})"
        rows.append([language, LABEL.get(client, client), runs, f"{m['rss_mb']:.0f} ({m['rss_before_mb']:.0f})", f"{m['cpu_percent']:.1f}", str(m["lost"]),
                     ratios(lambda c: src[c]["rss_mb"] if c in src else None, client),
                     ratios(lambda c: src[c]["cpu_percent"] if c in src else None, client), goal])
    doc.table(["language", "client", "runs (RSS range)", "RSS MB (after load)", "CPU %", "lost", "RSS vs peer", "CPU vs peer", "goal"], rows)
    if rss_missed:
        many_node = node["many_locks"]
        parts = []
        for client in rss_missed:
            peer = DLC_OF[client]
            loaded = many_node[client]["rss_before_mb"] - many_node[peer]["rss_before_mb"]
            held = (many_node[client]["rss_mb"] - many_node[client]["rss_before_mb"]) - (many_node[peer]["rss_mb"] - many_node[peer]["rss_before_mb"])
            parts.append(f"over {SHORT[peer]}, {loaded:+.0f} MB once loaded (before the first lock) and {held:+.0f} MB "
                         f"for the {count} locks")
        add("Where the drop-in's extra memory is: " + "; ".join(parts) + ". Once loaded, the difference is the "
            "native addon's own pages (its code, mapped from the file and shared, and its small writable data), "
            "against dlc's few kB of JS; while holding, each lock's state in the native lock machine, beside the JS "
            "object dlc keeps too. A drop-in-only addon (the lock machine without the native transport and its AWS "
            "SDK) was prototyped in issue 12: it measured 1.04x dlc v2 in one run, inside this figure's run-to-run "
            "spread, and would have doubled the native binaries to build and publish for every platform, so it was "
            "not shipped. The Promise API, which needs no JS SDK at all, is the one to use where memory matters.\n")

    # 7 ------------------------------------------------------------------------------------
    add("## 7. Package sizes\n")
    add("What a user downloads or installs: dynalease's packages are self-contained (the native core includes "
        "its AWS SDK); the peers' sizes include the SDK they need, installed (each package with everything it "
        "depends on, counted once).\n")
    rows = []
    for name, size in py_sizes.items():
        rows.append(["Python", name, f"{size / 1e6:.1f} MB"])
    node_sizes = node.get("sizes", {})
    for name, size in node_sizes.items():
        rows.append(["Node", name, f"{size / 1e6:.1f} MB"])
    doc.table(["language", "package", "size"], rows)
    addon = next((v for k, v in node_sizes.items() if k.startswith("dynalease native addon")), None)
    if addon:
        add(f"The addon, {addon / 1e6:.1f} MB here, is built in the cargo profile `dist`. Before issue 12 it was built in "
            "`release` (thin LTO, 4 codegen units): 15.5 MB, against 11.0 MB in `dist` (fat LTO, one codegen unit), "
            "both measured on 2026-12-01, before the command line (clap) joined the addon for `npx dynalease`.\n")
    installed = next((v for k, v in node_sizes.items() if k.startswith("dynalease installed")), None)
    peers = [(k, v) for k, v in node_sizes.items() if k.startswith("dynamodb-lock-client")]
    if installed and peers:
        add("Node, installed dynalease / installed peer: " + ", ".join(f"{installed / v:.2f}x {k.split(' installed')[0]}" for k, v in peers) + ".\n")

    waiting_section(doc, py, node)
    capacity_section(doc, py, node)
    cost_section(doc, py, node)

    # Verdicts -------------------------------------------------------------------------------
    add("## Goals\n")
    add("Verdict rows: requests per cycle (figure 1), handover (figure 3), CPU per cycle (figure 4), the drop-in's "
        "cold start and memory against dlc (figures 5 and 6), and waiting (figure 8: reads per minute of a long "
        "wait, handover after a 1 s wait).\n")
    if doc.misses:
        add("Missed in this run:\n")
        for _, miss in doc.misses:
            add(f"- {miss}")
        add("")
        kinds = {kind for kind, _ in doc.misses}
        if "protocol" in kinds:
            add("The drop-in's misses of requests per cycle and of handover follow from its contract (dlc's requests "
                "and protocol, unchanged, so dlc and drop-in clients can share a table); the notes under figures 1 "
                "and 3 say what limits each.\n")
        if "dropin-cost" in kinds:
            missed = [name for prefix, name in (("CPU", "CPU"), ("RSS", "memory"), ("cold", "cold-start"))
                      if any(kind == "dropin-cost" and text.startswith(prefix) for kind, text in doc.misses)]
            names = " and ".join([", ".join(missed[:-1]), missed[-1]] if len(missed) > 1 else missed)
            add(f"The drop-in's {names} misses have no such limit: it makes dlc's requests through the same SDK "
                "client, so the SDK's share is the same for both. The notes under figures 4 to 6 say where the "
                "difference is. Most of the memory difference is not the locks' state: RSS counts the pages of the "
                "native addon that the process touched (file-backed, shared by every process that loads the addon), "
                "and the one addon also carries the Promise API's AWS SDK, TLS stack and async runtime, which the "
                "drop-in does not use (napi starts the runtime's threads at require all the same).\n")
        if "waiting" in kinds:
            add("The waiting misses are dynalease's own: the note under figure 8 gives the waiter's read rate early "
                "in the wait and later on.\n")
        if "other" in kinds:
            add("The other misses have no known design limit (the client's protocol allows the goal; see the "
                "figure's note); on this shared 2-core machine, where the benchmark, its child processes and "
                "DynamoDB Local compete for CPU, such a result needs a rerun on a quiet machine before it is taken "
                "as the client's.\n")
    else:
        add("Every goal was met in this run.\n")
    return "\n".join(doc.lines).rstrip() + "\n"


def num(x: float) -> str:
    """A count or a unit figure without trailing zeros: 1, 0.5, 2.33."""
    text = f"{x:.2f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def money(x: float) -> str:
    if x >= 100:
        return f"${x:,.0f}"
    if x >= 0.1:
        return f"${x:.2f}"
    return f"${x:.2g}"


def by_kind(summary: dict) -> tuple[float, float, float]:
    """(reads, writes, failed conditional writes) in a proxy summary."""
    ops = summary["ops"]
    reads = sum(ops[op]["requests"] for op in READS if op in ops)
    writes = sum(ops[op]["requests"] for op in WRITES if op in ops)
    failed = sum(ops[op]["condition_failed"] for op in WRITES if op in ops)
    return reads, writes, failed


def rate(summary: dict, seconds: float) -> dict:
    """A proxy summary of a window as a per-call entry of one second."""
    return {
        "read_units": summary["read_units"] / seconds,
        "write_units": summary["write_units"] / seconds,
        "ops": {op: {k: e[k] / seconds for k in ("requests", "condition_failed", "cancelled", "error")} for op, e in summary["ops"].items()},
    }


def combined(*entries: dict) -> dict:
    out = {"read_units": 0.0, "write_units": 0.0, "ops": {}}
    for entry in entries:
        out["read_units"] += entry["read_units"]
        out["write_units"] += entry["write_units"]
        for op, e in entry["ops"].items():
            into = out["ops"].setdefault(op, {"requests": 0.0, "condition_failed": 0.0, "cancelled": 0.0, "error": 0.0})
            for k in into:
                into[k] += e.get(k, 0.0)
    return out


OP_ORDER = ("GetItem", "Query", "PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems")


def units_cell(entry: dict | None) -> str:
    """'1 R + 2 W: GetItem, 2× PutItem (1 failed)': request units, then the calls that used them."""
    if entry is None:
        return "n/a"
    units = []
    if entry["read_units"]:
        units.append(f"{num(entry['read_units'])} R")
    if entry["write_units"]:
        units.append(f"{num(entry['write_units'])} W")
    calls = []
    for op in sorted(entry["ops"], key=lambda o: OP_ORDER.index(o) if o in OP_ORDER else len(OP_ORDER)):
        e = entry["ops"][op]
        if e["requests"] < 0.005:
            continue
        text = op if abs(e["requests"] - 1) < 0.005 else f"{num(e['requests'])}× {op}"
        if e["condition_failed"] >= 0.005:
            text += " (failed)" if abs(e["condition_failed"] - e["requests"]) < 0.005 else f" ({num(e['condition_failed'])} failed)"
        if e["cancelled"] >= 0.005:
            text += f" ({num(e['cancelled'])} cancelled)"
        if e["error"] >= 0.005:
            text += f" ({num(e['error'])} errors)"
        calls.append(text)
    return f"{' + '.join(units) or '0'}: {', '.join(calls) or 'none'}"


# Capacity figure columns: (language, client key in its results, heading).
CAPACITY_CLIENTS = [
    ("Python", "dynalease", "dynalease (Python sync)"),
    ("Python", PDL, "pdl"),
    ("Node", PROMISE, "dynalease Promise API"),
    ("Node", DROPIN2, "drop-in (SDK v2)"),
    ("Node", DROPIN3, "drop-in (SDK v3)"),
    ("Node", DLC2, "dlc v2"),
    ("Node", DLC3, "dlc v3"),
]
LOCK_ROWS = [
    ("acquire", "acquire (lock free)"),
    ("release", "release"),
    ("cycle", "acquire + release (the whole uncontended cycle)"),
    ("heartbeat", "heartbeat"),
    ("contended acquire attempt", "contended acquire attempt (lock held by another)"),
    ("waiting second", "one second of waiting (average over the long wait of figure 8)"),
    ("lock-data update", "lock-data update"),
]
KV_ROWS = ["KV get", "KV put", "KV CAS (atomic put by version)", "KV delete", "KV list page", "fenced KV write"]


def capacity_entry(py: dict, node: dict, language: str, client: str, row: str) -> dict | None:
    results = py if language == "Python" else node
    cap = results.get("capacity", {}).get(client)
    if cap is None:
        return None
    if row == "cycle":
        return combined(cap["acquire"], cap["release"]) if "acquire" in cap and "release" in cap else None
    if row == "waiting second":
        long_wait = results.get("waiting", {}).get(client, {}).get("long_wait")
        return rate(long_wait["while_waiting"], long_wait["seconds"]) if long_wait else None
    return cap.get(row)


def waits_counted(py: dict, node: dict, counter: str) -> str:
    """How often each client's waits of figure 8 counted `counter` ("Python dynalease (sync) 2 times, ..."), or ""."""
    counted = [(language, client, sum(w[case].get(counter, 0) for case in ("long_wait", "handover_after_1s", "handover_after_20s")))
               for language, client, w in languages(py, node, "waiting")]
    return ", ".join(f"{language} {LABEL.get(client, client)} {n} times" for language, client, n in counted if n)


def waiting_section(doc: Doc, py: dict, node: dict) -> None:
    add = doc.add
    wait_s = node.get("wait_seconds", py.get("wait_seconds", 60))
    steady_after = node.get("steady_after_seconds", py.get("steady_after_seconds", 10))
    add("## 8. Waiting: what a waiter reads, and how soon it takes over\n")
    add("The holder (the benchmark process) holds the lock and heartbeats every 3.3 s; 1.5 s after it took the lock "
        "(so that no release coincides with a heartbeat), a waiter in another process starts waiting, and the holder "
        "releases a set time later. Every client runs with its defaults (poll "
        "interval and any back-off), so the figures are what users get. All cases of all clients of one language "
        "ran side by side, on separate lock ids and processes.\n")
    add(f"### 8a. One waiter during a {wait_s:.0f} s wait\n")
    add("The waiter's requests went through its own counting proxy (figure 9's); counted from the moment it started "
        "waiting to the release. Reads are GetItem requests; write attempts are the writes it tried (failed: their "
        f"condition failed). The last columns: the read rate after the first {steady_after:.0f} s of the wait. Goal for "
        f"dynalease's clients: at most one read a second once the wait is {steady_after:.0f} s old (the first seconds "
        "read every 50 ms, so that a holder finishing soon hands over at once).\n")
    rows = []
    notes = []
    for language, client, w in languages(py, node, "waiting"):
        lw = w["long_wait"]
        reads, writes, failed = by_kind(lw["while_waiting"])
        per_minute = reads / lw["seconds"] * 60
        units_per_minute = (lw["while_waiting"]["read_units"] + lw["while_waiting"]["write_units"]) / lw["seconds"] * 60
        steady_reads = by_kind(lw["steady"])[0] / lw["steady_seconds"] if lw["steady_seconds"] > 0 else 0.0
        goal = ""
        if client in PEERS:
            met = steady_reads <= READS_PER_MINUTE_GOAL / 60
            goal = verdict(met)
            if not met:
                doc.miss("protocol" if client in DROPINS else "waiting",
                         f"reads per second after {steady_after:.0f} s of a {wait_s:.0f} s wait, {language} {LABEL.get(client, client)}: {steady_reads:.2f} (goal <= 1)")
                early = reads - by_kind(lw["steady"])[0]
                early_rate = early / max(1e-9, lw["seconds"] - lw["steady_seconds"])
                trend = ("as often as at the start: no back-off" if steady_reads >= 0.8 * early_rate
                         else "less often than at the start, but more than once a second")
                notes.append(f"{language} {LABEL.get(client, client)} read {early:.0f} times in the first {steady_after:.0f} s "
                             f"and {steady_reads:.2f} times a second after that ({trend})")
        rows.append([language, LABEL.get(client, client), f"{lw['seconds']:.1f}", f"{reads:.0f}", f"{per_minute:.1f}",
                     f"{writes:.0f} ({failed:.0f})", f"{units_per_minute:.1f}", f"{steady_reads:.2f}", goal])
    doc.table(["language", "client", "wait s", "reads", "reads per minute", "write attempts (failed)",
               "request units per minute", f"reads/s after {steady_after:.0f} s", "goal (<= 1 read/s after)"], rows)
    if notes:
        add("What limits it: " + "; ".join(notes) + ".\n")
    gave_up = waits_counted(py, node, "gave_up")
    if gave_up:
        add("Waits that ended without the lock: " + gave_up + ". dlc over SDK v3 ends `acquireLock` at the first takeover put whose condition fails (it retries only "
            "on SDK v2's `error.code`; SDK v3 errors carry `name`), so it cannot wait past a heartbeat of the holder; "
            "the benchmark's waiter calls `acquireLock` again each time, as its caller would have to, and those "
            "requests are counted above.\n")
    add("pdl's waiter reads once per retry period (its heartbeat period); dlc's reads the item, sleeps the holder's "
        "whole lease, then tries a put conditioned on what it read, which fails while the holder heartbeats; the "
        "drop-in keeps dlc's protocol.\n")

    add("### 8b. Handover after a wait\n")
    add("As figure 3, but the holder releases 1 s or 20 s after the waiter started waiting. Handover: from just "
        "before the release to the waiter holding, both on the machine's monotonic clock. Goal for dynalease's "
        f"clients: median <= {HANDOVER_GOAL_MS:.0f} ms after the 1 s wait.\n")
    rows = []
    for language, client, w in languages(py, node, "waiting"):
        short, long_ = w["handover_after_1s"], w["handover_after_20s"]
        goal = ""
        if client in PEERS:
            met = short["median_ms"] <= HANDOVER_GOAL_MS
            goal = verdict(met)
            if not met:
                doc.miss("protocol" if client in DROPINS else "waiting",
                         f"handover after a 1 s wait, {language} {LABEL.get(client, client)}: median {short['median_ms']:.0f} ms")
        rows.append([language, LABEL.get(client, client), str(short["n"]), f"{short['median_ms']:.0f}", f"{short['p99_ms']:.0f}",
                     str(long_["n"]), f"{long_['median_ms']:.0f}", f"{long_['p99_ms']:.0f}", goal])
    doc.table(["language", "client", "1 s: rounds", "median ms", "p99 ms", "20 s: rounds", "median ms", "p99 ms",
               f"goal (1 s: <= {HANDOVER_GOAL_MS:.0f} ms)"], rows)
    add("The drop-in's handover is dlc's (figure 3's note says why it keeps dlc's protocol). Rounds after 20 s are "
        "few: each costs 20 s and more.\n")
    failed = waits_counted(py, node, "release_failed")
    if failed:
        add("Releases that failed: " + failed + ". dlc over SDK v3 reports a release that crosses its own heartbeat (the release carries the guid the "
            "heartbeat replaced; over SDK v2 dlc ignores the failure); the lock then stays held until its lease "
            "runs out, and the handover of that round includes the wait.\n")


def capacity_section(doc: Doc, py: dict, node: dict) -> None:
    add = doc.add
    add("## 9. Capacity units per operation\n")
    calls = {e["calls"] for results in (py, node) for cap in results.get("capacity", {}).values()
             for k, e in cap.items() if isinstance(e, dict) and "calls" in e and k != "heartbeat"}
    page = node.get("list_page", py.get("list_page", 10))
    add("Each client through its own `bench/counting_proxy.py`, which adds `\"ReturnConsumedCapacity\": \"TOTAL\"` to "
        "every data-plane request it forwards and reads `ConsumedCapacity` from the answer (DynamoDB Local does not "
        "check request signatures, so the rewritten requests pass; answers reach the client unchanged). "
        f"Averaged over {', '.join(str(c) for c in sorted(calls)) or '?'} calls of each operation; R: read request "
        "units, W: write request units, then the DynamoDB calls that used them.\n")
    add("What DynamoDB Local reports and what the service bills differ in three places:\n")
    add("- DynamoDB Local reports units only for calls that succeed. A conditional write whose condition fails "
        "(`(failed)` below) still consumes write units on the service, by the size of the item in 1 KB steps "
        f"(the item in the table, or the one the write would have written) ([AWS: DynamoDB read and write operations]({FAILED_WRITE_SOURCE}), "
        "capacity unit consumption for write operations). Every lock item here is under 1 KB (each successful "
        "single-item write consumed 1 W), so the proxy counts each failed conditional write as 1 W.")
    add("- For `TransactWriteItems` (every dynalease KV write) DynamoDB Local adds up the sizes of a "
        "transaction's items in each table before rounding to 1 KB (checked by hand: three small Puts in one "
        "transaction are reported as 2 W, where the service's rule of 2 W per KB of each item gives 6). dynalease's "
        "KV writes are one-item transactions, and a fenced write's two items are in two tables (the pair and the "
        "lock item), so each item is rounded on its own, as the service does. DynamoDB Local counts the fenced "
        "write's ConditionCheck on the lock item like a transactional write of it; the page cited above does not "
        "say what the service bills for a ConditionCheck.")
    add("- For single items DynamoDB Local's figures follow the documented rules (checked by hand: 1 W per KB "
        "written, 1 R per 4 KB read strongly consistent, 0.5 R eventually consistent, 1 R for a strongly "
        "consistent read of a missing item).\n")
    rows = []
    for row, heading in LOCK_ROWS:
        rows.append([heading] + [units_cell(capacity_entry(py, node, language, client, row)) for language, client, _ in CAPACITY_CLIENTS])
    doc.table(["operation"] + [heading for _, _, heading in CAPACITY_CLIENTS], rows)
    add("n/a: the client has no such operation (pdl, dlc and the drop-in have no lock-data update; the KV store "
        "is dynalease's). The heartbeat row was measured with heartbeats every 0.5 s (same requests as every "
        "3.3 s). dlc's and the drop-in's contended attempt reads the item, sleeps the holder's lease, then tries "
        "its conditional put, which fails (measured against a holder with a 1 s lease, to keep it short); pdl's "
        "reads the item and gives up without writing; dynalease's is one conditional write.\n")
    notes = []
    for dropin in DROPINS:
        ours = capacity_entry(py, node, "Node", dropin, "contended acquire attempt")
        theirs = capacity_entry(py, node, "Node", DLC_OF[dropin], "contended acquire attempt")
        if ours and theirs:
            gets = [e["ops"].get("GetItem", {}).get("requests", 0.0) for e in (ours, theirs)]
            if abs(gets[0] - gets[1]) >= 0.005:
                notes.append(f"{SHORT[DLC_OF[dropin]]}: {num(gets[0])} GetItem against {num(gets[1])}")
    if notes:
        add("The drop-in's failed attempt reads the item once more than dlc's (" + "; ".join(notes) + "): after a "
            "takeover put whose condition fails it reads the item back, to learn whether an earlier send of the "
            "same put (an SDK resend) landed; dlc, out of retries, stops there. With retries left, that read is "
            "the one dlc's retry makes too, so the extra read comes once per failed `acquireLock`.\n")
    kv_clients = [(language, client, heading) for language, client, heading in CAPACITY_CLIENTS if client in ("dynalease", PROMISE)]
    rows = []
    for row in KV_ROWS:
        label = f"KV list page ({page} pairs)" if row == "KV list page" else row
        rows.append([label] + [units_cell(capacity_entry(py, node, language, client, row)) for language, client, _ in kv_clients])
    doc.table(["KV operation"] + [heading for _, _, heading in kv_clients], rows)


def cost_section(doc: Doc, py: dict, node: dict) -> None:
    add = doc.add
    r_price, w_price = PRICE["read_per_million"] / 1e6, PRICE["write_per_million"] / 1e6
    steady_after = node.get("steady_after_seconds", py.get("steady_after_seconds", 10))
    add("## 10. What it costs on an on-demand table\n")
    add(f"Prices: ${PRICE['write_per_million']} per million write request units and ${PRICE['read_per_million']} per "
        f"million read request units, on-demand, Standard table class, {PRICE['region']}, from [AWS's DynamoDB "
        f"on-demand pricing page]({PRICE['source']}), looked up on {PRICE['looked_up']}. The copy of that page read "
        f"then did not include its price table; these are the prices AWS set from {PRICE['since']} (its on-demand "
        "price reduction), the latest that could be confirmed. Units per operation from figure 9 (failed "
        "conditional writes counted as the service bills them). Storage and data transfer are left out.\n")
    rows = []
    costs: dict[str, list[str]] = {}
    holds: set[str] = set()
    for language, client, heading in CAPACITY_CLIENTS:
        results = py if language == "Python" else node
        cycle = capacity_entry(py, node, language, client, "cycle")
        beat = capacity_entry(py, node, language, client, "heartbeat")
        if cycle is None:
            continue
        per_cycle = cycle["read_units"] * r_price + cycle["write_units"] * w_price
        beats_per_hour = 3600 / results.get("heartbeat_seconds", 10 / 3)
        hold_hour = beats_per_hour * (beat["read_units"] * r_price + beat["write_units"] * w_price) if beat else None
        long_wait = results.get("waiting", {}).get(client, {}).get("long_wait")
        wait_hour = None
        if long_wait and long_wait["steady_seconds"] > 0:
            st = long_wait["steady"]
            wait_hour = (st["read_units"] * r_price + st["write_units"] * w_price) / long_wait["steady_seconds"] * 3600
        costs.setdefault(money(per_cycle * 1e6), []).append(heading)
        holds.add(money(hold_hour) if hold_hour is not None else "n/a")
        rows.append([language, heading, units_cell(cycle).split(":")[0], money(per_cycle * 1e6),
                     f"{beats_per_hour:.0f}", money(hold_hour) if hold_hour is not None else "n/a",
                     money(hold_hour * 1000 * 24 * 30) if hold_hour is not None else "n/a",
                     money(wait_hour) if wait_hour is not None else "n/a"])
    doc.table(["language", "client", "units per cycle", "1 million cycles", "heartbeats an hour", "holding one lock an hour",
               "holding 1,000 locks for 30 days", f"one waiter an hour (rate after its first {steady_after:.0f} s)"], rows)
    if costs:
        add("In short: a million uncontended lock cycles cost " + "; ".join(f"{cost} with {' and '.join([', '.join(names[:-1]), names[-1]] if len(names) > 1 else names)}" for cost, names in costs.items())
            + (f"; holding a lock costs {holds.pop()} an hour in heartbeats with every client." if len(holds) == 1 else ".") + "\n")
    add("A cycle is an uncontended acquire + release. Holding costs the heartbeats (every 3.3 s here: a 10 s lease "
        "and each client's default of a third of it, set to that for pdl and dlc). A waiter's hour is its "
        "read and write rate in the long wait of figure 8 after its first seconds, kept up for an hour.\n")


if __name__ == "__main__":
    loaded = []
    for path in sys.argv[1:4]:
        with open(path) as f:
            loaded.append(json.load(f))
    sys.stdout.write(render(*loaded))
