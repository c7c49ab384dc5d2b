"""One window per data folder: a second start brings the first window forward.

The first window listens on a local socket (``QLocalServer``) named after its data
folder; a second start connects to it, asks it to come forward, and exits once it
answers. When nothing answers (no window, or one that hangs) the second start goes
on; it then finds the chats locked if another process holds them, and opens them
read-only with a banner.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

RAISE = b"raise\n"
RAISED = b"ok\n"
ANSWER_TIMEOUT_MS = 2000


def server_name(data_folder: Path) -> str:
    digest = hashlib.sha256(str(Path(data_folder).expanduser().resolve()).encode()).hexdigest()[:16]
    return f"llamadesk-{digest}"


def bring_forward_running(data_folder: Path, timeout_ms: int = ANSWER_TIMEOUT_MS) -> bool:
    """True when a window on this data folder answered and came forward."""
    socket = QLocalSocket()
    socket.connectToServer(server_name(data_folder))
    if not socket.waitForConnected(timeout_ms):
        return False
    try:
        socket.write(RAISE)
        while socket.bytesToWrite() > 0:
            if not socket.waitForBytesWritten(timeout_ms):
                return False
        answer = b""
        while not answer.endswith(b"\n") and socket.waitForReadyRead(timeout_ms):
            answer += bytes(socket.readAll().data())
        return answer == RAISED
    finally:
        socket.abort()


class InstanceServer(QObject):
    """Listens for later starts on the same data folder; emits ``raise_requested`` for each."""

    raise_requested = Signal()
    """Another start asked this window to come forward."""

    def __init__(self, data_folder: Path, parent=None):
        super().__init__(parent)
        self._server = QLocalServer(self)
        self._server.setSocketOptions(QLocalServer.UserAccessOption)
        self._server.newConnection.connect(self._on_server_new_connection)
        self.name = server_name(data_folder)

    def listen(self) -> bool:
        if self._server.listen(self.name):
            return True
        # A socket file left by a window that crashed: nobody answered on it, so take it over.
        QLocalServer.removeServer(self.name)
        return self._server.listen(self.name)

    def close(self) -> None:
        self._server.close()

    def _on_server_new_connection(self) -> None:
        while self._server.hasPendingConnections():
            socket = self._server.nextPendingConnection()
            socket.readyRead.connect(lambda s=socket: self._on_socket_ready_read(s))
            socket.disconnected.connect(socket.deleteLater)

    def _on_socket_ready_read(self, socket: QLocalSocket) -> None:
        if bytes(socket.peek(64).data()).endswith(b"\n"):
            if bytes(socket.readAll().data()).strip() == RAISE.strip():
                self.raise_requested.emit()
                socket.write(RAISED)
                socket.flush()
