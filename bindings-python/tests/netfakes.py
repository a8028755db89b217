"""Local TCP endpoints with known behaviour, for tests of what the client does when DynamoDB does
not answer, refuses connections, or is read too often.

Each counts the requests it saw by their ``X-Amz-Target`` header (one per DynamoDB call), so a
test can assert how many attempts a call made instead of how long it took.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Callable, List, Optional

TARGET = b"x-amz-target: dynamodb_20120810."


def _requests(data: bytes, operation: Optional[str]) -> int:
    wanted = TARGET + (operation.lower().encode() if operation else b"")
    return data.lower().count(wanted)


class _Server:
    """Accepts connections on a loopback port and hands each to ``serve`` on its own thread."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._lock = threading.Lock()
        self._received: List[bytearray] = []
        self._sockets: List[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            received = bytearray()
            with self._lock:
                if self._closed:
                    conn.close()
                    return
                self._sockets.append(conn)
                self._received.append(received)
            threading.Thread(target=self.serve, args=(conn, received), daemon=True).start()

    def serve(self, conn: socket.socket, received: bytearray) -> None:
        raise NotImplementedError

    def _record(self, received: bytearray, data: bytes) -> None:
        with self._lock:
            received.extend(data)

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self._received)

    def requests(self, operation: Optional[str] = None) -> int:
        """DynamoDB calls received so far (of one operation, e.g. "GetItem", if given)."""
        with self._lock:
            return sum(_requests(bytes(data), operation) for data in self._received)

    def settled_requests(self, operation: Optional[str] = None, expected: Optional[int] = None) -> int:
        """``requests()``, after giving the server threads a moment to read what the client sent
        (a client reports its error as soon as it gives up, possibly before our thread ran)."""
        deadline = time.monotonic() + 5.0
        while expected is not None and self.requests(operation) < expected and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.requests(operation)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            sockets, self._sockets = self._sockets, []
        self._listener.close()
        for conn in sockets:
            try:
                conn.close()
            except OSError:
                pass


class SilentServer(_Server):
    """Accepts connections and reads requests, but never answers: every call times out."""

    def serve(self, conn: socket.socket, received: bytearray) -> None:
        while True:
            try:
                data = conn.recv(65536)
            except OSError:
                return
            if not data:
                return
            self._record(received, data)


class CountingProxy(_Server):
    """Forwards every connection to ``upstream`` (host, port) unchanged, counting requests."""

    def __init__(self, upstream_endpoint: str) -> None:
        host, port = upstream_endpoint.split("://", 1)[1].rstrip("/").rsplit(":", 1)
        self._upstream = (host, int(port))
        super().__init__()

    def serve(self, conn: socket.socket, received: bytearray) -> None:
        try:
            upstream = socket.create_connection(self._upstream)
        except OSError:
            conn.close()
            return
        with self._lock:
            self._sockets.append(upstream)

        def pump(source: socket.socket, sink: socket.socket, record: Callable[[bytes], None]) -> None:
            while True:
                try:
                    data = source.recv(65536)
                    if not data:
                        break
                    record(data)
                    sink.sendall(data)
                except OSError:
                    break
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        threading.Thread(target=pump, args=(upstream, conn, lambda _: None), daemon=True).start()
        pump(conn, upstream, lambda data: self._record(received, data))


class RefusingPort:
    """A loopback port that refuses connections: bound (so nothing else can take it) but not
    listening, so a connect is answered with a reset and nothing is ever sent."""

    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self.endpoint = f"http://127.0.0.1:{self._socket.getsockname()[1]}"

    def close(self) -> None:
        self._socket.close()
