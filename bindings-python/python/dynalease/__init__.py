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
as usual.

Every client takes ``call_timeout=`` (seconds per DynamoDB call) and ``max_retries=`` (repeats
of a failed call when that is safe); lock clients also take ``poll_interval=`` (the longest
pause, in seconds, between reads while waiting for a held lock).
"""

from __future__ import annotations

import atexit
from types import TracebackType
from typing import Optional, Tuple, Type, Union

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


def _exit_checks(lock: Union[Lock, AsyncLock], block_raised: bool) -> Optional[BaseException]:
    """What leaving a ``with`` block must raise about the lease, taken before the release.

    Read before the release, so the error describes the lock as the block left it.
    """
    if block_raised or not lock.lost:
        return None
    try:
        lock.check()
    except LockLostError as lost:
        return lost
    return None


class LockContext:
    """``with client.lock(lock_id, timeout=...) as lock:`` acquires on entry and releases on exit.

    If the lease was lost while the block ran, exiting raises ``LockLostError`` (after an attempt
    to release). An exception raised by the block itself is never replaced or swallowed.
    """

    def __init__(self, client: LockClient, lock_id: LockId, timeout: Optional[float]) -> None:
        self._client = client
        self._lock_id = lock_id
        self._timeout = timeout
        self._lock: Optional[Lock] = None

    def __enter__(self) -> Lock:
        self._lock = self._client.acquire(self._lock_id, timeout=self._timeout)
        return self._lock

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        lock, self._lock = self._lock, None
        if lock is None:
            return
        lost = _exit_checks(lock, exc_type is not None)
        try:
            lock.release()
        except Error:
            # The block's own exception, or the loss found above, is the one to report.
            if exc_type is None and lost is None:
                raise
        if lost is not None:
            raise lost


class AsyncLockContext:
    """``async with client.lock(lock_id, timeout=...) as lock:``; see ``LockContext``."""

    def __init__(self, client: AsyncLockClient, lock_id: LockId, timeout: Optional[float]) -> None:
        self._client = client
        self._lock_id = lock_id
        self._timeout = timeout
        self._lock: Optional[AsyncLock] = None

    async def __aenter__(self) -> AsyncLock:
        self._lock = await self._client.acquire(self._lock_id, timeout=self._timeout)
        return self._lock

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        lock, self._lock = self._lock, None
        if lock is None:
            return
        lost = _exit_checks(lock, exc_type is not None)
        try:
            await lock.release()
        except Error:
            if exc_type is None and lost is None:
                raise
        if lost is not None:
            raise lost


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
