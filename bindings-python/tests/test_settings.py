"""call_timeout, max_retries and poll_interval take effect, and writes whose outcome is unknown
raise OutcomeUnknownError (and only those).

The endpoints here are local sockets with known behaviour (netfakes): one that never answers, a
port that refuses connections, and a proxy to DynamoDB Local that counts requests. Assertions
are on error types and request counts, never on how long something took.
"""

from __future__ import annotations

import asyncio
import pickle
from typing import Iterator

import pytest

import dynalease
from conftest import unique
from netfakes import CountingProxy, RefusingPort, SilentServer


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    # With credentials in the environment the client does not probe the AWS chain (IMDS) first.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "dynalease")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "dynalease")
    monkeypatch.setenv("AWS_REGION", "us-east-1")


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


@pytest.fixture
def refusing() -> Iterator[RefusingPort]:
    port = RefusingPort()
    yield port
    port.close()


# -- the error family -----------------------------------------------------------------------


def test_outcome_unknown_is_a_public_transport_error() -> None:
    family = dynalease.OutcomeUnknownError
    assert "OutcomeUnknownError" in dynalease.__all__
    assert issubclass(family, dynalease.TransportError)
    assert issubclass(family, dynalease.Error)
    assert family.__module__ == "dynalease"
    assert family.__doc__ and "may or may not have been applied" in family.__doc__
    error = pickle.loads(pickle.dumps(family("message")))
    assert type(error) is family and str(error) == "message"
    # Code written for TransportError keeps catching it.
    with pytest.raises(dynalease.TransportError):
        raise family("x")


# -- a write that got no answer -------------------------------------------------------------


WRITES = {
    "put": lambda kv: kv.put("k", 1),
    "atomic_put create": lambda kv: kv.atomic_put("k", 1),
    "atomic_put swap": lambda kv: kv.atomic_put("k", 2, previous=dynalease.KVPair("k", 1, 7)),
    "delete": lambda kv: kv.delete("k"),
    "atomic_delete": lambda kv: kv.atomic_delete("k", dynalease.KVPair("k", 1, 7)),
}


@pytest.mark.parametrize("write", list(WRITES), ids=list(WRITES))
def test_a_write_without_an_answer_has_an_unknown_outcome(write: str, silent: SilentServer) -> None:
    kv = dynalease.KVStore("kv-store", partition="p", endpoint_url=silent.endpoint, call_timeout=0.2, max_retries=0)
    with pytest.raises(dynalease.OutcomeUnknownError) as raised:
        WRITES[write](kv)
    # The server did receive the write: it may have applied it.
    assert silent.settled_requests(expected=1) >= 1
    assert "may have been applied" in str(raised.value)


def test_an_async_write_without_an_answer_has_an_unknown_outcome(silent: SilentServer) -> None:
    async def write() -> None:
        kv = dynalease.AsyncKVStore("kv-store", partition="p", endpoint_url=silent.endpoint, call_timeout=0.2, max_retries=1)
        await kv.put("k", {"a": 1})

    with pytest.raises(dynalease.OutcomeUnknownError):
        asyncio.run(write())


def test_a_refused_connection_is_a_transport_error_not_an_unknown_outcome(refusing: RefusingPort) -> None:
    # Nothing was sent, so the write certainly did not happen.
    kv = dynalease.KVStore("kv-store", partition="p", endpoint_url=refusing.endpoint, call_timeout=1.0, max_retries=1)
    for write in WRITES.values():
        with pytest.raises(dynalease.TransportError) as raised:
            write(kv)
        assert not isinstance(raised.value, dynalease.OutcomeUnknownError), raised.value
        assert "refused" in str(raised.value).lower()


def test_a_read_without_an_answer_is_a_transport_error(silent: SilentServer) -> None:
    # A read changes nothing, so it has no outcome to be unsure of.
    kv = dynalease.KVStore("kv-store", partition="p", endpoint_url=silent.endpoint, call_timeout=0.2, max_retries=0)
    with pytest.raises(dynalease.TransportError) as raised:
        kv.get("k")
    assert not isinstance(raised.value, dynalease.OutcomeUnknownError), raised.value


# -- call_timeout and max_retries ------------------------------------------------------------


