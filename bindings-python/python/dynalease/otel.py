"""OpenTelemetry metrics from dynalease clients: ``pip install dynalease[otel]``.

``instrument(locks, kv)`` registers asynchronous (observable) instruments on an OpenTelemetry
meter; whenever the SDK collects (a periodic exporting reader, a Prometheus scrape), their
callbacks read ``client.stats()``. Nothing is counted twice and nothing runs between
collections. Every measurement has the attribute ``client``, a name that tells the clients
apart::

    from opentelemetry import metrics
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, PeriodicExportingMetricReader

    import dynalease
    import dynalease.otel

    reader = PeriodicExportingMetricReader(ConsoleMetricExporter(), export_interval_millis=60_000)
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    locks = dynalease.LockClient("locks")
    dynalease.otel.instrument(("orders-locks", locks))

The instruments, for ``prefix="dynalease"``:

- ``dynalease.<counter>``, an observable counter for every count of ``stats()``
  (``dynalease.acquisitions``, ``dynalease.lost_lease_expired``, ``dynalease.requests``, ...;
  the names are the core's) and for ``read_units`` and ``write_units``;
- the acquisition waits as a Prometheus-style histogram of observable counters:
  ``dynalease.acquire_wait.bucket`` (attribute ``le``: the upper bound in seconds, ``"+Inf"``
  for the last; the count of waits at most that long, so it grows with ``le``),
  ``dynalease.acquire_wait.count`` and ``dynalease.acquire_wait.sum`` (seconds).

Why counters for the histogram: the OpenTelemetry API has no asynchronous histogram (its
``Histogram`` records each value as it happens), and the core has already sorted the waits into
buckets; replaying them into a synchronous histogram would guess every value. Each bucket's
count only grows, which is what an observable counter is (a gauge would drop that, and with it
rates and reset detection in the backend).

Importing ``dynalease`` never imports OpenTelemetry; only this module does.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

try:
    from opentelemetry import metrics
    from opentelemetry.metrics import CallbackOptions, Meter, ObservableCounter, Observation
except ImportError as _missing:  # without the extra (a private name: the module has no such attribute)
    raise ImportError(
        "dynalease.otel needs the OpenTelemetry API: pip install 'dynalease[otel]' (and an SDK to export with)"
    ) from _missing

import dynalease

from . import __version__
from ._native import _KVStoreBase, _LockClientBase

__all__ = ["instrument", "client_name"]

#: A client whose ``stats()`` the instruments read.
Client = Union[_LockClientBase, _KVStoreBase]

#: The key of ``stats()`` that holds the wait histogram (the other keys are counts).
_WAIT = "acquire_wait"

#: OpenTelemetry's instrument-name grammar, which every name the prefix makes must keep (the SDK
#: would otherwise log a warning and drop the instrument: metrics silently missing).
_INSTRUMENT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_./-]{0,254}")


def client_name(client: Client) -> str:
    """The default ``client`` attribute: ``locks:TABLE`` for a lock client, ``kv:TABLE/PARTITION``
    for a store."""
    if isinstance(client, _LockClientBase):
        return f"locks:{client.table}"
    if isinstance(client, _KVStoreBase):
        return f"kv:{client.table}/{client.partition}"
    raise TypeError(
        f"instrument() takes LockClient, AsyncLockClient, KVStore or AsyncKVStore objects "
        f"(or (name, client) pairs), not {type(client).__name__}"
    )


def _named(clients: Sequence[Union[Client, Tuple[str, Client]]]) -> List[Tuple[str, Client]]:
    """Each client with its ``client`` attribute: the name given, or the default one, made unique
    with ``#2``, ``#3``... when two clients would share it."""
    named: List[Tuple[str, Client]] = []
    taken: Dict[str, int] = {}
    for entry in clients:
        if isinstance(entry, tuple):
            if len(entry) != 2 or not isinstance(entry[0], str):
                raise TypeError("a named client is a (name, client) pair with a str name")
            name, client = entry
            client_name(client)  # checks the type
        else:
            client, name = entry, client_name(entry)
        taken[name] = taken.get(name, 0) + 1
        if taken[name] > 1:
            name = f"{name}#{taken[name]}"
        named.append((name, client))
    return named


