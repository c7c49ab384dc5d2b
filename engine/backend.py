"""The backend interface every inference implementation offers, and its errors."""
from __future__ import annotations

from typing import Any, Iterator, Optional, Protocol, Sequence, runtime_checkable

from common.errors import UserError
from common.task import TaskHandle
from engine.types import ChatMessage, FitResult, GenerationParams, ReplyStats


class EngineError(UserError, RuntimeError):
    """A failure the user can act on; the message is written for them."""


class ContextOverflowError(EngineError):
    """The conversation does not fit the model's context window.

    Every backend raises this type (or a subclass) for it, whatever words its own
    library or server uses, so that a front end tells the user without reading the text.
    """

    DEFAULT = ("The conversation no longer fits in the model's context window. Start a new chat, "
               "or raise the context size in Settings.")

    def __init__(self, message: Optional[str] = None):
        super().__init__(message or self.DEFAULT)


class MessageTooLongError(ContextOverflowError):
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


@runtime_checkable
class Backend(Protocol):
    """A loaded model that turns a conversation into streamed text.

    Not thread-safe: one owner thread makes every call (docs/architecture.md).
    Only ``TaskHandle.cancel`` may be called from elsewhere. Both backends
    (``engine.llama_backend.LlamaCppBackend``, ``engine.remote_backend.RemoteBackend``)
    implement all of it; open one with ``engine.open_backend``.
    """

    name: str
    local: bool                       # the model runs in this process (llama.cpp), not on a server
    last_stats: Optional[ReplyStats]
    last_fit: Optional[FitResult]
    conversation: Optional[str]       # the conversation the cache belongs to (saved caches' tag)
    snapshots: Any                    # engine.snapshots store once enabled; None otherwise

    @property
    def n_ctx(self) -> int: ...

    @property
    def plan_text(self) -> str:
        """Where the model runs, in words for the user ("all 30 layers on ...", "remote server at ...")."""

    @property
    def cache_exact(self) -> bool:
        """False while part of the cache was shifted rather than read: ``rebuild_cache`` makes it exact."""

    def load(self, handle: Optional[TaskHandle] = None) -> None: ...

    def unload(self) -> None: ...

    def tokenize(self, text: str) -> list[int]: ...

    def count_tokens(self, text: str) -> int: ...

    def fit_history(self, messages: Sequence[ChatMessage],
                    params: GenerationParams) -> FitResult: ...

    def stream_chat(self, messages: Sequence[ChatMessage], params: GenerationParams,
                    handle: Optional[TaskHandle] = None) -> Iterator[str]:
        """Raises ContextOverflowError when the conversation cannot fit the window."""

    def reset_cache(self) -> None: ...

    def rebuild_cache(self, handle: Optional[TaskHandle] = None, chunk: int = 64) -> bool:
        """Re-read the shifted part of the cache; True once it is exact (stops when ``handle`` is cancelled)."""

    def enable_snapshots(self, root=None, *, disk_budget: Optional[int] = None,
                         ram_budget: Optional[int] = None): ...

    def save_snapshot(self): ...

    def restore_for(self, messages: Sequence[ChatMessage]): ...
