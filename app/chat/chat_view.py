"""The conversation as one QTextBrowser, with a cheap path for the streaming reply.

Finished messages are rendered once when the conversation is shown. The streaming
reply is the last stretch of the document: pieces are buffered and, at most once per
frame, only that stretch is re-rendered (Markdown included) and swapped in place.
"""
from __future__ import annotations

import time
from typing import Optional

from PySide6.QtCore import QTimer, QUrl, Signal
from PySide6.QtGui import QGuiApplication, QTextCursor
from PySide6.QtWidgets import QTextBrowser

from app.chat.markdown import MarkdownRenderer
from app.chat.message_html import MessageView, render_memory_marker, render_message

FRAME_MS = 16
MAX_FRAME_MS = 100


class ChatView(QTextBrowser):
    edit_requested = Signal(str)
    """The user clicked Edit under the user message with this id."""
    regenerate_requested = Signal(str)
    """The user asked for another answer in place of this assistant message."""
    continue_requested = Signal(str)
    """The user asked to continue this interrupted reply."""
    sibling_requested = Signal(str, int)
    """Show the previous (-1) or next (+1) alternative of this message."""
    copied = Signal(str)
    """Text was put on the clipboard (argument: what, e.g. "message" or "code")."""
    frame_rendered = Signal(int)
    """The streaming reply was repainted; argument: pieces shown so far."""

    def __init__(self, theme: str = "light", parent=None):
        super().__init__(parent)
        self.setAccessibleName("Conversation")
        self.setOpenLinks(False)
        self.setReadOnly(True)
        self.anchorClicked.connect(self._on_anchor_clicked)
        self._md = MarkdownRenderer(theme)
        self._messages: list[MessageView] = []
        self._code: dict[str, list[str]] = {}
        self._content: dict[str, str] = {}
        self._memory_start: Optional[int] = None
        self._stream: Optional[MessageView] = None
        self._stream_start = 0
        self._pending: list[str] = []
        self.pieces_shown = 0
        self._frame = QTimer(self)
        self._frame.setInterval(FRAME_MS)
        self._frame.timeout.connect(self._on_frame_timeout)

    # whole conversation --------------------------------------------------
    def set_theme(self, theme: str) -> None:
        if theme != self._md.theme:
            self._md = MarkdownRenderer(theme)
            self._rebuild()

    def set_messages(self, messages: list[MessageView], memory_start: Optional[int] = None) -> None:
        """Show these messages; ``memory_start`` is the index of the first one the model still sees."""
        self._messages = list(messages)
        self._memory_start = memory_start
        self._rebuild()

    def set_memory_start(self, memory_start: Optional[int]) -> None:
        if memory_start != self._memory_start and self._stream is None:
            self._memory_start = memory_start
            self._rebuild()

    @property
    def messages(self) -> list[MessageView]:
        return list(self._messages)

    def _rebuild(self) -> None:
        parts = []
        self._code.clear()
        self._content.clear()
        for i, msg in enumerate(self._messages):
            if self._memory_start and i == self._memory_start:
                parts.append(render_memory_marker(i, self._md.theme))
            r = render_message(msg, self._md)
            self._code[msg.id] = r.code_blocks
            self._content[msg.id] = msg.content
            parts.append(r.html)
        self.setHtml("".join(parts))
        self._stream = None
        self.verticalScrollBar().setValue(self.verticalScrollBar().maximum())

    # streaming ------------------------------------------------------------
    def begin_stream(self, msg: MessageView) -> None:
        """Append a reply that is about to stream (it may already hold text, when continuing)."""
        self._flush_pending()
        self._stream = msg
        self._pending = []
        self.pieces_shown = 0
        self._messages.append(msg)
        cursor = QTextCursor(self.document())
        cursor.movePosition(QTextCursor.End)
        self._stream_start = cursor.position()
        self._render_stream()
        self._frame.setInterval(FRAME_MS)
        self._frame.start()

    def push(self, piece: str) -> None:
        """Queue a piece of the streaming reply; it appears at the next frame."""
        if self._stream is not None:
            self._pending.append(piece)

    def end_stream(self, final: MessageView) -> None:
        """Render the finished reply for good (state, stats line, links)."""
        self._frame.stop()
        if self._stream is None:
            return
        self._flush_pending()
        self._stream = final
        self._messages[-1] = final
        self._render_stream()
        self._stream = None

    @property
    def streaming(self) -> bool:
        return self._stream is not None

    def _flush_pending(self) -> bool:
        if self._stream is None or not self._pending:
            return False
        self.pieces_shown += len(self._pending)
        self._stream.content += "".join(self._pending)
        self._pending = []
        return True

    def _on_frame_timeout(self) -> None:
        if not self._flush_pending():
            return
        started = time.perf_counter()
        self._render_stream()
        spent_ms = (time.perf_counter() - started) * 1000
        # a very long reply costs more per render: paint less often rather than stall
        self._frame.setInterval(int(min(MAX_FRAME_MS, max(FRAME_MS, 2 * spent_ms))))
        self.frame_rendered.emit(self.pieces_shown)

    def _render_stream(self) -> None:
        bar = self.verticalScrollBar()
        at_bottom = bar.value() >= bar.maximum() - 4
        r = render_message(self._stream, self._md)
        self._code[self._stream.id] = r.code_blocks
        self._content[self._stream.id] = self._stream.content
        cursor = QTextCursor(self.document())
        cursor.setPosition(self._stream_start)
        cursor.movePosition(QTextCursor.End, QTextCursor.KeepAnchor)
        cursor.beginEditBlock()
        cursor.removeSelectedText()
        cursor.insertHtml(r.html)
        cursor.endEditBlock()
        if at_bottom:
            bar.setValue(bar.maximum())

    # links ------------------------------------------------------------------
    def _on_anchor_clicked(self, url: QUrl) -> None:
        self.run_link(url.toString())

    def run_link(self, link: str) -> None:
        """Act on one of the message links (also used by keyboard shortcuts and tests)."""
        kind, _, rest = link.partition(":")
        if kind == "copy-msg":
            self._copy(self._content.get(rest, ""), "message")
        elif kind == "copy-code":
            msg_id, _, n = rest.rpartition(":")
            blocks = self._code.get(msg_id, [])
            if n.isdigit() and int(n) < len(blocks):
                self._copy(blocks[int(n)], "code")
        elif kind == "edit":
            self.edit_requested.emit(rest)
        elif kind == "regen":
            self.regenerate_requested.emit(rest)
        elif kind == "continue":
            self.continue_requested.emit(rest)
        elif kind == "sibling":
            msg_id, _, delta = rest.rpartition(":")
            self.sibling_requested.emit(msg_id, int(delta))

    def _copy(self, text: str, what: str) -> None:
        QGuiApplication.clipboard().setText(text)
        self.copied.emit(what)
