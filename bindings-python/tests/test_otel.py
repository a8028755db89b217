"""dynalease.otel: client.stats() as OpenTelemetry observable instruments, read through the SDK's
InMemoryMetricReader (the SDK is a test dependency; the package's `otel` extra is the API only)."""

from __future__ import annotations

import subprocess
import sys
from typing import Dict, Tuple

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import dynalease
import dynalease.otel
from conftest import unique

#: (instrument name, client attribute, other attributes as a sorted tuple) -> value
Points = Dict[Tuple[str, str, Tuple[Tuple[str, str], ...]], float]


def collect(reader: InMemoryMetricReader) -> Points:
    points: Points = {}
    data = reader.get_metrics_data()
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                assert metric.data.is_monotonic, f"{metric.name} should be a counter"
                for point in metric.data.data_points:
                    attributes = dict(point.attributes or {})
                    client = str(attributes.pop("client"))
                    others = tuple(sorted((key, str(value)) for key, value in attributes.items()))
                    points[(metric.name, client, others)] = point.value
    return points


def instrumented(*clients: object, prefix: str = "dynalease") -> Tuple[InMemoryMetricReader, MeterProvider]:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    dynalease.otel.instrument(*clients, meter=provider.get_meter("test"), prefix=prefix)  # type: ignore[arg-type]
    return reader, provider


def test_importing_dynalease_does_not_import_opentelemetry() -> None:
    code = "import sys, dynalease; assert not [m for m in sys.modules if m.startswith('opentelemetry')], 'imported'"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_without_the_extra_the_module_says_what_to_install() -> None:
    code = "import sys; sys.modules['opentelemetry'] = None; import dynalease.otel"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "pip install 'dynalease[otel]'" in done.stderr, done.stderr


def test_every_count_of_every_client_is_observed(endpoint: str, lock_table: str, kv_table: str) -> None:
    locks = dynalease.LockClient(lock_table, endpoint_url=endpoint)
    other = dynalease.LockClient(lock_table, endpoint_url=endpoint)
    kv = dynalease.KVStore(kv_table, partition=unique("ns"), endpoint_url=endpoint)
    reader, provider = instrumented(("workers", locks), other, kv)
    try:
        with locks.lock("job", timeout=10.0) as lock:
            assert other.try_acquire("job") is None
            kv.put("k", 1, lock=lock)
        points = collect(reader)

        kv_name = f"kv:{kv_table}/{kv.partition}"
        other_name = f"locks:{lock_table}"
        for name, client in [("workers", locks), (other_name, other), (kv_name, kv)]:
            stats = client.stats()
            for key, value in stats.items():
                if key != "acquire_wait":
                    assert points[(f"dynalease.{key}", name, ())] == value, (name, key)
        assert points[("dynalease.acquisitions", "workers", ())] == 1
        assert points[("dynalease.contended_attempts", other_name, ())] == 1
        assert points[("dynalease.kv_writes", kv_name, ())] == 1

        # Collected again later: the counters have grown with what happened meanwhile.
        locks.acquire("job").release()
        assert collect(reader)[("dynalease.acquisitions", "workers", ())] == 2
    finally:
        provider.shutdown()


def test_the_wait_histogram_is_cumulative_buckets_a_count_and_a_sum() -> None:
    endpoint = f"memory://{unique('otel')}"
    dynalease.create_table("locks", endpoint_url=endpoint)
    locks = dynalease.LockClient("locks", endpoint_url=endpoint)
    reader, provider = instrumented(locks, prefix="locking")
    try:
        for _ in range(3):
            locks.acquire("job").release()
        points = collect(reader)
        wait = locks.stats()["acquire_wait"]
        buckets = {dict(others)["le"]: value for (name, _, others), value in points.items() if name == "locking.acquire_wait.bucket"}
        bounds = [format(ms / 1000, "g") for ms in wait["bounds_ms"]] + ["+Inf"]
        assert list(buckets) == bounds or sorted(buckets) == sorted(bounds)
        running = 0
        for bound, count in zip(bounds, wait["counts"]):
            running += count
            assert buckets[bound] == running, bound
        assert buckets["+Inf"] == 3
        assert points[("locking.acquire_wait.count", "locks:locks", ())] == 3
        assert points[("locking.acquire_wait.sum", "locks:locks", ())] == pytest.approx(wait["sum_seconds"])
        assert not [name for (name, _, _) in points if name.startswith("dynalease.")]
    finally:
        provider.shutdown()


def test_clients_are_told_apart_and_bad_arguments_refused() -> None:
    endpoint = f"memory://{unique('otel')}"
    a = dynalease.LockClient("locks", endpoint_url=endpoint)
    b = dynalease.AsyncLockClient("locks", endpoint_url=endpoint)
    reader, provider = instrumented(a, b)
    try:
        clients = {client for (_, client, _) in collect(reader)}
        assert clients == {"locks:locks", "locks:locks#2"}
    finally:
        provider.shutdown()
    with pytest.raises(TypeError, match="LockClient"):
        dynalease.otel.instrument("locks")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="at least one"):
        dynalease.otel.instrument()
    with pytest.raises(TypeError, match="pair"):
        dynalease.otel.instrument((1, a))  # type: ignore[arg-type]


def test_the_global_meter_provider_is_the_default() -> None:
    code = """
import dynalease, dynalease.otel
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
reader = InMemoryMetricReader()
metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
dynalease.create_table("locks", endpoint_url="memory://global")
locks = dynalease.LockClient("locks", endpoint_url="memory://global")
dynalease.otel.instrument(locks)
locks.acquire("job").release()
names = {m.name: m for r in reader.get_metrics_data().resource_metrics for s in r.scope_metrics for m in s.metrics}
assert names["dynalease.acquisitions"].data.data_points[0].value == 1, names
scopes = {s.scope.name for r in reader.get_metrics_data().resource_metrics for s in r.scope_metrics}
assert scopes == {"dynalease"}, scopes
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
