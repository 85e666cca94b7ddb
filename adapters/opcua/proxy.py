"""A loopback TCP proxy for fault tests: forwards 127.0.0.1:listen <-> upstream and can `cut()` every connection
(closed at once, new ones refused while cut), `blackhole()` them (bytes held silently, nothing closed, like a
network partition with TCP retransmission) and `restore()`.

Runs on its own event loop in a background thread so that tests can drive it from any loop or none.
"""

from __future__ import annotations

import asyncio
import threading


class TcpProxy:
    """`with TcpProxy(upstream_port) as p:` -> clients connect to `p.port`; `p.mode` is pass, cut or blackhole."""

    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1", port: int = 0) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = port
        self.mode = "pass"
        self.connections = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._resume: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="tcp-proxy", daemon=True)

    # -- thread and loop ------------------------------------------------------------------------------------
    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        self._resume = asyncio.Event()
        self._resume.set()
        self._server = loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", self.port))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        loop.run_forever()
        self._server.close()
        for w in list(self._writers):
            w.transport.abort()
        tasks = asyncio.all_tasks(loop)
        for t in tasks:
            t.cancel()
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        loop.close()

    def start(self) -> TcpProxy:
        self._thread.start()
        self._ready.wait(5)
        return self

    def close(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- faults ---------------------------------------------------------------------------------------------
    def _call(self, fn) -> None:
        assert self._loop is not None
        done = threading.Event()

        def run() -> None:
            fn()
            done.set()

        self._loop.call_soon_threadsafe(run)
        done.wait(5)

    def cut(self) -> None:
        """Close every open connection now (FIN/RST to both sides); refuse new ones until restore()."""

        def do() -> None:
            self.mode = "cut"
            for w in list(self._writers):
                w.transport.abort()
            self._writers.clear()

        self._call(do)

    def blackhole(self) -> None:
        """Hold every byte in both directions without closing anything; new connections hang too."""

        def do() -> None:
            self.mode = "blackhole"
            assert self._resume is not None
            self._resume.clear()

        self._call(do)

    def restore(self) -> None:
        """Back to forwarding (held bytes are delivered, as TCP would after a partition heals)."""

        def do() -> None:
            self.mode = "pass"
            assert self._resume is not None
            self._resume.set()

        self._call(do)

    # -- forwarding -----------------------------------------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode == "cut":
            writer.transport.abort()
            return
        try:
            ureader, uwriter = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        self.connections += 1
        self._writers.update((writer, uwriter))
        await asyncio.gather(self._pipe(reader, uwriter), self._pipe(ureader, writer), return_exceptions=True)
        for w in (writer, uwriter):
            self._writers.discard(w)
            w.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self._resume is not None
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                if not self._resume.is_set():
                    await self._resume.wait()
                if writer.transport.is_closing():
                    break
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.transport.abort()
