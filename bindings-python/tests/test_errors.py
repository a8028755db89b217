"""Bad input gives the documented exception and writes nothing; the exception hierarchy."""

from __future__ import annotations

import logging
import math
import pickle

import pytest

import dynalease
from conftest import unique

FAMILIES = [
    dynalease.ConfigError,
    dynalease.LockNotAcquiredError,
    dynalease.LockLostError,
    dynalease.KeyExistsError,
    dynalease.KeyModifiedError,
    dynalease.KeyNotFoundError,
    dynalease.TableError,
    dynalease.TransportError,
    dynalease.OutcomeUnknownError,
]


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.__name__)
def test_hierarchy_and_pickling(family: type) -> None:
    assert issubclass(family, dynalease.Error)
    assert family.__module__ == "dynalease"
    assert family.__doc__
    error = pickle.loads(pickle.dumps(family("message")))
    assert type(error) is family and str(error) == "message"


CODES = {
    dynalease.Error: "ERR_DYNALEASE",
    dynalease.ConfigError: "ERR_DYNALEASE_CONFIG",
    dynalease.LockNotAcquiredError: "ERR_DYNALEASE_LOCK_NOT_ACQUIRED",
    dynalease.LockLostError: "ERR_DYNALEASE_LOCK_LOST",
    dynalease.KeyExistsError: "ERR_DYNALEASE_KEY_EXISTS",
    dynalease.KeyModifiedError: "ERR_DYNALEASE_KEY_MODIFIED",
    dynalease.KeyNotFoundError: "ERR_DYNALEASE_KEY_NOT_FOUND",
    dynalease.TableError: "ERR_DYNALEASE_TABLE",
    dynalease.TransportError: "ERR_DYNALEASE_TRANSPORT",
    dynalease.OutcomeUnknownError: "ERR_DYNALEASE_OUTCOME_UNKNOWN",
}


@pytest.mark.parametrize("family", list(CODES), ids=lambda f: f.__name__)
def test_every_family_has_its_code_on_the_class(family: type) -> None:
    assert family.code == CODES[family]  # type: ignore[attr-defined]
    assert family("message").code == CODES[family]


def test_lock_errors_say_which_lock_and_why() -> None:
    endpoint = f"memory://{unique('errors')}"
    dynalease.create_table("locks", endpoint_url=endpoint)
    locks = dynalease.LockClient("locks", endpoint_url=endpoint)
    held = locks.acquire("job-1")
    with pytest.raises(dynalease.LockNotAcquiredError) as not_acquired:
        locks.acquire("job-1", timeout=0.05)
    assert not_acquired.value.code == "ERR_DYNALEASE_LOCK_NOT_ACQUIRED"
    # The id as it was passed (the message quotes it).
    assert not_acquired.value.lock_id == "job-1"
    assert not_acquired.value.reason and not_acquired.value.reason in str(not_acquired.value)
    held.release()
    with pytest.raises(dynalease.LockLostError) as lost:
        held.check()
    assert (lost.value.code, lost.value.lock_id, lost.value.reason) == ("ERR_DYNALEASE_LOCK_LOST", "job-1", "it was released")
    # Attributes survive pickling, as the message does.
    again = pickle.loads(pickle.dumps(lost.value))
    assert (type(again), again.lock_id, again.reason, str(again)) == (dynalease.LockLostError, "job-1", "it was released", str(lost.value))


def test_lock_errors_give_back_ids_of_every_type() -> None:
    endpoint = f"memory://{unique('errors')}"
    dynalease.create_table("sorted", sort_key="sk", sort_key_type="N", endpoint_url=endpoint)
    locks = dynalease.LockClient("sorted", sort_key="sk", endpoint_url=endpoint)
    held = locks.acquire(("tenant", 7))
    with pytest.raises(dynalease.LockNotAcquiredError) as not_acquired:
        locks.acquire(("tenant", 7), timeout=0.05)
    assert not_acquired.value.lock_id == ("tenant", 7)
    held.release()


def test_config_errors_name_the_option() -> None:
    with pytest.raises(dynalease.ConfigError) as error:
        dynalease.LockClient("locks", lease_duration=10, heartbeat_period=20, endpoint_url="memory://x")
    assert error.value.option == "heartbeat_period"
    assert "lease_duration" in str(error.value)
    with pytest.raises(dynalease.ConfigError) as error:
        dynalease.LockClient("", endpoint_url="memory://x")
    assert error.value.option is None


def test_a_lost_lease_raises_with_the_locks_id_and_reason() -> None:
    endpoint = f"memory://{unique('errors')}"
    dynalease.create_table("locks", endpoint_url=endpoint)
    holder = dynalease.LockClient("locks", lease_duration=0.2, heartbeat_period=0, endpoint_url=endpoint)
    lock = holder.acquire("lease")
    assert lock.wait_lost(timeout=5.0)
    with pytest.raises(dynalease.LockLostError) as lost:
        lock.update_data({"step": 2})
    assert lost.value.lock_id == "lease"
    assert lost.value.reason and lost.value.code == dynalease.LockLostError.code


