"""A loopback HTTP/1.1 proxy between DynamoDB clients and DynamoDB Local that injects faults.

Every DynamoDB call is one `POST /` with a JSON body and an `X-Amz-Target` header, so the proxy
parses each request (operation, table, and for lock items which lock operation it is), decides by
its rules whether to inject a fault, and otherwise forwards it on the client's own upstream
connection. Faults:

    delay          wait `delay` seconds, then forward
    drop           close the client connection without forwarding (never reaches DynamoDB)
    reset          forward the request, then reset the client connection (RST) at once, before
                   any response: the client cannot know whether DynamoDB applied it
    lose_response  forward the request, read DynamoDB's whole response (the write is committed),
                   then close the client connection without sending it
    throttle       answer HTTP 400 ThrottlingException without forwarding (as DynamoDB does when
                   a table or account is over its request rate)
    land_late      hold the request without forwarding until the client gave up on it (closed the
                   connection at its own per-call deadline, or was reset by the proxy after
                   `give_up` seconds), then forward it `delay` seconds later: the write lands after
                   the client saw a timeout or reset and moved on (resent it, read the item back,
                   or reported the outcome unknown); its answer goes nowhere
    answer_late    forward at once (the write lands), then hold DynamoDB's answer until the client
                   gave up (as above) and never deliver it: the client times out on a write that
                   landed

The two late faults stand for a client's per-call deadline: `give_up=None` waits for the client
to close the connection itself (the native transport's attempt deadline, `call_timeout`, 5 s by
default), `give_up=S` resets it after S seconds (a shorter deadline, or a client such as the AWS
SDK for JavaScript that has none by default). The core sees a timeout and a reset alike: an
unknown outcome.

Bounded: loopback only, at most `max_connections` client connections, request and response
sizes capped, every read and every hold with a timeout. `quiesce()` stops injecting and waits
until no held request is left to land, so a test can check the table once nothing is in flight.
Runs on its own asyncio loop in a daemon thread so that synchronous tests can drive it; `rules`
can be changed while it runs.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
import struct
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import urlsplit

FAULTS = ("delay", "drop", "reset", "lose_response", "throttle", "land_late", "answer_late")
#: Faults that let the client give up first (see give_up).
LATE_FAULTS = ("land_late", "answer_late")
#: Writes that are not lock writes: in the fleet, the KV store's (fenced or not).
WRITE_OPERATIONS = ("PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem")
MAX_HEAD = 64 * 1024
MAX_BODY = 16 * 1024 * 1024

THROTTLING_BODY = json.dumps(
    {
        "__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException",
        "message": "Rate of requests exceeds the allowed throughput (injected by the dynalease fault proxy).",
    }
).encode()


@dataclass
class Request:
    """What the rules can match on."""

    operation: str  # e.g. "UpdateItem", from X-Amz-Target
    tables: Tuple[str, ...]
    lock_op: Optional[str]  # "acquire" | "heartbeat" | "release" for lock item writes
    body: Dict[str, Any]


def classify_lock_op(operation: str, body: Dict[str, Any]) -> Optional[str]:
    """Which lock operation a request is. The native clients write with UpdateItem, recognised
    by its placeholders (core/src/lock/item.rs): acquire increments the token (`:one`);
    heartbeat renews the lease (`:lease`); release sets the released lease (`:released`)
    without `:one`. The dlc-style clients (the drop-in and dynamodb-lock-client) write whole
    items with PutItem, see classify_dlc_op."""
    if operation in ("PutItem", "DeleteItem"):
        return classify_dlc_op(operation, body)
    if operation != "UpdateItem":
        return None
    names = set(body.get("ExpressionAttributeValues", {}))
    if ":one" in names:
        return "acquire"
    if ":newGuid" in names and ":lease" in names:
        return "heartbeat"
    if ":newGuid" in names and ":released" in names:
        return "release"
    return None


def classify_dlc_op(operation: str, body: Dict[str, Any]) -> Optional[str]:
    """dynamodb-lock-client's lock writes (core/src/lock/dlc.rs): every one carries a `guid`.
    acquire puts on `attribute_not_exists` (a new lock, or a takeover of the guid it waited
    out); heartbeat and release put on `guid = :guid`, the heartbeat with a new guid, the
    fail-open release with the same one; a fail-closed release deletes on `guid = :guid`."""
    condition = str(body.get("ConditionExpression", ""))
    values = body.get("ExpressionAttributeValues") or {}
    if operation == "DeleteItem":
        return "release" if ":guid" in values else None
    item = body.get("Item") or {}
    if "guid" not in item:
        return None
    if "attribute_not_exists" in condition:
        return "acquire"
    if ":guid" in values:
        return "release" if item["guid"] == values[":guid"] else "heartbeat"
    return None


def parse_request(head: bytes, body: bytes) -> Request:
    target = ""
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"x-amz-target":
            target = value.strip().decode("latin-1")
    operation = target.rpartition(".")[2]
    try:
        parsed = json.loads(body) if body else {}
    except ValueError:
        parsed = {}
    if not isinstance(parsed, dict):
        parsed = {}
    tables: List[str] = []
    if "TableName" in parsed:
        tables.append(str(parsed["TableName"]))
    for item in parsed.get("TransactItems", []) or []:
        for action in item.values():
            if isinstance(action, dict) and "TableName" in action:
                tables.append(str(action["TableName"]))
    return Request(operation, tuple(tables), classify_lock_op(operation, parsed), parsed)


def op_label(request: Request) -> str:
    """What a count is kept under: the lock operation (acquire, heartbeat, release) for lock
    writes, `kv-write` for every other write (the fleet's KV increments: fenced
    TransactWriteItems, or the dlc-style workers' plain compare-and-swaps), else the DynamoDB
    operation (GetItem, ...)."""
    if request.lock_op is not None:
        return request.lock_op
    if request.operation in WRITE_OPERATIONS:
        return "kv-write"
    return request.operation


@dataclass
class Rule:
    """Injects `fault` into requests that match every given criterion, with `probability`, at
    most `times` times (None: no limit)."""

    fault: str
    operation: Optional[str] = None
    table: Optional[str] = None
    lock_op: Optional[str] = None
    match: Optional[Callable[[Request], bool]] = None
    probability: float = 1.0
    times: Optional[int] = None
    delay: float = 0.0
    #: When set, the delay (for land_late: the wait after the client gave up) is uniform in
    #: [delay, delay_max] per injection.
    delay_max: Optional[float] = None
    #: land_late / answer_late: reset the client after this many seconds if it has not given up
    #: by itself; None waits for its own deadline (bounded by the proxy's io_timeout).
    give_up: Optional[float] = None
    injected: int = 0
    #: time.monotonic() of each injection, to see the backoff between retried attempts.
    injected_at: List[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.fault not in FAULTS:
            raise ValueError(f"unknown fault {self.fault!r}; one of {', '.join(FAULTS)}")
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"probability {self.probability} is not in [0, 1]")
        if self.delay < 0 or (self.delay_max is not None and self.delay_max < self.delay):
            raise ValueError("delay must be >= 0 and delay_max >= delay")
        if self.give_up is not None and self.give_up < 0:
            raise ValueError("give_up must be >= 0")

    def pick_delay(self, rng: random.Random) -> float:
        return self.delay if self.delay_max is None else rng.uniform(self.delay, self.delay_max)

    def applies(self, request: Request, rng: random.Random) -> bool:
        if self.times is not None and self.injected >= self.times:
            return False
        if self.operation is not None and request.operation != self.operation:
            return False
        if self.table is not None and self.table not in request.tables:
            return False
        if self.lock_op is not None and request.lock_op != self.lock_op:
            return False
        if self.match is not None and not self.match(request):
            return False
        return rng.random() < self.probability


class _Closed(Exception):
    """The peer closed the connection (or sent something unusable)."""


async def _read_message(reader: asyncio.StreamReader, timeout: float, until_eof_ok: bool) -> Tuple[bytes, bytes]:
    """One HTTP/1.1 message: (head including the blank line, body as sent on the wire)."""
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError) as error:
        raise _Closed() from error
    if len(head) > MAX_HEAD:
        raise _Closed()
    length: Optional[int] = None
    chunked = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    try:
        if chunked:
            body = b""
            while True:
                size_line = await asyncio.wait_for(reader.readuntil(b"\r\n"), timeout)
                size = int(size_line.split(b";")[0].strip(), 16)
                chunk = await asyncio.wait_for(reader.readexactly(size + 2), timeout)
                body += size_line + chunk
                if len(body) > MAX_BODY:
                    raise _Closed()
                if size == 0:
                    return head, body
        if length is not None:
            if length > MAX_BODY:
                raise _Closed()
            return head, await asyncio.wait_for(reader.readexactly(length), timeout)
        if until_eof_ok:  # a response without a length ends with the connection
            return head, await asyncio.wait_for(reader.read(MAX_BODY), timeout)
        return head, b""
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError) as error:
        raise _Closed() from error


def _late_result(head: bytes, body: bytes) -> str:
    status = head.split(b" ", 2)[1] if head.count(b" ") >= 2 else b""
    if status == b"200":
        return "applied"
    if b"ConditionalCheckFailed" in body or b"TransactionCanceled" in body:
        return "refused"
    return "error"


def _reset(writer: asyncio.StreamWriter) -> None:
    """Closes with a TCP RST (SO_LINGER 0), as a crashed middlebox or peer would."""
    sock = writer.get_extra_info("socket")
    try:
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    writer.transport.abort()


class FaultProxy:
    def __init__(self, upstream: str, max_connections: int = 128, io_timeout: float = 30.0, seed: Optional[int] = None) -> None:
        parts = urlsplit(upstream)
        if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"the fault proxy only forwards to loopback, not {upstream}")
        self.upstream_host = parts.hostname
        self.upstream_port = parts.port or 80
        self.io_timeout = io_timeout
        self.rules: List[Rule] = []
        self.injected: Counter = Counter()  # fault -> count
        self.injected_by_op: Counter = Counter()  # (fault, op_label) -> count
        self.requests: Counter = Counter()  # op_label -> count
        #: What became of the requests held by land_late: (op_label, "applied" | "refused" |
        #: "error" | "not sent") -> count; "refused" is a failed condition (or a cancelled
        #: transaction), so the write landed late but changed nothing.
        self.late_results: Counter = Counter()
        self._held = 0  # late faults not yet finished (requests still to land, answers held)
        #: (time.monotonic() when the proxy read it, op_label) of the latest requests: a write
        #: cannot land before the proxy read it, so tests time leases from here.
        self.seen: "deque[Tuple[float, str]]" = deque(maxlen=10000)
        self._mutex = threading.Lock()
        self._rng = random.Random(seed)
        self._slots = max_connections
        self._loop = asyncio.new_event_loop()
        self._server: Optional[asyncio.base_events.Server] = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fault-proxy", daemon=True)
        self.port = 0

    # -- control (from any thread) --------------------------------------------------------

    def start(self) -> "FaultProxy":
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the fault proxy did not start")
        return self

    def stop(self) -> None:
        """Closes the listener and every connection, then ends the loop's thread."""
        if not self._thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        current = asyncio.current_task()
        tasks = [task for task in asyncio.all_tasks() if task is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add(self, rule: Rule) -> Rule:
        with self._mutex:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._mutex:
            self.rules.clear()

    def last_seen(self, label: str) -> Optional[float]:
        """When the proxy last read a request of this kind (time.monotonic()), if ever."""
        with self._mutex:
            return next((at for at, seen in reversed(self.seen) if seen == label), None)

    @property
    def held(self) -> int:
        """Late faults still in progress: requests waiting to land, or answers held."""
        with self._mutex:
            return self._held

    def quiesce(self, timeout: float = 60.0) -> bool:
        """Stops injecting and waits until every held request has landed (or failed to): after
        this, nothing a fault held back can still change the table. False on timeout."""
        self.clear()
        deadline = time.monotonic() + timeout
        while self.held and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.held == 0

    # -- the proxy ------------------------------------------------------------------------

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._semaphore = asyncio.Semaphore(self._slots)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0, limit=MAX_HEAD))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._loop.close()

    def _choose(self, request: Request) -> Tuple[Optional[Rule], float]:
        """The rule to apply (None: forward untouched) and its delay, drawn here so that one
        seeded generator decides everything."""
        label = op_label(request)
        with self._mutex:
            self.requests[label] += 1
            self.seen.append((time.monotonic(), label))
            for rule in self.rules:
                if rule.applies(request, self._rng):
                    rule.injected += 1
                    rule.injected_at.append(time.monotonic())
                    self.injected[rule.fault] += 1
                    self.injected_by_op[(rule.fault, label)] += 1
                    if rule.fault in LATE_FAULTS:
                        self._held += 1
                    return rule, rule.pick_delay(self._rng)
        return None, 0.0

    def _late_done(self) -> None:
        with self._mutex:
            self._held -= 1

    async def _until_client_gives_up(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, give_up: Optional[float]) -> None:
        """Returns once the client stopped waiting for this request's answer: it closed the
        connection (its deadline passed), or `give_up` seconds went by and the proxy reset it."""
        try:
            # A waiting HTTP/1.1 client sends nothing more on this connection; EOF (or
            # anything at all) means it gave up on the request.
            await asyncio.wait_for(reader.read(1), self.io_timeout if give_up is None else give_up)
            writer.transport.abort()
        except (asyncio.TimeoutError, ConnectionError, OSError):
            _reset(writer)

    async def _land_late(self, head: bytes, body: bytes, label: str, delay: float) -> None:
        """Sends a held request on a fresh connection and notes what it did."""
        await asyncio.sleep(delay)
        result = "not sent"
        connection: Optional[Tuple[asyncio.StreamReader, asyncio.StreamWriter]] = None
        try:
            connection = await asyncio.wait_for(
                asyncio.open_connection(self.upstream_host, self.upstream_port, limit=MAX_HEAD), self.io_timeout
            )
            connection[1].write(head + body)
            await connection[1].drain()
            result = "error"
            response_head, response_body = await _read_message(connection[0], self.io_timeout, until_eof_ok=True)
            result = _late_result(response_head, response_body)
        except (_Closed, asyncio.TimeoutError, ConnectionError, OSError):
            pass
        finally:
            if connection is not None:
                connection[1].close()
            with self._mutex:
                self.late_results[(label, result)] += 1

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        if self._semaphore.locked():  # over the bound: refuse rather than queue
            _reset(client_writer)
            return
        async with self._semaphore:
            upstream: Optional[Tuple[asyncio.StreamReader, asyncio.StreamWriter]] = None
            late = False
            try:
                while True:
                    head, body = await _read_message(client_reader, self.io_timeout * 10, until_eof_ok=False)
                    request = parse_request(head, body)
                    rule, delay = self._choose(request)
                    fault = rule.fault if rule else None
                    late = fault in LATE_FAULTS  # counted as held until this connection ends
                    if fault == "delay":
                        await asyncio.sleep(delay)
                    elif fault == "land_late":
                        await self._until_client_gives_up(client_reader, client_writer, rule.give_up)  # type: ignore[union-attr]
                        await self._land_late(head, body, op_label(request), delay)
                        return
                    elif fault == "drop":
                        _reset(client_writer)
                        return
                    elif fault == "throttle":
                        client_writer.write(self._throttle_response())
                        await client_writer.drain()
                        continue
                    if upstream is None:
                        upstream = await asyncio.wait_for(
                            asyncio.open_connection(self.upstream_host, self.upstream_port, limit=MAX_HEAD), self.io_timeout
                        )
                    upstream[1].write(head + body)
                    await upstream[1].drain()
                    if fault == "reset":
                        _reset(client_writer)
                        # Let DynamoDB finish the request; its answer goes nowhere.
                        await _read_message(upstream[0], self.io_timeout, until_eof_ok=True)
                        return
                    if fault == "answer_late":
                        await _read_message(upstream[0], self.io_timeout, until_eof_ok=True)
                        await self._until_client_gives_up(client_reader, client_writer, rule.give_up)  # type: ignore[union-attr]
                        return
                    response_head, response_body = await _read_message(upstream[0], self.io_timeout, until_eof_ok=True)
                    if fault == "lose_response":
                        client_writer.close()
                        return
                    client_writer.write(response_head + response_body)
                    await client_writer.drain()
                    if b"connection: close" in response_head.lower():
                        upstream[1].close()
                        upstream = None
            except (_Closed, asyncio.TimeoutError, ConnectionError, OSError, asyncio.CancelledError):
                pass
            finally:
                if late:
                    self._late_done()
                if upstream is not None:
                    upstream[1].close()
                if not client_writer.is_closing():
                    client_writer.close()

    @staticmethod
    def _throttle_response() -> bytes:
        # The AWS SDKs read the error code from the x-amzn-ErrorType header, else from the
        # body's __type (the part after '#'); DynamoDB sends both.
        head = (
            "HTTP/1.1 400 Bad Request\r\n"
            "Content-Type: application/x-amz-json-1.0\r\n"
            "x-amzn-ErrorType: ThrottlingException\r\n"
            "x-amzn-RequestId: DYNALEASEFAULTPROXY0000000000000000000000000000000\r\n"
            f"Content-Length: {len(THROTTLING_BODY)}\r\n"
            "\r\n"
        )
        return head.encode() + THROTTLING_BODY
