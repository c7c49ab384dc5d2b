"""Binding the socket and running uvicorn: in the foreground (``serve``) or on a thread (the window).

The socket is bound before anything slow happens, so a port already in use is a
one-sentence error, not a stack trace after the model loaded. Any address but a
loopback one needs an API key.
"""
from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import signal
import socket
import threading
from typing import Callable, Optional

import uvicorn

from common.errors import UserError
from common.settings import DEFAULT_SERVE_PORT

DEFAULT_PORT = DEFAULT_SERVE_PORT   # 7453: none of the peers' ports (common.settings says which)


class ServerConfigError(UserError):
    """The server cannot start as asked (address, port, key)."""


def is_loopback(host: str) -> bool:
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ServerConfigError(f"The address {host!r} cannot be used: {exc.strerror}.") from None
    return all(ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback for info in infos)


def bind(host: str, port: int, api_key: Optional[str]) -> socket.socket:
    if not (0 <= port <= 65535):
        raise ServerConfigError(f"The port must be between 0 and 65535; it is {port}.")
    if not is_loopback(host) and not api_key:
        raise ServerConfigError(f"Serving on {host} makes the model reachable from other computers: "
                                "give an --api-key (clients send it as 'Authorization: Bearer <key>').")
    info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(info[0], socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(info[4])
    except OSError as exc:
        sock.close()
        raise ServerConfigError(f"Cannot listen on {host}:{port}: {exc.strerror or exc}. "
                                "Is another server using that port? Choose another with --port.") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket, host: str) -> str:
    port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


class Server:
    """uvicorn over a bound socket; ``run()`` in the foreground, or ``start()`` on a thread."""

    def __init__(self, app, sock: socket.socket, *, on_ready: Optional[Callable[[], None]] = None,
                 on_stop: Optional[Callable[[], None]] = None):
        self.sock = sock
        self.port = sock.getsockname()[1]
        self._on_ready = on_ready
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on",
                                timeout_graceful_shutdown=3, server_header=False)
        self._server = _Uvicorn(config)
        self._server.on_stop = on_stop
        self._on_stop = on_stop
        self._thread: Optional[threading.Thread] = None
        self.ready = threading.Event()
        self.error: Optional[BaseException] = None

    async def _serve(self) -> None:
        task = asyncio.ensure_future(self._server.serve(sockets=[self.sock]))
        while not self._server.started and not task.done():
            await asyncio.sleep(0.01)
        if self._server.started:
            self.ready.set()
            if self._on_ready is not None:
                self._on_ready()
        await task

    def run(self) -> None:
        """Serve until Ctrl+C or SIGTERM (uvicorn's own handlers, then a graceful stop)."""
        try:
            asyncio.run(self._serve())
        finally:
            self.ready.set()
            self.sock.close()

    def start(self) -> None:
        def target():
            try:
                self.run()
            except BaseException as exc:  # reported to the owner through .error
                self.error = exc
                self.ready.set()

        self._thread = threading.Thread(target=target, name="llamadesk-api", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10) -> None:
        self._server.should_exit = True
        if self._on_stop is not None:
            self._on_stop()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None


class _Uvicorn(uvicorn.Server):
    """uvicorn's server, ending on Ctrl+C / SIGTERM without re-raising the signal afterwards
    (uvicorn re-raises it, which would end the process with a signal instead of exit code 0)."""

    on_stop: Optional[Callable[[], None]] = None

    @contextlib.contextmanager
    def capture_signals(self):
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        original = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)

    def handle_exit(self, sig, frame) -> None:
        super().handle_exit(sig, frame)
        if self.on_stop is not None:
            self.on_stop()        # end the replies in flight now, so the graceful stop is quick
