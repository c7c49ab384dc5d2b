"""The backend interface every inference implementation offers."""
from __future__ import annotations

from typing import Iterator, Optional, Protocol, Sequence

from common.task import TaskHandle
from engine.types import ChatMessage, GenerationParams, ReplyStats


class Backend(Protocol):
    """A loaded model that turns a conversation into streamed text.

    Not thread-safe: one owner thread makes every call (architecture.md).
    Only ``TaskHandle.cancel`` may be called from elsewhere.
    """

    name: str
    last_stats: Optional[ReplyStats]

    def load(self, handle: Optional[TaskHandle] = None) -> None: ...

    def unload(self) -> None: ...

    def count_tokens(self, text: str) -> int: ...

    def stream_chat(self, messages: Sequence[ChatMessage], params: GenerationParams,
                    handle: Optional[TaskHandle] = None) -> Iterator[str]: ...