def _bound_text(bound_ms: int) -> str:
    """A bucket's ``le`` attribute: its bound in seconds, as Prometheus writes them."""
    return format(bound_ms / 1000, "g")


def instrument(
    *clients: Union[Client, Tuple[str, Client]],
    meter: Optional[Meter] = None,
    prefix: str = "dynalease",
) -> List[ObservableCounter]:
    """Registers observable instruments that report the ``stats()`` of ``clients`` (each a
    client, or a ``(name, client)`` pair naming its ``client`` attribute; by default
    ``client_name(client)``) on ``meter`` (default: ``opentelemetry.metrics.get_meter("dynalease")``
    of the global meter provider). Returns the instruments.

    The meter keeps the clients alive for as long as it lives (OpenTelemetry cannot unregister an
    asynchronous instrument). Call it once per meter: instruments of one name are registered once,
    so list every client in that one call.
    """
    if not clients:
        raise TypeError("instrument() needs at least one client")
    named = _named(clients)
    if meter is None:
        meter = metrics.get_meter("dynalease", __version__)
    elif not callable(getattr(meter, "create_observable_counter", None)):
        raise TypeError(
            f"meter must be an OpenTelemetry Meter (opentelemetry.metrics.get_meter(name)), not {type(meter).__name__}"
        )
    if not isinstance(prefix, str):
        raise TypeError(f"prefix must be a str, not {type(prefix).__name__}")
    # The counts are the same for every client (the core's list): read them off one.
    sample = named[0][1].stats()
    names = [f"{prefix}.{key}" for key in sample if key != _WAIT]
    names += [f"{prefix}.{_WAIT}.{suffix}" for suffix in ("bucket", "count", "sum")]
    for name in names:  # all checked before the first is registered
        if not _INSTRUMENT_NAME.fullmatch(name):
            raise dynalease.ConfigError(
                f"prefix {prefix!r} makes {name!r}, which is not an OpenTelemetry instrument name "
                "(a letter, then letters, digits, '_', '.', '-' or '/', at most 255)"
            )
    created: List[ObservableCounter] = []

    def observe(read: Callable[[Dict[str, Any]], Iterable[Tuple[float, Dict[str, str]]]]) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def callback(options: CallbackOptions) -> Iterable[Observation]:
            observations = []
            for name, client in named:
                for value, attributes in read(dict(client.stats())):
                    observations.append(Observation(value, {"client": name, **attributes}))
            return observations

        return callback

    for key, value in sample.items():
        if key == _WAIT:
            continue

        def read_count(stats: Dict[str, Any], key: str = key) -> Iterable[Tuple[float, Dict[str, str]]]:
            return [(stats[key], {})]

        created.append(
            meter.create_observable_counter(
                f"{prefix}.{key}", callbacks=[observe(read_count)], unit="1", description=f"dynalease stats()['{key}']"
            )
        )

    def read_buckets(stats: Dict[str, Any]) -> Iterable[Tuple[float, Dict[str, str]]]:
        wait = stats[_WAIT]
        readings, total = [], 0
        for bound, count in zip([*map(_bound_text, wait["bounds_ms"]), "+Inf"], wait["counts"]):
            total += count
            readings.append((total, {"le": bound}))
        return readings

    def read_wait_count(stats: Dict[str, Any]) -> Iterable[Tuple[float, Dict[str, str]]]:
        return [(sum(stats[_WAIT]["counts"]), {})]

    def read_wait_sum(stats: Dict[str, Any]) -> Iterable[Tuple[float, Dict[str, str]]]:
        return [(stats[_WAIT]["sum_seconds"], {})]

    for suffix, read, unit, description in [
        ("bucket", read_buckets, "1", "acquisitions that waited at most `le` seconds (cumulative, as in Prometheus)"),
        ("count", read_wait_count, "1", "acquisitions whose wait was measured"),
        ("sum", read_wait_sum, "s", "total time acquisitions waited"),
    ]:
        created.append(
            meter.create_observable_counter(
                f"{prefix}.{_WAIT}.{suffix}", callbacks=[observe(read)], unit=unit, description=description
            )
        )
    return created