def test_key_errors_say_which_key() -> None:
    endpoint = f"memory://{unique('errors')}"
    dynalease.create_table("kv-store", partition_key="pk", sort_key="sk", endpoint_url=endpoint)
    kv = dynalease.KVStore("kv-store", partition="p", endpoint_url=endpoint)
    created = kv.atomic_put("counter", 1)
    with pytest.raises(dynalease.KeyExistsError) as exists:
        kv.atomic_put("counter", 2)
    kv.put("counter", 3)
    with pytest.raises(dynalease.KeyModifiedError) as modified:
        kv.atomic_put("counter", 4, previous=created)
    with pytest.raises(dynalease.KeyNotFoundError) as not_found:
        kv.atomic_delete("gone", previous=dynalease.KVPair("gone", 1, 5))
    for error, code in [(exists, "ERR_DYNALEASE_KEY_EXISTS"), (modified, "ERR_DYNALEASE_KEY_MODIFIED"), (not_found, "ERR_DYNALEASE_KEY_NOT_FOUND")]:
        assert error.value.code == code
    assert (exists.value.key, modified.value.key, not_found.value.key) == ("counter", "counter", "gone")


async def test_async_errors_carry_the_same_attributes() -> None:
    endpoint = f"memory://{unique('errors')}"
    await dynalease.create_table_async("locks", endpoint_url=endpoint)
    locks = dynalease.AsyncLockClient("locks", endpoint_url=endpoint)
    held = await locks.acquire("job-2")
    try:
        await locks.acquire("job-2", timeout=0.05)
    except dynalease.Error as error:
        # Branching on the code, as code catching the base class would.
        assert error.code == dynalease.LockNotAcquiredError.code
        assert isinstance(error, dynalease.LockNotAcquiredError) and error.lock_id == "job-2"
    else:
        pytest.fail("the second acquire should have timed out")
    await held.release()


def test_config_error_is_a_value_error() -> None:
    assert issubclass(dynalease.ConfigError, ValueError)
    with pytest.raises(ValueError):
        dynalease.LockClient("t", lease_duration=-1)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"lease_duration": -1.0}, "lease_duration"),
        ({"lease_duration": math.nan}, "lease_duration"),
        ({"lease_duration": math.inf}, "lease_duration"),
        ({"lease_duration": 0.001}, "lease_duration"),
        ({"heartbeat_period": -0.5}, "heartbeat_period"),
        ({"heartbeat_period": 20.0}, "shorter than lease_duration"),
        ({"partition_key": "guid"}, "reserved"),
        ({"partition_key": "fencingToken"}, "reserved"),
        ({"sort_key": "leaseDurationMs"}, "reserved"),
        ({"sort_key": "id"}, "different attributes"),
        ({"partition_key": ""}, "empty"),
        ({"owner": ""}, "owner"),
    ],
)
def test_bad_lock_options(kwargs: dict, match: str) -> None:
    with pytest.raises(dynalease.ConfigError, match=match):
        dynalease.LockClient("locks", **kwargs)
    with pytest.raises(dynalease.ConfigError, match=match):
        dynalease.AsyncLockClient("locks", **kwargs)


def test_empty_table_name() -> None:
    with pytest.raises(dynalease.ConfigError, match="table"):
        dynalease.LockClient("")
    with pytest.raises(dynalease.ConfigError, match="table"):
        dynalease.KVStore("", partition="p")
    with pytest.raises(dynalease.ConfigError, match="table name"):
        dynalease.create_table("x", endpoint_url="memory://errors")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"partition_key": "value"}, "reserved"),
        ({"sort_key": "version"}, "reserved"),
        ({"sort_key": "expires"}, "reserved"),
        ({"partition_key": "k", "sort_key": "k"}, "different"),
        ({"partition": ""}, "partition"),
    ],
)
def test_bad_kv_options(kwargs: dict, match: str) -> None:
    args = {"partition": "p", **kwargs}
    with pytest.raises(dynalease.ConfigError, match=match):
        dynalease.KVStore("kv-store", **args)
    with pytest.raises(dynalease.ConfigError, match=match):
        dynalease.AsyncKVStore("kv-store", **args)


def test_wrong_argument_types_raise_type_error() -> None:
    with pytest.raises(TypeError):
        dynalease.LockClient(123)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        dynalease.LockClient("t", lease_duration="10")  # type: ignore[arg-type]


def test_bad_durations_in_calls(locks: dynalease.LockClient, kv: dynalease.KVStore) -> None:
    with pytest.raises(dynalease.ConfigError, match="timeout"):
        locks.acquire("x", timeout=-1)
    with pytest.raises(dynalease.ConfigError, match="timeout"):
        locks.acquire("x", timeout=math.nan)
    with pytest.raises(dynalease.ConfigError, match="ttl"):
        kv.put("x", 1, ttl=-5)
    with pytest.raises(dynalease.ConfigError, match="ttl"):
        kv.put("x", 1, ttl=0)
    assert kv.get("x") is None
    lock = locks.acquire("y")
    with pytest.raises(dynalease.ConfigError, match="timeout"):
        lock.wait_lost(timeout=-2)
    lock.release()


