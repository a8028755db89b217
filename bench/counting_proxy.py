"""A loopback TCP proxy that counts the HTTP requests passing through it.

Benchmarks point a client at it to count the DynamoDB requests one operation costs. Every AWS
SDK request is one `POST / HTTP/1.1` on a kept-alive connection, so counting request lines in
the client-to-server stream counts requests.
"""

from __future__ import annotations

import asyncio
import threading


class CountingProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.requests = 0
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self.port = 0
        threading.Thread(target=self._run, daemon=True).start()
        if not self._ready.wait(10):
            raise RuntimeError("counting proxy did not start")

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        with self._lock:
            self.requests = 0

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)

        async def client_to_server() -> None:
            pending = b""
            while data := await client_reader.read(65536):
                # A request line can straddle two reads: carry the last 14 bytes (one short of a
                # whole request line, so nothing counted is counted again) into the next scan.
                scan = pending + data
                found = scan.count(b"POST / HTTP/1.1")
                if found:
                    with self._lock:
                        self.requests += found
                pending = scan[-14:]
                upstream_writer.write(data)
                await upstream_writer.drain()
            upstream_writer.close()

        async def server_to_client() -> None:
            while data := await upstream_reader.read(65536):
                client_writer.write(data)
                await client_writer.drain()
            client_writer.close()

        try:
            await asyncio.gather(client_to_server(), server_to_client())
        except (ConnectionError, OSError):
            pass
        finally:
            client_writer.close()
            upstream_writer.close()


def main() -> None:
    """`python counting_proxy.py UPSTREAM_PORT`: serves the proxy for another process (the Node
    benchmark). Prints the proxy's port, then answers each line on stdin: `count` with the
    requests counted so far, `reset` with 0 after zeroing the count. Exits when stdin closes."""
    import sys

    if len(sys.argv) != 2 or not sys.argv[1].isdigit():
        sys.exit("usage: counting_proxy.py UPSTREAM_PORT")
    proxy = CountingProxy(int(sys.argv[1]))
    print(proxy.port, flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "reset":
            proxy.reset()
            print(0, flush=True)
        elif command == "count":
            with proxy._lock:
                print(proxy.requests, flush=True)
        elif command:
            print(f"error: unknown command {command!r} (count, reset)", flush=True)


if __name__ == "__main__":
    main()
