"""The stubs match the built module, type-check real usage, and every public name is documented."""

from __future__ import annotations

import inspect
import subprocess
import sys
import textwrap
from pathlib import Path

import dynalease
from dynalease import _native


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_stubtest(tmp_path: Path) -> None:
    result = run("-m", "mypy.stubtest", "dynalease", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_usage_type_checks(tmp_path: Path) -> None:
    sample = tmp_path / "usage.py"
    sample.write_text(
        textwrap.dedent(
            """
            import asyncio
            from typing import List, Optional
            import dynalease

            locks = dynalease.LockClient("locks", lease_duration=10.0, heartbeat_period=3.0)
            with locks.lock("job-1", timeout=30.0) as lock:
                token: Optional[int] = lock.fencing_token
                lock.update_data({"step": 1})
            maybe: Optional[dynalease.Lock] = locks.try_acquire(("tenant", 7))
            kv = dynalease.KVStore("kv", partition="agents")
            pair: dynalease.KVPair = kv.atomic_put("a", [1, 2], previous=None, ttl=5.0, lock=maybe)
            pairs: List[dynalease.KVPair] = kv.list("a")
            version: int = pair.version
            tuned = dynalease.LockClient("locks", call_timeout=2.0, poll_interval=0.1, max_retries=3)
            settings: float = tuned.call_timeout + tuned.poll_interval + tuned.max_retries
            tuned_kv = dynalease.KVStore("kv", "agents", call_timeout=2.0, max_retries=0)
            dynalease.create_table("kv", partition_key="pk", sort_key="sk", call_timeout=2.0, max_retries=1)
            try:
                tuned_kv.put("a", settings)
            except dynalease.OutcomeUnknownError as unknown:
                transport: dynalease.TransportError = unknown

            handle: str = locks.acquire("job-2").detach()
            resumed: dynalease.Lock = locks.resume(handle)
            resumed.renew()
            status: str = resumed.status + resumed.handle
            election = locks.election("scheduler")
            term: dynalease.Lock = election.campaign(data={"addr": "10.0.0.7"}, timeout=None)
            with election.lead(data=None, timeout=1.0) as leading:
                leader: Optional[dynalease.Leader] = election.leader()
            for seen in election.watch(interval=0.5):
                if seen is not None:
                    owner: str = seen.owner
                    number: int = seen.term
            sem = locks.semaphore("exports", permits=3)
            permit: dynalease.Lock = sem.acquire(timeout=None)
            maybe_permit: Optional[dynalease.Lock] = sem.try_acquire()
            with sem.hold(timeout=30.0) as held_permit:
                holders: List[dynalease.PermitHolder] = sem.holders()
                first_permit: int = holders[0].permit
            count: int = sem.permits

            class Context:
                def get_remaining_time_in_millis(self) -> int:
                    return 1000

            with locks.lambda_lock("order/7", Context(), timeout=0.0, margin=1.0) as bounded:
                bounded_token: Optional[int] = bounded.fencing_token
            within: dynalease.Lock = locks.acquire_within("job", remaining=3.0, margin=1.0)

            async def main() -> None:
                client = dynalease.AsyncLockClient("locks")
                async with client.lock("job") as held:
                    lost: bool = await held.wait_lost(timeout=0.1)
                    moved: str = await held.detach()
                    taken_up: dynalease.AsyncLock = await client.resume(moved)
                    await taken_up.renew()
                vote = client.election("scheduler")
                async with vote.lead(data={"addr": "x"}) as term_lock:
                    now: Optional[dynalease.Leader] = await vote.leader()
                async for change in vote.watch():
                    pass
                asem = client.semaphore("exports", permits=3)
                async with asem.hold(timeout=1.0) as apermit:
                    aholders: List[dynalease.PermitHolder] = await asem.holders()
                none_or_permit: Optional[dynalease.AsyncLock] = await asem.try_acquire()
                async with client.lambda_lock("order/8", Context()) as abounded:
                    pass
                store = dynalease.AsyncKVStore("kv", "ns")
                got: Optional[dynalease.KVPair] = await store.get("a")
                await dynalease.create_table_async("kv", partition_key="pk", sort_key="sk")

            try:
                asyncio.run(main())
            except dynalease.ConfigError as error:
                reveal: ValueError = error
            """
        )
    )
    result = run("-m", "mypy", "--strict", "--no-incremental", str(sample), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_public_name_has_a_docstring() -> None:
    missing = []
    for name in dynalease.__all__:
        obj = getattr(dynalease, name)
        if name in ("__version__", "LockId"):
            continue
        if not inspect.getdoc(obj):
            missing.append(name)
        if inspect.isclass(obj) and not issubclass(obj, BaseException):
            # The class and its native base (LockClient extends _native.LockClient).
            for cls in obj.__mro__:
                if not cls.__module__.startswith("dynalease"):
                    continue
                for attr, member in vars(cls).items():
                    if not attr.startswith("_") and not inspect.getdoc(member):
                        missing.append(f"{cls.__qualname__}.{attr}")
    assert not missing, f"undocumented: {missing}"


def test_native_all_matches_the_module() -> None:
    stub = (Path(_native.__file__).parent / "_native.pyi").read_text()
    for name in dir(_native):
        if not name.startswith("_") or name == "__version__":
            assert f'"{name}"' in stub, f"{name} missing from _native.pyi __all__"
    assert dynalease.__version__ == _native.__version__


def test_sync_and_async_classes_share_real_base_classes() -> None:
    endpoint = "memory://bases"
    dynalease.create_table("locks", endpoint_url=endpoint)
    locks = dynalease.LockClient("locks", endpoint_url=endpoint)
    assert isinstance(locks, _native._LockClientBase)
    assert isinstance(dynalease.AsyncLockClient("locks", endpoint_url=endpoint), _native._LockClientBase)
    lock = locks.acquire("shared-base")
    assert isinstance(lock, _native._LockBase)
    lock.release()
    assert issubclass(dynalease.AsyncLock, _native._LockBase)
    assert isinstance(dynalease.KVStore("kv-store", "p", endpoint_url=endpoint), _native._KVStoreBase)
    assert isinstance(dynalease.AsyncKVStore("kv-store", "p", endpoint_url=endpoint), _native._KVStoreBase)
    assert isinstance(locks.election("e"), _native._ElectionBase) and issubclass(dynalease.AsyncElection, _native._ElectionBase)
    assert isinstance(locks.semaphore("s", permits=2), _native._SemaphoreBase)
    assert issubclass(dynalease.AsyncSemaphore, _native._SemaphoreBase)
    assert isinstance(locks.election("e").watch(), _native._LeaderWatchBase)
    assert issubclass(dynalease.AsyncLeaderWatch, _native._LeaderWatchBase)


PAIRS = [
    (_native.LockClient, _native.AsyncLockClient),
    (_native.Lock, _native.AsyncLock),
    (_native.KVStore, _native.AsyncKVStore),
    (_native.Election, _native.AsyncElection),
    (_native.Semaphore, _native.AsyncSemaphore),
]


def test_each_awaitable_method_has_its_blocking_twins_signature_and_docs() -> None:
    twins = [(getattr(sync, name), getattr(async_, name)) for sync, async_ in PAIRS for name in vars(async_) if not name.startswith("_")]
    twins.append((dynalease.create_table, dynalease.create_table_async))
    assert len(twins) == 4 + 5 + 7 + 2 + 3 + 1
    for blocking, awaitable in twins:
        assert blocking.__doc__ and awaitable.__doc__
        assert inspect.signature(awaitable) == inspect.signature(blocking), awaitable
        assert awaitable.__doc__.startswith("Awaitable form of "), awaitable
        assert awaitable.__doc__.endswith(blocking.__doc__), awaitable
    assert inspect.signature(dynalease.AsyncLockClient) == inspect.signature(dynalease.LockClient)
    assert inspect.signature(dynalease.AsyncKVStore) == inspect.signature(dynalease.KVStore)


def test_the_python_layers_twins_take_the_same_arguments() -> None:
    """The context managers and factories of the public classes, sync against async: the same
    parameters and defaults (only the returned types differ)."""
    pairs = [
        (dynalease.LockClient, dynalease.AsyncLockClient, ["lock", "election", "semaphore", "lambda_lock"]),
        (dynalease.Election, dynalease.AsyncElection, ["lead", "watch"]),
        (dynalease.Semaphore, dynalease.AsyncSemaphore, ["hold"]),
    ]
    for sync, async_, names in pairs:
        for name in names:
            blocking, awaitable = inspect.signature(getattr(sync, name)), inspect.signature(getattr(async_, name))
            assert list(awaitable.parameters.values()) == list(blocking.parameters.values()), name
    assert inspect.signature(dynalease.LeaderWatch) == inspect.signature(dynalease.AsyncLeaderWatch)
