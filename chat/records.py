"""What the chat store hands out: conversations, messages, search hits, and its errors."""
from __future__ import annotations

import time
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

# The last second every calendar can show (9999-12-31 23:59:59 UTC); 0 is 1970-01-01.
MAX_TIME = 253402300799.0
UNKNOWN_TIME = "unknown time"


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
    created: Optional[float]    # Unix time, seconds (None: the stored value is unusable)
    updated: Optional[float]
    deleted: Optional[float]    # when it was moved to the trash (NaN: in it, time unknown)
    active_leaf_id: Optional[int]
    message_count: int = 0      # messages on the active path (alternatives not counted)
    uuid: Optional[str] = None  # stable across export and import; ids are not

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
    created: Optional[float]    # None: the stored value is unusable
    updated: Optional[float]
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


def valid_time(value) -> bool:
    """A time the store keeps and every front end can show: a finite number of seconds
    since 1970, not before it, that this platform's calendar converts."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        seconds = float(value)
        if not 0 <= seconds <= MAX_TIME:        # NaN fails this too
            return False
        time.localtime(seconds)
    except (OverflowError, OSError, ValueError):
        return False
    return True


def clean_time(value) -> Optional[float]:
    """A stored time as a float, or None when it is unusable (written by another tool)."""
    return float(value) if valid_time(value) else None


def when_text(seconds) -> str:
    """'2026-12-01 14:51' in local time, or 'unknown time'."""
    if not valid_time(seconds):
        return UNKNOWN_TIME
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(seconds))


def clean_text(value, default: Optional[str] = None) -> Optional[str]:
    """A stored text value as str whatever another tool put in the column."""
    if value is None:
        return default
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)
