"""The backend interface every inference implementation offers, and its errors."""
from __future__ import annotations

from typing import Iterator, Optional, Protocol, Sequence

from common.errors import UserError
from common.task import TaskHandle
from engine.types import ChatMessage, FitResult, GenerationParams, ReplyStats


class EngineError(UserError, RuntimeError):
    """A failure the user can act on; the message is written for them."""


class MessageTooLongError(EngineError):
    """The system prompt and the latest message alone do not fit the window."""

    def __init__(self, needed: int, n_ctx: int, reserve: int):
        self.needed, self.n_ctx, self.reserve = needed, n_ctx, reserve
        super().__init__(
            f"The message is too long for the context window: it needs {needed:,} tokens "
            f"with the system prompt, and the window holds {n_ctx:,} tokens with "
            f"{reserve:,} kept free for the reply. Shorten the message or raise the "
            f"context size (n_ctx).")


class ReplyTooLongError(MessageTooLongError):
    """The reply being continued already fills the window: there is no room to go on."""

    def __init__(self, needed: int, n_ctx: int, reserve: int):
        super().__init__(needed, n_ctx, reserve)
        self.args = (f"The reply already fills the context window ({n_ctx:,} tokens), so there is "
                     f"no room to continue it. Raise the context size (n_ctx) to go on.",)


class Backend(Protocol):
    """A loaded model that turns a conversation into streamed text.

    Not thread-safe: one owner thread makes every call (architecture.md).
    Only ``TaskHandle.cancel`` may be called from elsewhere.
    """

    name: str
    n_ctx: int
    last_stats: Optional[ReplyStats]
    last_fit: Optional[FitResult]

    def load(self, handle: Optional[TaskHandle] = None) -> None: ...

    def unload(self) -> None: ...

    def tokenize(self, text: str) -> list[int]: ...

    def count_tokens(self, text: str) -> int: ...

    def fit_history(self, messages: Sequence[ChatMessage],
                    params: GenerationParams) -> FitResult: ...

    def stream_chat(self, messages: Sequence[ChatMessage], params: GenerationParams,
                    handle: Optional[TaskHandle] = None) -> Iterator[str]: ...
