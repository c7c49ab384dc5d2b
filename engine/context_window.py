"""Fitting a conversation into the context window, whole turns at a time.

The system prompt and the latest user message (with anything after it) always
stay; the oldest whole turns (a user message and the replies that follow it) go
first, until the prompt plus the tokens reserved for the reply fit ``n_ctx``.
Counts are exact: ``count_prompt`` renders the candidate with the model's
template and tokenizes it with the model's tokenizer.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

from engine.backend import MessageTooLongError, ReplyTooLongError
from engine.types import ChatMessage, FitResult

PER_MESSAGE_OVERHEAD = 8  # template tokens around one message, for the first guess only


def reply_reserve(max_tokens: int, n_ctx: int) -> int:
    """Tokens kept free for the reply: the requested length, at most a quarter of the window."""
    return max(1, min(max_tokens, n_ctx // 4))


def split_turns(messages: Sequence[ChatMessage]) -> tuple[list[int], list[list[int]], list[int]]:
    """(system indices, droppable turns oldest first, the indices that always stay)."""
    system = [i for i, m in enumerate(messages) if m.role == "system"]
    others = [i for i, m in enumerate(messages) if m.role != "system"]
    last_user = max((i for i in others if messages[i].role == "user"), default=None)
    if last_user is None:
        return system, [], others
    tail = [i for i in others if i >= last_user]
    turns: list[list[int]] = []
    for i in others:
        if i >= last_user:
            break
        if messages[i].role == "user" or not turns:
            turns.append([i])
        else:
            turns[-1].append(i)
    return system, turns, tail


def fit_history(messages: Sequence[ChatMessage], *, n_ctx: int, reserve: int,
                count_prompt: Callable[[Sequence[ChatMessage]], int],
                count_text: Optional[Callable[[str], int]] = None) -> FitResult:
    system, turns, tail = split_turns(messages)
    first = 0  # turns[first:] are kept

    def build(first_turn: int) -> list[int]:
        kept = set(system) | set(tail)
        for turn in turns[first_turn:]:
            kept.update(turn)
        return sorted(kept)

    budget = n_ctx - reserve
    while True:
        kept = build(first)
        used = count_prompt([messages[i] for i in kept])
        if used <= budget:
            break
        if first >= len(turns):
            if messages and messages[-1].role == "assistant":   # a reply being continued
                raise ReplyTooLongError(used, n_ctx, reserve)
            raise MessageTooLongError(used, n_ctx, reserve)
        # Jump over as many turns as the excess suggests, then measure exactly again.
        excess = used - budget
        first += 1
        if count_text is not None:
            freed = sum(count_text(messages[i].content) + PER_MESSAGE_OVERHEAD
                        for i in turns[first - 1])
            while first < len(turns) and freed < excess:
                freed += sum(count_text(messages[i].content) + PER_MESSAGE_OVERHEAD
                             for i in turns[first])
                first += 1
            # The guess may overshoot; step back while an exact count says a turn fits.
            while first > 0:
                trial = count_prompt([messages[i] for i in build(first - 1)])
                if trial > budget:
                    break
                first -= 1
    kept_set = set(kept)
    return FitResult(
        messages=tuple(messages[i] for i in kept),
        kept=tuple(kept),
        dropped=tuple(i for i in range(len(messages)) if i not in kept_set),
        prompt_tokens=used, reserve=reserve, n_ctx=n_ctx)
