# Hand-written stubs of the extension module (checked by `python -m mypy.stubtest dynalease`).
from typing import Any, Awaitable, Callable, ClassVar, List, Optional, Tuple, Union, final

from typing_extensions import Self, disjoint_base

__all__ = [
    "AsyncKVStore",
    "AsyncLock",
    "AsyncLockClient",
    "ConfigError",
    "Error",
    "KVPair",
    "KVStore",
    "KeyExistsError",
    "KeyModifiedError",
    "KeyNotFoundError",
    "Lock",
    "LockClient",
    "LockLostError",
    "LockNotAcquiredError",
    "OutcomeUnknownError",
    "TableError",
    "TransportError",
    "__version__",
    "create_table",
    "create_table_async",
    "reset_log_cache",
    "_KVStoreBase",
    "_LockBase",
    "_LockClientBase",
    "_quiesce",
]

__version__: str

_Key = Union[str, int, bytes]
_LockId = Union[_Key, Tuple[_Key, _Key]]
#: What the KV store and lock data hold (tuples are stored as lists).
_Value = Any

class Error(Exception):
    """Base class of every dynalease error."""

    #: The family's stable code, e.g. "ERR_DYNALEASE_LOCK_LOST" (a class attribute).
    code: ClassVar[str]

class ConfigError(Error, ValueError):
    """An argument or option is invalid; nothing was sent to DynamoDB."""

    #: The option at fault (e.g. "lease_duration"), when the error is about one; else None.
    option: Optional[str]

class LockNotAcquiredError(Error):
    """The lock stayed held by another client until the timeout."""

    #: The lock id, as you passed it.
    lock_id: _LockId
    reason: str

class LockLostError(Error):
    """The lock is no longer held: its lease ran out or another client took it over."""

    lock_id: _LockId
    reason: str

class KeyExistsError(Error):
    """atomic_put(previous=None) found the key already present."""

    key: str

class KeyModifiedError(Error):
    """The key changed since `previous` was read."""

    key: str

class KeyNotFoundError(Error):
    """The key does not exist (or has expired)."""

    key: str

class TableError(Error):
    """The table is missing, not ACTIVE, or its key schema does not fit."""

class TransportError(Error):
    """DynamoDB could not be reached or refused the request."""

class OutcomeUnknownError(TransportError):
    """A write got no answer and could not be resolved: it may or may not have been applied,
    and may still land. Read the current state before retrying. Never raised for a write that
    certainly did not happen."""

@disjoint_base
class _LockClientBase:
    def __new__(
        cls,
        table: str,
        partition_key: str = "id",
        sort_key: Optional[str] = None,
        lease_duration: float = 10.0,
        heartbeat_period: Optional[float] = None,
        fail_closed: bool = False,
        owner: Optional[str] = None,
        trust_local_time: bool = False,
        endpoint_url: Optional[str] = None,
        region: Optional[str] = None,
        call_timeout: Optional[float] = None,
        poll_interval: Optional[float] = None,
        max_retries: Optional[int] = None,
        max_poll_interval: Optional[float] = None,
    ) -> Self: ...
    @property
    def table(self) -> str: ...
    @property
    def partition_key(self) -> str: ...
    @property
    def sort_key(self) -> Optional[str]: ...
    @property
    def lease_duration(self) -> Optional[float]: ...
    @property
    def heartbeat_period(self) -> Optional[float]: ...
    @property
    def fail_closed(self) -> bool: ...
    @property
    def owner(self) -> str: ...
    @property
    def endpoint_url(self) -> Optional[str]: ...
    @property
    def region(self) -> Optional[str]: ...
    @property
    def call_timeout(self) -> float: ...
    @property
    def poll_interval(self) -> float: ...
    @property
    def max_poll_interval(self) -> float: ...
    @property
    def max_retries(self) -> int: ...

class LockClient(_LockClientBase):
    """Acquires lease locks (blocking calls; they release the GIL and honour Ctrl-C)."""

    def acquire(self, lock_id: _LockId, timeout: Optional[float] = None) -> Lock: ...
    def try_acquire(self, lock_id: _LockId) -> Optional[Lock]: ...

class AsyncLockClient(_LockClientBase):
    """Acquires lease locks with asyncio."""

    def acquire(self, lock_id: _LockId, timeout: Optional[float] = None) -> Awaitable[AsyncLock]: ...
    def try_acquire(self, lock_id: _LockId) -> Awaitable[Optional[AsyncLock]]: ...