class Custom:
    pass


def self_containing() -> list:
    items: list = []
    items.append(items)
    return items


def too_deep() -> dict:
    value: dict = {}
    for _ in range(40):
        value = {"d": value}
    return value


@pytest.mark.parametrize(
    "value, match",
    [
        ({1, 2}, "set"),
        (Custom(), "Custom"),
        ({"ok": [object()]}, "object"),
        ({1: "int key"}, "dict keys must be str"),
        (math.nan, "(?i)nan"),
        ([math.inf], "inf"),
        (10**40 + 1, "38 significant digits"),
        (self_containing(), "nested"),
        (too_deep(), "nested"),
    ],
    ids=["set", "custom", "nested-object", "int-key", "nan", "inf", "huge-int", "cycle", "too-deep"],
)
def test_unstorable_values_write_nothing(kv: dynalease.KVStore, locks: dynalease.LockClient, value: object, match: str) -> None:
    with pytest.raises(dynalease.ConfigError, match=match):
        kv.put("bad", value)
    with pytest.raises(dynalease.ConfigError, match=match):
        kv.atomic_put("bad", value)
    assert kv.get("bad") is None
    lock = locks.acquire("bad-data")
    with pytest.raises(dynalease.ConfigError, match=match):
        lock.update_data(value)
    with pytest.raises(dynalease.ConfigError, match=match):
        lock.release(data=value)
    assert not lock.released
    lock.release()
    assert locks.acquire("bad-data").data is None


def test_bad_keys(kv: dynalease.KVStore) -> None:
    with pytest.raises(dynalease.ConfigError, match="empty"):
        kv.put("", 1)
    with pytest.raises(dynalease.ConfigError, match="1024"):
        kv.get("k" * 1025)
    assert kv.list() == []


def test_missing_table(endpoint: str) -> None:
    missing = unique("missing")
    locks = dynalease.LockClient(missing, endpoint_url=endpoint)
    with pytest.raises(dynalease.TableError, match="create_table"):
        locks.acquire("x", timeout=1.0)
    kv = dynalease.KVStore(missing, partition="p", endpoint_url=endpoint)
    with pytest.raises(dynalease.TableError, match="does not exist"):
        kv.put("k", 1)
    with pytest.raises(dynalease.TableError):
        kv.get("k")


def test_wrong_key_schema_for_locks(kv_table: str, endpoint: str) -> None:
    # A KV table (pk + sk) used as a lock table keyed by "id".
    locks = dynalease.LockClient(kv_table, endpoint_url=endpoint)
    with pytest.raises(dynalease.TableError, match="key schema"):
        locks.acquire("x", timeout=1.0)
    kv = dynalease.KVStore(kv_table, partition="p", endpoint_url=endpoint)
    assert kv.list() == []


@pytest.mark.parametrize("operation", ["put", "get", "list", "atomic_put"])
def test_wrong_key_schema_for_kv(lock_table: str, endpoint: str, operation: str) -> None:
    # A lock table (id only) used as a KV table keyed by pk + sk.
    kv = dynalease.KVStore(lock_table, partition="p", endpoint_url=endpoint)
    calls = {
        "put": lambda: kv.put("k", 1),
        "get": lambda: kv.get("k"),
        "list": lambda: kv.list(),
        "atomic_put": lambda: kv.atomic_put("k", 1),
    }
    with pytest.raises(dynalease.TableError):
        calls[operation]()


def test_create_table_with_a_different_schema(lock_table: str, endpoint: str) -> None:
    dynalease.create_table(lock_table, endpoint_url=endpoint)  # same schema: fine
    with pytest.raises(dynalease.TableError, match="sort key"):
        dynalease.create_table(lock_table, sort_key="sk", endpoint_url=endpoint)
    with pytest.raises(dynalease.ConfigError, match='"S", "N" or "B"'):
        dynalease.create_table(lock_table, partition_key_type="X", endpoint_url=endpoint)


def test_unreachable_endpoint_is_a_transport_error(lock_table: str) -> None:
    locks = dynalease.LockClient(lock_table, endpoint_url="http://127.0.0.1:9")
    with pytest.raises(dynalease.TransportError):
        locks.try_acquire("x")


def test_core_logs_reach_python_logging(caplog: pytest.LogCaptureFixture, locks: dynalease.LockClient) -> None:
    caplog.set_level(logging.DEBUG, logger="dynalease")
    dynalease.reset_log_cache()
    lock = locks.acquire("logged")
    lock.release()
    names = {record.name for record in caplog.records}
    assert any(name == "dynalease" or name.startswith("dynalease.") for name in names), names
    messages = " ".join(record.getMessage() for record in caplog.records if record.name.startswith("dynalease"))
    assert "acquired" in messages and "released" in messages
