"""The conversation controller: chat store + engine worker + chat view.

It owns the current conversation and the reply being streamed. The user's message
is committed before generation starts; the reply is saved through the store's
``ReplyWriter`` as it streams (the writer commits about once a second) and finished
with its final state and the engine's figures.
"""
from __future__ import annotations

from typing import Optional

from PySide6.QtCore import QObject, Signal

from app.chat.chat_view import ChatView
from app.chat.conversation_views import message_view, path_views
from app.chat.message_html import MessageView, stats_line
from chat.records import CANCELLED, COMPLETE, ERROR
from engine.types import ChatMessage


class ChatSession(QObject):
    generation_requested = Signal(list, object)
    """Messages (ChatMessage list) and GenerationParams for the engine worker."""
    reply_completed = Signal(str)
    """A reply ended: eog, length, cancelled or error."""
    conversation_changed = Signal(int)
    """Another conversation is shown (or the current one changed shape)."""
    conversations_changed = Signal()
    """Titles, order or membership of the conversation list changed."""
    error_shown = Signal(str)
    """Something failed; the text says what to do."""

    def __init__(self, store, view: ChatView, parent=None):
        super().__init__(parent)
        self.store = store
        self.view = view
        self.conversation_id: Optional[int] = None
        self.system_prompt = ""
        self.model_name = ""
        self.settings = None           # common.settings.Settings: replies use settings.params
        self._writer = None
        self._stream_msg: Optional[MessageView] = None
        self.last_deleted: Optional[int] = None

    # conversations ------------------------------------------------------
    def new_conversation(self) -> int:
        self.conversation_id = self.store.create()
        self.view.set_messages([])
        self.conversation_changed.emit(self.conversation_id)
        self.conversations_changed.emit()
        return self.conversation_id

    def open(self, conv_id: int) -> None:
        if self.generating:
            return
        self.conversation_id = conv_id
        self.refresh()
        self.conversation_changed.emit(conv_id)

    def refresh(self, memory_start: Optional[int] = None) -> None:
        if self.conversation_id is None:
            self.view.set_messages([])
            return
        self.view.set_messages(path_views(self.store, self.store.active_path(self.conversation_id)),
                               memory_start)

    def delete(self, conv_id: int) -> str:
        title = self.store.get(conv_id).display_title
        self.store.delete(conv_id)
        self.last_deleted = conv_id
        if conv_id == self.conversation_id:
            self.conversation_id = None
            self.view.set_messages([])
        self.conversations_changed.emit()
        return title

    def undo_delete(self) -> None:
        if self.last_deleted is not None:
            self.store.restore(self.last_deleted)
            self.open(self.last_deleted)
            self.last_deleted = None
            self.conversations_changed.emit()

    def engine_messages(self, upto: Optional[list] = None) -> list[ChatMessage]:
        """The active path (or ``upto``) as the engine sees it, system prompt first; with no
        conversation open, what a new one would start with."""
        from chat.history import model_turns

        return [ChatMessage(role, content) for role, content in
                model_turns(self.store, self.conversation_id, self.system_prompt, upto)]

    def path_before(self, msg_id: Optional[int]) -> Optional[list]:
        """The active path up to (not including) ``msg_id``; None when it is not on it."""
        if msg_id is None or self.conversation_id is None:
            return None
        path = self.store.active_path(self.conversation_id)
        ids = [m.id for m in path]
        return path[:ids.index(msg_id)] if msg_id in ids else None

    # generating ---------------------------------------------------------
    @property
    def generating(self) -> bool:
        return self._writer is not None

    def send(self, text: str) -> bool:
        if self.generating or not text.strip():
            return False
        if self.conversation_id is None:
            self.new_conversation()
        self.store.add_user_message(self.conversation_id, text)
        self.conversations_changed.emit()
        self.refresh()
        writer = self.store.start_reply(self.conversation_id, model=self.model_name,
                                        params=self._params_dict())
        self._start(writer, self._history_before(writer))
        return True

    def regenerate(self, reply_id: int) -> bool:
        if self.generating:
            return False
        new_id = self.store.regenerate(reply_id, model=self.model_name, params=self._params_dict())
        self.refresh_without(new_id)
        writer = self.store.reply_writer(new_id)
        self._start(writer, self._history_before(writer))
        return True

    def edit(self, user_msg_id: int, text: str) -> bool:
        if self.generating or not text.strip():
            return False
        new_id = self.store.edit_user_message(user_msg_id, text)
        self.refresh()
        writer = self.store.start_reply(self.conversation_id, parent_id=new_id, model=self.model_name,
                                        params=self._params_dict())
        self._start(writer, self._history_before(writer))
        return True

    def continue_reply(self, reply_id: int) -> bool:
        if self.generating:
            return False
        writer = self.store.continue_reply(reply_id)
        self.refresh_without(reply_id)
        path = self.store.active_path(self.conversation_id)
        self._start(writer, self.engine_messages(path), continuing=True)
        return True

    def switch_sibling(self, msg_id: int, delta: int) -> None:
        if self.generating:
            return
        siblings, index = self.store.siblings(msg_id)
        target = siblings[(index + delta) % len(siblings)]
        self.store.switch_to(target.id)
        self.refresh()

    def refresh_without(self, msg_id: int) -> None:
        """Show the active path minus the reply about to stream (it streams in after)."""
        path = [m for m in self.store.active_path(self.conversation_id) if m.id != msg_id]
        self.view.set_messages(path_views(self.store, path))

    def _history_before(self, writer) -> list[ChatMessage]:
        path = [m for m in self.store.active_path(self.conversation_id) if m.id != writer.message_id]
        return self.engine_messages(path)

    def _start(self, writer, messages: list[ChatMessage], continuing: bool = False) -> None:
        self._writer = writer
        msg = self.store.get_message(writer.message_id)
        view = message_view(self.store, msg)
        view.state = "streaming"
        view.meta = self.model_name
        self._stream_msg = view
        self.view.begin_stream(view)
        self.generation_requested.emit(messages, self.params)

    @property
    def params(self):
        """The sampling parameters the next reply is generated with (the window's Settings)."""
        return self.settings.params if self.settings is not None else None

    def _params_dict(self) -> dict:
        return self.params.to_dict() if self.params is not None else {}

    # engine events --------------------------------------------------------
    def on_token(self, piece: str) -> None:
        if self._writer is not None:
            self._writer.append(piece)
            self.view.push(piece)

    def on_finished(self, reason: str, stats) -> None:
        state = CANCELLED if reason == "cancelled" else COMPLETE
        self._finish(state, stats, reason)

    def on_failed(self, message: str, stats) -> None:
        self._finish(ERROR, stats, "error", error=message)

    def _finish(self, state: str, stats, reason: str, error: str = "") -> None:
        writer, self._writer = self._writer, None
        if writer is None:
            return
        d = stats.to_dict() if stats is not None and hasattr(stats, "to_dict") else {}
        if error:
            d["error"] = error
        writer.finish(state, d or None)
        final = message_view(self.store, self.store.get_message(writer.message_id))
        final.meta = stats_line(self.model_name, stats) if stats is not None else final.meta
        self.view.end_stream(final)
        self.conversations_changed.emit()
        if error:
            self.error_shown.emit(error)
        self.reply_completed.emit(reason)

    def abandon(self) -> None:
        """The app is closing mid-reply: keep what streamed, marked as cancelled."""
        if self._writer is not None:
            self._finish(CANCELLED, None, "cancelled")
