"""ReplyWriter: streams a reply into the store, saving it at least once a second.

``append(piece)`` is cheap; when ``save_interval`` has passed since the last save it
also commits the text so far, so a crash loses at most the text of the last interval.
``finish()`` commits the whole text with its final state. A source that can stall
for long between pieces should call ``tick()`` from a timer, which saves pending
text once it is due. Used as a context manager, the writer finishes as complete,
cancelled (on ``common.task.Cancelled``) or error, and lets the exception through.
"""
from __future__ import annotations

import time
from typing import Callable, Optional

from chat.records import CANCELLED, COMPLETE, ERROR, ChatStoreError


class ReplyWriter:
    def __init__(self, store, message_id: int, text: str = "", *,
                 clock: Callable[[], float] = time.monotonic, save_interval: float = 1.0):
        self.store = store
        self.message_id = message_id
        self.save_interval = save_interval
        self.saves = 0                      # commits made while streaming
        self.finished_state: Optional[str] = None
        self._clock = clock
        self._parts = [text] if text else []
        self._joined = text
        self._saved_len = len(text)
        self._length = len(text)
        self._last_save = clock()

    @property
    def text(self) -> str:
        if len(self._joined) != self._length:
            self._joined = "".join(self._parts)
            self._parts = [self._joined]
        return self._joined

    @property
    def saved_chars(self) -> int:
        """How much of ``text`` is committed."""
        return self._saved_len

    @property
    def pending(self) -> bool:
        return self._length > self._saved_len

    def append(self, piece: str) -> None:
        """Add streamed text; commits it too if the last save is ``save_interval`` old."""
        if self.finished_state is not None:
            raise ChatStoreError("this reply is already finished")
        if piece:
            self._parts.append(piece)
            self._length += len(piece)
        if self._clock() - self._last_save >= self.save_interval:
            self.save()

    def tick(self) -> bool:
        """Save pending text if a save is due; True if it saved."""
        if self.pending and self._clock() - self._last_save >= self.save_interval:
            self.save()
            return True
        return False

    def save(self) -> None:
        """Commit the text so far (the reply stays streaming)."""
        if self.pending:
            text = self.text
            self.store._save_reply(self.message_id, text)
            self._saved_len = len(text)
            self.saves += 1
        self._last_save = self._clock()

    def finish(self, state: str = COMPLETE, stats: Optional[dict] = None,
               token_count: Optional[int] = None) -> None:
        """Commit the whole text with its final state and the engine's figures."""
        if self.finished_state is not None:
            raise ChatStoreError("this reply is already finished")
        text = self.text
        self.store._finish_reply(self.message_id, text, state, stats, token_count)
        self._saved_len = len(text)
        self.finished_state = state

    def __enter__(self) -> "ReplyWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.finished_state is not None:
            return
        if exc_type is None:
            self.finish(COMPLETE)
            return
        from common.task import Cancelled

        state = CANCELLED if issubclass(exc_type, (Cancelled, KeyboardInterrupt)) else ERROR
        stats = None if state == CANCELLED else {"error": f"{exc_type.__name__}: {exc}"}
        self.finish(state, stats)