@disjoint_base
class _LockBase:
    @property
    def id(self) -> _LockId: ...
    @property
    def fencing_token(self) -> Optional[int]: ...
    @property
    def data(self) -> _Value: ...
    @property
    def lost(self) -> bool: ...
    @property
    def lost_reason(self) -> Optional[str]: ...
    @property
    def released(self) -> bool: ...
    def check(self) -> None: ...
    def on_lost(self, callback: Callable[[str], object]) -> None: ...

@final
class Lock(_LockBase):
    """A held lock (from LockClient)."""

    def release(self, data: _Value = None) -> None: ...
    def update_data(self, data: _Value) -> None: ...
    def wait_lost(self, timeout: Optional[float] = None) -> bool: ...

@final
class AsyncLock(_LockBase):
    """A held lock (from AsyncLockClient)."""

    def release(self, data: _Value = None) -> Awaitable[None]: ...
    def update_data(self, data: _Value) -> Awaitable[None]: ...
    def wait_lost(self, timeout: Optional[float] = None) -> Awaitable[bool]: ...

@final
class KVPair:
    """A key, its value and the version a compare-and-swap checks."""

    def __new__(cls, key: str, value: _Value, version: int, expires: Optional[int] = None) -> Self: ...
    @property
    def key(self) -> str: ...
    @property
    def value(self) -> _Value: ...
    @property
    def version(self) -> int: ...
    @property
    def expires(self) -> Optional[int]: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...
    def __reduce__(self) -> Tuple[Any, Tuple[Any, ...]]: ...

_AnyLock = Union[Lock, AsyncLock]

@disjoint_base
class _KVStoreBase:
    def __new__(
        cls,
        table: str,
        partition: str,
        partition_key: str = "pk",
        sort_key: str = "sk",
        endpoint_url: Optional[str] = None,
        region: Optional[str] = None,
        call_timeout: Optional[float] = None,
        max_retries: Optional[int] = None,
    ) -> Self: ...
    @property
    def table(self) -> str: ...
    @property
    def partition(self) -> str: ...
    @property
    def call_timeout(self) -> float: ...
    @property
    def max_retries(self) -> int: ...

@final
class KVStore(_KVStoreBase):
    """A key/value store with compare-and-swap (blocking calls)."""

    def put(self, key: str, value: _Value, ttl: Optional[float] = None, lock: Optional[_AnyLock] = None) -> KVPair: ...
    def get(self, key: str, consistent: bool = True) -> Optional[KVPair]: ...
    def list(self, prefix: str = "", consistent: bool = True) -> List[KVPair]: ...
    def exists(self, key: str) -> bool: ...
    def delete(self, key: str, lock: Optional[_AnyLock] = None) -> bool: ...
    def atomic_put(
        self,
        key: str,
        value: _Value,
        previous: Optional[KVPair] = None,
        ttl: Optional[float] = None,
        lock: Optional[_AnyLock] = None,
    ) -> KVPair: ...
    def atomic_delete(self, key: str, previous: KVPair, lock: Optional[_AnyLock] = None) -> None: ...

@final
class AsyncKVStore(_KVStoreBase):
    """A key/value store with compare-and-swap for asyncio."""

    def put(
        self, key: str, value: _Value, ttl: Optional[float] = None, lock: Optional[_AnyLock] = None
    ) -> Awaitable[KVPair]: ...
    def get(self, key: str, consistent: bool = True) -> Awaitable[Optional[KVPair]]: ...
    def list(self, prefix: str = "", consistent: bool = True) -> Awaitable[List[KVPair]]: ...
    def exists(self, key: str) -> Awaitable[bool]: ...
    def delete(self, key: str, lock: Optional[_AnyLock] = None) -> Awaitable[bool]: ...
    def atomic_put(
        self,
        key: str,
        value: _Value,
        previous: Optional[KVPair] = None,
        ttl: Optional[float] = None,
        lock: Optional[_AnyLock] = None,
    ) -> Awaitable[KVPair]: ...
    def atomic_delete(self, key: str, previous: KVPair, lock: Optional[_AnyLock] = None) -> Awaitable[None]: ...

def create_table(
    table: str,
    partition_key: str = "id",
    sort_key: Optional[str] = None,
    endpoint_url: Optional[str] = None,
    region: Optional[str] = None,
    partition_key_type: str = "S",
    sort_key_type: str = "S",
    call_timeout: Optional[float] = None,
    max_retries: Optional[int] = None,
) -> None: ...
def create_table_async(
    table: str,
    partition_key: str = "id",
    sort_key: Optional[str] = None,
    endpoint_url: Optional[str] = None,
    region: Optional[str] = None,
    partition_key_type: str = "S",
    sort_key_type: str = "S",
    call_timeout: Optional[float] = None,
    max_retries: Optional[int] = None,
) -> Awaitable[None]: ...
def reset_log_cache() -> None: ...
def _quiesce() -> None: ...
