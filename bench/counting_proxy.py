"""A loopback HTTP/1.1 proxy between a client and DynamoDB Local that counts requests per
DynamoDB operation and the capacity units each one consumed.

Every AWS SDK call is one `POST /` with a JSON body and an `X-Amz-Target` header naming the
operation. The proxy asks DynamoDB Local for the units (it adds `"ReturnConsumedCapacity":
"TOTAL"` to bodies that lack it and fixes Content-Length) and reads `ConsumedCapacity` from the
answer. The client's signature no longer matches the body, which DynamoDB Local does not check
(it accepts any signature; it does need an Authorization header, which stays). Answers reach the
client byte for byte: SDK v2 checks their x-amz-crc32 header, and the extra ConsumedCapacity
member is part of every SDK's output shape.

DynamoDB Local reports units only for calls that succeed. A conditional write whose condition
fails is counted as the service bills it: the size of the item in 1 KB steps, one unit for the
small items of this benchmark (AWS, "DynamoDB read and write operations", capacity unit
consumption for write operations). A cancelled transaction is counted apart, unpriced.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import re
import sys
import threading
import time
from collections import deque

READS = {"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"}
WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
# Control-plane calls (CreateTable, DescribeTable, ...) refuse the parameter.
METERED = READS | WRITES
TOTAL = b'"ReturnConsumedCapacity":"TOTAL"'
NONE_ASKED = re.compile(rb'"ReturnConsumedCapacity"\s*:\s*"NONE"')


class ProxyError(Exception):
    pass


async def read_message(reader: asyncio.StreamReader, is_response: bool):
    """One HTTP/1.1 message: (start line, [(name, value)], raw head+body bytes, body). None at a
    clean end of stream."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as error:
        if error.partial:
            raise ProxyError("stream ended inside a message head") from None
        return None
    lines = head[:-4].split(b"\r\n")
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers.append((name.strip().lower(), value.strip()))
    fields = dict(headers)
    raw = bytearray(head)
    body = b""
    if b"chunked" in fields.get(b"transfer-encoding", b"").lower():
        parts = []
        while True:
            size_line = await reader.readuntil(b"\r\n")
            raw += size_line
            size = int(size_line.split(b";")[0], 16)
            chunk = await reader.readexactly(size + 2)
            raw += chunk
            if size == 0:
                # Trailers, if any, end with an empty line; the zero chunk's CRLF was read above.
                while chunk != b"\r\n":
                    chunk = await reader.readuntil(b"\r\n")
                    raw += chunk
                break
            parts.append(chunk[:-2])
        body = b"".join(parts)
    elif b"content-length" in fields:
        body = await reader.readexactly(int(fields[b"content-length"]))
        raw += body
    elif is_response and not lines[0].split(b" ")[1].startswith((b"1", b"204", b"304")):
        body = await reader.read()  # delimited by the end of the connection
        raw += body
    return lines[0], headers, bytes(raw), body


def with_capacity_request(start: bytes, headers: list, body: bytes) -> bytes:
    """The request with ReturnConsumedCapacity set, re-framed with a Content-Length."""
    if NONE_ASKED.search(body):
        body = NONE_ASKED.sub(TOTAL, body, count=1)
    elif b'"ReturnConsumedCapacity"' not in body:
        brace = body.index(b"{") + 1
        separator = b"" if body[brace:].lstrip().startswith(b"}") else b","
        body = body[:brace] + TOTAL + separator + body[brace:]
    kept = [(n, v) for n, v in headers if n not in (b"content-length", b"transfer-encoding", b"expect")]
    kept.append((b"content-length", str(len(body)).encode()))
    return start + b"\r\n" + b"".join(n + b": " + v + b"\r\n" for n, v in kept) + b"\r\n" + body


class CountingProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self._lock = threading.Lock()
        self._events: list[tuple] = []
        self.problems: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self.port = 0
        threading.Thread(target=self._run, daemon=True).start()
        if not self._ready.wait(10):
            raise RuntimeError("counting proxy did not start")

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def requests(self) -> int:
        with self._lock:
            return len(self._events)

    def reset(self) -> None:
        with self._lock:
            self._events = []

    def events(self) -> list[tuple]:
        """(monotonic ns at send, operation, read units, write units, outcome) per answered
        request, outcome one of ok, condition_failed, cancelled, error."""
        with self._lock:
            return list(self._events)

    def stats(self) -> dict:
        return summarize(self.events())

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    def _problem(self, text: str) -> None:
        with self._lock:
            if len(self.problems) < 20:
                self.problems.append(text)
        print(f"counting_proxy: {text}", file=sys.stderr, flush=True)

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        # SDKs do not pipeline, but answers come back in request order either way.
        pending: deque = deque()

        async def client_to_server() -> None:
            while (message := await read_message(client_reader, False)) is not None:
                start, headers, raw, body = message
                target = dict(headers).get(b"x-amz-target", b"").decode()
                operation = target.rpartition(".")[2] or "?"
                if operation in METERED and body.lstrip().startswith(b"{"):
                    raw = with_capacity_request(start, headers, body)
                pending.append((time.monotonic_ns(), operation, len(body)))
                upstream_writer.write(raw)
                await upstream_writer.drain()
            upstream_writer.close()

        async def server_to_client() -> None:
            while (message := await read_message(upstream_reader, True)) is not None:
                start, headers, raw, body = message
                status = int(start.split(b" ")[1])
                if status >= 200 and pending:
                    self._record(pending.popleft(), status, dict(headers), body)
                client_writer.write(raw)
                await client_writer.drain()
            client_writer.close()

        try:
            await asyncio.gather(client_to_server(), server_to_client())
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            pass
        except (ProxyError, ValueError) as error:
            self._problem(f"unparsable HTTP message ({error}); connection dropped")
        finally:
            client_writer.close()
            upstream_writer.close()

    def _record(self, request: tuple, status: int, headers: dict, body: bytes) -> None:
        sent_ns, operation, _ = request
        if b"gzip" in headers.get(b"content-encoding", b""):
            body = gzip.decompress(body)
        try:
            answer = json.loads(body) if body else {}
        except ValueError:
            answer = {}
        units = 0.0
        outcome = "ok"
        if status == 200:
            consumed = answer.get("ConsumedCapacity")
            for part in consumed if isinstance(consumed, list) else [consumed] if consumed else []:
                units += float(part.get("CapacityUnits", 0))
            if operation in METERED and consumed is None:
                self._problem(f"{operation} answered without ConsumedCapacity")
        else:
            kind = str(answer.get("__type", "")).rpartition("#")[2]
            if kind == "ConditionalCheckFailedException":
                # Billed as a write of the (small) item; DynamoDB Local reports nothing.
                outcome, units = "condition_failed", 1.0
            elif kind == "TransactionCanceledException":
                outcome = "cancelled"
            else:
                outcome = "error"
        reads = units if operation in READS else 0.0
        writes = units if operation in WRITES else 0.0
        with self._lock:
            self._events.append((sent_ns, operation, reads, writes, outcome))


def summarize(events: list, start_ns: int | None = None, end_ns: int | None = None) -> dict:
    """Totals per operation over the events sent in [start_ns, end_ns)."""
    ops: dict = {}
    total = {"requests": 0, "read_units": 0.0, "write_units": 0.0}
    for sent_ns, operation, reads, writes, outcome in events:
        if (start_ns is not None and sent_ns < start_ns) or (end_ns is not None and sent_ns >= end_ns):
            continue
        entry = ops.setdefault(operation, {"requests": 0, "read_units": 0.0, "write_units": 0.0, "condition_failed": 0, "cancelled": 0, "error": 0})
        entry["requests"] += 1
        entry["read_units"] += reads
        entry["write_units"] += writes
        if outcome != "ok":
            entry[outcome] += 1
        total["requests"] += 1
        total["read_units"] += reads
        total["write_units"] += writes
    return {**total, "ops": ops}


def main() -> None:
    """`python counting_proxy.py UPSTREAM_PORT`: serves proxies for another process (the Node
    benchmark). Prints the first proxy's port, then answers each line on stdin, PORT naming a
    proxy (the first if left out): `open` starts another proxy and prints its port; `count
    [PORT]` prints the requests counted so far; `reset [PORT]` zeroes them and prints 0;
    `events [PORT]` prints the events (see CountingProxy.events) as one JSON line. Exits when
    stdin closes."""
    if len(sys.argv) != 2 or not sys.argv[1].isdigit():
        sys.exit("usage: counting_proxy.py UPSTREAM_PORT")
    upstream = int(sys.argv[1])
    first = CountingProxy(upstream)
    proxies = {first.port: first}
    print(first.port, flush=True)
    for line in sys.stdin:
        if not line.split():
            continue
        command, *rest = line.split()
        proxy = proxies.get(int(rest[0])) if rest and rest[0].isdigit() else first if not rest else None
        if proxy is None:
            print(f"error: no proxy on port {rest[0]}", flush=True)
        elif command == "open":
            opened = CountingProxy(upstream)
            proxies[opened.port] = opened
            print(opened.port, flush=True)
        elif command == "reset":
            proxy.reset()
            print(0, flush=True)
        elif command == "count":
            print(proxy.requests, flush=True)
        elif command == "events":
            print(json.dumps({"events": proxy.events(), "problems": proxy.problems}), flush=True)
        else:
            print(f"error: unknown command {command!r} (open, count, reset, events)", flush=True)


if __name__ == "__main__":
    main()
