"""Turn the chat store's messages into what the chat view draws."""
from __future__ import annotations

from app.chat.message_html import MessageView, stats_line
from engine.types import length_note


def message_view(store, msg, *, with_siblings: bool = True) -> MessageView:
    index, count = 0, 1
    if with_siblings:
        siblings, index = store.siblings(msg.id)
        count = len(siblings)
    state, note = msg.state, ""
    if state in ("cancelled",):
        state = "interrupted"      # both offer "Continue"
    elif state == "complete" and msg.stats.get("stop_reason") == "length":
        state = "truncated"        # cut by a length limit: says which, offers "Continue"
        note = length_note(msg.stats.get("limited_by", ""), msg.stats.get("length_limit", 0) or 0)
    error = msg.stats.get("error", "") if msg.state == "error" else ""
    meta = ""
    if msg.role == "assistant":
        meta = stats_line(msg.model or "", _Stats(msg.stats))
    return MessageView(id=str(msg.id), role=msg.role, content=msg.content, state=state,
                       meta=meta, sibling_index=index, sibling_count=count, error=error, note=note)


def path_views(store, path) -> list[MessageView]:
    return [message_view(store, m) for m in path]


class _Stats:
    """Stats dict as attributes (what stats_line reads)."""

    def __init__(self, d: dict):
        self.gen_tps = d.get("gen_tps")
        self.ttft_s = d.get("ttft_s")
        self.gen_tokens = d.get("gen_tokens", 0)
