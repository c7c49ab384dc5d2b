"""A conversation as a model reads it: one home for the window and the terminal alike,
so both send the same messages (and a saved KV cache made by one fits the other)."""
from __future__ import annotations

from typing import Optional, Sequence


def model_turns(store, conv_id: Optional[int], default_system: str = "",
                path: Optional[Sequence] = None) -> list[tuple[str, str]]:
    """(role, content) pairs: the conversation's system prompt (or ``default_system``)
    first, then the active path (or ``path``), leaving out empty replies."""
    if path is None:
        path = store.active_path(conv_id) if conv_id is not None else []
    conv_prompt = store.get(conv_id).system_prompt if conv_id is not None else None
    prompt = conv_prompt or default_system
    out = [("system", prompt)] if prompt else []
    out += [(m.role, m.content) for m in path if m.content or m.role == "user"]
    return out
