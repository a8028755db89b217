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

Beyond one mutex, on the same lock table::

    handle = lock.detach()                  # hand a held lock to another process...
    lock = locks.resume(handle)             # ...which takes it up (LockLostError if it is gone)

    election = locks.election("scheduler")  # one leader at a time; the term is a fencing token
    with election.lead(data={"addr": "10.0.0.7"}) as lock: ...
    for leader in election.watch(): ...     # None, or Leader(owner, term, data), on each change

    sem = locks.semaphore("exports", permits=3)   # at most 3 holders at once
    with sem.hold(timeout=30.0) as permit: ...

    def handler(event, context):            # AWS Lambda: the lock ends before the invocation
        with locks.lambda_lock("order/7", context, margin=1.0) as lock: ...
"""

from __future__ import annotations

import atexit
import math
from types import TracebackType
from typing import Any, Awaitable, Callable, Generic, Optional, Tuple, Type, TypeVar, Union

from . import _native
from ._native import (
    AsyncKVStore,
    AsyncLeaderWatch,
    AsyncLock,
    ConfigError,
    Error,
    KeyExistsError,
    KeyModifiedError,
    KeyNotFoundError,
    KVPair,
    KVStore,
    Leader,
    LeaderWatch,
    Lock,
    LockLostError,
    LockNotAcquiredError,
    OutcomeUnknownError,
    PermitHolder,
    TableError,
    TransportError,
    __version__,
    create_table,
    create_table_async,
    reset_log_cache,
)

__all__ = [
    "AsyncElection",
    "AsyncKVStore",
    "AsyncLeaderWatch",
    "AsyncLock",
    "AsyncLockClient",
    "AsyncLockContext",
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
    "LockContext",
    "LockId",
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
]

# Before the interpreter finalizes, let the runtime's tasks finish touching Python objects.
atexit.register(_native._quiesce)

#: A lock id: str, int or bytes, or a ``(partition, sort)`` tuple for a table with a sort key.
LockId = Union[str, int, bytes, Tuple[Union[str, int, bytes], Union[str, int, bytes]]]


_Held = TypeVar("_Held", Lock, AsyncLock)


class _LockContextBase(Generic[_Held]):
    """What ``LockContext`` and ``AsyncLockContext`` share: everything but the waiting.

    ``acquire`` makes the lock (or, async, an awaitable of it) on entry: an acquisition, a
    campaign, a permit, a lock bounded by a Lambda invocation.
    """

    def __init__(self, acquire: Callable[[], Any]) -> None:
        self._acquire = acquire
        self._lock: Optional[_Held] = None

    def _leave(self, block_raised: bool) -> Tuple[Optional[_Held], Optional[BaseException]]:
        """The lock to release on exit (None if there is none), and the loss to report after.

        The loss is read before the release, so the error describes the lock as the block left
        it; none is reported over the block's own exception. A lock detached in the block was
        handed to another process on purpose: it is left held, for whoever resumes it.
        """
        lock, self._lock = self._lock, None
        if lock is None or lock.status == "detached":
            return None, None
        if block_raised or not lock.lost:
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


class LockContext(_LockContextBase[Lock]):
    """``with client.lock(lock_id, timeout=...) as lock:`` acquires on entry and releases on exit.

    ``Election.lead()``, ``Semaphore.hold()`` and ``LockClient.lambda_lock()`` return one too.
    If the lock was lost while the block ran, exiting raises ``LockLostError`` (after an attempt
    to release). An exception raised by the block itself is never replaced or swallowed. A lock
    detached in the block is left held for whoever resumes it.
    """

    def __init__(self, client: "LockClient", lock_id: LockId, timeout: Optional[float] = None) -> None:
        super().__init__(lambda: client.acquire(lock_id, timeout=timeout))

    @classmethod
    def _around(cls, acquire: Callable[[], Lock]) -> "LockContext":
        context = cls.__new__(cls)
        _LockContextBase.__init__(context, acquire)
        return context

    def __enter__(self) -> Lock:
        self._lock = self._acquire()
        return self._lock

    def __exit__(self, exc_type: _ExcType, exc: Optional[BaseException], tb: Optional[TracebackType]) -> None:
        lock, lost = self._leave(exc_type is not None)
        if lock is not None:
            self._report(exc_type is not None, lost, _release_failure(lock))


class AsyncLockContext(_LockContextBase[AsyncLock]):
    """``async with client.lock(lock_id, timeout=...) as lock:``; see ``LockContext``."""

    def __init__(self, client: "AsyncLockClient", lock_id: LockId, timeout: Optional[float] = None) -> None:
        super().__init__(lambda: client.acquire(lock_id, timeout=timeout))

    @classmethod
    def _around(cls, acquire: Callable[[], Awaitable[AsyncLock]]) -> "AsyncLockContext":
        context = cls.__new__(cls)
        _LockContextBase.__init__(context, acquire)
        return context

    async def __aenter__(self) -> AsyncLock:
        self._lock = await self._acquire()
        return self._lock

    async def __aexit__(self, exc_type: _ExcType, exc: Optional[BaseException], tb: Optional[TracebackType]) -> None:
        lock, lost = self._leave(exc_type is not None)
        if lock is not None:
            self._report(exc_type is not None, lost, await _async_release_failure(lock))


def _remaining_seconds(context: object) -> float:
    """What is left of a Lambda invocation, in seconds, as its context object says."""
    method = getattr(context, "get_remaining_time_in_millis", None)
    if not callable(method):
        raise TypeError(
            "context must be the Lambda context object (with a get_remaining_time_in_millis() method), "
            f"not {type(context).__name__}"
        )
    millis = method()
    if isinstance(millis, bool) or not isinstance(millis, (int, float)):
        raise TypeError(
            f"context.get_remaining_time_in_millis() must return a number of milliseconds, not {type(millis).__name__}"
        )
    if not math.isfinite(millis):
        error = ConfigError(
            f"context.get_remaining_time_in_millis() returned {millis}; pass the context AWS Lambda gave the handler"
        )
        error.option = None
        raise error
    # Past the end (a stand-in context): nothing is left, and the core says so.
    return max(millis, 0) / 1000


class Election(_native.Election):
    __doc__ = _native.Election.__doc__

    def lead(self, data: Any = None, timeout: Optional[float] = None) -> LockContext:
        """``with election.lead(data=..., timeout=...) as lock:`` campaigns on entry (see
        ``campaign``) and resigns on exit, so a leader that leaves its block, by return or
        exception, never keeps the term. Exiting raises ``LockLostError`` if the term ended
        during the block (its lease ran out): what the block did as leader may have overlapped
        with the next leader.
        """
        return LockContext._around(lambda: self.campaign(data=data, timeout=timeout))

    def watch(self, interval: Optional[float] = None) -> LeaderWatch:
        """``for leader in election.watch(interval=None):`` yields who leads now (a ``Leader``,
        or None when nobody does), then each change, reading every ``interval`` seconds (None:
        the client's max_poll_interval). Watches of one election in a process share their
        reads, so a watch per thread costs what one does.
        """
        return LeaderWatch(self, interval)


class AsyncElection(_native.AsyncElection):
    __doc__ = _native.AsyncElection.__doc__

    def lead(self, data: Any = None, timeout: Optional[float] = None) -> AsyncLockContext:
        """``async with election.lead(data=..., timeout=...) as lock:``; see ``Election.lead``."""
        return AsyncLockContext._around(lambda: self.campaign(data=data, timeout=timeout))

    def watch(self, interval: Optional[float] = None) -> AsyncLeaderWatch:
        """``async for leader in election.watch(interval=None):``; see ``Election.watch``."""
        return AsyncLeaderWatch(self, interval)


class Semaphore(_native.Semaphore):
    __doc__ = _native.Semaphore.__doc__

    def hold(self, timeout: Optional[float] = None) -> LockContext:
        """``with sem.hold(timeout=...) as permit:`` takes a permit on entry (see ``acquire``)
        and gives it back on exit, also when the block raises. Exiting raises
        ``LockLostError`` if the permit was lost during the block.
        """
        return LockContext._around(lambda: self.acquire(timeout=timeout))


class AsyncSemaphore(_native.AsyncSemaphore):
    __doc__ = _native.AsyncSemaphore.__doc__

    def hold(self, timeout: Optional[float] = None) -> AsyncLockContext:
        """``async with sem.hold(timeout=...) as permit:``; see ``Semaphore.hold``."""
        return AsyncLockContext._around(lambda: self.acquire(timeout=timeout))


class LockClient(_native.LockClient):
    __doc__ = _native.LockClient.__doc__

    def lock(self, lock_id: LockId, timeout: Optional[float] = None) -> LockContext:
        """A context manager that acquires ``lock_id`` (waiting up to ``timeout`` seconds; None:
        as long as it takes) and releases it on exit. Exiting raises ``LockLostError`` if the
        lease was lost during the block.
        """
        return LockContext(self, lock_id, timeout)

    def election(self, name: LockId) -> Election:
        """The leader election ``name`` (a lock id of this table; its lock is the term). Raises
        ``ConfigError`` for a fail-closed client: a dead leader's term must end with its lease.
        """
        return Election(self, name)

    def semaphore(self, name: LockId, permits: int) -> Semaphore:
        """The counting semaphore ``name`` with ``permits`` permits (1 to 100). Its permits are
        the locks ``name#0`` to ``name#N-1``, so ``name`` is a str (or a tuple whose sort part
        is). Raises ``ConfigError`` for a fail-closed client: a dead holder's permit must free
        itself.
        """
        return Semaphore(self, name, permits)

    def lambda_lock(self, lock_id: LockId, context: Any, timeout: Optional[float] = 0.0, margin: float = 1.0) -> LockContext:
        """``with locks.lambda_lock(lock_id, context) as lock:`` in an AWS Lambda handler: a
        lock that ends ``margin`` seconds before the invocation would time out (see
        ``acquire_within``; ``context`` is the handler's second argument, asked once for
        ``get_remaining_time_in_millis()`` on entry). There it is marked lost and released, so
        an invocation that times out never leaves the lock held for its lease, and its
        overrunning work is refused by fenced writes.

        Entering waits up to ``timeout`` seconds (0.0: one attempt), and raises
        ``LockNotAcquiredError`` if the lock is busy. Exiting releases it (a lock already let
        go at its end is fine) and, like ``lock()``, raises ``LockLostError`` if the block ran
        past the end. The timer that ends the lock runs on the library's own threads and holds
        no reference to it: it never keeps the process alive, and does nothing once the lock was
        released.
        """
        return LockContext._around(
            lambda: self.acquire_within(lock_id, _remaining_seconds(context), timeout=timeout, margin=margin)
        )


class AsyncLockClient(_native.AsyncLockClient):
    __doc__ = _native.AsyncLockClient.__doc__

    def lock(self, lock_id: LockId, timeout: Optional[float] = None) -> AsyncLockContext:
        """An async context manager: ``async with client.lock(lock_id) as lock:``; see
        ``LockClient.lock``.
        """
        return AsyncLockContext(self, lock_id, timeout)

    def election(self, name: LockId) -> AsyncElection:
        """The leader election ``name``, for asyncio; see ``LockClient.election``."""
        return AsyncElection(self, name)

    def semaphore(self, name: LockId, permits: int) -> AsyncSemaphore:
        """The counting semaphore ``name``, for asyncio; see ``LockClient.semaphore``."""
        return AsyncSemaphore(self, name, permits)

    def lambda_lock(
        self, lock_id: LockId, context: Any, timeout: Optional[float] = 0.0, margin: float = 1.0
    ) -> AsyncLockContext:
        """``async with locks.lambda_lock(lock_id, context) as lock:``; see
        ``LockClient.lambda_lock``.
        """
        return AsyncLockContext._around(
            lambda: self.acquire_within(lock_id, _remaining_seconds(context), timeout=timeout, margin=margin)
        )
