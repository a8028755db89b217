"""dynalease: distributed lease locks and a compare-and-swap key/value store on Amazon DynamoDB.

Locks::

    import dynalease

    locks = dynalease.LockClient("locks")          # lease 10 s, heartbeat every 10/3 s
    with locks.lock("nightly-report", timeout=30.0) as lock:
        do_work(fencing_token=lock.fencing_token)  # LockLostError on exit if the lease was lost

Key/value store with compare-and-swap::

    kv = dynalease.KVStore("kv-store", partition="agents")
    pair = kv.atomic_put("agents/1", {"state": "idle"})            # create
    kv.atomic_put("agents/1", {"state": "busy"}, previous=pair)    # KeyModifiedError if changed

``AsyncLockClient`` and ``AsyncKVStore`` are the asyncio forms (``async with locks.lock(...)``).
``endpoint_url="memory://NAME"`` uses an in-process table (tests, local development). Log
records go to the ``logging`` logger ``dynalease``.

Every error is a ``dynalease.Error``; ``ConfigError`` (invalid arguments, also a ``ValueError``),
``LockNotAcquiredError``, ``LockLostError``, ``KeyExistsError``, ``KeyModifiedError``,
``KeyNotFoundError``, ``TableError`` and ``TransportError`` say which family, and their messages
say what to do next. ``OutcomeUnknownError`` (a ``TransportError``) means a write got no answer
and could not be resolved: it may or may not have been applied, so read the current state before
retrying it. Arguments of the wrong Python type (e.g. a str for a duration) raise ``TypeError``
as usual. Every family has a stable ``code`` (``LockLostError.code == "ERR_DYNALEASE_LOCK_LOST"``,
also on instances); lock errors carry ``lock_id`` and ``reason``, key errors ``key``, and a
``ConfigError`` about one option names it in ``option``.

Every client takes ``call_timeout=`` (seconds per DynamoDB call) and ``max_retries=`` (repeats
of a failed call when that is safe); lock clients also take ``poll_interval=`` (the longest
pause, in seconds, between reads while waiting for a held lock).
"""

from __future__ import annotations

import atexit
from types import TracebackType
from typing import Generic, Optional, Tuple, Type, TypeVar, Union

from . import _native
from ._native import (
    AsyncKVStore,
    AsyncLock,
    ConfigError,
    Error,
    KeyExistsError,
    KeyModifiedError,
    KeyNotFoundError,
    KVPair,
    KVStore,
    Lock,
    LockLostError,
    LockNotAcquiredError,
    OutcomeUnknownError,
    TableError,
    TransportError,
    __version__,
    create_table,
    create_table_async,
    reset_log_cache,
)

__all__ = [
    "AsyncKVStore",
    "AsyncLock",
    "AsyncLockClient",
    "AsyncLockContext",
    "ConfigError",
    "Error",
    "KVPair",
    "KVStore",
    "KeyExistsError",
    "KeyModifiedError",
    "KeyNotFoundError",
    "Lock",
    "LockClient",
    "LockContext",
    "LockId",
    "LockLostError",
    "LockNotAcquiredError",
    "OutcomeUnknownError",
    "TableError",
    "TransportError",
    "__version__",
    "create_table",
    "create_table_async",
    "reset_log_cache",
]

# Before the interpreter finalizes, let the runtime's tasks finish touching Python objects.
atexit.register(_native._quiesce)

#: A lock id: str, int or bytes, or a ``(partition, sort)`` tuple for a table with a sort key.
LockId = Union[str, int, bytes, Tuple[Union[str, int, bytes], Union[str, int, bytes]]]


_Client = TypeVar("_Client", "LockClient", "AsyncLockClient")
_Held = TypeVar("_Held", Lock, AsyncLock)


class _LockContextBase(Generic[_Client, _Held]):
    """What ``LockContext`` and ``AsyncLockContext`` share: everything but the waiting."""

    def __init__(self, client: _Client, lock_id: LockId, timeout: Optional[float]) -> None:
        self._client: _Client = client
        self._lock_id = lock_id
        self._timeout = timeout
        self._lock: Optional[_Held] = None

    def _leave(self, block_raised: bool) -> Tuple[Optional[_Held], Optional[BaseException]]:
        """The lock to release on exit (None if there is none), and the loss to report after.

        The loss is read before the release, so the error describes the lock as the block left
        it; none is reported over the block's own exception.
        """
        lock, self._lock = self._lock, None
        if lock is None or block_raised or not lock.lost:
            return lock, None
        try:
            lock.check()
        except LockLostError as lost:
            return lock, lost
        return lock, None

    @staticmethod
    def _report(block_raised: bool, lost: Optional[BaseException], release_failed: Optional[Error]) -> None:
        """Raises what leaving the block must raise once the release was attempted: the block's
        own exception, or the loss found before, takes precedence over a failed release."""
        if release_failed is not None and not block_raised and lost is None:
            raise release_failed
        if lost is not None:
            raise lost


def _release_failure(lock: Lock) -> Optional[Error]:
    try:
        lock.release()
    except Error as error:
        return error
    return None


async def _async_release_failure(lock: AsyncLock) -> Optional[Error]:
    try:
        await lock.release()
    except Error as error:
        return error
    return None


_ExcType = Optional[Type[BaseException]]


class LockContext(_LockContextBase["LockClient", Lock]):
    """``with client.lock(lock_id, timeout=...) as lock:`` acquires on entry and releases on exit.

    If the lease was lost while the block ran, exiting raises ``LockLostError`` (after an attempt
    to release). An exception raised by the block itself is never replaced or swallowed.
    """

    def __enter__(self) -> Lock:
        self._lock = self._client.acquire(self._lock_id, timeout=self._timeout)
        return self._lock

    def __exit__(self, exc_type: _ExcType, exc: Optional[BaseException], tb: Optional[TracebackType]) -> None:
        lock, lost = self._leave(exc_type is not None)
        if lock is not None:
            self._report(exc_type is not None, lost, _release_failure(lock))


class AsyncLockContext(_LockContextBase["AsyncLockClient", AsyncLock]):
    """``async with client.lock(lock_id, timeout=...) as lock:``; see ``LockContext``."""

    async def __aenter__(self) -> AsyncLock:
        self._lock = await self._client.acquire(self._lock_id, timeout=self._timeout)
        return self._lock

    async def __aexit__(self, exc_type: _ExcType, exc: Optional[BaseException], tb: Optional[TracebackType]) -> None:
        lock, lost = self._leave(exc_type is not None)
        if lock is not None:
            self._report(exc_type is not None, lost, await _async_release_failure(lock))


class LockClient(_native.LockClient):
    __doc__ = _native.LockClient.__doc__

    def lock(self, lock_id: LockId, timeout: Optional[float] = None) -> LockContext:
        """A context manager that acquires ``lock_id`` (waiting up to ``timeout`` seconds; None:
        as long as it takes) and releases it on exit. Exiting raises ``LockLostError`` if the
        lease was lost during the block.
        """
        return LockContext(self, lock_id, timeout)


class AsyncLockClient(_native.AsyncLockClient):
    __doc__ = _native.AsyncLockClient.__doc__

    def lock(self, lock_id: LockId, timeout: Optional[float] = None) -> AsyncLockContext:
        """An async context manager: ``async with client.lock(lock_id) as lock:``; see
        ``LockClient.lock``.
        """
        return AsyncLockContext(self, lock_id, timeout)