@pytest.mark.parametrize("max_retries", [0, 2])
def test_each_attempt_ends_at_the_call_timeout_and_reads_are_repeated_max_retries_times(
    max_retries: int, silent: SilentServer
) -> None:
    kv = dynalease.KVStore("kv-store", partition="p", endpoint_url=silent.endpoint, call_timeout=0.2, max_retries=max_retries)
    with pytest.raises(dynalease.TransportError) as raised:
        kv.get("k")
    # The attempts ended at our deadline (the default is 5 s), and the message says so.
    assert "no response within 200ms" in str(raised.value)
    assert silent.settled_requests("GetItem", expected=max_retries + 1) == max_retries + 1


def test_max_retries_also_bounds_the_attempts_of_each_write_send() -> None:
    # The store may resend a write whose outcome stayed unknown (a fixed number of times, the
    # core's choice); each of those sends makes 1 + max_retries attempts.
    counts = {}
    for max_retries in (0, 2):
        server = SilentServer()
        try:
            kv = dynalease.KVStore("kv-store", partition="p", endpoint_url=server.endpoint, call_timeout=0.2, max_retries=max_retries)
            with pytest.raises(dynalease.OutcomeUnknownError):
                kv.put("k", 1)
            counts[max_retries] = server.settled_requests()
        finally:
            server.close()
    assert counts[0] >= 1
    assert counts[2] == 3 * counts[0], counts


def test_create_table_takes_call_timeout_and_max_retries(silent: SilentServer) -> None:
    with pytest.raises(dynalease.TransportError) as raised:
        dynalease.create_table(unique("t"), endpoint_url=silent.endpoint, call_timeout=0.2, max_retries=1)
    assert "200ms" in str(raised.value)
    # CreateTable is sent once (a create is not repeated blindly); the describe that then looks
    # for the table is a read, repeated max_retries times.
    assert silent.settled_requests("DescribeTable", expected=2) == 2
    assert silent.requests("CreateTable") == 1


def test_a_lock_client_uses_its_call_timeout(silent: SilentServer) -> None:
    locks = dynalease.LockClient("locks", endpoint_url=silent.endpoint, call_timeout=0.2, max_retries=0)
    with pytest.raises(dynalease.TransportError) as raised:
        locks.try_acquire("job")
    assert "200ms" in str(raised.value)


def test_settings_read_back() -> None:
    for cls in (dynalease.LockClient, dynalease.AsyncLockClient):
        default = cls("locks", endpoint_url="memory://settings")
        assert (default.call_timeout, default.poll_interval, default.max_poll_interval, default.max_retries) == (5.0, 0.05, 1.5, 7)
        tuned = cls(
            "locks", endpoint_url="memory://settings", call_timeout=0.75, poll_interval=0.25, max_poll_interval=3, max_retries=0
        )
        assert (tuned.call_timeout, tuned.poll_interval, tuned.max_poll_interval, tuned.max_retries) == (0.75, 0.25, 3.0, 0)
    for kv_cls in (dynalease.KVStore, dynalease.AsyncKVStore):
        default_kv = kv_cls("kv-store", partition="p", endpoint_url="memory://settings")
        assert (default_kv.call_timeout, default_kv.max_retries) == (5.0, 7)
        tuned_kv = kv_cls("kv-store", partition="p", endpoint_url="memory://settings", call_timeout=2, max_retries=100)
        assert (tuned_kv.call_timeout, tuned_kv.max_retries) == (2.0, 100)


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"call_timeout": 0}, dynalease.ConfigError),
        ({"call_timeout": -0.1}, dynalease.ConfigError),
        ({"call_timeout": float("nan")}, dynalease.ConfigError),
        ({"call_timeout": "1"}, TypeError),
        ({"poll_interval": 0}, dynalease.ConfigError),
        ({"poll_interval": float("inf")}, dynalease.ConfigError),
        ({"poll_interval": [1]}, TypeError),
        ({"max_poll_interval": 0}, dynalease.ConfigError),
        ({"max_poll_interval": -1.5}, dynalease.ConfigError),
        ({"max_poll_interval": "1.5"}, TypeError),
        ({"max_retries": -1}, dynalease.ConfigError),
        ({"max_retries": -(10**30)}, dynalease.ConfigError),
        ({"max_retries": 101}, dynalease.ConfigError),
        ({"max_retries": 10**30}, dynalease.ConfigError),
        ({"max_retries": 1.0}, TypeError),
        ({"max_retries": True}, TypeError),
        ({"max_retries": "3"}, TypeError),
    ],
)
def test_bad_settings_fail_in_every_constructor(kwargs: dict, error: type) -> None:
    poll = any(name.endswith("poll_interval") for name in kwargs)
    with pytest.raises(error):
        dynalease.LockClient("locks", **kwargs)
    with pytest.raises(error):
        dynalease.AsyncLockClient("locks", **kwargs)
    if not poll:
        with pytest.raises(error):
            dynalease.KVStore("kv-store", partition="p", **kwargs)
        with pytest.raises(error):
            dynalease.AsyncKVStore("kv-store", partition="p", **kwargs)
        with pytest.raises(error):
            dynalease.create_table("locks", endpoint_url="memory://settings", **kwargs)
        with pytest.raises(error):
            dynalease.create_table_async("locks", endpoint_url="memory://settings", **kwargs)


