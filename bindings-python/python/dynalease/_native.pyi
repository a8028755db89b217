# Hand-written stubs of the extension module (checked by `python -m mypy.stubtest dynalease`).
from typing import Any, Awaitable, Callable, ClassVar, List, Optional, Tuple, Union, final

from typing_extensions import Self, disjoint_base

__all__ = [
    "AsyncElection",
    "AsyncKVStore",
    "AsyncLeaderWatch",
    "AsyncLock",
    "AsyncLockClient",
    "AsyncSemaphore",
    "ConfigError",
    "Election",
    "Error",
    "KVPair",
    "KVStore",
    "KeyExistsError",
    "KeyModifiedError",
    "KeyNotFoundError",
    "Leader",
    "LeaderWatch",
    "Lock",
    "LockClient",
    "LockLostError",
    "LockNotAcquiredError",
    "OutcomeUnknownError",
    "PermitHolder",
    "Semaphore",
    "TableError",
    "TransportError",
    "__version__",
    "create_table",
    "create_table_async",
    "reset_log_cache",
    "_ElectionBase",
    "_KVStoreBase",
    "_LeaderWatchBase",
    "_LockBase",
    "_LockClientBase",
    "_SemaphoreBase",
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
    def resume(self, handle: str) -> Lock: ...
    def acquire_within(
        self, lock_id: _LockId, remaining: float, timeout: Optional[float] = 0.0, margin: float = 1.0
    ) -> Lock: ...

class AsyncLockClient(_LockClientBase):
    """Acquires lease locks with asyncio."""

    def acquire(self, lock_id: _LockId, timeout: Optional[float] = None) -> Awaitable[AsyncLock]: ...
    def try_acquire(self, lock_id: _LockId) -> Awaitable[Optional[AsyncLock]]: ...
    def resume(self, handle: str) -> Awaitable[AsyncLock]: ...
    def acquire_within(
        self, lock_id: _LockId, remaining: float, timeout: Optional[float] = 0.0, margin: float = 1.0
    ) -> Awaitable[AsyncLock]: ...

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
    @property
    def status(self) -> str: ...
    @property
    def handle(self) -> str: ...
    def check(self) -> None: ...
    def on_lost(self, callback: Callable[[str], object]) -> None: ...

@final
class Lock(_LockBase):
    """A held lock (from LockClient)."""

    def release(self, data: _Value = None) -> None: ...
    def update_data(self, data: _Value) -> None: ...
    def wait_lost(self, timeout: Optional[float] = None) -> bool: ...
    def detach(self) -> str: ...
    def renew(self) -> None: ...

@final
class AsyncLock(_LockBase):
    """A held lock (from AsyncLockClient)."""

    def release(self, data: _Value = None) -> Awaitable[None]: ...
    def update_data(self, data: _Value) -> Awaitable[None]: ...
    def wait_lost(self, timeout: Optional[float] = None) -> Awaitable[bool]: ...
    def detach(self) -> Awaitable[str]: ...
    def renew(self) -> Awaitable[None]: ...

@disjoint_base
class _ElectionBase:
    def __new__(cls, client: _LockClientBase, name: _LockId) -> Self: ...
    @property
    def name(self) -> _LockId: ...

class Election(_ElectionBase):
    """Leader election on one lock id (blocking calls)."""

    def campaign(self, data: _Value = None, timeout: Optional[float] = None) -> Lock: ...
    def leader(self) -> Optional[Leader]: ...

class AsyncElection(_ElectionBase):
    """Leader election on one lock id, for asyncio."""

    def campaign(self, data: _Value = None, timeout: Optional[float] = None) -> Awaitable[AsyncLock]: ...
    def leader(self) -> Awaitable[Optional[Leader]]: ...

@final
class Leader:
    """Who leads an election: owner, term (the term lock's fencing token) and data."""

    def __new__(cls, owner: str, term: int, data: _Value = None) -> Self: ...
    @property
    def owner(self) -> str: ...
    @property
    def term(self) -> int: ...
    @property
    def data(self) -> _Value: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...
    def __reduce__(self) -> Tuple[Any, Tuple[Any, ...]]: ...

@disjoint_base
class _LeaderWatchBase:
    @property
    def interval(self) -> Optional[float]: ...

@final
class LeaderWatch(_LeaderWatchBase):
    """Yields the leader (or None), then each change."""

    def __new__(cls, election: _ElectionBase, interval: Optional[float] = None) -> Self: ...
    def __iter__(self) -> Self: ...
    def __next__(self) -> Optional[Leader]: ...

@final
class AsyncLeaderWatch(_LeaderWatchBase):
    """Yields the leader (or None), then each change, as an async iterator."""

    def __new__(cls, election: _ElectionBase, interval: Optional[float] = None) -> Self: ...
    def __aiter__(self) -> Self: ...
    def __anext__(self) -> Awaitable[Optional[Leader]]: ...

@disjoint_base
class _SemaphoreBase:
    def __new__(cls, client: _LockClientBase, name: _LockId, permits: int) -> Self: ...
    @property
    def name(self) -> _LockId: ...
    @property
    def permits(self) -> int: ...

class Semaphore(_SemaphoreBase):
    """A counting semaphore (blocking calls)."""

    def acquire(self, timeout: Optional[float] = None) -> Lock: ...
    def try_acquire(self) -> Optional[Lock]: ...
    def holders(self) -> List[PermitHolder]: ...

class AsyncSemaphore(_SemaphoreBase):
    """A counting semaphore, for asyncio."""

    def acquire(self, timeout: Optional[float] = None) -> Awaitable[AsyncLock]: ...
    def try_acquire(self) -> Awaitable[Optional[AsyncLock]]: ...
    def holders(self) -> Awaitable[List[PermitHolder]]: ...

@final
class PermitHolder:
    """Who holds one permit of a semaphore."""

    def __new__(
        cls, permit: int, owner: str, fencing_token: Optional[int] = None, data: _Value = None
    ) -> Self: ...
    @property
    def permit(self) -> int: ...
    @property
    def owner(self) -> str: ...
    @property
    def fencing_token(self) -> Optional[int]: ...
    @property
    def data(self) -> _Value: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...
    def __reduce__(self) -> Tuple[Any, Tuple[Any, ...]]: ...

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
