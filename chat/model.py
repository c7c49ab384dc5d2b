"""What the chat store hands out: conversations, messages, search hits, and its errors."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from common.errors import UserError

# Message states.
COMPLETE = "complete"
STREAMING = "streaming"
INTERRUPTED = "interrupted"   # the process died while the reply was streaming
CANCELLED = "cancelled"       # the user stopped it
ERROR = "error"
STATES = (COMPLETE, STREAMING, INTERRUPTED, CANCELLED, ERROR)
FINAL_STATES = (COMPLETE, INTERRUPTED, CANCELLED, ERROR)

USER = "user"
ASSISTANT = "assistant"
ROLES = (USER, ASSISTANT)

UNTITLED = "New chat"
TITLE_MAX_CHARS = 60


class ChatStoreError(UserError):
    """Base class of the store's errors; its text is meant for the user."""


class StoreLockedError(ChatStoreError):
    """Another LlamaDesk process holds the chat database for writing."""


class StoreReadOnlyError(ChatStoreError):
    """A write was attempted on a store opened read-only."""


class NotFoundError(ChatStoreError, KeyError):
    """No such conversation or message."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "not found"


class ChatImportError(ChatStoreError, ValueError):
    """An import file was refused; nothing was imported. The text says where."""


@dataclass(frozen=True)
class Conversation:
    id: int
    title: Optional[str]
    title_is_auto: bool
    system_prompt: Optional[str]
    model: Optional[str]
    pinned: bool
    archived: bool
    created: float              # Unix time, seconds
    updated: float
    deleted: Optional[float]    # when it was moved to the trash
    active_leaf_id: Optional[int]
    message_count: int = 0      # messages on the active path (alternatives not counted)

    @property
    def display_title(self) -> str:
        return self.title or UNTITLED

    @property
    def in_trash(self) -> bool:
        return self.deleted is not None


@dataclass(frozen=True)
class Message:
    id: int
    conversation_id: int
    parent_id: Optional[int]
    role: str
    content: str
    created: float
    updated: float
    model: Optional[str] = None
    params: dict = field(default_factory=dict)   # sampling settings used
    stats: dict = field(default_factory=dict)    # figures from the engine (tok/s, ...)
    token_count: Optional[int] = None
    state: str = COMPLETE


@dataclass(frozen=True)
class SearchHit:
    conversation_id: int
    conversation_title: str
    message_id: int              # the database id (stable; not a position)
    role: str
    snippet: str
    created: float
    position: Optional[int] = None   # 1-based place on the conversation's shown path;
    path_length: int = 0             # None: the message is in another version (a branch)


def auto_title(text: str) -> str:
    """A conversation title from the first user message: its first non-empty line, cut."""
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    line = " ".join(line.split())
    if len(line) > TITLE_MAX_CHARS:
        line = line[:TITLE_MAX_CHARS - 1].rstrip() + "…"
    return line or UNTITLED
