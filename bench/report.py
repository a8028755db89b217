"""Writes docs/benchmarks.md from the JSON results of one benchmark run."""

from __future__ import annotations

import datetime
import json
import os
import platform
import sys


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.2f}x" if theirs else "n/a"


def verdict(met: bool) -> str:
    return "met" if met else "**missed**"


def render(results: dict, sizes: dict) -> str:
    out: list[str] = []
    add = out.append
    add("# Benchmarks\n")
    add(f"One run of `make bench` on {datetime.date.today().isoformat()}: {os.cpu_count()} cores, {cpu_model()}, "
        f"Python {platform.python_version()}, DynamoDB Local (in memory) on the same machine. Every client used a "
        "10 s lease. Peers: `python_dynamodb_lock` 0.9.1 with boto3 (Python). Not measured yet: the Node "
        "peers (`dynamodb-lock-client` 0.7.3 with SDK v2 and v3 against the drop-in and the Promise API).\n")
    add("Figures from a shared 2-core machine are noisy; ratios between clients of the same run are what to compare.\n")

    req = results["requests_per_cycle"]
    add("## 1. DynamoDB requests per uncontended acquire + release\n")
    add("Counted by a proxy between client and DynamoDB Local. Physical limit: 2. Goal: 2.\n")
    add("| client | requests | goal |\n|---|---|---|")
    add(f"| python_dynamodb_lock | {req['python_dynamodb_lock']:.2f} | |")
    add(f"| dynalease | {req['dynalease']:.2f} | {verdict(req['dynalease'] <= 2.0)} |\n")

    add("## 2. Uncontended acquire + release: latency and throughput\n")
    add("| client | lock ids | cycles | median ms | p99 ms | cycles/s | vs peer (cycles/s) |\n|---|---|---|---|---|---|---|")
    cycles = results["cycles"]
    for ids in ("1", "16"):
        base = cycles["python_dynamodb_lock"][ids]["cycles_per_s"]
        for client, runs in cycles.items():
            r = runs[ids]
            add(f"| {client} | {ids} | {r['n']} | {r['median_ms']:.1f} | {r['p99_ms']:.1f} | {r['cycles_per_s']:.0f} | {ratio(r['cycles_per_s'], base)} |")
    add("")

    hand = results["handover"]
    add("## 3. Handover with a 10 s lease (holder releases, waiter in another process holds)\n")
    add("Goal: median <= 50 ms.\n")
    add("| client | handovers | median ms | p99 ms | goal |\n|---|---|---|---|---|")
    add(f"| python_dynamodb_lock | {hand['python_dynamodb_lock']['n']} | {hand['python_dynamodb_lock']['median_ms']:.0f} | {hand['python_dynamodb_lock']['p99_ms']:.0f} | |")
    d = hand["dynalease"]
    add(f"| dynalease | {d['n']} | {d['median_ms']:.0f} | {d['p99_ms']:.0f} | {verdict(d['median_ms'] <= 50)} |\n")
    add("The peer's waiter retries once per heartbeat period; dynalease's polls every 50 ms at most "
        "(a release in the same process wakes waiters at once, which this figure does not use).\n")

    add("## 4. Client CPU per acquire + release (process CPU / cycles, one lock id)\n")
    add("Goal: <= 0.5x the peer.\n")
    add("| client | CPU ms per cycle | vs peer | goal |\n|---|---|---|---|")
    peer_cpu = cycles["python_dynamodb_lock"]["1"]["cpu_ms_per_cycle"]
    for client, runs in cycles.items():
        cpu = runs["1"]["cpu_ms_per_cycle"]
        goal = "" if client == "python_dynamodb_lock" else verdict(cpu <= 0.5 * peer_cpu)
        add(f"| {client} | {cpu:.3f} | {ratio(cpu, peer_cpu)} | {goal} |")
    add("")

    cold = results["cold_start"]
    add("## 5. Cold start in a fresh process (median of 5, ms)\n")
    add("| client | import | client construction | first acquire + release | total |\n|---|---|---|---|---|")
    for client, phases in cold.items():
        total = sum(phases.values())
        add(f"| {client} | {phases['import']:.1f} | {phases['client']:.1f} | {phases['first_acquire_release']:.1f} | {total:.1f} |")
    add("")

    many = results["many_locks"]
    add(f"## 6. One process holding {many['count']} heartbeating locks for {many['hold_seconds']:.0f} s\n")
    add("Each in a process that imported only that client.\n")
    add("| client | RSS MB while holding (after import) | CPU % while holding | locks lost |\n|---|---|---|---|")
    for client in ("python_dynamodb_lock", "dynalease"):
        m = many[client]
        add(f"| {client} | {m['rss_mb']:.0f} ({m['rss_before_mb']:.0f}) | {m['cpu_percent']:.1f} | {m['lost']} |")
    add("")

    add("## 7. Package sizes\n")
    add("| package | size |\n|---|---|")
    for name, size in sizes.items():
        add(f"| {name} | {size / 1e6:.1f} MB |")
    add("")
    return "\n".join(out)


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        results = json.load(f)
    with open(sys.argv[2]) as f:
        sizes = json.load(f)
    sys.stdout.write(render(results, sizes))