def test_edge_values_are_accepted() -> None:
    locks = dynalease.LockClient("locks", endpoint_url="memory://settings", call_timeout=1e-3, poll_interval=1e-3, max_retries=100)
    assert locks.max_retries == 100
    assert dynalease.KVStore("kv-store", partition="p", max_retries=0).max_retries == 0


# -- poll_interval -------------------------------------------------------------------------


def test_poll_interval_bounds_how_often_a_waiter_reads(ddb_endpoint: str, ddb_lock_table: str) -> None:
    # The holder never renews, so the waiter watches one unchanged lease the whole time.
    holder = dynalease.LockClient(ddb_lock_table, endpoint_url=ddb_endpoint, lease_duration=60.0, heartbeat_period=0)
    held = holder.acquire("polled")
    proxy = CountingProxy(ddb_endpoint)
    try:
        poll, wait = 1.0, 2.0
        waiter = dynalease.LockClient(ddb_lock_table, endpoint_url=proxy.endpoint, poll_interval=poll)
        with pytest.raises(dynalease.LockNotAcquiredError):
            waiter.acquire("polled", timeout=wait)
        reads = proxy.requests("GetItem")
    finally:
        proxy.close()
        held.release()
    # For its first 2 s a waiter reads every poll interval, never faster: at 1 s and 2 s, and once
    # more at the deadline at most (its first look is a write). At the default poll interval
    # (50 ms) the same wait takes 40 reads. Only an upper bound is asserted: a slow machine reads
    # less, never more.
    assert reads <= int(wait / poll) + 1, reads


def test_a_long_wait_backs_off_toward_max_poll_interval(ddb_endpoint: str, ddb_lock_table: str) -> None:
    holder = dynalease.LockClient(ddb_lock_table, endpoint_url=ddb_endpoint, lease_duration=60.0, heartbeat_period=0)
    held = holder.acquire("backing-off")
    proxy = CountingProxy(ddb_endpoint)
    try:
        waiter = dynalease.LockClient(ddb_lock_table, endpoint_url=proxy.endpoint)
        with pytest.raises(dynalease.LockNotAcquiredError):
            waiter.acquire("backing-off", timeout=6.0)
        reads = proxy.requests("GetItem")
    finally:
        proxy.close()
        held.release()
    # 40 reads in the first 2 s (every 50 ms), then pauses that grow with the wait (half the time
    # waited past 2 s) up to max_poll_interval: about a dozen more by 6 s. Polling at 50 ms
    # throughout would take 120.
    assert reads <= 60, reads


def test_waiters_in_one_process_share_one_poller(ddb_endpoint: str, ddb_lock_table: str) -> None:
    holder = dynalease.LockClient(ddb_lock_table, endpoint_url=ddb_endpoint, lease_duration=60.0, heartbeat_period=0)
    held = holder.acquire("shared-poll")
    proxy = CountingProxy(ddb_endpoint)

    async def wait_for_it() -> None:
        # A client object per waiter, as separate parts of a program would make: clients with
        # the same endpoint options share one connection, and so one poller per lock id.
        waiter = dynalease.AsyncLockClient(ddb_lock_table, endpoint_url=proxy.endpoint)
        with pytest.raises(dynalease.LockNotAcquiredError):
            await waiter.acquire("shared-poll", timeout=3.0)

    async def ten_waiters() -> None:
        await asyncio.gather(*(wait_for_it() for _ in range(10)))

    try:
        asyncio.run(ten_waiters())
        reads, writes = proxy.requests("GetItem"), proxy.requests("UpdateItem")
    finally:
        proxy.close()
        held.release()
    # Each waiter tries the lock once as it starts; then the ten read as one: about 46 reads in
    # 3 s (every 50 ms for 2 s, then backing off), where ten separate pollers would read some 460
    # times. Upper bounds only: a slow machine reads less, never more.
    assert writes <= 10, writes
    assert reads <= 60, reads
