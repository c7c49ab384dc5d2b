"""`llamadesk chat --continue [ID]`: go on with a stored conversation from the terminal.

The conversation (the most recently updated by default) is read from the chat store,
each new turn is saved to it as the window saves one, and the conversation's saved KV
cache (engine.snapshots) is used when one fits, so the history is not read again.
"""
from __future__ import annotations

import sys
from typing import Optional


class ContinueError(Exception):
    """Why a conversation cannot be continued, in one sentence for the user."""


class StoredConversation:
    """The conversation being continued: its messages, and saving the new turns."""

    def __init__(self, store, conv_id: int, default_system: str):
        self.store = store
        self.id = conv_id
        self.default_system = default_system
        self._writer = None

    @classmethod
    def open(cls, which: str, default_system: str) -> "StoredConversation":
        from chat.records import ChatStoreError, NotFoundError, StoreLockedError
        from chat.store import ChatStore

        try:
            store = ChatStore.open()
        except StoreLockedError:
            raise ContinueError("the chats are open in the LlamaDesk window, which holds them: close it "
                                "to continue a conversation here, or continue it in the window") from None
        except ChatStoreError as exc:
            raise ContinueError(str(exc)) from None
        try:
            conv_id = _pick(store, which)
        except (NotFoundError, ContinueError) as exc:
            store.close()
            raise ContinueError(str(exc)) from None
        return cls(store, conv_id, default_system)

    @property
    def conversation(self):
        return self.store.get(self.id)

    def messages(self):
        from chat.history import model_turns
        from engine.types import ChatMessage

        return [ChatMessage(r, c) for r, c in model_turns(self.store, self.id, self.default_system)]

    def begin_turn(self, text: str, model: str, params: dict) -> None:
        self.store.add_user_message(self.id, text)
        self._writer = self.store.start_reply(self.id, model=model, params=params)

    def append(self, piece: str) -> None:
        if self._writer is not None:
            self._writer.append(piece)

    def end_turn(self, state: str, stats: Optional[dict] = None) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.finish(state, stats)

    def close(self) -> None:
        if self._writer is not None:
            from chat.records import CANCELLED

            self.end_turn(CANCELLED)
        self.store.close()


def _pick(store, which: str) -> int:
    if which == "last":
        convs = store.list(include_archived=True)
        if not convs:
            raise ContinueError("there is no conversation to continue yet")
        return max(convs, key=lambda c: (c.updated or 0, c.id)).id
    try:
        conv_id = int(which)
    except ValueError:
        raise ContinueError(f"{which!r} is not a conversation id (see `chats list`)") from None
    conv = store.get(conv_id)
    if conv.deleted is not None:
        raise ContinueError(f"conversation {conv_id} is in the trash: restore it first "
                            f"(`chats restore {conv_id}`)")
    return conv_id


def describe(conv, n_messages: int) -> None:
    title = conv.display_title if hasattr(conv, "display_title") else (conv.title or "Untitled")
    print(f"[continuing conversation {conv.id}: {title!r}, {n_messages} messages]", file=sys.stderr)
